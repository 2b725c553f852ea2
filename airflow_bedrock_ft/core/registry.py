"""A model registry kept in tags on Bedrock custom models: stages, records, rollback.

Which custom model serves a *scope* (a use case, e.g. ``support-bot``) at a *stage* (default
``production``) is written on the models themselves, as tags, so any run, DAG or tool finds it
with ``ListCustomModels`` + ``ListTagsForResource`` alone (no Airflow Variable, no database):

============================================  ==================================================
``airflow-bedrock-ft:stage``                  ``production`` (or the stage promoted to), then
                                              ``previous`` once replaced, ``rolled-back`` once
                                              rolled back
``airflow-bedrock-ft:scope``                  the scope
``airflow-bedrock-ft:promoted-at``            UTC time of the promotion (ISO 8601, microseconds)
``airflow-bedrock-ft:source-job``             the customization job that trained the model
``airflow-bedrock-ft:dag-id`` / ``run-id``    the DAG run that promoted it
``airflow-bedrock-ft:scores``                 ``name=value`` pairs (JSON when names are odd)
``airflow-bedrock-ft:replaces``               the model it replaced: where rollback goes
``airflow-bedrock-ft:demoted-from`` / ``-at``  the stage it left and when
``airflow-bedrock-ft:superseded-by``          the model that took its stage
``airflow-bedrock-ft:record/<name>``          any further record fields
============================================  ==================================================

Tag values may hold only letters, digits, spaces and ``_.:/=+-@``, at most 256 characters
(botocore's ``TagValue`` shape). Values that do not fit are stored as ``b64:`` followed by the
URL-safe base64 of their UTF-8 bytes, and values longer than 256 characters continue in
``<key>/1``, ``<key>/2``, ...; :func:`encode_tags` and :func:`decode_tags` round-trip any text.

Promotion tags the new model first and demotes the old one second, and two holders of a stage
resolve to the most recent ``promoted-at``, so a registry interrupted between the two calls
still names one incumbent, and repeating the promotion finishes it.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_bedrock_ft.core.naming import resource_tags
from airflow_bedrock_ft.core.retry import error_code

__all__ = [
    "PREVIOUS",
    "ROLLED_BACK",
    "TAG_PREFIX",
    "ModelRecord",
    "ModelRegistry",
    "PromotionResult",
    "RegistryError",
    "RollbackResult",
    "decode_scores",
    "decode_tags",
    "encode_scores",
    "encode_tags",
    "validate_name",
]

TAG_PREFIX = "airflow-bedrock-ft:"
STAGE = TAG_PREFIX + "stage"
SCOPE = TAG_PREFIX + "scope"
PROMOTED_AT = TAG_PREFIX + "promoted-at"
SOURCE_JOB = TAG_PREFIX + "source-job"
DAG_ID = TAG_PREFIX + "dag-id"
RUN_ID = TAG_PREFIX + "run-id"
SCORES = TAG_PREFIX + "scores"
REPLACES = TAG_PREFIX + "replaces"
DEMOTED_FROM = TAG_PREFIX + "demoted-from"
DEMOTED_AT = TAG_PREFIX + "demoted-at"
SUPERSEDED_BY = TAG_PREFIX + "superseded-by"
RECORD = TAG_PREFIX + "record/"

#: Stage of a model whose stage another model took.
PREVIOUS = "previous"
#: Stage of a model that a rollback took its stage from.
ROLLED_BACK = "rolled-back"
_RESERVED_STAGES = (PREVIOUS, ROLLED_BACK)

MAX_TAG_VALUE = 256
MAX_TAGS_PER_RESOURCE = 50
_ENCODED = "b64:"
# botocore's TagValue pattern is [a-zA-Z0-9\s._:/=+@-]*; of the whitespace only the plain
# space is kept as is, so a value never depends on how a service treats tabs or newlines.
_PLAIN_VALUE = re.compile(r"[a-zA-Z0-9 ._:/=+@-]*")
_CHUNK_KEY = re.compile(r"(.+)/([1-9][0-9]*)")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_SCORE_NAME = re.compile(r"[A-Za-z0-9._:/+@-]+")
_RECORD_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_KNOWN_RECORD = {"source_job_arn": SOURCE_JOB, "dag_id": DAG_ID, "run_id": RUN_ID}


class RegistryError(ValueError):
    """A promotion, rollback or lookup that cannot be done; the message says which model,
    scope and stage, and why."""


def validate_name(value: Any, what: str) -> str:
    """Check a scope or stage name: 1-63 letters, digits, ``.``, ``_`` or ``-``, starting with
    a letter or digit (it is part of tag values and of the Asset URI).

    :raises RegistryError: naming ``what`` and the rule.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise RegistryError(
            f"{what} {value!r} is not valid: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return value


# --- tag encoding --------------------------------------------------------------------------------


def _encode_value(text: str) -> str:
    if _PLAIN_VALUE.fullmatch(text) and not text.startswith(_ENCODED) and text == text.strip():
        return text
    return _ENCODED + base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").rstrip("=")


def _decode_value(stored: str) -> str:
    if not stored.startswith(_ENCODED):
        return stored
    body = stored[len(_ENCODED):]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")


def encode_tags(fields: Mapping[str, str]) -> dict[str, str]:
    """Tags for ``fields`` (key -> any text): values that break the tag rules are base64-encoded
    and values longer than 256 characters continue in ``<key>/1``, ``<key>/2``, ...

    :raises RegistryError: for a key that is not a valid tag key.
    """
    tags: dict[str, str] = {}
    for key, text in fields.items():
        if not _PLAIN_VALUE.fullmatch(key) or not 0 < len(key) <= 120 or _CHUNK_KEY.fullmatch(key):
            raise RegistryError(f"tag key {key!r} is not valid")
        stored = _encode_value(str(text))
        chunks = [stored[i:i + MAX_TAG_VALUE] for i in range(0, len(stored), MAX_TAG_VALUE)] or [""]
        tags[key] = chunks[0]
        for n, chunk in enumerate(chunks[1:], start=1):
            tags[f"{key}/{n}"] = chunk
    return tags


def decode_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """The fields :func:`encode_tags` wrote under keys starting with ``airflow-bedrock-ft:``
    (other tags pass through as they are)."""
    out: dict[str, str] = {}
    for key, value in tags.items():
        if not key.startswith(TAG_PREFIX):
            out[key] = value
            continue
        chunk = _CHUNK_KEY.fullmatch(key)
        if chunk and chunk.group(1) in tags:
            continue
        stored, n = value, 1
        while f"{key}/{n}" in tags:
            stored += tags[f"{key}/{n}"]
            n += 1
        out[key] = _decode_value(stored)
    return out


def _chunk_keys(tags: Iterable[str], key: str) -> list[str]:
    return [k for k in tags if k == key or (_CHUNK_KEY.fullmatch(k) and k.rsplit("/", 1)[0] == key)]


def _score_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else None
    if isinstance(value, str) and _SCORE_NAME.fullmatch(value) and "=" not in value:
        try:
            float(value)
        except ValueError:
            return value
    return None


def encode_scores(scores: Mapping[str, Any]) -> str:
    """Scores as ``name=value`` pairs joined by spaces (readable in the console), or as JSON
    when a name or value does not fit that form; :func:`decode_scores` reads both."""
    pairs = []
    for name, value in scores.items():
        text = _score_text(value)
        if text is None or not isinstance(name, str) or not _SCORE_NAME.fullmatch(name) or "=" in name:
            return json.dumps(dict(scores), sort_keys=True, separators=(",", ":"))
        pairs.append(f"{name}={text}")
    return " ".join(pairs)


def decode_scores(text: str | None) -> dict[str, Any]:
    """Scores written by :func:`encode_scores`; numbers come back as int or float."""
    if not text:
        return {}
    if text.startswith("{"):
        return dict(json.loads(text))
    scores: dict[str, Any] = {}
    for pair in text.split(" "):
        name, _, raw = pair.partition("=")
        value: Any = raw
        for kind in (int, float):
            try:
                value = kind(raw)
                break
            except ValueError:
                continue
        scores[name] = value
    return scores


# --- records -------------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ModelRecord:
    """What the tags of one custom model say about its place in the registry.

    :param model_arn: the custom model's ARN.
    :param scope: its scope.
    :param stage: its stage (``production``, ``previous``, ``rolled-back``, ...).
    :param promoted_at: when it was last promoted (ISO 8601 UTC), or None.
    :param source_job_arn: the customization job that trained it.
    :param dag_id: the DAG that promoted it.
    :param run_id: the DAG run that promoted it.
    :param scores: the scores recorded at promotion.
    :param replaces: the model it replaced (where a rollback goes), or None.
    :param demoted_from: the stage it left when it was demoted.
    :param demoted_at: when it was demoted.
    :param superseded_by: the model that took its stage.
    :param extra: further record fields.
    """

    model_arn: str
    scope: str
    stage: str
    promoted_at: str | None = None
    source_job_arn: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    scores: dict[str, Any] = field(default_factory=dict)
    replaces: str | None = None
    demoted_from: str | None = None
    demoted_at: str | None = None
    superseded_by: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_tags(cls, model_arn: str, tags: Mapping[str, str]) -> ModelRecord | None:
        """The record in ``tags`` (ListTagsForResource as a dict), or None when the model is
        not in the registry."""
        fields = decode_tags(tags)
        if STAGE not in fields or SCOPE not in fields:
            return None
        return cls(
            model_arn=model_arn,
            scope=fields[SCOPE],
            stage=fields[STAGE],
            promoted_at=fields.get(PROMOTED_AT),
            source_job_arn=fields.get(SOURCE_JOB),
            dag_id=fields.get(DAG_ID),
            run_id=fields.get(RUN_ID),
            scores=decode_scores(fields.get(SCORES)),
            replaces=fields.get(REPLACES),
            demoted_from=fields.get(DEMOTED_FROM),
            demoted_at=fields.get(DEMOTED_AT),
            superseded_by=fields.get(SUPERSEDED_BY),
            extra={k[len(RECORD):]: v for k, v in fields.items() if k.startswith(RECORD)},
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON primitives."""
        return {
            "model_arn": self.model_arn, "scope": self.scope, "stage": self.stage,
            "promoted_at": self.promoted_at, "source_job_arn": self.source_job_arn,
            "dag_id": self.dag_id, "run_id": self.run_id, "scores": dict(self.scores),
            "replaces": self.replaces, "demoted_from": self.demoted_from,
            "demoted_at": self.demoted_at, "superseded_by": self.superseded_by,
            "extra": dict(self.extra),
        }


@dataclass(frozen=True)
class PromotionResult:
    """What :meth:`ModelRegistry.promote` did.

    :param record: the promoted model's record as now tagged.
    :param previous_model_arn: the model that held the stage before (now ``previous``), or None.
    :param demoted: every model demoted (more than one only after an interrupted promotion).
    """

    record: ModelRecord
    previous_model_arn: str | None
    demoted: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON primitives."""
        return {**self.record.to_dict(), "previous_model_arn": self.previous_model_arn,
                "demoted": list(self.demoted)}


@dataclass(frozen=True)
class RollbackResult:
    """What :meth:`ModelRegistry.rollback` did.

    :param record: the restored model's record as now tagged.
    :param rolled_back_model_arn: the model that held the stage (now ``rolled-back``).
    """

    record: ModelRecord
    rolled_back_model_arn: str

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON primitives."""
        return {**self.record.to_dict(), "rolled_back_model_arn": self.rolled_back_model_arn}


class ModelRegistry:
    """Promote, find and roll back custom models by scope and stage, in tags alone.

    :param client: a boto3 ``bedrock`` client (``get_custom_model``, ``list_custom_models``,
        ``list_tags_for_resource``, ``tag_resource``, ``untag_resource``).
    :param clock: returns the current time (tests pass their own).
    """

    def __init__(self, client: Any, *, clock: Callable[[], datetime.datetime] = _now) -> None:
        self.client = client
        self.clock = clock

    # --- reading ---------------------------------------------------------------------------

    def tags(self, model_arn: str) -> dict[str, str]:
        """The raw tags of a custom model.

        :raises RegistryError: when the model does not exist.
        """
        try:
            return resource_tags(self.client, model_arn)
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise RegistryError(f"custom model {model_arn} does not exist") from exc
            raise

    def record(self, model_arn: str) -> ModelRecord | None:
        """The registry record of one model, or None when it has none."""
        return ModelRecord.from_tags(model_arn, self.tags(model_arn))

    def _model_arns(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_custom_models")
        for page in paginator.paginate():
            for summary in page.get("modelSummaries", []):
                yield summary["modelArn"]

    def records(self, scope: str | None = None) -> list[ModelRecord]:
        """Every model in the registry (of ``scope``, when given), newest promotion first.

        One ListTagsForResource per custom model of the account and region.
        """
        found = []
        for arn in self._model_arns():
            try:
                rec = self.record(arn)
            except RegistryError:
                continue  # deleted between the listing and the tag lookup
            if rec is not None and (scope is None or rec.scope == scope):
                found.append(rec)
        return sorted(found, key=lambda r: (r.promoted_at or "", r.model_arn), reverse=True)

    def holders(self, scope: str, stage: str = "production") -> list[ModelRecord]:
        """Models tagged with ``stage`` in ``scope``, most recent promotion first."""
        validate_name(scope, "scope")
        validate_name(stage, "stage")
        return [r for r in self.records(scope) if r.stage == stage]

    def find_incumbent(self, scope: str, stage: str = "production") -> ModelRecord | None:
        """The model that holds ``stage`` in ``scope``, or None.

        Should two models carry the stage (a promotion interrupted between tagging the new
        model and demoting the old), the most recently promoted one is the incumbent.
        """
        holders = self.holders(scope, stage)
        return holders[0] if holders else None

    # --- writing ---------------------------------------------------------------------------

    def _write(self, model_arn: str, current: Mapping[str, str], fields: Mapping[str, str | None]) -> None:
        new = encode_tags({k: v for k, v in fields.items() if v is not None})
        stale = [k for key in fields for k in _chunk_keys(current, key) if k not in new]
        total = len(set(current) - set(stale) | set(new))
        if total > MAX_TAGS_PER_RESOURCE:
            raise RegistryError(
                f"custom model {model_arn} would carry {total} tags, more than the "
                f"{MAX_TAGS_PER_RESOURCE} a Bedrock resource may have; remove some of its tags or "
                "record fewer fields"
            )
        if new:
            self.client.tag_resource(
                resourceARN=model_arn, tags=[{"key": k, "value": v} for k, v in new.items()]
            )
        if stale:
            self.client.untag_resource(resourceARN=model_arn, tagKeys=stale)

    def _demote(self, rec: ModelRecord, to: str, by: str, at: str) -> None:
        self._write(rec.model_arn, self.tags(rec.model_arn), {
            STAGE: to, DEMOTED_FROM: rec.stage, DEMOTED_AT: at, SUPERSEDED_BY: by,
        })

    def _get_model(self, model: str) -> dict[str, Any]:
        try:
            return dict(self.client.get_custom_model(modelIdentifier=model))
        except Exception as exc:
            if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                raise RegistryError(f"custom model {model} does not exist: {exc}") from exc
            raise

    def promote(
        self,
        custom_model_arn: str,
        scope: str,
        stage: str = "production",
        record: Mapping[str, Any] | None = None,
    ) -> PromotionResult:
        """Give ``custom_model_arn`` the ``stage`` in ``scope`` and demote its holder to
        ``previous``.

        :param custom_model_arn: the custom model's ARN (or name).
        :param scope: the use case the model serves.
        :param stage: the stage to take (not ``previous`` or ``rolled-back``).
        :param record: ``source_job_arn`` (default: the model's own ``jobArn``), ``dag_id``,
            ``run_id``, ``scores`` (name -> number) and any further fields (lower-case names),
            all written to tags.
        :raises RegistryError: for a missing model, a bad scope, stage or record field, a model
            that holds a stage in another scope, or too many tags.
        """
        validate_name(scope, "scope")
        validate_name(stage, "stage")
        if stage in _RESERVED_STAGES:
            raise RegistryError(f"stage {stage!r} is reserved for demoted models; promote to another stage")
        record = dict(record or {})
        model = self._get_model(custom_model_arn)
        arn = str(model["modelArn"])
        current_tags = self.tags(arn)
        mine = ModelRecord.from_tags(arn, current_tags)
        if mine is not None and mine.scope != scope and mine.stage not in _RESERVED_STAGES:
            raise RegistryError(
                f"custom model {arn} holds stage {mine.stage!r} in scope {mine.scope!r}; a model "
                f"belongs to one scope, so promote another model to scope {scope!r} or demote it first"
            )
        fields: dict[str, str | None] = {}
        if record.get("source_job_arn") is None:
            record["source_job_arn"] = model.get("jobArn")
        for name, value in record.items():
            if name == "scores":
                fields[SCORES] = encode_scores(dict(value or {})) if value else None
            elif name in _KNOWN_RECORD:
                fields[_KNOWN_RECORD[name]] = None if value is None else str(value)
            elif isinstance(name, str) and _RECORD_NAME.fullmatch(name):
                fields[RECORD + name] = None if value is None else str(value)
            else:
                raise RegistryError(
                    f"record field {name!r} is not valid: "
                    "use 1-64 lower-case letters, digits, '.', '_' or '-'"
                )
        others = [h for h in self.holders(scope, stage) if h.model_arn != arn]
        holds = mine is not None and mine.scope == scope and mine.stage == stage
        previous = others[0].model_arn if others else None
        at = _stamp(self.clock())
        fields.update({
            STAGE: stage, SCOPE: scope, PROMOTED_AT: at,
            DEMOTED_FROM: None, DEMOTED_AT: None, SUPERSEDED_BY: None,
        })
        if previous is not None or not holds:
            # Re-promoting the incumbent keeps the model it replaced, so rollback still works.
            fields[REPLACES] = previous
        self._write(arn, current_tags, fields)
        for other in others:
            self._demote(other, PREVIOUS, arn, at)
        now_record = self.record(arn)
        assert now_record is not None  # just tagged
        return PromotionResult(now_record, previous, tuple(o.model_arn for o in others))

    def rollback(self, scope: str, stage: str = "production") -> RollbackResult:
        """Give ``stage`` back to the model the incumbent replaced; the incumbent becomes
        ``rolled-back``. Rolling back again goes one model further back.

        :raises RegistryError: when no model holds the stage, the incumbent replaced none, or
            the model to restore no longer exists or has left the scope.
        """
        incumbent = self.find_incumbent(scope, stage)
        if incumbent is None:
            raise RegistryError(
                f"no custom model holds stage {stage!r} in scope {scope!r}: nothing to roll back"
            )
        target_arn = incumbent.replaces
        if target_arn is None:
            demoted = [
                r for r in self.records(scope)
                if r.stage == PREVIOUS and r.demoted_from == stage and r.model_arn != incumbent.model_arn
            ]
            demoted.sort(key=lambda r: r.demoted_at or "", reverse=True)
            if not demoted:
                raise RegistryError(
                    f"custom model {incumbent.model_arn} holds stage {stage!r} in scope {scope!r} but "
                    "replaced no model: there is nothing to roll back to"
                )
            target_arn = demoted[0].model_arn
        try:
            target_tags = self.tags(target_arn)
        except RegistryError as exc:
            raise RegistryError(
                f"cannot roll back scope {scope!r} stage {stage!r} from {incumbent.model_arn}: the model "
                f"it replaced, {target_arn}, no longer exists"
            ) from exc
        target = ModelRecord.from_tags(target_arn, target_tags)
        if target is None or target.scope != scope:
            raise RegistryError(
                f"cannot roll back scope {scope!r} stage {stage!r} from {incumbent.model_arn}: the model "
                f"it replaced, {target_arn}, is no longer in scope {scope!r}"
            )
        at = _stamp(self.clock())
        self._write(target_arn, target_tags, {
            STAGE: stage, PROMOTED_AT: at, DEMOTED_FROM: None, DEMOTED_AT: None, SUPERSEDED_BY: None,
        })
        self._demote(incumbent, ROLLED_BACK, target_arn, at)
        restored = self.record(target_arn)
        assert restored is not None
        return RollbackResult(restored, incumbent.model_arn)
