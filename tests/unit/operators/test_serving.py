"""Serving operators without sockets: what a setup task does when there is no model to serve."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowSkipException

from airflow_bedrock_ft.hooks.bedrock_ft import BedrockFineTuneHook
from airflow_bedrock_ft.operators.serving import (
    RESOURCE_ARN_KEY,
    BedrockCreateCustomModelDeploymentOperator,
)


def _op(**kwargs: Any) -> tuple[BedrockCreateCustomModelDeploymentOperator, mock.Mock]:
    op = BedrockCreateCustomModelDeploymentOperator(task_id="deploy", **kwargs)
    hook = mock.Mock(spec=BedrockFineTuneHook)
    op.hook = hook
    return op, hook


@pytest.mark.parametrize("model", [None, "None", "", "null"])
def test_no_model_skips_by_default(model: str | None) -> None:
    op, hook = _op(model_arn=model)
    with pytest.raises(AirflowSkipException, match="No model to serve"):
        op.execute({"ti": mock.Mock()})  # type: ignore[arg-type]
    hook.create_deployment.assert_not_called()


@pytest.mark.parametrize("model", [None, "None"])
def test_no_model_succeeds_with_nothing_deployed_when_asked(model: str | None) -> None:
    """An optional setup (no incumbent yet) must not skip the tasks after it: Airflow requires
    ALL_SUCCESS after a setup task, so a skip would skip the evaluation too."""
    op, hook = _op(model_arn=model, skip_without_model=False)
    ti = mock.Mock()
    assert op.execute({"ti": ti}) is None  # type: ignore[arg-type]
    ti.xcom_push.assert_called_once_with(key=RESOURCE_ARN_KEY, value=None)
    hook.create_deployment.assert_not_called()
    hook.get_resource.assert_not_called()
