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


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_sets_its_fields_over_the_defaults(name: str) -> None:
    config = profile_config(name)
    for field, value in PROFILES[name].items():
        assert getattr(config, field) == value
    unset = set(EmbedConfig.model_fields) - set(PROFILES[name])
    assert all(getattr(config, f) == getattr(EmbedConfig(), f) for f in unset)


def test_robust_trains_more_wrappers_and_smaller_steps_than_fast() -> None:
    robust, fast = profile_config("robust"), profile_config("fast")
    assert fast.augment_wrappers + fast.synthetic_wrappers < robust.augment_wrappers
    assert robust.mix_formats and robust.learning_rate < fast.learning_rate


def test_fast_overrides_win() -> None:
    fast = profile_config("fast")
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
    assert seen[1].mix_formats and seen[1].learning_rate == PROFILES["robust"]["learning_rate"]
    unknown = runner.invoke(cli, [*args, "--profile", "quick"])
    assert unknown.exit_code == 2 and "--profile" in unknown.output
