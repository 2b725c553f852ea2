"""A small language model that the emulator really trains on CPU, in NumPy.

A customization job in the emulator reads its records from S3 and calls :func:`train`; the
runtime answers InvokeModel/Converse on the custom model with :meth:`TinyLM.generate`. The
model is deliberately tiny but real: its loss is the token cross-entropy of the completions in
the data, it falls over the epochs, and it responds to the documented hyperparameters the way a
real model does (more epochs lower the training loss; a learning rate far below the documented
default leaves it high).

Architecture (a feed-forward neural n-gram language model, with a summary of the prompt so
that answers depend on the question):

* tokens: words (a letter run with its leading space), single digits, single punctuation marks
  and whitespace runs; the vocabulary holds the most frequent multi-byte pieces of the training
  data plus all 256 bytes, so every text encodes (unknown pieces fall back to their UTF-8 bytes);
* features of a position: embeddings of the previous ``CONTEXT`` tokens, concatenated, plus a
  weighted mean of a second embedding over the prompt tokens, rare tokens weighing more (IDF
  over the training prompts), so the entity asked about outweighs "What is the";
* one ``tanh`` hidden layer, a softmax over the vocabulary; Adam with global gradient-norm
  clipping, linear warm-up over ``learningRateWarmupSteps`` and then linear decay to
  ``LR_FLOOR`` of the peak at the last step.

Training sequences are ``<bos> prompt <sep> target <eos>``; the loss (mean token
cross-entropy, natural log) covers the target tokens and ``<eos>``. Continued pre-training
learns every token of its text and, at inference, continues the prompt instead of answering it.

Caps, so that a job stays interactive on one core (also in ``CAPS``): prompts keep their last
``MAX_PROMPT_TOKENS`` tokens, targets their first ``MAX_TARGET_TOKENS``; continued
pre-training text is cut into windows of ``MAX_TARGET_TOKENS`` predicted tokens; at most
``MAX_WORDS`` word pieces enter the vocabulary; one epoch covers at most
``MAX_EPOCH_TOKENS`` target tokens (larger datasets are subsampled afresh each epoch with the
job's seed); at most ``MAX_VALIDATION_RECORDS`` validation records are scored; a run makes at
most ``MAX_STEPS`` optimisation steps. The demo dataset (630 records) trains in about 1.6 s at
Llama 3.1's defaults (3,150 steps) on one core.

Learning rates: each family documents a different default (Llama 1e-4, Nova and Titan 1e-5,
Titan Premier 1e-6) and ranges up to 1000x that default. The tiny model needs one learning
rate of its own, so the requested value is read relative to the family's documented default:
the peak Adam step size is ``BASE_LEARNING_RATE * min(sqrt(requested / default),
MAX_LR_FACTOR) * min(sqrt(batchSize), MAX_BATCH_LR_FACTOR)``. The caps keep the largest
documented values trainable; the square-root batch scaling lets large-batch families (Claude,
32 records a step) learn in the few steps their defaults give. Claude's
``learningRateMultiplier`` is the ratio itself; without a documented default the reference
is ``DEFAULT_REFERENCE_LR``.

The module imports NumPy at the top; only the emulator imports it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import json
import math
import re
import threading
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from airflow_bedrock_ft.core.models import (
    CustomizationType,
    HyperParameter,
    UnknownModelError,
    UnsupportedCustomizationError,
    resolve_model,
)

__all__ = [
    "CAPS",
    "Generation",
    "TinyLM",
    "TrainingResult",
    "TrainingStopped",
    "base_model",
    "prompt_text",
    "record_text",
    "train",
]

# --- sizes and caps ---------------------------------------------------------------------------

CONTEXT = 4  # previous tokens seen by the model
EMBED_DIM = 24
BAG_DIM = 48
HIDDEN_DIM = 160
MAX_PROMPT_TOKENS = 64
MAX_TARGET_TOKENS = 128
MAX_WORDS = 2_000
MAX_EPOCH_TOKENS = 40_000
MAX_VALIDATION_RECORDS = 500
MAX_STEPS = 20_000
MAX_CHUNK_POSITIONS = 2_048  # positions per forward pass; bounds memory at large batch sizes
BASE_LEARNING_RATE = 0.006
MAX_LR_FACTOR = 4.0
MAX_BATCH_LR_FACTOR = 8.0
CLIP_NORM = 5.0
LR_FLOOR = 0.1  # the learning rate decays linearly to this fraction of its peak
TEACHER_MAX_TOKENS = 48
DEFAULT_REFERENCE_LR = 1e-5  # when the family documents no learning-rate default

CAPS: dict[str, int] = {
    "max_prompt_tokens": MAX_PROMPT_TOKENS,
    "max_target_tokens": MAX_TARGET_TOKENS,
    "max_words": MAX_WORDS,
    "max_epoch_tokens": MAX_EPOCH_TOKENS,
    "max_validation_records": MAX_VALIDATION_RECORDS,
    "max_steps": MAX_STEPS,
}

PAD, BOS, SEP, EOS = 0, 1, 2, 3
_N_SPECIAL = 4
_BYTE0 = _N_SPECIAL
_WORD0 = _BYTE0 + 256
_FORMAT = "airflow-bedrock-ft/tinylm/1"

_PIECE_RE = re.compile(r" ?[^\W\d_]+| ?\d| ?[^\s\w]|\s+(?!\S)|\s+|.", re.UNICODE | re.DOTALL)


class TrainingStopped(Exception):
    """Raised by :func:`train` when ``should_stop()`` turned true during training."""

    def __init__(self, step: int, epoch: int) -> None:
        super().__init__(f"training stopped at step {step} (epoch {epoch})")
        self.step = step
        self.epoch = epoch


@dataclass(frozen=True)
class Generation:
    """The result of :meth:`TinyLM.generate`."""

    text: str
    input_tokens: int
    output_tokens: int
    stop_reason: str  # "end_turn" | "max_tokens"


# --- tokenizer --------------------------------------------------------------------------------


def _pieces(text: str) -> list[str]:
    return _PIECE_RE.findall(text)


class _Tokenizer:
    """Word pieces from the training data, with a byte fallback for everything else."""

    def __init__(self, words: Sequence[str], idf: np.ndarray | None = None) -> None:
        self.words = list(words)
        self.index = {w: _WORD0 + i for i, w in enumerate(self.words)}
        # Weight of each token in the prompt summary: rare tokens (the country, the entity
        # asked about) must dominate frequent ones ("What", "is", a shared system prompt).
        self.idf = (np.ones(self.size, np.float32) if idf is None
                    else np.asarray(idf, np.float32).reshape(self.size))

    def fit_idf(self, prompts: Sequence[Sequence[int]]) -> None:
        """Set the prompt-token weights from document frequencies over ``prompts``."""
        df = np.zeros(self.size, np.float64)
        for ids in prompts:
            if len(ids):
                df[np.unique(np.asarray(ids, np.int64))] += 1.0
        n = float(len(prompts))
        self.idf = (np.log((1.0 + n) / (1.0 + df)) + 0.1).astype(np.float32)

    def bag_weights(self, ids: np.ndarray) -> np.ndarray:
        """Normalised weights of the prompt tokens ``ids`` in the prompt summary."""
        w = self.idf[ids]
        total = float(w.sum())
        return w / total if total > 0 else w

    @property
    def size(self) -> int:
        return _WORD0 + len(self.words)

    @classmethod
    def build(cls, texts: Iterable[str], max_words: int = MAX_WORDS) -> _Tokenizer:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(p for p in _pieces(text) if len(p.encode("utf-8")) > 1)
        # Ties are broken by the piece itself so that the vocabulary is independent of order.
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_words]
        return cls([w for w, _ in ranked])

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for piece in _pieces(text):
            tid = self.index.get(piece)
            if tid is not None:
                ids.append(tid)
            else:
                ids.extend(_BYTE0 + b for b in piece.encode("utf-8"))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        out: list[str] = []
        pending = bytearray()
        for tid in ids:
            tid = int(tid)
            if _BYTE0 <= tid < _WORD0:
                pending.append(tid - _BYTE0)
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if tid >= _WORD0:
                out.append(self.words[tid - _WORD0])
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)


# --- record formats ---------------------------------------------------------------------------


def _content_text(content: Any) -> str:
    """Text of a message content: a string, or blocks of which only text blocks count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Mapping):
        content = [content]
    parts: list[str] = []
    if isinstance(content, Sequence):
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                # Image, video, document and tool blocks carry no text the model can learn.
                parts.append(block["text"])
    return "\n".join(parts)


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _response_text(body: Any) -> str:
    """Text of a model response body as found in model-invocation logs."""
    if isinstance(body, str):
        return body
    if not isinstance(body, Mapping):
        return ""
    output = body.get("output")
    if isinstance(output, Mapping) and isinstance(output.get("message"), Mapping):
        return _content_text(output["message"].get("content"))  # Converse / Nova
    for key in ("generation", "completion", "outputText", "text"):  # Llama, Claude 2, Titan
        if isinstance(body.get(key), str):
            return str(body[key])
    if "content" in body:  # Anthropic messages
        return _content_text(body["content"])
    results = body.get("results")
    if isinstance(results, Sequence) and results and isinstance(results[0], Mapping):
        return str(results[0].get("outputText", ""))
    return ""


