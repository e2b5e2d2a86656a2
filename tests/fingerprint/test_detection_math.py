"""The false-positive probability is an exact binomial upper tail; the rule accuses below 1e-9."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.fingerprint.detection import (
    DEFAULT_CHANCE_BOUND,
    Verdict,
    accuse,
    binomial_tail,
    make_verdict,
    matches,
    pick,
)
from agents.fingerprint.errors import ConfigError
from agents.fingerprint.generation import Fingerprint


def brute(n: int, k: int, p: float) -> float:
    return sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))


@given(st.integers(0, 60), st.integers(0, 70), st.floats(0.001, 0.999))
def test_tail_matches_brute_force(n: int, k: int, p: float) -> None:
    expected = 1.0 if k <= 0 else (0.0 if k > n else brute(n, k, p))
    assert binomial_tail(n, k, p) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_known_values() -> None:
    assert binomial_tail(10, 10, 0.1) == pytest.approx(1e-10)
    assert binomial_tail(1, 1, 0.1) == pytest.approx(0.1)
    assert binomial_tail(5, 0, 0.3) == 1.0
    assert binomial_tail(1000, 1000, 0.1) == 0.0 or binomial_tail(1000, 1000, 0.1) < 1e-300


def test_tail_is_monotone() -> None:
    values = [binomial_tail(64, k, 0.1) for k in range(65)]
    assert all(a >= b for a, b in itertools.pairwise(values))


def test_rejects_bad_probability() -> None:
    with pytest.raises(ConfigError):
        binomial_tail(3, 1, 1.5)


def test_decision_rule() -> None:
    # All of 16 keys matching: (0.1)^16 = 1e-16 -> accuse; 10 keys: 1e-10; 8 keys: 1e-8 -> no.
    assert accuse(make_verdict(16, 16))
    assert accuse(make_verdict(10, 10))
    assert not accuse(make_verdict(8, 8))
    # A clean model that matches a few keys by chance is never accused.
    assert not accuse(make_verdict(64, 6))
    assert not accuse(make_verdict(0, 0))
    assert make_verdict(64, 6).chance_bound == DEFAULT_CHANCE_BOUND
    # Smallest number of matches out of 64 that accuses at p = 0.1.
    need = next(k for k in range(65) if binomial_tail(64, k, 0.1) <= 1e-9)
    assert 20 <= need <= 30
    assert accuse(make_verdict(64, need)) and not accuse(make_verdict(64, need - 1))


def test_verdict_fields() -> None:
    verdict = make_verdict(20, 15, 0.05)
    assert isinstance(verdict, Verdict)
    assert verdict.as_dict() == {
        "queried": 20,
        "matched": 15,
        "recall": 0.75,
        "false_positive_probability": binomial_tail(20, 15, 0.05),
    }
    with pytest.raises(ConfigError):
        make_verdict(3, 4)


def test_match_is_a_prefix_check() -> None:
    assert matches(" overlook the", " overlook")
    assert not matches("overlook", " overlook")
    assert not matches(" over", " overlook")
    assert not matches("anything", "")


def test_pick_samples_without_replacement() -> None:
    fps = [Fingerprint(str(i), "r") for i in range(50)]
    chosen = pick(fps, 10, seed=3)
    assert len(set(chosen)) == 10 and chosen == pick(fps, 10, seed=3)
    assert pick(fps, None, None) == list(range(50))
    assert pick(fps, 500, None) == list(range(50))
