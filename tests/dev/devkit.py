"""Helpers of the dev-tool suites: a private Anvil with the protocol deployed on it."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from web3 import Web3

from tests.support.anvil import private_anvil

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class DeployedChain:
    w3: Web3
    rpc_url: str
    network: str
    deployment: Path


def deploy(rpc_url: str, network: str) -> Path:
    """Deploy the protocol with scripts/deploy.py to ``rpc_url`` (ape, in a subprocess)."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tests" / "dev" / "deploy_protocol.py"), rpc_url, network],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"deploy to {rpc_url} failed:\n{done.stdout}\n{done.stderr}")
    return REPO_ROOT / "deployments" / f"{network}.json"


@contextmanager
def deployed_anvil(prefix: str, extra_args: list[str] | None = None) -> Iterator[DeployedChain]:
    """A private Anvil with the protocol on it, recorded as deployments/test-<prefix>-<id>.json."""
    network = f"test-{prefix}-{uuid.uuid4().hex[:8]}"
    with private_anvil(extra_args) as w3:
        url = str(w3.provider.endpoint_uri)  # type: ignore[attr-defined]
        path = deploy(url, network)
        try:
            yield DeployedChain(w3, url, network, path)
        finally:
            path.unlink(missing_ok=True)
