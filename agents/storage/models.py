"""Publish a Hugging Face-style model folder to IPFS, and fetch it back byte-identical.

``publish_model`` uploads every file (encrypted to a recipient if asked) and a manifest that
describes them; the manifest's CID is the model version's identity on chain. ``fetch_model``
reads the manifest, fetches each file verified against its CID, decrypts it on the fly when
encrypted, checks its size and sha256 against the manifest, and only then makes the folder
appear. Files and folders whose name starts with "." (``.git``, ``.cache``) are not published.

The oracle seals (encrypts) and uploads in two resumable steps: :func:`seal_folder` then
:func:`publish_sealed`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from agents.storage.client import IpfsClient
from agents.storage.crypto import Decryptor, Encryptor, encrypt_stream
from agents.storage.errors import DecryptionError, ManifestError, StorageError
from agents.storage.keys import normalize_public_key, public_key_of
from agents.storage.manifest import Encryption, FileEntry, ModelManifest
from agents.storage.settings import get_storage_settings

log = logging.getLogger(__name__)
SEALED_INDEX = ".oml-sealed.json"


@dataclass(frozen=True)
class ManifestRef:
    """A published model version: the manifest's CID and the manifest itself."""

    cid: str
    manifest: ModelManifest

    @property
    def manifest_cid(self) -> str:  # early callers' name
        return self.cid


PublishedModel = ManifestRef


# ---------------------------------------------------------------------------- publish


def model_files(folder: Path) -> list[Path]:
    """Regular files to publish, sorted; hidden names skipped, symlinks refused."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder} is not a directory")
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_symlink():
            raise ManifestError(f"{path} is a symlink: copy the target into the folder first")
        if path.is_file():
            files.append(path)
    if not files:
        raise ManifestError(f"{folder} holds no files to publish")
    return files


def describe_folder(folder: Path) -> dict[str, Any]:
    """Manifest fields read from a Hugging Face folder's config files (best effort)."""
    fields: dict[str, Any] = {"name": Path(folder).resolve().name}
    try:
        config = json.loads((Path(folder) / "config.json").read_text())
        architectures = config.get("architectures") or [config.get("model_type") or "unknown"]
        fields["architecture"] = str(architectures[0])
    except (OSError, ValueError, IndexError, AttributeError):
        pass
    try:
        tokenizer = json.loads((Path(folder) / "tokenizer_config.json").read_text())
        fields["tokenizer"] = str(tokenizer.get("tokenizer_class") or "unknown")
    except (OSError, ValueError, AttributeError):
        pass
    return fields


