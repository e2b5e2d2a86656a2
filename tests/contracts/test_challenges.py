"""ChallengeManager: provers, provable challenges (immediate slash) and leak challenges."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from omlkit import MIN_COLLATERAL, World, commitment, malleable, signed_receipt

UNDER_BPS, MISSED_BPS, REWARD_BPS = 2500, 500, 3000


@pytest.fixture(scope="module")
def prover(world: World, prover_account: Any) -> Any:
    return world.prover(prover_account)


def reported_copy(world: World, host: Any, copy_id: int, last_seq: int = 5) -> int:
    epoch = world.first_epoch(copy_id)
    world.report(host, copy_id, epoch, last_seq, last_seq)
    return epoch


# ----------------------------------------------------------------- provers


def test_prover_registration_and_exit(world: World, other: Any) -> None:
    bond = world.cm.params().proverBond
    before = world.cm.totalBonds()
    world.cm.registerProver(sender=other)
    assert world.cm.isProver(other) and world.cm.totalBonds() == before + bond
    with ape.reverts(world.cm.AlreadyProver, account=other):
        world.cm.registerProver(sender=other)
    world.cm.unregisterProver(sender=other)
    assert not world.cm.isProver(other)
    assert world.ledger.claimable(other) == bond  # bond back through the pull claim
    with ape.reverts(world.cm.NotProver, account=other):
        world.cm.unregisterProver(sender=other)
    with ape.reverts(world.cm.NotProver, account=other):
        world.cm.commitLeak(b"\x01" * 32, sender=other)


# ----------------------------------------------------------------- under-reporting


def test_receipt_above_reported_seq_slashes(
    world: World, host: Any, prover: Any, copy_id: int
) -> None:
    epoch = reported_copy(world, host, copy_id, last_seq=5)
    receipt, sig = signed_receipt(host, world.cm.address, copy_id, epoch, 6)
    tx = world.cm.challengeUnderReport(receipt, sig, sender=prover)
    slashed = MIN_COLLATERAL * UNDER_BPS // 10_000
    reward = slashed * REWARD_BPS // 10_000
    [event] = tx.events.filter(world.cm.ProvableChallenge)
    assert (event.copyId, event.challenger, event.kind, event.slashed, event.reward) == (
        copy_id,
        prover,
        0,
        slashed,
        reward,
    )
    assert world.access.getCopy(copy_id).collateral == MIN_COLLATERAL - slashed
    assert world.ledger.claimable(prover) >= reward
    model = world.access.getCopy(copy_id).modelId
    assert world.ledger.lineageAccrued(model) >= slashed - reward
    # replaying the same receipt (or another of the same epoch) is refused
    with ape.reverts(world.cm.AlreadyPunished, copyId=copy_id, key=epoch):
        world.cm.challengeUnderReport(receipt, sig, sender=prover)


def test_reward_is_capped(world: World, host: Any, prover: Any, model: int) -> None:
    big = world.licensed_copy(host, model, collateral=40_000 * 10**6)
    epoch = reported_copy(world, host, big)
    receipt, sig = signed_receipt(host, world.cm.address, big, epoch, 99)
    tx = world.cm.challengeUnderReport(receipt, sig, sender=prover)
    [event] = tx.events.filter(world.cm.ProvableChallenge)
    assert event.reward == world.cm.params().challengerRewardCap < event.slashed


def test_under_report_reverts(
    world: World, host: Any, other: Any, prover: Any, copy_id: int
) -> None:
    cm, epoch = world.cm, world.first_epoch(copy_id)
    receipt, sig = signed_receipt(host, cm.address, copy_id, epoch, 6)
    with ape.reverts(cm.EpochNotReported, copyId=copy_id, epoch=epoch):
        cm.challengeUnderReport(receipt, sig, sender=prover)
    reported_copy(world, host, copy_id, last_seq=5)
    honest, honest_sig = signed_receipt(host, cm.address, copy_id, epoch, 5)
    with ape.reverts(cm.NotUnderReported, seq=5, bound=5):
        cm.challengeUnderReport(honest, honest_sig, sender=prover)
    with ape.reverts(cm.InvalidSignature):
        cm.challengeUnderReport(receipt, malleable(sig), sender=prover)
    with ape.reverts(cm.InvalidSignature):
        cm.challengeUnderReport(receipt, sig[:64], sender=prover)
    forged, forged_sig = signed_receipt(other, cm.address, copy_id, epoch, 6)
    with ape.reverts(cm.NotHostSignature):
        cm.challengeUnderReport(forged, forged_sig, sender=prover)
    wrong_chain, wc_sig = signed_receipt(host, cm.address, copy_id, epoch, 6, chain_id=1)
    with ape.reverts(cm.NotHostSignature):
        cm.challengeUnderReport(wrong_chain, wc_sig, sender=prover)
    elsewhere, e_sig = signed_receipt(host, world.ledger.address, copy_id, epoch, 6)
    with ape.reverts(cm.NotHostSignature):
        cm.challengeUnderReport(elsewhere, e_sig, sender=prover)
    with ape.reverts(cm.CopyNotChallengeable, copyId=999):
        r, s = signed_receipt(host, cm.address, 999, epoch, 6)
        cm.challengeUnderReport(r, s, sender=prover)


def test_receipt_for_another_copy_is_not_this_hosts(
    world: World, host: Any, other: Any, prover: Any, model: int, copy_id: int
) -> None:
    theirs = world.licensed_copy(other, model)
    epoch = reported_copy(world, other, theirs)
    receipt, sig = signed_receipt(host, world.cm.address, theirs, epoch, 50)
    with ape.reverts(world.cm.NotHostSignature):
        world.cm.challengeUnderReport(receipt, sig, sender=prover)


# ----------------------------------------------------------------- equivocation, missed report


def test_equivocation_slashes_once(world: World, host: Any, prover: Any, copy_id: int) -> None:
    epoch = world.first_epoch(copy_id)
    a, sa = signed_receipt(host, world.cm.address, copy_id, epoch, 3, prompt="one")
    b, sb = signed_receipt(host, world.cm.address, copy_id, epoch, 3, prompt="two")
    with ape.reverts(world.cm.NotEquivocation):
        world.cm.challengeEquivocation(a, sa, a, sa, sender=prover)
    tx = world.cm.challengeEquivocation(a, sa, b, sb, sender=prover)
    assert [e.kind for e in tx.events.filter(world.cm.ProvableChallenge)] == [1]
    with ape.reverts(world.cm.AlreadyPunished, copyId=copy_id, key=3):
        world.cm.challengeEquivocation(b, sb, a, sa, sender=prover)


def test_missed_report_after_grace(world: World, host: Any, prover: Any, copy_id: int) -> None:
    epoch = world.first_epoch(copy_id)
    world.to_epoch_end(epoch)
    with ape.reverts(world.cm.ReportGraceNotOver):
        world.cm.challengeMissedReport(copy_id, epoch, sender=prover)
    world.sleep(int(world.cm.params().reportGrace))
    tx = world.cm.challengeMissedReport(copy_id, epoch, sender=prover)
    [event] = tx.events.filter(world.cm.ProvableChallenge)
    assert event.kind == 2 and event.slashed == MIN_COLLATERAL * MISSED_BPS // 10_000
    with ape.reverts(world.cm.AlreadyPunished, copyId=copy_id, key=epoch):
        world.cm.challengeMissedReport(copy_id, epoch, sender=prover)
    # the host can still report late; a reported epoch is not "missed"
    world.ledger.reportUsage(copy_id, epoch, 0, 0, sender=host)
    with ape.reverts(world.cm.EpochNotMissed, copyId=copy_id, epoch=epoch):
        world.cm.challengeMissedReport(copy_id, epoch, sender=prover)


def test_no_challenge_after_withdraw(world: World, host: Any, prover: Any, copy_id: int) -> None:
    epoch = world.first_epoch(copy_id)
    world.access.requestExit(copy_id, sender=host)
    end = world.ledger.copyLedger(copy_id).endEpoch
    for e in range(epoch, end + 1):
        world.report(host, copy_id, e, 0, 0)
    world.sleep(int(world.access.exitDelay()))
    world.access.withdraw(copy_id, sender=host)
    receipt, sig = signed_receipt(host, world.cm.address, copy_id, epoch, 1)
    with ape.reverts(world.cm.CopyNotChallengeable, copyId=copy_id):
        world.cm.challengeUnderReport(receipt, sig, sender=prover)


# ----------------------------------------------------------------- leaks


def commit(world: World, prover: Any, copy_id: int, index: int, evidence: str = "bafyev") -> int:
    fp_salt = world_fps[copy_id].salts[index]
    tx = world.cm.commitLeak(
        commitment(prover.address, copy_id, index, fp_salt, evidence), sender=prover
    )
    return int(tx.return_value)


world_fps: dict[int, Any] = {}


@pytest.fixture
def leaked(world: World, host: Any, model: int) -> tuple[int, Any]:
    copy_id = world.request(host, model)
    fp = world.deliver(copy_id)
    world_fps[copy_id] = fp
    return copy_id, fp


def test_undisputed_leak_slashes_after_liveness(
    world: World, host: Any, prover: Any, leaked: tuple[int, Any]
) -> None:
    copy_id, fp = leaked
    cid = commit(world, prover, copy_id, 2)
    tx = world.cm.revealLeak(cid, fp.reveal(2, "bafyev"), sender=prover)
    [event] = tx.events.filter(world.cm.LeakRevealed)
    assert (event.copyId, event.index, bytes(event.key)) == (copy_id, 2, fp.keys[2])
    assert world.cm.keyRevealed(copy_id, 2)
    with ape.reverts(world.cm.TooEarly):
        world.cm.finalizeLeak(cid, sender=prover)
    # a revealed leak locks the collateral: no withdrawal until it is resolved
    world.access.requestExit(copy_id, sender=host)
    world.sleep(int(world.access.exitDelay()))
    with ape.reverts(world.access.ChallengePending, copyId=copy_id, open=1):
        world.access.withdraw(copy_id, sender=host)
    world.cm.finalizeLeak(cid, sender=prover)
    copy = world.access.getCopy(copy_id)
    assert copy.collateral == 0 and copy.slashed == MIN_COLLATERAL and copy.state == 3
    assert world.cm.getLeak(cid).state == 4  # Upheld
    with ape.reverts(world.cm.WrongChallengeState):
        world.cm.finalizeLeak(cid, sender=prover)


def test_reveal_reverts(world: World, prover: Any, other: Any, leaked: tuple[int, Any]) -> None:
    copy_id, fp = leaked
    with ape.reverts(world.cm.UnknownChallenge, challengeId=999):
        world.cm.revealLeak(999, fp.reveal(0), sender=prover)  # reveal without commit
    cid = commit(world, prover, copy_id, 1)
    with ape.reverts(world.cm.NotChallenger):
        world.cm.revealLeak(cid, fp.reveal(1, "bafyev"), sender=other)
    bad_salt = list(fp.reveal(1, "bafyev"))
    bad_salt[4] = b"\x11" * 32
    with ape.reverts(world.cm.CommitmentMismatch, challengeId=cid):
        world.cm.revealLeak(cid, tuple(bad_salt), sender=prover)
    with ape.reverts(world.cm.CommitmentMismatch, challengeId=cid):
        world.cm.revealLeak(cid, fp.reveal(1, "bafyother"), sender=prover)
    # right commitment, wrong proof / wrong response
    bad_proof = list(fp.reveal(1, "bafyev"))
    bad_proof[5] = [b"\x22" * 32] * 3
    with ape.reverts(world.cm.InvalidProof):
        world.cm.revealLeak(cid, tuple(bad_proof), sender=prover)
    bad_response = list(fp.reveal(1, "bafyev"))
    bad_response[3] = b"not the response"
    with ape.reverts(world.cm.InvalidProof):
        world.cm.revealLeak(cid, tuple(bad_response), sender=prover)
    world.cm.revealLeak(cid, fp.reveal(1, "bafyev"), sender=prover)
    # the index is burned: a second challenge on it cannot be revealed
    cid2 = commit(world, prover, copy_id, 1)
    with ape.reverts(world.cm.KeyAlreadyRevealed, copyId=copy_id, index=1):
        world.cm.revealLeak(cid2, fp.reveal(1, "bafyev"), sender=prover)
    out_of_range = world.cm.commitLeak(
        commitment(prover.address, copy_id, 9, fp.salts[0], "x"), sender=prover
    ).return_value
    r = list(fp.reveal(0, "x"))
    r[1] = 9
    with ape.reverts(world.cm.IndexOutOfRange, index=9, fpCount=5):
        world.cm.revealLeak(out_of_range, tuple(r), sender=prover)


def test_disputed_leak_upheld_by_arbiter(
    world: World, host: Any, prover: Any, stranger: Any, leaked: tuple[int, Any]
) -> None:
    copy_id, fp = leaked
    cid = commit(world, prover, copy_id, 0)
    world.cm.revealLeak(cid, fp.reveal(0, "bafyev"), sender=prover)
    with ape.reverts(world.cm.NotAccused, challengeId=cid, caller=stranger):
        world.cm.disputeLeak(cid, sender=stranger)
    world.cm.disputeLeak(cid, sender=host)
    with ape.reverts(world.cm.NotArbiter, caller=stranger):
        world.cm.rule(cid, True, sender=stranger)
    before = int(world.ledger.claimable(prover))
    world.cm.rule(cid, True, sender=world.arbiter)
    bonds = world.cm.params().challengeBond + world.cm.params().counterBond
    reward = world.cm.params().challengerRewardCap
    assert world.ledger.claimable(prover) == before + bonds + min(reward, MIN_COLLATERAL * 3 // 10)
    assert world.cm.getLeak(cid).state == 4


def test_rejected_leak_forfeits_part_of_the_bond(
    world: World, host: Any, prover: Any, leaked: tuple[int, Any]
) -> None:
    copy_id, fp = leaked
    cid = commit(world, prover, copy_id, 3)
    world.cm.revealLeak(cid, fp.reveal(3, "bafyev"), sender=prover)
    world.cm.disputeLeak(cid, sender=host)
    p = world.cm.params()
    before_p, before_h = int(world.ledger.claimable(prover)), int(world.ledger.claimable(host))
    world.cm.rule(cid, False, sender=world.arbiter)
    forfeit = p.challengeBond * p.bondForfeitBps // 10_000
    assert world.ledger.claimable(prover) == before_p + p.challengeBond - forfeit
    assert world.ledger.claimable(host) == before_h + p.counterBond + forfeit
    assert world.access.getCopy(copy_id).collateral == MIN_COLLATERAL
    assert world.cm.getLeak(cid).state == 5


def test_dispute_after_liveness_and_arbiter_timeout(
    world: World, host: Any, prover: Any, leaked: tuple[int, Any]
) -> None:
    copy_id, fp = leaked
    cid = commit(world, prover, copy_id, 4)
    world.cm.revealLeak(cid, fp.reveal(4, "bafyev"), sender=prover)
    world.sleep(int(world.cm.params().liveness) + 1)
    with ape.reverts(world.cm.LivenessOver, challengeId=cid):
        world.cm.disputeLeak(cid, sender=host)
    cid2 = commit(world, prover, copy_id, 0)
    world.cm.revealLeak(cid2, fp.reveal(0, "bafyev"), sender=prover)
    world.cm.disputeLeak(cid2, sender=host)
    world.sleep(int(world.cm.params().arbitrationWindow) + 1)
    with ape.reverts(world.cm.ArbitrationWindowOver, challengeId=cid2):
        world.cm.rule(cid2, True, sender=world.arbiter)
    world.cm.finalizeLeak(cid2, sender=host)
    assert world.cm.getLeak(cid2).state == 6  # TimedOut: bonds back, no slash


def test_unrevealed_commit_expires(world: World, prover: Any, leaked: tuple[int, Any]) -> None:
    copy_id, fp = leaked
    cid = commit(world, prover, copy_id, 0)
    with ape.reverts(world.cm.ProverHasOpenChallenges):
        world.cm.unregisterProver(sender=prover)
    world.sleep(int(world.cm.params().revealWindow) + 1)
    with ape.reverts(world.cm.RevealWindowOver, challengeId=cid):
        world.cm.revealLeak(cid, fp.reveal(0, "bafyev"), sender=prover)
    world.cm.finalizeLeak(cid, sender=prover)
    assert world.cm.getLeak(cid).state == 7
    with ape.reverts(world.cm.ZeroCommitment):
        world.cm.commitLeak(b"\x00" * 32, sender=prover)


def test_params_fit_inside_exit_delay(world: World) -> None:
    p = list(world.cm.params())
    p[6] = int(world.access.exitDelay())  # liveness alone as long as the exit delay
    with ape.reverts(world.cm.WindowsExceedExitDelay):
        world.cm.setParams(tuple(p), sender=world.deployer)
    p = list(world.cm.params())
    p[13] = "0x" + "00" * 20
    with ape.reverts(world.cm.BadParams):
        world.cm.setParams(tuple(p), sender=world.deployer)
