"""The prover's signed request for fingerprint keys (EIP-712, verified off chain by the oracle).

Type ``KeyRequest(address prover,uint256 copyId,uint256 count,uint256 nonce,uint256 deadline)``
in domain {name: "OML Hub Key Service", version: "1", chainId}. The nonce makes each request
single-use; the deadline bounds how long a captured request stays valid.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field

DOMAIN_NAME = "OML Hub Key Service"
DOMAIN_VERSION = "1"
KEY_REQUEST_FIELDS = [
    {"name": "prover", "type": "address"},
    {"name": "copyId", "type": "uint256"},
    {"name": "count", "type": "uint256"},
    {"name": "nonce", "type": "uint256"},
    {"name": "deadline", "type": "uint256"},
]


class KeyRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    prover: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    copy_id: int = Field(ge=0)
    count: int = Field(ge=1, le=64)
    nonce: int = Field(ge=0, lt=2**256)
    deadline: int = Field(ge=0, description="unix seconds after which the request is void")


def _typed(request: KeyRequest, chain_id: int) -> dict[str, Any]:
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
            ],
            "KeyRequest": KEY_REQUEST_FIELDS,
        },
        "primaryType": "KeyRequest",
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id},
        "message": {
            "prover": request.prover,
            "copyId": request.copy_id,
            "count": request.count,
            "nonce": request.nonce,
            "deadline": request.deadline,
        },
    }


def sign_key_request(account: LocalAccount, request: KeyRequest, chain_id: int) -> bytes:
    message = encode_typed_data(full_message=_typed(request, chain_id))
    return bytes(account.sign_message(message).signature)


def key_request_signer(request: KeyRequest, signature: bytes, chain_id: int) -> str:
    message = encode_typed_data(full_message=_typed(request, chain_id))
    return str(Account.recover_message(message, signature=signature))
