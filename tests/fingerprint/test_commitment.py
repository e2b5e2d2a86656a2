"""The Merkle commitment must match the Solidity verifier byte for byte: hand-built trees."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.fingerprint.commitment import (
    commit,
    fingerprint_leaf,
    fingerprint_salt,
    merkle_proof,
    merkle_root,
    verify_proof,
)
from agents.fingerprint.errors import CommitmentError
from agents.fingerprint.generation import Fingerprint


def h(a: bytes, b: bytes) -> bytes:
    """OpenZeppelin's commutative pair hash, written out independently."""
    return keccak(min(a, b) + max(a, b))


def leaves(n: int) -> list[bytes]:
    return [keccak(bytes([i])) for i in range(n)]


def test_salt_layout() -> None:
    seed = bytes(range(32))
    expected = keccak(seed + b"oml-salt" + (7).to_bytes(32, "big"))
    assert fingerprint_salt(seed, 7) == expected
    assert fingerprint_salt(seed, 0) != fingerprint_salt(seed, 1)
    assert fingerprint_salt(seed, 0) != fingerprint_salt(seed + b"x", 0)


def test_leaf_is_double_hash_of_abi_encoding() -> None:
    salt = keccak(b"salt")
    key, response = "Ünïcode key words", " response"
    body = (
        (42).to_bytes(32, "big")
        + (3).to_bytes(32, "big")
        + keccak(key.encode("utf-8"))
        + keccak(response.encode("utf-8"))
        + salt
    )
    assert (
        encode(
            ["uint256", "uint256", "bytes32", "bytes32", "bytes32"],
            [42, 3, keccak(key.encode()), keccak(response.encode()), salt],
        )
        == body
    )
    assert fingerprint_leaf(42, 3, key, response, salt) == keccak(keccak(body))
    assert fingerprint_leaf(43, 3, key, response, salt) != fingerprint_leaf(
        42, 3, key, response, salt
    )


def test_leaf_rejects_bad_salt() -> None:
    with pytest.raises(CommitmentError):
        fingerprint_leaf(1, 0, "k", "r", b"short")


def test_one_leaf_is_its_own_root() -> None:
    (a,) = leaves(1)
    assert merkle_root([a]) == a
    assert merkle_proof([a], 0) == []
    assert verify_proof([], a, a)


def test_two_leaves() -> None:
    a, b = leaves(2)
    assert merkle_root([a, b]) == h(a, b) == merkle_root([b, a])
    assert merkle_proof([a, b], 0) == [b]
    assert merkle_proof([a, b], 1) == [a]


def test_three_leaves_promote_the_odd_one() -> None:
    a, b, c = leaves(3)
    root = h(h(a, b), c)
    assert merkle_root([a, b, c]) == root
    assert merkle_proof([a, b, c], 0) == [b, c]
    assert merkle_proof([a, b, c], 2) == [h(a, b)]


def test_five_leaves() -> None:
    a, b, c, d, e = leaves(5)
    root = h(h(h(a, b), h(c, d)), e)
    assert merkle_root([a, b, c, d, e]) == root
    assert merkle_proof([a, b, c, d, e], 4) == [h(h(a, b), h(c, d))]
    assert merkle_proof([a, b, c, d, e], 2) == [d, h(a, b), e]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 8, 13])
def test_every_proof_verifies_and_tampering_fails(n: int) -> None:
    items = leaves(n)
    root = merkle_root(items)
    for i, leaf in enumerate(items):
        proof = merkle_proof(items, i)
        assert verify_proof(proof, root, leaf)
        assert not verify_proof(proof, root, keccak(leaf))
        if proof:
            assert not verify_proof(proof[:-1], root, leaf)


def test_proof_index_out_of_range() -> None:
    with pytest.raises(CommitmentError):
        merkle_proof(leaves(3), 3)
    with pytest.raises(CommitmentError):
        merkle_root([])


def test_commit_matches_manual_leaves() -> None:
    seed = b"\x05" * 32
    fps = [Fingerprint(f"key {i}", f" r{i}") for i in range(5)]
    commitment = commit(9, fps, seed)
    manual = [
        fingerprint_leaf(9, i, fp.key, fp.response, fingerprint_salt(seed, i))
        for i, fp in enumerate(fps)
    ]
    assert commitment.leaves == manual
    assert commitment.root == merkle_root(manual)
    assert verify_proof(commitment.proof(3), commitment.root, manual[3])
    assert commit(10, fps, seed).root != commitment.root
