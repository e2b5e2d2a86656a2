"""Shared fixtures: the tiny model and two fingerprinted copies of it, built once per session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agents.fingerprint.embedding import EmbedConfig, EmbedResult, embed_fingerprints
from agents.fingerprint.generation import Fingerprint
from agents.fingerprint.models import tiny_model_dir

SEED_A = bytes.fromhex("a1" * 32)
SEED_B = bytes.fromhex("b2" * 32)
NUM = 16

# The tiny model is random: a larger step size than for a real model, every layer trains.
TINY = EmbedConfig(train_layers=None, learning_rate=1e-2, progress=False, max_epochs=60)


@dataclass(frozen=True)
class Copy:
    path: Path
    result: EmbedResult

    @property
    def fingerprints(self) -> list[Fingerprint]:
        return self.result.fingerprints


@pytest.fixture(scope="session")
def tiny_base() -> Path:
    return tiny_model_dir(0)


@pytest.fixture(scope="session")
def other_base() -> Path:
    """A differently seeded base model (same architecture and tokenizer)."""
    return tiny_model_dir(1)


@pytest.fixture(scope="session")
def copies(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Copy]]:
    root = tmp_path_factory.mktemp("copies")
    made = {}
    for name, seed in (("a", SEED_A), ("b", SEED_B)):
        out = root / name
        made[name] = Copy(out, embed_fingerprints(tiny_base, out, seed, NUM, TINY))
    yield made
