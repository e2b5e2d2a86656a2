"""The model manifest (schema version 1): what a model version is, stored on IPFS as JSON.

Its CID is what the contracts record (``manifestCID``). It lists every file with its size,
sha256 and CID, the parents in the family tree, the fingerprint scheme's parameters (never the
keys) and, for encrypted uploads, to whom and how — never the content key. The JSON is written
canonically (sorted keys, no spaces), so the same manifest always has the same CID.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.storage.crypto import CHUNK_SIZE
from agents.storage.errors import ManifestError

SCHEMA_VERSION: Literal[1] = 1
# Names that would mean secret material leaked into the public manifest.
_SECRET_NAME = re.compile(
    r"secret|private|content_key|^(seeds?|keys?|responses?|salts?|fingerprints?)$", re.I
)


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(description="relative POSIX path inside the model folder")
    size: int = Field(ge=0, description="plaintext size in bytes")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the plaintext")
    cid: str = Field(description="CID of the stored bytes (the ciphertext when encrypted)")

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        path = PurePosixPath(value)
        if (
            not value
            or path.is_absolute()
            or "\\" in value
            or any(part in ("", ".", "..") for part in value.split("/"))
        ):
            raise ValueError(f"unsafe or non-canonical path {value!r}")
        return value


class ParentRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model_id: int = Field(ge=1, description="ModelRegistry token id of the parent")
    version: int = Field(ge=0, description="version index of the parent")


class Encryption(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["oml-ecies-secp256k1-hkdf-sha256-aes256gcm-chunked-v1"] = (
        "oml-ecies-secp256k1-hkdf-sha256-aes256gcm-chunked-v1"
    )
    recipient_pubkey: str = Field(
        pattern=r"^0x[0-9a-f]{128}$", description="64-byte uncompressed secp256k1 key, hex"
    )
    chunk_size: int = Field(CHUNK_SIZE, description="plaintext bytes per AES-GCM chunk")
    path_bound: bool = Field(True, description="each file's path is authenticated with it")


class ModelManifest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(min_length=1, max_length=200)
    architecture: str = "unknown"
    tokenizer: str = "unknown"
    license: str = "unspecified"
    files: list[FileEntry] = Field(min_length=1)
    parents: list[ParentRef] = Field(default_factory=list, max_length=4)
    fingerprint_scheme: dict[str, Any] = Field(
        default_factory=dict, description="parameters of the fingerprint scheme, never keys"
    )
    encryption: Encryption | None = None

    @field_validator("files")
    @classmethod
    def _unique_sorted(cls, files: list[FileEntry]) -> list[FileEntry]:
        paths = [entry.path for entry in files]
        if len(set(paths)) != len(paths):
            raise ValueError("duplicate file paths")
        prefixes = {"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)}
        if clash := prefixes & set(paths):
            raise ValueError(f"paths used both as file and folder: {sorted(clash)}")
        return sorted(files, key=lambda entry: entry.path)

    @field_validator("fingerprint_scheme")
    @classmethod
    def _no_secrets(cls, scheme: dict[str, Any]) -> dict[str, Any]:
        def walk(value: Any, where: str) -> None:
            if isinstance(value, dict):
                for key, item in value.items():
                    if _SECRET_NAME.search(str(key)):
                        raise ValueError(
                            f"fingerprint_scheme.{where}{key} looks like secret material; the "
                            "manifest is public: publish parameters only"
                        )
                    walk(item, f"{where}{key}.")
            elif isinstance(value, list):
                for item in value:
                    walk(item, where)

        walk(scheme, "")
        return scheme

    @property
    def total_size(self) -> int:
        return sum(entry.size for entry in self.files)

    def to_json(self) -> bytes:
        """Canonical bytes: equal manifests give equal CIDs."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes, *, source: str = "manifest") -> ModelManifest:
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ManifestError(f"{source} is not JSON: it is not an OML model manifest") from error
        if not isinstance(document, dict) or "schema_version" not in document:
            raise ManifestError(f"{source} has no schema_version: not an OML model manifest")
        version = document["schema_version"]
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"{source} has manifest schema_version {version}; this build reads "
                f"{SCHEMA_VERSION}: upgrade oml-hub"
            )
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise ManifestError(f"{source} is not a valid OML model manifest: {error}") from error
