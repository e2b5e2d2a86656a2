"""`oml oracle ...`: run the fingerprinting oracle and inspect its jobs."""

from __future__ import annotations

import json
import threading

import click

from agents.oracle.settings import OracleSettings


@click.group("oracle")
def group() -> None:
    """Fingerprint and deliver licensed copies; serve fingerprint keys to staked provers.

    Settings come from OML_ORACLE_* variables (see agents/oracle/settings.py).
    """


@group.command("init-secret")
def init_secret() -> None:
    """Create the oracle's 32-byte master secret (never overwrites an existing one)."""
    from agents.oracle.secrets import MasterSecret, MasterSecretError

    settings = OracleSettings()
    try:
        MasterSecret.create(settings.master_secret)
    except MasterSecretError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"master secret written to {settings.master_secret} (mode 600)")


@group.command("run")
@click.option("--once", is_flag=True, help="Process what is pending, then exit.")
@click.option("--fingerprints", type=int, default=None, help="Fingerprints per copy.")
@click.option("--serve-keys/--no-serve-keys", default=True, help="Run the prover key service.")
def run(once: bool, fingerprints: int | None, serve_keys: bool) -> None:
    """Watch AccessRequested events and deliver fingerprinted, encrypted copies."""
    from agents.oracle.runner import build_oracle

    settings = OracleSettings()
    if fingerprints is not None:
        settings = settings.model_copy(update={"fingerprint_count": fingerprints})
    try:
        oracle = build_oracle(settings)
    except ValueError as bad:
        raise click.UsageError(str(bad)) from bad
    if once:
        click.echo(f"delivered {oracle.step()} copies")
        return
    if serve_keys:
        import uvicorn

        from agents.oracle.keyservice import create_app

        config = uvicorn.Config(create_app(oracle.service), host="127.0.0.1",
                                port=settings.key_service_port, log_level="warning")  # fmt: skip
        server = uvicorn.Server(config)
        threading.Thread(target=server.run, daemon=True).start()
        click.echo(f"key service on http://127.0.0.1:{settings.key_service_port}")
    stop = threading.Event()
    try:
        oracle.run(stop, settings.poll_interval_s)
    except KeyboardInterrupt:
        stop.set()


@group.command("jobs")
@click.option("--json", "as_json", is_flag=True)
def jobs(as_json: bool) -> None:
    """List copy jobs with their state, last error and step timings."""
    from agents.oracle.jobs import JobStore

    store = JobStore.open(OracleSettings().state_dir / "oracle.db")
    rows = [
        {"copy_id": j.copy_id, "state": j.state.value, "attempts": j.attempts,
         "error": j.last_error, "retry_at": j.next_attempt_at, "timings": j.timings}
        for j in store.all()
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        click.echo(f"copy {row['copy_id']:>4}  {row['state']:<13} attempts {row['attempts']}  "
                   f"{row['error'] or ''}")  # fmt: skip


@group.command("retry")
@click.argument("copy_id", type=int)
def retry(copy_id: int) -> None:
    """Run a failed or backing-off job again now."""
    from agents.oracle.jobs import JobStore

    store = JobStore.open(OracleSettings().state_dir / "oracle.db")
    if not store.retry_now(copy_id):
        raise click.ClickException(f"no job for copy {copy_id}")
    click.echo(f"copy {copy_id} will be retried on the next round")
