"""Errors of the host node; each says what to do next."""

from __future__ import annotations


class HostError(RuntimeError):
    """Base class of host errors."""


class ConfigError(HostError):
    """The host configuration is incomplete or inconsistent."""


class LedgerError(HostError):
    """The receipt ledger cannot be used as asked (wrong copy, closed epoch, corrupt file)."""


class ReportError(HostError):
    """An epoch could not be reported; the reporter retries on its next run."""


class InsufficientFunds(ReportError):
    """The host's fee-token balance cannot pay an epoch's fee."""


class LogFormatError(HostError):
    """A usage log line could not be read."""
