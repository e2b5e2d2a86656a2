"""The one place transactions are built, signed, sent and their receipts checked.

Nonces are tracked locally (so several transactions can be in flight) and re-synchronised
from the node after any error; gas is estimated with head-room; reverts are decoded into the
contract's custom error name so a caller sees ``CollateralTooLow`` rather than raw bytes.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from eth_utils.abi import function_abi_to_4byte_selector
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, TimeExhausted
from web3.types import Nonce, TxParams, TxReceipt

from agents.chain.errors import TransactionFailed

log = logging.getLogger(__name__)

GAS_HEADROOM = 1.25
TRANSIENT = (ConnectionError, TimeoutError, OSError)


class TransactionSender:
    """Signs with one account and sends contract calls, one nonce at a time."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        error_abis: list[dict[str, Any]] | None = None,
        receipt_timeout_s: float = 120.0,
        retries: int = 3,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.receipt_timeout_s = receipt_timeout_s
        self.retries = retries
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._errors = _error_selectors(error_abis or [])

    @property
    def address(self) -> str:
        return str(self.account.address)

    def add_error_abis(self, abi: list[dict[str, Any]]) -> None:
        self._errors.update(_error_selectors(abi))

    def send(self, call: ContractFunction, *, value: int = 0, label: str = "") -> TxReceipt:
        """Estimate, sign, send ``call`` and wait for a successful receipt."""
        label = label or call.fn_name
        self.add_error_abis([dict(item) for item in call.contract_abi])
        for attempt in range(1, self.retries + 1):
            try:
                return self._send_once(call, value, label)
            except TRANSIENT as error:
                log.warning("transient error sending %s (attempt %d): %s", label, attempt, error)
                self._next_nonce = None
                time.sleep(min(2**attempt, 10))
            except ValueError as error:
                # Node-side rejections (nonce too low, underpriced): resync and retry.
                message = str(error)
                if "nonce" not in message.lower() or attempt == self.retries:
                    raise TransactionFailed(f"{label} rejected by the node: {message}") from error
                log.warning("nonce problem sending %s, resyncing: %s", label, message)
                self._next_nonce = None
        raise TransactionFailed(f"{label}: gave up after {self.retries} attempts; is the node up?")

    def _send_once(self, call: ContractFunction, value: int, label: str) -> TxReceipt:
        with self._lock:
            params: TxParams = {"from": self.account.address, "value": value}  # type: ignore[typeddict-item]
            try:
                gas = call.estimate_gas(params)
            except (ContractCustomError, ContractLogicError) as error:
                raise self._revert(label, error) from error
            params["gas"] = int(gas * GAS_HEADROOM)
            params["nonce"] = Nonce(self._take_nonce())
            params["chainId"] = self.w3.eth.chain_id
            tx = call.build_transaction(params)
            signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Exception:
                self._next_nonce = None
                raise
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self.receipt_timeout_s
            )
        except TimeExhausted as error:
            raise TransactionFailed(
                f"{label}: no receipt for {tx_hash.hex()} after {self.receipt_timeout_s:.0f}s; "
                "the transaction may still be mined — check it before resending",
                tx_hash=tx_hash.hex(),
            ) from error
        if receipt["status"] != 1:
            raise TransactionFailed(f"{label} reverted in {tx_hash.hex()}", tx_hash=tx_hash.hex())
        log.info("%s mined in block %s (gas %s)", label, receipt["blockNumber"], receipt["gasUsed"])
        return receipt

    def _take_nonce(self) -> int:
        pending = self.w3.eth.get_transaction_count(self.account.address, "pending")
        nonce = pending if self._next_nonce is None else max(pending, self._next_nonce)
        self._next_nonce = nonce + 1
        return nonce

    def _revert(self, label: str, error: Exception) -> TransactionFailed:
        data = getattr(error, "data", None)
        name = self.decode_error(data) if isinstance(data, str | bytes) else None
        reason = name or getattr(error, "message", None) or str(error)
        return TransactionFailed(f"{label} would revert: {reason}", error_name=name)

    def decode_error(self, data: str | bytes) -> str | None:
        raw = HexBytes(data)
        if len(raw) < 4:
            return None
        return self._errors.get(bytes(raw[:4]))


def _error_selectors(abi: list[dict[str, Any]]) -> dict[bytes, str]:
    selectors: dict[bytes, str] = {}
    for item in abi:
        if item.get("type") == "error":
            selectors[function_abi_to_4byte_selector(cast(Any, item))] = item["name"]
    return selectors
