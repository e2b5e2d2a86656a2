"""UsageLedger + FeeRouter: reports, payment, split, lineage settlement, harvest and claims."""

from __future__ import annotations

from typing import Any

import ape
from omlkit import PRICE, USD, World


def test_report_pays_calls_times_price_and_splits(world: World, host: Any, copy_id: int) -> None:
    first = world.first_epoch(copy_id)
    before = world.token.balanceOf(host)
    tx = world.report(host, copy_id, first, 10, 10)
    fee = 10 * PRICE
    [event] = tx.events.filter(world.ledger.UsageReported)
    assert (event.copyId, event.epoch, event.calls, event.lastSeq, event.fee) == (
        copy_id,
        first,
        10,
        10,
        fee,
    )
    assert world.token.balanceOf(host) == before - fee
    protocol = fee * 1500 // 10_000
    assert world.ledger.config().protocolUnsplit == protocol
    model = world.access.getCopy(copy_id).modelId
    assert world.ledger.lineageAccrued(model) == fee - protocol
    report = world.ledger.getReport(copy_id, first)
    assert (report.reported, report.known, report.calls, report.lastSeq) == (True, True, 10, 10)
    assert world.ledger.pricePerCall(copy_id) == PRICE


def test_reports_in_order_with_consistent_seqs(world: World, host: Any, copy_id: int) -> None:
    e = world.first_epoch(copy_id)
    world.report(host, copy_id, e, 3, 3)
    world.report(host, copy_id, e + 1, 0, 3)  # an idle epoch is reported too
    world.report(host, copy_id, e + 2, 4, 7)
    assert world.ledger.getReport(copy_id, e + 2).calls == 4
    assert world.ledger.copyLedger(copy_id).nextEpoch == e + 3
    assert tuple(world.ledger.seqBound(copy_id, e)) == (True, 3)


def test_report_reverts(world: World, host: Any, stranger: Any, copy_id: int) -> None:
    ledger, e = world.ledger, world.first_epoch(copy_id)
    with ape.reverts(ledger.EpochNotClosed):
        ledger.reportUsage(copy_id, e, 1, 1, sender=host)  # still open
    with ape.reverts(ledger.EpochNotClosed):
        ledger.reportUsage(copy_id, e + 5, 1, 1, sender=host)  # future
    world.to_epoch_end(e + 1)
    with ape.reverts(ledger.NotCopyHost, copyId=copy_id, caller=stranger):
        ledger.reportUsage(copy_id, e, 1, 1, sender=stranger)
    with ape.reverts(ledger.UnknownCopy, copyId=999):
        ledger.reportUsage(999, e, 1, 1, sender=host)
    with ape.reverts(ledger.EpochOutOfOrder, epoch=e + 1, expected=e):
        ledger.reportUsage(copy_id, e + 1, 1, 1, sender=host)
    with ape.reverts(ledger.CallsMismatch, calls=2, expected=5):
        ledger.reportUsage(copy_id, e, 2, 5, sender=host)
    ledger.reportUsage(copy_id, e, 5, 5, sender=host)
    with ape.reverts(ledger.AlreadyReported, copyId=copy_id, epoch=e):
        ledger.reportUsage(copy_id, e, 5, 5, sender=host)
    with ape.reverts(ledger.SeqWentBackwards, lastSeq=4, previous=5):
        ledger.reportUsage(copy_id, e + 1, 0, 4, sender=host)
    world.ledger.setPaused(True, sender=world.deployer)
    with ape.reverts(ledger.ProtocolPaused):
        ledger.reportUsage(copy_id, e + 1, 0, 5, sender=host)


def test_no_report_after_the_exit_epoch(world: World, host: Any, copy_id: int) -> None:
    e = world.first_epoch(copy_id)
    world.access.requestExit(copy_id, sender=host)
    end = world.ledger.copyLedger(copy_id).endEpoch
    for epoch in range(e, end + 1):
        world.report(host, copy_id, epoch, 0, 0)
    world.to_epoch_end(end + 1)
    with ape.reverts(world.ledger.EpochAfterExit, epoch=end + 1, endEpoch=end):
        world.ledger.reportUsage(copy_id, end + 1, 0, 0, sender=host)


