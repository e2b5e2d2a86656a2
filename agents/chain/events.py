"""A persistent, reorg-aware cursor over contract events that runs each handler exactly once.

The cursor polls ``eth_getLogs`` in bounded block ranges up to ``head - confirmations``. Its
position and the hashes of recent checkpoints live in SQLite; when a checkpoint's hash no
longer matches the chain, the cursor rewinds to the newest checkpoint that still matches and
scans again. Each event is keyed by (tx hash, log index); the key is recorded in the same
SQLite transaction as the handler's own writes, so a crash either leaves both or neither.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from eth_utils.abi import event_abi_to_log_topic
from hexbytes import HexBytes
from web3 import Web3
from web3._utils.events import get_event_data
from web3.contract import Contract
from web3.types import FilterParams, LogReceipt

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS cursor_position (
    name TEXT PRIMARY KEY, block_number INTEGER NOT NULL, block_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cursor_checkpoint (
    name TEXT NOT NULL, block_number INTEGER NOT NULL, block_hash TEXT NOT NULL,
    PRIMARY KEY (name, block_number)
);
CREATE TABLE IF NOT EXISTS processed_event (
    name TEXT NOT NULL, tx_hash TEXT NOT NULL, log_index INTEGER NOT NULL,
    event TEXT NOT NULL, block_number INTEGER NOT NULL,
    PRIMARY KEY (name, tx_hash, log_index)
);
"""


@dataclass(frozen=True)
class ChainEvent:
    """A decoded contract event and where it happened."""

    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int

    @property
    def key(self) -> str:
        return f"{self.tx_hash}:{self.log_index}"


# A handler writes its own state through the connection it is given, inside the cursor's
# transaction; it must not commit or roll back itself.
Handler = Callable[[ChainEvent, sqlite3.Connection], None]