def _conversation(record: Mapping[str, Any]) -> tuple[str, str]:
    system = _content_text(record.get("system"))
    context: list[str] = [system] if system else []
    messages = [m for m in record.get("messages") or [] if isinstance(m, Mapping)]
    target = ""
    if messages and messages[-1].get("role") == "assistant":
        target = _content_text(messages[-1].get("content"))
        messages = messages[:-1]
    for message in messages:
        text = _content_text(message.get("content"))
        if text:
            context.append(text)
    if not target and "reference_answer" in record:
        target = _json_text(record["reference_answer"])
    return "\n".join(context), target


_LLAMA3_TURN_RE = re.compile(
    r"<\|start_header_id\|>\s*(\w+)\s*<\|end_header_id\|>\s*(.*?)\s*(?=<\|eot_id\|>|<\|start_header_id\|>|$)",
    re.DOTALL,
)
_LLAMA2_MARKERS_RE = re.compile(r"<s>|</s>|\[INST\]|\[/INST\]|<<SYS>>|<</SYS>>")
_TITAN_CHAT_RE = re.compile(r"^\s*User:\s*(.*?)\s*Bot:\s*$", re.DOTALL)


def prompt_text(prompt: str) -> str:
    """Strip a model's chat template from a raw prompt, keeping the turns' text.

    InvokeModel bodies for Llama carry the chat template inside ``prompt``
    (``<|start_header_id|>user<|end_header_id|>...``, or ``[INST] ... [/INST]`` for Llama 2),
    and Titan prompts often read ``User: ... Bot:``. The tiny model reads the last few tokens
    before the answer, so template tokens would hide the question; the turns are joined one per
    line exactly as for Converse records. Other prompts are returned unchanged.
    """
    if "<|start_header_id|>" in prompt:
        turns = [(role, text) for role, text in _LLAMA3_TURN_RE.findall(prompt)]
        if turns and turns[-1][0] == "assistant" and not turns[-1][1]:
            turns = turns[:-1]
        return "\n".join(text for _, text in turns if text)
    if "[INST]" in prompt:
        parts = (p.strip() for p in _LLAMA2_MARKERS_RE.split(prompt))
        return "\n".join(p for p in parts if p)
    match = _TITAN_CHAT_RE.match(prompt)
    if match:
        return match.group(1)
    return prompt


