"""The oracle's work: turn each ``AccessRequested`` into a delivered, fingerprinted copy.

Events only insert a job row (inside the event cursor's transaction, so a request is recorded
exactly once); a worker then advances each job step by step. Before ``deliverCopy`` the chain
is asked whether the copy is already delivered, so a crash between sending the transaction
and recording it never causes a second delivery.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_keys.datatypes import PublicKey

from agents.chain.events import ChainEvent
from agents.oracle.jobs import Job, JobState, JobStore
from agents.oracle.ports import ChainPort, FingerprintPort, StoragePort
from agents.oracle.secrets import MasterSecret

log = logging.getLogger(__name__)

# Test-only fault injection: exit abruptly (like kill -9) right after the named step.
CRASH_AFTER_ENV = "OML_ORACLE_CRASH_AFTER"


class RecallTooLow(RuntimeError):
    """The fingerprinted copy does not answer enough of its own keys to be delivered."""


@dataclass(frozen=True)
class OracleConfig:
    work_dir: Path
    chain_id: int
    access_manager: str
    fingerprint_count: int = 64
    recall_threshold: float = 0.95
    keep_plaintext: bool = False


class OracleService:
    def __init__(
        self,
        config: OracleConfig,
        jobs: JobStore,
        master: MasterSecret,
        chain: ChainPort,
        storage: StoragePort,
        fingerprint: FingerprintPort,
        *,
        seal_store: Callable[[int, bytes], None] | None = None,
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.master = master
        self.chain = chain
        self.storage = storage
        self.fingerprint = fingerprint
        self._seal_store = seal_store

    # ------------------------------------------------------------------ events

    def on_access_requested(self, event: ChainEvent, conn: sqlite3.Connection) -> None:
        args = event.args
        pubkey = bytes(args["hostPubKey"])
        job = Job(
            copy_id=int(args["copyId"]),
            model_id=int(args["modelId"]),
            version=int(args["version"]),
            host=str(args["host"]),
            host_pubkey=pubkey.hex(),
            state=JobState.REQUESTED,
            data={"request_block": event.block_number, "request_tx": event.tx_hash},
        )
        if not self.jobs.insert(job, conn=conn):
            log.info("copy %d already has a job; request event ignored", job.copy_id)
            return
        log.info("copy %d requested by %s (model %d v%d)", job.copy_id, job.host, job.model_id,
                 job.version)  # fmt: skip

    # ------------------------------------------------------------------ worker

    def run_due(self) -> int:
        """Advance every due job as far as it goes; returns how many reached DONE."""
        finished = 0
        for job in self.jobs.due():
            try:
                self.run_job(job)
                finished += job.state == JobState.DONE
            except Exception as error:  # one bad job must not stop the others
                log.warning("copy %d failed at %s: %s", job.copy_id, job.state.value, error)
                self.jobs.fail(job, f"{type(error).__name__}: {error}")
        return finished

    def run_job(self, job: Job) -> None:
        if job.state == JobState.REQUESTED and not _pubkey_matches(job.host_pubkey, job.host):
            self.jobs.reject(job, "host public key does not belong to the requesting address")
            log.error("copy %d rejected: public key does not match %s", job.copy_id, job.host)
            return
        steps = {
            JobState.REQUESTED: self._fetch,
            JobState.FETCHED: self._fingerprint,
            JobState.FINGERPRINTED: self._verify,
            JobState.VERIFIED: self._encrypt,
            JobState.ENCRYPTED: self._upload,
            JobState.UPLOADED: self._deliver,
            JobState.DELIVERED: self._finish,
        }
        while job.state in steps:
            step = steps[job.state]
            started = time.perf_counter()
            next_state, data = step(job)
            name = step.__name__.lstrip("_")
            self.jobs.advance(job, next_state, data=data, step=name,
                              seconds=time.perf_counter() - started)  # fmt: skip
            log.info("copy %d: %s done in %.2fs", job.copy_id, name, job.timings[name])
            _crash_point(name)

    # ------------------------------------------------------------------ steps

    def _copy_dir(self, job: Job) -> Path:
        return self.config.work_dir / "copies" / str(job.copy_id)

    def _seed(self, job: Job) -> bytes:
        return self.master.copy_seed(self.config.chain_id, self.config.access_manager, job.copy_id)

    def _fetch(self, job: Job) -> tuple[JobState, dict[str, object]]:
        version = self.chain.model_version(job.model_id, job.version)
        base_dir = self.config.work_dir / "base" / f"{job.model_id}-{job.version}"
        if not (base_dir / ".complete").exists():
            partial = base_dir.with_name(base_dir.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            self.storage.fetch_base(version, partial)
            (partial / ".complete").write_text(version.weights_cid)
            shutil.rmtree(base_dir, ignore_errors=True)
            partial.rename(base_dir)
        return JobState.FETCHED, {"base_dir": str(base_dir), "weights_cid": version.weights_cid}

    def _fingerprint(self, job: Job) -> tuple[JobState, dict[str, object]]:
        out_dir = self._copy_dir(job) / "model"
        shutil.rmtree(out_dir, ignore_errors=True)  # a crash mid-embedding leaves debris
        copy = self.fingerprint.embed(
            Path(str(job.data["base_dir"])), out_dir, self._seed(job), self.config.fingerprint_count
        )
        sealed = self.master.seal(
            [list(pair) for pair in copy.fingerprints],
            self.config.chain_id, self.config.access_manager, job.copy_id,
        )  # fmt: skip
        sealed_path = self._copy_dir(job) / "fingerprints.sealed"
        sealed_path.write_bytes(sealed)
        # The plaintext record written by the engine must not outlive this step.
        (out_dir / "fingerprints.json").unlink(missing_ok=True)
        if self._seal_store is not None:
            self._seal_store(job.copy_id, sealed)
        return JobState.FINGERPRINTED, {
            "copy_dir": str(out_dir),
            "fp_count": len(copy.fingerprints),
            "sealed_fingerprints": str(sealed_path),
        }

    def fingerprints(self, job: Job) -> list[tuple[str, str]]:
        sealed = Path(str(job.data["sealed_fingerprints"])).read_bytes()
        record = self.master.unseal(
            sealed, self.config.chain_id, self.config.access_manager, job.copy_id
        )
        return [(str(key), str(response)) for key, response in record]

    def _verify(self, job: Job) -> tuple[JobState, dict[str, object]]:
        check = self.fingerprint.check_recall(
            Path(str(job.data["copy_dir"])), self.fingerprints(job)
        )
        if check.recall < self.config.recall_threshold:
            # Never deliver a weak copy: go back and fingerprint again after the backoff.
            self.jobs.advance(job, JobState.FETCHED, data={}, step="verify_rejected", seconds=0)
            raise RecallTooLow(
                f"recall {check.recall:.1%} below threshold {self.config.recall_threshold:.0%}"
            )
        return JobState.VERIFIED, {"recall": check.recall}

    def _encrypt(self, job: Job) -> tuple[JobState, dict[str, object]]:
        out_dir = self._copy_dir(job) / "encrypted"
        shutil.rmtree(out_dir, ignore_errors=True)
        encrypted = self.storage.encrypt_copy(
            Path(str(job.data["copy_dir"])), bytes.fromhex(job.host_pubkey), out_dir
        )
        return JobState.ENCRYPTED, {"encrypted_dir": str(encrypted)}

    def _upload(self, job: Job) -> tuple[JobState, dict[str, object]]:
        cid = self.storage.upload_copy(Path(str(job.data["encrypted_dir"])))
        return JobState.UPLOADED, {"copy_cid": cid}

    def _deliver(self, job: Job) -> tuple[JobState, dict[str, object]]:
        fingerprints = self.fingerprints(job)
        root = self.fingerprint.merkle_root(job.copy_id, fingerprints, self._seed(job))
        if self.chain.is_delivered(job.copy_id):
            log.info("copy %d already delivered on chain; not sending again", job.copy_id)
            return JobState.DELIVERED, {"delivery": "found-on-chain", "fp_root": root.hex()}
        tx_hash = self.chain.deliver(
            job.copy_id, root, len(fingerprints), str(job.data["copy_cid"])
        )
        _crash_point("deliver-sent")  # mined, but not yet recorded here
        return JobState.DELIVERED, {"fp_root": root.hex(), "tx_hash": tx_hash}

    def _finish(self, job: Job) -> tuple[JobState, dict[str, object]]:
        if not self.config.keep_plaintext:
            shutil.rmtree(Path(str(job.data["copy_dir"])), ignore_errors=True)
        shutil.rmtree(Path(str(job.data["encrypted_dir"])), ignore_errors=True)
        return JobState.DONE, {}


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_AFTER_ENV) == name:
        os._exit(137)


def _pubkey_matches(pubkey_hex: str, address: str) -> bool:
    try:
        key = PublicKey(bytes.fromhex(pubkey_hex))
    except Exception:
        return False
    return key.to_checksum_address().lower() == address.lower()