@dataclass
class _Decoder:
    by_topic: dict[bytes, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    def add(self, contract: Contract) -> None:
        for item in contract.abi:
            if item.get("type") == "event" and not item.get("anonymous", False):
                abi = cast(dict[str, Any], item)
                self.by_topic[bytes(event_abi_to_log_topic(cast(Any, abi)))] = (abi["name"], abi)

    def decode(self, w3: Web3, entry: LogReceipt) -> ChainEvent | None:
        if not entry["topics"]:
            return None
        known = self.by_topic.get(bytes(entry["topics"][0]))
        if known is None:
            return None
        name, abi = known
        data = get_event_data(w3.codec, cast(Any, abi), entry)
        return ChainEvent(
            name=name,
            args=dict(data["args"]),
            address=Web3.to_checksum_address(entry["address"]),
            block_number=int(entry["blockNumber"]),
            block_hash=HexBytes(entry["blockHash"]).to_0x_hex(),
            tx_hash=HexBytes(entry["transactionHash"]).to_0x_hex(),
            log_index=int(entry["logIndex"]),
        )


class EventCursor:
    """Delivers events of ``contracts`` to handlers registered with :meth:`on`."""

    def __init__(
        self,
        w3: Web3,
        db_path: Path | str,
        *,
        name: str,
        contracts: Iterable[Contract],
        start_block: int = 0,
        confirmations: int = 0,
        max_range: int = 2_000,
        checkpoints_kept: int = 128,
    ) -> None:
        self.w3 = w3
        self.name = name
        self.start_block = start_block
        self.confirmations = confirmations
        self.max_range = max_range
        self.checkpoints_kept = checkpoints_kept
        self._contracts = list(contracts)
        self._decoder = _Decoder()
        for contract in self._contracts:
            self._decoder.add(contract)
        self._handlers: dict[str, list[Handler]] = {}
        self.db = sqlite3.connect(str(db_path), check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    # ------------------------------------------------------------------ registration

    def on(self, event_name: str, handler: Handler) -> None:
        known = {name for name, _ in self._decoder.by_topic.values()}
        if event_name not in known:
            raise ValueError(f"no contract given to the cursor emits {event_name!r}")
        self._handlers.setdefault(event_name, []).append(handler)

    # ------------------------------------------------------------------ state

    def position(self) -> tuple[int, str] | None:
        row = self.db.execute(
            "SELECT block_number, block_hash FROM cursor_position WHERE name = ?", (self.name,)
        ).fetchone()
        return (int(row[0]), str(row[1])) if row else None

    def was_processed(self, tx_hash: str, log_index: int) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM processed_event WHERE name = ? AND tx_hash = ? AND log_index = ?",
            (self.name, tx_hash, log_index),
        ).fetchone()
        return row is not None

    # ------------------------------------------------------------------ polling

    def poll_once(self) -> int:
        """Scan what is new (after reorg repair); returns the number of events handled."""
        head = self.w3.eth.block_number - self.confirmations
        position = self._repair_reorg()
        next_block = position[0] + 1 if position else self.start_block
        handled = 0
        while next_block <= head:
            to_block = min(head, next_block + self.max_range - 1)
            handled += self._scan(next_block, to_block)
            next_block = to_block + 1
        return handled

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        """Poll until ``stop`` is set; errors are logged and retried with backoff."""
        delay = interval_s
        while not stop.is_set():
            try:
                self.poll_once()
                delay = interval_s
            except Exception:
                log.exception("event cursor %s failed; retrying in %.1fs", self.name, delay)
                delay = min(delay * 2, 30.0)
            stop.wait(delay)

    def _block_hash(self, number: int) -> str:
        return HexBytes(self.w3.eth.get_block(number)["hash"]).to_0x_hex()

    def _repair_reorg(self) -> tuple[int, str] | None:
        position = self.position()
        if position is None or self._block_hash_or_none(position[0]) == position[1]:
            return position
        rows = self.db.execute(
            "SELECT block_number, block_hash FROM cursor_checkpoint WHERE name = ? "
            "ORDER BY block_number DESC",
            (self.name,),
        ).fetchall()
        for number, block_hash in rows:
            if self._block_hash_or_none(int(number)) == block_hash:
                log.warning(
                    "reorg: cursor %s rewinds from %d to %d", self.name, position[0], number
                )
                self._set_position(int(number), str(block_hash))
                return int(number), str(block_hash)
        log.warning("reorg deeper than kept checkpoints: cursor %s rescans from start", self.name)
        with self._transaction():
            self.db.execute("DELETE FROM cursor_position WHERE name = ?", (self.name,))
            self.db.execute("DELETE FROM cursor_checkpoint WHERE name = ?", (self.name,))
        return None

    def _block_hash_or_none(self, number: int) -> str | None:
        try:
            return self._block_hash(number)
        except Exception:  # the block no longer exists after a reorg to a shorter chain
            return None

    def _scan(self, from_block: int, to_block: int) -> int:
        to_hash = self._block_hash(to_block)
        params: FilterParams = {
            "fromBlock": from_block,
            "toBlock": to_block,
            "address": [c.address for c in self._contracts],
        }
        entries = sorted(
            self.w3.eth.get_logs(params), key=lambda e: (e["blockNumber"], e["logIndex"])
        )
        if self._block_hash(to_block) != to_hash:
            raise RuntimeError(f"chain changed while scanning {from_block}-{to_block}; rescanning")
        handled = 0
        for entry in entries:
            event = self._decoder.decode(self.w3, entry)
            if event is None or event.name not in self._handlers:
                continue
            if self._deliver(event):
                handled += 1
        self._set_position(to_block, to_hash)
        return handled

    def _deliver(self, event: ChainEvent) -> bool:
        """Run the handlers and record the event in one SQLite transaction."""
        if self.was_processed(event.tx_hash, event.log_index):
            return False
        with self._transaction():
            for handler in self._handlers[event.name]:
                handler(event, self.db)
            self.db.execute(
                "INSERT INTO processed_event VALUES (?, ?, ?, ?, ?)",
                (self.name, event.tx_hash, event.log_index, event.name, event.block_number),
            )
        log.info("handled %s %s at block %d", event.name, event.key, event.block_number)
        return True

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # The connection is in autocommit mode; group statements explicitly.
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _set_position(self, number: int, block_hash: str) -> None:
        with self._transaction():
            self.db.execute(
                "INSERT INTO cursor_position VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                "SET block_number = excluded.block_number, block_hash = excluded.block_hash",
                (self.name, number, block_hash),
            )
            self.db.execute(
                "INSERT OR REPLACE INTO cursor_checkpoint VALUES (?, ?, ?)",
                (self.name, number, block_hash),
            )
            self.db.execute(
                "DELETE FROM cursor_checkpoint WHERE name = ? AND block_number NOT IN ("
                "SELECT block_number FROM cursor_checkpoint WHERE name = ? "
                "ORDER BY block_number DESC LIMIT ?)",
                (self.name, self.name, self.checkpoints_kept),
            )
