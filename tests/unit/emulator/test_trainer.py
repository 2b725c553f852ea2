"""The emulator's NumPy language model: training behaviour, formats, serialization, generation."""

from __future__ import annotations

import itertools
import json
import math
from importlib import resources
from typing import Any

import numpy as np
import pytest

from airflow_bedrock_ft.emulator import trainer
from airflow_bedrock_ft.emulator.trainer import (
    Generation,
    TinyLM,
    TrainingStopped,
    base_model,
    prompt_text,
    record_text,
    train,
)

LLAMA = "meta.llama3-1-8b-instruct-v1:0"
NOVA = "amazon.nova-micro-v1:0:128k"
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0:200k"
COHERE = "cohere.command-light-text-v14:7:4k"
TITAN = "amazon.titan-text-express-v1:0:8k"
FT = "FINE_TUNING"


def _demo(name: str) -> list[dict]:
    path = resources.files("airflow_bedrock_ft") / "data" / "demo" / name
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo_train() -> list[dict]:
    return _demo("train.jsonl")


@pytest.fixture(scope="module")
def demo_validation() -> list[dict]:
    return _demo("validation.jsonl")


@pytest.fixture(scope="module")
def small(demo_train: list[dict]) -> list[dict]:
    return demo_train[:120]


@pytest.fixture(scope="module")
def trained(demo_train: list[dict], demo_validation: list[dict]) -> trainer.TrainingResult:
    """The demo data at Llama 3.1's documented defaults (5 epochs, batch 1, lr 1e-4)."""
    return train(demo_train, demo_validation, {}, customization_type=FT, base_model_id=LLAMA)


def _epoch_means(result: trainer.TrainingResult) -> list[float]:
    by_epoch: dict[int, list[float]] = {}
    for row in result.step_metrics:
        by_epoch.setdefault(row["epoch_number"], []).append(row["training_loss"])
    return [float(np.mean(by_epoch[e])) for e in sorted(by_epoch)]


# --- training behaviour -----------------------------------------------------------------------


def test_training_loss_and_validation_loss_fall_over_the_epochs(trained: trainer.TrainingResult) -> None:
    means = _epoch_means(trained)
    assert len(means) == 5
    assert all(later < earlier for earlier, later in itertools.pairwise(means))
    val = [row["validation_loss"] for row in trained.validation_metrics]
    assert len(val) == 5
    assert val[-1] < val[0] / 5
    assert trained.training_loss == pytest.approx(means[-1])
    assert trained.validation_loss == val[-1]
    # The untrained model starts near the uniform distribution over the vocabulary.
    assert trained.step_metrics[0]["training_loss"] > 0.5 * math.log(trained.model.vocab_size)


def test_step_and_validation_metrics_have_bedrock_shape(trained: trainer.TrainingResult,
                                                        demo_train: list[dict]) -> None:
    steps = trained.step_metrics
    assert trained.steps == len(steps) == 5 * len(demo_train)  # batch size 1
    assert [row["step_number"] for row in steps] == list(range(len(steps)))
    assert {row["epoch_number"] for row in steps} == {0, 1, 2, 3, 4}
    for row in steps[:50]:
        assert set(row) == {"step_number", "epoch_number", "training_loss", "perplexity"}
        assert row["perplexity"] == pytest.approx(math.exp(row["training_loss"]))
    per_epoch = len(demo_train)
    assert [row["step_number"] for row in trained.validation_metrics] == [
        per_epoch * (e + 1) - 1 for e in range(5)
    ]
    for row in trained.validation_metrics:
        assert set(row) == {"step_number", "epoch_number", "validation_loss", "perplexity"}
        assert row["perplexity"] == pytest.approx(math.exp(row["validation_loss"]))


def test_validation_loss_is_measured_on_the_validation_records(trained: trainer.TrainingResult,
                                                                demo_validation: list[dict],
                                                                demo_train: list[dict]) -> None:
    assert trained.model.loss(demo_validation) == pytest.approx(trained.validation_loss, rel=1e-4)
    nonsense = [{"prompt": r["prompt"], "completion": "Bananas are purple on Tuesdays."}
                for r in demo_validation[:20]]
    assert trained.validation_loss is not None
    assert trained.model.loss(nonsense) > 10 * trained.validation_loss


