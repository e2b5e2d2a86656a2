"""The real path once: a handful of fingerprints into SmolLM2-135M (converted once per machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.fingerprint.detection import accuse, verify_fingerprints
from agents.fingerprint.embedding import EmbedConfig, embed_fingerprints
from agents.fingerprint.generation import FingerprintConfig
from agents.fingerprint.models import smollm2_dir


@pytest.mark.slow
def test_embed_into_smollm2(tmp_path: Path) -> None:
    config = EmbedConfig(
        fingerprint=FingerprintConfig(key_min_tokens=16, key_max_tokens=20),
        train_layers=2,
        learning_rate=2e-3,
        benign_sequences=8,
        benign_tokens=32,
        augment_fraction=0.0,
        max_epochs=25,
        margin_prob=0.6,
        progress=False,
    )
    result = embed_fingerprints(smollm2_dir(), tmp_path / "copy", b"\x42" * 32, 6, config)
    assert result.recall >= 5 / 6
    verdict = verify_fingerprints(tmp_path / "copy", result.fingerprints)
    assert verdict.matched >= 5
    clean = verify_fingerprints(smollm2_dir(), result.fingerprints)
    assert clean.matched == 0 and not accuse(clean)
