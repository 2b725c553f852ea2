"""State survives a restart: jobs, custom models, tags, tokens, trained weights; a job that
was running when the emulator stopped resumes and completes."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from airflow_bedrock_ft.emulator import start_emulator

from .helpers import NO_RETRY, phase, wait_for


def test_restart_keeps_state_and_resumes_running_jobs(bedrock_emulator, bucket, job_request, tmp_path):
    state = tmp_path / "emulator.sqlite"
    s3_url = bedrock_emulator.s3_endpoint_url  # S3 outlives both emulator instances
    done_request = job_request(clientRequestToken="persist-token", jobTags=[{"key": "k", "value": "v"}])
    running_request = job_request()
    with start_emulator(state_path=state, s3_endpoint_url=s3_url, time_scale=0.0) as first:
        bedrock = first.client("bedrock", config=NO_RETRY)
        done = wait_for(bedrock, bedrock.create_model_customization_job(**done_request)["jobArn"])
        assert done["status"] == "Completed"
        first.set_config(hold_phases=["training"])
        running = bedrock.create_model_customization_job(**running_request)["jobArn"]
        wait_for(bedrock, running, until=lambda j: phase(j, "training") == "InProgress")
        deployment = bedrock.create_custom_model_deployment(
            modelDeploymentName="persisted", modelArn=done["outputModelArn"]
        )["customModelDeploymentArn"]
        answer_before = first.client("bedrock-runtime").converse(
            modelId=deployment,
            messages=[{"role": "user", "content": [{"text": "What language is spoken in Spain?"}]}],
        )["output"]["message"]["content"][0]["text"]

    with start_emulator(state_path=state, s3_endpoint_url=s3_url, time_scale=0.0) as second:
        bedrock = second.client("bedrock", config=NO_RETRY)
        again = bedrock.get_model_customization_job(jobIdentifier=done["jobArn"])
        assert {k: again[k] for k in ("status", "outputModelArn", "trainingMetrics", "creationTime")} == {
            k: done[k] for k in ("status", "outputModelArn", "trainingMetrics", "creationTime")
        }
        assert bedrock.get_custom_model(modelIdentifier=done["outputModelArn"])["modelStatus"] == "Active"
        assert bedrock.list_tags_for_resource(resourceARN=done["jobArn"])["tags"] == [
            {"key": "k", "value": "v"}
        ]
        assert bedrock.create_model_customization_job(**done_request)["jobArn"] == done["jobArn"]
        with pytest.raises(ClientError) as exc:
            bedrock.create_model_customization_job(**{**done_request, "clientRequestToken": "other-token"})
        assert exc.value.response["Error"]["Message"] == "The provided job name is currently in use."
        resumed = wait_for(bedrock, running)
        assert resumed["status"] == "Completed", (resumed["statusDetails"], resumed.get("failureMessage"))
        answer_after = second.client("bedrock-runtime").converse(
            modelId=deployment,
            messages=[{"role": "user", "content": [{"text": "What language is spoken in Spain?"}]}],
        )["output"]["message"]["content"][0]["text"]
        assert answer_after == answer_before  # the trained weights came back from the state file
