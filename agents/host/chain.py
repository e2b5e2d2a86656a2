"""The real chain behind :class:`agents.host.reporter.UsageChain`: web3 contracts.

Contract function names are looked up in the deployed ABIs through small candidate lists
(``_FUNCTIONS``), so a renamed view fails with a message naming what was expected instead of
an opaque ABI error. Transactions go through :class:`agents.chain.transactions.TransactionSender`.
"""

from __future__ import annotations

import logging
from typing import Any

from web3 import Web3
from web3.contract import Contract

from agents.chain.deployments import Deployment
from agents.chain.keystore import resolve_account
from agents.chain.transactions import TransactionSender
from agents.config import get_settings
from agents.host.errors import ConfigError
from agents.host.reporter import CopyFunds, OnChainReport
from agents.host.settings import HostSettings

log = logging.getLogger(__name__)

# logical name -> (contract, candidate function names, first match wins)
_FUNCTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "genesis": ("UsageLedger", ("genesis", "epochGenesis", "genesisTime", "GENESIS")),
    "epoch_length": ("UsageLedger", ("epochLength", "EPOCH_LENGTH", "epochDuration")),
    "fee_token": ("UsageLedger", ("feeToken", "token", "FEE_TOKEN")),
    "price": ("UsageLedger", ("pricePerCall", "priceOf", "copyPrice")),
    "report": ("UsageLedger", ("getReport", "reportOf", "reports", "usage")),
    "first_epoch": ("UsageLedger", ("firstEpoch", "startEpoch", "firstReportableEpoch")),
    "copy": ("AccessManager", ("getCopy", "copyInfo", "copies")),
    "min_collateral": ("AccessManager", ("minCollateral", "minimumCollateral")),
}


