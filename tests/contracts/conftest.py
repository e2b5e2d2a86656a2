"""Shared fixtures of the contract suites (ape + a per-worker Anvil)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from omlkit import World


@pytest.fixture(scope="session")
def owner(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> Any:
    return accounts[9]


@pytest.fixture(scope="session")
def creator(accounts: Any) -> Any:
    return accounts[4]


@pytest.fixture(scope="session")
def host(accounts: Any) -> Any:
    return accounts[5]


@pytest.fixture(scope="session")
def prover_account(accounts: Any) -> Any:
    return accounts[6]


@pytest.fixture(scope="session")
def other(accounts: Any) -> Any:
    return accounts[7]


# Chain-state fixtures are module-scoped: a session fixture first built inside one module is
# lost when ape reverts that module's snapshot, so a later module (or another suite's module
# fixture sharing the worker) would see a model id that no longer exists on chain.
@pytest.fixture(scope="module")
def world(accounts: Any, chain: Any) -> World:
    """The whole protocol, deployed once per module (ape reverts state after every test)."""
    w = World(accounts, chain)
    for account in accounts[4:10]:
        w.fund(account)
    return w


@pytest.fixture(scope="module")
def model(world: World, creator: Any) -> int:
    return world.register(creator)


@pytest.fixture(scope="module")
def copy_id(world: World, host: Any, model: int) -> int:
    return world.licensed_copy(host, model)
