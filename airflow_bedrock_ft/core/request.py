"""Build and validate ``CreateModelCustomizationJob`` requests before any API call.

Shape rules (required members, types, lengths, patterns, enums, list and map sizes, tagged
unions) are read from botocore's own service model, so they follow the installed botocore
instead of hand-copied regexes. On top of the shapes come the documented cross-field rules
(customization type vs. ``customizationConfig``, base model support, per-model
hyperparameter names and ranges). Every problem is reported at once, each naming the field
path, the bad value and the rule.

The emulator uses the same functions to answer exactly as the plugin validates.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from airflow_bedrock_ft.core.java_regex import compile_java
from airflow_bedrock_ft.core.models import (
    TEACHER_MODELS,
    CustomizationType,
    UnsupportedCustomizationError,
    find_model,
    model_family,
)

if TYPE_CHECKING:
    from botocore.model import ServiceModel, Shape

OPERATION = "CreateModelCustomizationJob"
#: Bedrock's TooManyTagsException says 50 tags per resource, although the shape allows 200.
MAX_TAGS_PER_RESOURCE = 50


@dataclass(frozen=True)
class Problem:
    """One broken rule in a request."""

    path: str
    rule: str
    message: str
    value: Any = None
    #: The constraint in AWS's own words ("Member must ..."), used by :meth:`aws_message`.
    constraint: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def aws_message(self) -> str:
        """The problem phrased the way AWS's request validation phrases it."""
        constraint = self.constraint or f"Member {self.message}"
        if self.value is _SENSITIVE:
            # AWS omits sensitive values: "Value at 'x' failed to ..."
            return f"Value at '{self.path}' failed to satisfy constraint: {constraint}"
        shown = "null" if self.value is None else f"'{_short(self.value)}'"
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: {constraint}"


_SENSITIVE = object()


