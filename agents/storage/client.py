"""Streaming client of an IPFS node's RPC API (Kubo-compatible; js-ipfs locally).

Every call has a timeout (passed to the node too, so an unknown CID fails instead of
blocking), transient errors are retried with backoff, and everything fetched is re-hashed
locally (see :mod:`agents.storage.unixfs`): a file is written to its destination only after
its bytes proved to be the CID asked for.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx

from agents.config import get_settings
from agents.storage.errors import ContentMismatch, NodeUnavailable, StorageError
from agents.storage.unixfs import CHUNK_SIZE, CidBuilder, cid_version

log = logging.getLogger(__name__)
T = TypeVar("T")
READ_SIZE = 1 << 20


class IpfsStore:
    """One IPFS node, addressed by its RPC API URL (e.g. http://127.0.0.1:15001)."""

    def __init__(self, api_url: str | None = None, *, timeout_s: float | None = None,
                 retries: int = 3) -> None:  # fmt: skip
        settings = get_settings()
        self.api_url = (api_url or settings.ipfs_api_url).rstrip("/")
        self.timeout_s = timeout_s if timeout_s is not None else settings.ipfs_timeout_s
        self.retries = retries
        self._http = httpx.Client(base_url=f"{self.api_url}/api/v0", timeout=self.timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> IpfsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ add

    def add_file(self, path: Path, *, cid_version: int = 0,
                 progress: Callable[[int], None] | None = None) -> str:  # fmt: skip
        """Upload a file streamed from disk; returns its CID (checked against a local hash)."""
        builder = CidBuilder(version=cid_version)

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as handle:
                while data := handle.read(READ_SIZE):
                    builder.update(data)
                    if progress:
                        progress(len(data))
                    yield data

        cid = self._add_stream(chunks, path.name, cid_version)
        expected = builder.cid()
        if cid != expected:
            raise ContentMismatch(
                f"node {self.api_url} stored {path} as {cid}, but its bytes hash to {expected}"
            )
        return cid

    def add_bytes(self, data: bytes, *, cid_version: int = 0) -> str:
        builder = CidBuilder(version=cid_version)
        builder.update(data)
        cid = self._add_stream(lambda: iter([data]), "data", cid_version)
        if cid != builder.cid():
            raise ContentMismatch(f"node {self.api_url} answered {cid} for bytes hashing to "
                                  f"{builder.cid()}")  # fmt: skip
        return cid

    def _add_stream(self, chunks: Callable[[], Iterator[bytes]], name: str, version: int) -> str:
        params: dict[str, Any] = {
            "chunker": f"size-{CHUNK_SIZE}", "pin": "true", "cid-version": version,
            "raw-leaves": "true" if version == 1 else "false", "quieter": "true",
        }  # fmt: skip
        if version == 1:
            params["cid-base"] = "base32"
        boundary = "oml-hub-boundary-" + os.urandom(8).hex()

        def body() -> Iterator[bytes]:
            yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                   f"filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                   ).encode()  # fmt: skip
            yield from chunks()
            yield f"\r\n--{boundary}--\r\n".encode()

        def call() -> str:
            response = self._http.post(
                "/add", params=params, content=body(), timeout=None,
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )  # fmt: skip
            self._raise_for(response, "add")
            last = response.text.strip().splitlines()[-1]
            return str(json.loads(last)["Hash"])

        # A streamed body cannot be replayed mid-way; only connection failures are retried.
        return self._retry("add", call)

    # ------------------------------------------------------------------ get

    def iter_cat(self, cid: str, *, timeout_s: float | None = None) -> Iterator[bytes]:
        """Stream a file's bytes as the node sends them (unverified: use get_file / cat)."""
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        params = {"arg": cid, "timeout": f"{int(timeout * 1000)}ms"}
        try:
            with self._http.stream("POST", "/cat", params=params, timeout=timeout) as response:
                if response.status_code != 200:
                    response.read()
                    self._raise_for(response, f"cat {cid}")
                yield from response.iter_bytes(READ_SIZE)
        except httpx.TimeoutException as error:
            raise NodeUnavailable(
                f"{self.api_url} did not deliver {cid} within {timeout:.0f}s: the content may not "
                "exist on the network; check the CID or pin it on this node"
            ) from error
        except httpx.TransportError as error:
            raise NodeUnavailable(
                f"IPFS node {self.api_url} unreachable: {error}; is it "
                "running (`make up`) and is OML_IPFS_API_URL right?"
            ) from error

    def get_file(self, cid: str, dest: Path, *, timeout_s: float | None = None,
                 progress: Callable[[int], None] | None = None) -> int:  # fmt: skip
        """Fetch ``cid`` into ``dest``; verified before it appears there. Returns its size."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        builder = CidBuilder(version=cid_version(cid))
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                for data in self.iter_cat(cid, timeout_s=timeout_s):
                    builder.update(data)
                    handle.write(data)
                    if progress:
                        progress(len(data))
            actual = builder.cid()
            if actual != cid:
                raise ContentMismatch(
                    f"node {self.api_url} returned bytes for {cid} that hash to {actual}: the node "
                    "is faulty or malicious; nothing was written — use another node"
                )
            temp.replace(dest)
            return builder.size
        finally:
            temp.unlink(missing_ok=True)

    def cat(self, cid: str, *, timeout_s: float | None = None, max_bytes: int = 64 << 20) -> bytes:
        """A small object in memory, verified against its CID."""
        builder = CidBuilder(version=cid_version(cid))
        data = bytearray()
        for piece in self.iter_cat(cid, timeout_s=timeout_s):
            data += piece
            if len(data) > max_bytes:
                raise StorageError(f"{cid} is larger than {max_bytes} bytes: use get_file")
            builder.update(piece)
        if builder.cid() != cid:
            raise ContentMismatch(f"node {self.api_url} returned bytes for {cid} that hash to "
                                  f"{builder.cid()}; nothing was used")  # fmt: skip
        return bytes(data)

    # ------------------------------------------------------------------ pins

    def pin(self, cid: str) -> None:
        self._simple("/pin/add", cid)

    def unpin(self, cid: str) -> None:
        self._simple("/pin/rm", cid)

    def stat(self, cid: str) -> dict[str, Any]:
        return self._simple("/object/stat", cid)

    def _simple(self, path: str, cid: str) -> dict[str, Any]:
        def call() -> dict[str, Any]:
            params = {"arg": cid, "timeout": f"{int(self.timeout_s)}s"}
            response = self._http.post(path, params=params)
            self._raise_for(response, f"{path} {cid}")
            result: dict[str, Any] = response.json()
            return result

        return self._retry(path, call)

    # ------------------------------------------------------------------ plumbing

    def _retry(self, what: str, call: Callable[[], T]) -> T:
        for attempt in range(1, self.retries + 1):
            try:
                return call()
            except (httpx.ConnectError, httpx.RemoteProtocolError) as error:
                if attempt == self.retries:
                    raise NodeUnavailable(
                        f"IPFS node {self.api_url} unreachable for {what} after {attempt} tries: "
                        f"{error}; is it running (`make up`), is OML_IPFS_API_URL right?"
                    ) from error
                time.sleep(0.5 * 2**attempt)
            except httpx.TimeoutException as error:
                raise NodeUnavailable(
                    f"IPFS node {self.api_url} timed out ({self.timeout_s:.0f}s) on {what}"
                ) from error
        raise AssertionError("unreachable")

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 200:
            return
        try:
            message = response.json().get("Message", response.text)
        except ValueError:
            message = response.text
        raise StorageError(f"IPFS node {self.api_url} refused {what}: {message}")
