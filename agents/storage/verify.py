"""Independent verification of what a node returns, without trusting the node.

Two ways to prove that bytes are the file a CID names:

* **recompute** (fast path): stream the file and rebuild its DAG locally with the default
  layout (:class:`~agents.storage.unixfs.FileDagBuilder`); equal root CID ⇒ identical bytes.
* **block walk** (any layout): fetch the DAG block by block, check each block's hash against
  the CID that links to it, and emit the leaves' data in order. Used when the recompute does
  not match (a file added with another chunker, or a lying node — the walk tells them apart).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from agents.storage.cid import RAW, Cid
from agents.storage.errors import ContentMismatch, UnsupportedDag
from agents.storage.unixfs import FILE, RAW_TYPE, FileDagBuilder, UnixfsData, decode_pb_node

BlockFetcher = Callable[[Cid], bytes]


def check_block(cid: Cid, block: bytes, source: str) -> bytes:
    """``block`` if it hashes to ``cid``; else ContentMismatch naming ``source``."""
    if not cid.matches(block):
        raise ContentMismatch(
            f"{source} returned a block for {cid} whose sha2-256 does not match: the node is "
            "faulty or malicious; nothing was written — use another node"
        )
    return block


class Recompute:
    """Feed the bytes received for ``cid``; ``check()`` says whether they are that file."""

    def __init__(self, cid: Cid) -> None:
        self.cid = cid
        self.builder = FileDagBuilder(cid_version=cid.version)

    def update(self, data: bytes) -> None:
        self.builder.update(data)

    @property
    def size(self) -> int:
        return self.builder.size

    def matches(self) -> bool:
        return self.builder.cid() == self.cid


def walk_file(cid: Cid, fetch: BlockFetcher, *, max_depth: int = 32) -> Iterator[bytes]:
    """The file's bytes in order, each piece from a block already hash-checked by ``fetch``."""
    if max_depth < 0:
        raise UnsupportedDag(f"{cid}: DAG deeper than supported")
    block = fetch(cid)
    if cid.codec == RAW:
        yield block
        return
    node = decode_pb_node(block)
    meta = UnixfsData.decode(node.data)
    if meta.type not in (FILE, RAW_TYPE):
        raise UnsupportedDag(f"{cid} is not a file (UnixFS type {meta.type})")
    if meta.data:
        yield meta.data
    if node.links and meta.blocksizes and len(meta.blocksizes) != len(node.links):
        raise ContentMismatch(f"{cid}: {len(node.links)} links but {len(meta.blocksizes)} sizes")
    for link in node.links:
        yield from walk_file(link.cid, fetch, max_depth=max_depth - 1)
