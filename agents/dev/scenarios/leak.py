"""Leak challenges: commit, reveal with a Merkle proof, liveness, dispute, arbiter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents.dev.actors import Arbiter, LeakEvidence, Prover, event_args
from agents.dev.devchain import COPY_STATES, LEAK_STATES
from agents.dev.scenarios.common import COLLATERAL, bonded_prover, licensed_copy, reward_for
from agents.dev.scenarios.registry import ScenarioContext, scenario

GWEI = 10**9
BPS = 10_000


@scenario(
    "griefing-challenger",
    title="Griefing challenger: a false leak challenge is disputed and rejected",
    expected="the host disputes, the arbiter rules no leak: Rejected, no slash, the copy is "
    "unlocked, the challenger loses bondForfeitBps of its bond to the host",
)
def griefing_challenger(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    griefer = bonded_prover(ctx, "griefer")
    params = dev.params()
    bond, counter = int(params["challengeBond"]), int(params["counterBond"])
    forfeit = bond * int(params["bondForfeitBps"]) // BPS
    # A real key from the key service, but a fabricated transcript: the host never leaked.
    evidence = s.copy.evidence(3, "bafy-fabricated-transcript")
    challenge_id = griefer.commit_leak(evidence)
    griefer.reveal_leak(challenge_id, evidence)
    locked = int(dev.copy(s.copy_id)["openChallenges"])
    ctx.step(
        f"griefer committed and revealed leak challenge {challenge_id} on copy "
        f"{s.copy_id} with a fabricated transcript; the copy is locked"
    )
    s.host.dispute(challenge_id)
    ctx.step(f"host disputed within liveness, posting a {counter / 10**6} mUSD counter-bond")
    Arbiter(dev).rule(challenge_id, leaked=False)
    ctx.step("the arbiter ruled: no leak")
    ctx.fact("challengeId", challenge_id)

    copy = dev.copy(s.copy_id)
    ctx.expect("copy locked while revealed", 1, locked)
    ctx.expect("challenge state", "Rejected", LEAK_STATES[int(dev.leak(challenge_id)["state"])])
    ctx.expect("collateral slashed", 0, int(copy["slashed"]))
    ctx.expect("copy state", "Active", COPY_STATES[int(copy["state"])])
    ctx.expect("copy unlocked", 0, int(copy["openChallenges"]))
    ctx.expect("griefer gets back (bond less forfeit)", bond - forfeit, griefer.claimable())
    ctx.expect("host gets (counter-bond plus forfeit)", counter + forfeit, s.host.claimable())
    ctx.expect(
        "fingerprint key burned",
        True,
        bool(dev.challenges.functions.keyRevealed(s.copy_id, 3).call()),
    )


def _stolen(args: Mapping[str, Any], copy_id: int) -> LeakEvidence:
    """The fingerprint a pending revealLeak exposes, as a front-runner decodes it."""
    r = args["r"]
    fields: Sequence[Any] = (
        [r[k] for k in ("copyId", "index", "key", "response", "salt", "proof", "evidenceCID")]
        if isinstance(r, Mapping)
        else r
    )
    cid, index, key, response, salt, proof, evidence_cid = fields
    assert int(cid) == copy_id
    return LeakEvidence(
        int(cid),
        int(index),
        bytes(key).decode(),
        bytes(response).decode(),
        bytes(salt),
        [bytes(p) for p in proof],
        str(evidence_cid),
    )


def _committed_ids(ctx: ScenarioContext, block: int) -> dict[str, int]:
    logs = ctx.dev.challenges.events.LeakCommitted().get_logs(from_block=block, to_block=block)
    return {str(log["args"]["challenger"]): int(log["args"]["challengeId"]) for log in logs}


@scenario(
    "front-running-challenger",
    title="Front-running challenger: copying a commit or a reveal from the mempool gains nothing",
    expected="the copied commitment cannot be revealed (CommitmentMismatch), the honest "
    "prover's challenge is upheld and paid; the front-runner's commits expire and it loses "
    "bondForfeitBps of each bond to the treasury",
)
def front_running_challenger(ctx: ScenarioContext) -> None:
    dev = ctx.dev
    s = licensed_copy(ctx)
    honest = bonded_prover(ctx, "prover")
    runner: Prover = bonded_prover(ctx, "front-runner")
    params = dev.params()
    bond = int(params["challengeBond"])
    forfeit = bond * int(params["bondForfeitBps"]) // BPS
    treasury = str(dev.ledger.functions.treasury().call())
    treasury_before = int(dev.ledger.functions.claimable(treasury).call())
    evidence = s.copy.evidence(5, "bafy-transcript-of-the-rogue-endpoint")
    ctx.step(f"the prover caught fingerprint 5 of copy {s.copy_id} on a rogue endpoint")

    dev.node.set_automine(False)
    try:
        honest.send_pending(
            dev.challenges.functions.commitLeak(evidence.commitment(honest.address)), tip=1 * GWEI
        )
        [seen] = dev.mempool(dev.challenges, "commitLeak")
        runner.send_pending(
            dev.challenges.functions.commitLeak(seen.args["commitment"]), tip=5 * GWEI
        )
        commit_block = dev.node.mine()
        dev.node.mine()
        ids = _committed_ids(ctx, commit_block)
        honest_id, runner_id = ids[honest.address], ids[runner.address]
        ctx.step(
            f"front-runner copied the pending commitment with a higher tip: challenges "
            f"{runner_id} (front-runner) and {honest_id} (prover) in block {commit_block}"
        )

        honest_reveal = honest.send_pending(honest.reveal_call(honest_id, evidence), tip=1 * GWEI)
        [pending] = dev.mempool(dev.challenges, "revealLeak")
        stolen = _stolen(pending.args, s.copy_id)
        runner_call = runner.reveal_call(runner_id, stolen)
        mismatch = dev.revert_reason(runner_call, runner.address)
        runner_reveal = runner.send_pending(runner_call, tip=5 * GWEI)
        dev.node.mine()
    finally:
        dev.node.set_automine(True)
    runner_receipt = dev.w3.eth.get_transaction_receipt(runner_reveal)  # type: ignore[arg-type]
    honest_receipt = dev.w3.eth.get_transaction_receipt(honest_reveal)  # type: ignore[arg-type]
    ctx.step(
        f"front-runner revealed the prover's key under its copied commitment first (tx "
        f"index {runner_receipt['transactionIndex']}): reverted, {mismatch}; the "
        f"prover's reveal (index {honest_receipt['transactionIndex']}) went through"
    )
    event_args(dev.challenges, "LeakRevealed", honest_receipt)

    hijack = runner.attempt(runner.reveal_call(honest_id, stolen), "revealLeak")
    late_id = runner.commit_leak(stolen)  # its own commitment to the now public key
    runner.wait_for_reveal(late_id)
    late = runner.attempt(runner.reveal_call(late_id, stolen), "revealLeak")
    ctx.step(
        f"revealing the prover's challenge itself: {hijack}; a fresh commit ({late_id}) of "
        f"the now public key: {late}"
    )

    dev.to_challenge_end(honest_id)
    honest.finalize(honest_id)
    for challenge_id in (runner_id, late_id):
        if dev.node.timestamp() <= int(dev.leak(challenge_id)["deadline"]):
            dev.to_challenge_end(challenge_id)
        runner.finalize(challenge_id)
    ctx.step(
        f"after liveness challenge {honest_id} was finalized; the front-runner's "
        f"commits {runner_id} and {late_id} expired"
    )
    ctx.fact("challengeIds", {"prover": honest_id, "frontRunner": [runner_id, late_id]})

    slashed = COLLATERAL * int(params["leakSlashBps"]) // BPS
    copy = dev.copy(s.copy_id)
    ctx.expect(
        "front-runner's copied reveal mined first",
        True,
        runner_receipt["transactionIndex"] < honest_receipt["transactionIndex"],
    )
    ctx.expect(
        "front-runner's copied reveal",
        ("reverted", "CommitmentMismatch"),
        ("reverted" if runner_receipt["status"] == 0 else "mined", mismatch),
    )
    ctx.expect("revealing the prover's challenge", "NotChallenger", hijack)
    ctx.expect("revealing a burned key", "KeyAlreadyRevealed", late)
    ctx.expect("prover's challenge", "Upheld", LEAK_STATES[int(dev.leak(honest_id)["state"])])
    ctx.expect(
        "front-runner's challenges",
        ["Expired", "Expired"],
        [LEAK_STATES[int(dev.leak(i)["state"])] for i in (runner_id, late_id)],
    )
    ctx.expect("collateral slashed", slashed, int(copy["slashed"]))
    ctx.expect("copy forced into exit", "Exiting", COPY_STATES[int(copy["state"])])
    ctx.expect("prover's reward and bond back", reward_for(ctx, slashed) + bond, honest.claimable())
    ctx.expect(
        "front-runner gets back (bonds less forfeits)", 2 * (bond - forfeit), runner.claimable()
    )
    ctx.expect(
        "treasury receives the forfeits",
        2 * forfeit,
        int(dev.ledger.functions.claimable(treasury).call()) - treasury_before,
    )
