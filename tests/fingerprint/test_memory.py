"""Memory: what the host has free, the cached states' peak, and refusing a run that won't fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from fpkit import SEED_A, TINY

from agents.cli import cli
from agents.fingerprint import embedding
from agents.fingerprint.embedding import MEMORY_SHARE, _check_memory, _Store, embed_fingerprints
from agents.fingerprint.errors import InsufficientMemoryError
from agents.fingerprint.resources import available_memory, host_available

GIB = 2**30


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_host_available_takes_the_tighter_of_meminfo_and_cgroup(tmp_path: Path) -> None:
    meminfo = _write(tmp_path / "meminfo", "MemTotal: 8000000 kB\nMemAvailable: 4000000 kB\n")
    limit = _write(tmp_path / "max", str(3 * GIB))
    usage = _write(tmp_path / "current", str(2 * GIB))
    assert host_available(meminfo, ()) == 4_000_000 * 1024
    assert host_available(meminfo, ((limit, usage),)) == GIB, "the container's limit is tighter"
    unlimited = _write(tmp_path / "unlimited", "max\n")
    assert host_available(meminfo, ((unlimited, usage),)) == 4_000_000 * 1024
    missing = tmp_path / "absent"
    assert host_available(missing, ((missing, missing),)) is None


def test_available_memory_of_this_cpu_is_positive() -> None:
    free = available_memory(torch.device("cpu"))
    assert free is None or free > 0
    assert available_memory(torch.device("meta")) is None, "unknown devices are not checked"


def _store(lengths: list[int], hidden: int = 8, kv: int = 4, layers: int = 2) -> _Store:
    store = _Store(layer=0)
    generator = torch.Generator().manual_seed(0)
    for n in lengths:
        store.add(
            torch.randn(n, hidden, generator=generator),
            [torch.randn(n, kv, generator=generator) for _ in range(layers)],
            [torch.randn(n, kv, generator=generator) for _ in range(layers)],
        )
    return store


def test_finish_concatenates_every_part_and_frees_the_pieces() -> None:
    store = _store([3, 5, 2])
    hidden = torch.cat([*store._hidden, torch.zeros(1, 8)])
    keys = [torch.cat([*pieces, torch.zeros(1, 4)]) for pieces in store._keys]
    values = [torch.cat([*pieces, torch.zeros(1, 4)]) for pieces in store._values]
    assert store.bytes_per_token() == (8 + 2 * 2 * 4) * 4
    store.finish()
    assert store.offsets == [0, 3, 8] and store.pad == 10
    assert torch.equal(store.hidden, hidden)
    assert all(torch.equal(a, b) for a, b in zip(store.keys, keys, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(store.values, values, strict=True))
    assert store._hidden == [] and store._keys == [] and store._values == []


def test_reserve_then_add_writes_in_place_what_pieces_would_hold() -> None:
    """Sequences added after ``reserve`` land in the flat tensors: the finished store, and an
    export of any sequences, are the same as when every sequence was a piece."""
    pieces, reserved = _store([3, 5, 2]), _store([3])
    reserved.reserve(5 + 2)
    hidden = reserved.hidden
    for i in (1, 2):
        reserved.add(
            pieces._hidden[i],
            [p[i] for p in pieces._keys],
            [p[i] for p in pieces._values],
        )
    assert reserved.hidden is hidden, "written in place, not reallocated"
    assert torch.equal(pieces.export([2, 0])["hidden"], reserved.export([2, 0])["hidden"])
    assert all(
        torch.equal(a, b)
        for a, b in zip(pieces.export([1])["values"], reserved.export([1])["values"], strict=True)
    )
    with pytest.raises(ValueError, match="reserved for 10 tokens"):
        reserved.add(torch.ones(1, 8), [torch.ones(1, 4)] * 2, [torch.ones(1, 4)] * 2)
    assert reserved.lengths == [3, 5, 2], "a refused add stores nothing"
    with pytest.raises(ValueError, match="reserve once"):
        reserved.reserve(1)
    pieces.finish()
    reserved.finish()
    assert reserved.pad == pieces.pad == 10 and reserved.offsets == pieces.offsets
    for a, b in zip(
        [pieces.hidden, *pieces.keys, *pieces.values],
        [reserved.hidden, *reserved.keys, *reserved.values],
        strict=True,
    ):
        assert torch.equal(a, b)


def test_check_memory_counts_every_token_of_the_flat_store() -> None:
    store = _store([10])  # 96 bytes per token
    lengths = [20, 30]
    needed = (60 + 1) * 96
    _check_memory(store, lengths, None)  # unknown: no check
    _check_memory(store, lengths, int(needed / MEMORY_SHARE) + 1)
    with pytest.raises(InsufficientMemoryError) as refused:
        _check_memory(store, lengths, int(needed / MEMORY_SHARE) - 1)
    message = str(refused.value)
    assert "3 training sequences" in message and "60 tokens" in message
    assert "fewer fingerprints" in message and "--profile fast" in message
    _check_memory(_Store(layer=0), lengths, 1)  # nothing stored yet: nothing to measure by


def test_a_run_that_cannot_fit_is_refused_before_it_writes(
    tiny_base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(embedding, "available_memory", lambda device: 64 * 1024)
    out = tmp_path / "copy"
    with pytest.raises(InsufficientMemoryError, match="GiB is free"):
        embed_fingerprints(tiny_base, out, SEED_A, 4, TINY)
    assert not out.exists(), "nothing is written for a refused run"

    result = CliRunner().invoke(
        cli,
        ["fingerprint", "embed", "--model", str(tiny_base), "--num", "4",
         "--seed", SEED_A.hex(), "--out", str(out), "--no-base-cache"],
    )  # fmt: skip
    assert result.exit_code == 1 and "Embed fewer fingerprints per copy" in result.output
    assert "Traceback" not in result.output and not out.exists()
