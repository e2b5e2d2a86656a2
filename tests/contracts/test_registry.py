"""ModelRegistry: registration, lineage flattening and caps, versions, governance-only setters."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from omlkit import MANIFEST, WEIGHTS, World

PPB = 10**9


def test_register_root_mints_token_shares_and_self_table(world: World, creator: Any) -> None:
    tx = world.registry.registerModel([], [], MANIFEST, (5, 7), 0, sender=creator)
    [event] = tx.events.filter(world.registry.ModelRegistered)
    model_id = int(event.modelId)
    assert event.owner == creator
    assert world.registry.ownerOf(model_id) == creator
    assert world.gov.sharesOf(model_id, creator) == 10**18
    ids, weights = world.registry.lineageOf(model_id)
    assert list(ids) == [model_id] and list(weights) == [PPB]
    info = world.registry.modelInfo(model_id)
    assert (info.pricePerCall, info.minCollateral, info.depth, info.licensingOpen) == (
        5,
        7,
        0,
        True,
    )


def test_derivative_table_is_flattened_in_absolute_weights(world: World, creator: Any) -> None:
    a = world.register(creator)
    b = world.register(creator, [a], [2000])
    c = world.register(creator, [b, a], [1000, 500])
    ids, weights = world.registry.lineageOf(c)
    table = dict(zip(ids, weights, strict=True))
    assert table == {a: 70_000_000, b: 80_000_000, c: 850_000_000}
    assert sum(weights) == PPB
    assert world.registry.modelInfo(c).depth == 2
    assert list(world.registry.parentsOf(c)) == [b, a]


@pytest.mark.parametrize(
    ("parents", "shares", "error", "kwargs"),
    [
        ([1, 2, 3, 4, 5], [1, 1, 1, 1, 1], "TooManyParents", {"count": 5, "max": 4}),
        ([1], [1, 2], "LengthMismatch", {}),
        ([999], [100], "UnknownModel", {"modelId": 999}),
        ([1, 1], [100, 100], "DuplicateParent", {"parentId": 1}),
        ([1], [0], "ZeroShare", {"parentId": 1}),
        ([1, 2], [6000, 5000], "RoyaltyStackTooHigh", {"stackBps": 11000, "maxBps": 10000}),
    ],
)
def test_register_rejects_bad_lineage(
    world: World, creator: Any, parents: list[int], shares: list[int], error: str, kwargs: Any
) -> None:
    for _ in range(5):
        world.register(creator, publish=False)
    with ape.reverts(getattr(world.registry, error), **kwargs):
        world.registry.registerModel(parents, shares, MANIFEST, (1, 1), 10_000, sender=creator)


def test_self_parent_and_empty_cid_revert(world: World, creator: Any) -> None:
    next_id = int(world.registry.nextModelId())
    with ape.reverts(world.registry.SelfAncestry, modelId=next_id):
        world.registry.registerModel([next_id], [100], MANIFEST, (1, 1), 10_000, sender=creator)
    with ape.reverts(world.registry.EmptyCID):
        world.registry.registerModel([], [], "", (1, 1), 0, sender=creator)


def test_max_royalty_stack_protects_the_registrant(world: World, creator: Any) -> None:
    a = world.register(creator)
    with ape.reverts(world.registry.RoyaltyStackTooHigh, stackBps=3000, maxBps=2999):
        world.registry.registerModel([a], [3000], MANIFEST, (1, 1), 2999, sender=creator)
    world.registry.registerModel([a], [3000], MANIFEST, (1, 1), 3000, sender=creator)


def test_depth_cap(world: World, creator: Any) -> None:
    model_id = world.register(creator, publish=False)
    for _ in range(8):
        model_id = world.register(creator, [model_id], [1000], publish=False)
    assert world.registry.modelInfo(model_id).depth == 8
    with ape.reverts(world.registry.DepthTooHigh, depth=9, max=8):
        world.registry.registerModel([model_id], [1000], MANIFEST, (1, 1), 10_000, sender=creator)


def test_ancestor_cap(world: World, creator: Any) -> None:
    """4 parents with 7 roots each = 32 ancestors allowed; one more distinct ancestor is not."""
    mids = []
    for _ in range(4):
        roots = [world.register(creator, publish=False) for _ in range(3)]
        mids.append(world.register(creator, roots, [100, 100, 100], publish=False))
    # each mid brings itself + 3 roots = 4 ancestors -> 16; go one level further
    tops = []
    for i in range(2):
        tops.append(world.register(creator, mids[2 * i : 2 * i + 2], [100, 100], publish=False))
    # each top: itself + 2 mids + 6 roots = 9 ancestors
    a = world.register(creator, tops, [100, 100], publish=False)  # 1 + 18 = 19 ancestors
    assert world.registry.modelInfo(a).ancestorCount == 18
    extra_roots = [world.register(creator, publish=False) for _ in range(13)]
    b = world.register(creator, extra_roots[:3], [100, 100, 100], publish=False)
    c = world.register(creator, extra_roots[3:6], [100, 100, 100], publish=False)
    d = world.register(creator, extra_roots[6:9], [100, 100, 100], publish=False)
    # a(19) + b(4) + c(4) + d(4) = 31 ancestors
    full = world.register(creator, [a, b, c, d], [100, 100, 100, 100], publish=False)
    assert world.registry.modelInfo(full).ancestorCount == 31
    e = world.register(creator, extra_roots[9:11], [100, 100], publish=False)
    # a(19) + b(4) + c(4) + e(3) = 30 -> fine; with d's 4 instead of e: 31; need 33
    f = world.register(creator, [d, extra_roots[11]], [100, 100], publish=False)  # 5
    g = world.register(creator, [e, extra_roots[12]], [100, 100], publish=False)  # 5
    # a(19) + b(4) + f(5) + g(5) = 33 > 32
    with ape.reverts(world.registry.TooManyAncestors, count=33, max=32):
        world.registry.registerModel(
            [a, b, f, g], [100] * 4, MANIFEST, (1, 1), 10_000, sender=creator
        )


def test_versions_append_accept_first_and_never_overwrite(world: World, creator: Any) -> None:
    model_id = world.register(creator, publish=False)
    tx = world.registry.publishVersion(model_id, WEIGHTS, MANIFEST, sender=creator)
    assert [e.version for e in tx.events.filter(world.registry.VersionAccepted)] == [0]
    world.registry.publishVersion(model_id, WEIGHTS + "x", MANIFEST, sender=creator)
    assert world.registry.versionCount(model_id) == 2
    assert world.registry.getVersion(model_id, 0).weightsCID == WEIGHTS
    assert world.registry.getVersion(model_id, 1).weightsCID == WEIGHTS + "x"
    assert world.registry.isVersionAccepted(model_id, 0)
    assert not world.registry.isVersionAccepted(model_id, 1)
    with ape.reverts(world.registry.UnknownVersion, modelId=model_id, version=2):
        world.registry.getVersion(model_id, 2)


def test_publish_reverts(world: World, creator: Any, stranger: Any) -> None:
    model_id = world.register(creator, publish=False)
    with ape.reverts(world.registry.NotModelOwner, modelId=model_id, caller=stranger):
        world.registry.publishVersion(model_id, WEIGHTS, MANIFEST, sender=stranger)
    with ape.reverts(world.registry.UnknownModel, modelId=777):
        world.registry.publishVersion(777, WEIGHTS, MANIFEST, sender=creator)
    with ape.reverts(world.registry.EmptyCID):
        world.registry.publishVersion(model_id, "", MANIFEST, sender=creator)


def test_terms_only_by_governor_and_wiring_once(world: World, creator: Any, model: int) -> None:
    for call in (
        lambda: world.registry.setPrice(model, 1, sender=creator),
        lambda: world.registry.setMinCollateral(model, 1, sender=creator),
        lambda: world.registry.setLicensingOpen(model, False, sender=creator),
        lambda: world.registry.acceptVersion(model, 0, sender=creator),
    ):
        with ape.reverts(world.registry.NotGovernor, caller=creator):
            call()
    with ape.reverts(world.registry.AlreadyWired):
        world.registry.setGovernor(creator, sender=world.deployer)
