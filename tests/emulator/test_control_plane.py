"""Control plane over real HTTP with boto3: shapes, status codes, error codes, listing."""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from airflow_bedrock_ft.core.models import resolve_model

from .helpers import NOVA, phase, signed_request, wait_for

JOB_ARN_RE = re.compile(
    r"^arn:aws:bedrock:us-east-1:123456789012:model-customization-job/" + re.escape(NOVA) + r"/[a-z0-9]{12}$"
)
MODEL_ARN_RE = re.compile(
    r"^arn:aws:bedrock:us-east-1:123456789012:custom-model/" + re.escape(NOVA) + r"/[a-z0-9]{12}$"
)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


def test_create_returns_201_and_a_real_format_arn(bedrock, job_request):
    response = bedrock.create_model_customization_job(**job_request())
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert JOB_ARN_RE.match(response["jobArn"]), response["jobArn"]


def test_get_by_name_and_by_url_encoded_arn_with_all_fields(bedrock, job_request):
    request = job_request(hyperParameters={"epochCount": "1"}, clientRequestToken="tok-get-1")
    arn = bedrock.create_model_customization_job(**request)["jobArn"]
    done = wait_for(bedrock, arn)
    # boto3 percent-encodes the ARN (":" and "/") in the path; the raw URL must work too.
    by_name = bedrock.get_model_customization_job(jobIdentifier=request["jobName"])
    raw = urllib.request.urlopen(
        signed_request(
            f"{bedrock.meta.endpoint_url}/model-customization-jobs/{urllib.parse.quote(arn, safe='')}"
        )
    )
    assert raw.status == 200
    assert by_name["jobArn"] == done["jobArn"] == arn
    assert done["status"] == "Completed", done.get("failureMessage")
    assert done["jobName"] == request["jobName"]
    assert done["outputModelName"] == request["customModelName"]
    assert MODEL_ARN_RE.match(done["outputModelArn"])
    assert done["clientRequestToken"] == "tok-get-1"
    assert done["roleArn"] == request["roleArn"]
    assert done["baseModelArn"].endswith(f"foundation-model/{NOVA}")
    assert done["customizationType"] == "FINE_TUNING"
    # Documented defaults are filled in, the requested value wins.
    defaults = resolve_model(NOVA).customization("FINE_TUNING").defaults()
    assert done["hyperParameters"] == {**defaults, "epochCount": "1"}
    assert done["trainingDataConfig"] == request["trainingDataConfig"]
    assert done["validationDataConfig"] == request["validationDataConfig"]
    assert done["outputDataConfig"] == request["outputDataConfig"]
    for name in ("validation", "dataProcessing", "training"):
        assert phase(done, name) == "Completed"
    assert done["trainingMetrics"]["trainingLoss"] > 0
    assert len(done["validationMetrics"]) == 1 and done["validationMetrics"][0]["validationLoss"] > 0
    assert done["creationTime"] <= done["lastModifiedTime"] <= done["endTime"]
    assert "failureMessage" not in done


def test_get_unknown_job_is_404_resource_not_found(bedrock):
    with pytest.raises(ClientError) as exc:
        bedrock.get_model_customization_job(jobIdentifier="no-such-job")
    code, status, _ = error_of(exc)
    assert (code, status) == ("ResourceNotFoundException", 404)


def test_duplicate_job_name_is_rejected_even_after_the_job_ended(bedrock, job_request):
    first = job_request()
    arn = bedrock.create_model_customization_job(**first)["jobArn"]
    wait_for(bedrock, arn)
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request(jobName=first["jobName"]))
    assert error_of(exc) == ("ValidationException", 400, "The provided job name is currently in use.")


def test_client_request_token_is_idempotent_and_conflicts_on_other_parameters(bedrock, job_request):
    request = job_request(clientRequestToken="same-token-1")
    first = bedrock.create_model_customization_job(**request)["jobArn"]
    again = bedrock.create_model_customization_job(**request)["jobArn"]
    assert again == first
    names = [j["jobName"] for j in bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]]
    assert names.count(request["jobName"]) == 1
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**{**request, "hyperParameters": {"epochCount": "3"}})
    assert error_of(exc)[:2] == ("ConflictException", 400)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"jobName": "bad name!"}, "at 'jobName' failed to satisfy constraint"),
        ({"hyperParameters": {"epochCount": "9"}}, "hyperParameters.epochCount"),
        ({"hyperParameters": {"warp": "1"}}, "hyperParameters.warp"),
        ({"customizationType": "CONTINUED_PRE_TRAINING"}, "CONTINUED_PRE_TRAINING"),
        # Context suffixes the model does not have (Nova Lite's :300k on Nova Micro, :999k).
        ({"baseModelIdentifier": "amazon.nova-micro-v1:0:999k"}, "amazon.nova-micro-v1:0:128k"),
        ({"baseModelIdentifier": "amazon.nova-micro-v1:0:300k"}, "amazon.nova-micro-v1:0:128k"),
        ({"trainingDataConfig": {}}, "trainingDataConfig"),
        ({"roleArn": ""}, "at 'roleArn' failed to satisfy constraint"),
    ],
)
def test_invalid_requests_are_validation_exceptions(bedrock, job_request, overrides, expected):
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request(**overrides))
    code, status, message = error_of(exc)
    assert (code, status) == ("ValidationException", 400)
    assert re.match(r"^\d+ validation errors? detected: ", message), message
    assert expected in message
    assert bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"] == []


