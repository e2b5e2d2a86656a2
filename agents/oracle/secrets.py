"""The oracle's master secret and what is derived from it.

Each copy's fingerprint seed is HMAC-SHA256(master, domain || chain id || AccessManager || copy
id): the oracle can regenerate any copy's fingerprints, and no seed or key is ever stored in
plaintext. Fingerprint records kept for the key service are sealed with AES-256-GCM under a key
derived the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEED_DOMAIN = b"oml-hub/copy-seed/v1"
SEAL_DOMAIN = b"oml-hub/record-seal/v1"


class MasterSecretError(RuntimeError):
    """The master secret is missing or malformed."""


class MasterSecret:
    """32 random bytes held only by the oracle (a TEE's sealed key in production)."""

    def __init__(self, value: bytes) -> None:
        if len(value) != 32:
            raise MasterSecretError("the oracle master secret must be exactly 32 bytes")
        self._value = value

    @classmethod
    def create(cls, path: Path) -> MasterSecret:
        if path.exists():
            raise MasterSecretError(f"{path} already exists; refusing to overwrite a secret")
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(value.hex())
        return cls(value)

    @classmethod
    def load(cls, path: Path) -> MasterSecret:
        try:
            return cls(bytes.fromhex(path.read_text().strip()))
        except FileNotFoundError as error:
            raise MasterSecretError(
                f"no oracle master secret at {path}: create one with `oml oracle init-secret`"
            ) from error
        except ValueError as error:
            raise MasterSecretError(f"{path} does not hold a hex-encoded 32-byte secret") from error

    def _derive(self, domain: bytes, chain_id: int, access_manager: str, copy_id: int) -> bytes:
        context = b"|".join(
            [domain, str(chain_id).encode(), access_manager.lower().encode(), str(copy_id).encode()]
        )
        return hmac.new(self._value, context, hashlib.sha256).digest()

    def copy_seed(self, chain_id: int, access_manager: str, copy_id: int) -> bytes:
        return self._derive(SEED_DOMAIN, chain_id, access_manager, copy_id)

    def seal(self, record: Any, chain_id: int, access_manager: str, copy_id: int) -> bytes:
        key = self._derive(SEAL_DOMAIN, chain_id, access_manager, copy_id)
        nonce = secrets.token_bytes(12)
        aad = f"{chain_id}:{access_manager.lower()}:{copy_id}".encode()
        return nonce + AESGCM(key).encrypt(nonce, json.dumps(record).encode(), aad)

    def unseal(self, blob: bytes, chain_id: int, access_manager: str, copy_id: int) -> Any:
        key = self._derive(SEAL_DOMAIN, chain_id, access_manager, copy_id)
        aad = f"{chain_id}:{access_manager.lower()}:{copy_id}".encode()
        return json.loads(AESGCM(key).decrypt(blob[:12], blob[12:], aad))