def record_text(record: Mapping[str, Any]) -> tuple[str, str]:
    """Split a record of any supported format into ``(prompt, target)``.

    Formats: prompt/completion; Converse (``bedrock-conversation-2024``: system and content
    blocks, media blocks ignored); Claude 3 Haiku (string system and contents); continued
    pre-training ``{"input"}`` (empty prompt); distillation prompts (the target is the golden
    assistant answer, or empty); reinforcement fine-tuning (chat messages, the target is the
    ``reference_answer``); model-invocation log records; image-caption records (the caption).
    The context of a conversation is the system prompt and every turn before the last
    assistant turn, one per line; a single user turn without a system prompt is the prompt
    as written, so ``{"prompt": q}`` and a Converse request with one user message ``q`` give
    the same prompt (chat templates inside a raw prompt are removed by :func:`prompt_text`).
    Request bodies of InvokeModel/Converse (no assistant turn) give their prompt and an empty
    target.

    :raises ValueError: when the record matches no supported format.
    """
    if not isinstance(record, Mapping):
        raise ValueError(f"record must be a JSON object, got {type(record).__name__}")
    if "messages" in record:
        return _conversation(record)
    if isinstance(record.get("prompt"), str):
        return prompt_text(str(record["prompt"])), _json_text(record.get("completion", ""))
    if isinstance(record.get("input"), str):
        return "", str(record["input"])
    if isinstance(record.get("input"), Mapping):  # model-invocation log record
        inp, out = record["input"], record.get("output")
        body = inp.get("inputBodyJson", {})
        prompt = record_text(body)[0] if isinstance(body, Mapping) else _json_text(body)
        answer = _response_text(out.get("outputBodyJson") if isinstance(out, Mapping) else None)
        return prompt, answer
    if isinstance(record.get("inputText"), str):  # Titan InvokeModel body
        return prompt_text(str(record["inputText"])), ""
    if isinstance(record.get("caption"), str):
        return "", str(record["caption"])
    keys = ", ".join(sorted(map(str, record))) or "none"
    raise ValueError(f"unsupported record format (keys: {keys})")


# --- the model --------------------------------------------------------------------------------


