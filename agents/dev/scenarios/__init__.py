"""Replayable scenarios of honest and dishonest actors; see docs/testing.md."""

from agents.dev.scenarios.registry import (
    Check,
    Outcome,
    Scenario,
    ScenarioContext,
    all_scenarios,
    get_scenario,
    run_scenario,
    scenario,
)

__all__ = [
    "Check",
    "Outcome",
    "Scenario",
    "ScenarioContext",
    "all_scenarios",
    "get_scenario",
    "run_scenario",
    "scenario",
]
