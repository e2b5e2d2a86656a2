"""Errors of the prover; each says what to do next."""

from __future__ import annotations


class ProverError(RuntimeError):
    """Base class of prover errors."""


class ConfigError(ProverError):
    """The prover configuration is incomplete or inconsistent."""


class NotRegistered(ProverError):
    """The account has no prover bond on chain."""


class KeyServiceError(ProverError):
    """The oracle key service refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KeyIntegrityError(ProverError):
    """A released key does not verify against the copy's on-chain fingerprint root."""


class ProbeError(ProverError):
    """An endpoint could not be probed (unreachable, not OpenAI-compatible, refused)."""


class ChallengeError(ProverError):
    """A challenge could not be advanced; the next pass retries."""
