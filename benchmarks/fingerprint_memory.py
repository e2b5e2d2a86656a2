"""Peak memory of the embedder's cached states (`_Store`), with SmolLM2-135M's shapes.

    python benchmarks/fingerprint_memory.py --tokens 200000
    python benchmarks/fingerprint_memory.py --tokens 200000 --checkout /path/to/older/checkout

The embedder keeps, for every token of every training sequence, the hidden state entering the
trained block and the keys/values of every layer above it (SmolLM2-135M with the default block:
576 + 12 x 2 x 192 floats, 20,736 bytes). Before 2026-12-07 it kept one piece per sequence and
concatenated them at the end (`_Store.finish`); now it reserves the flat tensors as soon as it
knows how many tokens are to come and writes into them. This stores ``--tokens`` tokens the way
the store of this checkout's ``agents`` package does (or another checkout's, ``--checkout``) and
records the resident memory before ``finish``, the peak, and after, in a
fresh process and without a model: the store's own memory only.

Each run appends one JSON line to benchmarks/results/fingerprint-memory-<date>.jsonl.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import click
from _common import append_row, machine, peak_rss_gib


def _resident_gib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**30


def _revision() -> str:
    """The commit of the ``agents`` package measured (it may come from another checkout)."""
    import agents

    folder = Path(agents.__file__).resolve().parents[1]
    found = subprocess.run(
        ["git", "-C", str(folder), "describe", "--always", "--dirty"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return found.stdout.strip() or "unknown"


@click.command()
@click.option(
    "--checkout", type=click.Path(path_type=Path, exists=True, file_okay=False), default=None,
    help="measure the store of the agents package in this checkout instead",
)  # fmt: skip
@click.option("--tokens", type=click.IntRange(min=1000), default=200_000, show_default=True)
@click.option(
    "--sequence", type=click.IntRange(min=1), default=55, show_default=True,
    help="tokens per training sequence (55: the default profile's mean at N=1024)",
)  # fmt: skip
@click.option("--hidden", type=click.IntRange(min=1), default=576, show_default=True)
@click.option(
    "--kv", type=click.IntRange(min=1), default=192, show_default=True,
    help="key (and value) width per layer: heads x head size",
)  # fmt: skip
@click.option(
    "--layers", type=click.IntRange(min=1), default=12, show_default=True,
    help="layers whose keys/values are kept: the trained block and the frozen top",
)  # fmt: skip
def main(
    checkout: Path | None, tokens: int, sequence: int, hidden: int, kv: int, layers: int
) -> None:
    import torch

    if checkout is not None:
        sys.path.insert(0, str(checkout.resolve()))

    from agents.fingerprint.embedding import _Store

    torch.set_num_threads(1)
    before = _resident_gib()
    store = _Store(layer=0)
    # the embedder reserves the flat store once it knows what is still to come (2026-12-07);
    # an older store has no reserve and concatenates every piece in finish
    reserves = hasattr(store, "reserve")
    for start in range(0, tokens, sequence):
        n = min(sequence, tokens - start)
        if reserves and start == sequence:
            store.reserve(tokens - start)
        # ones, not empty: the pages must be touched to be resident, as real states are
        store.add(
            torch.ones(n, hidden),
            [torch.ones(n, kv) for _ in range(layers)],
            [torch.ones(n, kv) for _ in range(layers)],
        )
    pieces = _resident_gib() - before
    store.finish()
    peak = peak_rss_gib() - before
    flat = _resident_gib() - before
    store_gib = tokens * (hidden + 2 * layers * kv) * 4 / 2**30
    row = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "revision": _revision(),
        "tokens": tokens,
        "sequence": sequence,
        "reserved": reserves,
        "bytes_per_token": (hidden + 2 * layers * kv) * 4,
        "store_gib": round(store_gib, 3),
        "before_finish_gib": round(pieces, 3),
        "peak_gib": round(peak, 3),
        "after_finish_gib": round(flat, 3),
        "peak_over_store": round(peak / store_gib, 3),
    }
    append_row("fingerprint-memory", row)


if __name__ == "__main__":
    main()
