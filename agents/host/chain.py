"""The host's side of the deployed protocol, against the real ABIs in ``deployments/abi``.

:class:`HostChain` is what :class:`agents.host.reporter.UsageReporter` talks to (the
``UsageChain`` protocol) and what ``oml host status`` reads:

- ``UsageLedger``: ``genesis``/``epochLength`` (immutable, read once), ``copyLedger(copyId)``
  (first epoch once delivered), ``pricePerCall(copyId)``, ``getReport(copyId, epoch)`` (exact
  calls/lastSeq for the last ``KEPT_EPOCHS`` reported epochs; older ones come from the
  ``UsageReported`` event), ``reportUsage(copyId, epoch, calls, lastSeq)``;
- the fee token (``UsageLedger.feeToken()``, an allow-listed ERC-20): balance, allowance,
  ``approve(UsageLedger, fee)``;
- ``AccessManager``: ``getCopy`` (host, state, collateral), ``minCollateral(modelId)``;
- ``ChallengeManager``: the EIP-712 domain of receipts, and open leak challenges of a copy.

Every transaction goes through the account's
:class:`~agents.chain.transactions.TransactionSender` (nonces, gas, decoded custom errors).
"""

from __future__ import annotations

import logging
from enum import IntEnum
from typing import Any

from web3 import Web3
from web3.contract import Contract

from agents.chain.errors import ChainError
from agents.chain.keystore import resolve_account
from agents.chain.protocol import Protocol
from agents.config import get_settings
from agents.host.errors import ConfigError, ReportError
from agents.host.reporter import CopyFunds, OnChainReport
from agents.host.settings import HostSettings

log = logging.getLogger(__name__)

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


class CopyState(IntEnum):
    """``IAccessManager.CopyState``."""

    NONE = 0
    REQUESTED = 1
    ACTIVE = 2
    EXITING = 3
    WITHDRAWN = 4


class LeakState(IntEnum):
    """``IChallengeManager.LeakState``."""

    NONE = 0
    COMMITTED = 1
    REVEALED = 2
    DISPUTED = 3
    UPHELD = 4
    REJECTED = 5
    TIMED_OUT = 6
    EXPIRED = 7


OPEN_LEAK_STATES = (LeakState.REVEALED, LeakState.DISPUTED)