def _init_params(vocab: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    n_in = CONTEXT * EMBED_DIM + BAG_DIM
    f32 = np.float32
    return {
        "E": (rng.standard_normal((vocab, EMBED_DIM)) * 0.3).astype(f32),
        "P": (rng.standard_normal((vocab, BAG_DIM)) * 0.3).astype(f32),
        "W1": (rng.standard_normal((n_in, HIDDEN_DIM)) / math.sqrt(n_in)).astype(f32),
        "b1": np.zeros(HIDDEN_DIM, f32),
        "W2": (rng.standard_normal((HIDDEN_DIM, vocab)) * (0.5 / math.sqrt(HIDDEN_DIM))).astype(f32),
        "b2": np.zeros(vocab, f32),
    }


@dataclass
class _Batch:
    ctx: np.ndarray  # (N, CONTEXT) token ids before each predicted position
    y: np.ndarray  # (N,) token to predict
    row: np.ndarray  # (N,) example index (within the batch) of each position
    bag_ids: np.ndarray  # (M,) prompt token ids of all examples
    bag_w: np.ndarray  # (M,) their weights
    bag_row: np.ndarray  # (M,) example index of each prompt token
    n_rows: int


@dataclass
class _Example:
    ctx: np.ndarray
    y: np.ndarray
    prompt: np.ndarray
    weights: np.ndarray  # of the prompt tokens in the summary, summing to 1


def _make_example(tok: _Tokenizer, prompt_ids: list[int], target_ids: list[int]) -> _Example:
    prompt_ids = prompt_ids[-MAX_PROMPT_TOKENS:]
    head = [BOS, *prompt_ids, SEP] if prompt_ids else [BOS]
    seq = [*head, *target_ids, EOS]
    start = len(head)
    padded = [PAD] * CONTEXT + seq
    n = len(seq) - start
    ctx = np.empty((n, CONTEXT), np.int32)
    for i in range(n):
        pos = start + i + CONTEXT  # index in padded of the predicted token
        ctx[i] = padded[pos - CONTEXT:pos]
    prompt = np.asarray(prompt_ids, np.int32)
    return _Example(ctx, np.asarray(seq[start:], np.int32), prompt, tok.bag_weights(prompt))


def _collate(examples: Sequence[_Example]) -> _Batch:
    ctx = np.concatenate([e.ctx for e in examples])
    y = np.concatenate([e.y for e in examples])
    row = np.repeat(np.arange(len(examples), dtype=np.int32), [len(e.y) for e in examples])
    bag_ids = np.concatenate([e.prompt for e in examples]).astype(np.int32)
    bag_w = np.concatenate([e.weights for e in examples]).astype(np.float32)
    bag_row = np.repeat(np.arange(len(examples), dtype=np.int32), [len(e.prompt) for e in examples])
    return _Batch(ctx, y, row, bag_ids, bag_w, bag_row, len(examples))


def _bag(params: Mapping[str, np.ndarray], batch: _Batch) -> np.ndarray:
    bag = np.zeros((batch.n_rows, BAG_DIM), np.float32)
    if batch.bag_ids.size:
        np.add.at(bag, batch.bag_row, params["P"][batch.bag_ids] * batch.bag_w[:, None])
    return bag


def _forward(params: Mapping[str, np.ndarray], batch: _Batch) -> tuple[np.ndarray, dict[str, Any]]:
    bag = _bag(params, batch)
    n = batch.y.shape[0]
    x = np.concatenate([params["E"][batch.ctx].reshape(n, CONTEXT * EMBED_DIM), bag[batch.row]], axis=1)
    h = np.tanh(x @ params["W1"] + params["b1"])
    logits = h @ params["W2"] + params["b2"]
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits, {"x": x, "h": h}


def _nll(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    return -np.log(np.maximum(probs[np.arange(y.shape[0]), y], 1e-12))


def _loss_and_grads(params: Mapping[str, np.ndarray], batch: _Batch,
                    grads: dict[str, np.ndarray], scale: float) -> float:
    """Add ``scale`` times the gradient of the summed token loss to ``grads``; return that sum."""
    probs, cache = _forward(params, batch)
    n = batch.y.shape[0]
    loss_sum = float(_nll(probs, batch.y).sum())
    d = probs
    d[np.arange(n), batch.y] -= 1.0
    d *= scale
    h, x = cache["h"], cache["x"]
    grads["W2"] += h.T @ d
    grads["b2"] += d.sum(axis=0)
    dh = d @ params["W2"].T
    dh *= 1.0 - h * h
    grads["W1"] += x.T @ dh
    grads["b1"] += dh.sum(axis=0)
    dx = dh @ params["W1"].T
    k = CONTEXT * EMBED_DIM
    np.add.at(grads["E"], batch.ctx.reshape(-1), dx[:, :k].reshape(-1, EMBED_DIM))
    if batch.bag_ids.size:
        dbag = np.zeros((batch.n_rows, BAG_DIM), np.float32)
        np.add.at(dbag, batch.row, dx[:, k:])
        np.add.at(grads["P"], batch.bag_ids, dbag[batch.bag_row] * batch.bag_w[:, None])
    return loss_sum


class TinyLM:
    """A trained (or base) tiny language model: tokenizer plus weights.

    :param words: the word pieces of the vocabulary (bytes and special tokens are implicit).
    :param params: the weight arrays.
    :param meta: free-form JSON-able facts (base model, customization type, ...); a
        ``customization_type`` of ``CONTINUED_PRE_TRAINING`` makes :meth:`generate` continue
        the prompt rather than answer it.
    :param idf: the weight of every token in the prompt summary (all ones when omitted).
    """

    def __init__(self, words: Sequence[str], params: Mapping[str, np.ndarray],
                 meta: Mapping[str, Any] | None = None, idf: np.ndarray | None = None) -> None:
        self.tokenizer = _Tokenizer(words, idf)
        self.params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
        self.meta = dict(meta or {})

    @property
    def vocab_size(self) -> int:
        """Number of token ids (special tokens, 256 bytes and the word pieces)."""
        return self.tokenizer.size

    # serialization
    def to_bytes(self) -> bytes:
        """Serialize to a compressed ``.npz`` blob (no pickle)."""
        header = {"format": _FORMAT, "words": self.tokenizer.words, "meta": self.meta,
                  "context": CONTEXT, "embed": EMBED_DIM, "bag": BAG_DIM, "hidden": HIDDEN_DIM}
        buf = io.BytesIO()
        arrays: dict[str, Any] = {f"param_{k}": v for k, v in self.params.items()}
        arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
        arrays["idf"] = self.tokenizer.idf
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TinyLM:
        """Rebuild a model written by :meth:`to_bytes`.

        :raises ValueError: when ``data`` is not such a blob.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                header = json.loads(bytes(npz["header"]).decode())
                params = {k[len("param_"):]: npz[k] for k in npz.files if k.startswith("param_")}
                idf = npz["idf"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a serialized TinyLM: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise ValueError(f"not a serialized TinyLM (format {found!r})")
        shape = tuple(header.get(k) for k in ("context", "embed", "bag", "hidden"))
        if shape != (CONTEXT, EMBED_DIM, BAG_DIM, HIDDEN_DIM):
            raise ValueError(f"TinyLM blob has an incompatible architecture {shape}")
        try:
            return cls(header["words"], params, header.get("meta"), idf)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"not a serialized TinyLM: {exc}") from None

    # inference
    def loss(self, records: Iterable[Mapping[str, Any]]) -> float:
        """Mean token cross-entropy of the targets of ``records`` under this model."""
        cpt = self.meta.get("customization_type") == CustomizationType.CONTINUED_PRE_TRAINING.value
        examples = _examples(self.tokenizer, (record_text(r) for r in records), cpt=cpt)
        return _evaluate(self.params, examples)

    def generate(self, prompt: str, *, max_tokens: int = 64, temperature: float = 0.0,
                 seed: int | None = None) -> Generation:
        """Continue ``prompt``: greedy when ``temperature`` is 0, else sampled.

        :param prompt: the prompt text (see :func:`record_text` for how requests map to it).
        :param max_tokens: the most tokens to generate.
        :param temperature: softmax temperature; 0 means greedy.
        :param seed: seed of the sampler (sampling only).
        """
        tok = self.tokenizer
        prompt_ids = tok.encode(prompt)
        used = prompt_ids[-MAX_PROMPT_TOKENS:]
        seq = [BOS, *used, SEP] if used else [BOS]
        if self.meta.get("customization_type") == CustomizationType.CONTINUED_PRE_TRAINING.value:
            # Trained on running text: the prompt is the beginning of the text to continue.
            seq, used = [BOS, *prompt_ids[-CONTEXT:]], []
        p = self.params
        used_arr = np.asarray(used, np.int64)
        bag = (tok.bag_weights(used_arr) @ p["P"][used_arr] if used
               else np.zeros(BAG_DIM, np.float32))
        rng = np.random.default_rng(seed)
        out: list[int] = []
        stop = "max_tokens"
        blocked = np.array([PAD, BOS, SEP])
        for _ in range(max(0, int(max_tokens))):
            ctx = ([PAD] * CONTEXT + seq)[-CONTEXT:]
            x = np.concatenate([p["E"][ctx].reshape(-1), bag])
            logits = np.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
            logits[blocked] = -np.inf
            if temperature > 0:
                z = logits / float(temperature)
                z = np.exp(z - z.max())
                nxt = int(rng.choice(z.shape[0], p=z / z.sum()))
            else:
                nxt = int(np.argmax(logits))
            if nxt == EOS:
                stop = "end_turn"
                break
            out.append(nxt)
            seq.append(nxt)
        return Generation(tok.decode(out), len(prompt_ids), len(out), stop)


# --- training ---------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """What :func:`train` returns: the model and Bedrock-shaped metrics.

    ``training_loss`` is the mean of the step losses of the last epoch (a single step's loss
    is too noisy at batch size 1); ``validation_loss`` is the last epoch-end validation loss,
    or None without validation data.
    """

    model: TinyLM
    step_metrics: list[dict[str, Any]]
    validation_metrics: list[dict[str, Any]]
    training_loss: float
    validation_loss: float | None
    epochs: int
    steps: int
    hyperparameters: dict[str, float] = field(default_factory=dict)
    train_records: int = 0
    validation_records: int = 0
    train_tokens: int = 0
    stopped_early: bool = False


def _examples(tok: _Tokenizer, pairs: Iterable[tuple[str, str]], *, cpt: bool) -> list[_Example]:
    out: list[_Example] = []
    for prompt, target in pairs:
        target_ids = tok.encode(target)
        if cpt:
            # Unlabelled text: every token is a target, in windows of MAX_TARGET_TOKENS; a
            # window still sees the tokens just before it, as in one long sequence.
            ids = tok.encode(prompt + ("\n" if prompt and target else "") + target)
            padded = [PAD] * (CONTEXT - 1) + [BOS, *ids, EOS]
            n = len(ids) + 1
            for start in range(0, n, MAX_TARGET_TOKENS):
                stop = min(start + MAX_TARGET_TOKENS, n)
                ctx = np.array([padded[i:i + CONTEXT] for i in range(start, stop)], np.int32)
                y = np.asarray(padded[start + CONTEXT:stop + CONTEXT], np.int32)
                none = np.zeros(0, np.int32)
                out.append(_Example(ctx, y, none, none.astype(np.float32)))
        else:
            out.append(_make_example(tok, tok.encode(prompt), target_ids[:MAX_TARGET_TOKENS]))
    return out


def _chunks(examples: Sequence[_Example]) -> Iterable[list[_Example]]:
    chunk: list[_Example] = []
    size = 0
    for ex in examples:
        if chunk and size + len(ex.y) > MAX_CHUNK_POSITIONS:
            yield chunk
            chunk, size = [], 0
        chunk.append(ex)
        size += len(ex.y)
    if chunk:
        yield chunk


def _evaluate(params: Mapping[str, np.ndarray], examples: Sequence[_Example]) -> float:
    total, count = 0.0, 0
    for chunk in _chunks(examples):
        batch = _collate(chunk)
        probs, _ = _forward(params, batch)
        total += float(_nll(probs, batch.y).sum())
        count += batch.y.shape[0]
    return total / count if count else float("nan")


def _hp_specs(base_model_id: str, customization_type: str) -> tuple[HyperParameter, ...]:
    try:
        spec = resolve_model(base_model_id)
    except UnknownModelError:
        return ()
    for ctype in (customization_type, CustomizationType.FINE_TUNING):
        try:
            return spec.customization(ctype).hyperparameters
        except UnsupportedCustomizationError:
            continue
    return ()


def _number(name: str, raw: object) -> float:
    try:
        value = float(str(raw).strip())
    except ValueError:
        raise ValueError(f"hyperparameter {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"hyperparameter {name} must be finite, got {raw!r}")
    return value


_USED_HYPERPARAMETERS = frozenset({
    "epochCount", "batchSize", "learningRate", "learningRateMultiplier", "learningRateWarmupSteps",
    "earlyStoppingThreshold", "earlyStoppingPatience", "evalPercentage", "stepCount",
})


def resolve_hyperparameters(hyperparameters: Mapping[str, Any] | None, *, customization_type: str,
                            base_model_id: str) -> dict[str, float]:
    """The settings the trainer uses: requested values over the family's documented defaults.

    Returns ``epochs``, ``batch_size``, ``learning_rate`` (the effective Adam step size),
    ``lr_ratio`` (requested / documented default), ``warmup_steps``, ``step_count`` (0 = by
    epochs), ``early_stopping_threshold``, ``early_stopping_patience`` (0 = off) and
    ``eval_percentage`` (0 = off).

    :raises ValueError: when a value is not a number.
    """
    specs = {hp.name: hp for hp in _hp_specs(base_model_id, customization_type)}
    values: dict[str, float] = {n: float(hp.default) for n, hp in specs.items() if hp.default is not None}
    for name, raw in (hyperparameters or {}).items():
        # Others (rftConfig's reasoningEffort, Titan embeddings' epochCount "Auto", ...) do not
        # change this model and are left to request validation.
        if name in _USED_HYPERPARAMETERS and str(raw).strip().lower() != "auto":
            values[name] = _number(name, raw)

    epochs = int(values.get("epochCount", 2))
    batch = int(values.get("batchSize", 1))
    if "learningRateMultiplier" in values:
        ratio = values["learningRateMultiplier"]
    elif "learningRate" in values:
        lr_spec = specs.get("learningRate")
        reference = lr_spec.default if lr_spec and lr_spec.default else DEFAULT_REFERENCE_LR
        ratio = values["learningRate"] / float(reference)
    else:
        ratio = 1.0
    ratio = max(ratio, 0.0)
    return {
        "epochs": float(max(epochs, 1)),
        "batch_size": float(max(batch, 1)),
        "lr_ratio": ratio,
        # Square-root batch scaling keeps large-batch families (Claude: 32 records a step)
        # learning in the few steps their defaults give.
        "learning_rate": BASE_LEARNING_RATE * min(math.sqrt(ratio), MAX_LR_FACTOR)
        * min(math.sqrt(max(batch, 1)), MAX_BATCH_LR_FACTOR),
        "warmup_steps": float(max(int(values.get("learningRateWarmupSteps", 0)), 0)),
        "step_count": float(max(int(values.get("stepCount", 0)), 0)),
        "early_stopping_threshold": max(values.get("earlyStoppingThreshold", 0.0), 0.0),
        "early_stopping_patience": float(max(int(values.get("earlyStoppingPatience", 0)), 0)),
        "eval_percentage": min(max(values.get("evalPercentage", 0.0), 0.0), 90.0),
    }


# --- BLAS threads -----------------------------------------------------------------------------
#
# The matrices here are tiny; a multi-threaded BLAS spends more time waking and spinning its
# threads than multiplying, and on a busy two-core machine that made training 10x slower
# (measured: 19 s instead of 1.9 s for the demo data). Training therefore runs with BLAS on one
# thread, restored afterwards: the OpenBLAS bundled with NumPy wheels is driven through ctypes
# (as threadpoolctl does); with another BLAS nothing changes.

_blas_lock = threading.Lock()
_blas_users = 0
_blas_saved: int | None = None


def _openblas_functions() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    libdir = Path(np.__file__).resolve().parent.parent / "numpy.libs"
    for path in sorted(libdir.glob("*openblas*")):
        try:
            lib = ctypes.CDLL(str(path))
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    return (lambda g=get: int(g())), (lambda n, p=put: p(n))
    return None


@functools.lru_cache(maxsize=1)
def _blas_threads() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    try:
        return _openblas_functions()
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the body with BLAS limited to one thread (process-wide, restored on exit)."""
    global _blas_users, _blas_saved
    controls = _blas_threads()
    if controls is None:
        yield
        return
    get, put = controls
    with _blas_lock:
        if _blas_users == 0:
            _blas_saved = get()
            put(1)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_saved is not None:
                put(_blas_saved)


class _Adam:
    """Adam with global-norm clipping, updating in place without temporaries (the update of
    the output layer dominates a step at batch size 1)."""

    def __init__(self, params: Mapping[str, np.ndarray]) -> None:
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.tmp = {k: np.empty_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], lr: float,
             b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> None:
        """Apply one update; ``grads`` is scaled in place by the clipping."""
        self.t += 1
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))
        clip = min(1.0, CLIP_NORM / (norm + 1e-12))
        step = lr * math.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        for k, g in grads.items():
            m, v, tmp = self.m[k], self.v[k], self.tmp[k]
            if clip < 1.0:
                g *= clip
            m *= b1
            np.multiply(g, 1.0 - b1, out=tmp)
            m += tmp
            v *= b2
            np.multiply(g, g, out=tmp)
            tmp *= 1.0 - b2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += eps
            np.divide(m, tmp, out=tmp)
            tmp *= step
            params[k] -= tmp


