"""Anvil's cheatcodes (``anvil_*`` / ``evm_*``) behind typed methods.

Time moves only forward here: ``advance`` adds seconds, ``warp_to`` sets the next block's
timestamp; both mine a block so that views (``block.timestamp``) see the new time at once.
"""

from __future__ import annotations

from typing import Any, cast

from web3 import Web3
from web3.types import RPCEndpoint

from agents.dev.errors import DevError, NotAnvil


def connect(rpc_url: str, timeout_s: float = 60.0) -> Web3:
    return Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout_s}))


class AnvilNode:
    """One Anvil node (plain or forking), addressed by its JSON-RPC URL."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    @classmethod
    def at(cls, rpc_url: str) -> AnvilNode:
        node = cls(connect(rpc_url))
        node.require_anvil()
        return node

    @property
    def rpc_url(self) -> str:
        return str(getattr(self.w3.provider, "endpoint_uri", ""))

    def rpc(self, method: str, *params: Any) -> Any:
        response = self.w3.provider.make_request(RPCEndpoint(method), list(params))
        if "error" in response:
            error = cast(dict[str, Any], response["error"])
            raise DevError(f"{method} failed: {error.get('message', error)}")
        return response.get("result")

    # ------------------------------------------------------------------ identity

    def client_version(self) -> str:
        try:
            return str(self.rpc("web3_clientVersion"))
        except (DevError, OSError) as error:
            raise NotAnvil(f"no node answers at {self.rpc_url}: {error}") from error

    def require_anvil(self) -> None:
        version = self.client_version()
        if not version.lower().startswith("anvil"):
            raise NotAnvil(
                f"{self.rpc_url} runs {version!r}, not Anvil: dev commands rewrite chain state "
                "and only work on a local or forked Anvil (`oml world up` / `oml dev up --fork`)"
            )

    def fork_config(self) -> dict[str, Any]:
        """``{"forkUrl": ..., "forkBlockNumber": ...}`` when forking, else ``{}``."""
        info = self.rpc("anvil_nodeInfo")
        fork = (info or {}).get("forkConfig") or {}
        return {k: v for k, v in fork.items() if v is not None}

    # ------------------------------------------------------------------ time and blocks

    def timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def mine(self, blocks: int = 1) -> int:
        """Mine ``blocks`` blocks; return the new head."""
        if blocks < 1:
            raise DevError(f"cannot mine {blocks} blocks; give a positive number")
        self.rpc("anvil_mine", hex(blocks))
        return self.block_number()

    def advance(self, seconds: int) -> int:
        """Mine one block ``seconds`` after the latest one (at least 1 s); return its time."""
        if seconds < 0:
            raise DevError("time only moves forward; use `oml dev revert` to go back")
        return self.warp_to(self.timestamp() + max(seconds, 1))

    def warp_to(self, timestamp: int) -> int:
        """Mine one block at ``timestamp`` (or one second later than now, if that is past)."""
        target = max(timestamp, self.timestamp() + 1)
        self.rpc("evm_setNextBlockTimestamp", target)
        self.mine()
        return self.timestamp()

    def set_automine(self, enabled: bool) -> None:
        self.rpc("evm_setAutomine", enabled)

    def automine(self) -> bool:
        return bool(self.rpc("anvil_getAutomine"))

    # ------------------------------------------------------------------ state

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        """Revert to ``snapshot_id`` (each snapshot can be reverted to once)."""
        return bool(self.rpc("evm_revert", snapshot_id))

    def set_balance(self, address: str, wei: int) -> None:
        self.rpc("anvil_setBalance", Web3.to_checksum_address(address), hex(wei))

    def impersonate(self, address: str) -> None:
        self.rpc("anvil_impersonateAccount", Web3.to_checksum_address(address))

    def stop_impersonating(self, address: str) -> None:
        self.rpc("anvil_stopImpersonatingAccount", Web3.to_checksum_address(address))
