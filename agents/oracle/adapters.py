"""Real chain and storage behind the oracle's ports."""

from __future__ import annotations

from pathlib import Path

from agents.chain.protocol import Protocol
from agents.oracle.ports import ModelVersion
from agents.storage.client import IpfsStore
from agents.storage.models import fetch_folder, publish_sealed, seal_folder


class ChainAdapter:
    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol

    def model_version(self, model_id: int, version: int) -> ModelVersion:
        info = self.protocol.version(model_id, version)
        return ModelVersion(model_id, version, info.weights_cid, info.manifest_cid)

    def is_delivered(self, copy_id: int) -> bool:
        return self.protocol.is_delivered(copy_id)

    def deliver(self, copy_id: int, fp_root: bytes, fp_count: int, copy_cid: str) -> str:
        return self.protocol.deliver_copy(copy_id, fp_root, fp_count, copy_cid)

    def is_prover(self, address: str) -> bool:
        return self.protocol.is_prover(address)


class StorageAdapter:
    """Base weights are published encrypted to the oracle; copies are sealed to their host."""

    def __init__(self, store: IpfsStore, oracle_private_key: bytes) -> None:
        self.store = store
        self._key = oracle_private_key

    def fetch_base(self, version: ModelVersion, dest: Path) -> Path:
        fetch_folder(self.store, version.weights_cid, dest, private_key=self._key)
        return dest

    def encrypt_copy(self, directory: Path, recipient_pubkey: bytes, out_dir: Path) -> Path:
        return seal_folder(directory, out_dir, recipient_pubkey)

    def upload_copy(self, encrypted_dir: Path) -> str:
        return publish_sealed(self.store, encrypted_dir).manifest_cid