class RequestValidationError(ValueError):
    """A request broke one or more rules; ``problems`` lists them all."""

    def __init__(self, problems: Sequence[Problem], operation: str = OPERATION) -> None:
        self.problems = list(problems)
        self.operation = operation
        n = len(self.problems)
        lines = [f"{n} problem{'s' if n != 1 else ''} in the {operation} request:"]
        lines += [f"  - {p.path} [{p.rule}]: {p.message}" for p in self.problems]
        super().__init__("\n".join(lines))

    def aws_message(self) -> str:
        """All problems as one AWS-style ValidationException message."""
        n = len(self.problems)
        head = f"{n} validation error{'s' if n != 1 else ''} detected: "
        return head + "; ".join(p.aws_message() for p in self.problems)


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@lru_cache(maxsize=4)
def service_model(service: str = "bedrock") -> ServiceModel:
    """botocore's service model, loaded once (botocore is imported lazily: parsing a DAG
    that imports the operators must stay cheap)."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def _compiled(pattern: str) -> re.Pattern[str]:
    # AWS checks patterns with Java's regex engine against the whole value (ASCII \s, \d,
    # \w; "." stops at every line terminator): translate, then fullmatch.
    return compile_java(pattern)


def _path(parent: str, name: str) -> str:
    return f"{parent}.{name}" if parent else name


class _ShapeChecker:
    """Walks a value against a botocore shape and collects problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, rule: str, message: str, value: Any = None, constraint: str = "") -> None:
        self.problems.append(Problem(path, rule, message, value, constraint))

    def check(self, shape: Shape, value: Any, path: str, sensitive: bool = False) -> None:
        sensitive = sensitive or bool(shape.metadata.get("sensitive"))
        kind = shape.type_name
        handler = getattr(self, f"_check_{kind}", None)
        if handler is not None:
            handler(shape, value, path, sensitive)

    def _shown(self, value: Any, sensitive: bool) -> Any:
        return _SENSITIVE if sensitive else value

    def _type(self, path: str, expected: str, value: Any, sensitive: bool) -> None:
        got = type(value).__name__
        self.add(
            path,
            "type",
            f"must be {expected}, got {got}" + ("" if sensitive else f" {_short(value)!r}"),
            self._shown(value, sensitive),
            f"Member must be {expected}",
        )

    def _null(self, path: str) -> None:
        self.add(
            path, "null", "must not be null; leave the field out instead", None, "Member must not be null"
        )

    # Container types are botocore's own (dict; list or tuple): anything else fails its
    # parameter validation before a request is sent.
    def _check_structure(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        if not isinstance(value, dict):
            self._type(path or "<request>", "an object (dict)", value, sensitive)
            return
        members = shape.members
        for key in value:
            if key not in members:
                allowed = ", ".join(members)
                where = path or "the request"
                self.add(
                    _path(path, str(key)),
                    "unknown_field",
                    f"is not a field of {where}; allowed: {allowed}",
                    None,
                    "Member is not a known field",
                )
        for name in shape.required_members:
            if value.get(name) is None:
                self.add(_path(path, name), "required", "is required", None, "Member must not be null")
        for name in members:
            if name in value and value[name] is None and name not in shape.required_members:
                self._null(_path(path, name))
        if shape.metadata.get("union"):
            present = [k for k in members if value.get(k) is not None]
            if len(present) != 1:
                choices = " | ".join(members)
                got = ", ".join(present) if present else "none"
                self.add(
                    path,
                    "union",
                    f"must set exactly one of {choices}; got {got}",
                    None,
                    f"Member must have exactly one of: {choices}",
                )
        for name, member in members.items():
            if value.get(name) is not None:
                self.check(member, value[name], _path(path, name), sensitive)

    def _check_list(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        if not isinstance(value, (list, tuple)):
            self._type(path, "a list", value, sensitive)
            return
        self._size(shape, len(value), path, "item", value, sensitive)
        for i, item in enumerate(value):
            if item is None:
                self._null(f"{path}[{i}]")
            else:
                self.check(shape.member, item, f"{path}[{i}]", sensitive)

    def _check_map(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        if not isinstance(value, dict):
            self._type(path, "an object (map)", value, sensitive)
            return
        self._size(shape, len(value), path, "entr", value, sensitive)
        for key, item in value.items():
            self.check(
                shape.key, key, f"{path}.<key {key!r}>" if not sensitive else f"{path}.<key>", sensitive
            )
            if item is None:
                self._null(f"{path}.{key}" if not sensitive else f"{path}.<value>")
            else:
                self.check(shape.value, item, f"{path}.{key}", sensitive)

    def _size(self, shape: Any, n: int, path: str, noun: str, value: Any, sensitive: bool) -> None:
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")

        def plural(k: int) -> str:
            return (
                ("item" if noun == "item" else "entry")
                if k == 1
                else ("items" if noun == "item" else "entries")
            )

        if lo is not None and n < lo:
            self.add(
                path,
                "min_items",
                f"must have at least {lo} {plural(lo)}, got {n}",
                self._shown(value, sensitive),
                f"Member must have length greater than or equal to {lo}",
            )
        if hi is not None and n > hi:
            self.add(
                path,
                "max_items",
                f"must have at most {hi} {plural(hi)}, got {n}",
                self._shown(value, sensitive),
                f"Member must have length less than or equal to {hi}",
            )

    def _check_string(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        if not isinstance(value, str):
            self._type(path, "a string", value, sensitive)
            return
        shown = self._shown(value, sensitive)
        quoted = "" if sensitive else f" {_short(value)!r}"
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if lo is not None and len(value) < lo:
            self.add(
                path,
                "min_length",
                f"must be at least {lo} characters long, got {len(value)}{quoted}",
                shown,
                f"Member must have length greater than or equal to {lo}",
            )
        if hi is not None and len(value) > hi:
            self.add(
                path,
                "max_length",
                f"must be at most {hi} characters long, got {len(value)}{quoted}",
                shown,
                f"Member must have length less than or equal to {hi}",
            )
        enum = shape.enum
        if enum and value not in enum:
            self.add(
                path,
                "enum",
                f"must be one of {', '.join(enum)}; got{quoted}",
                shown,
                f"Member must satisfy enum value set: [{', '.join(enum)}]",
            )
            return
        pattern = shape.metadata.get("pattern")
        # An empty string is checked too: "" fails a pattern that needs a character.
        if pattern and not _compiled(pattern).fullmatch(value):
            self.add(
                path,
                "pattern",
                f"{quoted.strip() or 'value'} does not match the pattern {pattern} "
                "(a Java regex, matched against the whole value)",
                shown,
                f"Member must satisfy regular expression pattern: {pattern}",
            )

    def _number(self, shape: Any, value: Any, path: str, sensitive: bool, integral: bool) -> None:
        ok = isinstance(value, int) if integral else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok:
            self._type(path, "an integer" if integral else "a number", value, sensitive)
            return
        if isinstance(value, float) and not math.isfinite(value):
            # JSON has no NaN or infinity: the service cannot read them.
            self.add(path, "range", f"must be a finite number, got {value!r}", value, "Member must be finite")
            return
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            if lo is not None and hi is not None:
                bounds = f"between {lo:g} and {hi:g}"
            else:
                bounds = f"at least {lo:g}" if lo is not None else f"at most {hi:g}"
            if lo is not None and value < lo:
                constraint = f"Member must have value greater than or equal to {lo:g}"
            else:
                constraint = f"Member must have value less than or equal to {hi:g}"
            self.add(path, "range", f"must be {bounds}, got {value!r}", value, constraint)

    def _check_integer(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        self._number(shape, value, path, sensitive, integral=True)

    _check_long = _check_integer

    def _check_float(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        self._number(shape, value, path, sensitive, integral=False)

    _check_double = _check_float

    def _check_boolean(self, shape: Any, value: Any, path: str, sensitive: bool) -> None:
        if not isinstance(value, bool):
            self._type(path, "a boolean", value, sensitive)


def validate_operation(operation: str, params: Mapping[str, Any], service: str = "bedrock") -> list[Problem]:
    """Check ``params`` against the input shape of any operation in botocore's model."""
    shape = service_model(service).operation_model(operation).input_shape
    checker = _ShapeChecker()
    if shape is not None:
        checker.check(shape, params, "")
    return checker.problems


def _cross_field(params: Mapping[str, Any], check_model: bool) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: str, rule: str, message: str, value: Any = None) -> None:
        problems.append(Problem(path, rule, message, value, f"Member {message}" if rule != "model" else ""))

    ctype_raw = params.get("customizationType") or CustomizationType.FINE_TUNING.value
    try:
        ctype = CustomizationType(ctype_raw)
    except ValueError:
        return problems  # the shape check already reported the enum
    config = params.get("customizationConfig")
    config = config if isinstance(config, Mapping) else {}
    training_raw = params.get("trainingDataConfig")
    training = training_raw if isinstance(training_raw, Mapping) else {}

    if ctype is CustomizationType.IMPORTED:
        add(
            "customizationType",
            "cross_field",
            "IMPORTED cannot be requested with CreateModelCustomizationJob; use CreateModelImportJob",
            ctype_raw,
        )
    if ctype is CustomizationType.DISTILLATION and config.get("distillationConfig") is None:
        add(
            "customizationConfig.distillationConfig",
            "cross_field",
            "is required when customizationType is DISTILLATION (it names the teacher model)",
        )
    if ctype is CustomizationType.REINFORCEMENT_FINE_TUNING:
        rft = config.get("rftConfig")
        if rft is None:
            add(
                "customizationConfig.rftConfig",
                "cross_field",
                "is required when customizationType is REINFORCEMENT_FINE_TUNING (it names the grader)",
            )
        elif isinstance(rft, Mapping) and rft.get("graderConfig") is None:
            add(
                "customizationConfig.rftConfig.graderConfig",
                "cross_field",
                "is required for REINFORCEMENT_FINE_TUNING: the Lambda grader scores the model's answers",
            )
        if params.get("hyperParameters"):
            add(
                "hyperParameters",
                "cross_field",
                "is not used by REINFORCEMENT_FINE_TUNING; put typed values in "
                "customizationConfig.rftConfig.hyperParameters",
                params.get("hyperParameters"),
            )
    if config.get("distillationConfig") is not None and ctype is not CustomizationType.DISTILLATION:
        add(
            "customizationConfig.distillationConfig",
            "cross_field",
            f"is only valid with customizationType DISTILLATION, not {ctype.value}",
        )
    if config.get("rftConfig") is not None and ctype is not CustomizationType.REINFORCEMENT_FINE_TUNING:
        add(
            "customizationConfig.rftConfig",
            "cross_field",
            f"is only valid with customizationType REINFORCEMENT_FINE_TUNING, not {ctype.value}",
        )
    logs_types = (CustomizationType.DISTILLATION, CustomizationType.REINFORCEMENT_FINE_TUNING)
    has_s3 = training.get("s3Uri") is not None
    has_logs = training.get("invocationLogsConfig") is not None
    if has_logs and ctype not in logs_types:
        add(
            "trainingDataConfig.invocationLogsConfig",
            "cross_field",
            f"is only valid for DISTILLATION and REINFORCEMENT_FINE_TUNING, not {ctype.value}",
        )
    # botocore's shape leaves both members optional, but the service needs the data's location.
    if has_s3 and has_logs:
        add("trainingDataConfig", "union", "must set exactly one of s3Uri | invocationLogsConfig; got both")
    if isinstance(training_raw, Mapping) and not has_s3 and not has_logs:
        choices = "s3Uri | invocationLogsConfig" if ctype in logs_types else "s3Uri"
        add(
            "trainingDataConfig",
            "union",
            f"must set {choices} for {ctype.value}; got neither"
            + ("" if ctype in logs_types else " (invocationLogsConfig is for DISTILLATION and "
               "REINFORCEMENT_FINE_TUNING only)"),
        )
    distill = config.get("distillationConfig")
    if isinstance(distill, Mapping):
        teacher = distill.get("teacherModelConfig") or {}
        if isinstance(teacher, Mapping):
            max_len = teacher.get("maxResponseLengthForInference")
            if isinstance(max_len, int) and not isinstance(max_len, bool) and max_len < 1:
                add(
                    "customizationConfig.distillationConfig.teacherModelConfig.maxResponseLengthForInference",
                    "range",
                    f"must be a positive number of tokens, got {max_len}",
                    max_len,
                )

    for field in ("jobTags", "customModelTags"):
        tags = params.get(field)
        if isinstance(tags, Sequence) and not isinstance(tags, str):
            if len(tags) > MAX_TAGS_PER_RESOURCE:
                add(
                    field,
                    "too_many_tags",
                    f"has {len(tags)} tags; Bedrock allows at most {MAX_TAGS_PER_RESOURCE} per resource",
                    len(tags),
                )
            keys = [t.get("key") for t in tags if isinstance(t, Mapping)]
            dupes = sorted({k for k in keys if k is not None and keys.count(k) > 1})
            if dupes:
                add(field, "duplicate_key", f"repeats tag keys {', '.join(map(str, dupes))}", dupes)

    if check_model:
        problems += _model_rules(params, ctype)
    return problems


def base_model_problem(identifier: str) -> Problem | None:
    """Why ``identifier`` cannot be a ``baseModelIdentifier``, or None when it may be one.

    A catalog model is named by one of its identifiers (a context suffix it does not have,
    such as ``amazon.nova-micro-v1:0:999k``, is refused, naming the ones it has), by a
    foundation-model ARN of one, or by a custom-model ARN tuned from one. A bare name
    without a dot may be one of the caller's own custom models: only the service knows.
    """
    if find_model(identifier) is not None:
        return None
    family = model_family(identifier)
    if family is not None:
        return Problem(
            "baseModelIdentifier",
            "model",
            f"{identifier!r} names {family.name} with a context suffix it does not have; allowed "
            f"identifiers: {', '.join(family.identifiers)} (or their foundation-model ARNs, or "
            "a custom-model ARN tuned from one)",
            identifier,
        )
    if "." in identifier or identifier.startswith("arn:"):
        return Problem(
            "baseModelIdentifier",
            "model",
            f"{identifier!r} is not a base model that Bedrock can customize",
            identifier,
        )
    return None


def _model_rules(params: Mapping[str, Any], ctype: CustomizationType) -> list[Problem]:
    problems: list[Problem] = []
    base = params.get("baseModelIdentifier")
    if not isinstance(base, str) or not base:
        return problems
    spec = find_model(base)
    if spec is None:
        problem = base_model_problem(base)
        return [problem] if problem else problems
    try:
        customization = spec.customization(ctype)
    except UnsupportedCustomizationError as exc:
        problems.append(Problem("customizationType", "model", str(exc), ctype.value))
        return problems

    validators = (
        (params.get("validationDataConfig") or {}).get("validators")
        if isinstance(params.get("validationDataConfig"), Mapping)
        else None
    )
    if validators and not customization.limits.validation_allowed:
        problems.append(
            Problem(
                "validationDataConfig",
                "model",
                f"{spec.customization_id} does not accept a validation dataset",
                None,
            )
        )

    hps = params.get("hyperParameters")
    if isinstance(hps, Mapping) and ctype in (
        CustomizationType.FINE_TUNING,
        CustomizationType.CONTINUED_PRE_TRAINING,
    ):
        known = ", ".join(hp.name for hp in customization.hyperparameters)
        for name, raw in hps.items():
            hp = customization.hyperparameter(str(name))
            path = f"hyperParameters.{name}"
            if hp is None:
                problems.append(
                    Problem(
                        path,
                        "hyperparameter",
                        f"is not a hyperparameter of {spec.customization_id} ({ctype.value}); known: {known}",
                        raw,
                    )
                )
                continue
            broken = hp.check(raw)
            if broken:
                problems.append(Problem(path, "hyperparameter", f"{broken} for {spec.customization_id}", raw))

    if ctype is CustomizationType.DISTILLATION:
        config = params.get("customizationConfig") or {}
        teacher = (
            ((config.get("distillationConfig") or {}).get("teacherModelConfig") or {})
            if isinstance(config, Mapping)
            else {}
        )
        teacher_id = teacher.get("teacherModelIdentifier") if isinstance(teacher, Mapping) else None
        if isinstance(teacher_id, str) and teacher_id and not teacher_id.startswith("arn:"):
            bare = re.sub(r"^(us|eu|apac|global)\.", "", teacher_id)  # inference-profile prefix
            if find_model(bare) is None and bare not in TEACHER_MODELS:
                problems.append(
                    Problem(
                        "customizationConfig.distillationConfig.teacherModelConfig.teacherModelIdentifier",
                        "model",
                        f"{teacher_id!r} is not a known distillation teacher; known: "
                        f"{', '.join(TEACHER_MODELS)}",
                        teacher_id,
                    )
                )
    return problems


def validate_request(params: Mapping[str, Any], *, check_model: bool = True) -> list[Problem]:
    """Every problem with a ``CreateModelCustomizationJob`` request, as sent to boto3.

    :param params: the camelCase request.
    :param check_model: also apply the per-model rules (known base model, supported
        customization type, hyperparameter names and ranges).
    """
    problems = validate_operation(OPERATION, params)
    if isinstance(params, Mapping):
        problems += _cross_field(params, check_model)
    return problems


def check_request(params: Mapping[str, Any], *, check_model: bool = True) -> dict[str, Any]:
    """Return ``params`` as a dict, or raise :class:`RequestValidationError` listing all problems."""
    problems = validate_request(params, check_model=check_model)
    if problems:
        raise RequestValidationError(problems)
    return dict(params)


# --- building ---------------------------------------------------------------------------------


def tags_to_list(tags: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None) -> list[dict[str, str]] | None:
    """``{"team": "ml"}`` or ``[{"key": "team", "value": "ml"}]`` -> Bedrock's tag list."""
    if tags is None:
        return None
    if isinstance(tags, Mapping):
        return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in tags.items()]
    return [dict(t) for t in tags]


def _hp_value(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        # The shortest string that reads back as exactly this float ("%g" keeps 6 digits:
        # 1.2345678e-05 would be sent as 1.23457e-05). float() also unwraps NumPy scalars,
        # whose repr is "np.float64(...)".
        return repr(float(value))
    return value


def hyperparameters_to_strings(hps: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Bedrock's hyperparameter map holds strings; accept numbers and convert them."""
    if hps is None:
        return None
    return {str(k): _hp_value(v) for k, v in hps.items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _camel_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_camel(str(k)): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


def _data_config(value: Any) -> Any:
    if isinstance(value, str):
        return {"s3Uri": value}
    return _camel_keys(value) if isinstance(value, Mapping) else value


def _validation_config(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return {"validators": [{"s3Uri": value}]}
    if isinstance(value, Sequence):
        return {"validators": [{"s3Uri": v} if isinstance(v, str) else _camel_keys(v) for v in value]}
    return _camel_keys(value)


def build_request(
    *,
    job_name: str,
    custom_model_name: str,
    role_arn: str,
    base_model: str,
    training_data: str | Mapping[str, Any],
    output_s3_uri: str | Mapping[str, Any],
    validation_data: str | Sequence[str] | Mapping[str, Any] | None = None,
    customization_type: str | CustomizationType | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    job_tags: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    custom_model_tags: Mapping[str, Any] | Iterable[Mapping[str, Any]] | None = None,
    custom_model_kms_key_id: str | None = None,
    vpc_config: Mapping[str, Any] | None = None,
    customization_config: Mapping[str, Any] | None = None,
    client_request_token: str | None = None,
) -> dict[str, Any]:
    """Assemble the camelCase request for boto3 from Pythonic arguments.

    Conveniences: tags as a dict; hyperparameter values as numbers; a plain S3 URI for the
    training data, the output and each validation set; snake_case keys in nested configs.
    Omitted optional arguments are left out of the request. Nothing is validated here: call
    :func:`check_request` on the result.
    """
    request: dict[str, Any] = {
        "jobName": job_name,
        "customModelName": custom_model_name,
        "roleArn": role_arn,
        "baseModelIdentifier": base_model,
        "trainingDataConfig": _data_config(training_data),
        "outputDataConfig": _data_config(output_s3_uri),
    }
    optional = {
        "clientRequestToken": client_request_token,
        "customizationType": customization_type.value
        if isinstance(customization_type, CustomizationType)
        else customization_type,
        "customModelKmsKeyId": custom_model_kms_key_id,
        "jobTags": tags_to_list(job_tags),
        "customModelTags": tags_to_list(custom_model_tags),
        "validationDataConfig": _validation_config(validation_data),
        "hyperParameters": hyperparameters_to_strings(hyperparameters),
        "vpcConfig": _camel_keys(vpc_config) if vpc_config is not None else None,
        "customizationConfig": _camel_keys(customization_config)
        if customization_config is not None
        else None,
    }
    request.update({k: v for k, v in optional.items() if v is not None and v != {} and v != []})
    return request


def distillation_config(
    teacher_model: str, max_response_length_for_inference: int | None = None
) -> dict[str, Any]:
    """``customizationConfig`` for a distillation job."""
    teacher: dict[str, Any] = {"teacherModelIdentifier": teacher_model}
    if max_response_length_for_inference is not None:
        teacher["maxResponseLengthForInference"] = max_response_length_for_inference
    return {"distillationConfig": {"teacherModelConfig": teacher}}


def rft_config(lambda_arn: str, hyperparameters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``customizationConfig`` for a reinforcement fine-tuning job with a Lambda grader."""
    config: dict[str, Any] = {"graderConfig": {"lambdaGrader": {"lambdaArn": lambda_arn}}}
    if hyperparameters:
        config["hyperParameters"] = _camel_keys(dict(hyperparameters))
    return {"rftConfig": config}
