"""``oml dev up --fork``: the local world's Anvil forking a network, with its deployment alias."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from agents.config import Settings
from agents.dev.errors import ForkError
from agents.dev.network import (
    find_origin_deployment,
    write_fork_deployment,
    write_fork_marker,
)
from agents.dev.node import AnvilNode, connect
from agents.world import WorldError, down, read_pid, status, up


@dataclass(frozen=True)
class ForkResult:
    network: str
    origin_network: str
    deployment: Path
    fork_block: int
    rpc_url: str
    chain_id: int


def fork_up(
    settings: Settings,
    fork_url: str,
    block: int | None = None,
    *,
    origin_network: str | None = None,
    name: str = "fork",
    restart: bool = False,
    timeout_s: float = 90.0,
) -> ForkResult:
    """Start (or keep) the local world forking ``fork_url`` and alias the origin's deployment.

    The fork block is pinned (latest when not given) so that the deployment check on the
    origin and the fork agree. An Anvil already running under the world's pid file is kept
    when it forks the same URL at the same block; otherwise ``restart`` must be given.
    """
    origin = connect(fork_url, timeout_s=30)
    try:
        origin_chain_id = int(origin.eth.chain_id)
        fork_block = int(origin.eth.block_number) if block is None else block
    except Exception as error:  # any transport failure: say where
        raise ForkError(f"cannot reach the origin RPC {fork_url}: {error}") from error
    deployment = find_origin_deployment(origin, fork_block, network=origin_network)
    forking = settings.model_copy(update={"fork_url": fork_url, "fork_block": fork_block})
    _stop_if_other_chain(forking, fork_url, fork_block, restart)
    try:
        up(forking, timeout_s=timeout_s)
    except WorldError as error:
        raise ForkError(str(error)) from error
    node = AnvilNode.at(settings.rpc_url)
    chain_id = int(node.w3.eth.chain_id)
    path = write_fork_deployment(
        deployment,
        name,
        fork_chain_id=chain_id,
        origin_chain_id=origin_chain_id,
        fork_block=fork_block,
        fork_url=fork_url,
    )
    write_fork_marker(
        settings,
        {
            "network": name,
            "origin": deployment.network,
            "block": fork_block,
            "anvilPid": read_pid(settings.run_dir / "anvil.pid"),
        },
    )
    return ForkResult(name, deployment.network, path, fork_block, settings.rpc_url, chain_id)


def _stop_if_other_chain(settings: Settings, fork_url: str, block: int, restart: bool) -> None:
    anvil = status(settings)["anvil"]
    if anvil["pid"] is None:
        return
    fork = AnvilNode(connect(settings.rpc_url)).fork_config() if anvil["answering"] else {}
    same = fork.get("forkUrl") == fork_url and int(fork.get("forkBlockNumber", -1)) == block
    if same:
        return
    if not restart:
        what = f"forking {fork.get('forkUrl')}" if fork else "a plain chain"
        raise ForkError(
            f"the local world's Anvil (pid {anvil['pid']}) already runs {what}; stop it with "
            "`oml world down`, or pass --restart to replace it (its state is lost)"
        )
    down(settings)