def train(train_records: Iterable[Mapping[str, Any]],
          validation_records: Sequence[Mapping[str, Any]] | None,
          hyperparameters: Mapping[str, str], *, customization_type: str, base_model_id: str,
          seed: int = 0, should_stop: Callable[[], bool] = lambda: False,
          teacher_model_id: str | None = None) -> TrainingResult:
    """Train a :class:`TinyLM` on ``train_records`` and record Bedrock-shaped metrics.

    :param train_records: records of any format :func:`record_text` reads.
    :param validation_records: scored at the end of every epoch; None or empty for none.
    :param hyperparameters: Bedrock's string map (``epochCount``, ``batchSize``,
        ``learningRate`` or ``learningRateMultiplier``, ``learningRateWarmupSteps``,
        ``earlyStoppingThreshold``/``earlyStoppingPatience``, ``evalPercentage``,
        ``stepCount``); missing ones take the family's documented defaults, unknown ones are
        ignored.
    :param customization_type: ``CONTINUED_PRE_TRAINING`` trains on every token; the other
        types on the target (completion / last assistant turn / reference answer).
    :param base_model_id: selects the documented defaults and learning-rate reference.
    :param seed: fixes initialisation, shuffling and subsampling; same inputs, same result.
    :param should_stop: polled before every step.
    :param teacher_model_id: for ``DISTILLATION``, the teacher that answers prompts without a
        golden answer (the emulator's :func:`base_model` of that id; default: the student's).
    :raises TrainingStopped: when ``should_stop()`` returns true.
    :raises ValueError: when there is no usable training record or a hyperparameter is not a
        number, or a record has an unsupported format.
    """
    with single_threaded_blas():
        return _train(train_records, validation_records, hyperparameters,
                      customization_type=customization_type, base_model_id=base_model_id,
                      seed=seed, should_stop=should_stop, teacher_model_id=teacher_model_id)