class HostChain:
    def __init__(self, w3: Web3, deployment: Deployment, account: Any) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.address = str(account.address)
        self.chain_id = int(w3.eth.chain_id)
        self.sender = TransactionSender(w3, account)
        self.ledger = deployment.contract(w3, "UsageLedger")
        self.access = deployment.contract(w3, "AccessManager")
        self.verifying_contract = deployment.addresses["ChallengeManager"]
        token_address = self._call("fee_token")
        self.token = w3.eth.contract(address=token_address, abi=_token_abi(deployment))

    @classmethod
    def connect(cls, settings: HostSettings) -> HostChain:
        w3 = Web3(Web3.HTTPProvider(get_settings().rpc_url, request_kwargs={"timeout": 30}))
        if not w3.is_connected():
            raise ConfigError(
                f"no chain at {get_settings().rpc_url}: start it (`oml world up`) or pass --offline"
            )
        deployment = Deployment.load(settings.network)
        account = resolve_account(settings.account, chain_id=int(w3.eth.chain_id))
        return cls(w3, deployment, account)

    # ----------------------------------------------------------------- helpers

    def _function(self, logical: str) -> Any:
        contract_name, candidates = _FUNCTIONS[logical]
        contract: Contract = self.ledger if contract_name == "UsageLedger" else self.access
        names = {item.get("name") for item in contract.abi if item.get("type") == "function"}
        for name in candidates:
            if name in names:
                return getattr(contract.functions, name)
        raise ConfigError(
            f"{contract_name} has none of {', '.join(candidates)} (for {logical}); "
            "the deployed ABI and agents/host/chain.py disagree"
        )

    def _call(self, logical: str, *args: Any) -> Any:
        return self._function(logical)(*args).call()

    # ----------------------------------------------------------------- UsageChain

    def epoch_schedule(self) -> tuple[int, int]:
        return int(self._call("genesis")), int(self._call("epoch_length"))

    def first_epoch(self, copy_id: int) -> int | None:
        try:
            return int(self._call("first_epoch", copy_id))
        except ConfigError:
            info = self.copy_info(copy_id)
            started = info.get("deliveredAt") or info.get("activatedAt") or info.get("startedAt")
            if not started:
                return None
            genesis, length = self.epoch_schedule()
            return max(int(started) - genesis, 0) // length

    def price_per_call(self, copy_id: int) -> int:
        return int(self._call("price", copy_id))

    def reported(self, copy_id: int, epoch: int) -> OnChainReport | None:
        value = self._call("report", copy_id, epoch)
        fields = _as_dict(value, self._function("report").abi)
        done = fields.get("reported", fields.get("exists", fields.get("paid")))
        calls = int(fields.get("calls", 0))
        last_seq = int(fields.get("lastSeq", 0))
        if done is None:
            done = calls > 0 or last_seq > 0
        return OnChainReport(calls, last_seq) if done else None

    def funds(self, copy_id: int) -> CopyFunds:
        info = self.copy_info(copy_id)
        try:
            minimum = int(self._call("min_collateral", int(info.get("modelId", 0))))
        except (ConfigError, ValueError):
            minimum = 0
        return CopyFunds(
            token_balance=self.token_balance(),
            allowance=int(self.token.functions.allowance(self.address, self.ledger.address).call()),
            collateral=int(info.get("collateral", 0)),
            min_collateral=minimum,
        )

    def approve(self, amount: int) -> str:
        receipt = self.sender.send(
            self.token.functions.approve(self.ledger.address, amount), label="approve fee token"
        )
        return str(receipt["transactionHash"].to_0x_hex())

    def report_usage(self, copy_id: int, epoch: int, calls: int, last_seq: int) -> str:
        receipt = self.sender.send(
            self.ledger.functions.reportUsage(copy_id, epoch, calls, last_seq),
            label=f"reportUsage copy {copy_id} epoch {epoch}",
        )
        return str(receipt["transactionHash"].to_0x_hex())

    # ----------------------------------------------------------------- status

    def token_balance(self) -> int:
        return int(self.token.functions.balanceOf(self.address).call())

    def copy_info(self, copy_id: int) -> dict[str, Any]:
        value = self._call("copy", copy_id)
        return _as_dict(value, self._function("copy").abi)

    def check_copy(self, copy_id: int) -> None:
        info = self.copy_info(copy_id)
        host = info.get("host")
        if host and Web3.to_checksum_address(host) != self.address:
            raise ConfigError(
                f"copy {copy_id} is licensed to {host}, not to this host key {self.address}"
            )

    def copy_status(self, copy_id: int) -> dict[str, Any]:
        info = {k: _jsonable(v) for k, v in self.copy_info(copy_id).items()}
        info["pendingChallenges"] = self.pending_challenges(copy_id)
        return {"onChain": info}

    def pending_challenges(self, copy_id: int) -> list[dict[str, Any]]:
        """Challenges raised against the copy and not yet resolved (from events)."""
        if "ChallengeManager" not in self.deployment.addresses:
            return []
        manager = self.deployment.contract(self.w3, "ChallengeManager")
        events = {item.get("name") for item in manager.abi if item.get("type") == "event"}
        opened: dict[int, dict[str, Any]] = {}
        start = self.deployment.deploy_block
        for name in sorted(str(e) for e in events if e):
            lower = str(name).lower()
            if not lower.startswith("challenge") and "raised" not in lower:
                continue
            try:
                logs = getattr(manager.events, str(name))().get_logs(from_block=start)
            except Exception:  # an event without a copyId filter: skip it
                continue
            for entry in logs:
                args = dict(entry["args"])
                if int(args.get("copyId", -1)) != copy_id or "challengeId" not in args:
                    continue
                cid = int(args["challengeId"])
                if any(w in lower for w in ("resolved", "slashed", "dismissed", "rejected")):
                    opened.pop(cid, None)
                elif any(w in lower for w in ("raised", "committed", "opened", "revealed")):
                    opened[cid] = {"challengeId": cid, "event": name}
        return list(opened.values())


def _as_dict(value: Any, abi: dict[str, Any]) -> dict[str, Any]:
    outputs = abi.get("outputs", [])
    if len(outputs) == 1 and outputs[0].get("components"):
        outputs = outputs[0]["components"]
        value = value if isinstance(value, list | tuple) else [value]
    if not isinstance(value, list | tuple):
        value = [value]
    return {
        out.get("name") or f"field{i}": v
        for i, (out, v) in enumerate(zip(outputs, value, strict=False))
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _token_abi(deployment: Deployment) -> list[dict[str, Any]]:
    for name in ("MockUSD", "FeeToken", "MockERC20"):
        if name in deployment.abis:
            return deployment.abis[name]
    return ERC20_ABI


ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "allowance",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]
