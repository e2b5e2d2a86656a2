"""Typed access to the deployed protocol: the calls every role shares, in one place.

Roles (creator, host, oracle, prover) build on this instead of touching ABIs directly; every
transaction goes through :class:`~agents.chain.transactions.TransactionSender`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from agents.chain.deployments import Deployment
from agents.chain.keystore import public_key_bytes
from agents.chain.transactions import TransactionSender
from agents.config import get_settings


@dataclass(frozen=True)
class VersionInfo:
    weights_cid: str
    manifest_cid: str
    accepted: bool


@dataclass(frozen=True)
class CopyInfo:
    copy_id: int
    host: str
    model_id: int
    version: int
    state: int
    collateral: int
    fp_root: bytes
    fp_count: int


class Protocol:
    """One account's connection to one deployment of the protocol."""

    def __init__(self, w3: Web3, deployment: Deployment, account: LocalAccount) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.sender = TransactionSender(w3, account)
        for abi in deployment.abis.values():
            self.sender.add_error_abis(abi)
        self._fee_token: Contract | None = None

    @classmethod
    def connect(cls, account: LocalAccount, network: str = "local", rpc_url: str | None = None
                ) -> Protocol:  # fmt: skip
        w3 = Web3(Web3.HTTPProvider(rpc_url or get_settings().rpc_url,
                                    request_kwargs={"timeout": 60}))  # fmt: skip
        return cls(w3, Deployment.load(network), account)

    def contract(self, name: str) -> Contract:
        return self.deployment.contract(self.w3, name)

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    # ------------------------------------------------------------------ token

    def fee_token(self) -> Contract:
        """The ERC-20 the ledger charges in (MockUSD in development, any allowed token live)."""
        if self._fee_token is None:
            address = self.contract("UsageLedger").functions.feeToken().call()
            self._fee_token = self.w3.eth.contract(address=address,
                                                   abi=self.deployment.abis["MockUSD"])  # fmt: skip
        return self._fee_token

    def ensure_allowance(self, spender: str, amount: int) -> None:
        token = self.fee_token()
        if token.functions.allowance(self.account.address, spender).call() < amount:
            self.sender.send(token.functions.approve(spender, amount), label="approve")

    def faucet(self, amount: int) -> None:
        # the faucet exists on the development token only
        self.sender.send(self.contract("MockUSD").functions.faucet(amount), label="faucet")

    def token_balance(self, address: str | None = None) -> int:
        owner = address or self.account.address
        return int(self.fee_token().functions.balanceOf(owner).call())

    # ------------------------------------------------------------------ registry

    def register_model(self, manifest_cid: str, *, price_per_call: int, min_collateral: int,
                       parents: list[int] | None = None, share_bps: list[int] | None = None,
                       max_royalty_stack: int = 10_000) -> int:  # fmt: skip
        registry = self.contract("ModelRegistry")
        receipt = self.sender.send(
            registry.functions.registerModel(
                parents or [], share_bps or [], manifest_cid,
                (price_per_call, min_collateral), max_royalty_stack,
            ),
            label="registerModel",
        )  # fmt: skip
        [event] = registry.events.ModelRegistered().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["modelId"])

    def publish_version(self, model_id: int, weights_cid: str, manifest_cid: str) -> int:
        registry = self.contract("ModelRegistry")
        receipt = self.sender.send(
            registry.functions.publishVersion(model_id, weights_cid, manifest_cid),
            label="publishVersion",
        )
        [event] = registry.events.VersionPublished().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["version"])

    def version(self, model_id: int, version: int) -> VersionInfo:
        raw = self.contract("ModelRegistry").functions.getVersion(model_id, version).call()
        return VersionInfo(weights_cid=raw[0], manifest_cid=raw[1], accepted=bool(raw[3]))

    # ------------------------------------------------------------------ access

    def request_access(self, model_id: int, version: int, endpoint: str, collateral: int) -> int:
        access = self.contract("AccessManager")
        self.ensure_allowance(access.address, collateral)
        receipt = self.sender.send(
            access.functions.requestAccess(model_id, version, endpoint, collateral,
                                           public_key_bytes(self.account)),
            label="requestAccess",
        )  # fmt: skip
        [event] = access.events.AccessRequested().process_receipt(receipt, errors=DISCARD)
        return int(event["args"]["copyId"])

    def copy(self, copy_id: int) -> CopyInfo:
        raw: Any = self.contract("AccessManager").functions.getCopy(copy_id).call()
        fields = dict(zip([c["name"] for c in self._copy_components()], raw, strict=True))
        return CopyInfo(
            copy_id=copy_id, host=fields["host"], model_id=int(fields["modelId"]),
            version=int(fields["version"]), state=int(fields["state"]),
            collateral=int(fields["collateral"]), fp_root=bytes(fields["fpRoot"]),
            fp_count=int(fields["fpCount"]),
        )  # fmt: skip

    def _copy_components(self) -> list[dict[str, Any]]:
        for item in self.deployment.abis["AccessManager"]:
            if item.get("name") == "getCopy":
                return list(item["outputs"][0]["components"])
        raise KeyError("AccessManager ABI has no getCopy")

    def is_delivered(self, copy_id: int) -> bool:
        return bool(self.contract("AccessManager").functions.isDelivered(copy_id).call())

    def deliver_copy(self, copy_id: int, fp_root: bytes, fp_count: int, copy_cid: str) -> str:
        receipt = self.sender.send(
            self.contract("AccessManager").functions.deliverCopy(copy_id, fp_root, fp_count,
                                                                 copy_cid),
            label="deliverCopy",
        )  # fmt: skip
        return str(receipt["transactionHash"].to_0x_hex())

    def delivered_cid(self, copy_id: int) -> str | None:
        """The copyCID from the CopyDelivered event, if the copy was delivered."""
        access = self.contract("AccessManager")
        logs = access.events.CopyDelivered().get_logs(
            from_block=self.deployment.deploy_block, argument_filters={"copyId": copy_id}
        )
        return str(logs[-1]["args"]["copyCID"]) if logs else None

    def is_prover(self, address: str) -> bool:
        return bool(self.contract("ChallengeManager").functions.isProver(address).call())
