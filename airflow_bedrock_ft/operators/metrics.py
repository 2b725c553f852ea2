"""Operator that reads a finished customization job's metrics and plots its loss curves."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook


class BedrockFineTuneMetricsOperator(BaseOperator):
    """Summarise a Bedrock customization job's losses, log them as a table and plot them.

    Reads the job (``GetModelCustomizationJob``) and the step-wise metric CSVs it wrote under
    its ``outputDataConfig.s3Uri``, computes the summary figures (final training loss as the
    mean of the last epoch, which is Bedrock's ``trainingMetrics.trainingLoss``; final and best
    validation loss with its step; train/validation gap; perplexities), logs them rounded for
    people, and with ``plot=True`` uploads the loss curves as
    ``<s3Uri>/model-customization-job-<id>/loss_curves.png``.

    Returns (XCom) a JSON-serializable dict: ``job_arn``, ``job_name``, ``job_status``,
    ``custom_model_arn``, ``output_s3_uri``, ``figures`` (unrounded), ``api`` (the job's own
    figures), ``per_epoch``, ``series_lengths``, ``training_key``, ``validation_key``,
    ``plot_uri`` (None without a plot) and ``warnings``. The per-step series stay in S3.

    .. seealso::
        `Analyze the results of a model customization job
        <https://docs.aws.amazon.com/bedrock/latest/userguide/model-customization-analyze.html>`__

    :param job_arn: ARN (or name) of the customization job. (templated)
    :param plot: render the loss curves to a PNG and upload it (needs the ``plot`` extra:
        ``pip install 'airflow-bedrock-ft[plot]'``).
    :param aws_conn_id: Airflow AWS connection; its ``endpoint_url`` is honoured.
    :param region_name: AWS region; default from the connection.
    """

    template_fields: Sequence[str] = ("job_arn",)
    ui_color = "#fdf0d5"

    def __init__(
        self,
        *,
        job_arn: str,
        plot: bool = True,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_arn = job_arn
        self.plot = plot
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    @cached_property
    def hook(self) -> BedrockFineTuneHook:
        """The Bedrock hook (a cached property, so tests can replace it)."""
        from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook

        return BedrockFineTuneHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    @cached_property
    def s3_client(self) -> Any:
        """A boto3 S3 client from the same connection (a cached property, so tests can replace it)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name).get_conn()

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_bedrock_ft.core.metrics import format_summary, job_metrics

        if not self.job_arn or not isinstance(self.job_arn, str):
            raise ValueError(f"job_arn must be a job ARN or name, got {self.job_arn!r}")
        job = self.hook.get_job(self.job_arn)
        if job.get("status") != "Completed":
            self.log.warning(
                "Job %s is %s; its metrics may be incomplete.", job.get("jobArn"), job.get("status")
            )
        result = job_metrics(job, self.s3_client, plot=self.plot)
        self.log.info("Losses of job %s\n%s", result["job_arn"], format_summary(result["summary"]))
        for warning in result["warnings"]:
            self.log.warning("%s", warning)
        if result["plot_uri"]:
            self.log.info("Loss curves: %s", result["plot_uri"])
        result.pop("summary")
        return result
