"""An independent, deliberately naive UnixFS file importer, written from Kubo's balanced layout
(go-unixfs importer/balanced: grow the root one level at a time, fill each new level depth-first)
rather than from agents.storage.unixfs (which folds groups bottom-up). Slow and simple on
purpose: tests use it to check the production builder on inputs too big to add to the node.
"""

from __future__ import annotations

import base64
import hashlib

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def uvarint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


def key(field: int, wire: int) -> bytes:
    return uvarint(field << 3 | wire)


def length_delimited(field: int, payload: bytes) -> bytes:
    return key(field, 2) + uvarint(len(payload)) + payload


def unixfs_file(data: bytes, filesize: int, blocksizes: list[int]) -> bytes:
    out = key(1, 0) + uvarint(2)
    if data:
        out += length_delimited(2, data)
    out += key(3, 0) + uvarint(filesize)
    for size in blocksizes:
        out += key(4, 0) + uvarint(size)
    return out


def dag_pb(links: list[tuple[bytes, int]], data: bytes) -> bytes:
    encoded = b""
    for cid, tsize in links:
        inner = length_delimited(1, cid) + length_delimited(2, b"") + key(3, 0) + uvarint(tsize)
        encoded += length_delimited(2, inner)
    return encoded + length_delimited(1, data)


def binary_cid(block: bytes, codec: int, version: int) -> bytes:
    multihash = b"\x12\x20" + hashlib.sha256(block).digest()
    return multihash if version == 0 else b"\x01" + uvarint(codec) + multihash


def text(cid: bytes) -> str:
    if cid[0] == 0x12:
        n = int.from_bytes(cid, "big")
        s = ""
        while n:
            n, r = divmod(n, 58)
            s = B58[r] + s
        return s
    return "b" + base64.b32encode(cid).decode().lower().rstrip("=")


class Importer:
    def __init__(self, data: bytes, version: int, chunk: int = 262144, width: int = 174) -> None:
        self.data, self.version, self.chunk, self.width = data, version, chunk, width
        self.offset = 0

    def done(self) -> bool:
        return self.offset >= len(self.data)

    def leaf(self) -> tuple[bytes, int, int]:
        piece = self.data[self.offset : self.offset + self.chunk]
        self.offset += self.chunk
        if self.version == 1:
            return binary_cid(piece, 0x55, 1), len(piece), len(piece)
        block = dag_pb([], unixfs_file(piece, len(piece), []))
        return binary_cid(block, 0x70, 0), len(block), len(piece)

    def node(self, children: list[tuple[bytes, int, int]]) -> tuple[bytes, int, int]:
        sizes = [c[2] for c in children]
        block = dag_pb([(c[0], c[1]) for c in children], unixfs_file(b"", sum(sizes), sizes))
        tsize = len(block) + sum(c[1] for c in children)
        return binary_cid(block, 0x70, self.version), tsize, sum(sizes)

    def fill(self, first: tuple[bytes, int, int] | None, depth: int) -> tuple[bytes, int, int]:
        children = [first] if first else []
        while len(children) < self.width and not self.done():
            children.append(self.leaf() if depth == 1 else self.fill(None, depth - 1))
        return self.node(children)

    def root(self) -> str:
        top = self.leaf()  # also the empty file: one leaf with no data
        depth = 1
        while not self.done():
            top = self.fill(top, depth)
            depth += 1
        return text(top[0])


def reference_cid(data: bytes, version: int = 0, chunk: int = 262144, width: int = 174) -> str:
    return Importer(data, version, chunk, width).root()
