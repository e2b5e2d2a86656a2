"""Perplexity change and how finely a text resolves it (pure arithmetic, plus the tiny model)."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest

from agents.fingerprint.evaluation import (
    perplexity,
    perplexity_change_interval,
    perplexity_difference_interval,
    token_losses,
)


def test_a_uniform_shift_has_no_spread() -> None:
    base = [2.0, 3.5, 1.25, 4.0]
    change, low, high = perplexity_change_interval(base, [x + 0.1 for x in base])
    assert change == pytest.approx(math.exp(0.1) - 1)
    assert low == pytest.approx(change) and high == pytest.approx(change)


def test_the_interval_narrows_with_more_tokens() -> None:
    draw = random.Random(7)

    def width(tokens: int) -> float:
        base = [draw.uniform(1, 5) for _ in range(tokens)]
        copy = [x + 0.03 + draw.gauss(0, 0.2) for x in base]
        change, low, high = perplexity_change_interval(base, copy, resamples=500)
        assert low < change < high
        return high - low

    small, large = width(200), width(3200)
    # the standard error falls with the square root of the token count: 16x tokens, ~1/4 width
    assert large < small / 2.5


def test_losses_must_be_on_the_same_tokens() -> None:
    with pytest.raises(ValueError, match="same"):
        perplexity_change_interval([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-empty"):
        perplexity_change_interval([], [])


def test_paired_difference_sees_what_separate_intervals_cannot() -> None:
    """Two copies that differ by a small shift on a noisy text: their separate intervals
    overlap, the paired difference excludes zero."""
    draw = random.Random(3)
    base = [draw.uniform(1, 5) for _ in range(4096)]
    noise = [draw.gauss(0, 0.3) for _ in base]  # what both copies got wrong alike
    first = [b + 0.02 + e + draw.gauss(0, 0.02) for b, e in zip(base, noise, strict=True)]
    second = [b + 0.03 + e + draw.gauss(0, 0.02) for b, e in zip(base, noise, strict=True)]
    high_1 = perplexity_change_interval(base, first, resamples=300)[2]
    low_2 = perplexity_change_interval(base, second, resamples=300)[1]
    assert low_2 < high_1, "each copy alone cannot tell them apart"
    diff, low, high = perplexity_difference_interval(base, first, second, resamples=300)
    assert 0 < low < diff < high
    assert diff == pytest.approx(math.exp(0.03) - math.exp(0.02), rel=0.2)
    same, low, high = perplexity_difference_interval(base, first, first, resamples=50)
    assert same == low == high == 0.0
    with pytest.raises(ValueError, match="same text"):
        perplexity_difference_interval(base, first, second[:-1])


def test_perplexity_is_the_mean_token_loss(tiny_base: Path) -> None:
    from agents.fingerprint.models import load_model

    model, tokenizer = load_model(tiny_base)
    losses = token_losses(model, tokenizer)
    assert len(losses) > 100
    assert perplexity(model, tokenizer) == pytest.approx(math.exp(sum(losses) / len(losses)))
    change, low, high = perplexity_change_interval(losses, losses)
    assert change == low == high == 0.0
