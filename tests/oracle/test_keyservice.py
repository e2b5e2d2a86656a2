"""The prover key service over HTTP (FastAPI TestClient), with the unit-test fakes for the chain.

Signatures, nonces, deadlines, rate limits and "never twice" are the service's own logic and
are exercised for real; the Merkle proofs it returns are checked with the real commitment code.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from agents.chain.key_requests import KeyRequest, sign_key_request
from agents.chain.keystore import dev_account
from agents.fingerprint.commitment import fingerprint_leaf, verify_proof
from agents.oracle.fingerprint_adapter import FingerprintEngine
from agents.oracle.keyservice import KeyServiceLimits, create_app
from tests.oracle.test_service_unit import FakeFingerprint, _request, _service

PROVER = dev_account(6)


class CommittingFingerprint(FakeFingerprint):
    """Fake embedding, real commitment: roots and proofs are the ones the contracts verify."""

    engine = FingerprintEngine()

    def merkle_root(self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes) -> bytes:
        return self.engine.merkle_root(copy_id, fingerprints, seed)

    def reveal_material(
        self, copy_id: int, fingerprints: list[tuple[str, str]], seed: bytes, index: int
    ) -> tuple[bytes, list[bytes]]:
        return self.engine.reveal_material(copy_id, fingerprints, seed, index)


@pytest.fixture
def client(tmp_path: Path) -> Any:
    service = _service(tmp_path, CommittingFingerprint())
    _request(service, copy_id=1)
    assert service.run_due() == 1
    app = create_app(service, KeyServiceLimits(keys_per_copy_per_window=6))
    return TestClient(app), service


def _body(
    count: int, nonce: int, *, signer: Any = PROVER, deadline: int | None = None
) -> dict[str, Any]:
    expires = deadline if deadline is not None else int(time.time()) + 60
    request = KeyRequest(
        prover=PROVER.address, copy_id=1, count=count, nonce=nonce, deadline=expires
    )
    signature = sign_key_request(signer, request, 31337)
    return {"request": request.model_dump(), "signature": signature.hex()}


def test_released_keys_carry_valid_proofs_and_are_never_released_twice(client: Any) -> None:
    http, service = client
    first = http.post("/v1/keys", json=_body(3, nonce=1))
    assert first.status_code == 200, first.text
    second = http.post("/v1/keys", json=_body(3, nonce=2))
    assert second.status_code == 200, second.text
    batches = [first.json(), second.json()]
    indices = [key["index"] for batch in batches for key in batch["keys"]]
    assert len(indices) == len(set(indices)) == 6
    root = bytes.fromhex(batches[0]["fp_root"].removeprefix("0x"))
    for key in batches[0]["keys"]:
        salt = bytes.fromhex(key["salt"].removeprefix("0x"))
        leaf = fingerprint_leaf(1, key["index"], key["key"], key["response"], salt)
        proof = [bytes.fromhex(node.removeprefix("0x")) for node in key["proof"]]
        assert verify_proof(proof, root, leaf)
    job = service.jobs.get(1)
    assert root.hex() == job.data["fp_root"]


def test_bad_requests_are_refused_with_reasons(client: Any) -> None:
    http, _ = client
    assert http.post("/v1/keys", json=_body(1, nonce=5, signer=dev_account(7))).status_code == 401
    assert http.post("/v1/keys", json=_body(1, nonce=6, deadline=1)).status_code == 400
    assert http.post("/v1/keys", json=_body(1, nonce=7)).status_code == 200
    replay = http.post("/v1/keys", json=_body(1, nonce=7))
    assert replay.status_code == 409 and "nonce" in replay.text
    limited = http.post("/v1/keys", json=_body(6, nonce=8))
    assert limited.status_code == 429 and "rate limit" in limited.text
