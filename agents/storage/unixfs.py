"""Local computation of the CIDs Kubo and js-ipfs give a file, to verify what a node returns.

Parameters are the nodes' defaults: fixed-size chunks of 262,144 bytes, a balanced DAG with at
most 174 links per node, sha2-256. CIDv0 uses dag-pb UnixFS leaves; CIDv1 uses raw leaves
(codec 0x55) under dag-pb (0x70) parents, printed in base32. Only memory proportional to the
number of chunks is kept (one small record per chunk), never the content.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

CHUNK_SIZE = 262_144
MAX_LINKS = 174
_SHA256 = b"\x12\x20"
_DAG_PB = 0x70
_RAW = 0x55
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_UNIXFS_FILE = 2


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rem = divmod(number, 58)
        out = _B58[rem] + out
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + out


@dataclass(frozen=True)
class Block:
    """A DAG node as its parent links to it."""

    cid_bytes: bytes  # binary CID (v0: the multihash; v1: version + codec + multihash)
    tsize: int  # serialized size of the whole subtree
    filesize: int  # file bytes below it


def _unixfs_data(filesize: int, data: bytes | None, blocksizes: list[int]) -> bytes:
    out = _field_varint(1, _UNIXFS_FILE)
    if data:
        out += _field_bytes(2, data)
    out += _field_varint(3, filesize)
    for size in blocksizes:
        out += _field_varint(4, size)
    return out


def _pb_node(links: list[Block], data: bytes) -> bytes:
    out = b""
    for link in links:
        # PBLink: Hash (1), Name (2, empty string as both nodes write it), Tsize (3)
        body = _field_bytes(1, link.cid_bytes) + _field_bytes(2, b"") + _field_varint(3, link.tsize)
        out += _field_bytes(2, body)
    return out + _field_bytes(1, data)


def _cid(block: bytes, codec: int, version: int) -> bytes:
    multihash = _SHA256 + hashlib.sha256(block).digest()
    return multihash if version == 0 else b"\x01" + _varint(codec) + multihash


def cid_to_string(cid_bytes: bytes) -> str:
    if cid_bytes[:2] == _SHA256:
        return b58encode(cid_bytes)
    return "b" + base64.b32encode(cid_bytes).decode().lower().rstrip("=")


@dataclass
class CidBuilder:
    """Feed a file's bytes in any pieces; ``cid()`` returns the CID a node would assign."""

    version: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _leaves: list[Block] = field(default_factory=list)
    size: int = 0

    def update(self, data: bytes) -> None:
        self.size += len(data)
        self._buffer += data
        while len(self._buffer) >= CHUNK_SIZE:
            self._leaf(bytes(self._buffer[:CHUNK_SIZE]))
            del self._buffer[:CHUNK_SIZE]

    def _leaf(self, chunk: bytes) -> None:
        if self.version == 1:
            block = chunk
            self._leaves.append(Block(_cid(block, _RAW, 1), len(block), len(chunk)))
        else:
            block = _pb_node([], _unixfs_data(len(chunk), chunk, []))
            self._leaves.append(Block(_cid(block, _DAG_PB, 0), len(block), len(chunk)))

    def cid(self) -> str:
        if self._buffer or not self._leaves:
            self._leaf(bytes(self._buffer))
            self._buffer.clear()
        level = self._leaves
        while len(level) > 1:
            level = [
                self._parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)
            ]
        return cid_to_string(level[0].cid_bytes)

    def _parent(self, children: list[Block]) -> Block:
        filesize = sum(child.filesize for child in children)
        data = _unixfs_data(filesize, None, [child.filesize for child in children])
        block = _pb_node(children, data)
        tsize = len(block) + sum(child.tsize for child in children)
        return Block(_cid(block, _DAG_PB, self.version), tsize, filesize)


def cid_of_bytes(data: bytes, version: int = 0) -> str:
    builder = CidBuilder(version=version)
    builder.update(data)
    return builder.cid()


def cid_version(cid: str) -> int:
    return 0 if cid.startswith("Qm") and len(cid) == 46 else 1
