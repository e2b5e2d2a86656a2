"""Shared fixtures: the tiny model and two fingerprinted copies of it, built once per session."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fpkit import SEED_A, SEED_B, TINY, Copy

from agents.fingerprint.embedding import embed_fingerprints
from agents.fingerprint.models import tiny_model_dir


@pytest.fixture(scope="session")
def tiny_base() -> Path:
    return tiny_model_dir(0)


@pytest.fixture(scope="session")
def other_base() -> Path:
    """A differently seeded base model (same architecture and tokenizer)."""
    return tiny_model_dir(1)


@pytest.fixture(scope="session")
def copies(tiny_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Copy]]:
    """Two licensees' copies of the tiny base, 16 fingerprints each."""
    from fpkit import NUM

    root = tmp_path_factory.mktemp("copies")
    made = {}
    for name, seed in (("a", SEED_A), ("b", SEED_B)):
        out = root / name
        made[name] = Copy(out, embed_fingerprints(tiny_base, out, seed, NUM, TINY))
    yield made
