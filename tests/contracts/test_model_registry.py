"""ModelRegistry on a real Anvil chain through ape."""

from __future__ import annotations

from typing import Any

import ape
import pytest

MANIFEST = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
WEIGHTS = "bafkreidtuosuw37f5xmn65b3ksdiikajy7pwjjslzj2lxxz2vc4wdy3zku"


@pytest.fixture
def registry(project: Any, owner: Any) -> Any:
    return owner.deploy(project.ModelRegistry)


def test_register_mints_token_to_caller(registry: Any, owner: Any) -> None:
    receipt = registry.registerModel(MANIFEST, sender=owner)
    [event] = receipt.events.filter(registry.ModelRegistered)
    assert event.modelId == 1
    assert registry.ownerOf(1) == owner
    assert registry.nextModelId() == 2


def test_versions_append_and_never_overwrite(registry: Any, owner: Any) -> None:
    registry.registerModel(MANIFEST, sender=owner)
    registry.publishVersion(1, WEIGHTS, MANIFEST, sender=owner)
    registry.publishVersion(1, WEIGHTS + "x", MANIFEST, sender=owner)
    assert registry.versionCount(1) == 2
    assert registry.getVersion(1, 0).weightsCID == WEIGHTS
    assert registry.getVersion(1, 1).weightsCID == WEIGHTS + "x"


def test_publish_by_stranger_reverts(registry: Any, owner: Any, stranger: Any) -> None:
    registry.registerModel(MANIFEST, sender=owner)
    with ape.reverts(registry.NotModelOwner, modelId=1, caller=stranger):
        registry.publishVersion(1, WEIGHTS, MANIFEST, sender=stranger)
    assert registry.versionCount(1) == 0


def test_unknown_model_and_empty_cid_revert(registry: Any, owner: Any) -> None:
    with ape.reverts(registry.UnknownModel, modelId=7):
        registry.publishVersion(7, WEIGHTS, MANIFEST, sender=owner)
    with ape.reverts(registry.EmptyCID):
        registry.registerModel("", sender=owner)
