"""Envelope encryption of files to a recipient's secp256k1 key (an Ethereum account's key).

Container, version 1 (all integers big-endian)::

    offset size
    0      6    magic  "OMLENC"
    6      1    version = 1
    7      1    algorithm = 1  (ECIES secp256k1 / HKDF-SHA256 / AES-256-GCM, chunked AES-256-GCM)
    8      4    chunk_size     plaintext bytes per chunk (4 KiB .. 16 MiB)
    12     20   recipient      Ethereum address of the recipient key (for error messages)
    32     65   ephemeral      uncompressed ephemeral public key (0x04 || X || Y)
    97     12   wrap_nonce
    109    48   wrapped_key    AES-256-GCM(KEK, content key) with bytes 0..97 as associated data
    157    ...  chunks         AES-256-GCM(content key, chunk) = ciphertext || 16-byte tag

KEK = HKDF-SHA256(ikm = X coordinate of ECDH(ephemeral, recipient), salt = ephemeral ||
recipient public key, info = "oml-hub/ecies/v1"). Each file gets its own random 32-byte
content key, so deterministic nonces never repeat under one key. Chunk ``i`` uses the nonce
``i`` (11 bytes) || ``final`` (1 byte, 1 only on the last chunk) and the associated data
SHA-256(header || context), where ``context`` is the file's path inside a folder: reordering,
dropping, duplicating, truncating or extending chunks, or moving a file to another path, makes
authentication fail. An empty file is one final chunk of 16 bytes (the tag alone).

:func:`decrypt_file` writes to a temporary file and renames it only after the final chunk
authenticated, so a wrong key or any tampering leaves nothing at the destination.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agents.storage.errors import DecryptionError
from agents.storage.keys import address_of, normalize_public_key

MAGIC = b"OMLENC"
VERSION = 1
ALGORITHM = 1
ALGORITHM_NAME = "oml-ecies-secp256k1-hkdf-sha256-aes256gcm-chunked-v1"
CHUNK_SIZE = 1 << 20
MIN_CHUNK, MAX_CHUNK = 4096, 16 << 20
TAG_SIZE = 16
_PREFIX = struct.Struct(">6sBBI20s65s")  # magic, version, algorithm, chunk size, address, eph.
HEADER_SIZE = _PREFIX.size + 12 + 48
_INFO = b"oml-hub/ecies/v1"
_READ = 1 << 20


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


def _kek(private: coincurve.PrivateKey, peer: coincurve.PublicKey, salt: bytes) -> bytes:
    shared_x = peer.multiply(private.secret).format(compressed=True)[1:]
    return HKDF(hashes.SHA256(), 32, salt=salt, info=_INFO).derive(shared_x)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class Encryptor:
    """Incremental encryption: ``header``, then ``update()`` pieces, then ``finalize()``."""

    def __init__(
        self, recipient_pubkey: bytes, *, chunk_size: int = CHUNK_SIZE, context: bytes = b""
    ) -> None:
        if not MIN_CHUNK <= chunk_size <= MAX_CHUNK:
            raise ValueError(f"chunk_size must be within {MIN_CHUNK}..{MAX_CHUNK}")
        recipient = normalize_public_key(recipient_pubkey)
        peer = coincurve.PublicKey(b"\x04" + recipient)
        ephemeral = coincurve.PrivateKey()
        ephemeral_pub = ephemeral.public_key.format(compressed=False)
        content_key = secrets.token_bytes(32)
        prefix = _PREFIX.pack(
            MAGIC, VERSION, ALGORITHM, chunk_size, address_of(recipient), ephemeral_pub
        )
        wrap_nonce = secrets.token_bytes(12)
        kek = _kek(ephemeral, peer, ephemeral_pub + b"\x04" + recipient)
        self.header = prefix + wrap_nonce + AESGCM(kek).encrypt(wrap_nonce, content_key, prefix)
        self._aad = hashlib.sha256(self.header + context).digest()
        self._cipher = AESGCM(content_key)
        self._chunk = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._done = False

    def update(self, data: bytes) -> bytes:
        """Ciphertext of the chunks that are complete and known not to be the last."""
        self._buffer += data
        out = bytearray()
        # A chunk leaves only once a byte after it exists: the last one carries the final flag.
        while len(self._buffer) > self._chunk:
            out += self._seal(bytes(self._buffer[: self._chunk]), final=False)
            del self._buffer[: self._chunk]
        return bytes(out)

    def finalize(self) -> bytes:
        if self._done:
            raise RuntimeError("finalize() called twice")
        self._done = True
        last = self._seal(bytes(self._buffer), final=True)
        self._buffer.clear()
        return last

    def _seal(self, chunk: bytes, *, final: bool) -> bytes:
        sealed = self._cipher.encrypt(_nonce(self._index, final), chunk, self._aad)
        self._index += 1
        return sealed


class Decryptor:
    """Incremental decryption; each returned piece has authenticated, but the *whole* stream
    is only proven complete when ``finalize()`` returns: treat output as tentative until then."""

    def __init__(self, private_key: bytes, *, context: bytes = b"", source: str = "ciphertext"):
        if len(private_key) != 32:
            raise DecryptionError("a private key is 32 bytes")
        self._key = coincurve.PrivateKey(private_key)
        self._context = context
        self._source = source
        self._buffer = bytearray()
        self._cipher: AESGCM | None = None
        self._aad = b""
        self._chunk = 0
        self._index = 0

    def update(self, data: bytes) -> bytes:
        self._buffer += data
        if self._cipher is None:
            if len(self._buffer) < HEADER_SIZE:
                return b""
            self._open_header(bytes(self._buffer[:HEADER_SIZE]))
            del self._buffer[:HEADER_SIZE]
        sealed = self._chunk + TAG_SIZE
        out = bytearray()
        while len(self._buffer) > sealed:
            out += self._open(bytes(self._buffer[:sealed]), final=False)
            del self._buffer[:sealed]
        return bytes(out)

    def finalize(self) -> bytes:
        if self._cipher is None:
            raise DecryptionError(
                f"{self._source} is truncated: shorter than the {HEADER_SIZE}-byte header"
            )
        last = self._open(bytes(self._buffer), final=True)
        self._buffer.clear()
        return last

    def _open_header(self, header: bytes) -> None:
        magic, version, algorithm, chunk, address, ephemeral_pub = _PREFIX.unpack(
            header[: _PREFIX.size]
        )
        if magic != MAGIC:
            raise DecryptionError(f"{self._source} is not an OML Hub encrypted file")
        if version != VERSION or algorithm != ALGORITHM:
            raise DecryptionError(
                f"{self._source} uses container version {version} / algorithm {algorithm}; this "
                f"build reads version {VERSION} / algorithm {ALGORITHM}: upgrade oml-hub"
            )
        if not MIN_CHUNK <= chunk <= MAX_CHUNK:
            raise DecryptionError(f"{self._source} declares an invalid chunk size {chunk}")
        own = self._key.public_key.format(compressed=False)
        try:
            kek = _kek(self._key, coincurve.PublicKey(ephemeral_pub), ephemeral_pub + own)
            content_key = AESGCM(kek).decrypt(
                header[_PREFIX.size : _PREFIX.size + 12],
                header[_PREFIX.size + 12 :],
                header[: _PREFIX.size],
            )
        except (InvalidTag, ValueError) as error:
            mine = "0x" + address_of(own[1:]).hex()
            raise DecryptionError(
                f"{self._source} was not encrypted to this key (it names recipient "
                f"0x{address.hex()}, the key given is {mine}): use the account the copy was "
                "issued to"
            ) from error
        self._cipher = AESGCM(content_key)
        self._aad = hashlib.sha256(header + self._context).digest()
        self._chunk = chunk

    def _open(self, sealed: bytes, *, final: bool) -> bytes:
        assert self._cipher is not None
        try:
            plain = self._cipher.decrypt(_nonce(self._index, final), sealed, self._aad)
        except InvalidTag as error:
            raise DecryptionError(
                f"{self._source} is corrupted, truncated, extended or reordered at chunk "
                f"{self._index} (or was moved from another path); nothing was written — fetch "
                "it again from a trusted source"
            ) from error
        self._index += 1
        return plain


def encrypt_stream(
    src: Readable,
    dst: Writable,
    recipient_pubkey: bytes,
    *,
    chunk_size: int = CHUNK_SIZE,
    context: bytes = b"",
) -> int:
    """Encrypt everything readable from ``src`` into ``dst``; returns ciphertext bytes written."""
    encryptor = Encryptor(recipient_pubkey, chunk_size=chunk_size, context=context)
    written = dst.write(encryptor.header)
    while data := src.read(_READ):
        written += dst.write(encryptor.update(data))
    return written + dst.write(encryptor.finalize())


def decrypt_stream(
    src: Readable, dst: Writable, private_key: bytes, *, context: bytes = b"", source: str = ""
) -> int:
    """Decrypt ``src`` into ``dst``; returns plaintext bytes written.

    ``dst`` receives authenticated chunks as they come: if this raises, discard what it got
    (use :func:`decrypt_file` to have that done for you).
    """
    decryptor = Decryptor(private_key, context=context, source=source or "ciphertext")
    written = 0
    while data := src.read(_READ):
        written += dst.write(decryptor.update(data))
    return written + dst.write(decryptor.finalize())


def encrypt_file(
    src: Path,
    dst: Path,
    recipient_pubkey: bytes,
    chunk_size: int = CHUNK_SIZE,
    *,
    context: bytes = b"",
) -> int:
    """Encrypt ``src`` to ``dst`` (atomically) for the holder of ``recipient_pubkey``."""
    with Path(src).open("rb") as plain, _AtomicFile(Path(dst)) as out:
        return encrypt_stream(plain, out, recipient_pubkey, chunk_size=chunk_size, context=context)


def decrypt_file(src: Path, dst: Path, private_key: bytes, *, context: bytes = b"") -> int:
    """Decrypt ``src`` into ``dst``; raises DecryptionError and writes nothing on failure."""
    with Path(src).open("rb") as sealed, _AtomicFile(Path(dst)) as out:
        return decrypt_stream(sealed, out, private_key, context=context, source=str(src))


def _folder_files(folder: Path) -> list[Path]:
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            raise ValueError(f"{path} is a symlink: copy the target in first")
        if path.is_file():
            files.append(path)
    return files


def encrypt_folder(
    src: Path, dst: Path, recipient_pubkey: bytes, *, chunk_size: int = CHUNK_SIZE
) -> list[Path]:
    """Encrypt every file under ``src`` to the same relative path under ``dst``.

    Each file's relative path is bound into its ciphertext. Returns the relative paths.
    """
    src, dst = Path(src), Path(dst)
    done = []
    for path in _folder_files(src):
        relative = path.relative_to(src)
        encrypt_file(
            path, dst / relative, recipient_pubkey, chunk_size, context=relative.as_posix().encode()
        )
        done.append(relative)
    return done


def decrypt_folder(src: Path, dst: Path, private_key: bytes) -> list[Path]:
    """Decrypt a folder made by :func:`encrypt_folder` into ``dst`` (which must not exist).

    All files are decrypted into a staging folder first; ``dst`` appears only if every file
    authenticated.
    """
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise FileExistsError(f"{dst} already exists: choose a new destination")
    dst.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    try:
        done = []
        for path in _folder_files(src):
            relative = path.relative_to(src)
            decrypt_file(
                path, staging / relative, private_key, context=relative.as_posix().encode()
            )
            done.append(relative)
        staging.chmod(0o755)
        staging.rename(dst)
        return done
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class _AtomicFile:
    """A binary file written under a temporary name and renamed into place on success."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest

    def __enter__(self) -> BinaryIO:
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(
            prefix=f".{self.dest.name}.", suffix=".part", dir=self.dest.parent
        )
        self._temp = Path(name)
        self._handle: BinaryIO = os.fdopen(fd, "wb")
        return self._handle

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self._handle.close()
            if exc_type is None:
                self._temp.chmod(0o644)
                self._temp.replace(self.dest)
        finally:
            self._temp.unlink(missing_ok=True)
