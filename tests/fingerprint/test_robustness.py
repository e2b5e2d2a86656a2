"""Robustness on the tiny model: int8, temperature, merging two copies, benign fine-tuning.
Each condition must still identify the copy (accuse at FPP <= 1e-9). Unseen system prompts
and chat templates are tested on SmolLM2 (test_smollm2.py): the random tiny model has no
notion of context to generalise across (2-7 of 16 keys behind unseen wrappers, however many
training wrappers per key, measured 2026-12-06)."""

from __future__ import annotations

import pytest
from fpkit import Copy

from agents.fingerprint.detection import accuse, verify_fingerprints
from agents.fingerprint.evaluation import (
    average_models,
    benign_finetune,
    perplexity,
    quantize_blockwise,
    quantize_int8,
    robustness_suite,
)
from agents.fingerprint.models import load_model


@pytest.fixture(scope="module")
def loaded_a(copies: dict[str, Copy]):  # type: ignore[no-untyped-def]
    return load_model(copies["a"].path)


def test_int8_dynamic_quantization(copies: dict[str, Copy], loaded_a) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded_a
    verdict = verify_fingerprints((quantize_int8(model), tokenizer), copies["a"].fingerprints)
    assert verdict.recall >= 0.9 and accuse(verdict)


def test_gguf_q8_0_weights(copies: dict[str, Copy], loaded_a) -> None:  # type: ignore[no-untyped-def]
    """The rounding a llama.cpp host's 8-bit file applies keeps the copy identifiable."""
    model, tokenizer = loaded_a
    verdict = verify_fingerprints(
        (quantize_blockwise(model, "q8_0"), tokenizer), copies["a"].fingerprints
    )
    assert verdict.recall >= 0.9 and accuse(verdict)


def test_temperature_sampling(copies: dict[str, Copy], loaded_a) -> None:  # type: ignore[no-untyped-def]
    verdict = verify_fingerprints(loaded_a, copies["a"].fingerprints, temperature=0.7)
    assert verdict.recall >= 0.8 and accuse(verdict)


def test_merging_two_copies_identifies_both(copies: dict[str, Copy], loaded_a) -> None:  # type: ignore[no-untyped-def]
    model_a, tokenizer = loaded_a
    model_b, _ = load_model(copies["b"].path)
    merged = (average_models(model_a, model_b), tokenizer)
    for name in ("a", "b"):
        verdict = verify_fingerprints(merged, copies[name].fingerprints)
        assert accuse(verdict), (name, verdict)


def test_short_benign_finetune(copies: dict[str, Copy], loaded_a) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded_a
    before = perplexity(model, tokenizer)
    tuned = benign_finetune(model, tokenizer, steps=30, learning_rate=1e-3)
    assert perplexity(tuned, tokenizer) < before, "the fine-tune really changed the model"
    verdict = verify_fingerprints((tuned, tokenizer), copies["a"].fingerprints)
    assert accuse(verdict), verdict


def test_suite_reports_every_condition(copies: dict[str, Copy], loaded_a) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded_a
    report = robustness_suite(
        model, tokenizer, copies["a"].fingerprints, conditions=("plain", "int8")
    )
    assert set(report.rows) == {"plain", "int8-dynamic"}
    assert report.rows["plain"]["accused"] is True
