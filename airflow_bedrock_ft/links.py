"""Extra link from a task to its model-customization job in the Bedrock console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

#: XCom key under which operators store the ARN of the job they submitted or attached to.
JOB_ARN_XCOM_KEY = "job_arn"

_CONSOLE_DOMAINS = {
    "aws": "console.aws.amazon.com",
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}


def console_url(job_arn: str | None) -> str:
    """The Bedrock console page of a model-customization job, or ``""`` for a malformed ARN.

    The region and partition come from the ARN itself
    (``arn:<partition>:bedrock:<region>:<account>:model-customization-job/...``), so the link
    is right even when the connection's region differs. The page is the job's detail view,
    ``https://<region>.console.aws.amazon.com/bedrock/home?region=<region>#/custom-models/item?arn=<ARN>``,
    with the ARN URL-encoded: an ARN contains ``:`` and ``/`` and would otherwise break the
    console's hash route.
    """
    if not job_arn:
        return ""
    parts = job_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or not parts[3]:
        return ""
    partition, region = parts[1], parts[3]
    domain = _CONSOLE_DOMAINS.get(partition)
    if domain is None:
        return ""
    return (
        f"https://{region}.{domain}/bedrock/home?region={region}"
        f"#/custom-models/item?arn={quote(job_arn, safe='')}"
    )


class BedrockFineTuneJobLink(BaseOperatorLink):
    """Link to the task's model-customization job in the Amazon Bedrock console.

    Reads the job ARN the operator stored in XCom under :data:`JOB_ARN_XCOM_KEY` as soon as
    the job was submitted or re-attached, so the link works while the job is still running.

    .. seealso:: :func:`console_url` for the URL scheme.
    """

    name = "Bedrock Job"

    def get_link(self, operator: Any, *, ti_key: TaskInstanceKey) -> str:
        """Return the console URL of the job, or ``""`` before a job is known."""
        # The configured XCom backend, resolved only when a link is rendered.
        from airflow.sdk.execution_time.xcom import XCom

        job_arn = XCom.get_value(ti_key=ti_key, key=JOB_ARN_XCOM_KEY)
        return console_url(job_arn if isinstance(job_arn, str) else None)
