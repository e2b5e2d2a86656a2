"""Which deployment a dev command uses, and the deployment alias of a forked network.

A fork of a chain holds the origin's contracts at the same addresses, so its deployment record
is the origin's ``deployments/<origin>.json`` with two changes: the ``chainId`` is the fork's
(Anvil forks under the local chain id, 31337, which EIP-712 receipts must be signed for) and a
``forkOf`` block says where it came from. ``oml dev up --fork`` writes it as
``deployments/fork.json`` (``--name`` to choose) and leaves a marker in the run directory so
that dev commands pick it while that Anvil runs. Other agents select it with
``OML_NETWORK=fork`` (``OML_HOST_NETWORK`` / ``OML_ORACLE_NETWORK`` for host and oracle).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from web3 import Web3

from agents.config import REPO_ROOT, Settings, get_settings
from agents.dev.errors import ForkError
from agents.dev.settings import DevSettings
from agents.world import pid_alive, read_pid

FORK_MARKER = "fork.json"
DEFAULT_NETWORK = "local"


def deployments_dir(root: Path = REPO_ROOT) -> Path:
    return root / "deployments"


def active_network(settings: Settings | None = None) -> str:
    """``OML_NETWORK`` if set; else the alias of the fork the local world runs; else local."""
    chosen = DevSettings().network
    if chosen:
        return chosen
    marker = read_fork_marker(settings or get_settings())
    return str(marker["network"]) if marker else DEFAULT_NETWORK


def read_fork_marker(settings: Settings) -> dict[str, Any] | None:
    """The marker of ``oml dev up --fork``, if the Anvil it describes still runs."""
    path = settings.run_dir / FORK_MARKER
    try:
        marker: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid = read_pid(settings.run_dir / "anvil.pid")
    if pid is None or pid != marker.get("anvilPid") or not pid_alive(pid):
        return None
    return marker


def write_fork_marker(settings: Settings, record: dict[str, Any]) -> Path:
    path = settings.run_dir / FORK_MARKER
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def redacted_url(url: str) -> str:
    """Scheme and host only: RPC URLs often carry an API key in the path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


@dataclass(frozen=True)
class OriginDeployment:
    network: str
    path: Path
    record: dict[str, Any]

    @property
    def addresses(self) -> dict[str, str]:
        return {
            name: Web3.to_checksum_address(info["address"])
            for name, info in self.record["contracts"].items()
        }


def _records(root: Path) -> list[OriginDeployment]:
    found = []
    for path in sorted(deployments_dir(root).glob("*.json")):
        try:
            record = json.loads(path.read_text())
            _ = record["chainId"], record["contracts"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append(OriginDeployment(path.stem, path, record))
    return found


def _deployed_at(origin: Web3, deployment: OriginDeployment, block: int) -> bool:
    if int(deployment.record.get("deployBlock", 0)) > block:
        return False
    return all(
        len(origin.eth.get_code(Web3.to_checksum_address(address), block_identifier=block)) > 0
        for address in deployment.addresses.values()
    )


def find_origin_deployment(
    origin: Web3, block: int, *, network: str | None = None, root: Path = REPO_ROOT
) -> OriginDeployment:
    """The deployment record whose contracts live on ``origin`` at ``block``.

    With ``network`` that record is checked; without, every record of the origin's chain id
    (fork aliases excluded) is tried. Records with identical addresses describe the same
    contracts (Anvil deploys are deterministic), so a unique address set is enough; a
    non-test name is preferred.
    """
    chain_id = int(origin.eth.chain_id)
    if network is not None:
        matches = [d for d in _records(root) if d.network == network]
        if not matches:
            raise ForkError(f"{deployments_dir(root) / network}.json does not exist")
        [chosen] = matches
        if not _deployed_at(origin, chosen, block):
            raise ForkError(
                f"the contracts of deployments/{network}.json have no code on the origin at "
                f"block {block}: wrong --origin-network, or a block before the deployment"
            )
        return chosen
    candidates = [
        d
        for d in _records(root)
        if int(d.record["chainId"]) == chain_id
        and "forkOf" not in d.record
        and _deployed_at(origin, d, block)
    ]
    if not candidates:
        raise ForkError(
            f"no deployments/*.json of chain {chain_id} has code on the origin at block {block}; "
            "deploy there first or copy its deployment record into deployments/, then pass "
            "--origin-network NAME"
        )
    address_sets = {tuple(sorted(d.addresses.items())) for d in candidates}
    if len(address_sets) > 1:
        names = ", ".join(d.network for d in candidates)
        raise ForkError(
            f"several deployments match the origin ({names}); pick one with --origin-network"
        )
    candidates.sort(key=lambda d: (d.network.startswith("test"), d.network != "local", d.network))
    return candidates[0]


def write_fork_deployment(
    origin: OriginDeployment,
    name: str,
    *,
    fork_chain_id: int,
    origin_chain_id: int,
    fork_block: int,
    fork_url: str,
    root: Path = REPO_ROOT,
) -> Path:
    """Write ``deployments/<name>.json``: the origin's record under the fork's chain id."""
    if name == origin.network:
        raise ForkError(f"the fork alias must not overwrite its origin's record ({name}.json)")
    record = dict(origin.record)
    record["network"] = name
    record["chainId"] = fork_chain_id
    record["forkOf"] = {
        "network": origin.network,
        "chainId": origin_chain_id,
        "block": fork_block,
        "rpc": redacted_url(fork_url),
    }
    path = deployments_dir(root) / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path