class _HashingReader:
    """Reads a file and hashes what was read (one pass for encryption and sha256)."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.handle.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data


def _bar(total: int, desc: str, enabled: bool) -> tqdm[Any]:
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not enabled, leave=False)


def publish_model(
    client: IpfsClient,
    src_dir: Path,
    encrypt_to: bytes | None = None,
    *,
    manifest_fields: dict[str, Any] | None = None,
    cid_version: int = 0,
    progress: bool = False,
) -> ManifestRef:
    """Upload every file of ``src_dir`` (encrypted to ``encrypt_to`` if given) and the manifest.

    ``manifest_fields`` sets or overrides manifest fields (license, parents, fingerprint_scheme,
    ...). Everything uploaded is pinned on the node.
    """
    src_dir = Path(src_dir)
    files = model_files(src_dir)
    if encrypt_to is not None:
        return _publish_encrypted(
            client, src_dir, files, encrypt_to, manifest_fields, cid_version, progress
        )
    entries = []
    with _bar(sum(p.stat().st_size for p in files), "upload", progress) as bar:
        for path in files:
            readers: list[_HashingReader] = []

            def plaintext(
                path: Path = path, readers: list[_HashingReader] = readers
            ) -> Iterator[bytes]:
                # One read of the file feeds the upload, the local CID and the sha256.
                with path.open("rb") as handle:
                    reader = _HashingReader(handle)
                    readers.append(reader)
                    while data := reader.read(1 << 20):
                        bar.update(len(data))
                        yield data

            cid = client.add_stream(plaintext, cid_version=cid_version)
            entries.append(
                FileEntry(
                    path=path.relative_to(src_dir).as_posix(),
                    size=readers[-1].size,
                    sha256=readers[-1].digest.hexdigest(),
                    cid=cid,
                )
            )
    return _publish_manifest(client, src_dir, entries, None, manifest_fields)


def _publish_encrypted(
    client: IpfsClient,
    src_dir: Path,
    files: list[Path],
    encrypt_to: bytes,
    manifest_fields: dict[str, Any] | None,
    cid_version: int,
    progress: bool,
) -> ManifestRef:
    recipient = normalize_public_key(encrypt_to)
    chunk_size = get_storage_settings().encryption_chunk_size
    entries = []
    with _bar(sum(p.stat().st_size for p in files), "encrypt+upload", progress) as bar:
        for path in files:
            relative = path.relative_to(src_dir).as_posix()
            digests: list[_HashingReader] = []

            def ciphertext(
                path: Path = path, relative: str = relative, digests: list[_HashingReader] = digests
            ) -> Iterator[bytes]:
                # Encrypted while it streams to the node: no plaintext or ciphertext copy on
                # disk. A retried upload re-encrypts (new key) and re-hashes from the start.
                encryptor = Encryptor(recipient, chunk_size=chunk_size, context=relative.encode())
                with path.open("rb") as plain:
                    reader = _HashingReader(plain)
                    digests.append(reader)
                    yield encryptor.header
                    while data := reader.read(1 << 20):
                        yield encryptor.update(data)
                        bar.update(len(data))
                    yield encryptor.finalize()

            cid = client.add_stream(ciphertext, cid_version=cid_version)
            reader = digests[-1]
            entries.append(
                FileEntry(
                    path=relative, size=reader.size, sha256=reader.digest.hexdigest(), cid=cid
                )
            )
    encryption = Encryption(recipient_pubkey="0x" + recipient.hex(), chunk_size=chunk_size)
    return _publish_manifest(client, src_dir, entries, encryption, manifest_fields)


def _publish_manifest(
    client: IpfsClient,
    src_dir: Path,
    entries: list[FileEntry],
    encryption: Encryption | None,
    manifest_fields: dict[str, Any] | None,
) -> ManifestRef:
    fields = describe_folder(src_dir)
    fields.update(manifest_fields or {})
    fields["encryption"] = encryption
    try:
        manifest = ModelManifest(files=entries, **fields)
    except ValueError as error:
        raise ManifestError(f"cannot build the manifest of {src_dir}: {error}") from error
    cid = client.add_bytes(manifest.to_json())
    log.info("published %s (%d files) as manifest %s", src_dir, len(entries), cid)
    return ManifestRef(cid, manifest)


# ---------------------------------------------------------------------------- seal (oracle)


def seal_folder(src_dir: Path, out_dir: Path, recipient_pubkey: bytes) -> Path:
    """Encrypt every file of ``src_dir`` into ``out_dir`` (same layout) for the recipient.

    Plaintext sizes and hashes go to an index file, so the sealed folder can be published
    later without the plaintext (the oracle encrypts and uploads in separate, resumable steps).
    Rerunning it overwrites the same outputs.
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    recipient = normalize_public_key(recipient_pubkey)
    chunk_size = get_storage_settings().encryption_chunk_size
    index = []
    for path in model_files(src_dir):
        relative = path.relative_to(src_dir).as_posix()
        target = out_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with path.open("rb") as plain, target.open("wb") as out:
            reader = _HashingReader(plain)
            encrypt_stream(
                reader,
                out,
                recipient,
                chunk_size=chunk_size,
                context=relative.encode(),
            )
        index.append({"path": relative, "size": reader.size, "sha256": reader.digest.hexdigest()})
    record = {
        "recipient_pubkey": recipient.hex(),
        "chunk_size": chunk_size,
        "fields": describe_folder(src_dir),
        "files": index,
    }
    temp = out_dir / (SEALED_INDEX + ".part")
    temp.write_text(json.dumps(record))
    temp.replace(out_dir / SEALED_INDEX)  # the index's presence means the seal is complete
    return out_dir


def publish_sealed(
    store: IpfsClient,
    sealed_dir: Path,
    *,
    manifest_fields: dict[str, Any] | None = None,
    progress: bool = False,
) -> ManifestRef:
    """Upload a folder made by :func:`seal_folder`, and its manifest."""
    sealed_dir = Path(sealed_dir)
    try:
        record = json.loads((sealed_dir / SEALED_INDEX).read_text())
    except (OSError, ValueError) as error:
        raise ManifestError(f"{sealed_dir} is not a complete sealed folder: seal it again") from (
            error
        )
    if "chunk_size" not in record or "fields" not in record:
        raise ManifestError(f"{sealed_dir} was sealed by an older oml-hub format: seal it again")
    entries = []
    with _bar(sum(int(i["size"]) for i in record["files"]), "upload", progress) as bar:
        for item in record["files"]:
            cid = store.add_file(sealed_dir / item["path"])
            entries.append(
                FileEntry(path=item["path"], size=item["size"], sha256=item["sha256"], cid=cid)
            )
            bar.update(int(item["size"]))
    fields: dict[str, Any] = dict(record.get("fields", {}))
    fields.update(manifest_fields or {})
    fields["encryption"] = Encryption(
        recipient_pubkey="0x" + record["recipient_pubkey"], chunk_size=record["chunk_size"]
    )
    try:
        manifest = ModelManifest(files=entries, **fields)
    except ValueError as error:
        raise ManifestError(f"cannot build the manifest of {sealed_dir}: {error}") from error
    return ManifestRef(store.add_bytes(manifest.to_json()), manifest)


