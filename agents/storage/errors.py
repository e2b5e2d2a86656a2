"""Errors of the storage layer; each says what failed, where, and what to do next."""

from __future__ import annotations


class StorageError(RuntimeError):
    """Base class of storage errors."""


class NodeUnavailable(StorageError):
    """The IPFS node did not answer: it is down, the URL is wrong, or the network failed."""


class NodeTimeout(NodeUnavailable):
    """The node did not produce the content within the configured timeout."""


class NodeError(StorageError):
    """The node answered with an error (unknown command, bad argument, not pinned, ...)."""


class InvalidCid(StorageError, ValueError):
    """A string that is not a CID this layer can verify (sha2-256, dag-pb or raw)."""


class ContentMismatch(StorageError):
    """Bytes from the node do not hash to the CID asked for: the node lied or data is corrupt."""


class UnsupportedDag(StorageError):
    """A DAG shape this layer cannot verify (e.g. a HAMT-sharded directory)."""


class DecryptionError(StorageError):
    """Wrong key, or the ciphertext was tampered with, reordered, truncated or extended."""


class KeyFileError(StorageError):
    """A keystore or public key that cannot be read or used."""


class ManifestError(StorageError):
    """A manifest is malformed, of an unknown version, or does not describe the fetched files."""
