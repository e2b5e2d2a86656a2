"""Errors of the chain layer; each says what to do next."""

from __future__ import annotations


class ChainError(RuntimeError):
    """Base class of chain-layer errors."""


class DeploymentNotFound(ChainError):
    """No deployments/<network>.json, or a contract missing from it."""


class KeystoreError(ChainError):
    """A keystore could not be read or decrypted."""


class TransactionFailed(ChainError):
    """A transaction reverted or could not be sent; carries the decoded custom error if any."""

    def __init__(self, message: str, *, error_name: str | None = None, tx_hash: str | None = None):
        super().__init__(message)
        self.error_name = error_name
        self.tx_hash = tx_hash
