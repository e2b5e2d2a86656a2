"""UnixFS over dag-pb: the blocks Kubo and js-ipfs build for files and directories.

Used twice: to compute locally the CID a node will assign to bytes we upload, and to decode
blocks we fetch so each one can be hash-checked on its own. Parameters are the nodes'
defaults: fixed 262,144-byte chunks, a balanced DAG of at most 174 links per node, sha2-256.
CIDv0 files have dag-pb UnixFS leaves; CIDv1 files have raw leaves (codec 0x55) under dag-pb
parents (what ``--cid-version 1`` implies). Only one small record per chunk is kept in memory,
never the content, and full groups of 174 are folded as soon as they complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from agents.storage.cid import DAG_PB, RAW, Cid, read_varint, varint
from agents.storage.errors import ContentMismatch, UnsupportedDag

CHUNK_SIZE = 262_144
MAX_LINKS = 174

# UnixFS Data.DataType
RAW_TYPE, DIRECTORY, FILE, METADATA, SYMLINK, HAMT_SHARD = 0, 1, 2, 3, 4, 5


# ---------------------------------------------------------------------------- protobuf


def _field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def _fields(data: bytes) -> list[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of a protobuf message; only wire types 0 and 2."""
    out: list[tuple[int, int, int | bytes]] = []
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, offset = read_varint(data, offset)
            out.append((number, wire, value))
        elif wire == 2:
            length, offset = read_varint(data, offset)
            if offset + length > len(data):
                raise ValueError("truncated length-delimited field")
            out.append((number, wire, data[offset : offset + length]))
            offset += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    return out


# ---------------------------------------------------------------------------- dag-pb


@dataclass(frozen=True)
class Link:
    """A dag-pb link: the child's CID, its name (empty for file chunks) and subtree size."""

    cid: Cid
    name: str
    tsize: int


@dataclass(frozen=True)
class PbNode:
    links: list[Link]
    data: bytes


def encode_pb_node(links: list[Link], data: bytes) -> bytes:
    """Canonical dag-pb bytes: links (sorted by name for directories, in order for files) first."""
    out = bytearray()
    for link in links:
        body = (
            _field_bytes(1, link.cid.to_bytes())
            + _field_bytes(2, link.name.encode())
            + _field_varint(3, link.tsize)
        )
        out += _field_bytes(2, body)
    return bytes(out + _field_bytes(1, data))


def decode_pb_node(block: bytes) -> PbNode:
    try:
        links: list[Link] = []
        data = b""
        for number, wire, value in _fields(block):
            if number == 2 and isinstance(value, bytes):
                cid_raw, name, tsize = b"", "", 0
                for sub, _, sub_value in _fields(value):
                    if sub == 1 and isinstance(sub_value, bytes):
                        cid_raw = sub_value
                    elif sub == 2 and isinstance(sub_value, bytes):
                        name = sub_value.decode()
                    elif sub == 3 and isinstance(sub_value, int):
                        tsize = sub_value
                links.append(Link(Cid.from_bytes(cid_raw), name, tsize))
            elif number == 1 and isinstance(value, bytes):
                data = value
            else:
                raise ValueError(f"unexpected dag-pb field {number}/{wire}")
        return PbNode(links, data)
    except (ValueError, UnicodeDecodeError) as error:
        raise ContentMismatch(f"block is not valid dag-pb: {error}") from error


# ---------------------------------------------------------------------------- UnixFS


@dataclass(frozen=True)
class UnixfsData:
    type: int
    data: bytes = b""
    filesize: int | None = None
    blocksizes: tuple[int, ...] = ()

    def encode(self) -> bytes:
        out = _field_varint(1, self.type)
        if self.data:
            out += _field_bytes(2, self.data)
        if self.filesize is not None:
            out += _field_varint(3, self.filesize)
        for size in self.blocksizes:
            out += _field_varint(4, size)
        return out

    @classmethod
    def decode(cls, raw: bytes) -> UnixfsData:
        kind, data, filesize, sizes = -1, b"", None, []
        try:
            for number, _, value in _fields(raw):
                if number == 1 and isinstance(value, int):
                    kind = value
                elif number == 2 and isinstance(value, bytes):
                    data = value
                elif number == 3 and isinstance(value, int):
                    filesize = value
                elif number == 4:
                    if isinstance(value, int):
                        sizes.append(value)
                    else:  # packed encoding
                        offset = 0
                        while offset < len(value):
                            size, offset = read_varint(value, offset)
                            sizes.append(size)
        except ValueError as error:
            raise ContentMismatch(f"block holds invalid UnixFS data: {error}") from error
        if kind < 0:
            raise ContentMismatch("block holds UnixFS data without a type")
        return cls(kind, data, filesize, tuple(sizes))


@dataclass(frozen=True)
class DagNode:
    """A built DAG node as its parent links to it."""

    cid: Cid
    tsize: int  # serialized size of the whole subtree (what a link's Tsize holds)
    filesize: int  # file bytes below it (0 for directories)


