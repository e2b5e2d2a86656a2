"""The host against the real contracts on Anvil (ape-foundry), end to end.

A creator registers a root model, a fine-tuner a derivative of it (the royalty split walks a
real lineage); the host requests access and the oracle account delivers. The real HTTP server
with a tiny model answers calls and signs receipts into the receipt ledger; after the epoch
closes (Anvil time travel) the reporter pays ``reportUsage``, and harvest / claim move the fee
to the creator, the fine-tuner, the prover and the protocol exactly as docs/protocol.md splits
it. The host CLI requests access, waits for the delivery, fetches and decrypts the copy from
the test world's IPFS node, exits and withdraws.

Epochs follow chain time here: the ledger's clock reads the latest block's timestamp.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import CliRunner
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from hostkit import RunningHost, free_port
from receipts_check import recover
from tiny_model import tiny_model_dir
from web3.types import RPCEndpoint

from agents.chain.keystore import dev_account, public_key_bytes
from agents.chain.protocol import Protocol
from agents.cli import cli
from agents.config import get_settings
from agents.creator.models import Creator, Parent
from agents.host.access import HostAccess
from agents.host.api import ServingConfig, create_app
from agents.host.chain import HostChain, call_struct
from agents.host.epochs import EpochClock
from agents.host.inference import InferenceEngine
from agents.host.ledger import ReceiptLedger, ReceiptSigner
from agents.host.metering import Metering
from agents.host.reporter import OnChainReport, UsageReporter
from agents.storage.client import IpfsClient
from agents.storage.models import model_files, publish_sealed, seal_folder

REPO_ROOT = Path(__file__).resolve().parents[2]
ROOT_PRICE = 700
DERIVATIVE_PRICE = 1_234  # fee-token base units per call
MIN_COLLATERAL = 5_000_000
SHARE_BPS = 2_000  # the derivative pays 20% of its lineage revenue up to the root
CALLS = 5
CREATOR, TUNER, HOST, PROVER, OTHER_HOST = 4, 5, 6, 7, 9
ORACLE, TREASURY, INFRA = 1, 3, 8


@dataclass(frozen=True)
class World:
    network: str
    rpc: str
    root: int
    derivative: int

    def protocol(self, index: int) -> Protocol:
        """A fresh connection per test: ape reverts the chain (and nonces) between tests."""
        return Protocol.connect(dev_account(index), self.network, rpc_url=self.rpc)


@pytest.fixture(scope="module")
def world(accounts: Any, chain: Any) -> Iterator[World]:
    sys.path.insert(0, str(REPO_ROOT / "scripts"))
    from deploy import DEV, deploy_all, write_deployment

    network = f"test-host-{uuid.uuid4().hex[:8]}"
    first_block = chain.blocks.height + 1
    # params_owner: account 0 keeps the protocol parameters (the fee-token allow-list)
    contracts = deploy_all(accounts[0], accounts[ORACLE], accounts[2], accounts[TREASURY],
                           infrastructure=accounts[INFRA], profile=DEV,
                           params_owner=accounts[0])  # fmt: skip
    roles = {"oracle": accounts[ORACLE].address, "arbiter": accounts[2].address,
             "treasury": accounts[TREASURY].address,
             "infrastructure": accounts[INFRA].address}  # fmt: skip
    path = write_deployment(network, chain.chain_id, first_block, contracts, roles, DEV)
    rpc = chain.provider.uri
    connect = lambda i: Protocol.connect(dev_account(i), network, rpc_url=rpc)  # noqa: E731
    root = Creator(connect(CREATOR)).register(
        "root-manifest", price_per_call=ROOT_PRICE, min_collateral=MIN_COLLATERAL,
        publish_weights_cid="root-weights",
    )  # fmt: skip
    derivative = Creator(connect(TUNER)).register(
        "tuned-manifest", price_per_call=DERIVATIVE_PRICE, min_collateral=MIN_COLLATERAL,
        parents=[Parent(root.model_id, SHARE_BPS)], publish_weights_cid="tuned-weights",
    )  # fmt: skip
    prover = connect(PROVER)
    challenges = prover.contract("ChallengeManager")
    bond = int(call_struct(challenges, "params")["proverBond"])
    prover.faucet(bond)
    prover.ensure_allowance(challenges.address, bond)
    prover.sender.send(challenges.functions.registerProver(), label="registerProver")
    yield World(network, rpc, root.model_id, derivative.model_id)
    path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- helpers


def chain_now(chain: HostChain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def chain_clock(chain: HostChain) -> EpochClock:
    genesis, length = chain.epoch_schedule()
    return EpochClock(genesis, length, now=lambda: chain_now(chain))


def travel_to(chain: HostChain, timestamp: int) -> None:
    """Mine a block at ``timestamp`` (later blocks follow from there)."""
    delta = timestamp - chain_now(chain)
    assert delta > 0, "time only moves forward"
    chain.w3.provider.make_request(RPCEndpoint("evm_increaseTime"), [delta])
    chain.w3.provider.make_request(RPCEndpoint("evm_mine"), [])
    assert chain_now(chain) >= timestamp


def licensed_copy(world: World, host: int = HOST) -> tuple[HostChain, int]:
    """Host requests the derivative; the oracle account delivers (fingerprints are elsewhere)."""
    protocol = world.protocol(host)
    protocol.faucet(MIN_COLLATERAL + 10_000_000)
    request = HostAccess(protocol).request_access(
        world.derivative, 0, f"http://host-{host}.invalid/v1", MIN_COLLATERAL
    )
    world.protocol(ORACLE).deliver_copy(request.copy_id, os.urandom(32), 8, "copy-cid-unused")
    return HostChain(protocol), request.copy_id


def open_ledger(chain: HostChain, copy_id: int, path: Path) -> ReceiptLedger:
    signer = ReceiptSigner(chain.account, chain.chain_id, chain.verifying_contract)
    return ReceiptLedger(path, copy_id=copy_id, signer=signer, clock=chain_clock(chain),
                         durable=False)  # fmt: skip


def issue(ledger: ReceiptLedger, count: int) -> None:
    for i in range(count):
        ledger.issue_one(keccak(text=f"prompt {i}"), keccak(text=f"response {i}"))


def report_events(chain: HostChain, copy_id: int) -> list[tuple[int, int, int, int]]:
    logs = chain.ledger.events.UsageReported().get_logs(
        from_block=chain.deployment.deploy_block, argument_filters={"copyId": copy_id}
    )
    return [(int(e["args"]["epoch"]), int(e["args"]["calls"]), int(e["args"]["lastSeq"]),
             int(e["args"]["fee"])) for e in logs]  # fmt: skip


def serve(tiny_model: tuple[Any, Any], ledger: ReceiptLedger, chain: HostChain) -> RunningHost:
    """The real host app (engine, metering, receipts) on a free port."""
    model, tokenizer = tiny_model
    config = ServingConfig(model_name="copy", copy_id=ledger.copy_id, signer=chain.address,
                           chain_id=chain.chain_id, verifying_contract=chain.verifying_contract,
                           max_tokens_limit=8, default_max_tokens=4)  # fmt: skip
    app = create_app(InferenceEngine(model, tokenizer), Metering(ledger), config)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    return RunningHost(f"http://127.0.0.1:{port}", ledger, server, thread, chain.address)


# ---------------------------------------------------------------------------- reporting


def test_served_calls_are_reported_paid_and_split_along_the_lineage(
    world: World, tiny_model: tuple[Any, Any], tmp_path: Path
) -> None:
    chain, copy_id = licensed_copy(world)
    path = tmp_path / "receipts.sqlite3"
    clock = chain_clock(chain)
    first = chain.first_epoch(copy_id)
    assert first == clock.current()

    host = serve(tiny_model, open_ledger(chain, copy_id, path), chain)
    try:
        receipts = []
        with httpx.Client(timeout=60) as http:
            for i in range(CALLS):
                body = {"model": "copy", "prompt": f"call {i}", "max_tokens": 3}
                response = http.post(host.url + "/v1/completions", json=body)
                assert response.status_code == 200, response.text
                receipts.append(response.json()["receipt"])
    finally:
        host.stop()  # closes its ledger, as at a process exit
    ledger = open_ledger(chain, copy_id, path)
    assert ledger.last_seq == CALLS
    assert [r["seq"] for r in receipts] == list(range(1, CALLS + 1))
    assert {r["epoch"] for r in receipts} == {first}
    # the receipt verifies against the ChallengeManager's own EIP-712 digest
    r = receipts[-1]
    digest = chain.challenges.functions.receiptDigest(
        (r["copyId"], r["epoch"], r["seq"], bytes.fromhex(r["promptHash"][2:]),
         bytes.fromhex(r["responseHash"][2:]))
    ).call()  # fmt: skip
    assert Account._recover_hash(digest, signature=r["signature"]) == chain.address
    assert recover(r) == chain.address

    travel_to(chain, clock.end_of(first))
    ledger_contract = chain.ledger
    token = chain.token
    host_before = chain.token_balance()
    ledger_before = int(token.functions.balanceOf(ledger_contract.address).call())
    config_before = call_struct(ledger_contract, "config")
    accrued_before = int(ledger_contract.functions.lineageAccrued(world.derivative).call())

    result = UsageReporter(ledger, chain, clock, grace_s=0).run_once()

    assert result.error is None, result.error
    assert result.reported == [first]
    price = int(chain.protocol.contract("ModelRegistry").functions.pricePerCall(
        world.derivative).call())  # fmt: skip
    assert price == DERIVATIVE_PRICE == chain.price_per_call(copy_id)
    fee = CALLS * price
    assert result.fees_paid == fee
    assert call_struct(ledger_contract, "getReport", copy_id, first) == {
        "reported": True, "known": True, "calls": CALLS, "lastSeq": CALLS,
    }  # fmt: skip
    assert report_events(chain, copy_id) == [(first, CALLS, CALLS, fee)]
    assert host_before - chain.token_balance() == fee
    assert int(token.functions.balanceOf(ledger_contract.address).call()) - ledger_before == fee

    # protocol cut and lineage part, from the on-chain cuts
    bps = int(ledger_contract.functions.BPS().call())
    ppb = int(ledger_contract.functions.PPB().call())
    cuts = (config_before["treasuryBps"], config_before["proverPoolBps"], config_before["infraBps"])
    protocol_cut = fee * sum(cuts) // bps
    lineage_part = fee - protocol_cut
    config_after = call_struct(ledger_contract, "config")
    assert config_after["protocolUnsplit"] - config_before["protocolUnsplit"] == protocol_cut
    assert ledger_contract.functions.lineageAccrued(world.derivative).call() - accrued_before == (
        lineage_part
    )

    creator, tuner = world.protocol(CREATOR), world.protocol(TUNER)
    prover, treasury, infra = (
        world.protocol(PROVER),
        world.protocol(TREASURY),
        world.protocol(INFRA),
    )
    claimable = ledger_contract.functions.claimable
    payees = {"creator": creator, "tuner": tuner, "prover": prover, "treasury": treasury,
              "infra": infra}  # fmt: skip
    claim_before = {k: int(claimable(p.account.address).call()) for k, p in payees.items()}
    dust_before = int(ledger_contract.functions.dust().call())
    pool_before = int(ledger_contract.functions.proverPool().call())

    # protocol side: split, then the prover pool per registered prover
    creator.sender.send(ledger_contract.functions.splitProtocolFees(), label="split")
    total_cut_bps = sum(cuts)
    to_treasury = protocol_cut * cuts[0] // total_cut_bps
    to_infra = protocol_cut * cuts[2] // total_cut_bps
    to_provers = protocol_cut - to_treasury - to_infra
    provers = int(ledger_contract.functions.proverCount().call())
    assert provers == 1
    per_prover = (pool_before + to_provers) // provers
    prover.sender.send(ledger_contract.functions.harvestProver(prover.account.address),
                       label="harvestProver")  # fmt: skip

    # lineage side: the flattened table is docs/protocol.md's rule applied to the registration
    ids, weights = chain.protocol.contract("ModelRegistry").functions.lineageOf(
        world.derivative).call()  # fmt: skip
    assert ids == [world.root, world.derivative]
    assert weights == [ppb * SHARE_BPS // bps, ppb - ppb * SHARE_BPS // bps]
    to_root = lineage_part * weights[0] // ppb
    to_derivative = lineage_part * weights[1] // ppb
    tuner.sender.send(ledger_contract.functions.harvest(world.derivative, tuner.account.address),
                      label="harvest derivative")  # fmt: skip
    creator.sender.send(ledger_contract.functions.harvest(world.root, creator.account.address),
                        label="harvest root")  # fmt: skip

    gained = {k: int(claimable(p.account.address).call()) - claim_before[k]
              for k, p in payees.items()}  # fmt: skip
    assert gained == {"creator": to_root, "tuner": to_derivative, "prover": per_prover,
                      "treasury": to_treasury, "infra": to_infra}  # fmt: skip
    assert int(ledger_contract.functions.dust().call()) - dust_before == (
        lineage_part - to_root - to_derivative
    )

    # claims move exactly the claimable amounts out of the ledger
    ledger_mid = int(token.functions.balanceOf(ledger_contract.address).call())
    paid_out = 0
    for name, payee in payees.items():
        amount = int(claimable(payee.account.address).call())
        balance = payee.token_balance()
        payee.sender.send(ledger_contract.functions.claimAll(), label=f"claimAll {name}")
        assert payee.token_balance() - balance == amount
        assert claimable(payee.account.address).call() == 0
        paid_out += amount
    assert ledger_mid - int(token.functions.balanceOf(ledger_contract.address).call()) == paid_out
    ledger.close()


def test_restart_never_reports_an_epoch_twice(world: World, tmp_path: Path) -> None:
    chain, copy_id = licensed_copy(world)
    path = tmp_path / "receipts.sqlite3"
    ledger = open_ledger(chain, copy_id, path)
    clock = chain_clock(chain)
    first = clock.current()
    issue(ledger, 3)
    travel_to(chain, clock.end_of(first))

    # the process dies right after reportUsage was mined, before the ledger wrote `done`
    ledger.close_through(first)
    usage = ledger.usage(first)
    ledger.record_report(usage, usage.calls * DERIVATIVE_PRICE, "sending")
    chain.approve(usage.calls * DERIVATIVE_PRICE)
    chain.report_usage(copy_id, first, usage.calls, usage.last_seq)
    ledger.close()
    balance = chain.token_balance()

    adopted = []
    for _ in range(2):  # two restarts: a new ledger handle, chain adapter and reporter each
        fresh = HostChain(world.protocol(HOST))
        reopened = open_ledger(fresh, copy_id, path)
        result = UsageReporter(reopened, fresh, chain_clock(fresh), grace_s=0).run_once()
        assert result.error is None and result.reported == []
        adopted.append(result.adopted)
        record = reopened.report(first)
        assert record is not None and (record.status, record.calls, record.last_seq) == (
            "done", 3, 3,
        )  # fmt: skip
        reopened.close()
    assert adopted == [[first], []]  # the first restart adopted it; the second had nothing to do
    assert report_events(chain, copy_id) == [(first, 3, 3, 3 * DERIVATIVE_PRICE)]
    assert chain.token_balance() == balance


def test_missed_epochs_are_caught_up_in_order(world: World, tmp_path: Path) -> None:
    chain, copy_id = licensed_copy(world)
    ledger = open_ledger(chain, copy_id, tmp_path / "receipts.sqlite3")
    clock = chain_clock(chain)
    first = clock.current()
    issue(ledger, 2)
    travel_to(chain, clock.start_of(first + 1))
    issue(ledger, 3)
    travel_to(chain, clock.end_of(first + 5))  # the reporter was down for six epochs

    result = UsageReporter(ledger, chain, clock, grace_s=0).run_once()

    assert result.error is None, result.error
    assert result.reported == list(range(first, first + 6))
    expected = [(first, 2, 2), (first + 1, 3, 5)] + [(e, 0, 5) for e in range(first + 2, first + 6)]
    assert report_events(chain, copy_id) == [
        (e, calls, seq, calls * DERIVATIVE_PRICE) for e, calls, seq in expected
    ]
    assert result.fees_paid == 5 * DERIVATIVE_PRICE
    # old epochs are no longer kept exactly on chain: the adapter reads them from the event
    assert call_struct(chain.ledger, "getReport", copy_id, first)["known"] is False
    assert chain.reported(copy_id, first) == OnChainReport(2, 2)
    assert chain.reported(copy_id, first + 5) == OnChainReport(0, 5)
    assert chain.reported(copy_id, first + 6) is None
    # nothing left; a second pass is a no-op
    assert UsageReporter(ledger, chain, clock, grace_s=0).run_once().reported == []
    ledger.close()


def test_delisted_fee_token_stops_licences_and_reports_until_listed_again(
    world: World, tmp_path: Path
) -> None:
    chain, copy_id = licensed_copy(world)
    ledger = open_ledger(chain, copy_id, tmp_path / "receipts.sqlite3")
    clock = chain_clock(chain)
    first = clock.current()
    issue(ledger, 2)
    travel_to(chain, clock.end_of(first))
    owner = world.protocol(0)
    set_allowed = owner.contract("UsageLedger").functions.setTokenAllowed
    owner.sender.send(set_allowed(chain.token.address, False), label="delist")

    stopped = UsageReporter(ledger, chain, clock, grace_s=0).run_once()
    assert stopped.reported == [] and "TokenNotAllowed" in (stopped.error or "")
    record = ledger.report(first)
    assert record is not None and record.status == "sending"
    other = world.protocol(OTHER_HOST)
    other.faucet(MIN_COLLATERAL)
    with pytest.raises(Exception, match="not allow-listed"):
        HostAccess(other).request_access(world.derivative, 0, "https://o.example", MIN_COLLATERAL)

    owner.sender.send(set_allowed(chain.token.address, True), label="list again")
    resumed = UsageReporter(ledger, chain, clock, grace_s=0).run_once()
    assert resumed.error is None and resumed.reported == [first]
    assert report_events(chain, copy_id) == [(first, 2, 2, 2 * DERIVATIVE_PRICE)]
    ledger.close()


def test_funds_and_status_read_the_real_contracts(world: World) -> None:
    chain, copy_id = licensed_copy(world)
    funds = chain.funds(copy_id)
    assert funds.collateral == MIN_COLLATERAL and funds.min_collateral == MIN_COLLATERAL
    assert funds.token_balance == chain.token_balance() > 0
    chain.check_copy(copy_id)
    status = chain.copy_status(copy_id)["onChain"]
    assert status["state"] == "active" and status["modelId"] == world.derivative
    assert status["firstEpoch"] == chain.first_epoch(copy_id)
    assert status["pendingChallenges"] == []
    other = HostChain(world.protocol(OTHER_HOST))
    with pytest.raises(Exception, match="licensed to"):
        other.check_copy(copy_id)
    with pytest.raises(Exception, match="does not exist"):
        other.check_copy(copy_id + 100)
    assert other.first_epoch(copy_id + 100) is None


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def oml(world: World, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run `oml host --network <world> ...` in-process against the module's Anvil."""
    monkeypatch.setenv("OML_RPC_URL", world.rpc)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, account: int = HOST) -> Any:
        argv = ["host", "--network", world.network, "--account", f"dev:{account}", *args]
        return runner.invoke(cli, argv, catch_exceptions=False)

    yield run
    get_settings.cache_clear()


