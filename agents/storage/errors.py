"""Errors of the storage layer; each names what failed and what to do."""

from __future__ import annotations


class StorageError(RuntimeError):
    """Base class of storage errors."""


class NodeUnavailable(StorageError):
    """The IPFS node did not answer (down, wrong URL, or timed out)."""


class ContentMismatch(StorageError):
    """Bytes from the node do not hash to the CID asked for: the node lied or data is corrupt."""


class DecryptionError(StorageError):
    """Wrong key, or the ciphertext was tampered with, reordered or truncated."""


class ManifestError(StorageError):
    """A manifest is malformed or does not describe the fetched files."""
