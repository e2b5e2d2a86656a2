"""`oml prover ...`: register, fetch keys, watch endpoints, run the jobs, follow challenges."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from agents.prover.errors import ProverError


@click.group("prover")
@click.option("--network", help="deployments/<network>.json (OML_PROVER_NETWORK).")
@click.option("--account", help="dev:N (local chain) or a keystore path (OML_PROVER_ACCOUNT).")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the prover keeps its state DB (OML_PROVER_STATE_DIR).",
)
@click.option("--key-service", help="Oracle key service URL (OML_PROVER_KEY_SERVICE_URL).")
@click.pass_context
def group(
    ctx: click.Context,
    network: str | None,
    account: str | None,
    state_dir: Path | None,
    key_service: str | None,
) -> None:
    """Police deployments: probe hosts with fingerprint keys, challenge fraud and leaks.

    \b
    Typical session:
      oml prover register --bond 100          # stake the prover bond (mUSD)
      oml prover watch http://suspect:8000    # add an endpoint suspected of serving a leak
      oml prover run                          # probe, audit, challenge, on a schedule
      oml prover challenges                   # where every challenge stands
      oml prover earnings --harvest --claim   # rewards, pool fees, bonds; pay out

    Settings come from OML_PROVER_* variables (see agents/prover/settings.py); the decision
    rule for leaks accuses only below OML_PROVER_FALSE_POSITIVE_BOUND (default 1e-9).
    """
    overrides = {
        "network": network,
        "account": account,
        "state_dir": state_dir,
        "key_service_url": key_service,
    }
    ctx.obj = {k: v for k, v in overrides.items() if v is not None}


def _settings(ctx: click.Context) -> Any:
    from agents.prover.settings import ProverSettings

    try:
        return ProverSettings(**(ctx.obj or {}))
    except ValueError as error:
        raise click.ClickException(f"invalid prover settings: {error}") from error


def _prover(ctx: click.Context) -> Any:
    from agents.prover.service import Prover

    try:
        return Prover.build(_settings(ctx))
    except (ProverError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error


def _echo(data: Any, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else text)


@group.command()
@click.option("--bond", required=True, help="Most you agree to lock, in tokens (e.g. 100).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def register(ctx: click.Context, bond: str, as_json: bool) -> None:
    """Stake the prover bond (ChallengeManager.registerProver) and join the prover pool.

    The contract fixes the bond (a protocol parameter); --bond is your ceiling: registration
    is refused if the protocol asks for more.
    """
    from agents.prover.earnings import format_amount, parse_amount

    prover = _prover(ctx)
    chain = prover.chain
    try:
        decimals = chain.token_decimals()
        ceiling = parse_amount(bond, decimals)
        required = chain.params().prover_bond
        if chain.is_prover():
            raise click.ClickException(f"{chain.address} is already a prover")
        if required > ceiling:
            raise click.ClickException(
                f"the protocol bond is {format_amount(required, decimals)}, above --bond {bond}"
            )
        if chain.token_balance() < required:
            raise click.ClickException(
                f"{chain.address} holds {format_amount(chain.token_balance(), decimals)} but the "
                f"bond is {format_amount(required, decimals)}: fund the account first"
            )
        chain.register()
    except (ProverError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    _echo(
        {"prover": chain.address, "bond": required},
        as_json,
        f"registered {chain.address} as a prover; bond {format_amount(required, decimals)} locked",
    )


@group.command()
@click.pass_context
def unregister(ctx: click.Context) -> None:
    """Leave the prover set and get the bond back (no open leak challenge may remain)."""
    prover = _prover(ctx)
    try:
        prover.chain.unregister()
    except (ProverError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{prover.chain.address} unregistered; bond credited (oml prover earnings --claim)")


@group.command()
@click.option("--copy", "copy_ids", type=int, multiple=True, help="Only these copies.")
@click.option("--count", type=int, help="Fresh keys to hold per copy (default keys_per_copy).")
@click.pass_context
def keys(ctx: click.Context, copy_ids: tuple[int, ...], count: int | None) -> None:
    """Fetch fingerprint keys from the key service now (stored encrypted); show key counts."""
    prover = _prover(ctx)
    try:
        prover.require_registered()
        prover.sync()
        live = prover.live_copies()
        if copy_ids:
            live = [c for c in live if c.copy_id in copy_ids]
        added = prover.refresh_keys(live, target=count)
    except (ProverError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{added} new key(s); held by status: {prover.state.key_counts()}")


@group.command()
@click.argument("url")
@click.option("--model", "model_id", type=int, help="Only test copies of this model.")
@click.option("--model-name", help="Model name the endpoint expects (default: /v1/models).")
@click.option("--now", "probe_now", is_flag=True, help="Probe it once right away.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def watch(
    ctx: click.Context,
    url: str,
    model_id: int | None,
    model_name: str | None,
    probe_now: bool,
    as_json: bool,
) -> None:
    """Add an OpenAI-compatible endpoint to the watch list (probed for leaked copies)."""
    from agents.prover.probing import base_url

    prover = _prover(ctx)
    try:
        base_url(url)
        prover.state.add_watch(url, model_id, model_name)
        found: list[dict[str, Any]] = []
        if probe_now:
            prover.sync()
            found = prover.probe_endpoint(url, model_id=model_id, model_name=model_name)
    except (ProverError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    lines = [f"watching {url}" + (f" for copies of model {model_id}" if model_id else "")]
    for d in found:
        lines.append(
            f"  copy {d['copyId']}: {d['matched']}/{d['queried']} keys, false-positive "
            f"p={d['falsePositiveProbability']:.2e} -> "
            f"{'ACCUSED' if d['accused'] else 'not accused'}"
        )
    _echo({"url": url, "detections": found}, as_json, "\n".join(lines))


@group.command()
@click.argument("url")
@click.pass_context
def unwatch(ctx: click.Context, url: str) -> None:
    """Stop probing an endpoint."""
    prover = _prover(ctx)
    if not prover.state.remove_watch(url):
        raise click.ClickException(f"{url} is not on the watch list")
    click.echo(f"stopped watching {url}")


@group.command()
@click.option("--once", is_flag=True, help="Run every job once, then exit.")
@click.option("--json", "as_json", is_flag=True, help="With --once: the pass as JSON.")
@click.pass_context
def run(ctx: click.Context, once: bool, as_json: bool) -> None:
    """Run the prover: sync, keys, host probes + audit, watch list, challenges (APScheduler)."""
    prover = _prover(ctx)
    try:
        prover.require_registered()
    except ProverError as error:
        raise click.ClickException(str(error)) from error
    if once:
        report = prover.step()
        _echo(
            report.__dict__,
            as_json,
            f"probes {report.host_probes} host / {report.watch_probes} watch, receipts "
            f"{report.receipts}, detections {len(report.detections)}, challenges submitted "
            f"{len(report.submitted)}, transitions {len(report.transitions)}, "
            f"errors {len(report.errors)}",
        )
        return
    scheduler = prover.start()
    click.echo(f"prover {prover.chain.address} running; Ctrl-C stops it")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        scheduler.shutdown(wait=True)


@group.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def challenges(ctx: click.Context, as_json: bool) -> None:
    """Every challenge this prover raised, with its state, deadline and payout."""
    prover = _prover(ctx)
    rows = [c.as_dict() for c in prover.state.challenges()]
    lines = []
    for c in rows:
        where = (
            f"epoch {c['epoch']}"
            if "epoch" in c
            else (f"seq {c['seq']}" if "seq" in c else f"key {c.get('key_index')}")
        )
        lines.append(
            f"#{c['id']:<3} {c['kind']:<13} copy {c['copy_id']:<4} {where:<10} "
            f"{c['state']:<10} on-chain {c.get('onchain_id', '-')} deadline "
            f"{c.get('deadline', '-')} reward {c.get('reward', '-')}"
        )
    _echo(rows, as_json, "\n".join(lines) or "no challenges yet")


@group.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Registration, copies known, keys held, receipts audited, watch list, findings."""
    prover = _prover(ctx)
    prover.sync()
    data = {
        "prover": prover.chain.address,
        "registered": prover.chain.is_prover(),
        "copies": len(prover.state.copies()),
        "keys": prover.state.key_counts(),
        "receipts": prover.state.receipt_counts(),
        "watch": prover.state.watch_list(),
        "detections": prover.state.detections()[-10:],
        "anomalies": prover.state.anomalies()[-10:],
        "challenges": [c.as_dict() for c in prover.state.challenges()],
    }
    text = (
        f"prover {data['prover']} ({'registered' if data['registered'] else 'NOT registered'})\n"
        f"  copies known {data['copies']}; keys {data['keys']}; receipts {data['receipts']}\n"
        f"  watching {len(data['watch'])} endpoint(s); {len(data['challenges'])} challenge(s); "
        f"{len(prover.state.anomalies())} anomaly(ies)"
    )
    _echo(data, as_json, text)


@group.command()
@click.option("--harvest", is_flag=True, help="Move prover-pool fees into the claimable balance.")
@click.option("--claim", is_flag=True, help="Pay the claimable balance out to the wallet.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def earnings(ctx: click.Context, harvest: bool, claim: bool, as_json: bool) -> None:
    """Rewards from slashes, bonds locked, prover-pool fees, claimable balance."""
    from agents.prover import earnings as money

    prover = _prover(ctx)
    try:
        if harvest:
            prover.chain.harvest_prover()
        if claim:
            prover.chain.claim_all()
        report = money.collect(prover.chain)
    except (ProverError, RuntimeError) as error:
        raise click.ClickException(str(error)) from error
    _echo(report, as_json, money.render(report))