def test_hyperparameter_message_names_the_range(bedrock, job_request):
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "9"}))
    assert "between 1 and 5" in error_of(exc)[2]


def test_unknown_base_model_is_resource_not_found(bedrock, job_request):
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request(baseModelIdentifier="amazon.nova-giant-v9:0"))
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)


def test_more_than_50_tags_is_too_many_tags(bedrock, job_request):
    tags = [{"key": f"k{i}", "value": "v"} for i in range(51)]
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request(jobTags=tags))
    assert error_of(exc)[:2] == ("TooManyTagsException", 400)


def test_list_filters_sorting_and_paginator(emulator, bedrock, job_request):
    emulator.set_config(hold_phases=["validation"])
    arns = []
    for i in range(5):
        arns.append(
            bedrock.create_model_customization_job(**job_request(jobName=f"list-{i}-alpha"))["jobArn"]
        )
    other = bedrock.create_model_customization_job(**job_request(jobName="beta-job"))["jobArn"]
    bedrock.stop_model_customization_job(jobIdentifier=other)
    summaries = bedrock.list_model_customization_jobs()["modelCustomizationJobSummaries"]
    assert [s["jobArn"] for s in summaries] == [other, *reversed(arns)]  # newest first by default
    ascending = bedrock.list_model_customization_jobs(sortBy="CreationTime", sortOrder="Ascending")
    assert [s["jobArn"] for s in ascending["modelCustomizationJobSummaries"]] == [*arns, other]
    alpha = bedrock.list_model_customization_jobs(nameContains="ALPHA")["modelCustomizationJobSummaries"]
    assert {s["jobArn"] for s in alpha} == set(arns)
    in_progress = bedrock.list_model_customization_jobs(statusEquals="InProgress")
    assert {s["jobArn"] for s in in_progress["modelCustomizationJobSummaries"]} == set(arns)
    middle = bedrock.get_model_customization_job(jobIdentifier=arns[2])["creationTime"]
    after = bedrock.list_model_customization_jobs(creationTimeAfter=middle, sortOrder="Ascending")
    assert [s["jobArn"] for s in after["modelCustomizationJobSummaries"]] == [arns[3], arns[4], other]
    before = bedrock.list_model_customization_jobs(creationTimeBefore=middle, sortOrder="Ascending")
    assert [s["jobArn"] for s in before["modelCustomizationJobSummaries"]] == arns[:2]
    first_page = bedrock.list_model_customization_jobs(maxResults=2, sortOrder="Ascending")
    assert len(first_page["modelCustomizationJobSummaries"]) == 2 and first_page["nextToken"]
    pages = list(
        bedrock.get_paginator("list_model_customization_jobs").paginate(
            sortOrder="Ascending", PaginationConfig={"PageSize": 2}
        )
    )
    assert [len(p["modelCustomizationJobSummaries"]) for p in pages] == [2, 2, 2]
    assert [s["jobArn"] for p in pages for s in p["modelCustomizationJobSummaries"]] == [*arns, other]
    summary = summaries[-1]
    assert summary["customModelName"].startswith("model-")
    assert summary["statusDetails"]["validationDetails"]["status"] == "InProgress"
    with pytest.raises(ClientError) as exc:
        bedrock.list_model_customization_jobs(nextToken="not-a-token")
    assert error_of(exc)[0] == "ValidationException"


def test_stop_moves_to_stopped_and_then_conflicts(emulator, bedrock, job_request):
    emulator.set_config(hold_phases=["training"])
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    assert (
        bedrock.stop_model_customization_job(jobIdentifier=arn)["ResponseMetadata"]["HTTPStatusCode"] == 200
    )
    stopped = wait_for(bedrock, arn)
    assert stopped["status"] == "Stopped"
    assert phase(stopped, "training") == "Stopped"
    assert phase(stopped, "validation") == "Completed"
    assert "outputModelArn" not in stopped and "endTime" in stopped
    assert bedrock.list_custom_models()["modelSummaries"] == []
    with pytest.raises(ClientError) as exc:
        bedrock.stop_model_customization_job(jobIdentifier=arn)
    assert error_of(exc)[:2] == ("ConflictException", 400)


def test_stopping_is_visible_while_the_stop_takes_time(emulator, bedrock, job_request):
    emulator.set_config(hold_phases=["validation"])
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "validation") == "InProgress")
    emulator.set_config(time_scale=0.02)  # stopping takes 60 s x 0.02
    bedrock.stop_model_customization_job(jobIdentifier=arn)
    during = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert during["status"] == "Stopping"
    assert phase(during, "validation") == "Stopping"
    assert wait_for(bedrock, arn)["status"] == "Stopped"


