"""Shared fixtures of the contract suites (ape + a per-worker Anvil)."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def owner(accounts: Any) -> Any:
    return accounts[0]


@pytest.fixture(scope="session")
def stranger(accounts: Any) -> Any:
    return accounts[9]
