"""The host-signed usage receipt (EIP-712), as ChallengeManager verifies it.

Domain {name: "OML Hub", version: "1", chainId, verifyingContract: ChallengeManager}; type
``Receipt(uint256 copyId,uint64 epoch,uint64 seq,bytes32 promptHash,bytes32 responseHash)``.
Hosts sign one per call; provers keep them as evidence of under-reported usage.

What the two hashes commit to (a prover recomputes them from its own request and the answer):

- completions: the UTF-8 prompt string exactly as sent;
- chat: the messages as compact JSON ``[{"role":..,"content":..}]`` (keys in that order, no
  spaces, non-ASCII kept, content parts joined into one string);
- response: the UTF-8 completion text exactly as returned (for streams: the deltas joined).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from pydantic import BaseModel, ConfigDict, Field

DOMAIN_NAME = "OML Hub"
DOMAIN_VERSION = "1"
RECEIPT_FIELDS = [
    {"name": "copyId", "type": "uint256"},
    {"name": "epoch", "type": "uint64"},
    {"name": "seq", "type": "uint64"},
    {"name": "promptHash", "type": "bytes32"},
    {"name": "responseHash", "type": "bytes32"},
]
EIP712_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def chat_prompt_text(messages: Sequence[tuple[str, str]]) -> str:
    """The canonical text of a chat prompt that ``promptHash`` commits to."""
    return json.dumps(
        [{"role": role, "content": content} for role, content in messages],
        separators=(",", ":"),
        ensure_ascii=False,
    )


def text_hash(text: str) -> bytes:
    return keccak(text.encode("utf-8"))


class Receipt(BaseModel):
    """One metered inference call of one copy."""

    model_config = ConfigDict(frozen=True)

    copy_id: int = Field(ge=0)
    epoch: int = Field(ge=0, lt=2**64)
    seq: int = Field(ge=0, lt=2**64)
    prompt_hash: bytes = Field(min_length=32, max_length=32)
    response_hash: bytes = Field(min_length=32, max_length=32)

    @classmethod
    def for_call(cls, copy_id: int, epoch: int, seq: int, prompt: str, response: str) -> Receipt:
        return cls(
            copy_id=copy_id,
            epoch=epoch,
            seq=seq,
            prompt_hash=text_hash(prompt),
            response_hash=text_hash(response),
        )

    def as_tuple(self) -> tuple[int, int, int, bytes, bytes]:
        """The struct as contract calls take it."""
        return (self.copy_id, self.epoch, self.seq, self.prompt_hash, self.response_hash)


def typed_data(receipt: Receipt, chain_id: int, verifying_contract: str) -> dict[str, Any]:
    return {
        "types": {"EIP712Domain": EIP712_DOMAIN_FIELDS, "Receipt": RECEIPT_FIELDS},
        "primaryType": "Receipt",
        "domain": {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": chain_id,
            "verifyingContract": verifying_contract,
        },
        "message": {
            "copyId": receipt.copy_id,
            "epoch": receipt.epoch,
            "seq": receipt.seq,
            "promptHash": receipt.prompt_hash,
            "responseHash": receipt.response_hash,
        },
    }


def sign_receipt(
    account: LocalAccount, receipt: Receipt, chain_id: int, verifying_contract: str
) -> bytes:
    """65-byte (r, s, v) signature of ``receipt`` by the host account."""
    message = encode_typed_data(full_message=typed_data(receipt, chain_id, verifying_contract))
    return bytes(account.sign_message(message).signature)


def recover_signer(
    receipt: Receipt, signature: bytes, chain_id: int, verifying_contract: str
) -> str:
    message = encode_typed_data(full_message=typed_data(receipt, chain_id, verifying_contract))
    return str(Account.recover_message(message, signature=signature))
