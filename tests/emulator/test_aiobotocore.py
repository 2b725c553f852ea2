"""aiobotocore (the async client the triggerer uses) drives the emulator."""

from __future__ import annotations

import asyncio

import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_bedrock_ft.core.states import is_terminal


def client(emulator):
    return get_session().create_client(
        "bedrock",
        endpoint_url=emulator.endpoint_url,
        region_name=emulator.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


async def wait(bedrock, arn: str) -> dict:
    for _ in range(600):
        job = await bedrock.get_model_customization_job(jobIdentifier=arn)
        if is_terminal(job["status"]):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"{arn} did not finish")


async def test_async_client_creates_polls_lists_and_stops(emulator, job_request):
    async with client(emulator) as bedrock:
        created = await bedrock.create_model_customization_job(**job_request())
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
        done = await wait(bedrock, created["jobArn"])
        assert done["status"] == "Completed"
        assert done["trainingMetrics"]["trainingLoss"] > 0
        emulator.set_config(hold_phases=["training"])
        second = (await bedrock.create_model_customization_job(**job_request()))["jobArn"]
        await bedrock.stop_model_customization_job(jobIdentifier=second)
        assert (await wait(bedrock, second))["status"] == "Stopped"
        with pytest.raises(ClientError) as exc:
            await bedrock.stop_model_customization_job(jobIdentifier=second)
        assert exc.value.response["Error"]["Code"] == "ConflictException"
        pages = [
            page
            async for page in bedrock.get_paginator("list_model_customization_jobs").paginate(
                PaginationConfig={"PageSize": 1}
            )
        ]
        assert len(pages) == 2
        assert {p["modelCustomizationJobSummaries"][0]["jobArn"] for p in pages} == {
            created["jobArn"],
            second,
        }


async def test_async_client_sees_throttling_and_server_errors(emulator):
    async with client(emulator) as bedrock:
        emulator.set_faults(throttle={"rate": 1.0})
        with pytest.raises(ClientError) as exc:
            await bedrock.get_model_customization_job(jobIdentifier="x")
        assert exc.value.response["Error"]["Code"] == "ThrottlingException"
        emulator.set_faults(error_5xx={"rate": 1.0, "status": 503})
        with pytest.raises(ClientError) as exc:
            await bedrock.get_model_customization_job(jobIdentifier="x")
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        emulator.set_faults({})
        with pytest.raises(ClientError) as exc:
            await bedrock.get_model_customization_job(jobIdentifier="x")
        assert exc.value.response["Error"]["Code"] == "ResourceNotFoundException"
