"""Named embedding profiles: what each sets, what overrides them, and how the CLI passes them on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import agents.fingerprint.commands as commands
from agents.cli import cli
from agents.fingerprint.embedding import EmbedConfig, EmbedResult
from agents.fingerprint.profiles import PROFILES, profile_config


def test_robust_is_the_defaults() -> None:
    assert profile_config("robust") == EmbedConfig()


def test_fast_sets_its_fields_and_overrides_win() -> None:
    fast = profile_config("fast")
    for field, value in PROFILES["fast"].items():
        assert getattr(fast, field) == value
    assert fast.augment_wrappers < EmbedConfig().augment_wrappers
    assert fast.learning_rate < EmbedConfig().learning_rate
    tuned = profile_config("fast", decay=0.1, progress=False)
    assert tuned.decay == 0.1 and not tuned.progress
    assert tuned.augment_wrappers == fast.augment_wrappers


def test_unknown_profile_names_the_choices() -> None:
    with pytest.raises(ValueError, match="fast, robust"):
        profile_config("quick")


def test_profiles_are_read_only() -> None:
    with pytest.raises(TypeError):
        PROFILES["fast"]["decay"] = 0.5  # type: ignore[index]


def test_cli_passes_the_profile_and_the_options_over_it(
    tmp_path: Path, tiny_base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[EmbedConfig] = []

    def record(_model: Any, _out: Any, _seed: bytes, _num: int, config: EmbedConfig) -> EmbedResult:
        seen.append(config)
        return EmbedResult(fingerprints=[], seconds=0.0, recall=1.0)

    monkeypatch.setattr(commands, "embed_fingerprints", record)
    runner = CliRunner()
    args = ["fingerprint", "embed", "--model", str(tiny_base), "--seed", "0x01", "--out",
            str(tmp_path / "copy"), "--num", "4", "--json"]  # fmt: skip
    fast = runner.invoke(cli, [*args, "--profile", "fast", "--decay", "0.2", "--mix-formats"])
    assert fast.exit_code == 0, fast.output
    default = runner.invoke(cli, args)
    assert default.exit_code == 0, default.output
    assert seen[0].decay == 0.2 and seen[0].mix_formats
    assert seen[0].augment_wrappers == PROFILES["fast"]["augment_wrappers"]
    assert seen[0].learning_rate == PROFILES["fast"]["learning_rate"]
    assert seen[1].augment_wrappers == EmbedConfig().augment_wrappers
    assert seen[1].mix_formats == EmbedConfig().mix_formats
    unknown = runner.invoke(cli, [*args, "--profile", "quick"])
    assert unknown.exit_code == 2 and "--profile" in unknown.output
