"""Jobs really run: S3 reads, dataset validation, training, artifacts, failures, stops."""

from __future__ import annotations

import csv
import io

from airflow_bedrock_ft.datasets import validate_dataset

from .helpers import COUNTRIES, NOVA, converse_record, jsonl, phase, wait_for


def keys_under(s3, bucket: str, prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def test_completed_job_writes_artifacts_and_metrics(clients, bucket, job_request):
    bedrock, s3 = clients["bedrock"], clients["s3"]
    job = wait_for(bedrock, bedrock.create_model_customization_job(**job_request())["jobArn"])
    assert job["status"] == "Completed", job.get("failureMessage")
    job_id = job["jobArn"].rsplit("/", 1)[1]
    keys = keys_under(s3, bucket, "output/")
    assert "output/.write_access_check_file.tmp" in keys
    folder = f"output/model-customization-job-{job_id}/"
    training_csv = folder + "training_artifacts/step_wise_training_metrics.csv"
    assert training_csv in keys
    rows = list(
        csv.DictReader(io.StringIO(s3.get_object(Bucket=bucket, Key=training_csv)["Body"].read().decode()))
    )
    assert rows and {"step_number", "epoch_number", "training_loss"} <= set(rows[0])
    assert {int(r["epoch_number"]) for r in rows} <= {0, 1, 2}
    # The weights stay in the emulator, never in the user's bucket.
    assert not [k for k in keys if k.endswith((".npz", ".bin", ".safetensors"))]
    assert job["trainingMetrics"]["trainingLoss"] > 0


def test_more_epochs_train_further(clients, job_request):
    bedrock = clients["bedrock"]
    one = bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "1"}))["jobArn"]
    five = bedrock.create_model_customization_job(**job_request(hyperParameters={"epochCount": "5"}))[
        "jobArn"
    ]
    loss_one = wait_for(bedrock, one)["trainingMetrics"]["trainingLoss"]
    loss_five = wait_for(bedrock, five)["trainingMetrics"]["trainingLoss"]
    assert loss_five < loss_one


def test_bad_data_fails_in_validation_with_the_dataset_report_message(clients, bucket, job_request):
    bedrock, s3 = clients["bedrock"], clients["s3"]
    records = [converse_record(*c) for c in COUNTRIES]
    records[3]["messages"].reverse()  # assistant first: breaks the turn order rule
    s3.put_object(Bucket=bucket, Key="bad/train.jsonl", Body=jsonl(records))
    uri = f"s3://{bucket}/bad/train.jsonl"
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(
            **job_request(trainingDataConfig={"s3Uri": uri}, validationDataConfig=None)
        )["jobArn"],
    )
    expected = validate_dataset(uri, model=NOVA, s3_client=s3).failure_message()
    assert job["status"] == "Failed"
    assert job["failureMessage"] == expected
    assert phase(job, "validation") == "Failed"
    assert phase(job, "training") == "NotStarted"
    assert "outputModelArn" not in job
    assert bedrock.list_custom_models()["modelSummaries"] == []


def test_missing_training_object_fails_with_bedrock_s3_message(clients, bucket, job_request):
    bedrock = clients["bedrock"]
    uri = f"s3://{bucket}/nope/train.jsonl"
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(**job_request(trainingDataConfig={"s3Uri": uri}))["jobArn"],
    )
    assert job["status"] == "Failed"
    assert job["failureMessage"] == (
        f"Could not validate GetObject permissions to access Amazon S3 bucket: {bucket} at key nope/train.jsonl"
    )
    assert phase(job, "validation") == "Failed"


def test_missing_output_bucket_fails_with_put_object_message(clients, job_request):
    bedrock = clients["bedrock"]
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(
            **job_request(outputDataConfig={"s3Uri": "s3://no-such-output-bucket/out"})
        )["jobArn"],
    )
    assert job["status"] == "Failed"
    assert job["failureMessage"] == (
        "Amazon S3 perms missing (PutObject): Could not validate PutObject permissions to access "
        "S3 bucket: no-such-output-bucket at key out/.write_access_check_file.tmp"
    )


def test_forced_failure_uses_the_given_message_for_the_next_job_only(emulator, clients, job_request):
    bedrock = clients["bedrock"]
    emulator.set_faults(
        fail_jobs={"next": 1, "message": "Encountered an internal error when processing the request."}
    )
    failed = wait_for(bedrock, bedrock.create_model_customization_job(**job_request())["jobArn"])
    assert failed["status"] == "Failed"
    assert failed["failureMessage"] == "Encountered an internal error when processing the request."
    assert phase(failed, "validation") == "Completed" and phase(failed, "training") == "Failed"
    ok = wait_for(bedrock, bedrock.create_model_customization_job(**job_request())["jobArn"])
    assert ok["status"] == "Completed"


