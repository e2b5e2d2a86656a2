"""The real path: fingerprints into SmolLM2-135M (converted once per machine)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.fingerprint.detection import accuse, verify_fingerprints
from agents.fingerprint.embedding import EmbedConfig, embed_fingerprints
from agents.fingerprint.generation import FingerprintConfig
from agents.fingerprint.models import load_model, smollm2_dir
from agents.fingerprint.profiles import profile_config
from agents.fingerprint.prompts import EVAL_WRAPPERS


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


@pytest.mark.slow
def test_unseen_system_prompts_and_chat_templates(tmp_path: Path) -> None:
    """The robust profile (`oml fingerprint embed`'s default) on the real model: keys inside
    six system prompts and ChatML system turns that training never used still identify the
    copy, and the base model behind the same wrappers is accused of nothing. (The random tiny
    model cannot generalise across contexts at all, so this is measured here.)"""
    config = profile_config("robust", benign_sequences=32, progress=False)
    result = embed_fingerprints(smollm2_dir(), tmp_path / "copy", b"\x51" * 32, 24, config)
    copy, base = load_model(tmp_path / "copy"), load_model(smollm2_dir())
    assert len(EVAL_WRAPPERS) >= 5
    found, clean = {}, {}
    for wrapper in EVAL_WRAPPERS:
        verdict = verify_fingerprints(copy, result.fingerprints, wrapper=wrapper)
        found[wrapper.name] = (verdict.matched, accuse(verdict))
        clean[wrapper.name] = verify_fingerprints(base, result.fingerprints, wrapper=wrapper)
    assert all(accused for _, accused in found.values()), found
    assert sum(matched for matched, _ in found.values()) >= 0.8 * 24 * len(found), found
    assert not any(accuse(v) for v in clean.values()), clean
    assert sum(v.matched for v in clean.values()) <= 2, clean
