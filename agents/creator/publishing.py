"""Base weights go to IPFS encrypted to the oracle: only it can read them to make copies."""

from __future__ import annotations

from pathlib import Path

from web3 import Web3

from agents.chain.deployments import Deployment
from agents.chain.keystore import LOCAL_CHAIN_ID, dev_account, public_key_bytes
from agents.creator.errors import RegistrationError
from agents.storage.client import IpfsClient
from agents.storage.errors import StorageError
from agents.storage.keys import address_of, normalize_public_key
from agents.storage.models import ManifestRef, publish_folder

DEV_ACCOUNTS = 10


def oracle_public_key(deployment: Deployment, explicit: str = "") -> bytes:
    """The oracle's 64-byte public key.

    ``explicit`` (``--oracle-pubkey``) must belong to the deployment's oracle when the
    deployment names one. Without it, on the local chain, the oracle is one of Anvil's public
    test accounts, whose key is known.
    """
    oracle = deployment.roles.get("oracle")
    if explicit:
        try:
            key = normalize_public_key(explicit)
        except StorageError as error:
            raise RegistrationError(f"--oracle-pubkey: {error}") from error
        owner = Web3.to_checksum_address(address_of(key))
        if oracle is not None and owner != oracle:
            raise RegistrationError(
                f"--oracle-pubkey belongs to {owner}, but the oracle of {deployment.network} is "
                f"{oracle}: ask its operator for the right key"
            )
        return key
    if oracle is not None and deployment.chain_id == LOCAL_CHAIN_ID:
        for index in range(DEV_ACCOUNTS):
            account = dev_account(index)
            if account.address == oracle:
                return public_key_bytes(account)
    raise RegistrationError(
        f"the oracle's public key of {deployment.network} is not known here: pass "
        "--oracle-pubkey (128 hex digits, from the oracle operator) or give --manifest-cid of "
        "a folder already published encrypted to it"
    )


def publish_base(
    folder: Path,
    oracle_pubkey: bytes,
    *,
    store: IpfsClient | None = None,
    progress: bool = False,
) -> ManifestRef:
    """Publish a Hugging Face folder encrypted to the oracle; returns its manifest."""
    client = store or IpfsClient()
    try:
        return publish_folder(client, folder, encrypt_to=oracle_pubkey, progress=progress)
    finally:
        if store is None:
            client.close()
