"""Shared pieces of the host tests (a uniquely named module: `conftest` is ambiguous)."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import uvicorn

from agents.host.ledger import ReceiptLedger

CHAIN_ID = 31337
VERIFYING_CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
MODEL_NAME = "tiny-copy"
COPY_ID = 7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningHost:
    url: str
    ledger: ReceiptLedger | None
    server: uvicorn.Server
    thread: threading.Thread
    signer: str

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "server did not shut down"
