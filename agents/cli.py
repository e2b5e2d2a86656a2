"""The one `oml` command. Sub-commands live in their packages; this module only wires them."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import Any

import click

from agents.config import get_settings

# role name -> (module holding a click group called `group`, one-line help)
ROLES: dict[str, tuple[str, str]] = {
    "world": ("agents.world_commands", "Start, stop and inspect the local Anvil + IPFS world."),
    "creator": ("agents.creator.commands", "Register models and derivatives, publish versions."),
    "host": ("agents.host.commands", "Request licences, fetch copies, serve and report usage."),
    "prover": ("agents.prover.commands", "Probe deployments with fingerprint keys, challenge."),
    "oracle": ("agents.oracle.commands", "Fingerprint and deliver licensed copies; serve keys."),
    "storage": ("agents.storage.commands", "Add, fetch, publish and encrypt models on IPFS."),
    "fingerprint": ("agents.fingerprint.commands", "Generate, embed, verify and evaluate."),
    "arbiter": ("agents.arbiter.commands", "Resolve disputed leak challenges (arbiter role)."),
    "dev": ("agents.dev.commands", "Testers' tools: time travel, impersonation, scenarios."),
}


class RoleGroup(click.Group):
    """Imports a role's commands only when it is invoked, so `oml --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*sorted(ROLES), *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in ROLES:
            return super().get_command(ctx, cmd_name)
        module_name, help_text = ROLES[cmd_name]
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name and not module_name.startswith(missing.name):
                raise
            return _not_yet(cmd_name, help_text)
        group: click.Command = module.group
        group.short_help = help_text
        return group


def _not_yet(name: str, help_text: str) -> click.Command:
    @click.command(name, help=f"{help_text}\n\nNot available in this build yet.")
    def placeholder() -> None:
        raise click.ClickException(f"`oml {name}` is not available in this build yet")

    placeholder.short_help = help_text
    return placeholder


@click.group(cls=RoleGroup)
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="oml-hub")
def cli(verbose: int) -> None:
    """OML Hub: open, monetizable and loyal AI models.

    Every role of the protocol has its own group of commands; start with `oml doctor`.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format='{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s"}',
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Check the toolchain and the local world; say how to fix what is missing."""
    from agents.doctor import run_checks

    checks = run_checks(get_settings())
    if as_json:
        payload: list[dict[str, Any]] = [c.__dict__ for c in checks]
        click.echo(json.dumps(payload, indent=2))
    else:
        for check in checks:
            click.echo(check.line())
    failed = [c for c in checks if not c.ok]
    if failed:
        names = ", ".join(c.name for c in failed)
        raise click.ClickException(f"{len(failed)} problem(s): {names}")


def main() -> None:
    cli(prog_name="oml")


if __name__ == "__main__":
    main()
