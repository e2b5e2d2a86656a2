"""The client against the real node: round trips, CIDs equal to the node's, pins, failures."""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from storage_support import LyingProxy, Tamper, flip, listing

from agents.config import Settings
from agents.storage.cid import Cid
from agents.storage.client import IpfsClient, IpfsStore
from agents.storage.errors import (
    ContentMismatch,
    InvalidCid,
    NodeTimeout,
    NodeUnavailable,
    StorageError,
)
from agents.storage.settings import StorageSettings
from agents.storage.unixfs import cid_of_bytes, cid_version

SIZES = [0, 1, 262_144, 262_145]


def node_add(node_url: str, data: bytes, version: int) -> str:
    """What the node itself answers for ``data`` (its own importer, no local computation)."""
    params = {"cid-version": version, "pin": "false"}
    if version == 1:
        params["cid-base"] = "base32"
    response = httpx.post(
        f"{node_url}/api/v0/add", params=params, files={"file": ("f", data)}, timeout=60
    )
    response.raise_for_status()
    return str(response.json()["Hash"])


@pytest.mark.parametrize("version", [0, 1])
@pytest.mark.parametrize("size", SIZES)
def test_round_trip(client: IpfsClient, tmp_path: Path, size: int, version: int) -> None:
    data = os.urandom(size)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    cid = client.add_file(source, cid_version=version)
    assert cid == cid_of_bytes(data, version)
    assert cid.startswith("Qm" if version == 0 else "baf")
    out = tmp_path / "out" / "file.bin"
    assert client.get(cid, out) == "file"
    assert out.read_bytes() == data
    assert client.cat(cid) == data
    assert listing(tmp_path / "out") == ["file.bin"]  # no temporary file left behind


@pytest.mark.parametrize("version", [0, 1])
def test_local_cids_equal_the_nodes(node_url: str, version: int) -> None:
    for size in [*SIZES, 5 * 262_144 + 3]:
        data = os.urandom(size)
        assert node_add(node_url, data, version) == cid_of_bytes(data, version), size


@pytest.mark.slow
def test_round_trip_50mb(client: IpfsClient, tmp_path: Path) -> None:
    """191 chunks: a two-level DAG (more than 174 links under one node)."""
    source = tmp_path / "big.bin"
    with source.open("wb") as handle:
        for _ in range(50):
            handle.write(os.urandom(1_000_000))
    seen: list[int] = []
    cid = client.add_file(source, progress=seen.append)
    assert sum(seen) == 50_000_000
    assert client.stat(cid)["size"] == 50_000_000
    out = tmp_path / "out.bin"
    assert client.get_file(cid, out) == 50_000_000
    with source.open("rb") as a, out.open("rb") as b:
        while chunk := a.read(1 << 20):
            assert chunk == b.read(1 << 20)


def make_tree(root: Path) -> dict[str, bytes]:
    files = {
        "config.json": b'{"a": 1}',
        "weights/part-1.bin": os.urandom(300_000),
        "weights/nested/deeper/part-2.bin": os.urandom(1000),
        "weights/nested/empty.txt": b"",
        "name with spaces+plus.txt": b"odd names survive",
        ".hidden": b"hidden files are added too",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "empty-dir").mkdir()
    return files


@pytest.mark.parametrize("version", [0, 1])
def test_directory_round_trip(client: IpfsClient, tmp_path: Path, version: int) -> None:
    files = make_tree(tmp_path / "tree")
    cid = client.add_dir(tmp_path / "tree", cid_version=version)
    assert client.stat(cid)["type"] == "directory"
    out = tmp_path / "copy"
    assert client.get(cid, out) == "directory"
    for name, data in files.items():
        assert (out / name).read_bytes() == data
    assert (out / "empty-dir").is_dir()
    assert listing(out) == listing(tmp_path / "tree")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_directory_destination_must_be_new(client: IpfsClient, tmp_path: Path) -> None:
    make_tree(tmp_path / "tree")
    cid = client.add_dir(tmp_path / "tree")
    (tmp_path / "taken").mkdir()
    with pytest.raises(StorageError, match="already exists"):
        client.get(cid, tmp_path / "taken")
    file_cid = client.add_bytes(b"one file")
    with pytest.raises(StorageError, match="is a directory"):
        client.get(file_cid, tmp_path / "taken")
    assert listing(tmp_path / "taken") == []