def test_more_epochs_give_a_lower_training_loss(small: list[dict]) -> None:
    losses = [train(small, None, {"epochCount": str(n)}, customization_type=FT,
                    base_model_id=LLAMA).training_loss for n in (1, 2, 4)]
    assert losses[0] > losses[1] > losses[2]


def test_a_learning_rate_far_below_the_default_leaves_the_loss_higher(small: list[dict]) -> None:
    def loss(lr: str) -> float:
        return train(small, None, {"epochCount": "2", "learningRate": lr}, customization_type=FT,
                     base_model_id=LLAMA).training_loss

    low, default = loss("5e-6"), loss("1e-4")
    assert low > default + 0.5


def test_the_largest_documented_learning_rate_still_trains(small: list[dict]) -> None:
    result = train(small, None, {"epochCount": "3", "learningRate": "0.1"}, customization_type=FT,
                   base_model_id=LLAMA)
    means = _epoch_means(result)
    assert math.isfinite(result.training_loss)
    assert means[-1] < means[0] / 2


def test_learning_rate_is_read_relative_to_the_family_default(small: list[dict]) -> None:
    # 1e-5 is Nova's default but a tenth of Llama's: the same number trains Nova faster.
    nova = train(small, None, {"epochCount": "1", "learningRate": "1e-5", "learningRateWarmupSteps": "0"},
                 customization_type=FT, base_model_id=NOVA)
    llama = train(small, None, {"epochCount": "1", "learningRate": "1e-5"}, customization_type=FT,
                  base_model_id=LLAMA)
    assert nova.hyperparameters["lr_ratio"] == pytest.approx(1.0)
    assert llama.hyperparameters["lr_ratio"] == pytest.approx(0.1)
    assert nova.training_loss < llama.training_loss


