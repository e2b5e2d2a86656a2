"""The receipt ledger: one SQLite file (WAL) per copy, the host's memory of every call.

A receipt's ``seq`` is allocated, signed and committed in one transaction *before* the
response leaves the host, so a crash can never hand out the same ``seq`` twice (equivocation,
slashable) nor skip one (a gap the host would have to explain). A batch of calls shares one
transaction and therefore one fsync.

Epochs only move forward: once the reporter closes an epoch, no receipt can be issued for it;
a call that races the boundary is booked into the next open epoch instead.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coincurve import PrivateKey
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak

from agents.chain.receipts import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    EIP712_DOMAIN_FIELDS,
    RECEIPT_FIELDS,
    Receipt,
    sign_receipt,
)
from agents.host.epochs import EpochClock
from agents.host.errors import LedgerError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipt (
    seq INTEGER PRIMARY KEY,
    epoch INTEGER NOT NULL,
    prompt_hash BLOB NOT NULL,
    response_hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    issued_at REAL NOT NULL,
    source TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS receipt_epoch ON receipt (epoch);
CREATE TABLE IF NOT EXISTS report (
    epoch INTEGER PRIMARY KEY,
    calls INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    fee INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('sending', 'done')),
    tx_hash TEXT,
    updated_at REAL NOT NULL
);
"""


class ReceiptSigner:
    """The host key and the EIP-712 domain receipts are signed under.

    Signing hashes the struct directly (type strings derived from ``agents.chain.receipts``)
    and signs with libsecp256k1: ~0.1 ms instead of ~0.6 ms through ``encode_typed_data``.
    The constructor checks the result is byte-identical to :func:`sign_receipt`.
    """

    def __init__(self, account: LocalAccount, chain_id: int, verifying_contract: str) -> None:
        self.account = account
        self.chain_id = chain_id
        self.verifying_contract = verifying_contract
        self._key = PrivateKey(bytes(account.key))
        domain = keccak(
            _type_hash("EIP712Domain", EIP712_DOMAIN_FIELDS)
            + keccak(text=DOMAIN_NAME)
            + keccak(text=DOMAIN_VERSION)
            + chain_id.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(verifying_contract.removeprefix("0x"))
        )
        self._prefix = b"\x19\x01" + domain
        self._receipt_type = _type_hash("Receipt", RECEIPT_FIELDS)
        probe = Receipt(copy_id=1, epoch=2, seq=3, prompt_hash=bytes(32), response_hash=bytes(32))
        if self.sign(probe) != sign_receipt(account, probe, chain_id, verifying_contract):
            raise LedgerError("fast receipt signing disagrees with agents.chain.receipts")

    @property
    def address(self) -> str:
        return str(self.account.address)

    def sign(self, receipt: Receipt) -> bytes:
        struct = keccak(
            self._receipt_type
            + receipt.copy_id.to_bytes(32, "big")
            + receipt.epoch.to_bytes(32, "big")
            + receipt.seq.to_bytes(32, "big")
            + receipt.prompt_hash
            + receipt.response_hash
        )
        signature: bytes = self._key.sign_recoverable(keccak(self._prefix + struct), hasher=None)
        return signature[:64] + bytes([signature[64] + 27])


def _type_hash(name: str, fields: list[dict[str, str]]) -> bytes:
    return keccak(text=f"{name}(" + ",".join(f"{f['type']} {f['name']}" for f in fields) + ")")


@dataclass(frozen=True)
class SignedReceipt:
    receipt: Receipt
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        r = self.receipt
        return {
            "copyId": r.copy_id,
            "epoch": r.epoch,
            "seq": r.seq,
            "promptHash": "0x" + r.prompt_hash.hex(),
            "responseHash": "0x" + r.response_hash.hex(),
            "signature": "0x" + self.signature.hex(),
        }


@dataclass(frozen=True)
class EpochUsage:
    """What the host owes for one epoch: ``calls`` and the highest ``seq`` issued by its end."""

    epoch: int
    calls: int
    last_seq: int


@dataclass(frozen=True)
class ReportRecord:
    epoch: int
    calls: int
    last_seq: int
    fee: int
    status: str
    tx_hash: str | None


@dataclass(frozen=True)
class Call:
    """One metered call: the hashes a receipt commits to, and an optional import key."""

    prompt_hash: bytes
    response_hash: bytes
    source: str | None = None
    epoch_hint: int | None = None