def test_pin_unpin_stat(client: IpfsClient) -> None:
    cid = client.add_bytes(os.urandom(1000), pin=False)
    assert not client.is_pinned(cid)
    client.pin(cid)
    assert client.is_pinned(cid)
    client.unpin(cid)
    assert not client.is_pinned(cid)
    stat = client.stat(cid)
    assert (stat["type"], stat["size"]) == ("file", 1000)


def test_unknown_cid_fails_within_timeout(node_url: str, tmp_path: Path) -> None:
    missing = str(Cid.of_block(os.urandom(32), version=0))  # nobody has this block
    limit = 2.0
    with IpfsClient(node_url, timeout_s=limit) as client:
        for attempt in (
            lambda: client.get(missing, tmp_path / "never"),
            lambda: client.cat(missing),
            lambda: client.get_file(missing, tmp_path / "never"),
            lambda: list(client.cat_stream(missing)),  # no root check: the stall deadline
            lambda: client.pin(missing),  # through ipfshttpclient
        ):
            started = time.monotonic()
            with pytest.raises(NodeTimeout, match=re.escape(node_url)) as raised:
                attempt()
            elapsed = time.monotonic() - started
            assert elapsed < limit + 3.0, elapsed
            assert "OML_IPFS_TIMEOUT_S" in str(raised.value)
    assert listing(tmp_path) == []


