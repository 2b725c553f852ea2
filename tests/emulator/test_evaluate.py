"""Holdout evaluation over real aiobotocore HTTP against the emulator: a trained custom model
against its base model, throttling, failures, bad models, the rate limit and the command line."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_bedrock_ft.evaluation import (
    EvaluationConfig,
    FailureShareExceededError,
    ModelInvocationError,
    ScorerError,
    run_evaluation,
)
from airflow_bedrock_ft.evaluation.cli import main as evaluate_main

from .helpers import COUNTRIES, NOVA, wait_for

BASE = "amazon.nova-micro-v1:0"


def boom(prediction: str, reference: str) -> float:
    """A user scorer that fails on one answer."""
    if "Spain" in reference:
        raise KeyError("no score for Spain")
    return 1.0


def _run(emulator: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("retry_delay", 0.01)
    s3_client = kwargs.pop("s3_client", None)
    return run_evaluation(EvaluationConfig(**kwargs), s3_client=s3_client, region=emulator.region,
                          endpoint_url=emulator.endpoint_url)


def _holdout(tmp_path: Path, n: int) -> str:
    path = tmp_path / "holdout.jsonl"
    with path.open("w") as f:
        for i in range(n):
            country, language = COUNTRIES[i % len(COUNTRIES)]
            f.write(json.dumps({"prompt": f"What language is spoken in {country}? ({i})",
                                "completion": f"The main language of {country} is {language}."}) + "\n")
    return str(path)


def _lines(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_trained_model_beats_its_base_model(emulator: Any, clients: dict[str, Any], bucket: str,
                                            job_request: Any) -> None:
    bedrock, s3 = clients["bedrock"], clients["s3"]
    job = wait_for(bedrock, bedrock.create_model_customization_job(
        **job_request(hyperParameters={"epochCount": "5", "learningRate": "0.0001"}))["jobArn"])
    model_arn = job["outputModelArn"]
    holdout = f"s3://{bucket}/ft/validation.jsonl"

    # A custom model with nothing serving it cannot be invoked: said before any runtime request.
    emulator.stats(clear=True)
    with pytest.raises(ModelInvocationError) as exc:
        _run(emulator, model=model_arn, data=holdout, s3_client=s3)
    assert f"Custom model {model_arn} has no Active custom model deployment" in str(exc.value)
    assert emulator.stats()["runtime_requests"] == 0

    emulator.set_config(time_scale=1.0)  # deployment 480 s: stays Creating
    creating = bedrock.create_custom_model_deployment(modelDeploymentName="eval-creating", modelArn=model_arn)
    with pytest.raises(ModelInvocationError) as exc:
        _run(emulator, model=creating["customModelDeploymentArn"], data=holdout, s3_client=s3)
    assert f"Model candidate = {creating['customModelDeploymentArn']} cannot be invoked" in str(exc.value)
    assert "ValidationException" in str(exc.value) and "not active" in str(exc.value)
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=creating["customModelDeploymentArn"])

    emulator.set_config(time_scale=0.001)
    dep_arn = bedrock.create_custom_model_deployment(modelDeploymentName="eval-dep",
                                                     modelArn=model_arn)["customModelDeploymentArn"]
    deadline = time.monotonic() + 10
    while bedrock.get_custom_model_deployment(customModelDeploymentIdentifier=dep_arn)["status"] != "Active":
        assert time.monotonic() < deadline
        time.sleep(0.05)

    emulator.stats(clear=True)
    output = f"s3://{bucket}/eval/results.jsonl"
    summary = _run(emulator, model=model_arn, baselines=[f"base={NOVA}"], data=holdout, output=output,
                   metrics=["exact_match", "token_f1", "rouge_l", "chrf"], max_tokens=24, concurrency=4,
                   s3_client=s3)
    candidate, base = summary.models
    assert candidate.invoked_as == dep_arn  # the custom model through its deployment
    assert base.invoked_as == BASE  # the base model by its on-demand id, not the customization id
    assert summary.examples == 8 and candidate.succeeded == base.succeeded == 8
    for metric in ("token_f1", "rouge_l", "chrf"):
        assert candidate.metrics[metric].mean > base.metrics[metric].mean, metric
        diff = summary.comparison("base", metric).difference
        assert diff.mean == pytest.approx(candidate.metrics[metric].mean - base.metrics[metric].mean)
        assert diff.low > 0, (metric, diff)
    assert summary.requests == emulator.stats()["runtime_requests"] == 16

    body = s3.get_object(Bucket=bucket, Key="eval/results.jsonl")["Body"].read().decode()
    rows = [json.loads(line) for line in body.splitlines()]
    assert sorted((r["index"], r["model"]) for r in rows) == sorted(
        (i, m) for i in range(8) for m in ("candidate", "base"))
    france = next(r for r in rows if r["index"] == 0 and r["model"] == "candidate")
    assert france["line"] == 1 and france["file"] == holdout
    assert france["reference"] == f"The main language of {COUNTRIES[0][0]} is {COUNTRIES[0][1]}."
    assert france["error"] is None and set(france["scores"]) == {"exact_match", "token_f1", "rouge_l", "chrf"}
    table = summary.format_table()
    assert "candidate - base" in table and "(invoked as amazon.nova-micro-v1:0)" in table
    json.dumps(summary.to_dict())


def test_throttling_is_retried_counted_and_never_changes_a_score(emulator: Any, tmp_path: Path) -> None:
    data = _holdout(tmp_path, 40)
    clean_out, throttled_out = str(tmp_path / "clean.jsonl"), str(tmp_path / "throttled.jsonl")
    clean = _run(emulator, model=BASE, data=data, max_tokens=12, output=clean_out)
    assert clean.candidate.throttled == clean.candidate.retried == 0

    emulator.set_faults(throttle={"rate": 0.4, "operations": ["Converse"]}, seed=11)
    emulator.stats(clear=True)
    throttled = _run(emulator, model=BASE, data=data, max_tokens=12, output=throttled_out)
    result = throttled.candidate
    stats = emulator.stats()
    assert result.throttled == stats["faulted"]["Converse"] > 0
    assert result.retried == result.throttled and result.failed == 0 and result.succeeded == 40
    assert result.requests == stats["runtime_requests"] == 40 + result.throttled
    for metric in throttled.metrics:
        assert throttled.candidate.metrics[metric] == clean.candidate.metrics[metric]
    by_index = {r["index"]: r for r in _lines(clean_out)}
    rows = _lines(throttled_out)
    assert any(r["attempts"] > 1 for r in rows)
    assert all(r["scores"] == by_index[r["index"]]["scores"] for r in rows)


def test_failures_are_counted_and_too_many_fail_the_run(emulator: Any, tmp_path: Path) -> None:
    data = _holdout(tmp_path, 40)
    out = str(tmp_path / "out.jsonl")
    emulator.set_faults(throttle={"rate": 0.5, "operations": ["Converse"]}, seed=5)
    with pytest.raises(FailureShareExceededError) as exc:
        _run(emulator, model=BASE, data=data, max_attempts=1, max_tokens=8, output=out)
    summary = exc.value.summary
    result = summary.candidate
    assert 0 < result.failed < 40 and result.failed + result.succeeded == 40
    assert "more than 5.0% allowed" in str(exc.value) and f"{result.failed} of 40 examples failed" in str(exc.value)
    assert str(exc.value).count("ThrottlingException") == 1  # the first failure is shown
    # Failed examples are left out of the mean, never scored as zero.
    assert result.metrics["exact_match"].n == result.succeeded
    rows = _lines(out)
    failed = [r for r in rows if r["error"] is not None]
    assert len(failed) == result.failed and all(r["scores"] is None for r in failed)
    assert {r["error"]["code"] for r in failed} == {"ThrottlingException"}

    emulator.set_faults(throttle={"rate": 0.5, "operations": ["Converse"]}, seed=5)
    tolerant = _run(emulator, model=BASE, data=data, max_attempts=1, max_tokens=8, max_failure_share=1.0)
    assert tolerant.candidate.failed > 0 and len(tolerant.candidate.failure_examples) == min(10, tolerant.candidate.failed)


@pytest.mark.parametrize(
    ("model", "code"),
    [("acme.unknown-v1:0", "ValidationException"),
     ("arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/abcdefghijkl", "ResourceNotFoundException")],
)
def test_a_model_that_cannot_answer_fails_at_the_first_request(emulator: Any, tmp_path: Path, model: str,
                                                              code: str) -> None:
    data = _holdout(tmp_path, 30)
    emulator.stats(clear=True)
    with pytest.raises(ModelInvocationError) as exc:
        _run(emulator, model=model, data=data)
    assert f"Model candidate = {model} cannot be invoked: the first request ({data}:1) failed with {code}" in str(exc.value)
    assert emulator.stats()["runtime_requests"] == 1


def test_scorer_error_names_the_example(emulator: Any, tmp_path: Path) -> None:
    data = _holdout(tmp_path, 5)
    with pytest.raises(ScorerError) as exc:
        _run(emulator, model=BASE, data=data, metrics=[f"{__name__}:boom"], max_tokens=4)
    assert f"raised KeyError on example {data}:2" in str(exc.value) and "no score for Spain" in str(exc.value)


def test_rate_limit_holds_as_seen_by_the_endpoint(emulator: Any, tmp_path: Path) -> None:
    data = _holdout(tmp_path, 50)
    emulator.stats(clear=True)
    started = time.monotonic()
    summary = _run(emulator, model=BASE, data=data, rate=40.0, concurrency=8, max_tokens=4)
    elapsed = time.monotonic() - started
    stats = emulator.stats()
    assert stats["runtime_requests"] == summary.requests == 50
    assert stats["runtime_rate"] <= 40.0 * 1.05, stats
    assert elapsed >= 49 / 40.0


def test_command_prints_table_and_json(emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _holdout(tmp_path, 10)
    common = ["--data", data, "--endpoint-url", emulator.endpoint_url, "--region", emulator.region,
              "--max-tokens", "8"]
    assert evaluate_main(["--model", NOVA, "--baseline", "titan=amazon.titan-text-express-v1",
                          "--metric", "token_f1", "--metric", "chrf", *common]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == ["token_f1", "chrf"]
    assert [line.split()[0] for line in table.splitlines()[2:5]] == ["candidate", "titan", "candidate"]
    assert "candidate - titan" in table and "10 examples in" in table

    out = tmp_path / "sub" / "results.jsonl"
    assert evaluate_main(["--model", NOVA, "--json", "--concurrency", "2", "--output", str(out), *common]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["examples"] == 10 and doc["models"][0]["invoked_as"] == BASE
    assert set(doc["models"][0]["metrics"]) == {"exact_match", "token_f1", "rouge_l", "chrf"}
    assert len(out.read_text().splitlines()) == 10


def test_command_bad_input(emulator: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _holdout(tmp_path, 3)
    common = ["--endpoint-url", emulator.endpoint_url, "--region", emulator.region]
    emulator.stats(clear=True)
    assert evaluate_main(["--model", BASE, "--data", data, "--metric", "bleu", *common]) == 2
    assert "Unknown metric 'bleu'" in capsys.readouterr().err
    bad = tmp_path / f"bad-{uuid.uuid4().hex[:6]}.jsonl"
    bad.write_text('{"prompt": "p", "completion": "c"}\n{"input": "x"}\n')
    assert evaluate_main(["--model", BASE, "--data", str(bad), *common]) == 1
    assert f"{bad}:2: the record is continued pre-training" in capsys.readouterr().err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert evaluate_main(["--model", BASE, "--data", str(empty), *common]) == 1
    assert "holds no records" in capsys.readouterr().err
    # Records are read ahead in batches: a bad record among the first ones stops the run before any request.
    assert emulator.stats()["runtime_requests"] == 0
