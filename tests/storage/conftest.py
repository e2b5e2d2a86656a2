"""Fixtures for the storage tests: a client of the real IPFS node, and a lying proxy in front.

The node is the one the test world runs (``make test`` starts it; its URL comes from
``OML_IPFS_API_URL`` / ``OML_IPFS_API_PORT`` through agents.config). Nothing here mocks it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from agents.config import get_settings
from agents.storage.client import IpfsClient

sys.path.insert(0, str(Path(__file__).parent))  # storage_support, storage_reference

from storage_support import LyingProxy, Tamper


@pytest.fixture(scope="session")
def node_url() -> str:
    url = get_settings().ipfs_api_url
    try:
        httpx.post(f"{url}/api/v0/version", timeout=5).raise_for_status()
    except httpx.HTTPError as error:  # a failure, not a skip: these tests need the node
        pytest.fail(f"IPFS node {url} is not answering ({error}); start it with `make up`")
    return url


@pytest.fixture
def client(node_url: str) -> Iterator[IpfsClient]:
    with IpfsClient(node_url, timeout_s=10) as ipfs:
        yield ipfs


@pytest.fixture
def lying_proxy(node_url: str) -> Iterator[Callable[[Tamper], LyingProxy]]:
    proxies: list[LyingProxy] = []

    def start(tamper: Tamper) -> LyingProxy:
        proxies.append(LyingProxy(node_url, tamper))
        return proxies[-1]

    yield start
    for proxy in proxies:
        proxy.close()
