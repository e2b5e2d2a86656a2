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


def publish_folder(
    store: IpfsStore,
    src_dir: Path,
    *,
    manifest_fields: dict[str, Any] | None = None,
    encrypt_to: bytes | None = None,
    progress: bool = False,
) -> PublishedModel:
    """Upload every file (encrypted to ``encrypt_to`` if given) and the manifest."""
    files = _files(src_dir)
    if not files:
        raise ManifestError(f"{src_dir} holds no files to publish")
    entries: list[FileEntry] = []
    total = sum(p.stat().st_size for p in files)
    with (
        tqdm(total=total, unit="B", unit_scale=True, disable=not progress, desc="upload") as bar,
        tempfile.TemporaryDirectory(prefix="oml-publish-") as scratch,
    ):
        for path in files:
            upload = path
            if encrypt_to is not None:
                upload = Path(scratch) / "sealed"
                encrypt_file(path, upload, encrypt_to)
            cid = store.add_file(upload, progress=bar.update if upload is path else None)
            if upload is not path:
                bar.update(path.stat().st_size)
            relative = path.relative_to(src_dir).as_posix()
            entries.append(FileEntry(path=relative, size=path.stat().st_size,
                                     sha256=_sha256(path), cid=cid))  # fmt: skip
    fields: dict[str, Any] = {"name": src_dir.name, "architecture": _architecture(src_dir)}
    fields.update(manifest_fields or {})
    if encrypt_to is not None:
        fields["encryption"] = Encryption(recipient_pubkey="0x" + encrypt_to.hex())
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
