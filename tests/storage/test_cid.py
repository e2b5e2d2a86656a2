"""Local CID computation: well-known CIDs, an independent reference importer, CID parsing."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from storage_reference import reference_cid

from agents.storage.cid import DAG_PB, RAW, Cid
from agents.storage.errors import InvalidCid
from agents.storage.unixfs import (
    FileDagBuilder,
    UnixfsData,
    cid_of_bytes,
    decode_pb_node,
    directory_node,
    encode_pb_node,
)

# CIDs that Kubo prints for these bytes (documented in IPFS docs and issue trackers).
WELL_KNOWN = [
    (b"hello world\n", 0, "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"),
    (b"", 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
    (b"", 1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
    (b"hello world", 1, "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"),
    (b"hello world\n", 1, "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"),
]
EMPTY_DIR_V0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
EMPTY_DIR_V1 = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


@pytest.mark.parametrize(("data", "version", "expected"), WELL_KNOWN)
def test_well_known_file_cids(data: bytes, version: int, expected: str) -> None:
    assert cid_of_bytes(data, version) == expected
    assert reference_cid(data, version) == expected


def test_well_known_empty_directory() -> None:
    assert str(directory_node({}, cid_version=0)[1].cid) == EMPTY_DIR_V0
    assert str(directory_node({}, cid_version=1)[1].cid) == EMPTY_DIR_V1


def test_raw_leaf_cid_is_plain_sha256() -> None:
    data = b"x" * 1000
    assert Cid.parse(cid_of_bytes(data, 1)).digest == hashlib.sha256(data).digest()


@pytest.mark.parametrize("size", [0, 1, 262_143, 262_144, 262_145, 3 * 262_144 + 7])
@pytest.mark.parametrize("version", [0, 1])
def test_builder_matches_reference_importer(size: int, version: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert cid_of_bytes(data, version) == reference_cid(data, version)


@settings(max_examples=300, deadline=None)
@given(
    data=st.binary(max_size=300),
    version=st.integers(0, 1),
    chunk=st.integers(1, 4),
    width=st.integers(2, 5),
    cuts=st.lists(st.integers(1, 40), max_size=20),
)
def test_deep_dags_match_reference(
    data: bytes, version: int, chunk: int, width: int, cuts: list[int]
) -> None:
    """Tiny chunks and fan-outs reach DAG depths of 5+ that real files need terabytes for."""
    builder = FileDagBuilder(cid_version=version, chunk_size=chunk, max_links=width)
    position = 0
    for cut in cuts:  # fed in arbitrary pieces
        builder.update(data[position : position + cut])
        position += cut
    builder.update(data[position:])
    assert str(builder.cid()) == reference_cid(data, version, chunk, width)
    assert builder.size == len(data)


def test_file_with_exactly_full_then_one_more_level() -> None:
    # 174² + 1 leaves: the case a fold-at-finish bug once got wrong.
    data = bytes(174 * 174 * 4 + 1)
    builder = FileDagBuilder(chunk_size=4)
    builder.update(data)
    assert str(builder.cid()) == reference_cid(data, 0, 4)


def test_cid_text_forms_parse_to_the_same_cid() -> None:
    cid = Cid.parse(cid_of_bytes(b"abc", 1))
    raw = cid.to_bytes()
    import base64

    from agents.storage.cid import b58encode

    forms = [
        str(cid),
        "z" + b58encode(raw),
        "f" + raw.hex(),
        "/ipfs/" + str(cid),
        "B" + base64.b32encode(raw).decode().rstrip("="),
    ]
    assert {Cid.parse(form) for form in forms} == {cid}
    assert cid.codec == RAW and cid.version == 1
    v0 = Cid.parse("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")
    assert (v0.version, v0.codec) == (0, DAG_PB)
    assert str(v0) == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5",  # one character short
        "Qm0000000000000000000000000000000000000000000l",  # not base58
        "bafkqaaa",  # identity multihash: not verifiable
        "f01711400" + "00" * 20,  # sha1
    ],
)
def test_invalid_cids_are_refused(text: str) -> None:
    with pytest.raises(InvalidCid):
        Cid.parse(text)


@settings(deadline=None)  # a loaded CI machine must not turn slowness into failure
@given(st.binary(max_size=64), st.sampled_from([DAG_PB, RAW]))
def test_cid_roundtrip(block: bytes, codec: int) -> None:
    cid = Cid.of_block(block, codec=codec)
    assert Cid.parse(str(cid)) == cid
    assert Cid.from_bytes(cid.to_bytes()) == cid
    assert cid.matches(block)
    assert not cid.matches(block + b"\0")


def test_dag_pb_roundtrip() -> None:
    child = Cid.of_block(b"child", codec=RAW)
    from agents.storage.unixfs import FILE, Link

    data = UnixfsData(FILE, b"", 5, (5,)).encode()
    block = encode_pb_node([Link(child, "", 5)], data)
    node = decode_pb_node(block)
    assert node.links == [Link(child, "", 5)]
    assert UnixfsData.decode(node.data) == UnixfsData(FILE, b"", 5, (5,))
