"""The manifest schema: what it accepts, what it refuses, canonical bytes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from agents.storage.errors import ManifestError
from agents.storage.manifest import ModelManifest

SHA = "ab" * 32


def manifest(**overrides: Any) -> ModelManifest:
    fields: dict[str, Any] = {
        "name": "tiny",
        "files": [{"path": "model.safetensors", "size": 3, "sha256": SHA, "cid": "Qmx"}],
    }
    fields.update(overrides)
    return ModelManifest.model_validate(fields)


def test_canonical_json_round_trip() -> None:
    a = manifest(
        files=[
            {"path": "b.bin", "size": 1, "sha256": SHA, "cid": "Qm1"},
            {"path": "a/c.bin", "size": 2, "sha256": SHA, "cid": "Qm2"},
        ],
        parents=[{"model_id": 3, "version": 0}],
        fingerprint_scheme={"strategy": "perinucleus", "count": 1024, "key_length": 16},
    )
    assert [f.path for f in a.files] == ["a/c.bin", "b.bin"]  # sorted
    raw = a.to_json()
    assert b" " not in raw.replace(b'"name":"tiny"', b"")
    assert ModelManifest.from_json(raw) == a
    assert ModelManifest.from_json(raw).to_json() == raw
    assert json.loads(raw)["schema_version"] == 1


@pytest.mark.parametrize("path", ["/etc/passwd", "../up", "a/../b", "a//b", "", "a\\b", "./a"])
def test_unsafe_paths_refused(path: str) -> None:
    with pytest.raises(ValidationError):
        manifest(files=[{"path": path, "size": 1, "sha256": SHA, "cid": "Qm"}])


def test_duplicates_and_file_folder_clash_refused() -> None:
    entry = {"path": "a", "size": 1, "sha256": SHA, "cid": "Qm"}
    with pytest.raises(ValidationError, match="duplicate"):
        manifest(files=[entry, entry])
    with pytest.raises(ValidationError, match="both as file and folder"):
        manifest(files=[entry, {**entry, "path": "a/b"}])


@pytest.mark.parametrize(
    "scheme",
    [
        {"seed": "00"},
        {"keys": ["k1"]},
        {"params": {"master_secret": "x"}},
        {"private_key": "0x1"},
        {"list": [{"responses": ["r"]}]},
        {"content_key": "k"},
    ],
)
def test_secrets_in_fingerprint_scheme_refused(scheme: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="secret material"):
        manifest(fingerprint_scheme=scheme)


def test_limits() -> None:
    with pytest.raises(ValidationError):
        manifest(files=[])
    with pytest.raises(ValidationError):
        manifest(parents=[{"model_id": i, "version": 0} for i in range(1, 6)])
    with pytest.raises(ValidationError):
        manifest(parents=[{"model_id": 0, "version": 0}])
    with pytest.raises(ValidationError):
        manifest(encryption={"recipient_pubkey": "0x1234"})
    with pytest.raises(ValidationError):
        manifest(unknown_field=1)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "no schema_version"),
        (b'{"schema_version": 2, "name": "x"}', "schema_version 2.*upgrade"),
        (b'{"schema_version": 1, "name": "x"}', "not a valid OML model manifest"),
    ],
)
def test_from_json_errors(raw: bytes, match: str) -> None:
    with pytest.raises(ManifestError, match=match):
        ModelManifest.from_json(raw)
