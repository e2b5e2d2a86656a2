"""The model manifest (schema version 1): what a model version is, stored on IPFS as JSON.

Its CID is what the contracts record (`manifestCID`). It lists every file with its size,
sha256 and CID, the parents in the family tree, the fingerprint scheme's parameters (never
the keys) and, for encrypted uploads, to whom — never the content key.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Literal[1] = 1


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str = Field(description="relative POSIX path inside the model folder")
    size: int = Field(ge=0, description="plaintext size in bytes")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the plaintext")
    cid: str = Field(description="CID of the stored bytes (ciphertext when encrypted)")


class ParentRef(BaseModel):
    model_id: int = Field(ge=1)
    version: int = Field(ge=0)


class Encryption(BaseModel):
    algorithm: Literal["oml-ecies-secp256k1-aes256gcm-chunked-v1"] = (
        "oml-ecies-secp256k1-aes256gcm-chunked-v1"
    )
    recipient_pubkey: str = Field(pattern=r"^0x[0-9a-f]{128}$")


class ModelManifest(BaseModel):
    schema_version: Literal[1] = SCHEMA_VERSION
    name: str
    architecture: str = "unknown"
    tokenizer: str = "unknown"
    license: str = "unspecified"
    files: list[FileEntry]
    parents: list[ParentRef] = []
    fingerprint_scheme: dict[str, Any] = Field(
        default_factory=dict, description="parameters of the fingerprint scheme, never keys"
    )
    encryption: Encryption | None = None

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files)