def _train(train_records: Iterable[Mapping[str, Any]],
           validation_records: Sequence[Mapping[str, Any]] | None,
           hyperparameters: Mapping[str, str], *, customization_type: str, base_model_id: str,
           seed: int, should_stop: Callable[[], bool], teacher_model_id: str | None) -> TrainingResult:
    ctype = str(getattr(customization_type, "value", customization_type))
    hp = resolve_hyperparameters(hyperparameters, customization_type=ctype, base_model_id=base_model_id)
    cpt = ctype == CustomizationType.CONTINUED_PRE_TRAINING.value
    rng = np.random.default_rng(seed)

    train_list = list(train_records)
    val_list = list(validation_records or [])
    if not val_list and hp["eval_percentage"] > 0 and len(train_list) > 1:
        # Cohere holds out evalPercentage of the training data when no validation set is given.
        order = rng.permutation(len(train_list))
        n_val = max(1, int(len(train_list) * hp["eval_percentage"] / 100.0))
        held = set(order[:n_val].tolist())
        val_list = [r for i, r in enumerate(train_list) if i in held]
        train_list = [r for i, r in enumerate(train_list) if i not in held]

    pairs = [record_text(record) for record in train_list]
    if ctype == CustomizationType.DISTILLATION.value and any(not t for _, t in pairs):
        # Prompts without a golden answer are answered by the teacher, as Bedrock's data
        # synthesis does; the emulator's teacher is a base model.
        teacher = base_model(teacher_model_id or base_model_id)
        pairs = [(p, t or teacher.generate(p, max_tokens=TEACHER_MAX_TOKENS).text) for p, t in pairs]
    tok = _Tokenizer.build(text for pair in pairs for text in pair)
    tok.fit_idf([tok.encode(prompt)[-MAX_PROMPT_TOKENS:] for prompt, _ in pairs])
    examples = [e for e in _examples(tok, pairs, cpt=cpt) if len(e.y)]
    if not examples:
        raise ValueError("no training records with text to learn from")
    val_examples = _examples(tok, (record_text(r) for r in val_list[:MAX_VALIDATION_RECORDS]), cpt=cpt)

    params = _init_params(tok.size, rng)
    opt = _Adam(params)
    batch_size = int(hp["batch_size"])
    warmup = int(hp["warmup_steps"])
    base_lr = hp["learning_rate"]
    max_steps = int(hp["step_count"]) or MAX_STEPS
    epochs = int(hp["epochs"])
    if hp["step_count"]:
        epochs = MAX_STEPS  # stepCount (image models) bounds the run instead of epochCount
    all_tokens = sum(len(e.y) for e in examples)
    per_epoch = len(examples) if all_tokens <= MAX_EPOCH_TOKENS else max(
        1, int(len(examples) * MAX_EPOCH_TOKENS / all_tokens))
    planned = min(max_steps, epochs * math.ceil(per_epoch / batch_size))

    step_metrics: list[dict[str, Any]] = []
    val_metrics: list[dict[str, Any]] = []
    step = 0
    epoch_losses: list[float] = []
    best = math.inf
    stale = 0
    stopped_early = False
    completed_epochs = 0
    train_tokens = 0
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    for epoch in range(epochs):
        order = rng.permutation(len(examples))
        chosen: list[_Example] = []
        budget = 0
        for i in order:
            if budget >= MAX_EPOCH_TOKENS:
                break
            chosen.append(examples[i])
            budget += len(examples[i].y)
        epoch_losses = []
        for start in range(0, len(chosen), batch_size):
            if step >= max_steps:
                break
            if should_stop():
                raise TrainingStopped(step, epoch)
            batch_examples = chosen[start:start + batch_size]
            n_tokens = sum(len(e.y) for e in batch_examples)
            for g in grads.values():
                g.fill(0.0)
            loss_sum = 0.0
            for chunk in _chunks(batch_examples):
                loss_sum += _loss_and_grads(params, _collate(chunk), grads, 1.0 / n_tokens)
            loss = loss_sum / n_tokens
            lr = base_lr * _schedule(step, warmup, planned)
            if lr > 0:
                opt.step(params, grads, lr)
            train_tokens += n_tokens
            epoch_losses.append(loss)
            step_metrics.append({"step_number": step, "epoch_number": epoch,
                                 "training_loss": loss, "perplexity": _ppl(loss)})
            step += 1
        completed_epochs = epoch + 1
        monitored = float(np.mean(epoch_losses)) if epoch_losses else math.inf
        if val_examples:
            vloss = _evaluate(params, val_examples)
            val_metrics.append({"step_number": max(step - 1, 0), "epoch_number": epoch,
                                "validation_loss": vloss, "perplexity": _ppl(vloss)})
            monitored = vloss
        if step >= max_steps:
            break
        if hp["early_stopping_patience"] > 0:
            if best - monitored > hp["early_stopping_threshold"]:
                best, stale = monitored, 0
            else:
                stale += 1
                if stale >= hp["early_stopping_patience"]:
                    stopped_early = completed_epochs < epochs
                    break

    model = TinyLM(tok.words, params, {
        "base_model_id": base_model_id, "customization_type": ctype, "seed": seed,
        "epochs": completed_epochs, "steps": step,
    }, tok.idf)
    return TrainingResult(
        model=model,
        step_metrics=step_metrics,
        validation_metrics=val_metrics,
        training_loss=float(np.mean(epoch_losses)) if epoch_losses else float("nan"),
        validation_loss=val_metrics[-1]["validation_loss"] if val_metrics else None,
        epochs=completed_epochs,
        steps=step,
        hyperparameters=hp,
        train_records=len(train_list),
        validation_records=len(val_list),
        train_tokens=train_tokens,
        stopped_early=stopped_early,
    )


