"""Envelope encryption: round trips, and every way a ciphertext can be wrong writes nothing."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from eth_keys import keys
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_support import flip, listing

from agents.storage.crypto import (
    HEADER_SIZE,
    MIN_CHUNK,
    TAG_SIZE,
    Decryptor,
    Encryptor,
    decrypt_file,
    decrypt_folder,
    decrypt_stream,
    encrypt_file,
    encrypt_folder,
    encrypt_stream,
)
from agents.storage.errors import DecryptionError, KeyFileError
from agents.storage.keys import address_of, normalize_public_key, public_key_of

PRIVATE = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")
PUBLIC = keys.PrivateKey(PRIVATE).public_key.to_bytes()  # the format the contracts store
CHUNK = MIN_CHUNK


def seal(data: bytes, *, context: bytes = b"") -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, PUBLIC, chunk_size=CHUNK, context=context)
    return out.getvalue()


def chunks_of(sealed: bytes) -> tuple[bytes, list[bytes]]:
    size = CHUNK + TAG_SIZE
    body = sealed[HEADER_SIZE:]
    return sealed[:HEADER_SIZE], [body[i : i + size] for i in range(0, len(body), size)]


def open_to_file(sealed: bytes, tmp_path: Path, key: bytes = PRIVATE) -> Path:
    source = tmp_path / "sealed.bin"
    source.write_bytes(sealed)
    dest = tmp_path / "out" / "plain.bin"
    decrypt_file(source, dest, key)
    return dest


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5])
def test_round_trip(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    sealed = seal(data)
    assert len(sealed) == HEADER_SIZE + size + TAG_SIZE * max(1, -(-size // CHUNK))
    assert data[:64] not in sealed or size < 16
    assert open_to_file(sealed, tmp_path).read_bytes() == data


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3 * MIN_CHUNK + 10), cuts=st.lists(st.integers(1, 5000)))
def test_incremental_pieces_do_not_matter(data: bytes, cuts: list[int]) -> None:
    encryptor = Encryptor(PUBLIC, chunk_size=CHUNK)
    sealed = bytearray(encryptor.header)
    position = 0
    for cut in cuts:
        sealed += encryptor.update(data[position : position + cut])
        position += cut
    sealed += encryptor.update(data[position:]) + encryptor.finalize()
    decryptor = Decryptor(PRIVATE)
    plain = bytearray()
    for i in range(0, len(sealed), 777):
        plain += decryptor.update(bytes(sealed[i : i + 777]))
    assert bytes(plain + decryptor.finalize()) == data


def test_each_encryption_is_fresh() -> None:
    assert seal(b"same") != seal(b"same")  # new ephemeral key and content key every time


def assert_refused(sealed: bytes, tmp_path: Path, match: str, key: bytes = PRIVATE) -> None:
    with pytest.raises(DecryptionError, match=match):
        open_to_file(sealed, tmp_path, key)
    out = tmp_path / "out"
    assert not out.exists() or listing(out) == []  # nothing written, no temp file left


def test_wrong_key(tmp_path: Path) -> None:
    other = os.urandom(32)
    sealed = seal(os.urandom(10_000))
    address = "0x" + address_of(PUBLIC).hex()
    assert_refused(sealed, tmp_path, f"not encrypted to this key.*{address}", other)


@pytest.mark.parametrize(
    "where",
    ["magic", "chunk_size", "recipient", "ephemeral", "wrapped_key", "first_chunk", "last_tag"],
)
def test_flipped_byte_anywhere(tmp_path: Path, where: str) -> None:
    sealed = seal(os.urandom(2 * CHUNK + 100))
    position = {
        "magic": 0,
        "chunk_size": 10,
        "recipient": 20,
        "ephemeral": 40,
        "wrapped_key": HEADER_SIZE - 5,
        "first_chunk": HEADER_SIZE + 3,
        "last_tag": len(sealed) - 1,
    }[where]
    with pytest.raises(DecryptionError):
        open_to_file(flip(sealed, position), tmp_path)
    assert listing(tmp_path / "out") == []


def test_truncated_stream(tmp_path: Path) -> None:
    sealed = seal(os.urandom(3 * CHUNK))
    header, chunks = chunks_of(sealed)
    assert_refused(header + b"".join(chunks[:2]), tmp_path, "chunk 1")  # at a chunk boundary
    assert_refused(sealed[:-1], tmp_path, "chunk 2")  # mid-chunk
    assert_refused(header, tmp_path, "chunk 0")  # all chunks gone
    assert_refused(sealed[: HEADER_SIZE - 1], tmp_path, "truncated")  # inside the header


def test_swapped_duplicated_and_extended_chunks(tmp_path: Path) -> None:
    sealed = seal(os.urandom(3 * CHUNK))
    header, (a, b, c) = chunks_of(sealed)
    assert_refused(header + b + a + c, tmp_path, "chunk 0")
    assert_refused(header + a + a + c, tmp_path, "chunk 1")
    assert_refused(sealed + c, tmp_path, "chunk 2")  # a valid chunk appended
    assert_refused(sealed + b"\0" * 20, tmp_path, "chunk 2")


def test_chunks_cannot_move_between_files(tmp_path: Path) -> None:
    # Both files are encrypted to the same recipient, but each has its own content key.
    header1, chunks1 = chunks_of(seal(os.urandom(2 * CHUNK)))
    _, chunks2 = chunks_of(seal(os.urandom(2 * CHUNK)))
    assert_refused(header1 + chunks1[0] + chunks2[1], tmp_path, "chunk 1")


def test_context_binds_the_path(tmp_path: Path) -> None:
    sealed = seal(b"weights", context=b"model.safetensors")
    with pytest.raises(DecryptionError, match="another path"):
        decrypt_stream(io.BytesIO(sealed), io.BytesIO(), PRIVATE, context=b"other.bin")
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(sealed), out, PRIVATE, context=b"model.safetensors")
    assert out.getvalue() == b"weights"


def test_not_a_container(tmp_path: Path) -> None:
    assert_refused(b"PK\x03\x04" + os.urandom(300), tmp_path, "not an OML Hub encrypted file")
    future = bytearray(seal(b"x"))
    future[6] = 2
    assert_refused(bytes(future), tmp_path, "upgrade oml-hub")


def test_existing_destination_survives_a_failed_decryption(tmp_path: Path) -> None:
    dest = tmp_path / "out" / "plain.bin"
    dest.parent.mkdir()
    dest.write_bytes(b"previous good copy")
    (tmp_path / "bad.bin").write_bytes(flip(seal(os.urandom(5000))))
    with pytest.raises(DecryptionError):
        decrypt_file(tmp_path / "bad.bin", dest, PRIVATE)
    assert dest.read_bytes() == b"previous good copy"
    assert listing(tmp_path / "out") == ["plain.bin"]


def test_file_helpers_and_key_formats(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc" * 5000)
    for recipient in (PUBLIC, b"\x04" + PUBLIC, "0x" + PUBLIC.hex(), PUBLIC.hex()):
        encrypt_file(tmp_path / "a.bin", tmp_path / "a.enc", normalize_public_key(recipient))
        decrypt_file(tmp_path / "a.enc", tmp_path / "a.out", PRIVATE)
        assert (tmp_path / "a.out").read_bytes() == b"abc" * 5000
    assert public_key_of(PRIVATE) == PUBLIC
    assert "0x" + address_of(PUBLIC).hex() == keys.PrivateKey(PRIVATE).public_key.to_address()
    with pytest.raises(KeyFileError, match="128 hex digits"):
        normalize_public_key(PUBLIC[:-1])
    with pytest.raises(KeyFileError):
        normalize_public_key(b"\x04" + bytes(64))  # not on the curve


def test_folder_round_trip_and_moved_file(tmp_path: Path) -> None:
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "a.bin").write_bytes(os.urandom(9000))
    (src / "sub" / "b.bin").write_bytes(os.urandom(100))
    (src / "empty").write_bytes(b"")
    encrypt_folder(src, tmp_path / "sealed", PUBLIC)
    decrypt_folder(tmp_path / "sealed", tmp_path / "plain", PRIVATE)
    for name in ("a.bin", "sub/b.bin", "empty"):
        assert (tmp_path / "plain" / name).read_bytes() == (src / name).read_bytes()
    # Swap two sealed files: each authenticates only under its own path.
    a, b = tmp_path / "sealed" / "a.bin", tmp_path / "sealed" / "sub" / "b.bin"
    data_a, data_b = a.read_bytes(), b.read_bytes()
    a.write_bytes(data_b)
    b.write_bytes(data_a)
    with pytest.raises(DecryptionError):
        decrypt_folder(tmp_path / "sealed", tmp_path / "again", PRIVATE)
    assert not (tmp_path / "again").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "plain", "sealed"]
