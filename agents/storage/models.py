"""Publish a Hugging Face-style model folder to IPFS, and fetch it back byte-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError
from tqdm import tqdm

from agents.storage.client import IpfsStore
from agents.storage.crypto import decrypt_file, encrypt_file
from agents.storage.errors import ManifestError
from agents.storage.manifest import Encryption, FileEntry, ModelManifest


@dataclass(frozen=True)
class PublishedModel:
    manifest_cid: str
    manifest: ModelManifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while data := handle.read(1 << 20):
            digest.update(data)
    return digest.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def _architecture(folder: Path) -> str:
    try:
        config = json.loads((folder / "config.json").read_text())
        return str((config.get("architectures") or [config.get("model_type", "unknown")])[0])
    except (OSError, ValueError, IndexError):
        return "unknown"


SEALED_INDEX = ".oml-sealed.json"


def seal_folder(src_dir: Path, out_dir: Path, recipient_pubkey: bytes) -> Path:
    """Encrypt every file of ``src_dir`` into ``out_dir`` (same layout) for the recipient.

    The plaintext sizes and hashes go to an index file so the sealed folder can be published
    later without the plaintext (the oracle encrypts and uploads in separate, resumable steps).
    """
    files = _files(src_dir)
    if not files:
        raise ManifestError(f"{src_dir} holds no files to seal")
    index = []
    for path in files:
        relative = path.relative_to(src_dir).as_posix()
        encrypt_file(path, out_dir / relative, recipient_pubkey)
        index.append({"path": relative, "size": path.stat().st_size, "sha256": _sha256(path)})
    record = {"recipient_pubkey": recipient_pubkey.hex(), "architecture": _architecture(src_dir),
              "name": src_dir.name, "files": index}  # fmt: skip
    (out_dir / SEALED_INDEX).write_text(json.dumps(record))
    return out_dir


def publish_sealed(
    store: IpfsStore,
    sealed_dir: Path,
    *,
    manifest_fields: dict[str, Any] | None = None,
    progress: bool = False,
) -> PublishedModel:
    """Upload a folder made by :func:`seal_folder` and its manifest."""
    record = json.loads((sealed_dir / SEALED_INDEX).read_text())
    entries: list[FileEntry] = []
    total = sum(int(item["size"]) for item in record["files"])
    with tqdm(total=total, unit="B", unit_scale=True, disable=not progress, desc="upload") as bar:
        for item in record["files"]:
            cid = store.add_file(sealed_dir / item["path"])
            entries.append(FileEntry(path=item["path"], size=item["size"],
                                     sha256=item["sha256"], cid=cid))  # fmt: skip
            bar.update(int(item["size"]))
    fields: dict[str, Any] = {"name": record["name"], "architecture": record["architecture"]}
    fields.update(manifest_fields or {})
    fields["encryption"] = Encryption(recipient_pubkey="0x" + record["recipient_pubkey"])
    manifest = ModelManifest(files=entries, **fields)
    manifest_cid = store.add_bytes(manifest.model_dump_json(indent=2).encode())
    return PublishedModel(manifest_cid=manifest_cid, manifest=manifest)


def publish_folder(
    store: IpfsStore,
    src_dir: Path,
    *,
    manifest_fields: dict[str, Any] | None = None,
    encrypt_to: bytes | None = None,
    progress: bool = False,
) -> PublishedModel:
    """Upload every file (encrypted to ``encrypt_to`` if given) and the manifest."""
    if encrypt_to is not None:
        with tempfile.TemporaryDirectory(prefix="oml-seal-") as scratch:
            sealed = seal_folder(src_dir, Path(scratch) / "sealed", encrypt_to)
            return publish_sealed(store, sealed, manifest_fields=manifest_fields, progress=progress)
    files = _files(src_dir)
    if not files:
        raise ManifestError(f"{src_dir} holds no files to publish")
    entries: list[FileEntry] = []
    total = sum(p.stat().st_size for p in files)
    with tqdm(total=total, unit="B", unit_scale=True, disable=not progress, desc="upload") as bar:
        for path in files:
            cid = store.add_file(path, progress=bar.update)
            relative = path.relative_to(src_dir).as_posix()
            size = path.stat().st_size
            entries.append(FileEntry(path=relative, size=size, sha256=_sha256(path), cid=cid))
    fields: dict[str, Any] = {"name": src_dir.name, "architecture": _architecture(src_dir)}
    fields.update(manifest_fields or {})
    manifest = ModelManifest(files=entries, **fields)
    manifest_cid = store.add_bytes(manifest.model_dump_json(indent=2).encode())
    return PublishedModel(manifest_cid=manifest_cid, manifest=manifest)


def load_manifest(store: IpfsStore, manifest_cid: str) -> ModelManifest:
    try:
        return ModelManifest.model_validate_json(store.cat(manifest_cid))
    except ValidationError as error:
        raise ManifestError(f"{manifest_cid} is not a valid OML model manifest: {error}") from error


def fetch_folder(
    store: IpfsStore,
    manifest_cid: str,
    dest_dir: Path,
    *,
    private_key: bytes | None = None,
    progress: bool = False,
) -> ModelManifest:
    """Restore a published folder into ``dest_dir`` (created; must not exist yet)."""
    manifest = load_manifest(store, manifest_cid)
    if manifest.encryption is not None and private_key is None:
        raise ManifestError(f"{manifest_cid} is encrypted: pass the recipient's key (--keystore)")
    if dest_dir.exists():
        raise ManifestError(f"{dest_dir} already exists: choose a new destination")
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", dir=dest_dir.parent))
    try:
        with tqdm(total=manifest.total_size, unit="B", unit_scale=True, disable=not progress,
                  desc="download") as bar:  # fmt: skip
            for entry in manifest.files:
                relative = PurePosixPath(entry.path)
                if relative.is_absolute() or ".." in relative.parts:
                    raise ManifestError(f"manifest {manifest_cid} has an unsafe path {entry.path}")
                target = staging / relative
                if manifest.encryption is not None and private_key is not None:
                    sealed = staging / ".sealed"
                    store.get_file(entry.cid, sealed)
                    decrypt_file(sealed, target, private_key)
                    sealed.unlink()
                else:
                    store.get_file(entry.cid, target)
                if target.stat().st_size != entry.size or _sha256(target) != entry.sha256:
                    raise ManifestError(f"{entry.path} does not match manifest {manifest_cid}")
                bar.update(entry.size)
        staging.rename(dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