# The fee token may be any allow-listed ERC-20; these are the calls the host makes on it.
ERC20_ABI: list[dict[str, Any]] = [
    {"type": "function", "name": "balanceOf", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "allowance", "stateMutability": "view",
     "inputs": [{"name": "owner", "type": "address"}, {"name": "spender", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"type": "function", "name": "approve", "stateMutability": "nonpayable",
     "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
    {"type": "function", "name": "symbol", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
]  # fmt: skip


def open_protocol(network: str, account_spec: str, rpc_url: str | None = None) -> Protocol:
    """Connect ``account_spec`` (``dev:N`` or a keystore) to ``deployments/<network>.json``.

    Raises :class:`ConfigError` with the fix when the node, the deployment or the key is not
    usable, so commands can print it as is.
    """
    url = rpc_url or get_settings().rpc_url
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
    if not w3.is_connected():
        raise ConfigError(f"no chain at {url}: start it (`oml world up`) or set OML_RPC_URL")
    chain_id = int(w3.eth.chain_id)
    try:
        from agents.chain.deployments import Deployment

        deployment = Deployment.load(network)
        if deployment.chain_id != chain_id:
            raise ConfigError(
                f"deployments/{network}.json is for chain {deployment.chain_id} but {url} is "
                f"chain {chain_id}: pick the matching --network or OML_RPC_URL"
            )
        account = resolve_account(account_spec, chain_id=chain_id)
    except ChainError as error:
        raise ConfigError(str(error)) from error
    return Protocol(w3, deployment, account)


def fee_token(protocol: Protocol) -> Contract:
    """The settlement token: ``UsageLedger.feeToken()``, with an ERC-20 ABI."""
    address = protocol.contract("UsageLedger").functions.feeToken().call()
    return protocol.w3.eth.contract(address=address, abi=ERC20_ABI)  # type: ignore[call-overload, no-any-return]


def call_struct(contract: Contract, function: str, *args: Any) -> dict[str, Any]:
    """Call a view returning one struct; give its fields by name (from the ABI)."""
    value = getattr(contract.functions, function)(*args).call()
    for item in contract.abi:
        if item.get("type") == "function" and item.get("name") == function:
            components = item["outputs"][0]["components"]  # type: ignore[typeddict-item]
            return {c["name"]: v for c, v in zip(components, value, strict=True)}
    raise ConfigError(f"{function} is not in the ABI of {contract.address}: run `make compile`")


_OPEN_ENDED = 2**32 - 1  # endEpoch of a copy without an exit request (type(uint32).max)


class HostChain:
    """One host account's connection to the protocol (implements ``UsageChain``)."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self.w3 = protocol.w3
        self.deployment = protocol.deployment
        self.account = protocol.account
        self.address = str(protocol.account.address)
        self.chain_id = protocol.chain_id
        self.sender = protocol.sender
        self.ledger = protocol.contract("UsageLedger")
        self.access = protocol.contract("AccessManager")
        self.challenges = protocol.contract("ChallengeManager")
        self.verifying_contract = str(self.challenges.address)
        self.token = fee_token(protocol)
        self._schedule: tuple[int, int] | None = None

    @classmethod
    def connect(cls, settings: HostSettings) -> HostChain:
        return cls(open_protocol(settings.network, settings.account))

    # ----------------------------------------------------------------- UsageChain

    def epoch_schedule(self) -> tuple[int, int]:
        """``(genesis, epochLength)``; both are immutable, so they are read once."""
        if self._schedule is None:
            genesis = int(self.ledger.functions.genesis().call())
            length = int(self.ledger.functions.epochLength().call())
            self._schedule = (genesis, length)
        return self._schedule

    def first_epoch(self, copy_id: int) -> int | None:
        """The epoch of delivery; None until the oracle delivered the copy."""
        info = call_struct(self.ledger, "copyLedger", copy_id)
        if info["host"] == ZERO_ADDRESS:
            return None
        return int(info["firstEpoch"])

    def last_epoch(self, copy_id: int) -> int | None:
        """The exit epoch once the host asked to exit; None while the copy is open-ended."""
        info = call_struct(self.ledger, "copyLedger", copy_id)
        end = int(info["endEpoch"])
        return None if info["host"] == ZERO_ADDRESS or end == _OPEN_ENDED else end

    def price_per_call(self, copy_id: int) -> int:
        return int(self.ledger.functions.pricePerCall(copy_id).call())

    def reported(self, copy_id: int, epoch: int) -> OnChainReport | None:
        report = call_struct(self.ledger, "getReport", copy_id, epoch)
        if not report["reported"]:
            return None
        if report["known"]:
            return OnChainReport(int(report["calls"]), int(report["lastSeq"]))
        return self._report_from_event(copy_id, epoch)

    def _report_from_event(self, copy_id: int, epoch: int) -> OnChainReport:
        """A report older than the ledger keeps exactly: read its ``UsageReported`` event."""
        logs = self.ledger.events.UsageReported().get_logs(
            from_block=self.deployment.deploy_block,
            argument_filters={"copyId": copy_id, "epoch": epoch},
        )
        if not logs:
            raise ReportError(
                f"epoch {epoch} of copy {copy_id} is reported on chain but its UsageReported "
                "event is not available from this node: use an archive node (OML_RPC_URL)"
            )
        args = logs[-1]["args"]
        return OnChainReport(int(args["calls"]), int(args["lastSeq"]))

    def funds(self, copy_id: int) -> CopyFunds:
        copy = self.copy_info(copy_id)
        minimum = int(self.access.functions.minCollateral(copy["modelId"]).call())
        return CopyFunds(
            token_balance=self.token_balance(),
            allowance=int(self.token.functions.allowance(self.address, self.ledger.address).call()),
            collateral=int(copy["collateral"]),
            min_collateral=minimum,
        )

    def approve(self, amount: int) -> str:
        receipt = self.sender.send(
            self.token.functions.approve(self.ledger.address, amount),
            label="approve fee token for UsageLedger",
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

    def fee_token_allowed(self) -> bool:
        """Whether the fee token is still allow-listed (reports revert while it is not)."""
        return bool(self.ledger.functions.isTokenAllowed(self.token.address).call())

    def copy_exists(self, copy_id: int) -> bool:
        return 0 < copy_id < int(self.access.functions.nextCopyId().call())

    def copy_info(self, copy_id: int) -> dict[str, Any]:
        """``AccessManager.getCopy`` by field name; ConfigError for an unknown copy."""
        if not self.copy_exists(copy_id):
            raise ConfigError(
                f"copy {copy_id} does not exist on {self.deployment.network}: "
                "request a licence first (`oml host request-access`)"
            )
        return call_struct(self.access, "getCopy", copy_id)

    def check_copy(self, copy_id: int) -> None:
        """Refuse to serve a copy this key does not hold, or whose licence has ended."""
        info = self.copy_info(copy_id)
        host = Web3.to_checksum_address(info["host"])
        if host != self.address:
            raise ConfigError(
                f"copy {copy_id} is licensed to {host}, not to this host key {self.address}: "
                "pass the account that requested it (--account)"
            )
        if CopyState(info["state"]) == CopyState.WITHDRAWN:
            raise ConfigError(f"copy {copy_id} was withdrawn: its licence has ended")
        if not self.fee_token_allowed():
            log.warning(
                "fee token %s is not allow-listed: reportUsage reverts (TokenNotAllowed) until "
                "the protocol lists it again; unreported epochs are caught up then",
                self.token.address,
            )

    def copy_status(self, copy_id: int) -> dict[str, Any]:
        info = {k: _jsonable(v) for k, v in self.copy_info(copy_id).items()}
        info["state"] = CopyState(info["state"]).name.lower()
        ledger = call_struct(self.ledger, "copyLedger", copy_id)
        if ledger["host"] != ZERO_ADDRESS:
            info.update(
                firstEpoch=int(ledger["firstEpoch"]),
                nextEpochToReport=int(ledger["nextEpoch"]),
                reportedLastSeq=int(ledger["lastSeq"]),
            )
        info["pendingChallenges"] = self.pending_challenges(copy_id)
        return {"onChain": info}

    def pending_challenges(self, copy_id: int) -> list[dict[str, Any]]:
        """Leak challenges revealed against the copy and not resolved yet.

        (Provable challenges slash in the same transaction, so they are never pending; a
        committed leak does not name its copy until it is revealed.)
        """
        revealed = self.challenges.events.LeakRevealed().get_logs(
            from_block=self.deployment.deploy_block, argument_filters={"copyId": copy_id}
        )
        pending = []
        for challenge_id in sorted({int(e["args"]["challengeId"]) for e in revealed}):
            leak = call_struct(self.challenges, "getLeak", challenge_id)
            state = LeakState(leak["state"])
            if state in OPEN_LEAK_STATES:
                pending.append(
                    {
                        "challengeId": challenge_id,
                        "state": state.name.lower(),
                        "deadline": int(leak["deadline"]),
                        "index": int(leak["index"]),
                        "challenger": leak["challenger"],
                    }
                )
        return pending


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
