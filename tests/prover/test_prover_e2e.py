"""The prover end to end: real Anvil, real IPFS, the real oracle and key service, real host
servers on tiny fingerprinted copies, a rogue server serving a leaked copy.

Honest hosts → no challenge. An under-reporting host and an equivocating host are slashed by
provable challenges in the same test. A leaked copy is detected on an unregistered endpoint,
committed, revealed, and slashed after liveness (undisputed) or ruled on by the arbiter
(disputed). Copying someone else's revealed challenge gains nothing.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from proverkit import (
    COLLATERAL,
    HOST_A,
    PRICE,
    PROVER,
    REPO_ROOT,
    RIVAL,
    USD,
    Host,
    World,
    mine,
    warp,
    warp_to_next_epoch,
)

from agents.arbiter.service import Arbiter, check_evidence
from agents.chain.errors import TransactionFailed
from agents.chain.keystore import dev_account
from agents.cli import cli
from agents.prover.chain import CopyState, LeakState, leak_commitment
from agents.prover.service import CRASH_AFTER_ENV, Prover
from agents.storage.client import IpfsClient

pytestmark = pytest.mark.filterwarnings("ignore:The log with transaction hash:UserWarning")


def _provable_events(world: World) -> list[Any]:
    manager = world.protocol(dev_account(0)).contract("ChallengeManager")
    return list(manager.events.ProvableChallenge().get_logs(from_block=0))


def _next_epoch(world: World) -> int:
    return warp_to_next_epoch(world.w3, world.genesis, world.epoch_length)


def _report_all(hosts: dict[str, Host]) -> None:
    for host in hosts.values():
        host.report()


# ============================================================================ honest hosts


def test_honest_hosts_probed_over_several_epochs_raise_no_challenge(
    fresh_world: World, hosts: dict[str, Host], tmp_path: Path
) -> None:
    world = fresh_world
    prover = world.prover(tmp_path / "prover")
    for _ in range(3):
        _report_all(hosts)  # hosts report every closed epoch before the prover audits
        report = prover.step()
        assert report.errors == [], report.errors
        assert report.host_probes == 2 * 4 and report.receipts == 2 * 4
        _next_epoch(world)
    _report_all(hosts)
    final = prover.step()
    assert final.submitted == [] and prover.state.challenges() == []
    assert _provable_events(world) == []
    statuses = prover.state.receipt_counts()
    assert statuses.get("ok", 0) == 3 * 8 and statuses.get("pending", 0) == 8, statuses
    assert prover.state.anomalies() == []
    for name in ("a", "b"):
        assert world.collateral(name) == COLLATERAL
    # the hosts paid fees for the prover's calls: part of them is the prover pool's
    earnings = json.loads(_cli(world, tmp_path, "prover", "earnings", "--json").output)
    assert earnings["proverPoolPending"] > 0 and earnings["rewards"] == 0
    assert earnings["bondsLocked"] == world.params["prover_bond"]


def _cli(world: World, tmp_path: Path, *args: str, account: int = PROVER) -> Any:
    env = {
        "OML_RPC_URL": world.rpc,
        "OML_PROVER_NETWORK": world.network,
        "OML_PROVER_ACCOUNT": f"dev:{account}",
        "OML_PROVER_STATE_DIR": str(tmp_path / f"prover-cli-{account}"),
        "OML_PROVER_KEY_SERVICE_URL": world.key_service.url,
        "OML_HOST_NETWORK": world.network,
        "OML_HOST_STATE_DIR": str(tmp_path / "host-cli"),
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


# ============================================================================ provable fraud


def test_under_reporting_host_is_slashed_at_once_and_the_prover_rewarded(
    fresh_world: World, hosts: dict[str, Host], tmp_path: Path
) -> None:
    world = fresh_world
    a, b = hosts["a"], hosts["b"]
    prover = world.prover(tmp_path / "prover")
    _report_all(hosts)
    assert prover.step().receipts == 8
    epoch = _next_epoch(world)
    b.report()
    # host A reports the epoch as if its last two calls (the prover's) never happened
    assert a.ledger is not None
    usage = a.ledger.usage(epoch)
    assert usage.calls == 4
    chain_a = a.chain()
    chain_a.approve((usage.calls - 2) * PRICE)
    chain_a.report_usage(a.copy_id, epoch, usage.calls - 2, usage.last_seq - 2)

    wallet = world.token_balance(prover.chain.address)
    collateral = world.collateral("a")
    [challenge] = prover.audit()
    slashed = collateral * world.params["under_report_slash_bps"] // 10_000
    reward = min(
        slashed * world.params["challenger_reward_bps"] // 10_000,
        world.params["challenger_reward_cap"],
    )
    assert challenge["kind"] == "under-report" and challenge["state"] == "slashed"
    assert (challenge["copy_id"], challenge["epoch"]) == (a.copy_id, epoch)
    assert (challenge["slashed"], challenge["reward"]) == (slashed, reward)
    assert world.collateral("a") == collateral - slashed and world.collateral("b") == COLLATERAL
    assert world.token_balance(prover.chain.address) == wallet + reward  # claimed at once
    [event] = _provable_events(world)
    assert (event["args"]["copyId"], event["args"]["kind"]) == (a.copy_id, 0)
    assert prover.audit() == []  # one offence, one slash
    earnings = json.loads(_cli(world, tmp_path, "prover", "earnings", "--json").output)
    assert earnings["rewards"] == reward and earnings["slashes"][0]["copyId"] == a.copy_id


def test_host_that_lost_its_ledger_equivocates_and_is_slashed(
    fresh_world: World, hosts: dict[str, Host], tmp_path: Path
) -> None:
    world = fresh_world
    a = hosts["a"]
    prover = world.prover(tmp_path / "prover", host_probe_calls=4, host_probe_keys=0)
    prover.rng = random.Random(7)
    _report_all(hosts)
    assert prover.probe_hosts() == 8
    # the host's receipt ledger is lost; it restarts empty and hands out seqs 1.. again
    a.stop()
    a.start(tmp_path / "ledger-a-after-disk-loss.sqlite3")
    assert prover.probe_hosts() == 8
    collateral = world.collateral("a")
    submitted = prover.audit()
    # every seq signed twice is its own offence (ChallengeManager punishes each (copy, seq) once)
    assert submitted and {c["kind"] for c in submitted} == {"equivocation"}
    assert len({c["seq"] for c in submitted}) == len(submitted)
    assert world.collateral("a") < collateral and world.collateral("b") == COLLATERAL
    events = _provable_events(world)
    assert len(events) == len(submitted)
    assert {(e["args"]["copyId"], e["args"]["kind"]) for e in events} == {(a.copy_id, 1)}
    assert prover.audit() == []


# ============================================================================ leaks

LEAK_ONLY: dict[str, Any] = {
    # these tests are about the watch list: no host serves, so no probes and no reports
    "host_probe_calls": 0,
    "host_probe_keys": 0,
    "challenge_missed_reports": False,
}


class Crash(BaseException):
    """Stands in for kill -9 at a crash point (BaseException: no job handler catches it)."""


def _leak_rows(prover: Prover) -> list[Any]:
    return prover.state.challenges(kind="leak")


def _events(world: World, name: str, **filters: Any) -> list[Any]:
    manager = world.protocol(dev_account(0)).contract("ChallengeManager")
    return list(
        getattr(manager.events, name)().get_logs(from_block=0, argument_filters=filters or None)
    )


def test_leaked_copy_on_a_rogue_endpoint_is_slashed_after_liveness(
    fresh_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = fresh_world
    rogue = world.rogue("a")
    try:
        prover = world.prover(tmp_path / "prover", **LEAK_ONLY)
        prover.state.add_watch(rogue.url, None, None)
        wallet = world.token_balance(prover.chain.address)

        def crash(name: str) -> None:
            if name == "commit-sent":
                raise Crash(name)

        monkeypatch.setattr("agents.prover.service._crash_point", crash)
        with pytest.raises(Crash):
            prover.step()  # detects, uploads evidence, commits — and dies before recording it
        monkeypatch.undo()
        [detection] = [d for d in prover.state.detections() if d["accused"]]
        assert detection["copyId"] == world.copies["a"] and detection["evidenceCID"]
        assert detection["matched"] >= 11 and detection["falsePositiveProbability"] <= 1e-9 / 2
        assert not [d for d in prover.state.detections() if d["copyId"] == world.copies["b"]]

        # restart: a new process on the same state finds its commit instead of sending another
        prover = world.prover(tmp_path / "prover", register=False, **LEAK_ONLY)
        prover.advance()
        assert len(_events(world, "LeakCommitted")) == 1
        [row] = _leak_rows(prover)
        assert row.state == "committed"  # never revealed in the block of the commit
        mine(world.w3)
        prover.advance()
        [row] = _leak_rows(prover)
        assert row.state == "revealed" and row.onchain_id is not None
        assert prover.chain.key_revealed(row.copy_id, int(row.key_index or 0))
        assert prover.state.key_status(row.copy_id, int(row.key_index or 0)) == "revealed"

        with IpfsClient() as ipfs:
            document = json.loads(ipfs.cat(str(row.evidence_cid)))
        info = world.protocol(dev_account(0)).copy(row.copy_id)
        check = check_evidence(document, copy_id=row.copy_id, fp_root=info.fp_root)
        assert check.problems == () and check.matched >= 11 and check.queried >= 10
        assert check.family_false_positive <= 1e-9
        assert document["endpoint"] == rogue.url and document["revealIndex"] == row.key_index

        prover.advance()  # liveness not over: nothing to do
        assert _leak_rows(prover)[0].state == "revealed"
        collateral = world.collateral("a")
        warp(world.w3, world.params["liveness"] + 1)
        prover.advance()
        [row] = _leak_rows(prover)
        reward = min(collateral * 3000 // 10_000, world.params["challenger_reward_cap"])
        assert (row.state, row.slashed, row.reward) == ("upheld", collateral, reward)
        assert world.collateral("a") == 0 and world.copy_state("a") == CopyState.EXITING
        assert world.collateral("b") == COLLATERAL
        assert world.token_balance(prover.chain.address) == wallet + reward  # bond came back
    finally:
        rogue.stop()


@pytest.fixture(scope="module")
def finetuned_a(world: World) -> tuple[Any, Any]:
    """Host A's copy after a short benign fine-tune (what a leaker might do to adapt it)."""
    from agents.fingerprint.evaluation import benign_finetune, perplexity

    model, tokenizer = world.models["a"]
    tuned = benign_finetune(model, tokenizer, steps=30, learning_rate=1e-3)
    assert perplexity(tuned, tokenizer) < perplexity(model, tokenizer)  # it really changed
    return tuned, tokenizer


