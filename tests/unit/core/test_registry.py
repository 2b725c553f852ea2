"""Registry tag encoding and records: any text round-trips through values that meet the tag rules."""

from __future__ import annotations

import re

import botocore.session
import pytest

from airflow_bedrock_ft.core.registry import (
    TAG_PREFIX,
    ModelRecord,
    RegistryError,
    decode_scores,
    decode_tags,
    encode_scores,
    encode_tags,
    validate_name,
)

_MODEL = botocore.session.get_session().get_service_model("bedrock")
VALUE = _MODEL.shape_for("TagValue").metadata
KEY = _MODEL.shape_for("TagKey").metadata


def _valid(tags: dict[str, str]) -> None:
    for key, value in tags.items():
        assert KEY["min"] <= len(key) <= KEY["max"] and re.fullmatch(KEY["pattern"], key), key
        assert len(value) <= VALUE["max"] and re.fullmatch(VALUE["pattern"], value), value


@pytest.mark.parametrize("text", [
    "", "production", "manual__2026-01-01T00:00:00.123456+00:00",
    "arn:aws:bedrock:us-east-1:123456789012:custom-model/amazon.nova-micro-v1:0:128k/abcdefghijkl",
    "b64:looks encoded", " leading space", "tab\there", "new\nline", "ünïcødé ✓", "{\"json\": [1, 2]}",
    "x" * 256, "x" * 257, "y" * 1000, "é" * 400, "a,b;c&d#e%f",
])
def test_any_value_round_trips_through_valid_tags(text: str) -> None:
    key = TAG_PREFIX + "run-id"
    tags = encode_tags({key: text})
    _valid(tags)
    assert decode_tags(tags) == {key: text}


def test_plain_values_stay_readable_and_long_ones_continue_in_numbered_keys() -> None:
    key = TAG_PREFIX + "dag-id"
    assert encode_tags({key: "my_dag"}) == {key: "my_dag"}
    tags = encode_tags({key: "z" * 600})
    assert list(tags) == [key, key + "/1", key + "/2"]
    assert [len(v) for v in tags.values()] == [256, 256, 88]
    assert encode_tags({key: "odd,value"})[key].startswith("b64:")


def test_other_tags_pass_through_untouched() -> None:
    tags = {"team": "b64:not ours", "team/1": "x", TAG_PREFIX + "stage": "production"}
    assert decode_tags(tags) == tags


def test_bad_keys_are_refused() -> None:
    with pytest.raises(RegistryError, match="tag key"):
        encode_tags({"bad,key": "v"})
    with pytest.raises(RegistryError, match="tag key"):
        encode_tags({TAG_PREFIX + "x/1": "v"})


def test_scores_are_readable_pairs_or_json() -> None:
    scores = {"rouge_l": 0.4123456789, "exact_match": 0.5, "examples": 200}
    text = encode_scores(scores)
    assert text == "rouge_l=0.4123456789 exact_match=0.5 examples=200"
    assert decode_scores(text) == scores
    odd = {"token f1 (macro)": 0.3, "note": "a=b"}
    assert encode_scores(odd).startswith("{")
    assert decode_scores(encode_scores(odd)) == odd
    assert decode_scores(encode_scores({"judge": "good"})) == {"judge": "good"}
    assert decode_scores("") == {} and decode_scores(None) == {}


def test_record_from_tags() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:custom-model/m/abc"
    tags = encode_tags({
        TAG_PREFIX + "stage": "production", TAG_PREFIX + "scope": "support",
        TAG_PREFIX + "scores": "f1=0.5", TAG_PREFIX + "record/ticket": "OPS 12",
    })
    rec = ModelRecord.from_tags(arn, {**tags, "unrelated": "x"})
    assert rec is not None
    assert (rec.stage, rec.scope, rec.scores, rec.extra) == ("production", "support", {"f1": 0.5}, {"ticket": "OPS 12"})
    assert ModelRecord.from_tags(arn, {"unrelated": "x"}) is None


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "x" * 64, None, "prod:1"])
def test_scope_and_stage_names_are_checked(name: object) -> None:
    with pytest.raises(RegistryError, match="scope"):
        validate_name(name, "scope")


def test_good_names_pass() -> None:
    assert validate_name("support-bot_v2.1", "scope") == "support-bot_v2.1"
