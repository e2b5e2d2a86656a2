"""A deployed protocol on an Anvil chain, seen by a tester: time, roles, money, windows.

:class:`DevChain` is what every ``oml dev`` command and every scenario holds. It never
signs for an account it does not own: role accounts (oracle, arbiter, a whale) act through
Anvil's impersonation, fresh actors get a new key and are funded with cheatcodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxParams, TxReceipt

from agents.chain.deployments import Deployment
from agents.chain.errors import TransactionFailed
from agents.chain.protocol import Protocol
from agents.config import get_settings
from agents.dev.errors import DevError
from agents.dev.network import active_network
from agents.dev.node import AnvilNode

ETHER = 10**18
GAS_MONEY = 10 * ETHER
GAS_HEADROOM = 1.25
# MockUSD mints at most this much per faucet call.
FAUCET_CAP = 100_000 * 10**6

LEAK_STATES = [
    "None",
    "Committed",
    "Revealed",
    "Disputed",
    "Upheld",
    "Rejected",
    "TimedOut",
    "Expired",
]
COPY_STATES = ["None", "Requested", "Active", "Exiting", "Withdrawn"]


@dataclass(frozen=True)
class ChallengeWindow:
    """The window a leak challenge is waiting in, and when ``finalizeLeak`` becomes possible."""

    challenge_id: int
    state: str
    window: str
    ends_at: int  # last second inside the window; finalizeLeak works from ends_at + 1


@dataclass(frozen=True)
class PendingCall:
    """A transaction waiting in the mempool, decoded against a contract's ABI."""

    tx_hash: str
    sender: str
    function: str
    args: dict[str, Any]


