"""`oml dev` commands against a private Anvil with the protocol deployed (click, in process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agents.config import Settings
from agents.dev.actors import Creator, Host, Oracle, Prover
from agents.dev.args import coerce, parse_amount, parse_duration
from agents.dev.commands import group
from agents.dev.devchain import DevChain
from agents.dev.errors import DevError, NotAnvil
from agents.dev.network import active_network, redacted_url, write_fork_marker
from agents.dev.node import AnvilNode
from agents.dev.scenarios import run_scenario
from agents.dev.scenarios.common import COLLATERAL, PRICE
from tests.dev.devkit import DeployedChain, deployed_anvil

# agents.chain.protocol decodes receipts without errors=DISCARD: web3 warns per foreign log.
pytestmark = pytest.mark.filterwarnings("ignore:The log with transaction hash")
WHALE = "0x000000000000000000000000000000000000bEEF"
USD = 10**6


@pytest.fixture(scope="module")
def chain() -> Iterator[DeployedChain]:
    with deployed_anvil("dev-commands") as deployed:
        yield deployed


@pytest.fixture(scope="module")
def dev(chain: DeployedChain) -> DevChain:
    return DevChain.connect(chain.rpc_url, chain.network)


def _oml(chain: DeployedChain, *args: str, network: bool = True) -> Result:
    extra = ["--rpc", chain.rpc_url] + (["--network", chain.network] if network else [])
    result = CliRunner().invoke(group, [*args, *extra])
    return result


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


# ---------------------------------------------------------------------- pure helpers


def test_durations_amounts_and_abi_values() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "15m", "2h", "1d", "1w")] == [
        90, 90, 900, 7200, 86400, 604800,
    ]  # fmt: skip
    with pytest.raises(DevError):
        parse_duration("soon")
    assert parse_amount("1.5", 6) == 1_500_000
    assert parse_amount("100_000", 6) == 100_000 * USD
    with pytest.raises(DevError):
        parse_amount("0.0000001", 6)
    assert coerce("uint256", "0x10") == 16
    assert coerce("bool", "false") is False
    assert coerce("bytes32", "0x" + "ab" * 32) == b"\xab" * 32
    assert coerce("uint256[]", "[1, 2]") == [1, 2]
    pair = [{"name": "a", "type": "uint64"}, {"name": "b", "type": "address"}]
    assert coerce("tuple", '{"a": 3, "b": "' + WHALE.lower() + '"}', pair) == (3, WHALE)
    with pytest.raises(DevError):
        coerce("bool", "maybe")


def test_redacted_url_drops_keys() -> None:
    assert redacted_url("https://eth.example.com/v2/SECRET?x=1") == "https://eth.example.com"
    assert redacted_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"


def test_network_choice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OML_NETWORK", raising=False)
    settings = Settings(run_dir=tmp_path)
    assert active_network(settings) == "local"
    # A marker whose Anvil is not running (no pid file) is ignored.
    write_fork_marker(settings, {"network": "fork", "anvilPid": 1})
    assert active_network(settings) == "local"
    (tmp_path / "anvil.pid").write_text("1")  # pid 1 is alive: the marker now counts
    assert active_network(settings) == "fork"
    monkeypatch.setenv("OML_NETWORK", "sepolia")
    assert active_network(settings) == "sepolia"


def test_refuses_a_node_that_is_not_anvil() -> None:
    with pytest.raises(NotAnvil, match="no node answers"):
        AnvilNode.at("http://127.0.0.1:9").client_version()


# ---------------------------------------------------------------------- blocks, time, snapshots


def test_mine_and_advance(chain: DeployedChain, dev: DevChain) -> None:
    head = dev.node.block_number()
    assert f"block {head + 3}" in _ok(_oml(chain, "mine", "3", network=False))
    before = dev.node.timestamp()
    assert "(+7200s)" in _ok(_oml(chain, "time", "advance", "2h", network=False))
    assert dev.node.timestamp() == before + 7200


def test_to_epoch_end_of_a_copy_and_with_grace(chain: DeployedChain, dev: DevChain) -> None:
    outcome = run_scenario("honest-host", dev)  # leaves a delivered, reporting copy behind
    copy_id = int(outcome.facts["copyId"])
    next_epoch = int(dev.copy_ledger(copy_id)["nextEpoch"])
    _ok(_oml(chain, "time", "to-epoch-end", str(copy_id)))
    assert dev.node.timestamp() >= dev.epoch_end(next_epoch)
    assert dev.current_epoch() == next_epoch + 1
    epoch = dev.current_epoch()
    grace = int(dev.params()["reportGrace"])
    _ok(_oml(chain, "time", "to-epoch-end", "--epoch", str(epoch), "--plus-grace"))
    assert dev.node.timestamp() == dev.epoch_end(epoch) + grace
    assert f"epoch {dev.current_epoch()} closes at" in _ok(_oml(chain, "time", "now"))


def test_to_challenge_end_reads_the_window(chain: DeployedChain, dev: DevChain) -> None:
    creator = Creator.funded(dev, "creator")
    model = creator.publish_model(price_per_call=PRICE, min_collateral=COLLATERAL)
    host = Host.funded(dev, "host", token=2 * COLLATERAL)
    copy = Oracle(dev).deliver(host.license(model, COLLATERAL))
    prover = Prover.funded(dev, "prover", token=COLLATERAL)
    prover.register()
    evidence = copy.evidence(0, "bafy-evidence")
    challenge = prover.commit_leak(evidence)
    prover.reveal_leak(challenge, evidence)
    liveness_end = int(dev.leak(challenge)["deadline"])
    assert liveness_end == dev.node.timestamp() + int(dev.params()["liveness"])
    out = _ok(_oml(chain, "time", "to-challenge-end", str(challenge)))
    assert "liveness window" in out
    assert dev.node.timestamp() == liveness_end + 1
    prover.finalize(challenge)  # possible now, and not a second earlier (contract: > deadline)
    assert (
        "already final (Upheld)" in _oml(chain, "time", "to-challenge-end", str(challenge)).output
    )
    assert "no challenge 999" in _oml(chain, "time", "to-challenge-end", "999").output


def test_snapshot_and_revert(chain: DeployedChain, dev: DevChain) -> None:
    snapshot = _ok(_oml(chain, "snapshot", network=False)).strip()
    head = dev.node.block_number()
    _ok(_oml(chain, "mine", "5", network=False))
    _ok(_oml(chain, "revert", snapshot, network=False))
    assert dev.node.block_number() == head
    again = _oml(chain, "revert", snapshot, network=False)
    assert again.exit_code != 0 and "already used" in again.output


# ---------------------------------------------------------------------- accounts


def test_fund_sets_ether_and_adds_tokens(chain: DeployedChain, dev: DevChain) -> None:
    out = _ok(_oml(chain, "fund", WHALE, "--eth", "3", "--token", "250000.25"))
    assert "3.0000 ETH" in out
    balances = dev.balances(WHALE)
    assert balances["eth"] == 3 * 10**18
    assert balances["token"] == 250_000_250_000  # three faucet calls (cap 100,000 each)
    receiver = dev.new_account().address
    _ok(_oml(chain, "fund", receiver, "--token", "10", "--from", WHALE))
    assert dev.balances(receiver)["token"] == 10 * USD
    assert _oml(chain, "fund", receiver).exit_code != 0

    # Scenario actors can be funded from a holder too (forks of networks without a faucet).
    before = dev.balances(WHALE)["token"]
    _ok(_oml(chain, "scenario", "run", "equivocating-host", "--fund-from", WHALE))
    assert before - dev.balances(WHALE)["token"] == 2_500 * USD  # host 1,500 + prover 1,000


def test_impersonate_and_send_as_a_role(chain: DeployedChain, dev: DevChain) -> None:
    arbiter = dev.role("arbiter")
    out = _ok(_oml(chain, "impersonate", arbiter, network=False))
    assert "impersonating" in out
    tx = {"from": arbiter, "to": WHALE, "value": 1}
    dev.w3.eth.wait_for_transaction_receipt(dev.w3.eth.send_transaction(tx))  # type: ignore[arg-type]
    _ok(_oml(chain, "impersonate", arbiter, "--stop", network=False))

    # A view is called; a write is sent as the impersonated address and its events printed.
    shown = _ok(_oml(chain, "send-as", WHALE, "MockUSD", "balanceOf", WHALE))
    assert int(shown) == dev.balances(WHALE)["token"]
    sent = _ok(_oml(chain, "send-as", WHALE, "MockUSD", "transfer", arbiter, "1000000"))
    assert "MockUSD.Transfer(" in sent
    refused = _oml(chain, "send-as", WHALE, "AccessManager", "requestExit", "1")
    assert refused.exit_code != 0 and "NotHost" in refused.output
    wrong = _oml(chain, "send-as", WHALE, "MockUSD", "transfer", "1")
    assert wrong.exit_code != 0 and "transfer(address to, uint256 value)" in wrong.output


# ---------------------------------------------------------------------- state


def test_state_tables_and_json(chain: DeployedChain, dev: DevChain) -> None:
    outcome = run_scenario("under-reporting-host", dev)
    copy_id, model_id = outcome.facts["copyId"], outcome.facts["modelId"]
    copy = json.loads(_ok(_oml(chain, "state", "copy", str(copy_id), "--json")))
    assert copy["state"] == "Active"
    assert copy["slashed"] == "250.000000"
    assert copy["reportedLastSeq"] == 6
    assert [c["kind"] for c in copy["challenges"]] == ["UnderReport"]
    table = _ok(_oml(chain, "state", "copy", str(copy_id)))
    assert "challenges" in table and "kind=UnderReport" in table

    model = json.loads(_ok(_oml(chain, "state", "model", str(model_id), "--json")))
    assert model["copies"][0]["copyId"] == copy_id
    assert model["lineage"] == {str(model_id): "100%"}

    host = json.loads(_ok(_oml(chain, "state", "host", outcome.facts["host"], "--json")))
    assert [c["copyId"] for c in host["copies"]] == [copy_id]
    prover = json.loads(_ok(_oml(chain, "state", "host", outcome.facts["prover"], "--json")))
    assert prover["prover"] is True and prover["claimable"] == "75.000000"

    assert "does not exist" in _oml(chain, "state", "copy", "9999").output
    assert "does not exist" in _oml(chain, "state", "model", "9999").output
