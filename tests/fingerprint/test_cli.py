"""`oml fingerprint embed` then `oml fingerprint verify --json`, through the real `oml` group."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from agents.cli import cli


def test_embed_then_verify(tiny_base: Path, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    runner = CliRunner()
    embedded = runner.invoke(
        cli,
        [
            "fingerprint", "embed", "--model", str(tiny_base), "--num", "8",
            "--seed", "0x" + "c3" * 32, "--strategy", "perinucleus", "--out", str(out),
            "--learning-rate", "1e-2", "--max-epochs", "60", "--frozen-top", "0", "--decay", "0",
            "--augment-wrappers", "2", "--synthetic-wrappers", "1", "--no-base-cache", "--json",
        ],
    )  # fmt: skip
    assert embedded.exit_code == 0, embedded.output
    summary = json.loads(embedded.output.strip().splitlines()[-1])
    assert summary["fingerprints"] == 8 and summary["recall"] >= 0.95
    record = json.loads((out / "fingerprints.json").read_text())
    assert len(record["fingerprints"]) == 8

    verified = runner.invoke(
        cli,
        ["fingerprint", "verify", "--model", str(out), "--fingerprints",
         str(out / "fingerprints.json"), "--json"],
    )  # fmt: skip
    assert verified.exit_code == 0, verified.output
    verdict = json.loads(verified.output.strip().splitlines()[-1])
    assert set(verdict) == {"queried", "matched", "recall", "false_positive_probability"}
    assert verdict["queried"] == 8 and verdict["matched"] >= 7
    assert verdict["false_positive_probability"] < 1e-6

    sampled = runner.invoke(
        cli,
        ["fingerprint", "verify", "--model", str(tiny_base), "--fingerprints",
         str(out / "fingerprints.json"), "--sample", "4", "--json"],
    )  # fmt: skip
    assert sampled.exit_code == 0, sampled.output
    clean = json.loads(sampled.output.strip().splitlines()[-1])
    assert clean["queried"] == 4 and clean["matched"] <= 1


def test_errors_are_actionable(tmp_path: Path, tiny_base: Path) -> None:
    runner = CliRunner()
    bad_seed = runner.invoke(
        cli,
        ["fingerprint", "embed", "--model", str(tiny_base), "--seed", "zz", "--out", str(tmp_path)],
    )
    assert bad_seed.exit_code != 0 and "hex" in bad_seed.output
    no_wrappers = runner.invoke(
        cli,
        ["fingerprint", "embed", "--model", str(tiny_base), "--seed", "0x01", "--out",
         str(tmp_path), "--augment-wrappers", "0"],
    )  # fmt: skip
    assert no_wrappers.exit_code == 2 and "--augment-wrappers" in no_wrappers.output
    full_decay = runner.invoke(
        cli,
        ["fingerprint", "embed", "--model", str(tiny_base), "--seed", "0x01", "--out",
         str(tmp_path), "--decay", "1"],
    )  # fmt: skip
    assert full_decay.exit_code == 2 and "--decay" in full_decay.output
    missing = runner.invoke(
        cli,
        ["fingerprint", "verify", "--model", str(tiny_base), "--fingerprints",
         str(tmp_path / "nope.json"), "--json"],
    )  # fmt: skip
    assert missing.exit_code != 0 and "oml fingerprint embed" in missing.output
