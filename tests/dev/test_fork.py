"""Fork mode: an origin Anvil with a used protocol, and an Anvil forking it.

The origin gets the protocol from scripts/deploy.py and real use through the library (models,
a derivative, a licence, delivery by the oracle role account, receipts, a paid report). The
fork must see all of it under the alias deployment, change it (a new model, another epoch, a
whole scenario) and leave the origin untouched. The last test drives `oml dev up --fork`
itself: the local world (Anvil + IPFS) on private ports and run directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agents.chain.keystore import dev_account
from agents.dev.actors import Creator, Host, make_fingerprints
from agents.dev.devchain import DevChain
from agents.dev.errors import ForkError
from agents.dev.network import find_origin_deployment, write_fork_deployment
from agents.dev.scenarios import run_scenario
from agents.fingerprint.commitment import commit
from tests.dev.devkit import REPO_ROOT, DeployedChain, deployed_anvil
from tests.support.anvil import free_port, private_anvil

# agents.chain.protocol decodes receipts without errors=DISCARD: web3 warns per foreign log.
pytestmark = pytest.mark.filterwarnings("ignore:The log with transaction hash")
USD = 10**6
PRICE = USD // 100
COLLATERAL = 1_000 * USD
OML = REPO_ROOT / ".venv" / "bin" / "oml"


@dataclass
class Origin:
    chain: DeployedChain
    dev: DevChain
    model: int
    derivative: int
    copy_id: int
    epoch: int
    fee: int
    block: int


@pytest.fixture(scope="module")
def origin() -> Iterator[Origin]:
    with deployed_anvil("dev-origin") as chain:
        dev = DevChain.connect(chain.rpc_url, chain.network)
        creator = Creator(dev, "creator", dev_account(4))
        model = creator.publish_model(price_per_call=PRICE, min_collateral=COLLATERAL)
        derivative = creator.protocol.register_model(
            "derivative-manifest", price_per_call=2 * PRICE, min_collateral=COLLATERAL,
            parents=[model], share_bps=[2000],
        )  # fmt: skip
        host = Host(dev, "host", dev_account(5))
        host.protocol.faucet(COLLATERAL + 100 * USD)
        copy_id = host.license(model, COLLATERAL)
        # The oracle role account (test account 1) delivers with a real fingerprint commitment.
        oracle = dev.protocol(dev_account(1))
        seed = b"\x01" * 32
        commitment = commit(copy_id, make_fingerprints(seed, 8), seed)
        oracle.deliver_copy(copy_id, commitment.root, 8, "bafy-origin-copy")
        epoch = dev.current_epoch()
        for i in range(5):
            host.serve(f"question {i}")
        dev.to_epoch_end(epoch)
        fee = host.report_through(epoch)
        yield Origin(chain, dev, model, derivative, copy_id, epoch, fee, dev.node.block_number())


@pytest.fixture(scope="module")
def fork(origin: Origin) -> Iterator[DevChain]:
    args = ["--fork-url", origin.chain.rpc_url, "--fork-block-number", str(origin.block)]
    name = f"test-dev-fork-{uuid.uuid4().hex[:8]}"
    with private_anvil(args) as w3:
        found = find_origin_deployment(origin.dev.w3, origin.block, network=origin.chain.network)
        path = write_fork_deployment(
            found, name, fork_chain_id=int(w3.eth.chain_id), origin_chain_id=31337,
            fork_block=origin.block, fork_url=origin.chain.rpc_url + "/secret-key?k=1",
        )  # fmt: skip
        try:
            yield DevChain.connect(str(w3.provider.endpoint_uri), name)  # type: ignore[attr-defined]
        finally:
            path.unlink(missing_ok=True)


def _origin_view(origin: Origin) -> dict[str, Any]:
    dev = origin.dev
    return {
        "nextModelId": dev.registry.functions.nextModelId().call(),
        "copyLedger": dev.copy_ledger(origin.copy_id),
        "lineageAccrued": dev.ledger.functions.lineageAccrued(origin.model).call(),
        "block": dev.node.block_number(),
    }


def test_alias_records_the_origin_under_the_forks_chain(origin: Origin, fork: DevChain) -> None:
    record = json.loads((REPO_ROOT / "deployments" / f"{fork.deployment.network}.json").read_text())
    assert record["network"] == fork.deployment.network
    assert record["chainId"] == 31337
    assert record["forkOf"]["network"] == origin.chain.network
    assert record["forkOf"]["block"] == origin.block
    assert "secret" not in record["forkOf"]["rpc"]  # API keys in RPC URLs stay out of files
    assert fork.deployment.addresses == origin.dev.deployment.addresses


def test_fork_sees_models_copy_and_fees(origin: Origin, fork: DevChain) -> None:
    for dev in (origin.dev, fork):
        assert dev.registry.functions.exists(origin.derivative).call()
    assert fork.registry.functions.lineageOf(origin.derivative).call() == (
        origin.dev.registry.functions.lineageOf(origin.derivative).call()
    )
    copy = fork.copy(origin.copy_id)
    assert copy == origin.dev.copy(origin.copy_id)
    assert copy["state"] == 2 and copy["collateral"] == COLLATERAL  # Active
    report = fork.ledger.functions.getReport(origin.copy_id, origin.epoch).call()
    assert report[0] and report[2] == 5 and report[3] == 5  # reported, calls, lastSeq
    assert origin.fee == 5 * PRICE
    lineage = fork.ledger.functions.lineageAccrued(origin.model).call()
    assert lineage > 0
    assert lineage == origin.dev.ledger.functions.lineageAccrued(origin.model).call()
    assert fork.token.functions.balanceOf(fork.ledger.address).call() == (
        origin.dev.token.functions.balanceOf(origin.dev.ledger.address).call()
    )


def test_fork_changes_state_without_touching_the_origin(origin: Origin, fork: DevChain) -> None:
    before = _origin_view(origin)
    creator = Creator(fork, "creator", dev_account(4))
    new_model = creator.publish_model(price_per_call=PRICE, min_collateral=COLLATERAL)
    assert new_model == before["nextModelId"]
    host = Host(fork, "host", dev_account(5))
    host.attach(origin.copy_id)
    for i in range(3):
        host.serve(f"fork question {i}")
    epoch = fork.current_epoch()
    fork.to_epoch_end(epoch)
    fees = host.report_through(epoch)
    assert fees == 3 * PRICE
    assert fork.copy_ledger(origin.copy_id)["lastSeq"] == 8
    outcome = run_scenario("under-reporting-host", fork)
    assert outcome.ok, (outcome.error, [c for c in outcome.checks if not c.ok])

    assert _origin_view(origin) == before
    assert not origin.dev.registry.functions.exists(new_model).call()


def test_origin_detection_by_chain_id_and_code(origin: Origin, tmp_path: Path) -> None:
    (tmp_path / "deployments").mkdir()
    record = json.loads(origin.chain.deployment.read_text())
    (tmp_path / "deployments" / "test-origin.json").write_text(json.dumps(record))
    decoy = record | {
        "contracts": {
            name: info | {"address": f"0x{0xDEAD0000 + i:040x}"}
            for i, (name, info) in enumerate(record["contracts"].items())
        }
    }
    (tmp_path / "deployments" / "elsewhere.json").write_text(json.dumps(decoy))
    (tmp_path / "deployments" / "other-chain.json").write_text(json.dumps(record | {"chainId": 5}))
    found = find_origin_deployment(origin.dev.w3, origin.block, root=tmp_path)
    assert found.network == "test-origin"
    with pytest.raises(ForkError, match="have no code"):
        find_origin_deployment(origin.dev.w3, origin.block, network="elsewhere", root=tmp_path)
    with pytest.raises(ForkError, match=r"before the deployment|have no code"):
        find_origin_deployment(origin.dev.w3, 0, network="test-origin", root=tmp_path)

    names = list(record["contracts"])
    swapped = dict(record["contracts"])
    swapped[names[0]], swapped[names[1]] = swapped[names[1]], swapped[names[0]]
    (tmp_path / "deployments" / "local.json").write_text(
        json.dumps(record | {"contracts": swapped})
    )
    with pytest.raises(ForkError, match="several deployments"):
        find_origin_deployment(origin.dev.w3, origin.block, root=tmp_path)


def _world_env(tmp_path: Path) -> dict[str, str]:
    anvil = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OML_")}
    env.update({
        "OML_RUN_DIR": str(tmp_path / "run"),
        "OML_ANVIL_PORT": str(anvil),
        "OML_RPC_URL": f"http://127.0.0.1:{anvil}",
        "OML_IPFS_API_PORT": str(free_port()),
        "OML_IPFS_GATEWAY_PORT": str(free_port()),
        "OML_IPFS_GRPC_PORT": str(free_port()),
        "OML_IPFS_SWARM_PORT": str(free_port()),
    })  # fmt: skip
    return env


def _oml(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(OML), *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240
    )


@pytest.mark.slow
def test_dev_up_fork_runs_the_world_on_the_fork(origin: Origin, tmp_path: Path) -> None:
    if shutil.which("jsipfs", path=str(REPO_ROOT / "node_modules" / ".bin")) is None:
        pytest.skip("the node toolchain is not installed (make setup)")
    env = _world_env(tmp_path)
    name = f"test-dev-upfork-{uuid.uuid4().hex[:8]}"
    alias = REPO_ROOT / "deployments" / f"{name}.json"
    fork_args = ["--fork", origin.chain.rpc_url, "--block", str(origin.block),
                 "--origin-network", origin.chain.network, "--name", name]  # fmt: skip
    try:
        started = _oml(env, "dev", "up", *fork_args)
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"forks block {origin.block}" in started.stdout
        assert f"OML_NETWORK={name}" in started.stdout
        assert json.loads(alias.read_text())["forkOf"]["network"] == origin.chain.network

        # Dev commands pick the alias by themselves while this fork runs.
        assert name in _oml(env, "dev", "network").stdout
        shown = _oml(env, "dev", "state", "copy", str(origin.copy_id), "--json")
        assert shown.returncode == 0, shown.stderr
        state = json.loads(shown.stdout)
        assert state["state"] == "Active" and state["reportedLastSeq"] == 5

        again = _oml(env, "dev", "up", *fork_args)
        assert again.returncode == 0, again.stderr  # same fork: kept as it is
        other = _oml(env, "dev", "up", *fork_args[:2], "--block", str(origin.block - 1),
                     "--origin-network", origin.chain.network, "--name", name)  # fmt: skip
        assert other.returncode != 0 and "--restart" in other.stderr
    finally:
        _oml(env, "world", "down")
        alias.unlink(missing_ok=True)