# A modified copy answers fewer keys (the tiny copies keep 25-31 of 32 after the fine-tune
# below, over 8 measured secrets), and 12 keys decide at 1e-9 only if 11 match. A prover that
# suspects a modified copy decides on more keys instead: 24 of the copy's 32, of which 16 must
# match, so a copy still answering 24 of its 32 keys is accused whichever 24 are drawn.
MODIFIED_COPY: dict[str, Any] = {
    **LEAK_ONLY,
    "screen_keys": 0,
    "keys_per_copy": 24,
    "detect_keys": 24,
}


def _accused_on(world: World, tmp_path: Path, rogue_url: str) -> list[dict[str, Any]]:
    prover = world.prover(tmp_path / "prover", **MODIFIED_COPY)
    decided = prover.probe_endpoint(rogue_url)
    assert all(f["queried"] == 24 for f in decided), decided
    return [f for f in decided if f["accused"]]


def test_leak_survives_a_light_finetune(
    fresh_world: World, tmp_path: Path, finetuned_a: tuple[Any, Any]
) -> None:
    rogue = fresh_world.rogue("a", model=finetuned_a)
    try:
        [accused] = _accused_on(fresh_world, tmp_path, rogue.url)
        assert accused["copyId"] == fresh_world.copies["a"]
        assert accused["falsePositiveProbability"] <= 1e-9 / 2 and accused["challenge"]
    finally:
        rogue.stop()


