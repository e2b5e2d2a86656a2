"""A private Anvil per test module, for tests that rewrite chain history (snapshots, reverts)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from web3 import Web3

REPO_ROOT = Path(__file__).resolve().parents[2]
ANVIL = REPO_ROOT / "node_modules" / ".bin" / "anvil"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def private_anvil(extra_args: list[str] | None = None) -> Iterator[Web3]:
    """Start an Anvil on a free port, yield a connected Web3, stop it afterwards."""
    port = free_port()
    process = subprocess.Popen(
        [str(ANVIL), "--port", str(port), "--chain-id", "31337", "--silent", *(extra_args or [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}", request_kwargs={"timeout": 10}))
    try:
        deadline = time.monotonic() + 30
        while not w3.is_connected():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil on port {port} did not start")
            time.sleep(0.1)
        yield w3
    finally:
        process.terminate()
        process.wait(timeout=10)