# ---------------------------------------------------------------------------- fetch


def load_manifest(client: IpfsClient, manifest_cid: str) -> ModelManifest:
    """The manifest at ``manifest_cid``, verified against its CID and validated."""
    return ModelManifest.from_json(client.cat(manifest_cid), source=f"manifest {manifest_cid}")


class _DecryptAndHash:
    """Decrypts what it is fed and hashes the plaintext, for one manifest entry."""

    def __init__(self, private_key: bytes, entry: FileEntry) -> None:
        self.decryptor = Decryptor(private_key, context=entry.path.encode(), source=entry.path)
        self.digest = hashlib.sha256()
        self.size = 0

    def _out(self, plain: bytes) -> bytes:
        self.digest.update(plain)
        self.size += len(plain)
        return plain

    def update(self, data: bytes) -> bytes:
        return self._out(self.decryptor.update(data))

    def finalize(self) -> bytes:
        return self._out(self.decryptor.finalize())


class _Hash(_DecryptAndHash):
    def __init__(self) -> None:
        self.digest = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> bytes:
        return self._out(data)

    def finalize(self) -> bytes:
        return b""


def fetch_model(
    client: IpfsClient,
    manifest_cid: str,
    dest_dir: Path,
    private_key: bytes | None = None,
    *,
    progress: bool = False,
) -> ModelManifest:
    """Restore a published folder into ``dest_dir`` (must not exist yet), byte-identical.

    Nothing appears at ``dest_dir`` unless every file matched its CID, decrypted (when
    encrypted) and matched the manifest's size and sha256.
    """
    dest_dir = Path(dest_dir)
    if dest_dir.exists():
        raise ManifestError(f"{dest_dir} already exists: choose a new destination")
    manifest = load_manifest(client, manifest_cid)
    if manifest.encryption is not None:
        if private_key is None:
            raise ManifestError(
                f"model {manifest_cid} is encrypted to {manifest.encryption.recipient_pubkey[:18]}"
                "...: pass that account's key (--keystore)"
            )
        mine = "0x" + public_key_of(private_key).hex()
        if mine != manifest.encryption.recipient_pubkey:
            raise DecryptionError(
                f"model {manifest_cid} was not encrypted to this key: it is for "
                f"{manifest.encryption.recipient_pubkey[:18]}..., the key given is "
                f"{mine[:18]}...; use the account the copy was issued to"
            )
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.", dir=dest_dir.parent))
    try:
        with _bar(manifest.total_size, "download", progress) as bar:
            for entry in manifest.files:
                _fetch_entry(client, manifest_cid, manifest, entry, staging, private_key)
                bar.update(entry.size)
        staging.chmod(0o777 & ~_umask())
        staging.rename(dest_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("fetched manifest %s (%d files) into %s", manifest_cid, len(manifest.files), dest_dir)
    return manifest


def _fetch_entry(
    client: IpfsClient,
    manifest_cid: str,
    manifest: ModelManifest,
    entry: FileEntry,
    staging: Path,
    private_key: bytes | None,
) -> None:
    sinks: list[_DecryptAndHash] = []

    def make() -> _DecryptAndHash:
        sink: _DecryptAndHash
        if manifest.encryption is not None and private_key is not None:
            sink = _DecryptAndHash(private_key, entry)
        else:
            sink = _Hash()
        sinks.append(sink)
        return sink

    target = staging / entry.path
    client.get_file(entry.cid, target, transform=make)
    sink = sinks[-1]
    if sink.size != entry.size or sink.digest.hexdigest() != entry.sha256:
        target.unlink(missing_ok=True)
        raise ManifestError(
            f"{entry.path} from {entry.cid} does not match manifest {manifest_cid} (size "
            f"{sink.size} vs {entry.size}, or sha256): the publisher recorded the wrong file; "
            "nothing was written"
        )


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Early callers' names.
def publish_folder(
    store: IpfsClient,
    src_dir: Path,
    *,
    manifest_fields: dict[str, Any] | None = None,
    encrypt_to: bytes | None = None,
    progress: bool = False,
) -> ManifestRef:
    return publish_model(
        store, src_dir, encrypt_to, manifest_fields=manifest_fields, progress=progress
    )


def fetch_folder(
    store: IpfsClient,
    manifest_cid: str,
    dest_dir: Path,
    *,
    private_key: bytes | None = None,
    progress: bool = False,
) -> ModelManifest:
    return fetch_model(store, manifest_cid, dest_dir, private_key, progress=progress)


__all__ = [
    "SEALED_INDEX",
    "ManifestRef",
    "PublishedModel",
    "StorageError",
    "fetch_folder",
    "fetch_model",
    "load_manifest",
    "publish_folder",
    "publish_model",
    "publish_sealed",
    "seal_folder",
]
