"""Reading holdouts in every training format, and the errors bad holdouts give."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from airflow_bedrock_ft.evaluation.holdout import HoldoutError, read_holdout


def write(path: Path, records: list, raw: str | None = None) -> str:
    path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def test_prompt_completion(tmp_path: Path) -> None:
    src = write(tmp_path / "h.jsonl", [{"prompt": "Capital of France?", "completion": "Paris"},
                                       {"prompt": "Capital of Spain?", "completion": "Madrid"}])
    examples = list(read_holdout(src))
    assert [(e.index, e.line, e.reference) for e in examples] == [(0, 1, "Paris"), (1, 2, "Madrid")]
    assert examples[0].messages == ({"role": "user", "content": [{"text": "Capital of France?"}]},)
    assert examples[0].system == () and examples[0].location == f"{src}:1"


def test_converse_multi_turn_keeps_history_and_takes_last_answer(tmp_path: Path) -> None:
    record = {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}]},
            {"role": "assistant", "content": [{"text": "Hello"}]},
            {"role": "user", "content": [{"text": "Capital of Italy?"}]},
            {"role": "assistant", "content": [{"text": "Rome"}]},
        ],
    }
    (example,) = read_holdout(write(tmp_path / "c.jsonl", [record]))
    assert example.system == ({"text": "Be brief."},)
    assert [m["role"] for m in example.messages] == ["user", "assistant", "user"]
    assert example.prompt_text == "Capital of Italy?" and example.reference == "Rome"


def test_anthropic_string_messages_become_text_blocks(tmp_path: Path) -> None:
    record = {"system": "Be brief.", "messages": [{"role": "user", "content": "Capital of Japan?"},
                                                  {"role": "assistant", "content": "Tokyo"}]}
    (example,) = read_holdout(write(tmp_path / "a.jsonl", [record]))
    assert example.system == ({"text": "Be brief."},)
    assert example.messages == ({"role": "user", "content": [{"text": "Capital of Japan?"}]},)
    assert example.reference == "Tokyo"


def test_rft_chat_with_reference_answer(tmp_path: Path) -> None:
    record = {"messages": [{"role": "system", "content": "Solve."}, {"role": "user", "content": "2+2?"}],
              "reference_answer": {"value": 4}}
    (example,) = read_holdout(_gz(tmp_path / "r.jsonl.gz", [record]))  # gzip is detected by content
    assert example.system == ({"text": "Solve."},)
    assert example.reference == '{"value":4}'


def _gz(path: Path, records: list) -> str:
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    return str(path)


def test_folder_is_read_in_name_order(tmp_path: Path) -> None:
    write(tmp_path / "b.jsonl", [{"prompt": "2", "completion": "b"}])
    write(tmp_path / "a.jsonl", [{"prompt": "1", "completion": "a"}])
    assert [e.reference for e in read_holdout(str(tmp_path))] == ["a", "b"]


def test_record_of_another_format_names_file_and_line(tmp_path: Path) -> None:
    src = write(tmp_path / "mixed.jsonl", [
        {"prompt": "p", "completion": "c"},
        {"prompt": "p", "completion": "c"},
        {"schemaVersion": "bedrock-conversation-2024",
         "messages": [{"role": "user", "content": [{"text": "q"}]}, {"role": "assistant", "content": [{"text": "a"}]}]},
    ])
    with pytest.raises(HoldoutError) as exc:
        list(read_holdout(src))
    assert exc.value.file == src and exc.value.line == 3
    assert str(exc.value).startswith(f"{src}:3: the record is Converse (bedrock-conversation-2024) but the "
                                     "holdout's first record is prompt/completion")


@pytest.mark.parametrize(
    ("records", "line", "message"),
    [
        ([{"input": "just text"}], 1, "the record is continued pre-training; a holdout must hold prompts"),
        ([{"prompt": "p", "completion": "c"}, {"prompt": "", "completion": "c"}], 2, "'prompt' must be a non-empty string"),
        ([{"prompt": "p", "completion": 3}], 1, "'completion' (the reference answer) must be a string"),
        ([{"schemaVersion": "bedrock-conversation-2024",
           "messages": [{"role": "user", "content": [{"text": "q"}]}]}], 1, "no reference answer"),
        ([{"messages": [{"role": "assistant", "content": [{"text": "a"}]}]}], 1, "must start with a user turn"),
        ([{"messages": [{"role": "robot", "content": "a"}]}], 1, "messages[0].role must be 'user' or 'assistant'"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path: Path, records: list, line: int, message: str) -> None:
    src = write(tmp_path / "bad.jsonl", records)
    with pytest.raises(HoldoutError) as exc:
        list(read_holdout(src))
    assert str(exc.value).startswith(f"{src}:{line}: ")
    assert message in str(exc.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    src = write(tmp_path / "j.jsonl", [], raw='{"prompt": "p", "completion": "c"}\n{"prompt": \n')
    with pytest.raises(HoldoutError) as exc:
        list(read_holdout(src))
    assert exc.value.line == 2 and str(exc.value).startswith(f"{src}:2: ")


def test_empty_and_missing_holdouts(tmp_path: Path) -> None:
    empty = write(tmp_path / "empty.jsonl", [], raw="")
    with pytest.raises(HoldoutError, match=f"the holdout {empty} holds no records"):
        list(read_holdout(empty))
    with pytest.raises(HoldoutError, match="No such file or folder"):
        list(read_holdout(str(tmp_path / "nope.jsonl")))
