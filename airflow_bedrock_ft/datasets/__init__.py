"""Dataset tools for Bedrock model customization: validate, convert, split and upload.

Plain Python (no Airflow): the command line, the emulator and the Airflow operator share it.
pyarrow (Parquet input) and boto3 are imported only when used.
"""

from __future__ import annotations

from .convert import ConversionError, convert_file, convert_rows, read_rows
from .report import DataProblem, DatasetReport, SplitTotals
from .rules import RULES
from .sources import DataFile, DatasetSourceError, DatasetTooLargeError, LineTooLongError, list_files
from .split import assign_split, split_file, split_records
from .upload import UploadResult, content_addressed_key, sha256_file, upload_content_addressed
from .validate import DatasetRecordError, dataset_byte_limit, iter_records, validate_dataset

__all__ = [
    "RULES",
    "ConversionError",
    "DataFile",
    "DataProblem",
    "DatasetRecordError",
    "DatasetReport",
    "DatasetSourceError",
    "DatasetTooLargeError",
    "LineTooLongError",
    "SplitTotals",
    "UploadResult",
    "assign_split",
    "content_addressed_key",
    "convert_file",
    "convert_rows",
    "dataset_byte_limit",
    "iter_records",
    "list_files",
    "read_rows",
    "sha256_file",
    "split_file",
    "split_records",
    "upload_content_addressed",
    "validate_dataset",
]
