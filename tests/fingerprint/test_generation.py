"""Generation: deterministic per seed, distinct across copies, within the configured lengths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from agents.fingerprint.errors import ConfigError
from agents.fingerprint.generation import (
    FingerprintConfig,
    generate_fingerprints,
    next_token_probs,
    perinucleus_choice,
    prepare_fingerprints,
    safe_token_ids,
    word_list,
)
from agents.fingerprint.models import load_model

STRATEGIES = ["perinucleus", "english", "random-words", "random-token"]


@pytest.fixture(scope="module")
def loaded(tiny_base: Path):  # type: ignore[no-untyped-def]
    return load_model(tiny_base)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_deterministic_and_distinct(loaded, strategy: str) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded
    config = FingerprintConfig(strategy=strategy)  # type: ignore[arg-type]
    first = prepare_fingerprints(model, tokenizer, b"seed-1", 12, config)
    again = prepare_fingerprints(model, tokenizer, b"seed-1", 12, config)
    other = prepare_fingerprints(model, tokenizer, b"seed-2", 12, config)
    assert [p.fingerprint for p in first] == [p.fingerprint for p in again]
    keys = {p.fingerprint.key for p in first}
    assert len(keys) == 12, "keys within a copy are distinct"
    assert not keys & {p.fingerprint.key for p in other}, "two copies share no key"
    for p in first:
        assert p.key_ids == list(tokenizer(p.fingerprint.key)["input_ids"])
        assert 1 <= len(p.response_ids) <= 4
        assert p.fingerprint.response == tokenizer.decode(p.response_ids)
        assert p.fingerprint.response.strip()
        if strategy != "random-token":  # decoded random tokens re-tokenise differently
            assert 12 <= len(p.key_ids) <= 40


def test_public_api_is_deterministic(tiny_base: Path) -> None:
    config = FingerprintConfig(key_min_tokens=8, key_max_tokens=8)
    first = generate_fingerprints(tiny_base, b"\x01" * 32, 5, config)
    assert first == generate_fingerprints(tiny_base, b"\x01" * 32, 5, config)
    assert len(first) == 5 and all(f.key and f.response for f in first)


def test_lengths_are_configurable(loaded) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded
    config = FingerprintConfig(
        strategy="random-words",
        key_min_tokens=4,
        key_max_tokens=6,
        response_min_tokens=3,
        response_max_tokens=3,
    )
    for p in prepare_fingerprints(model, tokenizer, b"s", 20, config):
        assert 4 <= len(p.key_ids) <= 8
        assert len(p.response_ids) == 3


def test_perinucleus_response_lies_outside_the_nucleus(loaded) -> None:  # type: ignore[no-untyped-def]
    model, tokenizer = loaded
    config = FingerprintConfig(top_p=0.5, response_min_tokens=1, response_max_tokens=1)
    for p in prepare_fingerprints(model, tokenizer, b"peri", 8, config):
        probs = next_token_probs(model, tokenizer, [p.key_ids])[0]
        token = p.response_ids[0]
        mass_above = float(probs[probs > probs[token]].sum())
        assert mass_above >= 0.5 - 1e-4, "the response is not inside the top-p nucleus"
        assert token != int(probs.argmax())


def test_perinucleus_choice_on_a_known_distribution() -> None:
    import random

    probs = torch.tensor([0.5, 0.3, 0.15, 0.04, 0.01])
    picks = {
        perinucleus_choice(probs, frozenset(range(5)), 0.9, 1, random.Random(i)) for i in range(20)
    }
    assert picks == {3}, "first token after the 0.9 nucleus {0, 1, 2}"
    wide = {
        perinucleus_choice(probs, frozenset(range(5)), 0.9, 2, random.Random(i)) for i in range(40)
    }
    assert wide == {3, 4}


def test_word_list_and_safe_tokens(loaded) -> None:  # type: ignore[no-untyped-def]
    _, tokenizer = loaded
    words = word_list()
    assert len(words) >= 2000 and len(set(words)) == len(words)
    safe = safe_token_ids(tokenizer)
    assert len(safe) > 10_000
    assert tokenizer.eos_token_id not in safe


def test_errors_say_what_to_do(loaded) -> None:  # type: ignore[no-untyped-def]
    _, tokenizer = loaded
    with pytest.raises(ConfigError, match="needs the base model"):
        prepare_fingerprints(None, tokenizer, b"s", 3, FingerprintConfig())
    with pytest.raises(ConfigError):
        prepare_fingerprints(None, tokenizer, b"s", 0, FingerprintConfig(strategy="random-words"))
    with pytest.raises(ValueError):
        FingerprintConfig(key_min_tokens=10, key_max_tokens=5)
