"""Client of an IPFS node's RPC API (Kubo-compatible; js-ipfs locally, Kubo or a cluster in prod).

Bulk transfers (``add``, ``cat``, ``block/get``) are streamed with httpx, because
ipfshttpclient buffers whole responses; small metadata calls (``pin``, ``stat``, ``version``)
go through ipfshttpclient. Every call has a timeout; connection failures are retried with
exponential backoff; every error names the node URL and what to do. Nothing fetched is
trusted: see :mod:`agents.storage.verify`. A file or directory appears at its destination only
after all of its bytes were proved to be the CID asked for.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, TypeVar
from urllib.parse import quote

import httpx

from agents.config import Settings, get_settings
from agents.storage.cid import Cid, parse_cid
from agents.storage.errors import (
    ContentMismatch,
    NodeError,
    NodeTimeout,
    NodeUnavailable,
    StorageError,
)
from agents.storage.settings import StorageSettings, get_storage_settings
from agents.storage.unixfs import CHUNK_SIZE, DagNode, FileDagBuilder, directory_node, file_kind
from agents.storage.verify import Recompute, check_block, walk_file

if TYPE_CHECKING:
    from agents.storage.manifest import ModelManifest
    from agents.storage.models import ManifestRef

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[int], None]
_BOUNDARY = "oml-hub-" + os.urandom(8).hex()
_UMASK = os.umask(0o022)
os.umask(_UMASK)


class Transform(Protocol):
    """Bytes in, bytes out, and a last word once the input ended (e.g. a decryptor)."""

    def update(self, data: bytes) -> bytes: ...

    def finalize(self) -> bytes: ...


class Stat(TypedDict):
    """What ``stat`` returns: the node's claim about a CID (sizes are not verified)."""

    cid: str
    type: str  # "file" or "directory"
    size: int  # file bytes (0 for a directory)
    cumulative_size: int  # bytes of all blocks
    blocks: int  # direct links of the root


@dataclass(frozen=True)
class _Part:
    """One multipart entry of an ``add``: a file (``source`` set) or a directory."""

    name: str
    source: Path | bytes | Callable[[], Iterable[bytes]] | None


