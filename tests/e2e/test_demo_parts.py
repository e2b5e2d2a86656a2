"""The demo's parts without a world: the money replay, the chain clock, process supervision."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web3 import Web3

from agents.demo import money
from agents.demo.chainclock import ChainClock
from agents.demo.errors import DemoError
from agents.demo.processes import Supervisor
from agents.demo.runner import Progress

TREASURY, INFRA, PROVER, CREATOR, INVESTOR, TUNER = (
    Web3.to_checksum_address(f"0x{digit * 40}") for digit in "123456"
)
PARAMS = {
    "underReportSlashBps": 2500,
    "missedReportSlashBps": 500,
    "leakSlashBps": 10_000,
    "challengerRewardBps": 3000,
    "challengerRewardCap": 1_000 * 10**6,
}


def _observed(events: list[money.Event], **changes: object) -> money.Observed:
    fields: dict[str, object] = {
        "events": events,
        "bps": 10_000,
        "ppb": 10**9,
        "cuts": (500, 500, 500),
        "challenge": PARAMS,
        "price": {1: 50_000, 2: 50_000},
        "copy_model": {1: 2, 2: 2},
        "collateral": {1: 1_000 * 10**6, 2: 1_000 * 10**6},
        "lineage": {1: [(1, 10**9)], 2: [(1, 200_000_000), (2, 800_000_000)]},
        "shares": {(1, CREATOR): 75 * 10**16, (1, INVESTOR): 25 * 10**16, (2, TUNER): 10**18},
        "treasury": TREASURY,
        "infrastructure": INFRA,
        "unsplit_start": 0,
        "pool_start": 0,
        "provers": 1,
        "accrued_start": {},
        "accrued_end": {},
        "claimed_start": {},
        "claimed_end": {},
    }
    fields.update(changes)
    return money.Observed(**fields)  # type: ignore[arg-type]


def _event(name: str, order: int, **args: object) -> money.Event:
    return money.Event(name, order, 0, dict(args))


def test_money_replay_follows_the_contracts_arithmetic() -> None:
    fee_a, fee_b = 70 * 50_000, 30 * 50_000
    cut_a, cut_b = fee_a * 1500 // 10_000, fee_b * 1500 // 10_000
    slash = 250 * 10**6
    reward = slash * 3000 // 10_000
    lineage = fee_a - cut_a + fee_b - cut_b + slash - reward
    unsplit = cut_a + cut_b
    events = [
        _event("UsageReported", 1, copyId=1, epoch=5, calls=70, lastSeq=70, fee=fee_a),
        _event("UsageReported", 2, copyId=2, epoch=5, calls=30, lastSeq=30, fee=fee_b),
        _event(
            "ProvableChallenge", 3, challengeId=7, copyId=2, kind=0, slashed=slash, reward=reward
        ),
        _event(
            "Slashed", 3, copyId=2, challengeId=7, amount=slash, challenger=PROVER, reward=reward
        ),
        _event(
            "ProtocolFeesSplit",
            4,
            treasury=unsplit // 3,
            proverPool=unsplit // 3,
            infrastructure=unsplit // 3,
        ),
        _event("LineageSettled", 5, modelId=2, amount=lineage, dust=0),
    ]
    expected = money.expected_credits(_observed(events), [PROVER])
    assert expected.problems == []
    to_base = lineage * 200_000_000 // 10**9
    assert expected.credits[TUNER] == lineage - to_base
    assert expected.credits[CREATOR] == to_base * 3 // 4
    assert expected.credits[INVESTOR] == to_base // 4
    assert expected.credits[TREASURY] == expected.credits[INFRA] == unsplit // 3
    assert expected.credits[PROVER] == reward + unsplit // 3
    assert expected.fees == {1: fee_a, 2: fee_b} and expected.slashed == {2: slash}


def test_money_replay_reports_every_difference() -> None:
    events = [
        _event("UsageReported", 1, copyId=1, epoch=5, calls=3, lastSeq=3, fee=1),
        _event("Slashed", 2, copyId=1, challengeId=9, amount=5, challenger=PROVER, reward=0),
        _event("ProtocolFeesSplit", 3, treasury=1, proverPool=0, infrastructure=0),
        _event("LineageSettled", 4, modelId=2, amount=999, dust=0),
    ]
    problems = money.expected_credits(_observed(events), [PROVER]).problems
    assert any("fee 1 != 3 × 50000" in p for p in problems)
    assert any(p.startswith("slash of copy 1") for p in problems)
    assert any(p.startswith("protocol split") for p in problems)
    assert any(p.startswith("model 2 settled 999") for p in problems)


def test_conservation_counts_what_stays_in_the_ledger() -> None:
    events = [_event("UsageReported", 1, copyId=1, epoch=5, calls=2, lastSeq=2, fee=100_000)]
    observed = _observed(
        events, accrued_end={TREASURY: 0}, unsplit_end=15_000, unsettled_end=85_000
    )
    expected = money.expected_credits(observed, [PROVER])
    assert money.conservation(observed, expected, 0) == (100_000, 100_000)


def test_chain_clock_adds_the_chain_offset_to_the_wall_clock() -> None:
    wall = [1_000.0]
    tick = [0.0]

    class Fake(ChainClock):
        reads = 0

        def chain_time(self) -> int:
            Fake.reads += 1
            return int(wall[0]) + 3_600  # Anvil an hour ahead

    clock = Fake("http://unused", wall=lambda: wall[0], monotonic=lambda: tick[0])
    assert clock.now() == 4_600
    wall[0] += 10
    tick[0] += 0.5  # within the refresh interval: no new read, the offset still holds
    assert clock.now() == 4_610 and Fake.reads == 1
    tick[0] += 1
    assert clock.now() == 4_610 and Fake.reads == 2


def test_supervisor_stops_agents_and_a_later_run_stops_leftovers(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ))
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    agent = supervisor.start("sleeper", sleeper)
    assert agent.alive()
    recorded = json.loads((tmp_path / "pids.json").read_text())
    assert recorded["sleeper"]["pid"] == agent.pid
    assert supervisor.stop_all() == ["sleeper"]
    assert not agent.alive() and json.loads((tmp_path / "pids.json").read_text()) == {}

    # a run killed outright leaves pids.json behind: the next run stops what it names
    orphan = subprocess.Popen(sleeper, start_new_session=True)
    (tmp_path / "pids.json").write_text(json.dumps({"x": {"pid": orphan.pid, "argv": sleeper}}))
    assert Supervisor.stop_leftovers(tmp_path) == [f"x (pid {orphan.pid})"]
    assert orphan.wait(timeout=10) is not None
    # ... but never a process whose command line differs (a reused pid)
    other = subprocess.Popen([*sleeper, "other"], start_new_session=True)
    try:
        (tmp_path / "pids.json").write_text(json.dumps({"y": {"pid": other.pid, "argv": sleeper}}))
        assert Supervisor.stop_leftovers(tmp_path) == []
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_supervisor_reports_a_failed_command_with_its_log(tmp_path: Path) -> None:
    supervisor = Supervisor(tmp_path, dict(os.environ))
    fail = [sys.executable, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(DemoError, match=r"(?s)exit 3.*boom"):
        supervisor.run("failing", fail)
    assert supervisor.run(
        "json", [sys.executable, "-c", "print('{\"a\": 1}')"], json_output=True
    ) == {"a": 1}
    agent = supervisor.start("dies", [sys.executable, "-c", "raise SystemExit(4)"])
    agent.process.wait(timeout=30)
    with pytest.raises(DemoError, match="dies exited with status 4"):
        supervisor.wait_until("dies", lambda: False, timeout_s=5, what="never")
    time.sleep(0)


def test_progress_prints_one_line_per_step() -> None:
    out = io.StringIO()
    progress = Progress(25, out, width=20)
    progress.begin(3, "a step")
    progress.end(1.25, "ok", "it worked")
    progress.begin(4, "another")
    progress.end(0.0, "skipped", "prover not available in this build")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[ 3/25] a step .............. " + "   1.2s  it worked"
    assert lines[1].endswith("skipped: prover not available in this build")
