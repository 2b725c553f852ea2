"""Read a holdout set in any training format the validators know, as Converse requests.

Each record becomes a :class:`HoldoutExample`: the conversation up to the last user turn (the
prompt, in Converse's message shape) and the answer it should get (the reference). Records are
read with :func:`airflow_bedrock_ft.datasets.iter_records` (local files, folders, ``s3://``
objects and prefixes, gzip; streaming) and recognised with
:func:`airflow_bedrock_ft.datasets.formats.detect_shape`, so a holdout is accepted in the same
shapes as training data:

- prompt/completion: ``{"prompt", "completion"}``;
- Converse (``bedrock-conversation-2024``): the last assistant turn is the reference;
- Anthropic messages (string contents): the same, with strings turned into text blocks;
- RFT chat: ``messages`` with a ``system`` role and a ``reference_answer``.

The first record fixes the holdout's format; a record in another format, or one without a
prompt or a reference, raises :class:`HoldoutError` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from airflow_bedrock_ft.datasets import formats as F
from airflow_bedrock_ft.datasets.sources import DatasetSourceError, Sources
from airflow_bedrock_ft.datasets.validate import DatasetRecordError, iter_records

#: Record shapes a holdout may be written in.
SUPPORTED_SHAPES = (F.PROMPT_COMPLETION, F.CONVERSE, F.STRING_MESSAGES, F.RFT)
_SHAPE_NAMES = {
    F.PROMPT_COMPLETION: "prompt/completion",
    F.CONVERSE: "Converse (bedrock-conversation-2024)",
    F.MESSAGES: "Converse (bedrock-conversation-2024)",
    F.STRING_MESSAGES: "Anthropic messages",
    F.RFT: "RFT chat",
    F.CPT: "continued pre-training",
    F.INVOCATION_LOG: "model-invocation log",
    F.IMAGE_CAPTION: "image caption",
}


class HoldoutError(ValueError):
    """A holdout that cannot be evaluated: missing, empty, or a record in the wrong shape.

    ``file`` and ``line`` locate the record when there is one.
    """

    def __init__(self, message: str, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(where + message)
        self.file = file
        self.line = line


@dataclass(frozen=True)
class HoldoutExample:
    """One holdout record as a Converse request and the answer it should get.

    :param index: position in the holdout, from 0.
    :param file: the file it was read from (local path or ``s3://`` URI).
    :param line: its line number in that file.
    :param messages: Converse ``messages``, ending with a user turn.
    :param system: Converse ``system`` blocks (may be empty).
    :param reference: the expected answer's text.
    """

    index: int
    file: str
    line: int
    messages: tuple[Mapping[str, Any], ...]
    system: tuple[Mapping[str, Any], ...]
    reference: str

    @property
    def location(self) -> str:
        """``file:line``, as messages name an example."""
        return f"{self.file}:{self.line}"

    @property
    def prompt_text(self) -> str:
        """The text of the last user turn, for reports."""
        return _blocks_text(self.messages[-1].get("content")) if self.messages else ""


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(b["text"]) for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""


def _as_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list) and all(isinstance(b, dict) for b in content):
        return [dict(b) for b in content]
    raise ValueError(f"{where} must be a string or a list of content blocks")


def _reference_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def _split_conversation(
    messages: Any, system: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """(prompt messages, system blocks, reference) of a chat record; raises ValueError."""
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    out: list[dict[str, Any]] = []
    system_blocks: list[dict[str, Any]] = []
    if isinstance(system, str) and system:
        system_blocks = [{"text": system}]
    elif isinstance(system, list):
        system_blocks = [dict(b) for b in system if isinstance(b, dict)]
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise ValueError(f"messages[{i}] must be an object")
        role = message.get("role")
        if role == "system":
            system_blocks.extend(_as_blocks(message.get("content"), f"messages[{i}].content"))
            continue
        if role not in ("user", "assistant"):
            raise ValueError(f"messages[{i}].role must be 'user' or 'assistant', got {role!r}")
        out.append({"role": role, "content": _as_blocks(message.get("content"), f"messages[{i}].content")})
    reference: str | None = None
    if out and out[-1]["role"] == "assistant":
        reference = _blocks_text(out.pop()["content"])
    if not out or out[0]["role"] != "user" or out[-1]["role"] != "user":
        raise ValueError("the conversation must start with a user turn and hold one before the answer")
    return out, system_blocks, reference


def _example(record: Mapping[str, Any], shape: str, index: int, file: str, line: int) -> HoldoutExample:
    if shape == F.PROMPT_COMPLETION:
        prompt, completion = record.get("prompt"), record.get("completion")
        if not isinstance(prompt, str) or not prompt.strip():
            raise HoldoutError("'prompt' must be a non-empty string", file, line)
        if not isinstance(completion, str):
            raise HoldoutError("'completion' (the reference answer) must be a string", file, line)
        return HoldoutExample(index, file, line, ({"role": "user", "content": [{"text": prompt}]},), (),
                              completion)
    try:
        messages, system, reference = _split_conversation(record.get("messages"), record.get("system"))
    except ValueError as exc:
        raise HoldoutError(str(exc), file, line) from None
    if "reference_answer" in record:
        reference = _reference_text(record["reference_answer"])
    if reference is None:
        raise HoldoutError(
            "no reference answer: the record must end with an assistant turn (or carry 'reference_answer')",
            file, line,
        )
    return HoldoutExample(index, file, line, tuple(messages), tuple(system), reference)


def _shape(record: Mapping[str, Any]) -> str | None:
    shape = F.detect_shape(record)
    return F.CONVERSE if shape == F.MESSAGES else shape


def read_holdout(source: Sources, *, s3_client: Any = None) -> Iterator[HoldoutExample]:
    """Yield the examples of a holdout, streaming, in file and line order.

    :param source: local file or folder, ``s3://bucket/key`` object or prefix, or a list.
    :param s3_client: boto3 S3 client for ``s3://`` sources (default: from the environment).
    :raises HoldoutError: for a location that does not exist, an empty holdout, invalid JSON,
        or a record in an unsupported or different format (with file and line).
    """
    expected: str | None = None
    index = 0
    records = iter_records(source, s3_client=s3_client)
    while True:
        try:
            file, line, record = next(records)
        except StopIteration:
            break
        except DatasetRecordError as exc:
            raise HoldoutError(str(exc).split(": ", 1)[-1], exc.file, exc.line) from None
        except DatasetSourceError as exc:
            raise HoldoutError(str(exc)) from None
        shape = _shape(record)
        if expected is None:
            if shape not in SUPPORTED_SHAPES:
                found = _SHAPE_NAMES.get(shape or "", "an unknown format")
                raise HoldoutError(
                    f"the record is {found}; a holdout must hold prompts with reference answers: "
                    f"{F.FORMAT_EXAMPLES[F.DataFormat.PROMPT_COMPLETION]} or "
                    f"{F.FORMAT_EXAMPLES[F.DataFormat.CONVERSE]}",
                    file, line,
                )
            expected = shape
        elif shape != expected:
            found = _SHAPE_NAMES.get(shape or "", "in an unknown format")
            raise HoldoutError(
                f"the record is {found} but the holdout's first record is {_SHAPE_NAMES[expected]}; "
                "every record must have the same format",
                file, line,
            )
        yield _example(record, expected, index, file, line)
        index += 1
    if index == 0:
        raise HoldoutError(f"the holdout {_describe(source)} holds no records")


def _describe(source: Sources) -> str:
    if isinstance(source, (str, bytes)) or not hasattr(source, "__iter__"):
        return str(source)
    return ", ".join(str(s) for s in source)