def deliver_when_requested(world: World, host: LocalAccount, folder: Path, out: Path) -> None:
    """The oracle's part: seal ``folder`` to the requesting host's key, upload, deliver."""
    oracle = world.protocol(ORACLE)
    access = oracle.contract("AccessManager")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logs = access.events.AccessRequested().get_logs(
            from_block=oracle.deployment.deploy_block, argument_filters={"host": host.address}
        )
        pending = [e for e in logs if not oracle.is_delivered(int(e["args"]["copyId"]))]
        if pending:
            event = pending[-1]["args"]
            assert bytes(event["hostPubKey"]) == public_key_bytes(host)
            sealed = seal_folder(folder, out, bytes(event["hostPubKey"]))
            with IpfsClient() as store:
                cid = publish_sealed(store, sealed).cid
            oracle.deliver_copy(int(event["copyId"]), os.urandom(32), 8, cid)
            return
        time.sleep(0.3)
    raise AssertionError("no access request seen")


def test_cli_request_wait_fetch_exit_and_withdraw(
    world: World, oml: Callable[..., Any], tmp_path: Path
) -> None:
    world.protocol(HOST).faucet(MIN_COLLATERAL)
    folder = tiny_model_dir()
    oracle = threading.Thread(
        target=deliver_when_requested,
        args=(world, dev_account(HOST), folder, tmp_path / "sealed"),
        daemon=True,
    )
    oracle.start()
    done = oml("request-access", str(world.derivative), "--version", "0", "--endpoint",
               "https://host.example/v1", "--collateral", str(MIN_COLLATERAL), "--wait",
               "--timeout", "120", "--json")  # fmt: skip
    oracle.join(timeout=60)
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    copy_id = out["copy_id"]
    assert out["delivered"] is True and out["host"] == dev_account(HOST).address

    copy_dir = tmp_path / "copy"
    fetched = oml("fetch-copy", str(copy_id), "--out", str(copy_dir), "--json")
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.output)["copy_cid"] == out["copyCID"]
    originals = [p.relative_to(folder) for p in model_files(folder)]
    assert sorted(p.relative_to(copy_dir) for p in model_files(copy_dir)) == sorted(originals)
    for relative in originals:
        assert (copy_dir / relative).read_bytes() == (folder / relative).read_bytes(), relative

    # another account cannot fetch it; an existing folder is never overwritten
    foreign = oml("fetch-copy", str(copy_id), "--out", str(tmp_path / "x"), account=OTHER_HOST)
    assert foreign.exit_code == 1 and "licensed to" in foreign.output
    again = oml("fetch-copy", str(copy_id), "--out", str(copy_dir))
    assert again.exit_code == 1 and "already exists" in again.output

    status = oml("--copy-id", str(copy_id), "status", "--json")
    assert status.exit_code == 0, status.output
    [entry] = [c for c in json.loads(status.output)["copies"] if c["copyId"] == copy_id]
    assert entry["onChain"]["state"] == "active"

    # exit: withdraw is refused until the exit delay is over, then returns the collateral
    chain = HostChain(world.protocol(HOST))
    assert chain.last_epoch(copy_id) is None
    exiting = oml("request-exit", str(copy_id), "--json")
    assert exiting.exit_code == 0, exiting.output
    start, length = chain.epoch_schedule()
    now = int(chain.protocol.w3.eth.get_block("latest")["timestamp"])
    assert chain.last_epoch(copy_id) == (now - start) // length  # the reporter stops there
    ready_at = json.loads(exiting.output)["withdrawable_at"]
    early = oml("withdraw", str(copy_id))
    assert early.exit_code == 1 and "can be withdrawn from" in early.output
    travel_to(chain, ready_at)
    balance = chain.token_balance()
    withdrawn = oml("withdraw", str(copy_id), "--json")
    assert withdrawn.exit_code == 0, withdrawn.output
    assert json.loads(withdrawn.output)["amount"] == MIN_COLLATERAL
    assert chain.token_balance() - balance == MIN_COLLATERAL


