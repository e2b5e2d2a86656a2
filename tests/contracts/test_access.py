"""AccessManager: licence requests, delivery, collateral, exit and withdrawal."""

from __future__ import annotations

from typing import Any

import ape
from omlkit import COPY_CID, ENDPOINT, MIN_COLLATERAL, USD, Fingerprints, World, pubkey


def test_request_access_escrows_collateral_and_emits(world: World, host: Any, model: int) -> None:
    before, total = world.token.balanceOf(host), world.access.totalCollateral()
    tx = world.access.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL, pubkey(host), sender=host)
    [event] = tx.events.filter(world.access.AccessRequested)
    assert (event.modelId, event.host, event.version, event.endpoint) == (model, host, 0, ENDPOINT)
    assert event.collateral == MIN_COLLATERAL and bytes(event.hostPubKey) == pubkey(host)
    assert world.token.balanceOf(host) == before - MIN_COLLATERAL
    copy = world.access.getCopy(event.copyId)
    assert copy.host == host and copy.state == 1 and copy.collateral == MIN_COLLATERAL
    assert world.access.totalCollateral() == total + MIN_COLLATERAL


def test_a_host_may_hold_many_copies(world: World, host: Any, model: int) -> None:
    total = world.access.totalCollateral()
    ids = [world.licensed_copy(host, model) for _ in range(3)]
    assert len(set(ids)) == 3
    assert world.access.totalCollateral() == total + 3 * MIN_COLLATERAL


def test_request_access_reverts(
    world: World, host: Any, other: Any, creator: Any, model: int
) -> None:
    a, key = world.access, pubkey(host)
    with ape.reverts(a.CollateralTooLow, have=MIN_COLLATERAL - 1, need=MIN_COLLATERAL):
        a.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL - 1, key, sender=host)
    with ape.reverts(a.UnknownModel, modelId=99):
        a.requestAccess(99, 0, ENDPOINT, MIN_COLLATERAL, key, sender=host)
    with ape.reverts(a.UnknownVersion, modelId=model, version=3):
        a.requestAccess(model, 3, ENDPOINT, MIN_COLLATERAL, key, sender=host)
    with ape.reverts(a.BadPubKeyLength, length=65):
        a.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL, b"\x04" + key, sender=host)
    with ape.reverts(a.PubKeyMismatch):
        a.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL, pubkey(other), sender=host)
    with ape.reverts(a.EmptyEndpoint):
        a.requestAccess(model, 0, "", MIN_COLLATERAL, key, sender=host)
    free = world.register(creator, min_collateral=0)
    with ape.reverts(a.ZeroAmount):
        a.requestAccess(free, 0, ENDPOINT, 0, key, sender=host)
    unpublished = world.register(creator, publish=False)
    with ape.reverts(a.UnknownVersion, modelId=unpublished, version=0):
        a.requestAccess(unpublished, 0, ENDPOINT, MIN_COLLATERAL, key, sender=host)


def test_unaccepted_version_and_paused_licensing(
    world: World, host: Any, creator: Any, model: int
) -> None:
    world.registry.publishVersion(model, "bafynew", "bafymanifest", sender=creator)
    with ape.reverts(world.access.VersionNotAccepted, modelId=model, version=1):
        world.access.requestAccess(model, 1, ENDPOINT, MIN_COLLATERAL, pubkey(host), sender=host)
    proposal = world.gov.propose(model, 2, 0, sender=creator).return_value
    world.gov.castVote(proposal, True, sender=creator)
    world.gov.execute(proposal, sender=creator)
    with ape.reverts(world.access.LicensingPaused, modelId=model):
        world.access.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL, pubkey(host), sender=host)


def test_paused_and_delisted_token(world: World, host: Any, model: int) -> None:
    world.access.setPaused(True, sender=world.deployer)
    with ape.reverts(world.access.ProtocolPaused):
        world.access.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL, pubkey(host), sender=host)
    world.access.setPaused(False, sender=world.deployer)
    world.ledger.setTokenAllowed(world.token, False, sender=world.deployer)
    with ape.reverts(world.access.TokenNotAllowed, token=world.token):
        world.access.requestAccess(model, 0, ENDPOINT, MIN_COLLATERAL, pubkey(host), sender=host)


def test_deliver_copy(world: World, host: Any, model: int) -> None:
    copy_id = world.request(host, model)
    fp = Fingerprints.make(copy_id)
    tx = world.access.deliverCopy(copy_id, fp.root, 5, COPY_CID, sender=world.oracle)
    [event] = tx.events.filter(world.access.CopyDelivered)
    assert (bytes(event.fpRoot), event.fpCount, event.copyCID) == (fp.root, 5, COPY_CID)
    assert world.access.isDelivered(copy_id)
    assert world.ledger.firstEpoch(copy_id) == world.ledger.currentEpoch()