class IpfsClient:
    """One IPFS node, addressed by its RPC API URL (e.g. http://127.0.0.1:15001).

    Defaults come from ``agents.config`` (``OML_IPFS_API_URL``, ``OML_IPFS_TIMEOUT_S``) and
    :class:`~agents.storage.settings.StorageSettings` (``OML_STORAGE_*``).
    """

    def __init__(
        self,
        api_url: str | None = None,
        *,
        timeout_s: float | None = None,
        retries: int | None = None,
        settings: StorageSettings | None = None,
    ) -> None:
        common = get_settings()
        self.settings = settings or get_storage_settings()
        self.api_url = (api_url or common.ipfs_api_url).rstrip("/")
        self.timeout_s = timeout_s if timeout_s is not None else common.ipfs_timeout_s
        self.retries = retries if retries is not None else self.settings.retries
        self._http = httpx.Client(
            base_url=f"{self.api_url}/api/v0",
            timeout=httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 10.0)),
        )
        self._rpc_client: Any = None

    @classmethod
    def from_settings(
        cls, settings: Settings | None = None, storage: StorageSettings | None = None
    ) -> IpfsClient:
        """A client for the node that ``settings`` (``agents.config``) names."""
        common = settings or get_settings()
        return cls(common.ipfs_api_url, timeout_s=common.ipfs_timeout_s, settings=storage)

    def close(self) -> None:
        self._http.close()
        if self._rpc_client is not None:
            self._rpc_client.close()

    def __enter__(self) -> IpfsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"IpfsClient({self.api_url!r}, timeout_s={self.timeout_s})"

    # ------------------------------------------------------------------ add

    def add_file(
        self,
        path: Path,
        *,
        cid_version: int = 0,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> str:
        """Upload a file streamed from disk; returns its CID, checked against a local build."""
        path = Path(path)
        if not path.is_file():
            raise StorageError(f"{path} is not a file")
        nodes = self._add([_Part(path.name, path)], cid_version, pin, progress)
        return str(nodes[path.name].cid)

    def add_bytes(self, data: bytes, *, cid_version: int = 0, pin: bool = True) -> str:
        """Upload a small object held in memory; returns its checked CID."""
        return str(self._add([_Part("data", data)], cid_version, pin, None)["data"].cid)

    def add_stream(
        self,
        source: Callable[[], Iterable[bytes]],
        *,
        cid_version: int = 0,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> str:
        """Upload bytes produced on the fly (e.g. ciphertext) without a temporary file.

        ``source`` is called once per attempt and must produce the same kind of content each
        time (a retry re-runs it); the CID is checked against what this attempt produced.
        """
        return str(self._add([_Part("stream", source)], cid_version, pin, progress)["stream"].cid)

    def add_dir(
        self,
        path: Path,
        *,
        cid_version: int = 0,
        pin: bool = True,
        progress: Progress | None = None,
    ) -> str:
        """Upload a directory tree (hidden files included, symlinks refused); returns its CID.

        The directory's CID is rebuilt locally from the files' CIDs and compared with the
        node's answer, so the whole tree is known to be stored exactly as on disk.
        """
        root = Path(path)
        if not root.is_dir():
            raise StorageError(f"{root} is not a directory")
        parts = [_Part("root", None)]
        for entry in sorted(root.rglob("*")):
            relative = "root/" + entry.relative_to(root).as_posix()
            if entry.is_symlink():
                raise StorageError(f"{entry} is a symlink: copy the target in, then add again")
            parts.append(_Part(relative, entry if entry.is_file() else None))
        return str(self._add(parts, cid_version, pin, progress)["root"].cid)

    def _add(
        self, parts: list[_Part], cid_version: int, pin: bool, progress: Progress | None
    ) -> dict[str, DagNode]:
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        params: dict[str, Any] = {
            "chunker": f"size-{CHUNK_SIZE}",
            "pin": str(pin).lower(),
            "cid-version": cid_version,
            "raw-leaves": str(cid_version == 1).lower(),
        }
        if cid_version == 1:
            params["cid-base"] = "base32"
        read_size = self.settings.read_size

        def call() -> dict[str, DagNode]:
            # Fresh builders per attempt: a retried upload streams the files again.
            local: dict[str, DagNode] = {}

            def body() -> Iterator[bytes]:
                for part in parts:
                    kind = (
                        "application/x-directory"
                        if part.source is None
                        else "application/octet-stream"
                    )
                    yield (
                        f'--{_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
                        f'filename="{quote(part.name, safe="")}"\r\n'
                        f"Content-Type: {kind}\r\n\r\n"
                    ).encode()
                    if part.source is not None:
                        builder = FileDagBuilder(cid_version=cid_version)
                        for data in _read(part.source, read_size):
                            builder.update(data)
                            if progress:
                                progress(len(data))
                            yield data
                        local[part.name] = builder.finish()
                    yield b"\r\n"
                yield f"--{_BOUNDARY}--\r\n".encode()

            timeout = httpx.Timeout(max(self.timeout_s, 60.0), connect=min(self.timeout_s, 10.0))
            response = self._http.post(
                "/add",
                params=params,
                content=body(),
                timeout=timeout,
                headers={"Content-Type": f"multipart/form-data; boundary={_BOUNDARY}"},
            )
            self._raise_for(response, "add")
            answered: dict[str, str] = {}
            for line in response.text.splitlines():
                if line.strip():
                    item = json.loads(line)
                    if item.get("Type") == "error" or ("Message" in item and "Hash" not in item):
                        raise NodeError(
                            f"IPFS node {self.api_url} failed during add: {item.get('Message')}"
                        )
                    if "Hash" in item:
                        answered[str(item["Name"])] = str(item["Hash"])
            _fill_directories(parts, local, cid_version)
            for part in parts:
                expected = local[part.name].cid
                got = answered.get(part.name)
                # js-ipfs does not list empty directories; the root's CID covers them anyway.
                if got is None and part is not parts[0]:
                    continue
                if got is None or parse_cid(got) != expected:
                    raise ContentMismatch(
                        f"node {self.api_url} stored {part.name.removeprefix('root/')} as {got}, "
                        f"but its bytes hash to {expected}: the node is faulty or uses other "
                        "add parameters; do not record this CID"
                    )
            return local

        return self._retry("add", call)

    # ------------------------------------------------------------------ get

    def block_get(self, cid: str | Cid, *, timeout_s: float | None = None) -> bytes:
        """One block, hash-checked; an unknown block fails after ``timeout_s``."""
        parsed = parse_cid(cid)
        timeout = timeout_s if timeout_s is not None else self.timeout_s

        def call() -> bytes:
            response = self._http.post(
                "/block/get",
                params={"arg": str(parsed), "timeout": f"{int(timeout * 1000)}ms"},
                timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            )
            self._raise_for(response, f"block/get {parsed}", timeout)
            return check_block(parsed, response.content, f"node {self.api_url}")

        return self._retry(f"block/get {parsed}", call, timeout)

    def cat_stream(self, cid: str | Cid, *, timeout_s: float | None = None) -> Iterator[bytes]:
        """A file's bytes as the node sends them — UNVERIFIED; use :meth:`get` or :meth:`cat`.

        The node is given no deadline for the whole stream (a multi-GB file takes minutes);
        instead the stream fails when no byte arrives for ``timeout_s``. A connection that
        breaks mid-stream is reopened at the byte where it stopped (``cat --offset``), with
        backoff, up to ``retries`` times.
        """
        parsed = parse_cid(cid)
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        read_size = self.settings.read_size
        sent = 0
        for attempt in range(1, self.retries + 1):
            params: dict[str, Any] = {"arg": str(parsed)}
            if sent:
                params["offset"] = sent
            try:
                with self._http.stream(
                    "POST",
                    "/cat",
                    params=params,
                    timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                    headers={"Accept-Encoding": "identity"},
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        self._raise_for(response, f"cat {parsed}", timeout)
                    # Raw chunks avoid a decode-and-rechunk copy (~1.5x faster); honour an
                    # encoding anyway should a proxy add one.
                    encoded = response.headers.get("Content-Encoding", "identity") != "identity"
                    pieces = response.iter_bytes(read_size) if encoded else response.iter_raw()
                    for data in pieces:
                        sent += len(data)
                        yield data
                return
            except httpx.TimeoutException as error:
                raise NodeTimeout(
                    f"IPFS node {self.api_url} sent nothing for {parsed} within {timeout:g}s: "
                    "the content is not on this node or its network; check the CID, pin it "
                    "where it was added, or raise OML_IPFS_TIMEOUT_S"
                ) from error
            except httpx.TransportError as error:
                if attempt == self.retries:
                    raise NodeUnavailable(
                        f"IPFS node {self.api_url} failed while sending {parsed} ({error}) "
                        f"{attempt} times; check the node is running (`oml world status`)"
                    ) from error
                delay = self.settings.backoff_s * 2 ** (attempt - 1)
                log.info(
                    "cat %s broke at byte %d (%s); resuming in %.1fs", parsed, sent, error, delay
                )
                time.sleep(delay)

    # Old name, kept for early callers.
    iter_cat = cat_stream

    def cat(
        self, cid: str | Cid, *, timeout_s: float | None = None, max_bytes: int = 64 << 20
    ) -> bytes:
        """A small file in memory, verified against its CID."""
        parsed = parse_cid(cid)
        self.block_get(parsed, timeout_s=timeout_s)  # fail fast on an unknown CID
        check = Recompute(parsed)
        data = bytearray()
        for piece in self.cat_stream(parsed, timeout_s=timeout_s):
            data += piece
            if len(data) > max_bytes:
                raise StorageError(f"{parsed} is larger than {max_bytes} bytes: use get()")
            check.update(piece)
        if check.matches():
            return bytes(data)
        log.warning("cat %s from %s did not match; re-fetching block by block", parsed, self)
        pieces = walk_file(parsed, lambda c: self.block_get(c, timeout_s=timeout_s))
        return b"".join(pieces)

    def get(
        self,
        cid: str | Cid,
        dest: Path,
        *,
        timeout_s: float | None = None,
        progress: Progress | None = None,
    ) -> Literal["file", "directory"]:
        """Fetch a file or a directory tree into ``dest``, verified before it appears there.

        A file replaces ``dest`` atomically; a directory needs ``dest`` not to exist yet.
        """
        parsed = parse_cid(cid)
        dest = Path(dest)
        block = self.block_get(parsed, timeout_s=timeout_s)
        kind = file_kind(parsed, block)[0]
        if kind == "file":
            self.get_file(parsed, dest, timeout_s=timeout_s, progress=progress)
            return "file"
        if dest.exists():
            raise StorageError(f"{dest} already exists: choose a new destination for {parsed}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            self._get_tree(parsed, block, staging, timeout_s, progress, depth=0)
            staging.chmod(0o777 & ~_UMASK)
            staging.rename(dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return "directory"

    def _get_tree(
        self,
        cid: Cid,
        block: bytes,
        into: Path,
        timeout_s: float | None,
        progress: Progress | None,
        depth: int,
    ) -> None:
        if depth > 64:
            raise StorageError(f"directory {cid} is nested more than 64 levels deep")
        node = file_kind(cid, block)[1]
        assert node is not None
        into.mkdir(exist_ok=True)
        for link in node.links:
            if not link.name or "/" in link.name or link.name in (".", "..") or "\0" in link.name:
                raise ContentMismatch(f"directory {cid} has an unsafe entry name {link.name!r}")
            child = self.block_get(link.cid, timeout_s=timeout_s)
            if file_kind(link.cid, child)[0] == "directory":
                self._get_tree(link.cid, child, into / link.name, timeout_s, progress, depth + 1)
            else:
                self.get_file(link.cid, into / link.name, timeout_s=timeout_s, progress=progress)

    def get_file(
        self,
        cid: str | Cid,
        dest: Path,
        *,
        timeout_s: float | None = None,
        progress: Progress | None = None,
        transform: Callable[[], Transform] | None = None,
    ) -> int:
        """Fetch a file into ``dest``; verified before it appears there. Returns its size.

        ``transform`` (a factory) turns the verified bytes into what is written, e.g. a
        decryptor: its ``finalize()`` must succeed too before ``dest`` appears. Returns the
        size of the fetched (not transformed) file.
        """
        parsed = parse_cid(cid)
        dest = Path(dest)
        if dest.is_dir():
            raise StorageError(f"{dest} is a directory: give the path of the file to write")
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.block_get(parsed, timeout_s=timeout_s)  # an unknown CID fails within the timeout
        fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as handle:
                check = Recompute(parsed)
                step: Transform | None = transform() if transform else None
                failure: Exception | None = None
                for data in self.cat_stream(parsed, timeout_s=timeout_s):
                    check.update(data)
                    if progress:
                        progress(len(data))
                    if failure is not None:
                        continue  # keep hashing: who is to blame depends on the CID check
                    try:
                        handle.write(step.update(data) if step else data)
                    except StorageError as error:
                        failure = error
                size = check.size
                if check.matches():
                    if failure is not None:
                        raise failure
                    if step:
                        handle.write(step.finalize())
                elif not self.settings.block_fallback:
                    raise ContentMismatch(
                        f"node {self.api_url} returned bytes for {parsed} that do not hash to "
                        "it: the node is faulty or malicious; nothing was written — use "
                        "another node"
                    )
                else:
                    log.warning(
                        "bytes of %s from %s do not rebuild its CID; re-fetching block by block",
                        parsed,
                        self.api_url,
                    )
                    handle.seek(0)
                    handle.truncate()
                    size = 0
                    step = transform() if transform else None
                    fetch = lambda c: self.block_get(c, timeout_s=timeout_s)  # noqa: E731
                    try:
                        for data in walk_file(parsed, fetch):
                            handle.write(step.update(data) if step else data)
                            size += len(data)
                    except ContentMismatch as error:
                        raise ContentMismatch(f"fetching {parsed}: {error}") from error
                    if step:
                        handle.write(step.finalize())
                handle.flush()
                os.fsync(handle.fileno())
            temp.chmod(0o666 & ~_UMASK)
            temp.replace(dest)
            log.debug("fetched %s (%d bytes) from %s into %s", parsed, size, self.api_url, dest)
            return size
        finally:
            temp.unlink(missing_ok=True)

    # ------------------------------------------------------------------ pins and stat

    def pin(self, cid: str | Cid) -> None:
        """Pin recursively (the whole DAG must be reachable within the timeout)."""
        parsed = str(parse_cid(cid))
        self._rpc(f"pin add {parsed}", lambda rpc: rpc.pin.add(parsed, timeout=self.timeout_s))

    def unpin(self, cid: str | Cid) -> None:
        parsed = str(parse_cid(cid))
        self._rpc(f"pin rm {parsed}", lambda rpc: rpc.pin.rm(parsed, timeout=self.timeout_s))

    def is_pinned(self, cid: str | Cid) -> bool:
        parsed = str(parse_cid(cid))
        try:
            answer = self._rpc(
                f"pin ls {parsed}",
                lambda rpc: rpc.pin.ls(parsed, type="recursive", timeout=self.timeout_s),
            )
        except NodeError as error:
            if "not pinned" in str(error):
                return False
            raise
        keys = answer.get("Keys") or {}
        return any(parse_cid(key) == parse_cid(parsed) for key in keys)

    def stat(self, cid: str | Cid) -> Stat:
        """``{"cid", "type" ("file"/"directory"), "size", "cumulative_size", "blocks"}``."""
        parsed = str(parse_cid(cid))
        answer = self._rpc(
            f"files stat {parsed}",
            lambda rpc: rpc.files.stat(f"/ipfs/{parsed}", timeout=self.timeout_s),
        )
        return {
            "cid": parsed,
            "type": str(answer.get("Type", "file")),
            "size": int(answer.get("Size", 0)),
            "cumulative_size": int(answer.get("CumulativeSize", 0)),
            "blocks": int(answer.get("Blocks", 0)),
        }

    def version(self) -> str:
        answer = self._rpc("version", lambda rpc: rpc.version(timeout=self.timeout_s))
        return str(answer.get("Version", "unknown"))

    # ------------------------------------------------------------------ models

    def publish_model(
        self,
        src_dir: Path,
        encrypt_to: bytes | None = None,
        *,
        manifest_fields: dict[str, Any] | None = None,
        progress: bool = False,
    ) -> ManifestRef:
        """See :func:`agents.storage.models.publish_model`."""
        from agents.storage.models import publish_model

        return publish_model(
            self, src_dir, encrypt_to, manifest_fields=manifest_fields, progress=progress
        )

    def fetch_model(
        self,
        manifest_cid: str,
        dest_dir: Path,
        private_key: bytes | None = None,
        *,
        progress: bool = False,
    ) -> ModelManifest:
        """See :func:`agents.storage.models.fetch_model`."""
        from agents.storage.models import fetch_model

        return fetch_model(self, manifest_cid, dest_dir, private_key, progress=progress)

    # ------------------------------------------------------------------ plumbing

    def _rpc(self, what: str, call: Callable[[Any], T]) -> T:
        import ipfshttpclient  # slow import, only for metadata calls

        if self._rpc_client is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # urllib3 deprecation noise inside the library
                self._rpc_client = ipfshttpclient.Client(
                    get_multiaddr(self.api_url), timeout=self.timeout_s
                )
        errors = ipfshttpclient.exceptions

        def attempt() -> T:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return call(self._rpc_client)
            except errors.TimeoutError as error:
                raise httpx.ReadTimeout(str(error)) from error
            except errors.ConnectionError as error:
                raise httpx.ConnectError(str(error)) from error
            except errors.ErrorResponse as error:
                raise NodeError(f"IPFS node {self.api_url} refused {what}: {error}") from error
            except errors.Error as error:
                raise NodeError(f"IPFS node {self.api_url} failed {what}: {error}") from error

        return self._retry(what, attempt)

    def _retry(self, what: str, call: Callable[[], T], timeout_s: float | None = None) -> T:
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        for attempt in range(1, self.retries + 1):
            try:
                return call()
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.WriteError) as error:
                if attempt == self.retries:
                    raise NodeUnavailable(
                        f"IPFS node {self.api_url} unreachable for {what} after {attempt} tries "
                        f"({error}); is it running (`oml world status`, `make up`) and is "
                        "OML_IPFS_API_URL right?"
                    ) from error
                delay = self.settings.backoff_s * 2 ** (attempt - 1)
                log.info("%s on %s failed (%s); retry in %.1fs", what, self.api_url, error, delay)
                time.sleep(delay)
            except httpx.TimeoutException as error:
                # Not retried: the node already had the whole timeout to find the content.
                raise NodeTimeout(
                    f"IPFS node {self.api_url} did not complete {what} within {timeout:g}s: "
                    "the content is not on this node or its network; check the CID, pin it "
                    "where it was added, or raise OML_IPFS_TIMEOUT_S"
                ) from error
        raise AssertionError("unreachable")

    def _raise_for(self, response: httpx.Response, what: str, timeout_s: float = 0) -> None:
        if response.status_code == 200:
            return
        try:
            message = str(response.json().get("Message", response.text))
        except ValueError:
            message = response.text.strip()[:300]
        if "timed out" in message or "deadline exceeded" in message:
            raise NodeTimeout(
                f"IPFS node {self.api_url} could not find {what.split()[-1]} within "
                f"{timeout_s or self.timeout_s:g}s: the content is not on this node or its "
                "network; check the CID, pin it where it was added, or raise OML_IPFS_TIMEOUT_S"
            )
        if response.status_code in (404, 405) and "/" not in message:
            message += " (is this URL the RPC API, not a gateway?)"
        raise NodeError(f"IPFS node {self.api_url} refused {what}: {message}")


# Early callers know the client by this name.
IpfsStore = IpfsClient


def get_multiaddr(api_url: str) -> str:
    """The multiaddr of an http(s) URL, as ipfshttpclient expects it."""
    from urllib.parse import urlsplit

    url = urlsplit(api_url)
    host = url.hostname or "127.0.0.1"
    kind = "ip6" if ":" in host else "ip4" if host.replace(".", "").isdigit() else "dns"
    return f"/{kind}/{host}/tcp/{url.port or (443 if url.scheme == 'https' else 80)}/" + (
        url.scheme or "http"
    )


def _read(source: Path | bytes | Callable[[], Iterable[bytes]], size: int) -> Iterable[bytes]:
    if isinstance(source, bytes):
        yield source
        return
    if callable(source):
        yield from source()
        return
    with source.open("rb") as handle:
        while data := handle.read(size):
            yield data


def _fill_directories(parts: list[_Part], local: dict[str, DagNode], cid_version: int) -> None:
    """Compute the directory nodes of ``parts`` bottom-up from the files' nodes in ``local``."""
    directories = [part.name for part in parts if part.source is None]
    for name in sorted(directories, key=lambda n: n.count("/"), reverse=True):
        prefix = name + "/"
        children = {
            other[len(prefix) :]: node
            for other, node in local.items()
            if other.startswith(prefix) and "/" not in other[len(prefix) :]
        }
        local[name] = directory_node(children, cid_version=cid_version)[1]