def test_stop_during_training_interrupts_the_trainer(emulator, clients, bucket, job_request):
    bedrock, s3 = clients["bedrock"], clients["s3"]
    # Enough data and epochs that training takes a while; the stop must cut it short.
    many = [converse_record(f"{c} {i}", lang) for i in range(40) for c, lang in COUNTRIES]
    s3.put_object(Bucket=bucket, Key="big/train.jsonl", Body=jsonl(many))
    request = job_request(
        trainingDataConfig={"s3Uri": f"s3://{bucket}/big/train.jsonl"}, hyperParameters={"epochCount": "5"}
    )
    arn = bedrock.create_model_customization_job(**request)["jobArn"]
    wait_for(bedrock, arn, until=lambda j: phase(j, "training") == "InProgress")
    bedrock.stop_model_customization_job(jobIdentifier=arn)
    job = wait_for(bedrock, arn, timeout=10)
    assert job["status"] == "Stopped"
    assert phase(job, "training") == "Stopped"
    assert "trainingMetrics" not in job
    assert not keys_under(s3, bucket, f"output/model-customization-job-{arn.rsplit('/', 1)[1]}/")


def test_time_scale_makes_phases_take_time(emulator, clients, job_request):
    bedrock = clients["bedrock"]
    emulator.set_config(time_scale=0.001)  # 150 s validation -> 0.15 s, 240 s processing -> 0.24 s
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    early = bedrock.get_model_customization_job(jobIdentifier=arn)
    assert early["status"] == "InProgress"
    assert phase(early, "training") == "NotStarted"
    seen = set()

    def record(job):
        seen.add(job["statusDetails"]["dataProcessingDetails"]["status"])
        return job["status"] != "InProgress"

    done = wait_for(bedrock, arn, until=record, timeout=30)
    assert done["status"] == "Completed"
    assert "InProgress" in seen  # the data-processing phase was observable


def test_distillation_and_continued_pre_training_jobs_complete(clients, bucket, job_request):
    bedrock, s3 = clients["bedrock"], clients["s3"]
    prompts = [
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [{"role": "user", "content": [{"text": f"Name a language spoken in {c} ({i})."}]}],
        }
        for i in range(9)
        for c, _ in COUNTRIES
    ]
    s3.put_object(Bucket=bucket, Key="distill/prompts.jsonl", Body=jsonl(prompts))
    distill = bedrock.create_model_customization_job(
        **job_request(
            customizationType="DISTILLATION",
            trainingDataConfig={"s3Uri": f"s3://{bucket}/distill/prompts.jsonl"},
            validationDataConfig=None,
            hyperParameters=None,
            customizationConfig={
                "distillationConfig": {
                    "teacherModelConfig": {"teacherModelIdentifier": "amazon.nova-pro-v1:0"}
                }
            },
        )
    )["jobArn"]
    texts = [{"input": f"{c} is a country where people speak {lang}."} for c, lang in COUNTRIES]
    s3.put_object(Bucket=bucket, Key="cpt/train.jsonl", Body=jsonl(texts))
    cpt = bedrock.create_model_customization_job(
        **job_request(
            baseModelIdentifier="amazon.titan-text-express-v1:0:8k",
            customizationType="CONTINUED_PRE_TRAINING",
            trainingDataConfig={"s3Uri": f"s3://{bucket}/cpt/train.jsonl"},
            validationDataConfig=None,
            hyperParameters={"epochCount": "1"},
        )
    )["jobArn"]
    distilled, pretrained = wait_for(bedrock, distill), wait_for(bedrock, cpt)
    assert distilled["status"] == "Completed", distilled.get("failureMessage")
    assert distilled["customizationType"] == "DISTILLATION"
    assert pretrained["status"] == "Completed", pretrained.get("failureMessage")
    assert pretrained["hyperParameters"]["epochCount"] == "1"
    assert pretrained["hyperParameters"]["batchSize"] == "1"  # Titan's documented default


def test_phases_can_advance_poll_by_poll(emulator, clients, job_request):
    bedrock = clients["bedrock"]
    emulator.set_config(polls_per_phase=2)
    arn = bedrock.create_model_customization_job(**job_request())["jobArn"]
    seen = []
    for _ in range(200):
        job = bedrock.get_model_customization_job(jobIdentifier=arn)
        seen.append(
            (job["status"], phase(job, "validation"), phase(job, "dataProcessing"), phase(job, "training"))
        )
        if job["status"] != "InProgress":
            break
    assert seen[-1][0] == "Completed"
    # Every phase stayed InProgress for at least two polls before the next one began.
    for index, name in enumerate(("validation", "dataProcessing", "training"), start=1):
        assert sum(1 for s in seen if s[index] == "InProgress") >= 2, (name, seen)


def test_one_validation_loss_per_validator(clients, bucket, job_request):
    bedrock, s3 = clients["bedrock"], clients["s3"]
    unseen = [converse_record(f"Atlantis {i}", "Atlantean") for i in range(8)]
    s3.put_object(Bucket=bucket, Key="ft/unseen.jsonl", Body=jsonl(unseen))
    validators = [
        {"s3Uri": f"s3://{bucket}/ft/validation.jsonl"},
        {"s3Uri": f"s3://{bucket}/ft/unseen.jsonl"},
    ]
    job = wait_for(
        bedrock,
        bedrock.create_model_customization_job(
            **job_request(
                validationDataConfig={"validators": validators}, hyperParameters={"epochCount": "4"}
            )
        )["jobArn"],
    )
    assert job["status"] == "Completed", job.get("failureMessage")
    seen, novel = (m["validationLoss"] for m in job["validationMetrics"])
    assert seen < novel  # records like the training data score better than unseen facts
