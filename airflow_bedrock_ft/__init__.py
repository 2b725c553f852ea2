"""Amazon Bedrock model customization for Apache Airflow 3.

The top-level package imports nothing from Airflow, so the core, the dataset tools and the
emulator stay fast to import (the command line validates data without loading Airflow).
"""

from __future__ import annotations

__version__ = "0.1.0"