@dataclass
class FileDagBuilder:
    """Feed a file's bytes in any pieces; ``finish()`` gives the root a node would build.

    ``on_block`` (optional) receives every block as it is made, e.g. to store them.
    """

    cid_version: int = 0
    raw_leaves: bool | None = None  # default: CIDv1 ⇒ raw leaves, CIDv0 ⇒ dag-pb leaves
    chunk_size: int = CHUNK_SIZE
    max_links: int = MAX_LINKS
    size: int = 0
    _buffer: bytearray = field(default_factory=bytearray)
    _levels: list[list[DagNode]] = field(default_factory=lambda: [[]])
    _root: DagNode | None = None

    def __post_init__(self) -> None:
        if self.cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        if self.raw_leaves is None:
            self.raw_leaves = self.cid_version == 1
        if self.raw_leaves and self.cid_version == 0:
            raise ValueError("raw leaves need CIDv1")
        if self.chunk_size < 1 or self.max_links < 2:
            raise ValueError("chunk_size must be ≥ 1 and max_links ≥ 2")

    def update(self, data: bytes | memoryview) -> None:
        if self._root is not None:
            raise RuntimeError("builder already finished")
        self.size += len(data)
        view = memoryview(data)
        if not self._buffer:
            while len(view) >= self.chunk_size:  # whole chunks straight from the caller
                self._leaf(view[: self.chunk_size])
                view = view[self.chunk_size :]
        self._buffer += view
        while len(self._buffer) >= self.chunk_size:
            self._leaf(bytes(self._buffer[: self.chunk_size]))
            del self._buffer[: self.chunk_size]

    def _leaf(self, chunk: bytes | memoryview) -> None:
        size = len(chunk)
        digest = hashlib.sha256()
        if self.raw_leaves:
            digest.update(chunk)
            cid = Cid(1, RAW, digest.digest())
            node = DagNode(cid, size, size)
        else:
            # The leaf block is PBNode{Data: UnixFS{File, chunk, filesize}}: hash the framing
            # around the chunk instead of copying 256 KiB into a new block.
            inner_head = _field_varint(1, FILE) + (
                varint(2 << 3 | 2) + varint(size) if size else b""
            )
            inner_tail = _field_varint(3, size)
            inner_len = len(inner_head) + size + len(inner_tail)
            head = varint(1 << 3 | 2) + varint(inner_len) + inner_head
            digest.update(head)
            digest.update(chunk)
            digest.update(inner_tail)
            cid = Cid(self.cid_version, DAG_PB, digest.digest())
            node = DagNode(cid, len(head) + size + len(inner_tail), size)
        self._push(0, node)

    def _push(self, level: int, node: DagNode) -> None:
        # Folding a full group early is what Kubo's balanced layout does too: a full subtree
        # is final whatever follows; only the last, partial groups wait for finish().
        if level == len(self._levels):
            self._levels.append([])
        nodes = self._levels[level]
        if len(nodes) == self.max_links:
            self._levels[level] = [node]
            self._push(level + 1, self._parent(nodes))
        else:
            nodes.append(node)

    def _parent(self, children: list[DagNode]) -> DagNode:
        filesize = sum(child.filesize for child in children)
        data = UnixfsData(FILE, b"", filesize, tuple(c.filesize for c in children)).encode()
        block = encode_pb_node([Link(c.cid, "", c.tsize) for c in children], data)
        cid = Cid.of_block(block, version=self.cid_version)
        return DagNode(cid, len(block) + sum(child.tsize for child in children), filesize)

    def finish(self) -> DagNode:
        if self._root is not None:
            return self._root
        if self._buffer or self.size == 0:
            self._leaf(bytes(self._buffer))
            self._buffer.clear()
        level = 0
        while True:
            nodes = self._levels[level]
            higher = any(self._levels[level + 1 :])
            if len(nodes) == 1 and not higher:
                self._root = nodes[0]
                return self._root
            self._levels[level] = []
            self._push(level + 1, self._parent(nodes))
            level += 1

    def cid(self) -> Cid:
        return self.finish().cid


def cid_of_bytes(data: bytes, version: int = 0) -> str:
    """The CID a node's default ``add`` gives ``data`` (CIDv1 with raw leaves)."""
    builder = FileDagBuilder(cid_version=version)
    builder.update(data)
    return str(builder.cid())


def cid_version(cid: str) -> int:
    """0 for a ``Qm…`` CID, 1 for a CIDv1 (kept for early callers; see :class:`Cid`)."""
    return Cid.parse(cid).version


def directory_node(entries: dict[str, DagNode], *, cid_version: int = 0) -> tuple[bytes, DagNode]:
    """The block and node of a plain (unsharded) UnixFS directory; links sorted by name."""
    for name in entries:
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"invalid directory entry name {name!r}")
    links = [
        Link(entries[name].cid, name, entries[name].tsize)
        for name in sorted(entries, key=lambda n: n.encode())
    ]
    block = encode_pb_node(links, UnixfsData(DIRECTORY).encode())
    tsize = len(block) + sum(link.tsize for link in links)
    return block, DagNode(Cid.of_block(block, version=cid_version), tsize, 0)


def file_kind(cid: Cid, block: bytes) -> tuple[str, PbNode | None, UnixfsData | None]:
    """'file' or 'directory' for a verified block, with its decoded contents."""
    if cid.codec == RAW:
        return "file", None, None
    node = decode_pb_node(block)
    meta = UnixfsData.decode(node.data)
    if meta.type in (FILE, RAW_TYPE):
        return "file", node, meta
    if meta.type == DIRECTORY:
        return "directory", node, meta
    names = {HAMT_SHARD: "a HAMT-sharded directory", SYMLINK: "a symlink", METADATA: "metadata"}
    raise UnsupportedDag(
        f"{cid} is {names.get(meta.type, f'UnixFS type {meta.type}')}, which this layer cannot "
        "fetch verified; re-add it as a plain file or directory"
    )


# Backwards-compatible name used by early callers.
CidBuilder = FileDagBuilder
