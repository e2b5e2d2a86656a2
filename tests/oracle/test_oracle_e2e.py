"""The oracle end to end: Anvil (ape-foundry), the test world's IPFS node, a tiny real model.

register → request access → the oracle fingerprints, encrypts, uploads, delivers → the host
downloads and decrypts its copy, which answers its own fingerprints; a second host's copy
does not answer the first one's keys. Crash safety runs the real `oml oracle run --once` in a
subprocess killed (exit 137, like kill -9) after a chosen step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from agents.chain.keystore import dev_account, public_key_bytes
from agents.chain.protocol import Protocol
from agents.fingerprint.detection import accuse, verify_fingerprints
from agents.fingerprint.generation import Fingerprint
from agents.fingerprint.models import make_tiny_model, tiny_embed_config
from agents.oracle.jobs import JobState
from agents.oracle.runner import Oracle, build_oracle
from agents.oracle.secrets import MasterSecret
from agents.oracle.settings import OracleSettings
from agents.storage.client import IpfsStore
from agents.storage.manifest import Encryption, FileEntry, ModelManifest
from agents.storage.models import SEALED_INDEX, fetch_folder, publish_folder, seal_folder
from agents.storage.unixfs import cid_of_bytes

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY = tiny_embed_config(benign_sequences=256)
FINGERPRINTS = 8
PRICE = 1_000  # 0.001 mUSD per call
MIN_COLLATERAL = 10_000_000


@pytest.fixture(scope="module")
def world(
    accounts: Any, chain: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from deploy import DEV, deploy_all, write_deployment

    network = f"test-oracle-{uuid.uuid4().hex[:8]}"
    contracts = deploy_all(accounts[0], accounts[1], accounts[2], accounts[3], profile=DEV)
    roles = {"oracle": accounts[1].address, "arbiter": accounts[2].address,
             "treasury": accounts[3].address}  # fmt: skip
    path = write_deployment(network, chain.chain_id, 1, contracts, roles, DEV)
    rpc_url = chain.provider.uri
    secret = tmp_path_factory.mktemp("oracle-secret") / "master.secret"
    MasterSecret.create(secret)
    base = make_tiny_model(tmp_path_factory.mktemp("base") / "tiny", seed=3)
    yield {"network": network, "rpc": rpc_url, "secret": secret, "base": base}
    path.unlink(missing_ok=True)


def _protocol(world: dict[str, Any], account: LocalAccount) -> Protocol:
    return Protocol.connect(account, world["network"], rpc_url=world["rpc"])


@pytest.fixture(scope="module")
def model_id(world: dict[str, Any]) -> int:
    creator = _protocol(world, dev_account(5))
    with IpfsStore() as store:
        published = publish_folder(
            store, world["base"], encrypt_to=public_key_bytes(dev_account(1))
        )
    model = creator.register_model(published.manifest_cid, price_per_call=PRICE,
                                   min_collateral=MIN_COLLATERAL)  # fmt: skip
    creator.publish_version(model, published.manifest_cid, published.manifest_cid)
    return model


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """Ape reverts the chain after each test, so each test gets a fresh oracle database."""
    return tmp_path / "oracle-state"


def _settings(world: dict[str, Any], state: Path) -> OracleSettings:
    return OracleSettings(network=world["network"], account="dev:1", state_dir=state,
                          master_secret=world["secret"],
                          fingerprint_count=FINGERPRINTS, recall_threshold=0.75)  # fmt: skip


def _oracle(world: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch) -> Oracle:
    monkeypatch.setenv("OML_RPC_URL", world["rpc"])
    from agents.config import get_settings

    get_settings.cache_clear()
    return build_oracle(_settings(world, state), TINY)


def _request(world: dict[str, Any], model: int, host_index: int) -> tuple[Protocol, int]:
    host = _protocol(world, dev_account(host_index))
    host.faucet(MIN_COLLATERAL)
    return host, host.request_access(model, 0, f"http://host-{host_index}.invalid", MIN_COLLATERAL)


def _fetch_copy(host: Protocol, copy_id: int, dest: Path) -> Path:
    cid = host.delivered_cid(copy_id)
    assert cid is not None
    with IpfsStore() as store:
        fetch_folder(store, cid, dest, private_key=bytes(host.account.key))
    return dest


def test_two_hosts_get_their_own_working_copies(
    world: dict[str, Any],
    model_id: int,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    oracle = _oracle(world, state, monkeypatch)
    host_a, copy_a = _request(world, model_id, 6)
    host_b, copy_b = _request(world, model_id, 7)
    assert oracle.step() == 2
    for copy_id in (copy_a, copy_b):
        job = oracle.service.jobs.get(copy_id)
        assert job is not None and job.state == JobState.DONE, job
        assert host_a.is_delivered(copy_id)
        info = host_a.copy(copy_id)
        assert info.fp_count == FINGERPRINTS and info.fp_root == bytes.fromhex(job.data["fp_root"])

    fps_a = [
        Fingerprint(k, r) for k, r in oracle.service.fingerprints(oracle.service.jobs.get(copy_a))
    ]  # type: ignore[arg-type]
    fps_b = [
        Fingerprint(k, r) for k, r in oracle.service.fingerprints(oracle.service.jobs.get(copy_b))
    ]  # type: ignore[arg-type]
    assert not {f.key for f in fps_a} & {f.key for f in fps_b}

    copy_dir_a = _fetch_copy(host_a, copy_a, tmp_path / "a")
    copy_dir_b = _fetch_copy(host_b, copy_b, tmp_path / "b")
    assert not (copy_dir_a / "fingerprints.json").exists()  # the host never sees the keys
    own = verify_fingerprints(copy_dir_a, fps_a)
    assert own.recall >= 0.75 and accuse(own, threshold=1e-3)
    foreign = verify_fingerprints(copy_dir_b, fps_a)
    assert not accuse(foreign, threshold=1e-3)
    # The other host cannot open this copy.
    with pytest.raises(Exception, match="not encrypted to this key"), IpfsStore() as store:
        fetch_folder(store, host_a.delivered_cid(copy_a) or "", tmp_path / "x",
                     private_key=bytes(host_b.account.key))  # fmt: skip


def _run_oracle_once(
    world: dict[str, Any], state: Path, crash_after: str | None
) -> tuple[int, str]:
    # the tiny recipe in full: a field left at its default would take the robust profile's
    env = {**os.environ, "OML_RPC_URL": world["rpc"], "OML_ORACLE_NETWORK": world["network"],
           "OML_ORACLE_ACCOUNT": "dev:1", "OML_ORACLE_STATE_DIR": str(state),
           "OML_ORACLE_MASTER_SECRET": str(world["secret"]),
           "OML_ORACLE_FINGERPRINT_COUNT": str(FINGERPRINTS),
           "OML_ORACLE_RECALL_THRESHOLD": "0.75",
           "OML_ORACLE_EMBED": TINY.model_dump_json()}  # fmt: skip
    env.pop("OML_ORACLE_CRASH_AFTER", None)
    if crash_after:
        env["OML_ORACLE_CRASH_AFTER"] = crash_after
    done = subprocess.run([sys.executable, "-m", "agents.cli", "oracle", "run", "--once"], env=env,
                          capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("crash_after", ["fingerprint", "deliver-sent", "deliver"])
def test_oracle_killed_mid_job_delivers_exactly_once(
    world: dict[str, Any],
    model_id: int,
    crash_after: str,
    state: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, copy_id = _request(world, model_id, 8)
    code, output = _run_oracle_once(world, state, crash_after)
    assert code == 137, output
    delivered_before_restart = host.is_delivered(copy_id)
    assert delivered_before_restart == crash_after.startswith("deliver")
    code, output = _run_oracle_once(world, state, None)
    assert code == 0, output
    access = host.contract("AccessManager")
    delivered = access.events.CopyDelivered()
    events = delivered.get_logs(from_block=0, argument_filters={"copyId": copy_id})
    assert len(events) == 1
    oracle = _oracle(world, state, monkeypatch)
    job = oracle.service.jobs.get(copy_id)
    assert job is not None and job.state == JobState.DONE
    if crash_after == "deliver-sent":
        assert job.data["delivery"] == "found-on-chain"


def test_unknown_model_request_is_refused_on_chain(world: dict[str, Any]) -> None:
    host = _protocol(world, dev_account(9))
    host.faucet(MIN_COLLATERAL)
    with pytest.raises(Exception, match="would revert"):
        host.request_access(999, 0, "http://x.invalid", MIN_COLLATERAL)


@pytest.fixture
def short_ipfs_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A missing block fails in 3 s instead of 30; the cached settings are dropped after."""
    from agents.config import get_settings

    monkeypatch.setenv("OML_IPFS_TIMEOUT_S", "3")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("short_ipfs_timeout")
