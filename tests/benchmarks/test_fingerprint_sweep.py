"""benchmarks/fingerprint_sweep.py: overrides parse into EmbedConfig values, bad ones say how."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import click
import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def sweep() -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))  # the script imports its sibling _common
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_sweep", BENCHMARKS / "fingerprint_sweep.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def test_values_are_json_and_words_stay_strings(sweep: ModuleType) -> None:
    assert sweep.parse_override("benign_sequences=256") == ("benign_sequences", 256)
    assert sweep.parse_override("learning_rate=2e-3") == ("learning_rate", 0.002)
    assert sweep.parse_override("train_layers=null") == ("train_layers", None)
    assert sweep.parse_override("verify=false") == ("verify", False)
    assert sweep.parse_override("method=lora") == ("method", "lora")


@pytest.mark.parametrize("text", ["benign_sequences", "=3"])
def test_malformed_override_names_the_expected_form(sweep: ModuleType, text: str) -> None:
    with pytest.raises(click.BadParameter, match="NAME=VALUE"):
        sweep.parse_override(text)
