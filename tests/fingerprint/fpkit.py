"""Shared constants and types of the fingerprint tests (conftest is not importable by name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.fingerprint.embedding import EmbedResult
from agents.fingerprint.generation import Fingerprint
from agents.fingerprint.models import tiny_embed_config

SEED_A = bytes.fromhex("a1" * 32)
SEED_B = bytes.fromhex("b2" * 32)
NUM = 16

# The tiny model's recipe, with as much benign text as the real model gets (perplexity matters).
TINY = tiny_embed_config(benign_sequences=256)


@dataclass(frozen=True)
class Copy:
    path: Path
    result: EmbedResult

    @property
    def fingerprints(self) -> list[Fingerprint]:
        return self.result.fingerprints
