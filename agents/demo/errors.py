"""Errors of the demo driver: each says which step failed and where its log is."""

from __future__ import annotations


class DemoError(RuntimeError):
    """A step of the demo could not be completed."""


class StepSkipped(Exception):
    """Raised by a step that cannot run in this build; the message says why."""