def test_unreachable_node_names_the_url_and_retries(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    settings = StorageSettings(retries=3, backoff_s=0.05)
    with IpfsClient(url, timeout_s=2, settings=settings) as client:
        started = time.monotonic()
        with pytest.raises(NodeUnavailable, match=rf"127\.0\.0\.1:{port}.*after 3 tries"):
            client.add_bytes(b"x")
        assert time.monotonic() - started >= 0.05 + 0.1  # two backoff sleeps
        with pytest.raises(NodeUnavailable, match=rf"127\.0\.0\.1:{port}"):
            client.pin("QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o")


def test_invalid_cid_is_refused_before_any_call(client: IpfsClient, tmp_path: Path) -> None:
    with pytest.raises(InvalidCid):
        client.get("not-a-cid", tmp_path / "x")


# ---------------------------------------------------------------------------- lying node


def tamper_on(*endpoints: str) -> Tamper:
    def tamper(endpoint: str, body: bytes) -> bytes:
        return flip(body) if endpoint in endpoints else body

    return tamper


@pytest.mark.parametrize("version", [0, 1])
def test_tampered_content_is_caught_and_nothing_written(
    client: IpfsClient,
    lying_proxy: Callable[[Tamper], LyingProxy],
    tmp_path: Path,
    version: int,
) -> None:
    data = os.urandom(600_000)  # three chunks
    cid = client.add_bytes(data, cid_version=version)
    proxy = lying_proxy(tamper_on("cat", "block/get"))
    dest = tmp_path / "dest"
    dest.mkdir()
    with IpfsClient(proxy.url, timeout_s=10) as liar:
        with pytest.raises(ContentMismatch, match=re.escape(proxy.url)):
            liar.get_file(cid, dest / "weights.bin")
        with pytest.raises(ContentMismatch):
            liar.cat(cid)
    assert listing(dest) == []


def test_lying_cat_is_recovered_block_by_block(
    client: IpfsClient,
    lying_proxy: Callable[[Tamper], LyingProxy],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A node whose `cat` lies but whose blocks are right still yields the true bytes."""
    data = os.urandom(600_000)
    cid = client.add_bytes(data)
    proxy = lying_proxy(tamper_on("cat"))
    with IpfsClient(proxy.url) as liar, caplog.at_level(logging.WARNING):
        liar.get_file(cid, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert "block by block" in caplog.text
    assert proxy.seen.count("block/get") >= 4  # root + three leaves


def test_block_fallback_can_be_disabled(
    client: IpfsClient, lying_proxy: Callable[[Tamper], LyingProxy], tmp_path: Path
) -> None:
    cid = client.add_bytes(os.urandom(1000))
    proxy = lying_proxy(tamper_on("cat"))
    with (
        IpfsClient(proxy.url, settings=StorageSettings(block_fallback=False)) as liar,
        pytest.raises(ContentMismatch, match="nothing was written"),
    ):
        liar.get_file(cid, tmp_path / "out.bin")
    assert listing(tmp_path) == []


def test_tampered_directory_writes_nothing(
    client: IpfsClient, lying_proxy: Callable[[Tamper], LyingProxy], tmp_path: Path
) -> None:
    make_tree(tmp_path / "tree")
    cid = client.add_dir(tmp_path / "tree")
    calls = {"n": 0}

    def late_tamper(endpoint: str, body: bytes) -> bytes:
        # Honest for the first few blocks, then lies: part of the tree was already fetched.
        if endpoint in ("cat", "block/get"):
            calls["n"] += 1
            if calls["n"] > 6:
                return flip(body)
        return body

    proxy = lying_proxy(late_tamper)
    with IpfsClient(proxy.url) as liar, pytest.raises(ContentMismatch):
        liar.get(cid, tmp_path / "out" / "copy")
    assert listing(tmp_path / "out") == []


def test_node_answering_a_wrong_cid_on_add_is_caught(
    lying_proxy: Callable[[Tamper], LyingProxy], tmp_path: Path
) -> None:
    def wrong_hash(endpoint: str, body: bytes) -> bytes:
        if endpoint != "add":
            return body
        lie = b'"Hash":"QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o","Was":"Qm'
        return body.replace(b'"Hash":"Qm', lie)

    proxy = lying_proxy(wrong_hash)
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(5000))
    with IpfsClient(proxy.url) as liar, pytest.raises(ContentMismatch, match="do not record"):
        liar.add_file(source)


def test_broken_download_resumes_where_it_stopped(
    client: IpfsClient, lying_proxy: Callable[[Tamper], LyingProxy], tmp_path: Path
) -> None:
    data = os.urandom(700_000)
    cid = client.add_bytes(data)
    proxy = lying_proxy(lambda endpoint, body: body)
    proxy.cut_first.add("cat")
    with IpfsClient(proxy.url, settings=StorageSettings(backoff_s=0.01)) as flaky:
        assert flaky.get_file(cid, tmp_path / "out.bin") == len(data)
    assert (tmp_path / "out.bin").read_bytes() == data
    assert proxy.seen.count("cat") == 2  # the second request resumed with an offset
    assert "block/get" in proxy.seen and proxy.seen.count("block/get") == 1  # no fallback


def test_dropped_add_is_retried_with_a_fresh_stream(
    lying_proxy: Callable[[Tamper], LyingProxy], tmp_path: Path
) -> None:
    proxy = lying_proxy(lambda endpoint, body: body)
    proxy.drop_first.add("add")
    source = tmp_path / "w.bin"
    source.write_bytes(os.urandom(600_000))
    with IpfsClient(proxy.url, settings=StorageSettings(backoff_s=0.01)) as flaky:
        cid = flaky.add_file(source)
    assert cid == cid_of_bytes(source.read_bytes())
    assert proxy.seen == ["dropped add", "add"]


def test_add_bytes_including_empty(client: IpfsClient) -> None:
    assert client.add_bytes(b"") == "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    assert client.add_bytes(b"", cid_version=1) == (
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    )
    assert client.add_bytes(b"hello world\n") == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    assert client.cat("QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH") == b""


def test_store_from_settings_uses_the_configured_node(node_url: str) -> None:
    settings = Settings(ipfs_api_url=node_url, ipfs_timeout_s=7.0)
    with IpfsStore.from_settings(settings) as store:
        assert (store.api_url, store.timeout_s) == (node_url, 7.0)
        cid = store.add_bytes(b"hello world\n")
        assert cid == "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
        assert store.cat(cid) == b"hello world\n"
        assert cid_version(cid) == 0
        assert cid_version(store.add_bytes(b"x", cid_version=1)) == 1
