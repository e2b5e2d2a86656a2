"""The scenario driver of `make demo`: the whole OML Hub story with real agents.

    python scripts/demo.py                      # the local world, deployments/local.json
    DEMO_MODEL=smollm2 python scripts/demo.py   # the real small model (slow on 2 cores)
    python scripts/demo.py --no-leak --calls 10 # honest hosts only, fewer calls
    python scripts/demo.py --list               # the steps, in order

Needs a running world (`make up`) with the protocol deployed (`ape run deploy`); `make demo`
does both first. Every setting is also an environment variable DEMO_* (agents/demo/settings.py).
docs/demo.md walks through the output. Exit status: 0 when every step ran and every amount
matched the contracts' arithmetic, 1 otherwise, 130 when interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.demo.errors import DemoError
from agents.demo.settings import DemoSettings


@click.command()
@click.option("--model", type=click.Choice(["tiny", "smollm2"]), help="DEMO_MODEL (tiny).")
@click.option("--network", help="deployments/<network>.json (DEMO_NETWORK, local).")
@click.option("--calls", type=int, help="Calls per host per traffic wave (DEMO_CALLS).")
@click.option("--fingerprints", type=int, help="Fingerprints per copy (DEMO_FINGERPRINTS).")
@click.option("--leak/--no-leak", default=None, help="Host B cheats and leaks (DEMO_LEAK).")
@click.option("--prover/--no-prover", default=None, help="Run the prover bot (DEMO_PROVER).")
@click.option("--port-base", type=int, help="First of four ports (DEMO_PORT_BASE, 18810).")
@click.option("--list", "list_steps", is_flag=True, help="Print the steps and exit.")
def main(list_steps: bool, **options: Any) -> None:
    """Play the OML Hub story on the local world and print what everybody earned."""
    from agents.demo.runner import run_demo
    from agents.demo.scenario import STEPS

    if list_steps:
        for index, step in enumerate(STEPS, 1):
            part = "" if step.part == "core" else f"  [{step.part}]"
            click.echo(f"{index:2d}. {step.key:<12} {step.title}{part}")
        return
    try:
        settings = DemoSettings(**{k: v for k, v in options.items() if v is not None})
    except ValueError as error:
        raise click.ClickException(f"invalid demo settings: {error}") from error
    try:
        summary = run_demo(settings)
    except DemoError as error:
        raise click.ClickException(str(error)) from error
    if summary.get("outcome") == "interrupted":
        sys.exit(130)
    if summary.get("outcome") != "ok" or summary.get("problems"):
        sys.exit(1)


if __name__ == "__main__":
    main()