@pytest.mark.xfail(
    strict=True,
    reason="known gap of the random tiny model, which cannot generalise across contexts: "
    "behind a system prompt (even one of the embedder's training wrappers) it answers 7-13 of "
    "32 keys, far from an accusation at 1e-9; SmolLM2 copies answer 23-24 of 24 behind unseen "
    "wrappers (tests/fingerprint/test_smollm2.py, docs/fingerprinting.md)",
)
def test_leak_survives_a_light_finetune_behind_a_system_prompt(
    fresh_world: World, tmp_path: Path, finetuned_a: tuple[Any, Any]
) -> None:
    from agents.fingerprint.prompts import TRAIN_WRAPPERS

    system = TRAIN_WRAPPERS[1].template.removesuffix("{key}")
    rogue = fresh_world.rogue("a", model=finetuned_a, system=system)
    try:
        [accused] = _accused_on(fresh_world, tmp_path, rogue.url)
        assert accused["copyId"] == fresh_world.copies["a"]
    finally:
        rogue.stop()


@pytest.mark.parametrize("leaked", [True, False], ids=["upheld", "rejected"])
def test_disputed_leak_is_ruled_by_the_arbiter(
    fresh_world: World, tmp_path: Path, leaked: bool
) -> None:
    world = fresh_world
    rogue = world.rogue("a")
    try:
        prover = world.prover(tmp_path / "prover", **LEAK_ONLY)
        host = dev_account(HOST_A).address
        wallet = world.token_balance(prover.chain.address)
        host_wallet = world.token_balance(host)
        found = prover.probe_endpoint(rogue.url)
        assert [f["copyId"] for f in found if f["accused"]] == [world.copies["a"]]
        mine(world.w3)
        prover.advance()
        [row] = _leak_rows(prover)
        assert row.state == "revealed"
        challenge_id = str(row.onchain_id)

        note = tmp_path / "host-statement.txt"
        note.write_text("that endpoint is not ours; our weights never left the server\n")
        shown = _cli(world, tmp_path, "host", "--account", f"dev:{HOST_A}", "challenges", "--json")
        assert [c["challengeId"] for c in json.loads(shown.output)] == [row.onchain_id]
        out = _cli(
            world,
            tmp_path,
            "host",
            "--account",
            f"dev:{HOST_A}",
            "dispute",
            challenge_id,
            "--evidence",
            str(note),
            "--statement",
            "not us",
            "--json",
        )
        disputed = json.loads(out.output)
        assert disputed["state"] == "disputed" and disputed["evidenceCID"]

        prover.advance()  # sees the dispute, re-probes the endpoint with fresh keys
        [row] = _leak_rows(prover)
        assert row.state == "disputed" and row.data["disputeProbe"]["accused"]

        case = Arbiter(world.protocol(dev_account(2))).case(row.onchain_id or 0)
        assert case["recommendation"] == "uphold" and case["evidence"]["matched"] >= 11
        listed = _cli(world, tmp_path, "arbiter", "--network", world.network, "list", "--json")
        assert [c["challengeId"] for c in json.loads(listed.output)] == [row.onchain_id]
        verdict = "--uphold" if leaked else "--reject"
        _cli(
            world, tmp_path, "arbiter", "--network", world.network, "resolve", challenge_id, verdict
        )
        prover.advance()
        [row] = _leak_rows(prover)
        bond, counter = world.params["challenge_bond"], world.params["counter_bond"]
        forfeit = bond * world.params["bond_forfeit_bps"] // 10_000
        host_claimable = prover.chain.claimable(host)
        if leaked:
            reward = min(COLLATERAL * 3000 // 10_000, world.params["challenger_reward_cap"])
            assert (row.state, row.reward) == ("upheld", reward)
            assert world.collateral("a") == 0
            # bond back plus the host's counter-bond, plus the reward
            assert world.token_balance(prover.chain.address) == wallet + counter + reward
            assert world.token_balance(host) + host_claimable == host_wallet - counter
        else:
            assert (row.state, row.reward) == ("rejected", 0)
            assert world.collateral("a") == COLLATERAL
            assert world.copy_state("a") == CopyState.ACTIVE
            assert world.token_balance(prover.chain.address) == wallet - forfeit
            assert world.token_balance(host) + host_claimable == host_wallet + forfeit
    finally:
        rogue.stop()


def test_copying_a_revealed_challenge_gains_nothing(fresh_world: World, tmp_path: Path) -> None:
    world = fresh_world
    rogue = world.rogue("a")
    try:
        prover = world.prover(tmp_path / "prover", **LEAK_ONLY)
        rival = world.prover(tmp_path / "rival", account=RIVAL, **LEAK_ONLY)
        rival_wallet = world.token_balance(rival.chain.address)
        prover.probe_endpoint(rogue.url)
        [row] = _leak_rows(prover)
        assert row.state == "committed" and row.commitment
        # 1. the rival copies the commitment as it appears on chain (or in the mempool)
        copied = rival.chain.commit_leak(bytes.fromhex(row.commitment.removeprefix("0x")))
        mine(world.w3)
        prover.advance()
        [row] = _leak_rows(prover)
        assert row.state == "revealed"
        reveal = _reveal_calldata(world, prover, row.onchain_id or 0)
        # 2. ...and the reveal: the commitment binds the challenger's address
        with pytest.raises(TransactionFailed, match="CommitmentMismatch"):
            rival.chain.reveal_leak(copied.challenge_id, reveal)
        # 3. a commitment of its own for the now public key: the index is burned
        salt, cid = reveal[4], reveal[6]
        own = rival.chain.commit_leak(
            leak_commitment(rival.chain.address, reveal[0], reveal[1], salt, cid)
        )
        mine(world.w3)
        with pytest.raises(TransactionFailed, match="KeyAlreadyRevealed"):
            rival.chain.reveal_leak(own.challenge_id, reveal)

        warp(world.w3, world.params["reveal_window"] + 1)
        prover.advance()
        assert _leak_rows(prover)[0].state == "upheld"
        for challenge_id in (copied.challenge_id, own.challenge_id):
            rival.chain.finalize_leak(challenge_id)
            assert rival.chain.leak(challenge_id).state == LeakState.EXPIRED
        rival.chain.claim_all()
        forfeit = world.params["challenge_bond"] * world.params["bond_forfeit_bps"] // 10_000
        assert world.token_balance(rival.chain.address) == rival_wallet - 2 * forfeit
        slashes = [e["args"] for e in prover.chain.logs("AccessManager", "Slashed")]
        assert [s["challenger"] for s in slashes] == [prover.chain.address]
    finally:
        rogue.stop()


def _reveal_calldata(world: World, prover: Prover, challenge_id: int) -> tuple[Any, ...]:
    [event] = _events(world, "LeakRevealed", challengeId=challenge_id)
    tx = world.w3.eth.get_transaction(event["transactionHash"])
    _, params = prover.chain.manager.decode_function_input(tx["input"])
    reveal = params["r"]
    if isinstance(reveal, dict):
        names = ("copyId", "index", "key", "response", "salt", "proof", "evidenceCID")
        return tuple(reveal[n] for n in names)
    return tuple(reveal)


def test_silent_host_is_slashed_for_each_epoch_it_never_reported(
    fresh_world: World, hosts: dict[str, Host], tmp_path: Path
) -> None:
    world = fresh_world
    _report_all(hosts)
    prover = world.prover(tmp_path / "prover", host_probe_calls=1, host_probe_keys=0)
    assert prover.step().submitted == []
    epoch = _next_epoch(world)
    hosts["a"].report()  # host B went quiet
    assert prover.audit() == []  # B still has its grace period
    warp(world.w3, world.params["report_grace"])
    hosts["a"].report()
    [challenge] = prover.audit()
    assert (challenge["kind"], challenge["copy_id"], challenge["epoch"]) == (
        "missed-report",
        world.copies["b"],
        epoch,
    )
    slashed = COLLATERAL * world.params["missed_report_slash_bps"] // 10_000
    assert world.collateral("b") == COLLATERAL - slashed and world.collateral("a") == COLLATERAL
    assert prover.audit() == []


# ============================================================================ crash safety


def test_commit_lost_in_a_reorg_is_sent_again_and_never_revealed_early(
    fresh_world: World, tmp_path: Path
) -> None:
    world = fresh_world
    rogue = world.rogue("a")
    try:
        prover = world.prover(tmp_path / "prover", **LEAK_ONLY)
        snapshot = world.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        prover.probe_endpoint(rogue.url)
        [row] = _leak_rows(prover)
        assert row.state == "committed"
        # the block holding the commit disappears (a reorg), and the chain moves on without it
        world.w3.provider.make_request("evm_revert", [snapshot])  # type: ignore[arg-type]
        mine(world.w3, 3)
        assert _events(world, "LeakCommitted") == []
        prover.advance()  # notices, goes back to committing
        prover.advance()  # commits again
        [row] = _leak_rows(prover)
        assert row.state == "committed" and len(_events(world, "LeakCommitted")) == 1
        mine(world.w3)
        prover.advance()
        assert _leak_rows(prover)[0].state == "revealed"
    finally:
        rogue.stop()


@pytest.mark.parametrize("crash_after", ["commit-sent", "reveal-sent"])
def test_prover_killed_mid_challenge_resumes_without_sending_twice(
    fresh_world: World, tmp_path: Path, crash_after: str
) -> None:
    world = fresh_world
    rogue = world.rogue("a")
    try:
        world.protocol(dev_account(PROVER)).faucet(1_000 * USD)
        out = _cli(world, tmp_path, "prover", "register", "--bond", "100", "--json")
        assert json.loads(out.output)["bond"] == world.params["prover_bond"]
        _cli(world, tmp_path, "prover", "watch", rogue.url)

        code, output = _run_once(
            world, tmp_path, "commit-sent" if crash_after == "commit-sent" else None
        )
        if crash_after == "reveal-sent":
            assert code == 0, output  # committed; the reveal waits for a confirmation
            mine(world.w3)
            code, output = _run_once(world, tmp_path, "reveal-sent")
        assert code == 137, output
        assert len(_events(world, "LeakCommitted")) == 1
        code, output = _run_once(world, tmp_path, None)
        assert code == 0, output
        mine(world.w3)
        code, output = _run_once(world, tmp_path, None)
        assert code == 0, output
        assert len(_events(world, "LeakCommitted")) == 1
        assert len(_events(world, "LeakRevealed")) == 1
        [row] = json.loads(_cli(world, tmp_path, "prover", "challenges", "--json").output)
        assert row["state"] == "revealed" and row["kind"] == "leak"
        status = json.loads(_cli(world, tmp_path, "prover", "status", "--json").output)
        assert status["keys"]["revealed"] == 1 and status["watch"][0]["url"] == rogue.url
    finally:
        rogue.stop()


def _run_once(world: World, tmp_path: Path, crash_after: str | None) -> tuple[int, str]:
    env = {
        **os.environ,
        "OML_RPC_URL": world.rpc,
        "OML_PROVER_NETWORK": world.network,
        "OML_PROVER_ACCOUNT": f"dev:{PROVER}",
        "OML_PROVER_STATE_DIR": str(tmp_path / f"prover-cli-{PROVER}"),
        "OML_PROVER_KEY_SERVICE_URL": world.key_service.url,
        "OML_PROVER_REVEAL_CONFIRMATIONS": "1",
        **{f"OML_PROVER_{k.upper()}": str(v).lower() for k, v in LEAK_ONLY.items()},
    }
    env.pop(CRASH_AFTER_ENV, None)
    if crash_after:
        env[CRASH_AFTER_ENV] = crash_after
    done = subprocess.run(
        [sys.executable, "-m", "agents.cli", "prover", "run", "--once", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
    )
    return done.returncode, done.stdout + done.stderr
