"""`make demo`'s scenario end to end on the test world (OML_RPC_URL / OML_IPFS_API_PORT of
`make test`), with the tiny model: real agents in subprocesses, a fresh deployment.

Checks the balances, not the wording: fees paid = calls × price for every host, each party
received exactly what the contracts' parameters say (recomputed independently of the credits),
fees and slashes in equal credits and what is still held out, every copy answers its
fingerprints above the oracle's threshold, and — when this build's prover works — the
under-report and the leak were slashed at the contracts' rates.
"""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.config import get_settings
from agents.world import chain_answers, ipfs_answers

REPO_ROOT = Path(__file__).resolve().parents[2]
USD = 10**6

pytestmark = pytest.mark.slow


def _free_port_block(size: int = 4) -> int:
    """A base port with ``size`` consecutive free ports after it."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + size >= 65535:
            continue
        try:
            for port in range(base, base + size):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no block of free ports")


@pytest.fixture(scope="module")
def network() -> Iterator[str]:
    get_settings.cache_clear()
    world = get_settings()
    if chain_answers(world.rpc_url, timeout=5) is None or ipfs_answers(world.ipfs_api_url) is None:
        pytest.skip(f"the test world is not up ({world.rpc_url}, {world.ipfs_api_url}): make test")
    name = f"test-demo-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tests" / "dev" / "deploy_protocol.py"),
            world.rpc_url,
            name,
            "9",  # infrastructure apart from the treasury: both cuts are checked separately
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    yield name
    (REPO_ROOT / "deployments" / f"{name}.json").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def summary(network: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from agents.demo.runner import run_demo
    from agents.demo.settings import DemoSettings

    settings = DemoSettings(
        model="tiny",
        network=network,
        run_dir=tmp_path_factory.mktemp("demo") / "run",
        port_base=_free_port_block(),
        fingerprints=16,
        calls=6,
        rogue_calls=3,
        concurrency=2,
    )
    output = io.StringIO()
    result = run_demo(settings, stream=output)
    print(output.getvalue())  # shown by pytest when an assertion fails
    assert result["outcome"] == "ok", output.getvalue()
    return result


def _host(summary: dict[str, Any], name: str) -> dict[str, Any]:
    return next(h for h in summary["hosts"] if h["name"] == name)


def test_every_step_ran_and_every_amount_matches_the_contracts(summary: dict[str, Any]) -> None:
    assert [s["status"] for s in summary["steps"] if s["status"] == "failed"] == []
    assert summary["problems"] == []


def test_fees_paid_are_calls_times_price_per_host(summary: dict[str, Any]) -> None:
    a, b = _host(summary, "host A"), _host(summary, "host B")
    # honest host: every call it served is reported and paid
    assert a["served"] == a["reportedCalls"] >= 2 * 6
    assert a["feesPaid"] == a["reportedCalls"] * a["price"]
    # cheating host: pays for what it reports, which is less than what it served
    assert b["feesPaid"] == b["reportedCalls"] * b["price"]
    assert b["reportedCalls"] < b["served"]
    assert a["price"] == b["price"] == 50_000


def test_the_split_adds_up_to_what_each_party_received(summary: dict[str, Any]) -> None:
    parties = {p["name"]: p for p in summary["parties"]}
    assert set(parties) == {
        "creator",
        "fine-tuner",
        "shareholder",
        "prover",
        "treasury",
        "infrastructure",
    }
    for party in parties.values():
        assert party["received"] == party["expected"], party
        assert party["claimed"] == party["received"], party  # everybody claimed everything
    for name in ("creator", "fine-tuner", "shareholder", "treasury", "infrastructure"):
        assert parties[name]["received"] > 0, name
    # fees and slashes in = credits + dust + what still waits in the ledger, to the unit
    assert summary["moneyIn"] == summary["moneyOut"]
    assert sum(summary["split"].values()) == summary["protocolCut"]


def test_every_copy_answers_its_fingerprints_above_the_threshold(summary: dict[str, Any]) -> None:
    copies = summary["copies"]
    assert len(copies) == 2
    for copy in copies:
        assert copy["fingerprints"] == 16
        assert copy["recall"] >= summary["recallThreshold"], copy
        assert copy["oracleRecall"] >= summary["recallThreshold"], copy


def test_the_prover_caught_the_under_report_and_the_leak(
    summary: dict[str, Any], network: str
) -> None:
    if summary["prover"] != "ran":
        pytest.skip(f"prover: {summary['prover']}")
    from agents.dev.devchain import DevChain

    params = DevChain.connect(get_settings().rpc_url, network).params()
    bps = 10_000

    def reward(slashed: int) -> int:
        return min(
            slashed * int(params["challengerRewardBps"]) // bps, int(params["challengerRewardCap"])
        )

    a, b = _host(summary, "host A"), _host(summary, "host B")
    assert a["slashed"] == 0 and a["slashes"] == []
    # Epochs run on wall time: host B's under-reporting may span one epoch or two, each
    # slashed once; the leak comes last (it ends the deployment).
    kinds = [s["kind"] for s in b["slashes"]]
    assert len(kinds) >= 2 and kinds == ["under-report"] * (len(kinds) - 1) + ["leak"], kinds
    *unders, leak = b["slashes"]
    left = b["collateral"]
    for under in unders:  # each slash takes its share of what is still staked
        assert under["amount"] == left * params["underReportSlashBps"] // bps
        assert under["reward"] == reward(under["amount"])
        left -= under["amount"]
    assert leak["amount"] == left * params["leakSlashBps"] // bps
    assert leak["reward"] == reward(leak["amount"])
    assert b["slashed"] == sum(s["amount"] for s in b["slashes"])
    accusation = summary["accusation"]
    assert accusation["copyId"] == b["copyId"]
    assert accusation["falsePositive"] <= accusation["threshold"]
    prover = next(p for p in summary["parties"] if p["name"] == "prover")
    assert prover["received"] >= sum(s["reward"] for s in b["slashes"])
