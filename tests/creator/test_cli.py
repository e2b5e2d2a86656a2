"""`oml creator` against the real contracts on Anvil (ape-foundry) and the test world's IPFS.

Register a root from a folder (published encrypted to the oracle, which can open it), a
derivative by manifest CID with a royalty share, publish versions, change terms through the
model's governance (at once as the majority holder, by vote otherwise), and the errors.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from agents.chain.keystore import dev_account, public_key_bytes, write_keystore
from agents.chain.protocol import Protocol
from agents.cli import cli
from agents.config import get_settings
from agents.storage.client import IpfsClient
from agents.storage.models import fetch_folder, load_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
CREATOR, TUNER, HOLDER, KEYSTORE_OWNER = 4, 5, 6, 7
ORACLE = 1
PRICE = 1_000
MIN_COLLATERAL = 2_000_000
PPB, BPS = 10**9, 10_000


@dataclass(frozen=True)
class World:
    network: str
    rpc: str

    def protocol(self, index: int) -> Protocol:
        return Protocol.connect(dev_account(index), self.network, rpc_url=self.rpc)


@pytest.fixture(scope="module")
def world(accounts: Any, chain: Any) -> Iterator[World]:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from deploy import DEV, deploy_all, write_deployment

    network = f"test-creator-{uuid.uuid4().hex[:8]}"
    first_block = chain.blocks.height + 1
    contracts = deploy_all(accounts[0], accounts[ORACLE], accounts[2], accounts[3], profile=DEV)
    roles = {"oracle": accounts[ORACLE].address, "arbiter": accounts[2].address,
             "treasury": accounts[3].address}  # fmt: skip
    path = write_deployment(network, chain.chain_id, first_block, contracts, roles, DEV)
    yield World(network, chain.provider.uri)
    path.unlink(missing_ok=True)


@pytest.fixture
def oml(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`oml creator --network <world> [--dev-account N] ...` in-process."""
    monkeypatch.setenv("OML_RPC_URL", world.rpc)
    get_settings.cache_clear()
    runner = CliRunner(mix_stderr=False)

    def run(*args: str, account: int | None = CREATOR, env: dict[str, str] | None = None) -> Result:
        argv = ["creator", "--network", world.network]
        if account is not None:
            argv += ["--dev-account", str(account)]
        return runner.invoke(cli, [*argv, *args], env=env, catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def ok(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def fails(result: Result, *needles: str) -> str:
    assert result.exit_code != 0, result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return result.stderr


def model_folder(root: Path) -> Path:
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    (root / "model.safetensors").write_bytes(os.urandom(300_000))
    (root / "tokenizer").mkdir()
    (root / "tokenizer" / "tokenizer.json").write_text('{"version": "1.0"}')
    return root


def registry(world: World) -> Any:
    return world.protocol(CREATOR).contract("ModelRegistry")


# ---------------------------------------------------------------------------- register


def test_register_root_from_a_folder_the_oracle_can_open(
    world: World, oml: Callable[..., Result], tmp_path: Path
) -> None:
    folder = model_folder(tmp_path / "base")
    out = ok(oml("register", "--folder", str(folder), "--price", str(PRICE),
                 "--min-collateral", str(MIN_COLLATERAL), "--json"))  # fmt: skip
    model_id, cid = out["model_id"], out["manifest_cid"]
    assert out["owner"] == dev_account(CREATOR).address
    assert out["lineage"] == [{"modelId": model_id, "weightPpb": PPB}]
    assert out["version"]["version"] == 0 and out["version"]["accepted"] is True

    reg = registry(world)
    assert reg.functions.ownerOf(model_id).call() == dev_account(CREATOR).address
    assert reg.functions.pricePerCall(model_id).call() == PRICE
    assert reg.functions.minCollateral(model_id).call() == MIN_COLLATERAL
    weights_cid, manifest_cid, _, accepted = reg.functions.getVersion(model_id, 0).call()
    assert (weights_cid, manifest_cid, accepted) == (cid, cid, True)

    with IpfsClient() as store:
        manifest = load_manifest(store, cid)
        assert manifest.encryption is not None
        assert (
            manifest.encryption.recipient_pubkey
            == "0x" + public_key_bytes(dev_account(ORACLE)).hex()
        )
        opened = tmp_path / "as-oracle"
        fetch_folder(store, cid, opened, private_key=bytes(dev_account(ORACLE).key))
    for name in ("config.json", "model.safetensors", "tokenizer/tokenizer.json"):
        assert (opened / name).read_bytes() == (folder / name).read_bytes()

    text = oml("show", str(model_id), account=None)  # reading needs no key
    assert text.exit_code == 0, text.stderr
    assert f"model {model_id} owned by {dev_account(CREATOR).address}" in text.stdout
    assert f"v0 {cid} (accepted)" in text.stdout


def test_derivative_royalty_table_and_show(world: World, oml: Callable[..., Result]) -> None:
    root = ok(oml("register", "--manifest-cid", "root-cid", "--price", "10",
                  "--min-collateral", "1", "--json"))["model_id"]  # fmt: skip
    share = 2_000
    derivative = ok(oml("register", "--manifest-cid", "tuned-cid", "--parent", str(root),
                        "--share", str(share), "--price", "20", "--min-collateral", "1",
                        "--json", account=TUNER))  # fmt: skip
    model_id = derivative["model_id"]
    root_weight = PPB * share // BPS
    assert derivative["parents"] == [{"model_id": root, "share_bps": share}]
    assert derivative["lineage"] == [
        {"modelId": root, "weightPpb": root_weight},
        {"modelId": model_id, "weightPpb": PPB - root_weight},
    ]
    # a grandchild flattens the whole tree (docs/protocol.md: C = B@10% + A@5%)
    grandchild = ok(oml("register", "--manifest-cid", "c-cid", "--parent", str(model_id),
                        "--share", "1000", "--parent", str(root), "--share", "500",
                        "--price", "30", "--min-collateral", "1", "--json"))  # fmt: skip
    weights = {e["modelId"]: e["weightPpb"] for e in grandchild["lineage"]}
    assert weights == {root: 70_000_000, model_id: 80_000_000, grandchild["model_id"]: 850_000_000}

    view = ok(oml("show", str(model_id), "--json", account=None))
    assert view["owner"] == dev_account(TUNER).address
    assert view["parents"] == [root] and view["depth"] == 1 and view["royalty_stack_bps"] == share
    assert view["versions"][0]["weightsCID"] == "tuned-cid"

    unpublished = ok(oml("register", "--manifest-cid", "later", "--price", "1",
                         "--min-collateral", "1", "--no-publish", "--json"))  # fmt: skip
    assert unpublished["version"] is None
    assert registry(world).functions.versionCount(unpublished["model_id"]).call() == 0


def test_register_errors_say_what_to_do(
    world: World, oml: Callable[..., Result], tmp_path: Path
) -> None:
    root = ok(oml("register", "--manifest-cid", "r", "--price", "1", "--min-collateral", "1",
                  "--json"))["model_id"]  # fmt: skip
    base = ["--manifest-cid", "d", "--price", "1", "--min-collateral", "1"]
    fails(oml("register", *base, "--parent", str(root)), "1 --parent but 0 --share")
    fails(oml("register", *base, "--parent", str(root), "--share", "2000",
              "--max-royalty-stack", "1000"),
          "registerModel would revert: RoyaltyStackTooHigh", "--max-royalty-stack")  # fmt: skip
    fails(oml("register", *base, "--parent", "999", "--share", "100"),
          "parent model 999 does not exist")  # fmt: skip
    fails(oml("register", *base, "--parent", str(root), "--share", "1", "--parent", str(root),
              "--share", "2"), f"parent {root} is named twice")  # fmt: skip
    fails(oml("register", "--price", "1", "--min-collateral", "1"),
          "exactly one of --folder DIR and --manifest-cid CID")  # fmt: skip
    fails(oml("register", "--price", "1.5", "--min-collateral", "1", "--manifest-cid", "x"),
          "not a whole number of base units")  # fmt: skip
    fails(oml("register", *base, account=None), "no account: pass --keystore FILE")
    folder = model_folder(tmp_path / "m")
    wrong_key = "0x" + public_key_bytes(dev_account(9)).hex()
    fails(oml("register", "--folder", str(folder), "--oracle-pubkey", wrong_key, "--price", "1",
              "--min-collateral", "1"),
          f"belongs to {dev_account(9).address}, but the oracle")  # fmt: skip
    count = registry(world).functions.nextModelId().call()
    assert count == root + 1  # none of the failures registered anything


def test_keystore_account(world: World, oml: Callable[..., Result], tmp_path: Path) -> None:
    keystore = write_keystore(dev_account(KEYSTORE_OWNER), tmp_path / "creator.json", "s3cret")
    args = ["--keystore", str(keystore), "register", "--manifest-cid", "k", "--price", "5",
            "--min-collateral", "1", "--json"]  # fmt: skip
    out = ok(oml(*args, account=None, env={"OML_KEYSTORE_PASSWORD": "s3cret"}))
    assert out["owner"] == dev_account(KEYSTORE_OWNER).address
    fails(oml(*args, account=None, env={"OML_KEYSTORE_PASSWORD": "wrong"}), "wrong password")


# ---------------------------------------------------------------------------- versions, terms


def test_publish_versions_owner_only(world: World, oml: Callable[..., Result]) -> None:
    model_id = ok(oml("register", "--manifest-cid", "v0", "--price", "1", "--min-collateral",
                      "1", "--json"))["model_id"]  # fmt: skip
    v1 = ok(oml("publish", str(model_id), "--manifest-cid", "v1", "--json"))
    assert v1["version"] == 1 and v1["accepted"] is True
    assert v1["proposal"]["action"] == "accept_version" and v1["proposal"]["state"] == "executed"
    v2 = ok(oml("publish", str(model_id), "--manifest-cid", "v2", "--no-accept", "--json"))
    assert v2["version"] == 2 and v2["accepted"] is False and v2["proposal"] is None
    reg = registry(world)
    assert [reg.functions.isVersionAccepted(model_id, v).call() for v in range(3)] == [
        True, True, False,
    ]  # fmt: skip
    fails(oml("publish", str(model_id), "--manifest-cid", "v3", account=TUNER),
          f"model {model_id} is owned by {dev_account(CREATOR).address}")  # fmt: skip
    fails(oml("publish", "999", "--manifest-cid", "x"), "model 999 does not exist")


def test_set_price_as_majority_holder_and_by_vote(world: World, oml: Callable[..., Result]) -> None:
    model_id = ok(oml("register", "--manifest-cid", "p", "--price", str(PRICE),
                      "--min-collateral", str(MIN_COLLATERAL), "--json"))["model_id"]  # fmt: skip
    reg = registry(world)
    out = ok(oml("set-price", str(model_id), "--price", "1500", "--min-collateral", "3000000",
                 "--json"))  # fmt: skip
    assert [(p["action"], p["value"], p["state"]) for p in out["proposals"]] == [
        ("set_price", 1500, "executed"), ("set_min_collateral", 3_000_000, "executed"),
    ]  # fmt: skip
    assert reg.functions.pricePerCall(model_id).call() == 1500
    assert reg.functions.minCollateral(model_id).call() == 3_000_000

    # with 60% of the shares elsewhere, the creator's vote alone does not pass it
    creator = world.protocol(CREATOR)
    governor = creator.contract("ModelGovernor")
    total = governor.functions.TOTAL_SHARES().call()
    creator.sender.send(governor.functions.transferShares(
        model_id, dev_account(HOLDER).address, total * 6 // 10), label="transfer")  # fmt: skip
    pending = ok(oml("set-price", str(model_id), "--price", "1800", "--json"))["proposals"][0]
    assert pending["state"] == "active" and pending["for_votes"] == total * 4 // 10
    assert reg.functions.pricePerCall(model_id).call() == 1500
    text = oml("set-price", str(model_id), "--price", "1900")
    assert "other holders vote" in text.stdout and "oml creator execute" in text.stdout
    fails(oml("execute", str(pending["proposal_id"])), "is active", "only a succeeded")

    holder = world.protocol(HOLDER)
    holder.sender.send(governor.functions.castVote(pending["proposal_id"], True), label="vote")
    done = ok(oml("execute", str(pending["proposal_id"]), "--json", account=HOLDER))
    assert done["state"] == "executed" and done["value"] == 1800
    assert reg.functions.pricePerCall(model_id).call() == 1800

    fails(oml("set-price", str(model_id)), "nothing to change")
    fails(oml("set-price", str(model_id), "--price", "1", account=TUNER),
          "holds 0 of", "use a share holder's account")  # fmt: skip
