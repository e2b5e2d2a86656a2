"""publish_model / fetch_model against the real node: HF-like folders, plain and encrypted."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_keys import keys
from storage_support import LyingProxy, Tamper, flip, listing

from agents.storage.client import IpfsClient
from agents.storage.errors import ContentMismatch, DecryptionError, ManifestError
from agents.storage.manifest import FileEntry, ModelManifest
from agents.storage.models import (
    fetch_model,
    load_manifest,
    publish_model,
    publish_sealed,
    seal_folder,
)

HOST_KEY = bytes.fromhex("59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d")
HOST_PUB = keys.PrivateKey(HOST_KEY).public_key.to_bytes()


def hf_folder(root: Path) -> Path:
    """A small Hugging Face-style model folder with nested files."""
    files = {
        "config.json": json.dumps({"architectures": ["LlamaForCausalLM"], "model_type": "llama"}),
        "tokenizer_config.json": json.dumps({"tokenizer_class": "LlamaTokenizerFast"}),
        "tokenizer.json": json.dumps({"model": {"vocab": {"a": 0}}}),
        "generation_config.json": "{}",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "model-00001-of-00002.safetensors").write_bytes(os.urandom(700_000))
    (root / "model-00002-of-00002.safetensors").write_bytes(os.urandom(262_144))
    (root / "adapters" / "lora").mkdir(parents=True)
    (root / "adapters" / "lora" / "adapter_model.bin").write_bytes(os.urandom(1234))
    (root / "adapters" / "empty.txt").write_bytes(b"")
    (root / ".cache").mkdir()
    (root / ".cache" / "junk").write_bytes(b"not published")
    return root


def published_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).as_posix().startswith(".")
    }


def test_publish_fetch_plain_byte_identical(client: IpfsClient, tmp_path: Path) -> None:
    src = hf_folder(tmp_path / "llama-tiny")
    ref = publish_model(
        client,
        src,
        manifest_fields={"license": "apache-2.0", "parents": [{"model_id": 1, "version": 0}]},
    )
    manifest = ref.manifest
    assert (manifest.name, manifest.architecture) == ("llama-tiny", "LlamaForCausalLM")
    assert manifest.tokenizer == "LlamaTokenizerFast"
    assert manifest.license == "apache-2.0" and manifest.encryption is None
    assert len(manifest.files) == 8  # .cache skipped
    assert load_manifest(client, ref.cid) == manifest
    assert client.is_pinned(ref.cid)
    assert all(client.is_pinned(entry.cid) for entry in manifest.files)
    fetch_model(client, ref.cid, tmp_path / "copy")
    assert published_files(tmp_path / "copy") == published_files(src)
    assert not (tmp_path / "copy" / ".cache").exists()
    # Publishing again gives the same manifest CID: the manifest bytes are canonical.
    assert (
        publish_model(
            client,
            src,
            manifest_fields={"license": "apache-2.0", "parents": [{"model_id": 1, "version": 0}]},
        ).cid
        == ref.cid
    )


def test_publish_fetch_encrypted(client: IpfsClient, tmp_path: Path) -> None:
    src = hf_folder(tmp_path / "model")
    ref = client.publish_model(src, HOST_PUB)
    assert ref.manifest.encryption is not None
    assert ref.manifest.encryption.recipient_pubkey == "0x" + HOST_PUB.hex()
    raw = client.cat(ref.cid)
    assert b"content_key" not in raw and HOST_KEY.hex().encode() not in raw
    # What is stored is ciphertext: the plaintext's CID is not what the manifest records.
    weights = next(e for e in ref.manifest.files if e.path.startswith("model-00001"))
    stored = client.cat(weights.cid)
    assert stored[:6] == b"OMLENC" and (src / weights.path).read_bytes()[:100] not in stored
    client.fetch_model(ref.cid, tmp_path / "copy", HOST_KEY)
    assert published_files(tmp_path / "copy") == published_files(src)


def test_encrypted_needs_the_right_key(client: IpfsClient, tmp_path: Path) -> None:
    ref = publish_model(client, hf_folder(tmp_path / "model"), HOST_PUB)
    with pytest.raises(ManifestError, match="encrypted to 0x"):
        fetch_model(client, ref.cid, tmp_path / "a")
    with pytest.raises(DecryptionError, match="not encrypted to this key"):
        fetch_model(client, ref.cid, tmp_path / "b", os.urandom(32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_seal_then_publish_like_the_oracle(client: IpfsClient, tmp_path: Path) -> None:
    src = hf_folder(tmp_path / "copy-7")
    sealed = seal_folder(src, tmp_path / "sealed", HOST_PUB)
    ref = publish_sealed(client, sealed, manifest_fields={"fingerprint_scheme": {"count": 8}})
    assert ref.manifest.fingerprint_scheme == {"count": 8}
    assert ref.manifest.name == "copy-7"
    fetch_model(client, ref.cid, tmp_path / "host", HOST_KEY)
    assert published_files(tmp_path / "host") == published_files(src)


def test_tampered_ciphertext_on_the_node_writes_nothing(
    client: IpfsClient, lying_proxy: Callable[[Tamper], LyingProxy], tmp_path: Path
) -> None:
    ref = publish_model(client, hf_folder(tmp_path / "model"), HOST_PUB)
    big = next(e for e in ref.manifest.files if e.path.startswith("model-00001"))

    def tamper(endpoint: str, body: bytes) -> bytes:
        return flip(body) if endpoint in ("cat", "block/get") and len(body) > 100_000 else body

    proxy = lying_proxy(tamper)
    with IpfsClient(proxy.url) as liar, pytest.raises(ContentMismatch, match=big.cid):
        fetch_model(liar, ref.cid, tmp_path / "out" / "copy", HOST_KEY)
    assert listing(tmp_path / "out") == []


def test_manifest_that_lies_about_a_file_writes_nothing(client: IpfsClient, tmp_path: Path) -> None:
    good = publish_model(client, hf_folder(tmp_path / "model"))
    entries = list(good.manifest.files)
    entries[0] = FileEntry(
        path=entries[0].path, size=entries[0].size, sha256="00" * 32, cid=entries[0].cid
    )
    forged = ModelManifest(**{**good.manifest.model_dump(), "files": entries})
    cid = client.add_bytes(forged.to_json())
    with pytest.raises(ManifestError, match="does not match manifest"):
        fetch_model(client, cid, tmp_path / "out" / "copy")
    assert listing(tmp_path / "out") == []


def test_not_a_manifest_and_existing_destination(client: IpfsClient, tmp_path: Path) -> None:
    cid = client.add_bytes(b'{"hello": "world"}')
    with pytest.raises(ManifestError, match="no schema_version"):
        fetch_model(client, cid, tmp_path / "x")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ManifestError, match="already exists"):
        fetch_model(client, cid, tmp_path / "taken")
    with pytest.raises(ManifestError, match="no files"):
        publish_model(client, tmp_path / "taken")
