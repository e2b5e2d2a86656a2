"""`oml world up|down|status`: the local Anvil chain and IPFS node."""

from __future__ import annotations

import json

import click

from agents.config import get_settings
from agents.world import WorldError, down, status, up


@click.group("world")
def group() -> None:
    """Start, stop and inspect the local Anvil + IPFS world (pids and logs in .run/)."""


def _print(report: dict[str, dict[str, object]]) -> None:
    settings = get_settings()
    urls = {"anvil": settings.rpc_url, "ipfs": settings.ipfs_api_url}
    for name, info in report.items():
        state = "answering" if info["answering"] else "not answering"
        click.echo(f"{name:<6} {urls[name]:<28} pid {info['pid']}  {state}")


@group.command("up")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for readiness.")
def up_command(timeout: float) -> None:
    """Start Anvil and IPFS unless already running; wait until both answer."""
    try:
        _print(up(get_settings(), timeout_s=timeout))
    except WorldError as error:
        raise click.ClickException(str(error)) from error


@group.command("down")
def down_command() -> None:
    """Stop exactly the processes `oml world up` started."""
    stopped = down(get_settings())
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(as_json: bool) -> None:
    """Show pid, port and readiness of each local service."""
    report = status(get_settings())
    click.echo(json.dumps(report, indent=2)) if as_json else _print(report)
