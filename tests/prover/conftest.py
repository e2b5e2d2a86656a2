"""Fixtures of the prover tests: one world per module (Anvil + IPFS + oracle + key service),
fresh host servers, a fresh key-release record and a fresh prover per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from proverkit import REPO_ROOT, Host, World, build_world


@pytest.fixture(scope="module")
def world(accounts: Any, chain: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from agents.config import get_settings

    patch = pytest.MonkeyPatch()
    built = build_world(accounts, chain, tmp_path_factory.mktemp("prover-world"), patch.setenv)
    try:
        yield built
    finally:
        built.key_service.stop()
        (REPO_ROOT / "deployments" / f"{built.network}.json").unlink(missing_ok=True)
        patch.undo()
        get_settings.cache_clear()


@pytest.fixture
def fresh_world(world: World) -> World:
    """The world as the (reverted) chain sees it: no key released yet."""
    world.reset_key_service()
    return world


@pytest.fixture
def hosts(fresh_world: World, tmp_path: Path) -> Iterator[dict[str, Host]]:
    """Both licensed hosts serving their copies, each with a fresh receipt ledger."""
    started = {
        name: fresh_world.host(name).start(tmp_path / f"ledger-{name}.sqlite3")
        for name in ("a", "b")
    }
    yield started
    for host in started.values():
        host.stop()
