"""Run `oml ...` with the host's epoch clock on chain time instead of the wall clock.

The demo moves Anvil's clock forward (time travel) to close epochs and end challenge windows
in seconds. `oml host serve` counts epochs with ``time.time()`` (agents/host/epochs.py), so
after a jump its receipts would name past epochs and its reporter would wait for real time to
catch up. This wrapper gives the host the chain's clock — Anvil's pending-block timestamp,
which is the wall clock plus Anvil's time offset — and then runs the ordinary CLI::

    python -m agents.demo.chainclock host --account KEY serve --copy-id 1 --model-dir DIR

On a live chain block time follows the wall clock and the wrapper changes nothing of
substance. (Proposed upstream: a host setting ``clock = "chain"``; see docs/demo.md.)
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

REFRESH_S = 1.0


class ChainClock:
    """``now()`` = wall clock + the chain's offset, re-read at most every ``refresh_s``."""

    def __init__(
        self,
        rpc_url: str,
        *,
        refresh_s: float = REFRESH_S,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rpc_url = rpc_url
        self.refresh_s = refresh_s
        self._wall = wall
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._offset = 0.0
        self._read_at: float | None = None

    def chain_time(self) -> int:
        """Timestamp the chain would give the next block (Anvil: wall clock + offset)."""
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_getBlockByNumber",
            "params": ["pending", False],
        }
        response = httpx.post(self.rpc_url, json=body, timeout=10)
        response.raise_for_status()
        block: dict[str, Any] = response.json()["result"]
        return int(block["timestamp"], 16)

    def now(self) -> float:
        with self._lock:
            tick = self._monotonic()
            if self._read_at is None or tick - self._read_at >= self.refresh_s:
                try:
                    self._offset = self.chain_time() - self._wall()
                    self._read_at = tick
                except (httpx.HTTPError, KeyError, ValueError, TypeError):
                    if self._read_at is None:
                        raise
            return self._wall() + self._offset


def install(clock: ChainClock) -> None:
    """Make every EpochClock the host service builds read ``clock``."""
    import agents.host.service as service
    from agents.host.epochs import EpochClock

    def on_chain_time(genesis: int, length: int) -> EpochClock:
        return EpochClock(genesis, length, now=clock.now)

    setattr(service, "EpochClock", on_chain_time)  # noqa: B010 (patching a module global)


def main(argv: list[str] | None = None) -> None:
    from agents.cli import cli
    from agents.config import get_settings

    install(ChainClock(get_settings().rpc_url))
    cli.main(args=list(sys.argv[1:] if argv is None else argv), prog_name="oml")


if __name__ == "__main__":
    main()