def test_cli_errors_say_what_to_do(world: World, oml: Callable[..., Any], tmp_path: Path) -> None:
    world.protocol(HOST).faucet(MIN_COLLATERAL)
    low = oml("request-access", str(world.derivative), "--endpoint", "https://h.example",
              "--collateral", str(MIN_COLLATERAL - 1))  # fmt: skip
    assert low.exit_code == 1
    assert f"pass --collateral {MIN_COLLATERAL} or more" in low.output
    unknown = oml("request-access", "999", "--endpoint", "https://h.example",
                  "--collateral", str(MIN_COLLATERAL))  # fmt: skip
    assert unknown.exit_code == 1 and "model 999 does not exist" in unknown.output
    bad_url = oml("request-access", str(world.derivative), "--endpoint", "host:80",
                  "--collateral", str(MIN_COLLATERAL))  # fmt: skip
    assert bad_url.exit_code == 1 and "not an http(s) URL" in bad_url.output
    broke = oml("request-access", str(world.derivative), "--endpoint", "https://h.example",
                "--collateral", str(MIN_COLLATERAL), account=OTHER_HOST)  # fmt: skip
    assert broke.exit_code == 1 and "fund it first" in broke.output

    requested = oml("request-access", str(world.derivative), "--endpoint", "https://h.example",
                    "--collateral", str(MIN_COLLATERAL), "--json")  # fmt: skip
    assert requested.exit_code == 0, requested.output
    copy_id = json.loads(requested.output)["copy_id"]
    early = oml("fetch-copy", str(copy_id), "--out", str(tmp_path / "c"))
    assert early.exit_code == 1 and "not delivered yet (state requested)" in early.output
    exit_early = oml("request-exit", str(copy_id))
    assert exit_early.exit_code == 1 and "only an active copy can exit" in exit_early.output
    offline = CliRunner().invoke(cli, ["host", "--offline", "fetch-copy", "1", "--out", "x"])
    assert offline.exit_code == 1 and "drop --offline" in offline.output
