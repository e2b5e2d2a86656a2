"""The prover's memory: one SQLite file (WAL), shared with its event cursor.

What lives here, and why it must survive a restart:

* ``copy``: every licensed copy seen on chain (host, endpoint, fingerprint root);
* ``fkey``: fingerprint keys released to this prover, **encrypted at rest** to the prover's
  own secp256k1 key (the envelope of :mod:`agents.storage.crypto`, bound to chain, copy and
  index) with a status that only moves forward: fresh → exposed (sent to some endpoint) →
  published (in evidence) → committed → revealed. A key that left ``fresh`` is never used to
  decide a leak again, and a revealed (burned) one is never revealed twice;
* ``receipt``: every host-signed receipt collected, with its audit status;
* ``watch``: the endpoints under suspicion; ``detection``: every leak verdict;
* ``challenge``: each challenge as a small state machine; an intent is written *before* its
  transaction is sent, so a crash between the two is repaired from the chain on restart.

One connection (autocommit, explicit ``BEGIN IMMEDIATE`` transactions) guarded by one lock:
the scheduler's jobs run on several threads and the event cursor writes through the same
connection.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.storage.crypto import decrypt_stream, encrypt_stream

SCHEMA = """
CREATE TABLE IF NOT EXISTS prover_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS copy (
    copy_id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL,
    host TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    fp_root TEXT,
    fp_count INTEGER,
    keys_exhausted INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS fkey (
    copy_id INTEGER NOT NULL,
    key_index INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    status TEXT NOT NULL CHECK (status IN
        ('fresh', 'exposed', 'published', 'committed', 'revealed', 'invalid')),
    fetched_at REAL NOT NULL,
    used_at REAL,
    PRIMARY KEY (copy_id, key_index)
);
CREATE TABLE IF NOT EXISTS receipt (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    copy_id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    prompt_hash BLOB NOT NULL,
    response_hash BLOB NOT NULL,
    signature BLOB NOT NULL,
    endpoint TEXT NOT NULL,
    observed_epoch INTEGER,
    received_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    UNIQUE (copy_id, seq, epoch, prompt_hash, response_hash)
);
CREATE INDEX IF NOT EXISTS receipt_status ON receipt (status, copy_id, epoch);
CREATE INDEX IF NOT EXISTS receipt_seq ON receipt (copy_id, seq);
CREATE TABLE IF NOT EXISTS anomaly (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    copy_id INTEGER,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    purpose TEXT NOT NULL,
    copy_id INTEGER,
    key_index INTEGER,
    matched INTEGER,
    status INTEGER,
    seconds REAL NOT NULL,
    receipt_id INTEGER,
    error TEXT,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS watch (
    url TEXT PRIMARY KEY,
    model_id INTEGER,
    model_name TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    added_at REAL NOT NULL,
    last_probed_at REAL,
    last_result TEXT
);
CREATE TABLE IF NOT EXISTS detection (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    copy_id INTEGER NOT NULL,
    queried INTEGER NOT NULL,
    matched INTEGER NOT NULL,
    false_positive REAL NOT NULL,
    threshold REAL NOT NULL,
    copies_tested INTEGER NOT NULL,
    accused INTEGER NOT NULL,
    evidence_cid TEXT,
    reveal_index INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS challenge (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('under-report', 'equivocation', 'missed-report', 'leak')),
    copy_id INTEGER NOT NULL,
    epoch INTEGER,
    seq INTEGER,
    key_index INTEGER,
    detection_id INTEGER,
    evidence_cid TEXT,
    commitment TEXT,
    onchain_id INTEGER,
    state TEXT NOT NULL,
    commit_block INTEGER,
    commit_block_hash TEXT,
    search_from_block INTEGER,
    deadline INTEGER,
    slashed INTEGER,
    reward INTEGER,
    data TEXT NOT NULL DEFAULT '{}',
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS challenge_provable_epoch
    ON challenge (kind, copy_id, epoch) WHERE kind IN ('under-report', 'missed-report');
CREATE UNIQUE INDEX IF NOT EXISTS challenge_provable_seq
    ON challenge (kind, copy_id, seq) WHERE kind = 'equivocation';
"""

KEY_STATUSES = ("fresh", "exposed", "published", "committed", "revealed", "invalid")
# leak states in which the prover still has work to do
OPEN_LEAK_STATES = ("committing", "committed", "revealed", "disputed")
OPEN_PROVABLE_STATES = ("submitting",)


@dataclass(frozen=True)
class CopyRow:
    copy_id: int
    model_id: int
    host: str
    endpoint: str
    fp_root: str | None
    fp_count: int | None
    keys_exhausted: bool


@dataclass(frozen=True)
class KeyMaterial:
    """One released fingerprint with everything a reveal needs."""

    copy_id: int
    index: int
    key: str
    response: str
    salt: bytes
    proof: list[bytes]

    def to_json(self) -> dict[str, Any]:
        return {
            "copyId": self.copy_id,
            "index": self.index,
            "key": self.key,
            "response": self.response,
            "salt": "0x" + self.salt.hex(),
            "proof": ["0x" + node.hex() for node in self.proof],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyMaterial:
        return cls(
            copy_id=int(data["copyId"]),
            index=int(data["index"]),
            key=str(data["key"]),
            response=str(data["response"]),
            salt=bytes.fromhex(str(data["salt"]).removeprefix("0x")),
            proof=[bytes.fromhex(str(n).removeprefix("0x")) for n in data["proof"]],
        )


@dataclass(frozen=True)
class StoredReceipt:
    id: int
    copy_id: int
    epoch: int
    seq: int
    prompt_hash: bytes
    response_hash: bytes
    signature: bytes
    endpoint: str
    observed_epoch: int | None
    status: str


@dataclass
class ChallengeRow:
    id: int
    kind: str
    copy_id: int
    state: str
    epoch: int | None = None
    seq: int | None = None
    key_index: int | None = None
    detection_id: int | None = None
    evidence_cid: str | None = None
    commitment: str | None = None
    onchain_id: int | None = None
    commit_block: int | None = None
    commit_block_hash: str | None = None
    search_from_block: int | None = None
    deadline: int | None = None
    slashed: int | None = None
    reward: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None and v != {}}


_CHALLENGE_COLUMNS = (
    "id, kind, copy_id, state, epoch, seq, key_index, detection_id, evidence_cid, commitment, "
    "onchain_id, commit_block, commit_block_hash, search_from_block, deadline, slashed, reward, "
    "data, last_error"
)


class ProverState:
    """Thread-safe access to the prover's SQLite file."""

    def __init__(
        self, db: sqlite3.Connection, *, public_key: bytes, private_key: bytes, chain_id: int
    ) -> None:
        self.db = db
        self.lock = threading.RLock()
        self._public_key = public_key
        self._private_key = private_key
        self._chain_id = chain_id
        with self.lock:
            self.db.execute("PRAGMA busy_timeout = 10000")
            self.db.executescript(SCHEMA)

    @classmethod
    def open(
        cls, path: Path, *, public_key: bytes, private_key: bytes, chain_id: int
    ) -> ProverState:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return cls(db, public_key=public_key, private_key=private_key, chain_id=chain_id)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return list(self.db.execute(sql, args).fetchall())

    # ------------------------------------------------------------------ meta

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM prover_meta WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO prover_meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                "SET value = excluded.value",
                (key, value),
            )

    def bind_identity(self, prover: str, deployment: str) -> None:
        """Refuse a state directory made by another account or for another deployment."""
        for key, value in (("prover", prover.lower()), ("deployment", deployment.lower())):
            stored = self.meta(key)
            if stored is None:
                self.set_meta(key, value)
            elif stored != value:
                from agents.prover.errors import ConfigError

                raise ConfigError(
                    f"state directory belongs to {key} {stored}, not {value}: "
                    "point OML_PROVER_STATE_DIR elsewhere"
                )

    # ------------------------------------------------------------------ copies

    @staticmethod
    def upsert_copy(
        conn: sqlite3.Connection, copy_id: int, model_id: int, host: str, endpoint: str
    ) -> None:
        conn.execute(
            "INSERT INTO copy (copy_id, model_id, host, endpoint, updated_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(copy_id) DO UPDATE SET model_id = "
            "excluded.model_id, host = excluded.host, endpoint = excluded.endpoint, "
            "updated_at = excluded.updated_at",
            (copy_id, model_id, host, endpoint, time.time()),
        )

    @staticmethod
    def set_delivery(conn: sqlite3.Connection, copy_id: int, fp_root: str, fp_count: int) -> None:
        conn.execute(
            "UPDATE copy SET fp_root = ?, fp_count = ?, updated_at = ? WHERE copy_id = ?",
            (fp_root, fp_count, time.time(), copy_id),
        )

    def copies(self, model_id: int | None = None) -> list[CopyRow]:
        sql = (
            "SELECT copy_id, model_id, host, endpoint, fp_root, fp_count, keys_exhausted FROM copy"
        )
        args: tuple[Any, ...] = ()
        if model_id is not None:
            sql += " WHERE model_id = ?"
            args = (model_id,)
        rows = self.query(sql + " ORDER BY copy_id", args)
        return [
            CopyRow(int(r[0]), int(r[1]), str(r[2]), str(r[3]), r[4], r[5], bool(r[6]))
            for r in rows
        ]

    def copy(self, copy_id: int) -> CopyRow | None:
        found = [c for c in self.copies() if c.copy_id == copy_id]
        return found[0] if found else None

    def mark_keys_exhausted(self, copy_id: int) -> None:
        with self.transaction() as db:
            db.execute("UPDATE copy SET keys_exhausted = 1 WHERE copy_id = ?", (copy_id,))

    # ------------------------------------------------------------------ keys

    def _context(self, copy_id: int, index: int) -> bytes:
        return f"oml-prover-key/{self._chain_id}/{copy_id}/{index}".encode()

    def _seal(self, material: KeyMaterial) -> bytes:
        out = io.BytesIO()
        plain = json.dumps(material.to_json(), separators=(",", ":")).encode()
        encrypt_stream(
            io.BytesIO(plain),
            out,
            self._public_key,
            chunk_size=4096,
            context=self._context(material.copy_id, material.index),
        )
        return out.getvalue()

    def _unseal(self, copy_id: int, index: int, sealed: bytes) -> KeyMaterial:
        out = io.BytesIO()
        decrypt_stream(
            io.BytesIO(sealed),
            out,
            self._private_key,
            context=self._context(copy_id, index),
            source=f"key {copy_id}/{index}",
        )
        material = KeyMaterial.from_json(json.loads(out.getvalue()))
        if (material.copy_id, material.index) != (copy_id, index):
            raise ValueError(
                f"sealed key {copy_id}/{index} holds {material.copy_id}/{material.index}"
            )
        return material

    def store_keys(self, materials: list[KeyMaterial], status: str = "fresh") -> int:
        """Store released keys (sealed); an index already held keeps its row. Returns new ones."""
        sealed = [(m, self._seal(m)) for m in materials]
        added = 0
        with self.transaction() as db:
            for material, blob in sealed:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO fkey VALUES (?, ?, ?, ?, ?, NULL)",
                    (material.copy_id, material.index, blob, status, time.time()),
                )
                added += cursor.rowcount
        return added

    def keys(
        self, copy_id: int, statuses: tuple[str, ...] = ("fresh",), limit: int | None = None
    ) -> list[KeyMaterial]:
        marks = ",".join("?" for _ in statuses)
        sql = (
            f"SELECT key_index, sealed FROM fkey WHERE copy_id = ? AND status IN ({marks}) "
            "ORDER BY CASE status WHEN 'fresh' THEN 0 ELSE 1 END, key_index"
        )
        rows = self.query(
            sql + (f" LIMIT {int(limit)}" if limit is not None else ""), (copy_id, *statuses)
        )
        return [self._unseal(copy_id, int(index), bytes(blob)) for index, blob in rows]

    def key(self, copy_id: int, index: int) -> KeyMaterial | None:
        rows = self.query(
            "SELECT sealed FROM fkey WHERE copy_id = ? AND key_index = ?", (copy_id, index)
        )
        return self._unseal(copy_id, index, bytes(rows[0][0])) if rows else None

    def key_status(self, copy_id: int, index: int) -> str | None:
        rows = self.query(
            "SELECT status FROM fkey WHERE copy_id = ? AND key_index = ?", (copy_id, index)
        )
        return str(rows[0][0]) if rows else None

    def count_keys(self, copy_id: int, statuses: tuple[str, ...] = ("fresh",)) -> int:
        marks = ",".join("?" for _ in statuses)
        rows = self.query(
            f"SELECT COUNT(*) FROM fkey WHERE copy_id = ? AND status IN ({marks})",
            (copy_id, *statuses),
        )
        return int(rows[0][0])

    def key_counts(self) -> dict[str, int]:
        rows = self.query("SELECT status, COUNT(*) FROM fkey GROUP BY status")
        return {str(s): int(n) for s, n in rows}

    def advance_keys(self, copy_id: int, indices: list[int], status: str) -> None:
        """Move keys forward to ``status``; a key never moves back (burned stays burned)."""
        rank = {name: i for i, name in enumerate(KEY_STATUSES)}
        with self.transaction() as db:
            for index in indices:
                row = db.execute(
                    "SELECT status FROM fkey WHERE copy_id = ? AND key_index = ?", (copy_id, index)
                ).fetchone()
                if row is None or rank[str(row[0])] >= rank[status]:
                    continue
                db.execute(
                    "UPDATE fkey SET status = ?, used_at = ? WHERE copy_id = ? AND key_index = ?",
                    (status, time.time(), copy_id, index),
                )

    # ------------------------------------------------------------------ receipts

    def add_receipt(
        self,
        *,
        copy_id: int,
        epoch: int,
        seq: int,
        prompt_hash: bytes,
        response_hash: bytes,
        signature: bytes,
        endpoint: str,
        observed_epoch: int | None,
    ) -> int | None:
        """Store a receipt; returns its id (None if exactly this receipt was stored before)."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO receipt (copy_id, epoch, seq, prompt_hash, response_hash, "
                "signature, endpoint, observed_epoch, received_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    copy_id,
                    epoch,
                    seq,
                    prompt_hash,
                    response_hash,
                    signature,
                    endpoint,
                    observed_epoch,
                    time.time(),
                ),
            )
            return int(cursor.lastrowid or 0) if cursor.rowcount else None

    def receipts(
        self, *, status: str | None = None, copy_id: int | None = None
    ) -> list[StoredReceipt]:
        clauses: list[str] = []
        args: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if copy_id is not None:
            clauses.append("copy_id = ?")
            args.append(copy_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.query(
            "SELECT id, copy_id, epoch, seq, prompt_hash, response_hash, signature, endpoint, "
            f"observed_epoch, status FROM receipt{where} ORDER BY copy_id, seq, id",
            tuple(args),
        )
        return [
            StoredReceipt(
                int(r[0]),
                int(r[1]),
                int(r[2]),
                int(r[3]),
                bytes(r[4]),
                bytes(r[5]),
                bytes(r[6]),
                str(r[7]),
                None if r[8] is None else int(r[8]),
                str(r[9]),
            )
            for r in rows
        ]

    def receipts_sharing_a_seq(self) -> list[StoredReceipt]:
        """Receipts whose (copy, seq) appears more than once: the equivocation candidates."""
        pairs = {
            (int(c), int(q))
            for c, q in self.query(
                "SELECT copy_id, seq FROM receipt GROUP BY copy_id, seq HAVING COUNT(*) > 1"
            )
        }
        if not pairs:
            return []
        return [r for r in self.receipts() if (r.copy_id, r.seq) in pairs]

    def set_receipt_status(self, ids: list[int], status: str) -> None:
        with self.transaction() as db:
            db.executemany("UPDATE receipt SET status = ? WHERE id = ?", [(status, i) for i in ids])

    def receipt_counts(self) -> dict[str, int]:
        return {
            str(s): int(n)
            for s, n in self.query("SELECT status, COUNT(*) FROM receipt GROUP BY status")
        }

    # ------------------------------------------------------------------ probes, anomalies

    def add_probe(
        self,
        *,
        endpoint: str,
        purpose: str,
        seconds: float,
        copy_id: int | None = None,
        key_index: int | None = None,
        matched: bool | None = None,
        status: int | None = None,
        receipt_id: int | None = None,
        error: str | None = None,
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO probe (endpoint, purpose, copy_id, key_index, matched, status, "
                "seconds, receipt_id, error, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    endpoint,
                    purpose,
                    copy_id,
                    key_index,
                    None if matched is None else int(matched),
                    status,
                    seconds,
                    receipt_id,
                    error,
                    time.time(),
                ),
            )

    def add_anomaly(self, endpoint: str, copy_id: int | None, kind: str, detail: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO anomaly (endpoint, copy_id, kind, detail, created_at) "
                "VALUES (?,?,?,?,?)",
                (endpoint, copy_id, kind, detail, time.time()),
            )

    def anomalies(self) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT endpoint, copy_id, kind, detail, created_at FROM anomaly ORDER BY id"
        )
        return [
            {"endpoint": r[0], "copyId": r[1], "kind": r[2], "detail": r[3], "at": r[4]}
            for r in rows
        ]

    # ------------------------------------------------------------------ watch list

    def add_watch(self, url: str, model_id: int | None, model_name: str | None) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO watch (url, model_id, model_name, active, added_at) VALUES "
                "(?, ?, ?, 1, ?) ON CONFLICT(url) DO UPDATE SET model_id = excluded.model_id, "
                "model_name = excluded.model_name, active = 1",
                (url, model_id, model_name, time.time()),
            )
            return cursor.rowcount > 0

    def remove_watch(self, url: str) -> bool:
        with self.transaction() as db:
            return db.execute("UPDATE watch SET active = 0 WHERE url = ?", (url,)).rowcount > 0

    def watch_list(self, active_only: bool = True) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT url, model_id, model_name, active, added_at, last_probed_at, last_result "
            "FROM watch" + (" WHERE active = 1" if active_only else "") + " ORDER BY added_at"
        )
        return [
            {
                "url": r[0],
                "modelId": r[1],
                "modelName": r[2],
                "active": bool(r[3]),
                "addedAt": r[4],
                "lastProbedAt": r[5],
                "lastResult": json.loads(r[6]) if r[6] else None,
            }
            for r in rows
        ]

    def record_watch_result(self, url: str, result: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE watch SET last_probed_at = ?, last_result = ? WHERE url = ?",
                (time.time(), json.dumps(result), url),
            )

    # ------------------------------------------------------------------ detections

    def add_detection(
        self,
        *,
        endpoint: str,
        copy_id: int,
        queried: int,
        matched: int,
        false_positive: float,
        threshold: float,
        copies_tested: int,
        accused: bool,
        evidence_cid: str | None,
        reveal_index: int | None,
    ) -> int:
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO detection (endpoint, copy_id, queried, matched, false_positive, "
                "threshold, copies_tested, accused, evidence_cid, reveal_index, created_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    endpoint,
                    copy_id,
                    queried,
                    matched,
                    false_positive,
                    threshold,
                    copies_tested,
                    int(accused),
                    evidence_cid,
                    reveal_index,
                    time.time(),
                ),
            )
            return int(cursor.lastrowid or 0)

    def detections(self) -> list[dict[str, Any]]:
        rows = self.query(
            "SELECT id, endpoint, copy_id, queried, matched, false_positive, threshold, "
            "copies_tested, accused, evidence_cid, reveal_index, created_at FROM detection "
            "ORDER BY id"
        )
        names = (
            "id",
            "endpoint",
            "copyId",
            "queried",
            "matched",
            "falsePositiveProbability",
            "threshold",
            "copiesTested",
            "accused",
            "evidenceCID",
            "revealIndex",
            "at",
        )
        return [dict(zip(names, r, strict=True)) for r in rows]

    # ------------------------------------------------------------------ challenges

    def new_challenge(self, kind: str, copy_id: int, state: str, **fields: Any) -> int | None:
        """Insert a challenge; None when the same provable offence is already tracked."""
        data = fields.pop("data", {})
        columns = ["kind", "copy_id", "state", "data", "created_at", "updated_at", *fields]
        values = [
            kind,
            copy_id,
            state,
            json.dumps(data),
            time.time(),
            time.time(),
            *fields.values(),
        ]
        with self.transaction() as db:
            try:
                cursor = db.execute(
                    f"INSERT INTO challenge ({', '.join(columns)}) VALUES "
                    f"({', '.join('?' for _ in columns)})",
                    tuple(values),
                )
            except sqlite3.IntegrityError:
                return None
            return int(cursor.lastrowid or 0)

    def update_challenge(self, challenge_id: int, **fields: Any) -> None:
        if "data" in fields:
            fields["data"] = json.dumps(fields["data"])
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as db:
            db.execute(
                f"UPDATE challenge SET {sets} WHERE id = ?", (*fields.values(), challenge_id)
            )

    def challenges(
        self,
        *,
        kind: str | None = None,
        states: tuple[str, ...] | None = None,
        copy_id: int | None = None,
    ) -> list[ChallengeRow]:
        clauses: list[str] = []
        args: list[Any] = []
        if kind is not None:
            clauses.append("kind = ?")
            args.append(kind)
        if states is not None:
            clauses.append(f"state IN ({','.join('?' for _ in states)})")
            args.extend(states)
        if copy_id is not None:
            clauses.append("copy_id = ?")
            args.append(copy_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self.query(
            f"SELECT {_CHALLENGE_COLUMNS} FROM challenge{where} ORDER BY id", tuple(args)
        )
        out = []
        for r in rows:
            row = ChallengeRow(id=int(r[0]), kind=str(r[1]), copy_id=int(r[2]), state=str(r[3]))
            for name, value in zip(_CHALLENGE_COLUMNS.split(", ")[4:], r[4:], strict=True):
                setattr(row, name, json.loads(value) if name == "data" else value)
            out.append(row)
        return out

    def challenge(self, challenge_id: int) -> ChallengeRow | None:
        found = [c for c in self.challenges() if c.id == challenge_id]
        return found[0] if found else None
