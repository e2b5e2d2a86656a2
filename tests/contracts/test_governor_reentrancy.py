"""ModelGovernor (shares, votes, proposals), the timelock, hostile tokens and re-entrancy."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from omlkit import MIN_COLLATERAL, PRICE, World

WHOLE = 10**18
SET_PRICE, SET_MIN, SET_LICENSING, ACCEPT = 0, 1, 2, 3


def test_majority_owner_executes_at_once(world: World, creator: Any, model: int) -> None:
    pid = world.gov.propose(model, SET_PRICE, 7 * PRICE, sender=creator).return_value
    world.gov.castVote(pid, True, sender=creator)
    assert world.gov.state(pid) == 3  # Succeeded: absolute majority
    world.gov.execute(pid, sender=creator)
    assert world.registry.pricePerCall(model) == 7 * PRICE
    with ape.reverts(world.gov.NotSucceeded, proposalId=pid, state=4):
        world.gov.execute(pid, sender=creator)


def test_quorum_vote_period_and_accept_version(
    world: World, creator: Any, host: Any, other: Any, model: int
) -> None:
    world.gov.transferShares(model, host, WHOLE * 45 // 100, sender=creator)
    world.gov.transferShares(model, other, WHOLE * 10 // 100, sender=creator)
    world.registry.publishVersion(model, "bafyw2", "bafym2", sender=creator)
    world.chain.mine()
    with ape.reverts(world.gov.InvalidValue, value=5):
        world.gov.propose(model, ACCEPT, 5, sender=host)
    pid = world.gov.propose(model, ACCEPT, 1, sender=host).return_value
    world.gov.castVote(pid, True, sender=host)
    with ape.reverts(world.gov.AlreadyVoted, proposalId=pid, voter=host):
        world.gov.castVote(pid, True, sender=host)
    world.gov.castVote(pid, False, sender=other)
    assert world.gov.state(pid) == 1
    with ape.reverts(world.gov.NotSucceeded, proposalId=pid, state=1):
        world.gov.execute(pid, sender=host)
    world.sleep(int(world.gov.votingPeriod()) + 1)
    with ape.reverts(world.gov.VotingClosed, proposalId=pid):
        world.gov.castVote(pid, False, sender=creator)
    world.gov.execute(pid, sender=other)
    assert world.registry.isVersionAccepted(model, 1)


def test_defeated_and_threshold(
    world: World, creator: Any, host: Any, stranger: Any, model: int
) -> None:
    world.gov.transferShares(model, host, WHOLE // 1000, sender=creator)
    world.chain.mine()
    with ape.reverts(world.gov.BelowProposalThreshold):
        world.gov.propose(model, SET_MIN, 1, sender=host)
    with ape.reverts(world.gov.BelowProposalThreshold):
        world.gov.propose(model, SET_MIN, 1, sender=stranger)
    with ape.reverts(world.gov.UnknownModel, modelId=999):
        world.gov.propose(999, SET_MIN, 1, sender=creator)
    with ape.reverts(world.gov.InvalidValue, value=2):
        world.gov.propose(model, SET_LICENSING, 2, sender=creator)
    pid = world.gov.propose(model, SET_MIN, 1, sender=creator).return_value
    with ape.reverts(world.gov.NoVotingPower, voter=stranger):
        world.gov.castVote(pid, True, sender=stranger)
    world.gov.castVote(pid, False, sender=creator)
    world.sleep(int(world.gov.votingPeriod()) + 1)
    assert world.gov.state(pid) == 2
    with ape.reverts(world.gov.UnknownProposal, proposalId=999):
        world.gov.castVote(999, True, sender=creator)
    assert world.registry.minCollateral(model) == MIN_COLLATERAL


def test_shares_checkpoints_and_sum_to_whole(
    world: World, creator: Any, host: Any, other: Any, model: int
) -> None:
    block = world.chain.blocks.height
    world.gov.transferShares(model, host, WHOLE // 3, sender=creator)
    world.gov.transferShares(model, other, WHOLE // 7, sender=host)
    world.chain.mine()
    holders = [creator, host, other]
    assert sum(world.gov.sharesOf(model, h) for h in holders) == WHOLE
    assert world.gov.getPastVotes(model, host, block) == 0
    assert world.gov.getPastVotes(model, creator, block) == WHOLE
    with ape.reverts(world.gov.InsufficientShares):
        world.gov.transferShares(model, other, WHOLE, sender=host)
    with ape.reverts(world.gov.ZeroAmount):
        world.gov.transferShares(model, other, 0, sender=host)
    with ape.reverts(world.gov.ZeroAddress):
        world.gov.transferShares(model, "0x" + "00" * 20, 1, sender=host)
    with ape.reverts(world.gov.Unauthorized, caller=host):
        world.gov.onModelRegistered(model, host, sender=host)


def test_protocol_params_through_the_timelock(accounts: Any, chain: Any, stranger: Any) -> None:
    """In the real deployment only the timelock changes parameters, after its delay."""
    import deploy  # the scripts/ path is set up by omlkit

    c = deploy.deploy_all(accounts[0], accounts[1], accounts[2], accounts[3])
    ledger, timelock = c["UsageLedger"], c["ProtocolTimelock"]
    assert ledger.owner() == timelock.address
    with ape.reverts(ledger.OwnableUnauthorizedAccount):
        ledger.setCuts(100, 100, 100, sender=accounts[0])
    data = ledger.setCuts.encode_input(100, 100, 100)
    zero = b"\x00" * 32
    delay = timelock.getMinDelay()
    timelock.schedule(ledger.address, 0, data, zero, zero, delay, sender=accounts[0])
    with ape.reverts():
        timelock.execute(ledger.address, 0, data, zero, zero, sender=stranger)
    chain.pending_timestamp += delay
    timelock.execute(ledger.address, 0, data, zero, zero, sender=stranger)
    assert ledger.config().treasuryBps == 100


@pytest.fixture(scope="module")
def fot_world(accounts: Any, chain: Any, project: Any) -> World:
    token = accounts[0].deploy(project.FeeOnTransferToken)
    return World(accounts, chain, fee_token=token)


def test_fee_on_transfer_token_is_rejected(fot_world: World, creator: Any, host: Any) -> None:
    w = fot_world
    w.fund(host, 10**12)
    model = w.register(creator)
    with ape.reverts(w.access.FeeOnTransferToken):
        w.request(host, model)


@pytest.fixture(scope="module")
def evil_world(accounts: Any, chain: Any, project: Any) -> World:
    token = accounts[0].deploy(project.ReentrantToken)
    return World(accounts, chain, fee_token=token)


def test_reentrant_claim_and_withdraw_fail(evil_world: World, creator: Any, host: Any) -> None:
    w = evil_world
    w.fund(host, 10**12)
    model = w.register(creator)
    copy_id = w.licensed_copy(host, model)
    w.report(host, copy_id, w.first_epoch(copy_id), 100, 100)
    w.ledger.harvest(model, creator, sender=creator)
    have = int(w.ledger.claimable(creator))
    # re-enter claim while the ledger pays out
    w.token.arm(w.ledger.address, w.ledger.claim.encode_input(1), sender=creator)
    w.ledger.claim(have // 2, sender=creator)
    assert w.token.attempted() and not w.token.reentrySucceeded()
    assert bytes(w.token.reentryError())[:4] == bytes.fromhex("3ee5aeb5")  # ReentrancyGuard
    assert w.ledger.claimable(creator) == have - have // 2
    # re-enter withdraw while the access manager pays out
    w.access.requestExit(copy_id, sender=host)
    end = w.ledger.copyLedger(copy_id).endEpoch
    for epoch in range(w.first_epoch(copy_id) + 1, end + 1):
        w.report(host, copy_id, epoch, 0, 100)
    w.sleep(int(w.access.exitDelay()))
    w.token.arm(w.access.address, w.access.withdraw.encode_input(copy_id), sender=host)
    w.access.withdraw(copy_id, sender=host)
    assert w.token.attempted() and not w.token.reentrySucceeded()
    assert w.token.balanceOf(w.access) == 0


def test_self_transfer_keeps_the_supply(world: World, creator: Any, model: int) -> None:
    """Found by the stateful test: a transfer to oneself once minted shares."""
    world.gov.transferShares(model, creator, WHOLE // 2, sender=creator)
    assert world.gov.sharesOf(model, creator) == WHOLE