class ReceiptLedger:
    """Thread-safe; every method may be called from any thread."""

    def __init__(
        self,
        path: Path,
        *,
        copy_id: int,
        signer: ReceiptSigner,
        clock: EpochClock,
        durable: bool = True,
    ) -> None:
        self.path = path
        self.copy_id = copy_id
        self.signer = signer
        self.clock = clock
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        self._db.executescript(SCHEMA)
        with self._transaction() as db:
            stored = _meta(db, "copy_id")
            if stored is None:
                db.execute("INSERT INTO meta VALUES ('copy_id', ?)", (str(copy_id),))
                db.execute("INSERT INTO meta VALUES ('closed_through', '-1')")
            elif int(stored) != copy_id:
                raise LedgerError(
                    f"{path} belongs to copy {stored}, not {copy_id}: "
                    "point state_dir elsewhere or fix copy_id"
                )
            self._last_seq = int(
                db.execute("SELECT COALESCE(MAX(seq), 0) FROM receipt").fetchone()[0]
            )
            self._closed_through = int(_meta(db, "closed_through") or -1)

    # ----------------------------------------------------------------- issuing

    def issue(self, calls: Sequence[Call]) -> list[SignedReceipt | None]:
        """Allocate, sign and persist one receipt per call, in order, in one transaction.

        Returns ``None`` for a call whose ``source`` was imported before (idempotent import).
        """
        out: list[SignedReceipt | None] = []
        with self._lock:
            seq = self._issue_locked(calls, out)
            self._last_seq = seq  # only after the commit: a failed one allocates nothing
        return out

    def _issue_locked(self, calls: Sequence[Call], out: list[SignedReceipt | None]) -> int:
        with self._transaction() as db:
            seq = self._last_seq
            current = max(self.clock.current(), self._closed_through + 1)
            now = time.time()
            for call in calls:
                if (
                    call.source is not None
                    and db.execute(
                        "SELECT 1 FROM receipt WHERE source = ?", (call.source,)
                    ).fetchone()
                ):
                    out.append(None)
                    continue
                epoch = current
                if call.epoch_hint is not None:
                    # an imported call keeps its own epoch unless that one is already closed
                    epoch = max(min(call.epoch_hint, current), self._closed_through + 1)
                    epoch = max(epoch, self._epoch_of_last(db))
                seq += 1
                receipt = Receipt(
                    copy_id=self.copy_id,
                    epoch=epoch,
                    seq=seq,
                    prompt_hash=call.prompt_hash,
                    response_hash=call.response_hash,
                )
                signature = self.signer.sign(receipt)
                db.execute(
                    "INSERT INTO receipt VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, epoch, call.prompt_hash, call.response_hash, signature, now, call.source),
                )
                out.append(SignedReceipt(receipt, signature))
        return seq

    def issue_one(self, prompt_hash: bytes, response_hash: bytes) -> SignedReceipt:
        receipt = self.issue([Call(prompt_hash, response_hash)])[0]
        assert receipt is not None
        return receipt

    @staticmethod
    def _epoch_of_last(db: sqlite3.Connection) -> int:
        row = db.execute("SELECT epoch FROM receipt ORDER BY seq DESC LIMIT 1").fetchone()
        return int(row[0]) if row else 0

    # ----------------------------------------------------------------- epochs

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def closed_through(self) -> int:
        return self._closed_through

    def close_through(self, epoch: int) -> None:
        """No receipt will be issued for ``epoch`` or earlier from now on."""
        with self._lock, self._transaction() as db:
            if epoch > self._closed_through:
                db.execute("UPDATE meta SET value = ? WHERE key = 'closed_through'", (str(epoch),))
                self._closed_through = epoch

    def usage(self, epoch: int) -> EpochUsage:
        with self._lock:
            calls, last = self._db.execute(
                "SELECT COUNT(*), MAX(seq) FROM receipt WHERE epoch = ?", (epoch,)
            ).fetchone()
            if last is None:
                last = self._db.execute(
                    "SELECT COALESCE(MAX(seq), 0) FROM receipt WHERE epoch < ?", (epoch,)
                ).fetchone()[0]
        return EpochUsage(epoch=epoch, calls=int(calls), last_seq=int(last))

    def first_epoch(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(epoch) FROM receipt").fetchone()
        return None if row[0] is None else int(row[0])

    def receipts(self, epoch: int | None = None) -> list[SignedReceipt]:
        query = "SELECT seq, epoch, prompt_hash, response_hash, signature FROM receipt"
        args: tuple[Any, ...] = ()
        if epoch is not None:
            query += " WHERE epoch = ?"
            args = (epoch,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [
            SignedReceipt(
                Receipt(
                    copy_id=self.copy_id,
                    epoch=e,
                    seq=s,
                    prompt_hash=bytes(p),
                    response_hash=bytes(r),
                ),
                bytes(sig),
            )
            for s, e, p, r, sig in rows
        ]

    # ----------------------------------------------------------------- reports

    def report(self, epoch: int) -> ReportRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT epoch, calls, last_seq, fee, status, tx_hash FROM report WHERE epoch = ?",
                (epoch,),
            ).fetchone()
        return None if row is None else ReportRecord(*row)

    def reports(self) -> list[ReportRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT epoch, calls, last_seq, fee, status, tx_hash FROM report ORDER BY epoch"
            ).fetchall()
        return [ReportRecord(*row) for row in rows]

    def record_report(
        self, usage: EpochUsage, fee: int, status: str, tx_hash: str | None = None
    ) -> None:
        """Write intent (``sending``) before the transaction and outcome (``done``) after."""
        with self._lock, self._transaction() as db:
            db.execute(
                "INSERT INTO report VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (epoch) DO UPDATE SET "
                "calls = excluded.calls, last_seq = excluded.last_seq, fee = excluded.fee, "
                "status = excluded.status, tx_hash = COALESCE(excluded.tx_hash, report.tx_hash), "
                "updated_at = excluded.updated_at",
                (usage.epoch, usage.calls, usage.last_seq, fee, status, tx_hash, time.time()),
            )

    # ----------------------------------------------------------------- lifecycle

    def checkpoint(self) -> None:
        """Fold the WAL into the main file (on shutdown, before a backup)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.checkpoint()
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])
