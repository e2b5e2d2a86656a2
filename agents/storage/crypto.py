"""Envelope encryption of a file to a recipient's secp256k1 key (an Ethereum account's key).

Container (version 1)::

    magic "OMLENC1\\0" | chunk_size u32 | ephemeral pubkey (65) | wrap nonce (12) | wrapped key (48)
    chunk_0 | chunk_1 | ... | chunk_n        each = AES-256-GCM(content key, plaintext ≤ chunk_size)

A random 32-byte content key per file is wrapped with ECIES: ECDH(ephemeral, recipient) →
HKDF-SHA256 → AES-256-GCM. Chunk i uses nonce = i (11 bytes, big-endian) || final flag, with
the header's SHA-256 as associated data, so chunks cannot be reordered, dropped, truncated or
moved to another file. Decryption writes to a temporary file and renames it only after the
final chunk authenticates: a wrong key or any tampering writes nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import tempfile
from pathlib import Path

import coincurve
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from agents.storage.errors import DecryptionError

MAGIC = b"OMLENC1\0"
CHUNK_SIZE = 1 << 20
HEADER_SIZE = len(MAGIC) + 4 + 65 + 12 + 48
_INFO = b"oml-hub/content-key/v1"


def _public_key(recipient: bytes) -> coincurve.PublicKey:
    if len(recipient) == 64:
        recipient = b"\x04" + recipient
    try:
        return coincurve.PublicKey(recipient)
    except ValueError as error:
        raise ValueError("recipient must be a 64-byte uncompressed secp256k1 public key") from error


def _kek(shared: bytes, ephemeral_pub: bytes) -> bytes:
    return HKDF(hashes.SHA256(), 32, salt=ephemeral_pub, info=_INFO).derive(shared)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def encrypt_file(
    src: Path, dst: Path, recipient_pubkey: bytes, chunk_size: int = CHUNK_SIZE
) -> None:
    """Encrypt ``src`` to ``dst`` for the holder of ``recipient_pubkey`` (streamed)."""
    content_key = secrets.token_bytes(32)
    ephemeral = coincurve.PrivateKey()
    ephemeral_pub = ephemeral.public_key.format(compressed=False)
    shared = ephemeral.ecdh(_public_key(recipient_pubkey).format())
    prefix = MAGIC + struct.pack(">I", chunk_size) + ephemeral_pub
    wrap_nonce = secrets.token_bytes(12)
    wrapped = AESGCM(_kek(shared, ephemeral_pub)).encrypt(wrap_nonce, content_key, prefix)
    header = prefix + wrap_nonce + wrapped
    aad = hashlib.sha256(header).digest()
    cipher = AESGCM(content_key)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as plain, dst.open("wb") as out:
        out.write(header)
        index = 0
        current = plain.read(chunk_size)
        while True:
            following = plain.read(chunk_size)
            final = not following
            out.write(cipher.encrypt(_nonce(index, final), current, aad))
            if final:
                break
            current, index = following, index + 1


def decrypt_file(src: Path, dst: Path, private_key: bytes) -> None:
    """Decrypt ``src`` into ``dst``; raises DecryptionError and writes nothing on failure."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{dst.name}.", dir=dst.parent)
    temp = Path(temp_name)
    try:
        with src.open("rb") as sealed, os.fdopen(fd, "wb") as out:
            header = sealed.read(HEADER_SIZE)
            if len(header) != HEADER_SIZE or not header.startswith(MAGIC):
                raise DecryptionError(f"{src} is not an OML Hub encrypted file (version 1)")
            (chunk_size,) = struct.unpack(">I", header[8:12])
            ephemeral_pub = header[12:77]
            try:
                shared = coincurve.PrivateKey(private_key).ecdh(ephemeral_pub)
                content_key = AESGCM(_kek(shared, ephemeral_pub)).decrypt(
                    header[77:89], header[89:], header[:77]
                )
            except (InvalidTag, ValueError) as error:
                raise DecryptionError(
                    f"{src} was not encrypted to this key: use the account the copy was issued to"
                ) from error
            aad = hashlib.sha256(header).digest()
            cipher = AESGCM(content_key)
            index = 0
            current = sealed.read(chunk_size + 16)
            while True:
                following = sealed.read(chunk_size + 16)
                final = not following
                try:
                    out.write(cipher.decrypt(_nonce(index, final), current, aad))
                except InvalidTag as error:
                    raise DecryptionError(
                        f"{src} is corrupted, truncated or reordered at chunk {index}; nothing "
                        "was written — fetch it again"
                    ) from error
                if final:
                    break
                current, index = following, index + 1
        temp.replace(dst)
    finally:
        temp.unlink(missing_ok=True)
