"""Errors of the dev tools; each says what to do next."""

from __future__ import annotations


class DevError(RuntimeError):
    """A dev command could not do what was asked."""


class NotAnvil(DevError):
    """The node at the RPC URL does not speak Anvil's cheatcodes."""


class ForkError(DevError):
    """Fork mode could not start, or the origin's deployment could not be matched."""


class ScenarioError(DevError):
    """A scenario could not run (unknown name, missing requirement, a step failed)."""
