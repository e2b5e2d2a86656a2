"""Client of the oracle's key service: signed requests for fingerprint keys, checked on arrival.

A request is the EIP-712 ``KeyRequest`` of :mod:`agents.chain.key_requests` with a random
single-use nonce and a short deadline. The oracle is not trusted blindly: each released key's
leaf is rebuilt and its Merkle proof checked against the ``fpRoot`` the copy carries *on
chain*; a key that does not verify could never win a challenge and is stored as ``invalid``.
"""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount

from agents.chain.key_requests import KeyRequest, sign_key_request
from agents.fingerprint.commitment import fingerprint_leaf, verify_proof
from agents.prover.errors import KeyIntegrityError, KeyServiceError
from agents.prover.state import KeyMaterial

log = logging.getLogger(__name__)

MAX_BATCH = 64  # KeyRequest.count's upper bound


@dataclass(frozen=True)
class Batch:
    copy_id: int
    fp_root: bytes
    fp_count: int
    keys: list[KeyMaterial]


class KeyServiceClient:
    def __init__(
        self,
        url: str,
        account: LocalAccount,
        chain_id: int,
        *,
        timeout_s: float = 30.0,
        ttl_s: int = 120,
    ) -> None:
        self.url = url.rstrip("/")
        self.account = account
        self.chain_id = chain_id
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s

    def request(self, copy_id: int, count: int) -> Batch:
        """Ask for ``count`` never-released keys of ``copy_id``.

        The deadline is wall-clock time: the key service checks it against its own clock,
        not the chain's (which tests, and forks, move).
        """
        count = max(1, min(count, MAX_BATCH))
        request = KeyRequest(
            prover=self.account.address,
            copy_id=copy_id,
            count=count,
            nonce=secrets.randbits(128),
            deadline=int(time.time()) + self.ttl_s,
        )
        signature = sign_key_request(self.account, request, self.chain_id)
        body = {"request": request.model_dump(), "signature": "0x" + signature.hex()}
        try:
            reply = httpx.post(f"{self.url}/v1/keys", json=body, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            raise KeyServiceError(
                f"key service at {self.url} unreachable ({error}); is `oml oracle run` serving "
                "keys? (OML_PROVER_KEY_SERVICE_URL)"
            ) from error
        if reply.status_code != 200:
            raise KeyServiceError(
                f"key service refused copy {copy_id} x{count}: {reply.status_code} "
                f"{_detail(reply)}",
                status=reply.status_code,
            )
        return parse_batch(reply.json())


def parse_batch(data: dict[str, Any]) -> Batch:
    copy_id = int(data["copy_id"])
    keys = [
        KeyMaterial(
            copy_id=copy_id,
            index=int(k["index"]),
            key=str(k["key"]),
            response=str(k["response"]),
            salt=_hex(k["salt"]),
            proof=[_hex(node) for node in k["proof"]],
        )
        for k in data["keys"]
    ]
    return Batch(copy_id, _hex(data["fp_root"]), int(data["fp_count"]), keys)


def check_key(material: KeyMaterial, fp_root: bytes, fp_count: int) -> None:
    """Raise :class:`KeyIntegrityError` unless the key is a leaf of the on-chain root."""
    if not 0 <= material.index < fp_count:
        raise KeyIntegrityError(f"key index {material.index} outside 0..{fp_count - 1}")
    leaf = fingerprint_leaf(
        material.copy_id, material.index, material.key, material.response, material.salt
    )
    if not verify_proof(material.proof, fp_root, leaf):
        raise KeyIntegrityError(
            f"key {material.copy_id}/{material.index} does not verify against the on-chain "
            "fingerprint root: the key service is misconfigured or dishonest"
        )


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))


def _detail(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("detail", reply.text))
    except ValueError:
        return reply.text[:200]