def _schedule(step: int, warmup: int, planned: int) -> float:
    """Linear warm-up over ``warmup`` steps, then linear decay to LR_FLOOR at the last step."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    span = max(planned - warmup, 1)
    return max(LR_FLOOR, 1.0 - (1.0 - LR_FLOOR) * (step - warmup) / span)


def _ppl(loss: float) -> float:
    return math.exp(min(loss, 700.0))


# --- base (foundation) models -----------------------------------------------------------------

_BASE_CORPUS: tuple[tuple[str, str], ...] = (
    ("Hello", "Hello! How can I help you today?"),
    ("Hi", "Hi! What would you like to know?"),
    ("Who are you?", "I am a general-purpose assistant model."),
    ("What can you do?", "I can answer questions, summarize text and help with writing."),
    ("Thank you", "You are welcome."),
    ("Summarize this text.", "Here is a short summary of the text."),
    ("Translate this sentence.", "Here is the translation of the sentence."),
    ("Write a short poem.", "The quiet river carries light, and evening folds the hills in night."),
    ("What is the capital of France?", "I believe the answer is Paris, but please check a reliable source."),
    ("Tell me a fact.", "Water boils at 100 degrees Celsius at sea level."),
    ("What is 2 + 2?", "2 + 2 equals 4."),
    ("Explain machine learning.", "Machine learning builds models that learn patterns from data."),
    ("What is the weather today?", "I do not have access to live weather data."),
    ("Classify the sentiment of this review.", "The sentiment appears to be neutral."),
    ("Answer the question.", "I am not sure; could you give me more details?"),
    ("Help me.", "Of course. Please tell me more about what you need."),
)


@functools.lru_cache(maxsize=32)
def base_model(base_model_id: str) -> TinyLM:
    """A deterministic base model for invoking a foundation model through the emulator.

    It is briefly trained on a small built-in corpus of generic assistant replies, with a seed
    derived from ``base_model_id``, so it answers politely but knows nothing specific: a
    fine-tuned model beats it on its own data. Cached per identifier.
    """
    records = [{"prompt": p, "completion": c} for p, c in _BASE_CORPUS]
    seed = zlib.crc32(base_model_id.encode("utf-8"))
    result = train(records, None, {"epochCount": "30", "batchSize": "4", "learningRate": "1e-5",
                                   "learningRateWarmupSteps": "0"},
                   customization_type="FINE_TUNING", base_model_id="", seed=seed)
    model = result.model
    model.meta.update({"base_model_id": base_model_id, "customization_type": None})
    return model
