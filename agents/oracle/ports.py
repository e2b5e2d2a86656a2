"""What the oracle needs from the chain, storage and fingerprinting, as narrow protocols.

The service is written against these so its crash-safety logic is unit-testable; the real
adapters (web3 contracts, the IPFS client, the fingerprint engine) live in ``adapters.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ModelVersion:
    model_id: int
    version: int
    weights_cid: str
    manifest_cid: str


@dataclass(frozen=True)
class FingerprintedCopy:
    directory: Path
    fingerprints: list[tuple[str, str]]  # (key, response), index = position
    seconds: float


@dataclass(frozen=True)
class RecallCheck:
    queried: int
    matched: int

    @property
    def recall(self) -> float:
        return self.matched / self.queried if self.queried else 0.0


class ChainPort(Protocol):
    def model_version(self, model_id: int, version: int) -> ModelVersion: ...

    def is_delivered(self, copy_id: int) -> bool: ...

    def deliver(self, copy_id: int, fp_root: bytes, fp_count: int, copy_cid: str) -> str: ...

    def is_prover(self, address: str) -> bool: ...


class StoragePort(Protocol):
    def fetch_base(self, version: ModelVersion, dest: Path) -> Path: ...

    def encrypt_copy(self, directory: Path, recipient_pubkey: bytes, out_dir: Path) -> Path: ...

    def upload_copy(self, encrypted_dir: Path) -> str: ...


class FingerprintPort(Protocol):
    def embed(
        self, base_dir: Path, out_dir: Path, seed: bytes, count: int
    ) -> FingerprintedCopy: ...

    def check_recall(self, model_dir: Path, fingerprints: list[tuple[str, str]]) -> RecallCheck: ...

    def merkle_root(
        self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes
    ) -> bytes: ...

    def reveal_material(
        self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes, index: int
    ) -> tuple[bytes, list[bytes]]:
        """The (salt, Merkle proof) a prover needs to reveal fingerprint ``index`` on chain."""
        ...