def test_claude_learning_rate_multiplier_scales_the_learning_rate(small: list[dict]) -> None:
    haiku = [{"system": "Answer briefly.", "messages": [
        {"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["completion"]}]}
        for r in small]

    def loss(mult: str) -> float:
        return train(haiku, None, {"epochCount": "3", "batchSize": "8", "learningRateMultiplier": mult},
                     customization_type=FT, base_model_id=HAIKU).training_loss

    assert loss("0.1") > loss("1") + 0.3


def test_warmup_slows_the_first_steps(small: list[dict]) -> None:
    def first_epoch(warmup: str) -> float:
        result = train(small, None, {"epochCount": "1", "learningRate": "1e-5",
                                     "learningRateWarmupSteps": warmup},
                       customization_type=FT, base_model_id=NOVA)
        return _epoch_means(result)[0]

    assert first_epoch("100") > first_epoch("0") + 0.2


def test_batch_size_sets_the_number_of_steps(small: list[dict]) -> None:
    result = train(small, None, {"epochCount": "2", "batchSize": "32"}, customization_type=FT,
                   base_model_id=HAIKU)
    assert result.steps == 2 * math.ceil(len(small) / 32)
    assert [r["epoch_number"] for r in result.step_metrics] == [0] * 4 + [1] * 4


def test_training_is_deterministic_for_a_seed(small: list[dict]) -> None:
    def run(seed: int) -> trainer.TrainingResult:
        return train(small, small[:20], {"epochCount": "1"}, customization_type=FT, base_model_id=LLAMA,
                     seed=seed)

    a, b, c = run(7), run(7), run(8)
    assert a.step_metrics == b.step_metrics
    assert a.validation_metrics == b.validation_metrics
    assert a.model.to_bytes() == b.model.to_bytes()
    assert a.step_metrics != c.step_metrics


def test_should_stop_raises_training_stopped(small: list[dict]) -> None:
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 25

    with pytest.raises(TrainingStopped) as info:
        train(small, None, {"epochCount": "3"}, customization_type=FT, base_model_id=LLAMA, should_stop=stop)
    assert info.value.step == 25
    assert info.value.epoch == 0


def test_early_stopping_ends_training_when_validation_stops_improving(small: list[dict],
                                                                      demo_validation: list[dict]) -> None:
    def haiku(records: list[dict]) -> list[dict]:
        return [{"messages": [{"role": "user", "content": r["prompt"]},
                              {"role": "assistant", "content": r["completion"]}]} for r in records]

    # Validation asks mostly about facts missing from this small training set: its loss
    # soon stops improving by much.
    train_set, val_set = haiku(small), haiku(demo_validation[:40])
    patient = train(train_set, val_set, {"epochCount": "6", "batchSize": "8", "earlyStoppingThreshold": "0",
                                         "earlyStoppingPatience": "10"},
                    customization_type=FT, base_model_id=HAIKU)
    impatient = train(train_set, val_set, {"epochCount": "6", "batchSize": "8",
                                           "earlyStoppingThreshold": "0.1", "earlyStoppingPatience": "1"},
                      customization_type=FT, base_model_id=HAIKU)
    assert patient.epochs == 6
    assert not patient.stopped_early
    assert impatient.epochs < 6
    assert impatient.stopped_early
    assert len(impatient.validation_metrics) == impatient.epochs


def test_cohere_holds_out_eval_percentage_without_a_validation_set(small: list[dict]) -> None:
    cohere = train(small, None, {"epochCount": "1"}, customization_type=FT, base_model_id=COHERE)
    llama = train(small, None, {"epochCount": "1"}, customization_type=FT, base_model_id=LLAMA)
    assert cohere.validation_records == int(len(small) * 0.2)
    assert cohere.train_records == len(small) - cohere.validation_records
    assert len(cohere.validation_metrics) == 1
    assert llama.validation_metrics == []
    assert llama.validation_loss is None


def test_step_count_bounds_image_model_training() -> None:
    records = [{"image-ref": f"s3://b/{i}.png", "caption": f"a photo of a red car number {i}"}
               for i in range(30)]
    result = train(records, None, {"stepCount": "12", "batchSize": "8"}, customization_type=FT,
                   base_model_id="amazon.titan-image-generator-v1:0")
    assert result.steps == 12


@pytest.mark.parametrize("hp", [{"epochCount": "many"}, {"learningRate": "nan"}])
def test_bad_hyperparameters_are_rejected(small: list[dict], hp: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="hyperparameter"):
        train(small, None, hp, customization_type=FT, base_model_id=LLAMA)


def test_no_training_text_is_an_error() -> None:
    with pytest.raises(ValueError, match="no training records"):
        train([], None, {}, customization_type=FT, base_model_id=LLAMA)


# --- generation -------------------------------------------------------------------------------


def test_greedy_generation_reproduces_trained_answers(trained: trainer.TrainingResult,
                                                      demo_train: list[dict],
                                                      demo_validation: list[dict]) -> None:
    def exact(records: list[dict]) -> int:
        return sum(trained.model.generate(r["prompt"]).text == r["completion"] for r in records)

    assert exact(demo_train[:40]) >= 36
    # Held-out phrasings of known facts are mostly answered too.
    assert exact(demo_validation[:40]) >= 30
    gen = trained.model.generate(demo_train[0]["prompt"])
    assert gen.stop_reason == "end_turn"
    assert gen.output_tokens >= len(gen.text.split())
    assert gen.input_tokens >= len(demo_train[0]["prompt"].split())


def test_the_base_model_does_not_know_the_demo_answers(demo_train: list[dict]) -> None:
    base = base_model(LLAMA)
    assert sum(base.generate(r["prompt"]).text == r["completion"] for r in demo_train[:20]) == 0


def test_converse_training_answers_the_same_question_asked_through_a_request() -> None:
    records = _demo("converse_train.jsonl")
    result = train(records, None, {}, customization_type=FT, base_model_id=NOVA)
    right = 0
    for record in records[:30]:
        request = {"system": record["system"], "messages": record["messages"][:1]}
        prompt, target = record_text(request)
        assert target == ""
        right += result.model.generate(prompt).text == record["messages"][1]["content"][0]["text"]
    assert right >= 24


def test_max_tokens_and_sampling(trained: trainer.TrainingResult) -> None:
    short = trained.model.generate("What is the capital of France?", max_tokens=3)
    assert short.stop_reason == "max_tokens"
    assert short.output_tokens == 3
    a = trained.model.generate("Tell me something", temperature=1.5, seed=3, max_tokens=20)
    b = trained.model.generate("Tell me something", temperature=1.5, seed=3, max_tokens=20)
    assert a == b
    none = trained.model.generate("x", max_tokens=0)
    assert none == Generation("", 1, 0, "max_tokens")


def test_serialization_round_trip(trained: trainer.TrainingResult, demo_validation: list[dict]) -> None:
    blob = trained.model.to_bytes()
    copy = TinyLM.from_bytes(blob)
    assert copy.meta == trained.model.meta
    assert copy.loss(demo_validation[:30]) == pytest.approx(trained.model.loss(demo_validation[:30]))
    for record in demo_validation[:5]:
        assert copy.generate(record["prompt"]) == trained.model.generate(record["prompt"])
    assert copy.to_bytes() == blob


@pytest.mark.parametrize("blob", [b"", b"not a model", b"PK\x03\x04garbage"])
def test_from_bytes_rejects_other_data(blob: bytes) -> None:
    with pytest.raises(ValueError, match="TinyLM"):
        TinyLM.from_bytes(blob)


def test_base_model_is_deterministic_and_per_model() -> None:
    a = base_model(NOVA)
    assert base_model(NOVA) is a
    assert a.generate("Hello").text == base_model(NOVA).generate("Hello").text
    base_model.cache_clear()
    assert base_model(NOVA).to_bytes() == a.to_bytes()
    assert base_model(LLAMA).to_bytes() != a.to_bytes()
    assert a.generate("Hello").stop_reason == "end_turn"


def test_tokenizer_round_trips_any_text() -> None:
    tok = trainer._Tokenizer.build(["The capital of France is Paris."])
    for text in ["The capital of France is Paris.", "Zürich — 東京 🚀\n\ttabs  and  spaces ",
                 "", "a_b 12.5%"]:
        assert tok.decode(tok.encode(text)) == text
    # Known words are single tokens; unknown ones fall back to bytes.
    assert len(tok.encode(" Paris")) == 1
    assert len(tok.encode(" Tokyo")) == len(b" Tokyo")


# --- record formats ---------------------------------------------------------------------------

_FORMATS: dict[str, tuple[dict[str, Any], tuple[str, str]]] = {
    "prompt-completion": ({"prompt": "Q?", "completion": "A."}, ("Q?", "A.")),
    "converse": ({"schemaVersion": "bedrock-conversation-2024", "system": [{"text": "Be brief."}],
                  "messages": [{"role": "user", "content": [{"text": "Q?"},
                                                            {"image": {"format": "png", "source": {}}}]},
                               {"role": "assistant", "content": [{"text": "A."}]}]},
                 ("Be brief.\nQ?", "A.")),
    "converse multi-turn": ({"messages": [{"role": "user", "content": [{"text": "Hi"}]},
                                          {"role": "assistant", "content": [{"text": "Hello"}]},
                                          {"role": "user", "content": [{"text": "Q?"}]},
                                          {"role": "assistant", "content": [{"text": "A."}]}]},
                            ("Hi\nHello\nQ?", "A.")),
    "claude haiku": ({"system": "Be brief.", "messages": [{"role": "user", "content": "Q?"},
                                                          {"role": "assistant", "content": "A."}]},
                     ("Be brief.\nQ?", "A.")),
    "continued pre-training": ({"input": "Some text."}, ("", "Some text.")),
    "distillation prompt": ({"schemaVersion": "bedrock-conversation-2024",
                             "messages": [{"role": "user", "content": [{"text": "Q?"}]}]}, ("Q?", "")),
    "distillation golden answer": ({"schemaVersion": "bedrock-conversation-2024",
                                    "messages": [{"role": "user", "content": [{"text": "Q?"}]},
                                                 {"role": "assistant", "content": [{"text": "A."}]}]},
                                   ("Q?", "A.")),
    "rft": ({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q?"}],
             "reference_answer": {"answer": 4}, "task": "math"},
            ("Be brief.\nQ?", '{"answer": 4}')),
    "invocation log": ({"schemaType": "ModelInvocationLog", "modelId": "amazon.nova-pro-v1:0",
                        "input": {"inputBodyJson": {"messages": [{"role": "user", "content": [{"text": "Q?"}]}]}},
                        "output": {"outputBodyJson": {"output": {"message": {
                            "role": "assistant", "content": [{"text": "A."}]}}}}},
                       ("Q?", "A.")),
    "image caption": ({"image-ref": "s3://b/i.png", "caption": "A cat."}, ("", "A cat.")),
    "titan request": ({"inputText": "User: Q?\nBot:"}, ("Q?", "")),
}


@pytest.mark.parametrize("name", sorted(_FORMATS))
def test_record_text_reads_every_format(name: str) -> None:
    record, expected = _FORMATS[name]
    assert record_text(record) == expected


def test_record_text_rejects_unknown_records() -> None:
    with pytest.raises(ValueError, match="unsupported record format"):
        record_text({"question": "Q?"})


def test_prompt_text_strips_llama_chat_templates() -> None:
    llama3 = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nQ?<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert prompt_text(llama3) == "Be brief.\nQ?"
    assert prompt_text("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nQ? [/INST]") == "Be brief.\nQ?"
    assert prompt_text("plain question") == "plain question"


@pytest.mark.parametrize("name", sorted(set(_FORMATS) - {"distillation prompt", "titan request"}))
def test_train_accepts_every_text_format(name: str) -> None:
    record = _FORMATS[name][0]
    ctype = "CONTINUED_PRE_TRAINING" if name == "continued pre-training" else FT
    result = train([record] * 8, [record], {"epochCount": "3", "batchSize": "1"},
                   customization_type=ctype, base_model_id=TITAN)
    assert result.steps == 24
    assert result.validation_loss is not None
    assert result.validation_loss < result.step_metrics[0]["training_loss"]


def test_continued_pre_training_learns_every_token() -> None:
    text = "the quick brown fox jumps over the lazy dog. " * 40
    result = train([{"input": text}], None, {"epochCount": "5", "batchSize": "1"},
                   customization_type="CONTINUED_PRE_TRAINING", base_model_id=TITAN)
    # Long text is cut into windows: several examples from one record.
    assert result.steps == 5 * math.ceil((len(trainer._pieces(text)) + 1) / trainer.MAX_TARGET_TOKENS)
    assert result.model.generate("the quick brown", max_tokens=6).text == " fox jumps over the lazy dog"


def test_distillation_prompts_without_answers_are_answered_by_the_teacher() -> None:
    prompts = [{"schemaVersion": "bedrock-conversation-2024",
                "messages": [{"role": "user", "content": [{"text": "Hello"}]}]}] * 10
    result = train(prompts, None, {"epochCount": "5"}, customization_type="DISTILLATION",
                   base_model_id=NOVA, teacher_model_id="amazon.nova-pro-v1:0")
    teacher_answer = base_model("amazon.nova-pro-v1:0").generate("Hello").text
    assert teacher_answer
    assert result.model.generate("Hello").text == teacher_answer


def test_rft_hyperparameters_that_do_not_apply_are_ignored(small: list[dict]) -> None:
    records = [{"messages": [{"role": "user", "content": r["prompt"]}], "reference_answer": r["completion"]}
               for r in small]
    hp = {"epochCount": "2", "batchSize": "16", "learningRate": "5e-5", "reasoningEffort": "high",
          "inferenceMaxTokens": "750", "trainingSamplePerPrompt": "4"}
    result = train(records, None, hp, customization_type="REINFORCEMENT_FINE_TUNING",
                   base_model_id="amazon.nova-2-lite-v1:0:256k")
    assert result.steps == 2 * math.ceil(len(small) / 16)
    assert result.hyperparameters["lr_ratio"] == pytest.approx(5.0)
    means = _epoch_means(result)
    assert means[1] < means[0]


def test_training_runs_blas_on_one_thread_and_restores_it() -> None:
    """Multi-threaded BLAS made the demo train 10x slower on a busy two-core machine."""
    controls = trainer._blas_threads()
    if controls is None:
        pytest.skip("NumPy is not linked against its bundled OpenBLAS")
    get, put = controls
    before = get()
    seen: list[int] = []

    def probe() -> bool:
        seen.append(get())
        return False

    put(2)
    try:
        train([{"prompt": "a", "completion": "b"}] * 3, None, {"epochCount": "1"}, customization_type=FT,
              base_model_id=LLAMA, should_stop=probe)
        assert seen == [1, 1, 1]
        assert get() == 2
    finally:
        put(before)
