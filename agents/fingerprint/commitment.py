"""The on-chain commitment to a copy's fingerprints: leaves, Merkle root and proofs.

This must match the Solidity verifier byte for byte:

* ``keyHash = keccak256(utf8(key))``, ``responseHash = keccak256(utf8(response))``
* ``salt_i = keccak256(seed || b"oml-salt" || uint256(i) as 32 bytes big-endian)``
* ``inner = keccak256(abi.encode(uint256 copyId, uint256 i, bytes32 keyHash,
  bytes32 responseHash, bytes32 salt))`` and ``leaf = keccak256(inner)`` (double hash, so a
  64-byte inner node can never pass as a leaf)
* the tree is OpenZeppelin ``MerkleProof``'s: ``parent = keccak256(min(a, b) || max(a, b))``,
  levels built pairwise from the leaves in index order, an odd last node is promoted unchanged,
  and a single leaf is its own root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from agents.fingerprint.errors import CommitmentError
from agents.fingerprint.generation import Fingerprint

SALT_TAG = b"oml-salt"


def fingerprint_salt(seed: bytes, index: int) -> bytes:
    """The 32-byte salt of fingerprint ``index`` of the copy whose secret seed is ``seed``."""
    if index < 0:
        raise CommitmentError(f"index must be >= 0, got {index}")
    return keccak(seed + SALT_TAG + index.to_bytes(32, "big"))


def fingerprint_leaf(copy_id: int, index: int, key: str, response: str, salt: bytes) -> bytes:
    """The Merkle leaf of one fingerprint (double keccak of the ABI-encoded tuple)."""
    if len(salt) != 32:
        raise CommitmentError(f"salt must be 32 bytes, got {len(salt)}")
    inner = keccak(
        encode(
            ["uint256", "uint256", "bytes32", "bytes32", "bytes32"],
            [copy_id, index, keccak(key.encode("utf-8")), keccak(response.encode("utf-8")), salt],
        )
    )
    return keccak(inner)


def _parent(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


def _levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    if not leaves:
        raise CommitmentError("a Merkle tree needs at least one leaf")
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        nxt = [_parent(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        levels.append(nxt)
    return levels


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The root of the sorted-pair Merkle tree over ``leaves`` (in index order)."""
    return _levels(leaves)[-1][0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Sibling hashes from leaf ``index`` up to the root (skipping promoted odd nodes)."""
    if not 0 <= index < len(leaves):
        raise CommitmentError(f"index {index} is out of range for {len(leaves)} leaves")
    proof: list[bytes] = []
    position = index
    for level in _levels(leaves)[:-1]:
        sibling = position ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        position //= 2
    return proof


def verify_proof(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """OpenZeppelin ``MerkleProof.verify``: fold the proof with sorted pairs, compare roots."""
    node = leaf
    for sibling in proof:
        node = _parent(node, sibling)
    return node == root


@dataclass(frozen=True)
class Commitment:
    """A copy's commitment: ``root`` goes on chain as ``fpRoot``; ``leaves`` back the proofs."""

    root: bytes
    leaves: list[bytes]

    def proof(self, index: int) -> list[bytes]:
        return merkle_proof(self.leaves, index)


def commit(copy_id: int, fingerprints: Sequence[Fingerprint], seed: bytes) -> Commitment:
    """Commit to ``fingerprints`` (index = position) of ``copy_id``, salts drawn from ``seed``."""
    leaves = [
        fingerprint_leaf(copy_id, i, fp.key, fp.response, fingerprint_salt(seed, i))
        for i, fp in enumerate(fingerprints)
    ]
    return Commitment(root=merkle_root(leaves), leaves=leaves)
