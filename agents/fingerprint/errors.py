"""Errors of the fingerprinting engine; each message says what to do next."""

from __future__ import annotations


class FingerprintError(Exception):
    """Base class: anything the fingerprinting engine refuses or cannot do."""


class ModelNotFoundError(FingerprintError):
    """A model folder or file is missing or is not a Hugging Face model folder."""


class ConfigError(FingerprintError):
    """A configuration value is out of range or inconsistent."""


class FingerprintFileError(FingerprintError):
    """A fingerprints.json file is missing, unreadable or malformed."""


class EndpointError(FingerprintError):
    """An OpenAI-compatible endpoint could not be queried."""


class CommitmentError(FingerprintError):
    """A Merkle commitment was asked for something it cannot prove (e.g. an index out of range)."""


class InsufficientMemoryError(FingerprintError):
    """A run would need more memory than the device has free; refused before it starts."""