def test_custom_models_get_list_delete_and_tags(bedrock, job_request):
    request = job_request(
        jobTags=[{"key": "team", "value": "ml"}], customModelTags=[{"key": "stage", "value": "dev"}]
    )
    job = wait_for(bedrock, bedrock.create_model_customization_job(**request)["jobArn"])
    model_arn = job["outputModelArn"]
    model = bedrock.get_custom_model(modelIdentifier=model_arn)
    assert model["modelName"] == request["customModelName"]
    assert model["jobArn"] == job["jobArn"] and model["modelStatus"] == "Active"
    assert model["trainingMetrics"] == job["trainingMetrics"]
    assert bedrock.get_custom_model(modelIdentifier=request["customModelName"])["modelArn"] == model_arn
    listed = bedrock.list_custom_models(nameContains=request["customModelName"][-8:])["modelSummaries"]
    assert [m["modelArn"] for m in listed] == [model_arn]
    assert listed[0]["baseModelName"] == "Nova Micro"
    assert bedrock.list_custom_models(baseModelArnEquals=job["baseModelArn"])["modelSummaries"]
    assert bedrock.list_tags_for_resource(resourceARN=job["jobArn"])["tags"] == [
        {"key": "team", "value": "ml"}
    ]
    assert bedrock.list_tags_for_resource(resourceARN=model_arn)["tags"] == [{"key": "stage", "value": "dev"}]
    bedrock.tag_resource(resourceARN=model_arn, tags=[{"key": "owner", "value": "a"}])
    bedrock.untag_resource(resourceARN=model_arn, tagKeys=["stage"])
    assert bedrock.list_tags_for_resource(resourceARN=model_arn)["tags"] == [{"key": "owner", "value": "a"}]
    with pytest.raises(ClientError) as exc:
        bedrock.tag_resource(resourceARN=model_arn, tags=[{"key": f"t{i}", "value": "v"} for i in range(50)])
    assert error_of(exc)[:2] == ("TooManyTagsException", 400)
    bedrock.delete_custom_model(modelIdentifier=model_arn)
    with pytest.raises(ClientError) as exc:
        bedrock.get_custom_model(modelIdentifier=model_arn)
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)
    with pytest.raises(ClientError) as exc:
        bedrock.list_tags_for_resource(resourceARN=model_arn)
    assert error_of(exc)[0] == "ResourceNotFoundException"


def test_foundation_models_list_and_get(bedrock):
    models = bedrock.list_foundation_models(byCustomizationType="FINE_TUNING")["modelSummaries"]
    ids = {m["modelId"] for m in models}
    assert NOVA in ids and "amazon.nova-micro-v1:0" not in ids
    assert all("FINE_TUNING" in m["customizationsSupported"] for m in models)
    cpt = bedrock.list_foundation_models(byCustomizationType="CONTINUED_PRE_TRAINING")["modelSummaries"]
    assert {m["modelId"] for m in cpt} == {
        "amazon.titan-text-express-v1:0:8k",
        "amazon.titan-text-lite-v1:0:4k",
    }
    meta = bedrock.list_foundation_models(byProvider="meta")["modelSummaries"]
    assert meta and all(m["providerName"] == "Meta" for m in meta)
    details = bedrock.get_foundation_model(modelIdentifier=NOVA)["modelDetails"]
    assert details["customizationsSupported"] == ["FINE_TUNING", "DISTILLATION"]
    by_arn = bedrock.get_foundation_model(modelIdentifier=details["modelArn"])["modelDetails"]
    assert by_arn == details
    with pytest.raises(ClientError) as exc:
        bedrock.get_foundation_model(modelIdentifier="amazon.nothing-v1:0")
    assert error_of(exc)[:2] == ("ResourceNotFoundException", 404)


def test_timestamps_are_utc_and_recent(bedrock, job_request):
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    arn = bedrock.create_model_customization_job(**job_request(jobName=f"ts-{uuid.uuid4().hex[:6]}"))[
        "jobArn"
    ]
    created = bedrock.get_model_customization_job(jobIdentifier=arn)["creationTime"]
    assert before <= created <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=5)


def test_running_job_quota_is_service_quota_exceeded(emulator, bedrock, job_request):
    emulator.set_config(hold_phases=["validation"], max_running_jobs=1)
    first = bedrock.create_model_customization_job(**job_request())["jobArn"]
    with pytest.raises(ClientError) as exc:
        bedrock.create_model_customization_job(**job_request())
    assert error_of(exc)[:2] == ("ServiceQuotaExceededException", 400)
    bedrock.stop_model_customization_job(jobIdentifier=first)
    wait_for(bedrock, first)
    assert (
        bedrock.create_model_customization_job(**job_request())["ResponseMetadata"]["HTTPStatusCode"] == 201
    )
