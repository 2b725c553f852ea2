"""A corpus of broken records: each is rejected with the right rule on the right line, and
nothing else in the file is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ds_helpers import (
    BUCKET,
    COHERE,
    HAIKU,
    LLAMA31,
    LLAMA32_1B,
    LLAMA32_11B,
    NOVA_2_LITE,
    NOVA_LITE,
    NOVA_MICRO,
    SV,
    TITAN_EXPRESS,
    TITAN_IMAGE,
    converse,
    cpt,
    dataset_with,
    distill,
    error_rules,
    haiku,
    image_block,
    image_caption,
    invocation_log,
    pc,
    rft,
    video_block,
)

from airflow_bedrock_ft.datasets import validate_dataset


def _msgs(*pairs: tuple[str, Any]) -> list[dict[str, Any]]:
    return [{"role": role, "content": content} for role, content in pairs]


def _conv(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"schemaVersion": SV, "messages": messages, **extra}


T = [{"text": "hi"}]
A = [{"text": "hello"}]

CASES: list[tuple[str, str, str, Any, Any, str]] = [
    # id, model, customization type, valid-record factory, bad record or raw line, rule
    ("truncated-json", LLAMA31, "FINE_TUNING", pc, b'{"prompt": "a", "completion": "b', "json"),
    ("not-json", LLAMA31, "FINE_TUNING", pc, b"prompt=a completion=b", "json"),
    ("array-line", LLAMA31, "FINE_TUNING", pc, b'["prompt", "completion"]', "record.type"),
    ("string-line", LLAMA31, "FINE_TUNING", pc, b'"just text"', "record.type"),
    ("invalid-utf8", LLAMA31, "FINE_TUNING", pc, b'{"prompt": "caf\xe9", "completion": "x"}', "utf8"),
    ("blank-line", LLAMA31, "FINE_TUNING", pc, b"", "blank_line"),
    ("whitespace-line", LLAMA31, "FINE_TUNING", pc, b"   \t", "blank_line"),
    ("pc-missing-completion", LLAMA31, "FINE_TUNING", pc, {"prompt": "a", "answer": "b"}, "field.required"),
    ("pc-wrong-type", LLAMA31, "FINE_TUNING", pc, {"prompt": "a", "completion": 42}, "field.type"),
    ("pc-empty-completion", COHERE, "FINE_TUNING", pc, {"prompt": "a", "completion": ""}, "empty_text"),
    ("pc-blank-prompt", TITAN_EXPRESS, "FINE_TUNING", pc, {"prompt": "  ", "completion": "b"}, "empty_text"),
    ("pc-mixed-with-converse", LLAMA31, "FINE_TUNING", pc, converse(1), "format.mixed"),
    ("converse-mixed-with-pc", NOVA_LITE, "FINE_TUNING", converse, pc(1), "format.mixed"),
    ("haiku-mixed-with-converse", HAIKU, "FINE_TUNING", haiku, converse(1), "format.mixed"),
    # Converse (Nova / Llama 3.2)
    ("conv-missing-messages", NOVA_LITE, "FINE_TUNING", converse, {"schemaVersion": SV}, "field.required"),
    ("conv-messages-not-list", NOVA_LITE, "FINE_TUNING", converse, _conv("hi"), "field.type"),  # type: ignore[arg-type]
    ("conv-one-message", NOVA_LITE, "FINE_TUNING", converse, _conv(_msgs(("user", T))), "messages.count"),
    ("conv-bad-role", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("bot", A))), "messages.role"),
    ("conv-system-role", LLAMA32_1B, "FINE_TUNING", converse,
     _conv(_msgs(("system", T), ("user", T), ("assistant", A))), "messages.role"),
    ("conv-starts-assistant", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("assistant", A), ("user", T), ("assistant", A))), "messages.first_role"),
    ("conv-no-alternation", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("user", T), ("assistant", A))), "messages.alternation"),
    # The Llama validator in aws-samples does not check alternation; we do.
    ("llama-no-alternation", LLAMA32_1B, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", A), ("assistant", A))), "messages.alternation"),
    ("conv-ends-user", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", A), ("user", T))), "messages.last_role"),
    ("conv-content-string", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", "hi"), ("assistant", A))), "field.type"),
    ("conv-empty-content", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", []), ("assistant", A))), "content.empty"),
    ("conv-empty-text", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", [{"text": ""}]), ("assistant", A))), "empty_text"),
    ("conv-block-without-text", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", [{"document": {}}]), ("assistant", A))), "content.block"),
    ("conv-system-string", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", A)), system="be nice"), "field.type"),
    ("llama-two-system-blocks", LLAMA32_1B, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", A)), system=[{"text": "a"}, {"text": "b"}]), "system.count"),
    ("llama-schema-version", LLAMA32_1B, "FINE_TUNING", converse,
     {**converse(1), "schemaVersion": "bedrock-conversion-2024"}, "schema_version"),
    ("nova-reserved-user", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", [{"text": "User: hi"}]), ("assistant", A))), "reserved_string"),
    ("nova-reserved-eos", NOVA_MICRO, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", [{"text": "done [EOS]"}]))), "reserved_string"),
    # The aws-samples Nova validator skips system text; reserved strings there fail too.
    ("nova-reserved-in-system", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", A)), system=[{"text": "Assistant: be brief"}]), "reserved_string"),
    ("nova-reserved-image-tag", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", [{"text": "look <image> here"}]), ("assistant", A))), "reserved_string"),
    # Media
    ("micro-image", NOVA_MICRO, "FINE_TUNING", converse, converse(1, user_extra=[image_block()]),
     "media.not_supported"),
    ("llama-text-model-image", LLAMA32_1B, "FINE_TUNING", converse, converse(1, user_extra=[image_block()]),
     "media.not_supported"),
    ("llama-vision-video", LLAMA32_11B, "FINE_TUNING", converse, converse(1, user_extra=[video_block()]),
     "media.not_supported"),
    ("image-bad-format", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[image_block(fmt="bmp")]), "media.format"),
    ("video-bad-format", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[video_block(fmt="avi")]), "media.format"),
    ("image-http-uri", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[image_block(uri="https://example.com/a.png")]), "media.uri"),
    ("image-bad-chars", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[image_block(uri=f"s3://{BUCKET}/a b?.png")]), "media.uri"),
    ("image-other-bucket", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[image_block(uri="s3://elsewhere/a.png")]), "media.bucket"),
    ("image-inline-bytes", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[{"image": {"format": "png", "source": {"bytes": "aGk="}}}]), "media.source"),
    ("image-in-assistant", NOVA_LITE, "FINE_TUNING", converse,
     _conv(_msgs(("user", T), ("assistant", [image_block(), {"text": "a cat"}]))), "media.assistant"),
    ("too-many-images", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[image_block(uri=f"s3://{BUCKET}/i{k}.png") for k in range(11)]), "media.count"),
    ("two-videos", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[video_block(), video_block()]), "media.count"),
    ("image-and-video", NOVA_LITE, "FINE_TUNING", converse,
     converse(1, user_extra=[image_block(), video_block()]), "media.mixed"),
    # Claude 3 Haiku
    ("haiku-reserved-human", HAIKU, "FINE_TUNING", haiku,
     {"messages": _msgs(("user", "hi\nHuman: again"), ("assistant", "ok"))}, "reserved_string"),
    ("haiku-reserved-in-system", HAIKU, "FINE_TUNING", haiku,
     {"system": "x\nAssistant: y", "messages": _msgs(("user", "hi"), ("assistant", "ok"))}, "reserved_string"),
    ("haiku-blocks-content", HAIKU, "FINE_TUNING", haiku,
     {"messages": _msgs(("user", [{"text": "hi"}]), ("assistant", "ok"))}, "field.type"),
    ("haiku-system-list", HAIKU, "FINE_TUNING", haiku,
     {"system": ["x"], "messages": _msgs(("user", "hi"), ("assistant", "ok"))}, "field.type"),
    ("haiku-ends-user", HAIKU, "FINE_TUNING", haiku,
     {"messages": _msgs(("user", "a"), ("assistant", "b"), ("user", "c"))}, "messages.last_role"),
    ("haiku-same-role-twice", HAIKU, "FINE_TUNING", haiku,
     {"messages": _msgs(("user", "a"), ("user", "b"), ("assistant", "c"))}, "messages.alternation"),
    ("haiku-empty-content", HAIKU, "FINE_TUNING", haiku,
     {"messages": _msgs(("user", ""), ("assistant", "c"))}, "empty_text"),
    # Continued pre-training
    ("cpt-missing-input", TITAN_EXPRESS, "CONTINUED_PRE_TRAINING", cpt, {"text": "x"}, "field.required"),
    ("cpt-input-not-string", TITAN_EXPRESS, "CONTINUED_PRE_TRAINING", cpt, {"input": ["x"]}, "field.type"),
    ("cpt-got-pc", TITAN_EXPRESS, "CONTINUED_PRE_TRAINING", cpt, pc(1), "format.mixed"),
    # Distillation prompts
    ("distill-no-schema-version", NOVA_LITE, "DISTILLATION", distill,
     {"messages": _msgs(("user", T))}, "field.required"),
    ("distill-extra-top-level", LLAMA31, "DISTILLATION", distill, {**distill(1), "id": 7}, "unknown_field"),
    ("distill-multi-turn-llama", LLAMA31, "DISTILLATION", distill,
     _conv(_msgs(("user", T), ("assistant", A), ("user", T))), "messages.count"),
    ("distill-empty-system", NOVA_LITE, "DISTILLATION", distill, {**distill(1), "system": []}, "system.count"),
    ("distill-two-blocks", NOVA_LITE, "DISTILLATION", distill,
     _conv(_msgs(("user", [{"text": "a"}, {"text": "b"}]))), "content.count"),
    ("distill-image", NOVA_LITE, "DISTILLATION", distill,
     _conv(_msgs(("user", [image_block()]))), "media.not_supported"),
    ("distill-starts-assistant", NOVA_LITE, "DISTILLATION", distill,
     _conv(_msgs(("assistant", A), ("user", T))), "messages.first_role"),
    # RFT
    ("rft-ends-assistant", NOVA_2_LITE, "REINFORCEMENT_FINE_TUNING", rft,
     {"messages": _msgs(("user", "q"), ("assistant", "a")), "reference_answer": 1}, "messages.last_role"),
    ("rft-system-late", NOVA_2_LITE, "REINFORCEMENT_FINE_TUNING", rft,
     {"messages": _msgs(("user", "q"), ("system", "s"), ("user", "q")), "reference_answer": 1}, "messages.role"),
    ("rft-no-user", NOVA_2_LITE, "REINFORCEMENT_FINE_TUNING", rft,
     {"messages": _msgs(("system", "s")), "reference_answer": 1}, "messages.no_user"),
    ("rft-empty-messages", NOVA_2_LITE, "REINFORCEMENT_FINE_TUNING", rft,
     {"messages": [], "reference_answer": 1}, "messages.count"),
    # Image captions
    ("caption-too-short", TITAN_IMAGE, "FINE_TUNING", image_caption,
     {"image-ref": f"s3://{BUCKET}/a.png", "caption": "ab"}, "caption.length"),
    ("caption-bad-image-type", TITAN_IMAGE, "FINE_TUNING", image_caption,
     {"image-ref": f"s3://{BUCKET}/a.tiff", "caption": "a red bike"}, "media.format"),
    ("caption-not-s3", TITAN_IMAGE, "FINE_TUNING", image_caption,
     {"image-ref": "/local/a.png", "caption": "a red bike"}, "media.uri"),
]


@pytest.mark.parametrize(("model", "ctype", "make", "bad", "rule"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_record_is_reported_with_rule_and_line(tmp_path: Path, model: str, ctype: str, make: Any,
                                                      bad: Any, rule: str) -> None:
    path = dataset_with(tmp_path / "train.jsonl", model, make, bad, at=3, ctype=ctype)
    report = validate_dataset(str(path), model=model, customization_type=ctype, media_bucket=BUCKET)
    assert not report.ok
    found = error_rules(report)
    assert (rule, 3) in found, report.format_text()
    # Only the broken line is reported: the valid records around it pass.
    assert {line for _, line in found} == {3}, report.format_text()
    problem = next(p for p in report.problems if p.rule == rule)
    assert problem.file == str(path)
    if bad != b"" and not (isinstance(bad, bytes) and bad.isspace()):
        assert problem.excerpt  # the start of the line, to find it in the file
    assert report.counts_by_rule[rule] >= 1


def test_unknown_field_is_a_warning_for_fine_tuning(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", NOVA_LITE, converse, {**converse(1), "id": "x"}, at=2)
    report = validate_dataset(str(path), model=NOVA_LITE)
    assert report.ok
    assert [(p.rule, p.line, p.severity) for p in report.problems] == [("unknown_field", 2, "warning")]


def test_image_and_video_records_in_one_dataset(tmp_path: Path) -> None:
    records = [converse(i) for i in range(8)]
    records[2] = converse(2, user_extra=[image_block()])
    records[5] = converse(5, user_extra=[video_block()])
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"".join(__import__("orjson").dumps(r) + b"\n" for r in records))
    report = validate_dataset(str(path), model=NOVA_LITE, media_bucket=BUCKET)
    assert error_rules(report) == {("media.mixed", 6)}
    assert report.totals["train"].images == 1
    assert report.totals["train"].videos == 1


def test_valid_multimodal_record_passes(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", NOVA_LITE, lambda i: converse(i, user_extra=[image_block()]))
    report = validate_dataset(str(path), model=NOVA_LITE, media_bucket=BUCKET)
    assert report.ok, report.format_text()
    assert report.totals["train"].images == report.totals["train"].records == 10


def test_llama_vision_images_count_as_tokens(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", LLAMA32_11B, lambda i: converse(i, user_extra=[image_block()]),
                        n=100)
    report = validate_dataset(str(path), model=LLAMA32_11B)
    assert report.ok, report.format_text()
    assert report.totals["train"].input_tokens >= 100 * 1601


def test_rft_without_reference_answer_is_a_warning(tmp_path: Path) -> None:
    bad = {"messages": _msgs(("user", "q"))}
    path = dataset_with(tmp_path / "t.jsonl", NOVA_2_LITE, rft, bad, at=4, ctype="REINFORCEMENT_FINE_TUNING")
    report = validate_dataset(str(path), model=NOVA_2_LITE, customization_type="REINFORCEMENT_FINE_TUNING")
    assert report.ok
    assert [(p.rule, p.line) for p in report.warnings] == [("rft.reference_answer", 4)]


def test_invocation_log_rules(tmp_path: Path) -> None:
    multi = invocation_log(1)
    multi["input"]["inputBodyJson"]["messages"] = _msgs(("user", T), ("assistant", A), ("user", T))
    modal = invocation_log(2)
    modal["input"]["inputBodyJson"]["messages"] = _msgs(("user", [image_block(), {"text": "what?"}]))
    missing = {k: v for k, v in invocation_log(3).items() if k != "output"}
    lines = [invocation_log(i) for i in range(100)]
    lines[4], lines[9], lines[19] = multi, modal, missing
    path = tmp_path / "logs.json"
    path.write_bytes(b"".join(__import__("orjson").dumps(r) + b"\n" for r in lines))
    report = validate_dataset(str(path), model=NOVA_LITE, customization_type="DISTILLATION",
                              data_format="invocation-logs")
    assert error_rules(report) == {("invocation_log.multi_turn", 5), ("invocation_log.multimodal", 10),
                                   ("field.required", 20)}
    assert "file.extension" not in report.counts_by_rule  # logs are .json(.gz), not .jsonl


def test_record_count_min_and_max(tmp_path: Path) -> None:
    few = dataset_with(tmp_path / "few.jsonl", NOVA_LITE, converse, n=7)
    report = validate_dataset(str(few), model=NOVA_LITE)
    assert error_rules(report) == {("record_count.min", None)}
    assert "at least 8" in report.problems[0].message
    assert report.failure_message().startswith("Data validation failed for the training data. (record_count.min")

    many = dataset_with(tmp_path / "many.jsonl", HAIKU, haiku, n=10_001)
    report = validate_dataset(str(many), model=HAIKU)
    assert error_rules(report) == {("record_count.max", None)}


def test_train_plus_validation_total(tmp_path: Path) -> None:
    train = dataset_with(tmp_path / "train.jsonl", HAIKU, haiku, n=9_500)
    val = dataset_with(tmp_path / "validation.jsonl", HAIKU, haiku, n=600)
    report = validate_dataset(str(train), str(val), model=HAIKU)
    assert error_rules(report) == {("record_count.total", None)}
    assert report.totals["train"].records == 9_500
    assert report.totals["validation"].records == 600


def test_validation_limits_are_applied_to_the_validation_split(tmp_path: Path) -> None:
    """Regression: the aws-samples Haiku validator checks the validation file with training limits."""
    train = dataset_with(tmp_path / "train.jsonl", HAIKU, haiku, n=100)
    val = dataset_with(tmp_path / "validation.jsonl", HAIKU, haiku, n=1_001)
    report = validate_dataset(str(train), str(val), model=HAIKU)
    assert [(p.file, p.rule) for p in report.errors] == [("<validation>", "record_count.max")]


def test_validation_not_allowed_for_image_models(tmp_path: Path) -> None:
    train = dataset_with(tmp_path / "train.jsonl", TITAN_IMAGE, image_caption)
    val = dataset_with(tmp_path / "validation.jsonl", TITAN_IMAGE, image_caption, n=5)
    report = validate_dataset(str(train), str(val), model=TITAN_IMAGE)
    assert "validation.not_allowed" in report.counts_by_rule


@pytest.mark.parametrize(("batch_size", "limit"), [("1", 4096), ("2", 2048), ("4", 2048)])
def test_titan_token_limit_depends_on_batch_size(tmp_path: Path, batch_size: str, limit: int) -> None:
    # 3,000 tokens at Titan's 6 characters per token: fine at batch 1, too long at 2-4.
    long_prompt = "x" * (3000 * 6)
    path = dataset_with(tmp_path / "t.jsonl", TITAN_EXPRESS, pc, pc(0, prompt=long_prompt, completion="ok"))
    report = validate_dataset(str(path), model=TITAN_EXPRESS, hyperparameters={"batchSize": batch_size})
    assert report.token_limit == limit
    assert ("tokens.max", 3) in error_rules(report) if limit < 3001 else report.ok


def test_llama_input_and_output_token_limits(tmp_path: Path) -> None:
    big = "word " * 16_001  # 80,005 chars / 4 = 20,002 tokens
    path = dataset_with(tmp_path / "t.jsonl", LLAMA31, pc, pc(0, prompt=big), at=2, n=100)
    report = validate_dataset(str(path), model=LLAMA31)
    assert error_rules(report) == {("tokens.input", 2), ("tokens.max", 2)}
    problem = next(p for p in report.problems if p.rule == "tokens.input")
    assert "20002 exceeds limit of 16000" in problem.message


def test_haiku_token_estimate_uses_three_chars_per_token(tmp_path: Path) -> None:
    text = "y" * 96_003  # 32,001 tokens at 3 characters per token
    bad = {"messages": _msgs(("user", text), ("assistant", "ok"))}
    path = dataset_with(tmp_path / "t.jsonl", HAIKU, haiku, bad, at=5)
    report = validate_dataset(str(path), model=HAIKU)
    assert error_rules(report) == {("tokens.max", 5)}


def test_rft_max_prompt_length_hyperparameter(tmp_path: Path) -> None:
    path = dataset_with(tmp_path / "t.jsonl", NOVA_2_LITE, rft, ctype="REINFORCEMENT_FINE_TUNING")
    report = validate_dataset(str(path), model=NOVA_2_LITE, customization_type="REINFORCEMENT_FINE_TUNING",
                              hyperparameters={"maxPromptLength": "5"})
    assert report.counts_by_rule.get("tokens.input") == 100


def test_file_size_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from airflow_bedrock_ft.core.models import CustomizationType, resolve_model

    spec = resolve_model(HAIKU)
    custom = spec.customizations[CustomizationType.FINE_TUNING]
    small = dataclasses.replace(custom, limits=dataclasses.replace(custom.limits, max_train_bytes=4_000,
                                                                   max_validation_bytes=1_000))
    monkeypatch.setitem(spec.customizations, CustomizationType.FINE_TUNING, small)  # type: ignore[arg-type]
    train = dataset_with(tmp_path / "train.jsonl", HAIKU, haiku, n=40)
    val = dataset_with(tmp_path / "validation.jsonl", HAIKU, haiku, n=40)
    report = validate_dataset(str(train), str(val), model=HAIKU)
    # Reading stops just past each limit, with one problem naming the file and the limit.
    assert {(p.file, p.rule) for p in report.errors} == {(str(train), "file_size.max"),
                                                         (str(val), "file_size.max")}
    train_problem, val_problem = report.errors
    assert "accepts (4000 bytes)" in train_problem.message
    assert "accepts (1000 bytes)" in val_problem.message
    assert report.counts_by_rule["file_size.max"] == 2
    assert report.totals["train"].bytes > 4_000


def test_colons_and_brackets_that_are_not_reserved_pass(tmp_path: Path) -> None:
    ok = _conv(_msgs(("user", [{"text": "Time: 10:30, see https://x.org [1] <b>"}]),
                     ("assistant", [{"text": "user: lower case is fine; so is Users: and [EOS"}])))
    path = dataset_with(tmp_path / "t.jsonl", NOVA_LITE, converse, ok, at=2)
    assert validate_dataset(str(path), model=NOVA_LITE).problems == []


def test_reserved_string_in_a_later_block(tmp_path: Path) -> None:
    bad = _conv(_msgs(("user", [{"text": "first part"}, {"text": "then BOT: something"}]), ("assistant", A)))
    path = dataset_with(tmp_path / "t.jsonl", NOVA_LITE, converse, bad, at=6)
    report = validate_dataset(str(path), model=NOVA_LITE)
    assert error_rules(report) == {("reserved_string", 6)}
    assert "'BOT:'" in report.errors[0].message and "messages[0].content[1].text" in report.errors[0].message
