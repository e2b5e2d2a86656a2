"""HTTP key service: staked provers obtain small batches of never-released fingerprint keys.

A request is an EIP-712 ``KeyRequest`` signed by the prover (see
:mod:`agents.chain.key_requests`). The service checks the signature, deadline, single-use
nonce, the prover's stake on chain and per-prover/per-copy rate limits, then picks unreleased
indices at random and records the release in the same SQLite transaction as the nonce — before
the response leaves — so no key is ever handed out twice.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from agents.chain.key_requests import KeyRequest, key_request_signer
from agents.oracle.jobs import JobState
from agents.oracle.service import OracleService

SCHEMA = """
CREATE TABLE IF NOT EXISTS key_release (
    copy_id INTEGER NOT NULL, key_index INTEGER NOT NULL, prover TEXT NOT NULL,
    released_at REAL NOT NULL, PRIMARY KEY (copy_id, key_index)
);
CREATE TABLE IF NOT EXISTS key_request_nonce (
    prover TEXT NOT NULL, nonce TEXT NOT NULL, used_at REAL NOT NULL,
    PRIMARY KEY (prover, nonce)
);
"""


@dataclass(frozen=True)
class KeyServiceLimits:
    keys_per_copy_per_window: int = 16  # per prover
    window_s: float = 3600.0


class KeyBatchRequest(BaseModel):
    request: KeyRequest
    signature: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{130}$")


class ReleasedKey(BaseModel):
    index: int
    key: str
    response: str
    salt: str
    proof: list[str]


class KeyBatch(BaseModel):
    copy_id: int
    fp_root: str
    fp_count: int
    keys: list[ReleasedKey]


def create_app(
    service: OracleService, limits: KeyServiceLimits | None = None, clock: Any = time.time
) -> FastAPI:
    limits = limits or KeyServiceLimits()
    db: sqlite3.Connection = service.jobs.db
    db.executescript(SCHEMA)
    app = FastAPI(title="OML Hub oracle key service", version="1")

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/keys", response_model=KeyBatch)
    def release_keys(body: KeyBatchRequest) -> KeyBatch:
        request = body.request
        now = clock()
        if request.deadline < now:
            raise HTTPException(400, "request expired: sign a new one with a later deadline")
        signature = bytes.fromhex(body.signature.removeprefix("0x"))
        try:
            signer = key_request_signer(request, signature, service.config.chain_id)
        except Exception as error:
            raise HTTPException(400, f"unreadable signature: {error}") from error
        if signer.lower() != request.prover.lower():
            raise HTTPException(401, "signature is not by the prover named in the request")
        if not service.chain.is_prover(request.prover):
            raise HTTPException(403, "prover has no active bond: register as a prover first")
        job = service.jobs.get(request.copy_id)
        if job is None or job.state != JobState.DONE:
            raise HTTPException(404, f"copy {request.copy_id} is unknown or not delivered yet")
        fingerprints = service.fingerprints(job)
        seed = service.master.copy_seed(
            service.config.chain_id, service.config.access_manager, job.copy_id
        )
        prover = request.prover.lower()

        db.execute("BEGIN IMMEDIATE")
        try:
            try:
                db.execute(
                    "INSERT INTO key_request_nonce VALUES (?, ?, ?)",
                    (prover, str(request.nonce), now),
                )
            except sqlite3.IntegrityError as error:
                raise HTTPException(409, "nonce already used: sign a fresh request") from error
            recent = db.execute(
                "SELECT COUNT(*) FROM key_release WHERE copy_id = ? AND prover = ? "
                "AND released_at > ?",
                (job.copy_id, prover, now - limits.window_s),
            ).fetchone()[0]
            allowed = limits.keys_per_copy_per_window - int(recent)
            if allowed < request.count:
                raise HTTPException(
                    429,
                    f"rate limit: {allowed} more key(s) for copy {job.copy_id} in this "
                    f"{limits.window_s:.0f}s window",
                )
            released = {
                int(row[0])
                for row in db.execute(
                    "SELECT key_index FROM key_release WHERE copy_id = ?", (job.copy_id,)
                )
            }
            free = [i for i in range(len(fingerprints)) if i not in released]
            if len(free) < request.count:
                raise HTTPException(410, f"only {len(free)} unreleased key(s) left for this copy")
            chosen = sorted(secrets.SystemRandom().sample(free, request.count))
            db.executemany(
                "INSERT INTO key_release VALUES (?, ?, ?, ?)",
                [(job.copy_id, index, prover, now) for index in chosen],
            )
            keys = []
            for index in chosen:
                salt, proof = service.fingerprint.reveal_material(
                    job.copy_id, fingerprints, seed, index
                )
                key, response = fingerprints[index]
                keys.append(
                    ReleasedKey(index=index, key=key, response=response, salt="0x" + salt.hex(),
                                proof=["0x" + node.hex() for node in proof])
                )  # fmt: skip
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return KeyBatch(
            copy_id=job.copy_id,
            fp_root="0x" + str(job.data.get("fp_root", "")),
            fp_count=len(fingerprints),
            keys=keys,
        )

    return app
