"""Send a holdout through Bedrock Runtime ``Converse`` for a candidate and its baselines, and score it.

Async (aiobotocore): ``concurrency`` requests in flight at most, started no faster than
``rate`` per second (a token bucket shared by every model), each retried with backoff on
throttling and other transient errors (:mod:`airflow_bedrock_ft.core.retry`). Every model
answers the same prompts, so differences are paired per example.

Memory stays flat in the number of prompts: the holdout is read lazily (in a worker thread,
as S3 reads block) into a bounded queue, each answer is scored and written out as one JSONL
line at once, and only the per-example score arrays stay for the statistics.

A request that still fails after its retries, or fails with an error a retry cannot fix, makes
its example *failed* for that model: counted, listed, written to the JSONL with its error, and
left out of the means (and out of the paired differences), never scored as 0. Above
``max_failure_share`` the run fails with :class:`FailureShareExceededError`. The first example
is sent to each model before any other, so a model that does not exist, is not deployed or
cannot be invoked fails the run at its first request (:class:`ModelInvocationError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import tempfile
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from airflow_bedrock_ft.core.models import on_demand_model_id
from airflow_bedrock_ft.core.retry import error_code, is_transient_error, transient_delay

from .holdout import HoldoutExample, read_holdout
from .report import Comparison, EvaluationSummary, ModelResult
from .scorers import DEFAULT_METRICS, Scorer, resolve_scorers
from .stats import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, bootstrap_mean, paired_difference

#: Throttling error codes (counted apart from other transient errors).
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
_READ_BATCH = 64
_FAILURES_LISTED = 10

#: ``factory(service_name)`` -> an async context manager yielding an aiobotocore client.
ClientFactory = Callable[[str], Any]


class EvaluationError(RuntimeError):
    """An evaluation that could not produce a trustworthy result."""


class ModelInvocationError(EvaluationError):
    """A model could not be invoked at all (unknown, not deployed, not allowed)."""


class FailureShareExceededError(EvaluationError):
    """More examples failed than ``max_failure_share`` allows; ``summary`` holds what was measured."""

    def __init__(self, message: str, summary: EvaluationSummary) -> None:
        super().__init__(message)
        self.summary = summary


@dataclass(frozen=True)
class ModelSpecifier:
    """A model to evaluate: a label for reports and the identifier as the user gave it.

    :param label: the name in tables, gates and XCom (``candidate``, ``base``, ...).
    :param model: model id, inference profile, custom-model ARN, deployment ARN or
        provisioned-model ARN.
    """

    label: str
    model: str

    @classmethod
    def parse(cls, text: str, default_label: str | None = None) -> ModelSpecifier:
        """``LABEL=MODEL`` or ``MODEL`` (labelled ``default_label``, else the model itself)."""
        label, sep, model = text.partition("=")
        if sep and label.strip() and model.strip():
            return cls(label.strip(), model.strip())
        return cls(default_label or text.strip(), text.strip())


@dataclass
class EvaluationConfig:
    """What to evaluate and how.

    :param model: the candidate (``MODEL`` or ``LABEL=MODEL``; labelled ``candidate`` by default).
    :param data: the holdout: local path or ``s3://`` URI (file, folder or prefix), or a list.
    :param baselines: models to compare with, each ``MODEL`` or ``LABEL=MODEL``.
    :param metrics: built-in metric names or dotted paths to scorer functions.
    :param concurrency: requests in flight at most.
    :param rate: requests per second at most (retries included); None for no limit.
    :param output: where to write the per-example JSONL (local path or ``s3://`` URI); None for nowhere.
    :param max_failure_share: fail the run when a model's failed examples exceed this share.
    :param max_tokens: ``inferenceConfig.maxTokens``.
    :param temperature: ``inferenceConfig.temperature``.
    :param max_attempts: attempts per request on transient errors.
    :param retry_delay: first backoff delay in seconds (doubles per failure, jittered).
    :param confidence: confidence level of every interval.
    :param n_resamples: bootstrap resamples.
    :param seed: bootstrap seed.
    :param limit: evaluate only the first ``limit`` examples.
    """

    model: str
    data: str | Sequence[str]
    baselines: Sequence[str] = ()
    metrics: Sequence[str] = DEFAULT_METRICS
    concurrency: int = 8
    rate: float | None = None
    output: str | None = None
    max_failure_share: float = 0.05
    max_tokens: int = 512
    temperature: float = 0.0
    max_attempts: int = 8
    retry_delay: float = 0.5
    confidence: float = DEFAULT_CONFIDENCE
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    limit: int | None = None

    def check(self) -> None:
        """Reject settings that cannot work, naming the setting.

        :raises ValueError: for a bad setting.
        """
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.rate is not None and not (self.rate > 0 and math.isfinite(self.rate)):
            raise ValueError(f"rate must be a positive number of requests per second, got {self.rate}")
        if not 0.0 <= self.max_failure_share <= 1.0:
            raise ValueError(f"max_failure_share must be between 0 and 1, got {self.max_failure_share}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")

    def specifiers(self) -> list[ModelSpecifier]:
        """The candidate first, then the baselines; labels must be unique."""
        specs = [ModelSpecifier.parse(self.model, "candidate")]
        specs += [ModelSpecifier.parse(b) for b in self.baselines]
        labels = [s.label for s in specs]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"model labels must be unique; repeated: {', '.join(dupes)}")
        return specs


class TokenBucket:
    """Start at most ``rate`` operations per second, with bursts of up to ``burst``.

    A generic cell-rate algorithm: each acquisition reserves the next free slot, so waiting
    callers are served in order and the long-run rate never exceeds ``rate``. Single event loop.

    :param rate: operations per second.
    :param burst: operations that may start at once after an idle period.
    """

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.interval = 1.0 / rate
        self.tolerance = max(0.0, burst - 1.0) * self.interval
        self.clock = clock
        self._next = -math.inf

    def reserve(self) -> float:
        """Reserve the next slot; returns how many seconds to wait for it."""
        now = self.clock()
        slot = max(self._next, now - self.tolerance)
        self._next = slot + self.interval
        return max(0.0, slot - now)

    async def acquire(self) -> None:
        """Wait for the next slot."""
        wait = self.reserve()
        if wait > 0:
            await asyncio.sleep(wait)


def default_client_factory(
    *, region: str | None = None, endpoint_url: str | Mapping[str, str | None] | None = None,
    max_pool_connections: int = 10,
    session: Any = None, config: Any = None, verify: Any = None,
) -> ClientFactory:
    """aiobotocore clients for ``bedrock`` and ``bedrock-runtime``, credentials the usual AWS ways.

    botocore's own retries are switched off: the runner retries, counts and backs off itself.

    :param endpoint_url: one endpoint for both services, or one per service name.
    :param session: an aiobotocore session (default: a new one from the environment).
    :param config: a botocore ``Config`` to merge (the connection's, in Airflow).
    """
    from botocore.config import Config

    own = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                 max_pool_connections=max(10, max_pool_connections))
    merged = config.merge(own) if config is not None else own
    if session is None:
        from aiobotocore.session import get_session

        session = get_session()

    def make(service: str) -> Any:
        endpoint = endpoint_url.get(service) if isinstance(endpoint_url, Mapping) else endpoint_url
        kwargs: dict[str, Any] = {"region_name": region, "endpoint_url": endpoint, "config": merged}
        if verify is not None:
            kwargs["verify"] = verify
        return session.create_client(service, **kwargs)

    return make


async def resolve_invocation_id(model: str, bedrock_client: Any | None) -> str:
    """The ``modelId`` to send to Converse for ``model``.

    A base model's customization id (``amazon.nova-micro-v1:0:128k``) becomes its on-demand id;
    a custom-model ARN becomes its ``Active`` deployment or ``InService`` provisioned throughput
    (Bedrock invokes a custom model only through one of those). Anything else is used as given.

    :raises ModelInvocationError: for a custom model with neither.
    """
    if ":custom-model/" not in model:
        return on_demand_model_id(model)
    if bedrock_client is None:
        raise ModelInvocationError(f"Custom model {model} needs a bedrock client to find its deployment")
    try:
        deployments = await bedrock_client.list_custom_model_deployments(
            modelArnEquals=model, statusEquals="Active")
        found = deployments.get("modelDeploymentSummaries") or []
        if found:
            return str(found[0]["customModelDeploymentArn"])
        throughputs = await bedrock_client.list_provisioned_model_throughputs(
            modelArnEquals=model, statusEquals="InService")
        found = throughputs.get("provisionedModelSummaries") or []
        if found:
            return str(found[0]["provisionedModelArn"])
    except Exception as exc:
        if error_code(exc) is None:
            raise
        raise ModelInvocationError(f"Cannot look up the deployments of custom model {model}: {exc}") from exc
    raise ModelInvocationError(
        f"Custom model {model} has no Active custom model deployment and no InService provisioned "
        "throughput, so it cannot be invoked; create one (CreateCustomModelDeployment) and evaluate "
        "the model again, or pass the deployment's ARN"
    )


class _Output:
    """Per-example JSONL, streamed to a local file; an ``s3://`` target is uploaded at the end."""

    def __init__(self, target: str | None, s3_client: Any) -> None:
        self.target = target
        self.s3_client = s3_client
        self.path: str | None = None
        self.stream: BinaryIO | None = None
        if target is None:
            return
        if target.startswith("s3://"):
            fd, self.path = tempfile.mkstemp(prefix="bedrock-eval-", suffix=".jsonl")
            self.stream = os.fdopen(fd, "wb")
        else:
            parent = os.path.dirname(os.path.abspath(target))
            os.makedirs(parent, exist_ok=True)
            self.path = target
            self.stream = open(target, "wb")  # noqa: SIM115 - closed in close()

    def write(self, record: Mapping[str, Any]) -> None:
        if self.stream is not None:
            self.stream.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

    async def close(self, upload: bool) -> None:
        if self.stream is None:
            return
        self.stream.close()
        self.stream = None
        if self.target is not None and self.target.startswith("s3://") and self.path is not None:
            try:
                if upload:
                    await asyncio.to_thread(self._upload)
            finally:
                os.unlink(self.path)

    def _upload(self) -> None:
        from airflow_bedrock_ft.core.s3 import split_s3_uri

        assert self.target is not None
        assert self.path is not None
        bucket, key = split_s3_uri(self.target)
        client = self.s3_client
        if client is None:
            from airflow_bedrock_ft.datasets.sources import default_s3_client

            client = default_s3_client()
        client.upload_file(self.path, bucket, key)


@dataclass
class _ModelState:
    result: ModelResult
    scores: dict[str, array] = field(default_factory=dict)

    def record(self, index: int, values: Mapping[str, float] | None) -> None:
        for name, arr in self.scores.items():
            if len(arr) <= index:
                arr.extend([math.nan] * (index + 1 - len(arr)))
            arr[index] = math.nan if values is None else values[name]


@dataclass
class _Attempt:
    text: str | None
    stop_reason: str | None
    error_code: str | None
    error_message: str | None
    attempts: int
    latency_ms: float
    transient: bool


class _Run:
    def __init__(self, config: EvaluationConfig, scorers: list[Scorer], models: list[_ModelState],
                 runtime: Any, output: _Output) -> None:
        self.config = config
        self.scorers = scorers
        self.models = models
        self.runtime = runtime
        self.output = output
        self.bucket = TokenBucket(config.rate) if config.rate else None
        self.requests = 0
        self.examples = 0

    async def invoke(self, state: _ModelState, example: HoldoutExample) -> _Attempt:
        config, result = self.config, state.result
        kwargs: dict[str, Any] = {
            "modelId": result.invoked_as,
            "messages": list(example.messages),
            "inferenceConfig": {"maxTokens": config.max_tokens, "temperature": config.temperature},
        }
        if example.system:
            kwargs["system"] = list(example.system)
        failures = attempts = 0
        started = time.monotonic()
        while True:
            if self.bucket is not None:
                await self.bucket.acquire()
            attempts += 1
            self.requests += 1
            result.requests += 1
            try:
                response = await self.runtime.converse(**kwargs)
            except Exception as exc:
                code = error_code(exc)
                if code in THROTTLING_CODES:
                    result.throttled += 1
                transient = is_transient_error(exc)
                if not transient and code is None:
                    raise  # a bug or a broken client, not an answer of the service
                if transient:
                    failures += 1
                    if failures < config.max_attempts:
                        result.retried += 1
                        await asyncio.sleep(transient_delay(config.retry_delay, failures))
                        continue
                return _Attempt(None, None, code or type(exc).__name__, _error_message(exc), attempts,
                                (time.monotonic() - started) * 1000, transient)
            message_out = (response.get("output") or {}).get("message") or {}
            text = "".join(b["text"] for b in message_out.get("content") or []
                           if isinstance(b, dict) and isinstance(b.get("text"), str))
            return _Attempt(text, response.get("stopReason"), None, None, attempts,
                            (time.monotonic() - started) * 1000, False)

    async def handle(self, state: _ModelState, example: HoldoutExample) -> _Attempt:
        attempt = await self.invoke(state, example)
        result = state.result
        result.examples += 1
        scores: dict[str, float] | None = None
        if attempt.text is None:
            result.failed += 1
            if len(result.failure_examples) < _FAILURES_LISTED:
                result.failure_examples.append(
                    f"{example.location}: {attempt.error_code}: {attempt.error_message}")
        else:
            result.succeeded += 1
            scores = {s.name: s.score(attempt.text, example.reference, example.location)
                      for s in self.scorers}
        state.record(example.index, scores)
        self.output.write({
            "index": example.index, "file": example.file, "line": example.line,
            "model": result.label, "model_id": result.invoked_as,
            "prompt": example.prompt_text, "reference": example.reference,
            "prediction": attempt.text, "stop_reason": attempt.stop_reason,
            "scores": scores,
            "error": None if attempt.text is not None else {"code": attempt.error_code,
                                                           "message": attempt.error_message},
            "attempts": attempt.attempts, "latency_ms": round(attempt.latency_ms, 3),
        })
        return attempt

    async def probe(self, example: HoldoutExample) -> None:
        """The first example, to every model at once: a model that cannot answer stops the run here."""
        attempts = await asyncio.gather(*(self.handle(s, example) for s in self.models))
        for state, attempt in zip(self.models, attempts, strict=True):
            if attempt.text is None and not attempt.transient:
                r = state.result
                shown = r.model if r.invoked_as == r.model else f"{r.model} (invoked as {r.invoked_as})"
                raise ModelInvocationError(
                    f"Model {r.label} = {shown} cannot be invoked: the first request "
                    f"({example.location}) failed with {attempt.error_code}: {attempt.error_message}"
                )

    async def run(self, examples: AsyncIterator[HoldoutExample]) -> None:
        queue: asyncio.Queue[tuple[_ModelState, HoldoutExample] | None] = asyncio.Queue(
            maxsize=2 * self.config.concurrency)
        first = await anext(examples, None)
        if first is None:
            return
        self.examples = 1
        await self.probe(first)

        async def produce() -> None:
            async for example in examples:
                self.examples += 1
                for state in self.models:
                    await queue.put((state, example))
            for _ in range(self.config.concurrency):
                await queue.put(None)

        async def work() -> None:
            while True:
                item = await queue.get()
                if item is None:
                    return
                await self.handle(*item)

        tasks = [asyncio.create_task(produce())]
        tasks += [asyncio.create_task(work()) for _ in range(self.config.concurrency)]
        try:
            # The first task to raise (a scorer error, a bad record) cancels the others.
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _error_message(exc: BaseException) -> str:
    """What AWS said (a ClientError's message without botocore's wrapping), else the exception text."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        message = (response.get("Error") or {}).get("Message")
        if message:
            return str(message)
    return str(exc) or type(exc).__name__


async def _aiter_holdout(config: EvaluationConfig, s3_client: Any) -> AsyncIterator[HoldoutExample]:
    """The holdout's examples, read in a worker thread in batches (S3 reads and parsing block)."""
    iterator: Iterator[HoldoutExample] = read_holdout(config.data, s3_client=s3_client)
    remaining = config.limit

    def take(n: int) -> list[HoldoutExample]:
        out = []
        for example in iterator:
            out.append(example)
            if len(out) >= n:
                break
        return out

    while remaining is None or remaining > 0:
        n = _READ_BATCH if remaining is None else min(_READ_BATCH, remaining)
        batch = await asyncio.to_thread(take, n)
        for example in batch:
            yield example
        if remaining is not None:
            remaining -= len(batch)
        if len(batch) < n:
            return


async def evaluate(
    config: EvaluationConfig,
    *,
    client_factory: ClientFactory | None = None,
    s3_client: Any = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> EvaluationSummary:
    """Evaluate ``config.model`` and every baseline on the holdout; see the module docstring.

    :param client_factory: builds the aiobotocore ``bedrock`` / ``bedrock-runtime`` clients
        (default :func:`default_client_factory` with ``region`` and ``endpoint_url``).
    :param s3_client: boto3 S3 client to read an ``s3://`` holdout and write an ``s3://`` output.
    :raises ValueError: for a bad setting (names it).
    :raises UnknownMetricError: for an unknown metric.
    :raises HoldoutError: for a missing or empty holdout or a bad record (file and line).
    :raises ModelInvocationError: when a model cannot be invoked (at its first request).
    :raises ScorerError: when a scorer raises (names the example).
    :raises FailureShareExceededError: when too many examples failed.
    """
    config.check()
    specs = config.specifiers()
    scorers = resolve_scorers(config.metrics)
    try:  # the statistics need it: find out before the first request, not after the last
        import numpy  # noqa: F401
    except ImportError:
        raise EvaluationError("The evaluation needs NumPy: "
                              "pip install 'airflow-bedrock-ft[evaluate]'") from None
    factory = client_factory or default_client_factory(
        region=region, endpoint_url=endpoint_url, max_pool_connections=config.concurrency)
    started = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        bedrock = None
        if any(":custom-model/" in s.model for s in specs):
            bedrock = await stack.enter_async_context(factory("bedrock"))
        states: list[_ModelState] = []
        for spec in specs:
            invoked_as = await resolve_invocation_id(spec.model, bedrock)
            role = "baseline" if states else "candidate"
            result = ModelResult(spec.label, spec.model, invoked_as, role)
            states.append(_ModelState(result, {s.name: array("d") for s in scorers}))
        runtime = await stack.enter_async_context(factory("bedrock-runtime"))
        output = _Output(config.output, s3_client)
        run = _Run(config, scorers, states, runtime, output)
        ok = False
        try:
            await run.run(_aiter_holdout(config, s3_client))
            ok = True
        finally:
            await output.close(upload=ok)
    elapsed = time.monotonic() - started
    summary = _summarize(config, states, run, elapsed)
    over = [m for m in summary.models if m.failure_share > config.max_failure_share]
    if over:
        parts = "; ".join(f"{m.label}: {m.failed} of {m.examples} examples failed ({m.failure_share:.1%})"
                          + (f", first: {m.failure_examples[0]}" if m.failure_examples else "") for m in over)
        raise FailureShareExceededError(
            f"Too many failed examples (more than {config.max_failure_share:.1%} allowed): {parts}", summary)
    return summary


def _summarize(
    config: EvaluationConfig, states: list[_ModelState], run: _Run, elapsed: float
) -> EvaluationSummary:
    import numpy as np

    n = run.examples
    kwargs: dict[str, Any] = {"confidence": config.confidence, "n_resamples": config.n_resamples,
                              "seed": config.seed}

    def scores(state: _ModelState, name: str) -> Any:
        arr = np.frombuffer(state.scores[name], dtype=np.float64) if len(state.scores[name]) else np.empty(0)
        if arr.size < n:
            arr = np.concatenate([arr, np.full(n - arr.size, np.nan)])
        return arr

    for state in states:
        for s in run.scorers:
            state.result.metrics[s.name] = bootstrap_mean(scores(state, s.name), **kwargs)
    comparisons = [
        Comparison(b.result.label, s.name,
                   paired_difference(scores(states[0], s.name), scores(b, s.name), **kwargs))
        for b in states[1:] for s in run.scorers
    ]
    return EvaluationSummary(
        metrics=[s.name for s in run.scorers], models=[s.result for s in states], comparisons=comparisons,
        examples=n, output=config.output, elapsed_s=elapsed, requests=run.requests,
        confidence=config.confidence, n_resamples=config.n_resamples, seed=config.seed,
        max_failure_share=config.max_failure_share,
    )


def run_evaluation(config: EvaluationConfig, **kwargs: Any) -> EvaluationSummary:
    """:func:`evaluate` in a fresh event loop (for the command line and Airflow workers)."""
    return asyncio.run(evaluate(config, **kwargs))
