"""Contracts as the deploy script recorded them in ``deployments/<network>.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3
from web3.contract import Contract

from agents.chain.errors import DeploymentNotFound
from agents.config import REPO_ROOT


@dataclass(frozen=True)
class Deployment:
    """Addresses, ABIs and roles of one deployment of the protocol."""

    network: str
    chain_id: int
    deploy_block: int
    addresses: dict[str, str]
    abis: dict[str, list[dict[str, Any]]]
    roles: dict[str, str]

    @classmethod
    def load(cls, network: str = "local", root: Path = REPO_ROOT) -> Deployment:
        path = root / "deployments" / f"{network}.json"
        if not path.exists():
            raise DeploymentNotFound(
                f"{path} does not exist: deploy first (`make demo` for the local chain)"
            )
        record = json.loads(path.read_text())
        addresses: dict[str, str] = {}
        abis: dict[str, list[dict[str, Any]]] = {}
        for name, info in record["contracts"].items():
            addresses[name] = Web3.to_checksum_address(info["address"])
            abi_path = root / info["abi"]
            if not abi_path.exists():
                raise DeploymentNotFound(
                    f"ABI file {abi_path} for {name} is missing: run `make compile`"
                )
            abis[name] = json.loads(abi_path.read_text())
        return cls(
            network=record.get("network", network),
            chain_id=int(record["chainId"]),
            deploy_block=int(record.get("deployBlock", 0)),
            addresses=addresses,
            abis=abis,
            roles={k: Web3.to_checksum_address(v) for k, v in record.get("roles", {}).items()},
        )

    def contract(self, w3: Web3, name: str) -> Contract:
        if name not in self.addresses:
            known = ", ".join(sorted(self.addresses))
            raise DeploymentNotFound(f"contract {name} is not in this deployment (has: {known})")
        return w3.eth.contract(address=self.addresses[name], abi=self.abis[name])  # type: ignore[call-overload, no-any-return]
