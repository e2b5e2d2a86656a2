"""secp256k1 keys as Ethereum accounts hold them: public keys to encrypt to, keystores to decrypt.

A recipient's public key is the 64-byte uncompressed point without the 0x04 prefix (what
``eth_keys.keys.PrivateKey(pk).public_key.to_bytes()`` gives, and what the contracts store);
65-byte (0x04-prefixed) and 33-byte compressed forms, and hex with or without 0x, are accepted.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import coincurve
from eth_hash.auto import keccak

from agents.storage.errors import KeyFileError


def normalize_public_key(key: bytes | str) -> bytes:
    """The 64-byte uncompressed form of a secp256k1 public key; refuses points off the curve."""
    if isinstance(key, str):
        try:
            key = bytes.fromhex(key.strip().removeprefix("0x"))
        except ValueError as error:
            raise KeyFileError(f"public key {key[:20]!r}... is not hex") from error
    if len(key) == 64:
        key = b"\x04" + key
    try:
        point = coincurve.PublicKey(key)
    except (ValueError, TypeError) as error:
        raise KeyFileError(
            f"not a secp256k1 public key ({len(key)} bytes): give the 64-byte uncompressed key "
            "of the recipient's account (128 hex digits)"
        ) from error
    return bytes(point.format(compressed=False)[1:])


def public_key_of(private_key: bytes) -> bytes:
    """The 64-byte public key of a 32-byte private key."""
    try:
        return bytes(coincurve.PrivateKey(private_key).public_key.format(compressed=False)[1:])
    except (ValueError, TypeError) as error:
        raise KeyFileError("a private key is 32 bytes, between 1 and the curve order") from error


def address_of(public_key: bytes) -> bytes:
    """The 20-byte Ethereum address of a public key."""
    return bytes(keccak(normalize_public_key(public_key))[-20:])


def load_keystore(
    path: Path, *, password: str | None = None, password_env: str = "OML_KEYSTORE_PASSWORD"
) -> bytes:
    """The private key in an eth-account JSON keystore.

    The password comes from ``password``, else the environment variable ``password_env``,
    else an interactive prompt.
    """
    from eth_account import Account

    try:
        encrypted = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise KeyFileError(f"cannot read keystore {path}: {error}") from error
    if password is None:
        password = os.environ.get(password_env)
    if password is None:
        password = getpass.getpass(f"Password for {Path(path).name}: ")
    try:
        return bytes(Account.decrypt(encrypted, password))
    except (ValueError, KeyError, TypeError) as error:
        raise KeyFileError(
            f"cannot decrypt keystore {path}: wrong password (checked ${password_env}) or not "
            "an eth-account keystore"
        ) from error
