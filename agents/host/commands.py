"""`oml host ...`: serve a copy, show status, report usage.

Other modules add sub-commands by importing :data:`group` and decorating
(``@group.command("request-access")``); :func:`host_settings` gives them the same settings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from agents.host.errors import HostError
from agents.host.settings import HostSettings, load_settings


@click.group("host")
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="OML_HOST_CONFIG",
    help="TOML file with host settings ([host] table); env OML_HOST_* overrides it.",
)
@click.option("--copy-id", type=int, help="The licensed copy to act for (OML_HOST_COPY_ID).")
@click.option("--account", help="dev:N (local chain) or a keystore path (OML_HOST_ACCOUNT).")
@click.option("--network", help="deployments/<network>.json (OML_HOST_NETWORK; default local).")
@click.option("--offline", is_flag=True, help="Do not talk to the chain (serve/inspect only).")
@click.pass_context
def group(
    ctx: click.Context,
    config: Path | None,
    copy_id: int | None,
    account: str | None,
    network: str | None,
    offline: bool,
) -> None:
    """Run a host node: serve a licensed copy, sign a receipt per call, report and pay usage.

    \b
    Typical session:
      oml host request-access 3 --endpoint https://me.example --collateral 10000000 --wait
      oml host fetch-copy 1 --out ./copy-1                 # download + decrypt with the host key
      oml host serve --copy-id 1 --model-dir ./copy-1      # OpenAI API on :18800
      oml host status                                      # copies, stake, epochs, fees
      oml host report --from-log vllm-usage.jsonl          # usage served by another engine
    """
    overrides: dict[str, Any] = {"copy_id": copy_id, "account": account, "network": network}
    if offline:
        overrides["chain"] = False
    ctx.obj = {"config": config, "overrides": overrides}


def host_settings(ctx: click.Context, **overrides: Any) -> HostSettings:
    """Settings for this invocation: config file < env < group options < command options."""
    obj = ctx.find_root().obj if ctx.obj is None else ctx.obj
    merged = {**(obj or {}).get("overrides", {}), **overrides}
    try:
        return load_settings((obj or {}).get("config"), **merged)
    except HostError as error:
        raise click.ClickException(str(error)) from error


@group.command()
@click.option(
    "--model-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Decrypted copy (Hugging Face folder).",
)
@click.option("--port", type=int, help="HTTP port (default 18800).")
@click.option("--listen", "listen_host", help="Bind address (default 127.0.0.1).")
@click.option("--model-name", help="Name clients pass as `model` (default oml-copy-<id>).")
@click.option("--device", help="auto, cpu, cuda, cuda:1 ...")
@click.pass_context
def serve(ctx: click.Context, /, **options: Any) -> None:
    """Serve the copy with an OpenAI-compatible API; report usage every epoch.

    Every completed call returns an EIP-712 receipt signed by the host key (header
    X-OML-Receipt and a `receipt` field). SIGINT/SIGTERM finish in-flight requests,
    flush the receipt ledger and stop the reporter.
    """
    from agents.host.service import serve as run_server

    try:
        run_server(host_settings(ctx, **options))
    except HostError as error:
        raise click.ClickException(str(error)) from error


@group.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Copies, stake, receipts issued, epochs reported, fees paid, pending challenges."""
    from agents.host import status as host_status
    from agents.host.service import build_context

    try:
        report = host_status.collect(build_context(host_settings(ctx)))
    except HostError as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(report, indent=2) if as_json else host_status.render(report))


