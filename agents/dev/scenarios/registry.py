"""Named, replayable scenarios: a registry, the context a scenario plays in, its outcome.

A scenario is a function ``run(ctx)`` registered with :func:`scenario`. It plays actors from
:mod:`agents.dev.actors` against whatever chain the context holds (the local world, a
private Anvil, a fork) and ends by stating the on-chain outcome it expects with
``ctx.expect(...)``; the outcome prints those checks, expected beside observed. Scenarios
that need a component which may not be installed (the prover bot) name its module in
``requires`` and are listed but not run while it is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.dev.devchain import DevChain
from agents.dev.errors import ScenarioError

# Modules holding built-in scenarios; each registers its own on import. Optional ones whose
# requirements are missing still import (they only name the module in `requires`).
BUILTIN_MODULES = (
    "agents.dev.scenarios.provable",
    "agents.dev.scenarios.leak",
    "agents.dev.scenarios.leaked",
)

ScenarioFn = Callable[["ScenarioContext"], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    expected: str  # the on-chain outcome in one sentence
    run: ScenarioFn
    requires: tuple[str, ...] = ()

    def missing(self) -> list[str]:
        """Required modules that cannot be imported here."""
        return [m for m in self.requires if not _importable(m)]


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


_REGISTRY: dict[str, Scenario] = {}


def scenario(
    name: str, *, title: str, expected: str, requires: tuple[str, ...] = ()
) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register ``run`` under ``name`` (kebab-case, unique)."""

    def register(run: ScenarioFn) -> ScenarioFn:
        if name in _REGISTRY and _REGISTRY[name].run is not run:
            raise ScenarioError(f"scenario {name!r} is registered twice")
        _REGISTRY[name] = Scenario(name, title, expected, run, requires)
        return run

    return register


def all_scenarios() -> list[Scenario]:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    return sorted(_REGISTRY.values(), key=lambda s: s.name)


def get_scenario(name: str) -> Scenario:
    known = {s.name: s for s in all_scenarios()}
    if name not in known:
        raise ScenarioError(f"no scenario {name!r}; `oml dev scenario list` shows them")
    return known[name]


# ---------------------------------------------------------------------- outcome


@dataclass(frozen=True)
class Check:
    """One assertion about the chain: what was expected, what the chain said."""

    what: str
    expected: Any
    actual: Any

    @property
    def ok(self) -> bool:
        return bool(self.expected == self.actual)


@dataclass
class Outcome:
    scenario: str
    expected: str
    rpc_url: str
    network: str
    steps: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.ok for c in self.checks)

    def check(self, what: str) -> Check:
        for c in self.checks:
            if c.what == what:
                return c
        raise KeyError(what)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "ok": self.ok,
            "expected": self.expected,
            "rpcUrl": self.rpc_url,
            "network": self.network,
            "seconds": round(self.seconds, 2),
            "steps": self.steps,
            "facts": self.facts,
            "checks": [
                {"what": c.what, "expected": c.expected, "actual": c.actual, "ok": c.ok}
                for c in self.checks
            ],
            "error": self.error,
        }


class ScenarioContext:
    """What a scenario plays with: the chain, a step log, facts and checks."""

    def __init__(self, dev: DevChain, outcome: Outcome) -> None:
        self.dev = dev
        self.outcome = outcome

    def step(self, text: str) -> None:
        self.outcome.steps.append(text)

    def fact(self, name: str, value: Any) -> Any:
        self.outcome.facts[name] = value
        return value

    def expect(self, what: str, expected: Any, actual: Any) -> None:
        self.outcome.checks.append(Check(what, expected, actual))


def run_scenario(name: str, dev: DevChain) -> Outcome:
    """Play scenario ``name`` on ``dev``; never raises for a failing step (see ``error``)."""
    chosen = get_scenario(name)
    missing = chosen.missing()
    if missing:
        raise ScenarioError(
            f"scenario {name!r} needs {', '.join(missing)}, which is not installed here"
        )
    outcome = Outcome(name, chosen.expected, dev.node.rpc_url, dev.deployment.network)
    automine = dev.node.automine()
    started = time.monotonic()
    try:
        chosen.run(ScenarioContext(dev, outcome))
    except Exception as error:  # report it in the outcome, with where it happened
        outcome.error = f"{type(error).__name__}: {error}"
        outcome.facts["traceback"] = traceback.format_exc(limit=6)
    finally:
        if dev.node.automine() != automine:
            dev.node.set_automine(automine)
        outcome.seconds = time.monotonic() - started
    return outcome