def test_missing_base_weights_fail_visibly_back_off_and_retry_by_command(
    world: dict[str, Any], state: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A manifest whose (sealed) weight files are not on IPFS yet: their CIDs are computed
    # locally, only the manifest is uploaded.
    sealed = seal_folder(world["base"], tmp_path / "sealed", public_key_bytes(dev_account(1)))
    record = json.loads((sealed / SEALED_INDEX).read_text())
    entries = [
        FileEntry(
            path=i["path"],
            size=i["size"],
            sha256=i["sha256"],
            cid=cid_of_bytes((sealed / i["path"]).read_bytes()),
        )
        for i in record["files"]
    ]
    fields = dict(record["fields"])
    fields["encryption"] = Encryption(recipient_pubkey="0x" + record["recipient_pubkey"],
                                      chunk_size=record["chunk_size"])  # fmt: skip
    with IpfsStore() as store:
        manifest_cid = store.add_bytes(ModelManifest(files=entries, **fields).to_json())
    creator = _protocol(world, dev_account(5))
    model = creator.register_model(manifest_cid, price_per_call=PRICE,
                                   min_collateral=MIN_COLLATERAL)  # fmt: skip
    creator.publish_version(model, manifest_cid, manifest_cid)
    host, copy_id = _request(world, model, 9)

    oracle = _oracle(world, state, monkeypatch)
    assert oracle.step() == 0
    job = oracle.service.jobs.get(copy_id)
    assert job is not None and job.state == JobState.REQUESTED and job.attempts == 1
    missing = entries[0].cid
    assert job.last_error and ("timed out" in job.last_error or missing in job.last_error)
    assert job.next_attempt_at > time.time()  # backing off, not spinning
    assert oracle.step() == 0 and oracle.service.jobs.get(copy_id).attempts == 1  # type: ignore[union-attr]
    assert not host.is_delivered(copy_id)

    # The operator sees why, puts the weights on IPFS and retries by command.
    env = {**os.environ, "OML_ORACLE_STATE_DIR": str(state)}
    shown = _oml(env, "oracle", "jobs", "--json")
    [row] = [j for j in json.loads(shown.stdout) if j["copy_id"] == copy_id]
    assert row["attempts"] == 1 and row["error"] == job.last_error
    assert row["retry_at"] == pytest.approx(job.next_attempt_at)
    with IpfsStore() as store:
        for entry in entries:
            assert store.add_file(sealed / entry.path) == entry.cid
    retried = _oml(env, "oracle", "retry", str(copy_id))
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert oracle.step() == 1
    assert host.is_delivered(copy_id)


def test_request_reorged_into_another_block_is_delivered_once(
    world: dict[str, Any], model_id: int, chain: Any, state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oracle = _oracle(world, state, monkeypatch)
    oracle.step()  # the cursor is at the head
    snapshot = chain.snapshot()
    _, copy_id = _request(world, model_id, 8)
    first_block = chain.blocks.head.number
    assert oracle.cursor.poll_once() == 1  # seen (and a job recorded) before the reorg
    assert oracle.service.jobs.get(copy_id) is not None

    chain.restore(snapshot)  # the request disappears ...
    chain.mine(3)
    host, again = _request(world, model_id, 8)  # ... and reappears three blocks later
    assert again == copy_id and chain.blocks.head.number > first_block
    assert oracle.step() == 1
    delivered = host.contract("AccessManager").events.CopyDelivered()
    assert len(delivered.get_logs(from_block=0, argument_filters={"copyId": copy_id})) == 1
    job = oracle.service.jobs.get(copy_id)
    assert job is not None and job.state == JobState.DONE
    assert oracle.step() == 0  # nothing runs twice


def _oml(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agents.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT)  # fmt: skip
