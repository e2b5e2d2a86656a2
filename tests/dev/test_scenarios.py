"""Every scenario on a plain Anvil with the protocol deployed by scripts/deploy.py.

One test per scenario: the outcome's own checks must all pass, and the key on-chain numbers are
asserted here again so that a scenario cannot pass by checking less.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from agents.dev.commands import group
from agents.dev.devchain import DevChain
from agents.dev.errors import ScenarioError
from agents.dev.scenarios import Outcome, ScenarioContext, all_scenarios, run_scenario, scenario
from tests.dev.devkit import DeployedChain, deployed_anvil

# agents.chain.protocol decodes receipts without errors=DISCARD: web3 warns per foreign log.
pytestmark = pytest.mark.filterwarnings("ignore:The log with transaction hash")
USD = 10**6
COLLATERAL = 1_000 * USD


@pytest.fixture(scope="module")
def chain() -> Iterator[DeployedChain]:
    with deployed_anvil("dev-scenarios") as deployed:
        yield deployed


@pytest.fixture(scope="module")
def dev(chain: DeployedChain) -> DevChain:
    return DevChain.connect(chain.rpc_url, chain.network)


def _run(dev: DevChain, name: str) -> Outcome:
    outcome = run_scenario(name, dev)
    failed = [c for c in outcome.checks if not c.ok]
    assert outcome.ok, (outcome.error, outcome.facts.get("traceback"), failed)
    return outcome


def _actual(outcome: Outcome, what: str) -> object:
    return outcome.check(what).actual


def test_registry_lists_the_built_in_scenarios() -> None:
    names = {s.name for s in all_scenarios()}
    assert {
        "honest-host",
        "under-reporting-host",
        "equivocating-host",
        "griefing-challenger",
        "front-running-challenger",
        "host-exits-before-challenge",
        "missed-report-host",
        "leaked-copy",
        "leaked-after-finetune",
        "colluding-merge",
    } <= names


def test_scenario_with_a_missing_requirement_is_listed_not_run(dev: DevChain) -> None:
    from agents.dev.scenarios import registry

    @scenario("needs-the-future", title="t", expected="e", requires=("agents.no_such_module",))
    def future(ctx: ScenarioContext) -> None:
        raise AssertionError("must not run")

    try:
        listed = CliRunner().invoke(group, ["scenario", "list"])
        assert (
            "needs-the-future" in listed.output and "[needs agents.no_such_module]" in listed.output
        )
        with pytest.raises(ScenarioError, match=r"needs agents\.no_such_module"):
            run_scenario("needs-the-future", dev)
    finally:
        registry._REGISTRY.pop("needs-the-future")


def test_honest_host(dev: DevChain) -> None:
    outcome = _run(dev, "honest-host")
    assert _actual(outcome, "collateral slashed") == 0
    assert _actual(outcome, "fees paid (calls x price)") == 8 * USD // 100
    assert _actual(outcome, "under-report challenge") == "NotUnderReported"


def test_under_reporting_host(dev: DevChain) -> None:
    outcome = _run(dev, "under-reporting-host")
    assert _actual(outcome, "collateral slashed") == COLLATERAL // 4  # 2500 bps
    assert _actual(outcome, "prover's reward (claimable)") == COLLATERAL // 4 * 3 // 10
    assert _actual(outcome, "second challenge of the epoch") == "AlreadyPunished"


def test_equivocating_host(dev: DevChain) -> None:
    outcome = _run(dev, "equivocating-host")
    assert _actual(outcome, "collateral slashed") == COLLATERAL // 4
    assert _actual(outcome, "challenge kind") == 1


def test_griefing_challenger(dev: DevChain) -> None:
    outcome = _run(dev, "griefing-challenger")
    assert _actual(outcome, "challenge state") == "Rejected"
    assert _actual(outcome, "collateral slashed") == 0
    assert _actual(outcome, "griefer gets back (bond less forfeit)") == 25 * USD  # 50 bond, ½ lost
    assert _actual(outcome, "host gets (counter-bond plus forfeit)") == 75 * USD


def test_front_running_challenger(dev: DevChain) -> None:
    outcome = _run(dev, "front-running-challenger")
    assert _actual(outcome, "front-runner's copied reveal") == ("reverted", "CommitmentMismatch")
    assert _actual(outcome, "prover's challenge") == "Upheld"
    assert _actual(outcome, "prover's reward and bond back") == 300 * USD + 50 * USD
    assert _actual(outcome, "front-runner gets back (bonds less forfeits)") == 50 * USD
    assert dev.node.automine(), "the scenario must give automine back"


def test_host_exits_before_challenge(dev: DevChain) -> None:
    outcome = _run(dev, "host-exits-before-challenge")
    assert _actual(outcome, "copy state when challenged") == "Exiting"
    assert _actual(outcome, "withdrawn after the delay") == COLLATERAL - COLLATERAL // 4
    assert outcome.facts["exitDelay"] > outcome.facts["maxChallengeSpan"]


def test_missed_report_host(dev: DevChain) -> None:
    outcome = _run(dev, "missed-report-host")
    assert _actual(outcome, "challenge within the grace") == "ReportGraceNotOver"
    assert _actual(outcome, "collateral slashed") == COLLATERAL // 20  # 500 bps


def _leak_slashed(outcome: Outcome, hosts: list[str]) -> None:
    """A leak the prover bot caught: Upheld, whole collateral slashed (dev profile: 10,000
    bps), forced exit, reward min(30% of 1,000, cap 300) per copy, accused at <= 1e-9."""
    for host in hosts:
        assert _actual(outcome, f"{host}: challenge state") == "Upheld"
        assert _actual(outcome, f"{host}: collateral slashed") == COLLATERAL
        assert _actual(outcome, f"{host}: copy state") == "Exiting"
        assert _actual(outcome, f"{host}: prover's reward (min(slash x rewardBps, cap))") == (
            300 * USD
        )
        assert 0 < outcome.facts[f"falsePositiveProbability({host})"] <= 1e-9
        assert outcome.facts[f"arbiterCheck({host})"]["familyFalsePositive"] <= 1e-9
    assert _actual(outcome, "prover's wallet: bonds back plus the rewards, claimed") == (
        len(hosts) * 300 * USD
    )


def test_leaked_copy(dev: DevChain) -> None:
    outcome = _run(dev, "leaked-copy")
    _leak_slashed(outcome, ["host"])


def test_leaked_after_finetune(dev: DevChain) -> None:
    outcome = _run(dev, "leaked-after-finetune")
    _leak_slashed(outcome, ["host"])
    tuned = outcome.facts["finetune"]
    assert tuned["perplexityAfter"] < tuned["perplexityBefore"]


def test_colluding_merge(dev: DevChain) -> None:
    outcome = _run(dev, "colluding-merge")
    _leak_slashed(outcome, ["host-a", "host-b"])
    assert len(set(outcome.facts["challengeIds"].values())) == 2


def test_scenarios_replay_on_the_same_chain(dev: DevChain) -> None:
    first = _run(dev, "under-reporting-host")
    second = _run(dev, "under-reporting-host")
    assert first.facts["copyId"] != second.facts["copyId"]


def test_cli_run_prints_checks_and_reverts_on_request(chain: DeployedChain, dev: DevChain) -> None:
    head = dev.node.block_number()
    result = CliRunner().invoke(
        group,
        [
            "scenario",
            "run",
            "equivocating-host",
            "--rpc",
            chain.rpc_url,
            "--network",
            chain.network,
            "--revert",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ok   collateral slashed" in result.output
    assert "outcome: as expected" in result.output
    assert dev.node.block_number() == head


def test_cli_run_unknown_scenario_fails(chain: DeployedChain) -> None:
    result = CliRunner().invoke(
        group, ["scenario", "run", "no-such", "--rpc", chain.rpc_url, "--network", chain.network]
    )
    assert result.exit_code != 0
    assert "no scenario 'no-such'" in result.output