class DevChain:
    """One deployment of the protocol on one Anvil node."""

    def __init__(self, w3: Web3, deployment: Deployment) -> None:
        self.w3 = w3
        self.deployment = deployment
        self.node = AnvilNode(w3)
        # Where fresh accounts get fee tokens: None = MockUSD's faucet; an address = a holder
        # (impersonated) on a fork of a network whose token has no faucet.
        self.token_source: str | None = None
        self._errors: dict[bytes, str] = {}
        for abi in deployment.abis.values():
            for item in abi:
                if item.get("type") == "error":
                    selector = function_abi_to_4byte_selector(cast(Any, item))
                    self._errors[selector] = item["name"]

    @classmethod
    def connect(cls, rpc_url: str | None = None, network: str | None = None) -> DevChain:
        """Connect to Anvil at ``rpc_url`` (default: the local world) and check the deployment."""
        url = rpc_url or get_settings().rpc_url
        node = AnvilNode.at(url)
        deployment = Deployment.load(network or active_network())
        chain = cls(node.w3, deployment)
        registry = deployment.addresses.get("ModelRegistry", "")
        if not registry or len(node.w3.eth.get_code(Web3.to_checksum_address(registry))) == 0:
            raise DevError(
                f"deployments/{deployment.network}.json does not match the chain at {url}: no "
                f"contract at ModelRegistry {registry}; deploy (`make demo`), or pick the "
                "deployment with --network / OML_NETWORK"
            )
        return chain

    # ------------------------------------------------------------------ contracts

    def contract(self, name: str) -> Contract:
        return self.deployment.contract(self.w3, name)

    @cached_property
    def registry(self) -> Contract:
        return self.contract("ModelRegistry")

    @cached_property
    def access(self) -> Contract:
        return self.contract("AccessManager")

    @cached_property
    def ledger(self) -> Contract:
        return self.contract("UsageLedger")

    @cached_property
    def challenges(self) -> Contract:
        return self.contract("ChallengeManager")

    @cached_property
    def token(self) -> Contract:
        """The fee token the ledger settles in (MockUSD's ABI: ERC-20 plus ``faucet``)."""
        address = Web3.to_checksum_address(self.ledger.functions.feeToken().call())
        token: Contract = self.w3.eth.contract(address=address, abi=self.deployment.abis["MockUSD"])
        return token

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def role(self, name: str) -> str:
        try:
            return self.deployment.roles[name]
        except KeyError as error:
            raise DevError(
                f"deployments/{self.deployment.network}.json names no {name!r} role "
                f"(has: {', '.join(sorted(self.deployment.roles))})"
            ) from error

    def params(self) -> dict[str, Any]:
        """ChallengeManager.Params as a dict keyed by field name."""
        raw = self.challenges.functions.params().call()
        return _named(self.challenges, "params", raw)

    # ------------------------------------------------------------------ epochs and windows

    @cached_property
    def genesis(self) -> int:
        return int(self.ledger.functions.genesis().call())

    @cached_property
    def epoch_length(self) -> int:
        return int(self.ledger.functions.epochLength().call())

    def current_epoch(self) -> int:
        now = self.node.timestamp()
        return 0 if now < self.genesis else (now - self.genesis) // self.epoch_length

    def epoch_end(self, epoch: int) -> int:
        """First second after ``epoch``: from then on it can be reported."""
        return self.genesis + (epoch + 1) * self.epoch_length

    def to_epoch_end(self, epoch: int | None = None, *, plus_grace: bool = False) -> int:
        """Mine a block just after ``epoch`` (default: the current one) closes.

        With ``plus_grace`` also past ``reportGrace``, so a missing report becomes slashable.
        Returns the new block timestamp; a time already past is left alone (plus one block).
        """
        target = self.epoch_end(self.current_epoch() if epoch is None else epoch)
        if plus_grace:
            target += int(self.params()["reportGrace"])
        return self.node.warp_to(target)

    def copy_ledger(self, copy_id: int) -> dict[str, Any]:
        raw = self.ledger.functions.copyLedger(copy_id).call()
        return _named(self.ledger, "copyLedger", raw)

    def copy(self, copy_id: int) -> dict[str, Any]:
        raw = self.access.functions.getCopy(copy_id).call()
        return _named(self.access, "getCopy", raw)

    def leak(self, challenge_id: int) -> dict[str, Any]:
        raw = self.challenges.functions.getLeak(challenge_id).call()
        return _named(self.challenges, "getLeak", raw)

    def challenge_window(self, challenge_id: int) -> ChallengeWindow:
        """Read the window a leak challenge waits in from ChallengeManager."""
        leak = self.leak(challenge_id)
        state = LEAK_STATES[int(leak["state"])]
        windows = {"Committed": "reveal", "Revealed": "liveness", "Disputed": "arbitration"}
        if state == "None":
            next_id = int(self.challenges.functions.nextChallengeId().call())
            if 0 < challenge_id < next_id:
                raise DevError(
                    f"challenge {challenge_id} is a provable challenge: it slashed at once and "
                    "has no window"
                )
            raise DevError(f"there is no challenge {challenge_id} (next id is {next_id})")
        if state not in windows:
            raise DevError(f"challenge {challenge_id} is already final ({state})")
        return ChallengeWindow(challenge_id, state, windows[state], int(leak["deadline"]))

    def to_challenge_end(self, challenge_id: int) -> tuple[ChallengeWindow, int]:
        """Mine a block just after the challenge's current window; ``finalizeLeak`` then works."""
        window = self.challenge_window(challenge_id)
        return window, self.node.warp_to(window.ends_at + 1)

    # ------------------------------------------------------------------ sending

    def error_name(self, error: Exception) -> str | None:
        """The custom error a revert carries, by name, if any contract of the deployment has it."""
        data = getattr(error, "data", None)
        if isinstance(data, dict):  # some providers nest it
            data = data.get("data")
        if not isinstance(data, str | bytes):
            return None
        raw = HexBytes(data)
        return self._errors.get(bytes(raw[:4])) if len(raw) >= 4 else None

    def revert_reason(self, call: ContractFunction, sender: str) -> str | None:
        """Simulate ``call`` from ``sender``; the custom error it would revert with, or None."""
        try:
            call.call({"from": Web3.to_checksum_address(sender)})
        except (ContractCustomError, ContractLogicError) as error:
            return self.error_name(error) or str(error)
        return None

    def send_as(
        self, address: str, call: ContractFunction, *, value: int = 0, label: str = ""
    ) -> TxReceipt:
        """Send ``call`` from ``address`` through Anvil's impersonation (any address works).

        Tops the account's ether up to pay for gas when it has less than 0.1 ETH; reverts
        come back as :class:`TransactionFailed` naming the contract's custom error.
        """
        label = label or call.fn_name
        sender = Web3.to_checksum_address(address)
        self.node.impersonate(sender)
        try:
            if self.w3.eth.get_balance(sender) < ETHER // 10:
                self.node.set_balance(sender, GAS_MONEY)
            params: TxParams = {"from": sender, "value": value}  # type: ignore[typeddict-item]
            try:
                gas = call.estimate_gas(params)
            except (ContractCustomError, ContractLogicError) as error:
                name = self.error_name(error)
                raise TransactionFailed(
                    f"{label} would revert: {name or error}", error_name=name
                ) from error
            params["gas"] = int(gas * GAS_HEADROOM)
            tx_hash = call.transact(params)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        finally:
            self.node.stop_impersonating(sender)
        if receipt["status"] != 1:
            raise TransactionFailed(f"{label} reverted in {tx_hash.to_0x_hex()}")
        return receipt

    def mempool(self, contract: Contract, function: str) -> list[PendingCall]:
        """Pending transactions calling ``contract.function``, decoded (what a searcher sees)."""
        pool = self.node.rpc("txpool_content") or {}
        found = []
        for by_sender in (pool.get("pending") or {}).values():
            for tx in by_sender.values():
                to = tx.get("to") or ""
                if to.lower() != contract.address.lower():
                    continue
                fn, args = contract.decode_function_input(tx["input"])
                if fn.fn_name == function:
                    found.append(
                        PendingCall(
                            str(tx["hash"]),
                            Web3.to_checksum_address(tx["from"]),
                            function,
                            dict(args),
                        )
                    )
        return found

    # ------------------------------------------------------------------ accounts and money

    def protocol(self, account: LocalAccount) -> Protocol:
        return Protocol(self.w3, self.deployment, account)

    def new_account(self, *, eth: int = GAS_MONEY, token: int = 0) -> LocalAccount:
        """A fresh key, funded with ``eth`` wei and ``token`` fee-token units."""
        account: LocalAccount = Account.create()
        self.fund(account.address, eth=eth, token=token, source=self.token_source)
        return account

    def fund(
        self, address: str, *, eth: int | None = None, token: int = 0, source: str | None = None
    ) -> dict[str, int]:
        """Set ``address``'s ether to ``eth`` wei; give it ``token`` more fee-token units.

        Tokens come from ``source`` by impersonated transfer when given (a whale on a fork of a
        real network), else from MockUSD's faucet called as ``address`` (capped per call, so
        large amounts take several calls). Returns the new balances.
        """
        target = Web3.to_checksum_address(address)
        if token > 0:
            if source is not None:
                self.send_as(source, self.token.functions.transfer(target, token), label="transfer")
            else:
                self._faucet(target, token)  # gas paid by the target: set its ether after
        if eth is not None:
            self.node.set_balance(target, eth)
        return self.balances(target)

    def _faucet(self, target: str, amount: int) -> None:
        names = {item.get("name") for item in self.token.abi}
        if "faucet" not in names or len(self.w3.eth.get_code(self.token.address)) == 0:
            raise DevError("the fee token has no faucet: pass a holder to transfer from (--from)")
        remaining = amount
        while remaining > 0:
            chunk = min(remaining, FAUCET_CAP)
            try:
                self.send_as(target, self.token.functions.faucet(chunk), label="faucet")
            except TransactionFailed as error:
                raise DevError(
                    f"the fee token's faucet refused ({error}); pass a holder to transfer from "
                    "(--from ADDRESS)"
                ) from error
            remaining -= chunk

    def balances(self, address: str) -> dict[str, int]:
        target = Web3.to_checksum_address(address)
        return {
            "eth": int(self.w3.eth.get_balance(target)),
            "token": int(self.token.functions.balanceOf(target).call()),
            "claimable": int(self.ledger.functions.claimable(target).call()),
        }


def _named(contract: Contract, function: str, raw: Any) -> dict[str, Any]:
    """A view's return value as a dict keyed by the ABI's output (or struct component) names."""
    for item in cast(list[dict[str, Any]], contract.abi):
        if item.get("type") == "function" and item.get("name") == function:
            outputs = list(item.get("outputs", []))
            break
    else:
        raise DevError(f"{function} is not in the ABI")
    if len(outputs) == 1 and outputs[0].get("components"):
        outputs = list(outputs[0]["components"])
    values = list(raw) if isinstance(raw, list | tuple) else [raw]
    return {
        o.get("name") or f"field{i}": v
        for i, (o, v) in enumerate(zip(outputs, values, strict=True))
    }
