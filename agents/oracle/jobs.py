"""The oracle's job table: one row per copy, advanced one durable step at a time.

Every step writes its result before the state moves on, so an oracle killed at any point
restarts at the first unfinished step. Delivery is made idempotent by checking the chain
before sending ``deliverCopy`` (see :mod:`agents.oracle.service`).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class JobState(StrEnum):
    REQUESTED = "requested"
    FETCHED = "fetched"
    FINGERPRINTED = "fingerprinted"
    VERIFIED = "verified"
    ENCRYPTED = "encrypted"
    UPLOADED = "uploaded"
    DELIVERED = "delivered"
    DONE = "done"
    REJECTED = "rejected"  # permanent: the request itself is invalid


ORDER = [
    JobState.REQUESTED,
    JobState.FETCHED,
    JobState.FINGERPRINTED,
    JobState.VERIFIED,
    JobState.ENCRYPTED,
    JobState.UPLOADED,
    JobState.DELIVERED,
    JobState.DONE,
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS copy_job (
    copy_id INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    host TEXT NOT NULL,
    host_pubkey TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    timings TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
"""


@dataclass
class Job:
    copy_id: int
    model_id: int
    version: int
    host: str
    host_pubkey: str
    state: JobState
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


class JobStore:
    """SQLite-backed job rows; safe to share one connection with the event cursor."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(SCHEMA)

    @classmethod
    def open(cls, path: Path) -> JobStore:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return cls(db)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def insert(self, job: Job, *, conn: sqlite3.Connection | None = None) -> bool:
        """Record a new request; returns False when the copy already has a job."""
        now = time.time()
        cursor = (conn or self.db).execute(
            "INSERT OR IGNORE INTO copy_job (copy_id, model_id, version, host, host_pubkey, "
            "state, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.copy_id, job.model_id, job.version, job.host, job.host_pubkey,
                job.state.value, json.dumps(job.data), now, now,
            ),
        )  # fmt: skip
        return cursor.rowcount == 1

    def get(self, copy_id: int) -> Job | None:
        row = self.db.execute("SELECT * FROM copy_job WHERE copy_id = ?", (copy_id,)).fetchone()
        return _row_to_job(self.db, row) if row else None

    def all(self) -> list[Job]:
        rows = self.db.execute("SELECT * FROM copy_job ORDER BY copy_id").fetchall()
        return [_row_to_job(self.db, row) for row in rows]

    def due(self, now: float | None = None) -> list[Job]:
        """Unfinished jobs whose backoff has elapsed, oldest first."""
        now = time.time() if now is None else now
        rows = self.db.execute(
            "SELECT * FROM copy_job WHERE state NOT IN (?, ?) AND next_attempt_at <= ? "
            "ORDER BY copy_id",
            (JobState.DONE.value, JobState.REJECTED.value, now),
        ).fetchall()
        return [_row_to_job(self.db, row) for row in rows]

    def advance(
        self, job: Job, state: JobState, *, data: dict[str, Any], step: str, seconds: float
    ) -> None:
        """Persist a finished step's outputs and move the job on, atomically."""
        job.data.update(data)
        job.timings[step] = round(seconds, 3)
        job.state = state
        job.last_error = None
        with self._transaction():
            self.db.execute(
                "UPDATE copy_job SET state = ?, data = ?, timings = ?, last_error = NULL, "
                "attempts = 0, updated_at = ? WHERE copy_id = ?",
                (state.value, json.dumps(job.data), json.dumps(job.timings), time.time(),
                 job.copy_id),
            )  # fmt: skip

    def fail(
        self, job: Job, error: str, *, base_delay_s: float = 5.0, max_delay_s: float = 600.0
    ) -> None:
        """Record a failed attempt; the job is retried after an exponential backoff."""
        job.attempts += 1
        job.last_error = error
        job.next_attempt_at = time.time() + min(base_delay_s * 2 ** (job.attempts - 1), max_delay_s)
        self.db.execute(
            "UPDATE copy_job SET attempts = ?, last_error = ?, next_attempt_at = ?, updated_at = ? "
            "WHERE copy_id = ?",
            (job.attempts, error, job.next_attempt_at, time.time(), job.copy_id),
        )

    def reject(self, job: Job, reason: str) -> None:
        job.state = JobState.REJECTED
        job.last_error = reason
        self.db.execute(
            "UPDATE copy_job SET state = ?, last_error = ?, updated_at = ? WHERE copy_id = ?",
            (JobState.REJECTED.value, reason, time.time(), job.copy_id),
        )

    def retry_now(self, copy_id: int) -> bool:
        """Operator command: clear the backoff (and a rejection) so the job runs again."""
        cursor = self.db.execute(
            "UPDATE copy_job SET next_attempt_at = 0, attempts = 0, "
            "state = CASE state WHEN ? THEN ? ELSE state END WHERE copy_id = ?",
            (JobState.REJECTED.value, JobState.REQUESTED.value, copy_id),
        )
        return cursor.rowcount == 1


def _row_to_job(db: sqlite3.Connection, row: tuple[Any, ...]) -> Job:
    names = [d[1] for d in db.execute("PRAGMA table_info(copy_job)").fetchall()]
    record = dict(zip(names, row, strict=True))
    return Job(
        copy_id=int(record["copy_id"]),
        model_id=int(record["model_id"]),
        version=int(record["version"]),
        host=str(record["host"]),
        host_pubkey=str(record["host_pubkey"]),
        state=JobState(record["state"]),
        attempts=int(record["attempts"]),
        next_attempt_at=float(record["next_attempt_at"]),
        last_error=record["last_error"],
        data=json.loads(record["data"]),
        timings=json.loads(record["timings"]),
    )