@group.command()
@click.option(
    "--from-log",
    "log_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON-lines usage log of another engine (vLLM, TGI) to book before reporting.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report(ctx: click.Context, log_file: Path | None, as_json: bool) -> None:
    """Report (and pay for) every closed, unreported epoch now; exits non-zero on failure.

    The serving process does this on a schedule; run it by hand to catch up, or with
    --from-log when another engine served the calls. Safe to repeat: an epoch is never
    reported twice and a log line is never booked twice.
    """
    from agents.host.reporter import UsageReporter
    from agents.host.service import build_context
    from agents.host.usage_log import import_log

    settings = host_settings(ctx)
    try:
        context = build_context(settings)
        if context.chain is None:
            raise click.ClickException("reporting needs the chain; drop --offline")
        ledger = context.open_ledger()
        try:
            out: dict[str, Any] = {"copyId": settings.copy_id}
            if log_file is not None:
                booked = import_log(log_file, ledger)
                out["imported"] = booked.__dict__
            reporter = UsageReporter(
                ledger,
                context.chain,
                context.clock,
                grace_s=settings.report_grace_s,
                warn_epochs=settings.warn_epochs,
            )
            result = reporter.run_once()
            out.update(result.__dict__, lastSeq=ledger.last_seq)
        finally:
            ledger.close()
    except HostError as error:
        raise click.ClickException(str(error)) from error
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        if "imported" in out:
            click.echo(
                f"booked {out['imported']['booked']} call(s) from {log_file} "
                f"({out['imported']['duplicates']} already booked)"
            )
        click.echo(f"reported epochs {result.reported or 'none'}; fees paid {result.fees_paid}")
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
    if result.error:
        raise click.ClickException(result.error)


# ---------------------------------------------------------------------------- licences


def _host_access(ctx: click.Context) -> Any:
    """:class:`agents.host.access.HostAccess` for this invocation's account and network."""
    from agents.host.access import HostAccess
    from agents.host.chain import open_protocol

    settings = host_settings(ctx)
    if not settings.chain:
        raise click.ClickException("this command needs the chain; drop --offline")
    try:
        return HostAccess(open_protocol(settings.network, settings.account))
    except HostError as error:
        raise click.ClickException(str(error)) from error


def _licence_errors() -> tuple[type[Exception], ...]:
    from agents.chain.errors import ChainError
    from agents.storage.errors import StorageError

    return (HostError, ChainError, StorageError)


def _emit(as_json: bool, payload: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(payload, indent=2) if as_json else text)


@group.command("request-access")
@click.argument("model_id", type=click.IntRange(min=1))
@click.option(
    "--version",
    "version",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Model version to license.",
)
@click.option("--endpoint", required=True, help="Public URL your server will answer on.")
@click.option(
    "--collateral",
    type=click.IntRange(min=1),
    required=True,
    help="Stake in fee-token base units (MockUSD: 6 decimals), ≥ the minimum.",
)
@click.option("--wait", is_flag=True, help="Wait until the oracle delivers the copy.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    help="Seconds --wait waits for the delivery.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def request_access(
    ctx: click.Context,
    model_id: int,
    version: int,
    endpoint: str,
    collateral: int,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    """Stake COLLATERAL and request a fingerprinted copy of MODEL_ID; print the copy id.

    Approves the fee token for the AccessManager, calls requestAccess with this account's
    public key (the oracle encrypts the copy to it), and with --wait polls for CopyDelivered.
    """
    access = _host_access(ctx)
    try:
        request = access.request_access(model_id, version, endpoint, collateral)
        out: dict[str, Any] = {**request.__dict__, "host": access.address, "delivered": False}
        lines = [
            f"copy {request.copy_id} requested: model {model_id} v{version}, collateral "
            f"{collateral}, endpoint {endpoint} (tx {request.tx_hash})"
        ]
        if wait:
            delivery = access.wait_for_delivery(request.copy_id, timeout_s=timeout)
            out.update(delivered=True, copyCID=delivery.copy_cid, fpCount=delivery.fp_count)
            lines.append(
                f"delivered: {delivery.copy_cid}; next: oml host fetch-copy {request.copy_id} "
                f"--out ./copy-{request.copy_id}"
            )
        else:
            lines.append(f"next: oml host fetch-copy {request.copy_id} --out DIR once delivered")
    except _licence_errors() as error:
        raise click.ClickException(str(error)) from error
    _emit(as_json, out, "\n".join(lines))


@group.command("fetch-copy")
@click.argument("copy_id", type=click.IntRange(min=1))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder to create (must not exist) for the decrypted copy.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def fetch_copy(ctx: click.Context, copy_id: int, out: Path, as_json: bool) -> None:
    """Download the delivered COPY_ID from IPFS and decrypt it with the host key into --out.

    The CID comes from the CopyDelivered event; every file is checked against its CID and the
    manifest's sha256 before the folder appears.
    """
    import sys

    access = _host_access(ctx)
    try:
        fetched = access.fetch_copy(copy_id, out, progress=not as_json and sys.stderr.isatty())
    except _licence_errors() as error:
        raise click.ClickException(str(error)) from error
    _emit(
        as_json,
        fetched.__dict__,
        f"copy {copy_id} ({fetched.files} files, {fetched.size} bytes) decrypted into {out}\n"
        f"next: oml host serve --copy-id {copy_id} --model-dir {out}",
    )


@group.command("request-exit")
@click.argument("copy_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def request_exit(ctx: click.Context, copy_id: int, as_json: bool) -> None:
    """Stop licensing COPY_ID; the collateral can be withdrawn after the exit delay.

    Keep reporting: epochs up to the one of the exit request must still be reported.
    """
    access = _host_access(ctx)
    try:
        status = access.request_exit(copy_id)
    except _licence_errors() as error:
        raise click.ClickException(str(error)) from error
    _emit(
        as_json,
        status.__dict__,
        f"copy {copy_id} is exiting; withdraw from {status.withdrawable_at} (unix time): "
        f"oml host withdraw {copy_id}",
    )


@group.command("withdraw")
@click.argument("copy_id", type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def withdraw(ctx: click.Context, copy_id: int, as_json: bool) -> None:
    """Take COPY_ID's remaining collateral back (exit delay over, no open challenge)."""
    access = _host_access(ctx)
    try:
        status = access.withdraw(copy_id)
    except _licence_errors() as error:
        raise click.ClickException(str(error)) from error
    _emit(as_json, status.__dict__, f"copy {copy_id} withdrawn: {status.amount} returned")


from agents.host import challenges as _challenges  # noqa: E402, F401  (dispute, challenges)
