"""`oml arbiter ...`: list disputed leak challenges, inspect one, rule on it."""

from __future__ import annotations

import json
from typing import Any

import click


@click.group("arbiter")
@click.option("--network", default="local", show_default=True, help="deployments/<network>.json")
@click.option(
    "--account",
    default="dev:2",
    show_default=True,
    envvar="OML_ARBITER_ACCOUNT",
    help="The arbiter's key: dev:N (local chain) or a keystore path.",
)
@click.pass_context
def group(ctx: click.Context, network: str, account: str) -> None:
    """Resolve disputed leak challenges (the arbiter role of ChallengeManager).

    \b
      oml arbiter list                       # disputes waiting for a ruling
      oml arbiter show 7                     # the case, evidence re-verified
      oml arbiter resolve 7 --uphold         # leaked: slash the host
      oml arbiter resolve 7 --reject         # not shown: challenger forfeits half its bond
    """
    ctx.obj = {"network": network, "account": account}


def _arbiter(ctx: click.Context) -> Any:
    from agents.arbiter.service import Arbiter
    from agents.chain.deployments import Deployment
    from agents.chain.keystore import resolve_account
    from agents.chain.protocol import Protocol

    try:
        deployment = Deployment.load(ctx.obj["network"])
        account = resolve_account(ctx.obj["account"], chain_id=deployment.chain_id)
        return Arbiter(Protocol.connect(account, ctx.obj["network"]))
    except RuntimeError as error:
        raise click.ClickException(str(error)) from error


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cases(ctx: click.Context, as_json: bool) -> None:
    """Disputed leak challenges waiting for a ruling."""
    cases = _arbiter(ctx).disputed()
    if as_json:
        click.echo(json.dumps(cases, indent=2))
        return
    for c in cases:
        click.echo(
            f"challenge {c['challengeId']}: copy {c['copyId']} host {c['host']} "
            f"challenger {c['challenger']} rule by {c['ruleBy']}"
        )
    if not cases:
        click.echo("no disputes waiting")


@group.command()
@click.argument("challenge_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, challenge_id: int, as_json: bool) -> None:
    """One case: the revealed key, the evidence re-verified, a recommendation."""
    from agents.arbiter.service import ArbiterError

    try:
        case = _arbiter(ctx).case(challenge_id)
    except ArbiterError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(case, indent=2, default=str))
        return
    ev = case["evidence"]
    click.echo(
        f"challenge {challenge_id} ({case['state']}): copy {case['copyId']} host "
        f"{case['host']}, key index {case['index']}, evidence {case['evidenceCID']}"
    )
    if ev.get("readable"):
        click.echo(
            f"  endpoint {ev['endpoint']}: {ev['matched']}/{ev['queried']} keys matched "
            f"({ev['proofs_ok']} proofs valid), false-positive p="
            f"{ev['false_positive_probability']:.2e} x {ev['copies_tested']} copies"
        )
    for problem in ev.get("problems", []):
        click.echo(f"  problem: {problem}")
    click.echo(f"  recommendation: {case['recommendation']}")


@group.command()
@click.argument("challenge_id", type=int)
@click.option(
    "--uphold/--reject",
    "leaked",
    required=True,
    help="--uphold: the copy leaked (slash); --reject: not shown.",
)
@click.pass_context
def resolve(ctx: click.Context, challenge_id: int, leaked: bool) -> None:
    """Rule on a disputed leak challenge (ChallengeManager.rule)."""
    from agents.arbiter.service import ArbiterError

    try:
        tx = _arbiter(ctx).rule(challenge_id, leaked)
    except (ArbiterError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"challenge {challenge_id} {'upheld' if leaked else 'rejected'} ({tx})")
