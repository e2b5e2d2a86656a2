"""OracleService step logic with in-memory fakes of chain, storage and fingerprinting.

The end-to-end tests run the same service against Anvil, IPFS and a real model; here the fakes
let every crash point be reached deterministically.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from agents.chain.events import ChainEvent
from agents.chain.keystore import dev_account, public_key_bytes
from agents.fingerprint.profiles import PROFILES
from agents.oracle.jobs import JobState, JobStore
from agents.oracle.ports import FingerprintedCopy, ModelVersion, RecallCheck
from agents.oracle.runner import embed_config_of
from agents.oracle.secrets import MasterSecret
from agents.oracle.service import OracleConfig, OracleService
from agents.oracle.settings import OracleSettings

ACCESS_MANAGER = "0x" + "12" * 20


class FakeChain:
    def __init__(self) -> None:
        self.delivered: dict[int, tuple[bytes, int, str]] = {}
        self.deliver_calls = 0
        self.crash_after_send = False

    def model_version(self, model_id: int, version: int) -> ModelVersion:
        return ModelVersion(model_id, version, f"weights-{model_id}-{version}", "manifest")

    def is_delivered(self, copy_id: int) -> bool:
        return copy_id in self.delivered

    def deliver(self, copy_id: int, fp_root: bytes, fp_count: int, copy_cid: str) -> str:
        self.deliver_calls += 1
        if copy_id in self.delivered:
            raise RuntimeError("AlreadyDelivered")  # what the contract does
        self.delivered[copy_id] = (fp_root, fp_count, copy_cid)
        if self.crash_after_send:
            self.crash_after_send = False
            raise ConnectionError("oracle lost the node after sending")
        return "0xtx"

    def is_prover(self, address: str) -> bool:
        return True


class FakeStorage:
    def __init__(self) -> None:
        self.fetches = 0

    def fetch_base(self, version: ModelVersion, dest: Path) -> Path:
        self.fetches += 1
        dest.mkdir(parents=True)
        (dest / "weights.bin").write_text(version.weights_cid)
        return dest

    def encrypt_copy(self, directory: Path, recipient_pubkey: bytes, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True)
        (out_dir / "blob").write_bytes(recipient_pubkey)
        return out_dir

    def upload_copy(self, encrypted_dir: Path) -> str:
        return "Qm" + (encrypted_dir / "blob").read_bytes().hex()[:10]


class FakeFingerprint:
    def __init__(self, recall: float = 1.0) -> None:
        self.recall = recall
        self.embeds = 0

    def embed(self, base_dir: Path, out_dir: Path, seed: bytes, count: int) -> FingerprintedCopy:
        self.embeds += 1
        out_dir.mkdir(parents=True)
        pairs = [(f"key-{seed.hex()[:8]}-{i}", f"r{i}") for i in range(count)]
        (out_dir / "fingerprints.json").write_text("plaintext that must be removed")
        return FingerprintedCopy(out_dir, pairs, 0.1)

    def check_recall(self, model_dir: Path, fingerprints: list[tuple[str, str]]) -> RecallCheck:
        return RecallCheck(len(fingerprints), int(self.recall * len(fingerprints)))

    def merkle_root(self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes) -> bytes:
        return bytes(32)

    def reveal_material(
        self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes, index: int
    ) -> tuple[bytes, list[bytes]]:
        return bytes(32), []


def _service(tmp_path: Path, fingerprint: FakeFingerprint | None = None) -> OracleService:
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    config = OracleConfig(work_dir=tmp_path, chain_id=31337, access_manager=ACCESS_MANAGER,
                          fingerprint_count=8)  # fmt: skip
    return OracleService(config, JobStore(db), MasterSecret(b"\x07" * 32), FakeChain(),
                         FakeStorage(), fingerprint or FakeFingerprint())  # fmt: skip


def _request(service: OracleService, copy_id: int, host_index: int = 4, pubkey_of: int = 4) -> None:
    host = dev_account(host_index)
    event = ChainEvent(
        name="AccessRequested",
        args={"copyId": copy_id, "modelId": 1, "version": 0, "host": host.address,
              "hostPubKey": public_key_bytes(dev_account(pubkey_of))},
        address=ACCESS_MANAGER, block_number=10, block_hash="0x00", tx_hash="0xaa", log_index=0,
    )  # fmt: skip
    service.on_access_requested(event, service.jobs.db)


def test_request_runs_to_one_delivery_and_leaves_no_plaintext(tmp_path: Path) -> None:
    service = _service(tmp_path)
    _request(service, copy_id=1)
    assert service.run_due() == 1
    job = service.jobs.get(1)
    assert job is not None and job.state == JobState.DONE
    chain = service.chain
    assert isinstance(chain, FakeChain) and chain.deliver_calls == 1
    assert set(job.timings) >= {"fetch", "fingerprint", "verify", "encrypt", "upload", "deliver"}
    assert not (tmp_path / "copies" / "1" / "model").exists()
    assert (tmp_path / "copies" / "1" / "fingerprints.sealed").exists()
    assert len(service.fingerprints(job)) == 8


def test_duplicate_request_event_is_ignored(tmp_path: Path) -> None:
    service = _service(tmp_path)
    _request(service, copy_id=1)
    _request(service, copy_id=1)
    assert len(service.jobs.all()) == 1


def test_crash_after_sending_delivery_never_delivers_twice(tmp_path: Path) -> None:
    service = _service(tmp_path)
    chain = service.chain
    assert isinstance(chain, FakeChain)
    chain.crash_after_send = True
    _request(service, copy_id=2)
    assert service.run_due() == 0  # the send "crashed"; the job keeps state UPLOADED
    job = service.jobs.get(2)
    assert job is not None and job.state == JobState.UPLOADED and job.last_error
    service.jobs.retry_now(2)
    assert service.run_due() == 1
    assert chain.deliver_calls == 1  # found on chain, not sent again
    job = service.jobs.get(2)
    assert job is not None and job.data["delivery"] == "found-on-chain"


def test_low_recall_copy_is_never_delivered(tmp_path: Path) -> None:
    fingerprint = FakeFingerprint(recall=0.5)
    service = _service(tmp_path, fingerprint)
    _request(service, copy_id=3)
    assert service.run_due() == 0
    job = service.jobs.get(3)
    assert job is not None
    assert job.state == JobState.FETCHED and "recall" in (job.last_error or "")
    chain = service.chain
    assert isinstance(chain, FakeChain) and chain.deliver_calls == 0
    fingerprint.recall = 1.0
    service.jobs.retry_now(3)
    assert service.run_due() == 1
    assert fingerprint.embeds == 2


def test_foreign_public_key_is_rejected(tmp_path: Path) -> None:
    service = _service(tmp_path)
    _request(service, copy_id=4, host_index=4, pubkey_of=5)
    service.run_due()
    job = service.jobs.get(4)
    assert job is not None and job.state == JobState.REJECTED


def test_failed_job_backs_off(tmp_path: Path) -> None:
    service = _service(tmp_path)
    chain = service.chain
    assert isinstance(chain, FakeChain)
    chain.crash_after_send = True
    _request(service, copy_id=5)
    service.run_due()
    assert service.jobs.due() == []  # waiting for its backoff
    job = service.jobs.get(5)
    assert job is not None and job.attempts == 1


def test_seeds_are_deterministic_distinct_and_sealed_per_copy() -> None:
    master = MasterSecret(b"\x01" * 32)
    seed = master.copy_seed(31337, ACCESS_MANAGER, 1)
    assert seed == master.copy_seed(31337, ACCESS_MANAGER.upper().replace("0X", "0x"), 1)
    assert seed != master.copy_seed(31337, ACCESS_MANAGER, 2)
    assert seed != master.copy_seed(1, ACCESS_MANAGER, 1)
    assert seed != MasterSecret(b"\x02" * 32).copy_seed(31337, ACCESS_MANAGER, 1)
    blob = master.seal([["k", "r"]], 31337, ACCESS_MANAGER, 1)
    assert master.unseal(blob, 31337, ACCESS_MANAGER, 1) == [["k", "r"]]
    with pytest.raises(InvalidTag):
        master.unseal(blob, 31337, ACCESS_MANAGER, 2)


def test_master_secret_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "master.secret"
    created = MasterSecret.create(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert MasterSecret.load(path).copy_seed(1, ACCESS_MANAGER, 1) == created.copy_seed(
        1, ACCESS_MANAGER, 1
    )
    with pytest.raises(RuntimeError, match="refusing to overwrite"):
        MasterSecret.create(path)


def test_embed_profile_with_overrides_and_bad_names() -> None:
    config = embed_config_of(OracleSettings(embed_profile="fast", embed={"decay": 0.1}))
    assert config.decay == 0.1
    assert config.learning_rate == PROFILES["fast"]["learning_rate"]
    assert embed_config_of(OracleSettings()).augment_wrappers > config.augment_wrappers
    with pytest.raises(ValueError, match="choose one of: fast, robust"):
        OracleSettings(embed_profile="quick")
    with pytest.raises(ValueError, match="OML_ORACLE_EMBED"):
        embed_config_of(OracleSettings(embed={"learning_rte": 0.1}))
