"""Signing keys: encrypted eth-account JSON keystores, and Anvil's well-known dev keys.

Passwords come from an environment variable or an interactive prompt, never from a file in
the repository. Dev keys are refused on any chain other than the local one.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from agents.chain.errors import KeystoreError

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
LOCAL_CHAIN_ID = 31337

Account.enable_unaudited_hdwallet_features()


def dev_account(index: int) -> LocalAccount:
    """Anvil's deterministic account ``index`` (public test keys, local chain only)."""
    path = f"m/44'/60'/0'/0/{index}"
    account: LocalAccount = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=path)
    return account


def load_keystore(path: Path, password: str | None = None, password_env: str = "") -> LocalAccount:
    """Decrypt a JSON keystore; the password is taken from ``password``, the env, or a prompt."""
    try:
        encrypted = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise KeystoreError(f"cannot read keystore {path}: {error}") from error
    if password is None and password_env:
        password = os.environ.get(password_env)
    if password is None:
        password = getpass.getpass(f"Password for {path.name}: ")
    try:
        key = Account.decrypt(encrypted, password)
    except ValueError as error:
        hint = f" (check ${password_env})" if password_env else ""
        raise KeystoreError(f"wrong password for keystore {path}{hint}") from error
    account: LocalAccount = Account.from_key(key)
    return account


def write_keystore(account: LocalAccount, path: Path, password: str) -> Path:
    """Encrypt ``account`` to ``path`` (scrypt), readable only by the owner."""
    encrypted = Account.encrypt(account.key, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(encrypted))
    path.chmod(0o600)
    return path


def resolve_account(
    spec: str, *, chain_id: int, password_env: str = "OML_KEYSTORE_PASSWORD"
) -> LocalAccount:
    """``dev:N`` (local chain only) or a keystore path."""
    if spec.startswith("dev:"):
        if chain_id != LOCAL_CHAIN_ID:
            raise KeystoreError(
                f"dev accounts are public keys and only allowed on chain {LOCAL_CHAIN_ID}; "
                "pass a keystore file instead"
            )
        return dev_account(int(spec.removeprefix("dev:")))
    return load_keystore(Path(spec), password_env=password_env)


def public_key_bytes(account: LocalAccount) -> bytes:
    """64-byte uncompressed secp256k1 public key (no 0x04 prefix), as the contracts expect."""
    from eth_keys.datatypes import PrivateKey

    return bytes(PrivateKey(account.key).public_key.to_bytes())