def test_deliver_copy_reverts(world: World, host: Any, model: int, stranger: Any) -> None:
    copy_id = world.request(host, model)
    root = Fingerprints.make(copy_id).root
    with ape.reverts(world.access.NotOracle, caller=stranger):
        world.access.deliverCopy(copy_id, root, 5, COPY_CID, sender=stranger)
    with ape.reverts(world.access.UnknownCopy, copyId=copy_id + 1):
        world.access.deliverCopy(copy_id + 1, root, 5, COPY_CID, sender=world.oracle)
    with ape.reverts(world.access.BadFingerprints):
        world.access.deliverCopy(copy_id, b"\x00" * 32, 5, COPY_CID, sender=world.oracle)
    with ape.reverts(world.access.BadFingerprints):
        world.access.deliverCopy(copy_id, root, 0, COPY_CID, sender=world.oracle)
    with ape.reverts(world.access.EmptyCID):
        world.access.deliverCopy(copy_id, root, 5, "", sender=world.oracle)
    world.access.deliverCopy(copy_id, root, 5, COPY_CID, sender=world.oracle)
    with ape.reverts(world.access.AlreadyDelivered, copyId=copy_id):
        world.access.deliverCopy(copy_id, root, 5, COPY_CID, sender=world.oracle)


def test_top_up(world: World, host: Any, other: Any, copy_id: int) -> None:
    world.access.topUp(copy_id, 10 * USD, sender=other)
    assert world.access.getCopy(copy_id).collateral == MIN_COLLATERAL + 10 * USD
    with ape.reverts(world.access.ZeroAmount):
        world.access.topUp(copy_id, 0, sender=host)
    with ape.reverts(world.access.UnknownCopy, copyId=999):
        world.access.topUp(999, 1, sender=host)
    world.access.requestExit(copy_id, sender=host)
    with ape.reverts(world.access.WrongState, copyId=copy_id, state=3):
        world.access.topUp(copy_id, 1, sender=host)


def test_exit_and_withdraw_after_delay(
    world: World, host: Any, stranger: Any, copy_id: int
) -> None:
    with ape.reverts(world.access.NotHost, copyId=copy_id, caller=stranger):
        world.access.requestExit(copy_id, sender=stranger)
    with ape.reverts(world.access.WrongState, copyId=copy_id, state=2):
        world.access.withdraw(copy_id, sender=host)
    world.access.requestExit(copy_id, sender=host)
    with ape.reverts(world.access.WrongState, copyId=copy_id, state=3):
        world.access.requestExit(copy_id, sender=host)
    with ape.reverts(world.access.ExitDelayNotOver):
        world.access.withdraw(copy_id, sender=host)
    # the exit epoch must still be reported: the ledger allows it, and nothing after it
    end_epoch = world.ledger.copyLedger(copy_id).endEpoch
    world.sleep(int(world.access.exitDelay()))
    before, total = world.token.balanceOf(host), world.access.totalCollateral()
    tx = world.access.withdraw(copy_id, sender=host)
    assert world.token.balanceOf(host) == before + MIN_COLLATERAL
    assert [e.amount for e in tx.events.filter(world.access.Withdrawn)] == [MIN_COLLATERAL]
    assert world.access.getCopy(copy_id).state == 4
    assert world.access.totalCollateral() == total - MIN_COLLATERAL
    with ape.reverts(world.access.WrongState, copyId=copy_id, state=4):
        world.access.withdraw(copy_id, sender=host)
    assert end_epoch >= world.ledger.firstEpoch(copy_id)


def test_cancel_undelivered_request(world: World, host: Any, model: int) -> None:
    copy_id = world.request(host, model)
    with ape.reverts(world.access.DeliveryTimeoutNotOver):
        world.access.cancelRequest(copy_id, sender=host)
    world.sleep(int(world.access.deliveryTimeout()))
    world.access.cancelRequest(copy_id, sender=host)
    assert world.access.getCopy(copy_id).state == 4
    with ape.reverts(world.access.AlreadyDelivered, copyId=copy_id):
        world.access.deliverCopy(copy_id, b"\x01" * 32, 1, COPY_CID, sender=world.oracle)


def test_exit_delay_must_exceed_challenge_span(world: World) -> None:
    span = int(world.cm.maxChallengeSpan())
    with ape.reverts(world.access.ExitDelayTooShort, exitDelay=span, minimum=span + 1):
        world.access.setParams(span, 600, sender=world.deployer)
    world.access.setParams(span + 1, 600, sender=world.deployer)
    with ape.reverts(world.access.Unauthorized):
        world.access.slash(1, 1, 0, world.deployer, 0, sender=world.deployer)