def test_fee_is_o1_of_lineage_then_settles_through_flattened_table(
    world: World, creator: Any, other: Any, host: Any
) -> None:
    root = world.register(creator)
    child = world.register(other, [root], [2500])
    copy_id = world.licensed_copy(host, child)
    world.report(host, copy_id, world.first_epoch(copy_id), 1000, 1000)
    lineage = 1000 * PRICE * 8500 // 10_000
    assert world.ledger.lineageAccrued(child) == lineage
    assert world.ledger.accPerShare(root) == 0  # nothing walked the tree yet
    world.ledger.settleLineage(child, sender=host)
    assert world.ledger.modelOutstanding(root) == lineage // 4
    assert world.ledger.modelOutstanding(child) == lineage - lineage // 4
    # holders harvest pro rata into claimable, then claim tokens
    world.gov.transferShares(root, host, 10**18 // 4, sender=creator)
    world.ledger.harvest(root, creator, sender=creator)
    world.ledger.harvest(root, host, sender=host)
    # revenue settled before the transfer stays with the seller
    assert world.ledger.claimable(creator) == lineage // 4
    assert world.ledger.claimable(host) == 0
    before = world.token.balanceOf(creator)
    amount = int(world.ledger.claimable(creator))
    tx = world.ledger.claim(amount, sender=creator)
    assert [(e.account, e.amount) for e in tx.events.filter(world.ledger.Claimed)] == [
        (creator, amount)
    ]
    assert world.token.balanceOf(creator) == before + amount
    accrued, claimed = world.ledger.accounting(creator)
    assert claimed == amount <= accrued


def test_claim_reverts(world: World, creator: Any, host: Any, copy_id: int) -> None:
    with ape.reverts(world.ledger.ZeroAmount):
        world.ledger.claim(0, sender=creator)
    with ape.reverts(world.ledger.InsufficientClaimable, have=0, want=1):
        world.ledger.claimAll(sender=creator)
    world.report(host, copy_id, world.first_epoch(copy_id), 100, 100)
    model = world.access.getCopy(copy_id).modelId
    world.ledger.harvest(model, creator, sender=creator)
    have = int(world.ledger.claimable(creator))
    assert have > 0
    with ape.reverts(world.ledger.InsufficientClaimable, have=have, want=have + 1):
        world.ledger.claim(have + 1, sender=creator)
    world.ledger.claimAll(sender=creator)
    with ape.reverts(world.ledger.InsufficientClaimable, have=0, want=have):
        world.ledger.claim(have, sender=creator)  # claim twice


def test_protocol_cut_split_prover_pool_and_dust(
    world: World, host: Any, creator: Any, prover_account: Any, copy_id: int
) -> None:
    if not world.cm.isProver(prover_account):  # another suite may have registered it
        world.prover(prover_account)
    world.report(host, copy_id, world.first_epoch(copy_id), 333, 333)
    fee = 333 * PRICE
    protocol = fee * 1500 // 10_000
    t0, i0 = world.ledger.claimable(world.treasury), world.ledger.claimable(world.infra)
    world.ledger.splitProtocolFees(sender=host)
    t = world.ledger.claimable(world.treasury) - t0
    i = world.ledger.claimable(world.infra) - i0
    assert t == protocol * 500 // 1500 and i == protocol * 500 // 1500
    before = int(world.ledger.claimable(prover_account))
    world.ledger.harvestProver(prover_account, sender=prover_account)
    share = (protocol - t - i) // int(world.ledger.proverCount())
    assert world.ledger.claimable(prover_account) == before + share
    model = world.access.getCopy(copy_id).modelId
    world.ledger.settleLineage(model, sender=host)
    assert world.ledger.dust() == 0  # a root's table is exact
    with ape.reverts(world.ledger.ZeroAmount):
        world.ledger.sweepDust(sender=host)


def test_dust_is_tracked_and_swept_to_treasury(world: World, creator: Any, host: Any) -> None:
    a = world.register(creator)
    b = world.register(creator, [a], [3333])
    copy_id = world.licensed_copy(host, b)
    world.report(host, copy_id, world.first_epoch(copy_id), 7, 7)
    world.ledger.settleLineage(b, sender=host)
    accrued = int(world.ledger.lineageAccrued(b))
    outstanding = int(world.ledger.modelOutstanding(a)) + int(world.ledger.modelOutstanding(b))
    dust = int(world.ledger.dust())
    assert outstanding + dust == accrued and dust > 0
    before = int(world.ledger.claimable(world.treasury))
    world.ledger.sweepDust(sender=host)
    assert world.ledger.claimable(world.treasury) == before + dust


def test_governance_setters(world: World, stranger: Any) -> None:
    with ape.reverts(world.ledger.CutsTooHigh, totalBps=3001, maxBps=3000):
        world.ledger.setCuts(1001, 1000, 1000, sender=world.deployer)
    with ape.reverts(world.ledger.OwnableUnauthorizedAccount):
        world.ledger.setCuts(1, 1, 1, sender=stranger)
    with ape.reverts(world.ledger.AlreadyWired):
        world.ledger.wire(stranger, stranger, stranger, sender=world.deployer)
    with ape.reverts(world.ledger.Unauthorized, caller=stranger):
        world.ledger.creditAccount(stranger, 1, sender=stranger)
    assert world.token.decimals() == 6
    with ape.reverts(world.token.FaucetCapExceeded):
        world.token.faucet(100_001 * USD, sender=stranger)
