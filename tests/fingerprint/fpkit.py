"""Shared constants and types of the fingerprint tests (conftest is not importable by name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.fingerprint.embedding import EmbedConfig, EmbedResult
from agents.fingerprint.generation import Fingerprint

SEED_A = bytes.fromhex("a1" * 32)
SEED_B = bytes.fromhex("b2" * 32)
NUM = 16

# The tiny model is random: a larger step size than for a real model, every layer trains.
TINY = EmbedConfig(
    train_layers=None,
    frozen_top=0,
    protect_energy=0.0,
    learning_rate=1e-2,
    progress=False,
    max_epochs=60,
    augment_fraction=1.0,
)


@dataclass(frozen=True)
class Copy:
    path: Path
    result: EmbedResult

    @property
    def fingerprints(self) -> list[Fingerprint]:
        return self.result.fingerprints
