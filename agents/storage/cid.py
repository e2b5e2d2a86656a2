"""Content identifiers: parse, print and check CIDv0 / CIDv1 without trusting any node.

Only what this layer can verify is accepted: sha2-256 multihashes over dag-pb (0x70) or raw
(0x55) blocks. CIDv0 prints in base58btc (``Qm...``); CIDv1 in base32 (``b...``), the form Kubo
prints by default. Comparisons are on the binary CID, so the same CID in two bases is equal.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from agents.storage.errors import InvalidCid

DAG_PB = 0x70
RAW = 0x55
SHA2_256 = 0x12
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {char: index for index, char in enumerate(_B58)}


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data: bytes, offset: int) -> tuple[int, int]:
    """The varint at ``offset`` and the offset after it."""
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise ValueError("truncated or oversized varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _B58_INDEX[char]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


@dataclass(frozen=True)
class Cid:
    """A parsed CID. ``str()`` gives its canonical text (base58 for v0, base32 for v1)."""

    version: int
    codec: int
    digest: bytes  # the sha2-256 digest of the block

    @property
    def multihash(self) -> bytes:
        return bytes([SHA2_256, 32]) + self.digest

    def to_bytes(self) -> bytes:
        if self.version == 0:
            return self.multihash
        return b"\x01" + varint(self.codec) + self.multihash

    def __str__(self) -> str:
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + base64.b32encode(self.to_bytes()).decode().lower().rstrip("=")

    def matches(self, block: bytes) -> bool:
        """Whether ``block`` is the block this CID names."""
        return hashlib.sha256(block).digest() == self.digest

    @classmethod
    def of_block(cls, block: bytes, *, codec: int = DAG_PB, version: int = 1) -> Cid:
        if version == 0 and codec != DAG_PB:
            raise InvalidCid("CIDv0 can only name dag-pb blocks")
        return cls(version, codec, hashlib.sha256(block).digest())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Cid:
        if len(raw) == 34 and raw[:2] == b"\x12\x20":
            return cls(0, DAG_PB, raw[2:])
        try:
            version, offset = read_varint(raw, 0)
            codec, offset = read_varint(raw, offset)
            hash_code, offset = read_varint(raw, offset)
            length, offset = read_varint(raw, offset)
        except ValueError as error:
            raise InvalidCid(f"malformed binary CID {raw.hex()}") from error
        if version != 1:
            raise InvalidCid(f"unsupported CID version {version}")
        if codec not in (DAG_PB, RAW):
            raise InvalidCid(f"unsupported codec 0x{codec:x}: only dag-pb and raw are verified")
        if hash_code != SHA2_256 or length != 32 or len(raw) - offset != 32:
            raise InvalidCid(
                f"unsupported multihash 0x{hash_code:x}/{length}: only sha2-256 is verified"
            )
        return cls(1, codec, raw[offset:])

    @classmethod
    def parse(cls, text: str) -> Cid:
        """Parse a CID string; ``/ipfs/`` prefixes are accepted."""
        text = text.strip().removeprefix("/ipfs/").split("/", 1)[0]
        try:
            if len(text) == 46 and text.startswith("Qm"):
                return cls.from_bytes(b58decode(text))
            prefix, body = text[:1], text[1:]
            if prefix in ("b", "B"):
                raw = base64.b32decode(body.upper() + "=" * (-len(body) % 8))
            elif prefix == "z":
                raw = b58decode(body)
            elif prefix in ("f", "F"):
                raw = bytes.fromhex(body)
            else:
                raise InvalidCid(f"{text!r} is not a CID (unknown multibase prefix {prefix!r})")
        except (KeyError, ValueError) as error:
            if isinstance(error, InvalidCid):
                raise
            raise InvalidCid(f"{text!r} is not a CID: {error}") from error
        try:
            return cls.from_bytes(raw)
        except InvalidCid as error:
            raise InvalidCid(f"{text!r} is not a CID this layer can verify: {error}") from error


def parse_cid(value: str | Cid) -> Cid:
    return value if isinstance(value, Cid) else Cid.parse(value)
