"""`oml creator ...`: register models and derivatives, publish versions, change terms.

Amounts are fee-token base units (MockUSD has 6 decimals: 1000000 = 1 mUSD). ``--json``
prints one JSON object on stdout for scripts; logs go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from agents.creator.errors import CreatorError, hint_for
from agents.creator.settings import CreatorSettings

F = TypeVar("F", bound=Callable[..., Any])
BPS = click.IntRange(1, 10_000)


class TokenAmount(click.ParamType):
    """A whole number of fee-token base units that fits the contracts' uint128."""

    name = "units"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            amount = value
        else:
            try:
                amount = int(str(value).replace("_", ""))
            except ValueError:
                self.fail(f"{value!r} is not a whole number of base units", param, ctx)
        if not 0 <= amount < 2**128:
            self.fail(f"{value} must be within 0..2^128-1 base units", param, ctx)
        return amount


AMOUNT = TokenAmount()


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")(func)


def _source_options(func: F) -> F:
    """--folder DIR | --manifest-cid CID, and the oracle key a folder is encrypted to."""
    func = click.option(
        "--oracle-pubkey",
        default=None,
        help="Oracle public key (128 hex) to encrypt --folder to; known on the local chain.",
    )(func)
    func = click.option(
        "--manifest-cid",
        default=None,
        help="Manifest of a folder already published for the oracle.",
    )(func)
    return click.option(
        "--folder",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        default=None,
        help="Hugging Face folder to publish to IPFS, encrypted to the oracle.",
    )(func)


def _emit(as_json: bool, payload: Any, text: str) -> None:
    data = asdict(payload) if is_dataclass(payload) and not isinstance(payload, type) else payload
    click.echo(json.dumps(data, indent=2) if as_json else text)


@contextmanager
def _errors() -> Iterator[None]:
    """Every expected failure becomes one line that says what to do."""
    from agents.chain.errors import ChainError, TransactionFailed
    from agents.storage.errors import StorageError

    try:
        yield
    except TransactionFailed as error:
        hint = hint_for(error.error_name)
        raise click.ClickException(f"{error}" + (f": {hint}" if hint else "")) from error
    except (CreatorError, ChainError, StorageError) as error:
        raise click.ClickException(str(error)) from error


def _settings(ctx: click.Context) -> CreatorSettings:
    """Group options over ``OML_CREATOR_*`` over defaults."""
    overrides = {k: v for k, v in (ctx.obj or {}).items() if v is not None}
    try:
        return CreatorSettings(**overrides)
    except ValueError as error:
        raise click.ClickException(f"invalid creator settings: {error}") from error


def _creator(ctx: click.Context, *, read_only: bool = False) -> Any:
    from agents.creator.connection import connect
    from agents.creator.models import Creator

    with _errors():
        return Creator(connect(_settings(ctx), read_only=read_only))


def _source_cid(
    ctx: click.Context, creator: Any, folder: Path | None, manifest_cid: str | None,
    oracle_pubkey: str | None, as_json: bool,
) -> str:  # fmt: skip
    """The manifest CID to register: given, or made by publishing ``folder`` for the oracle."""
    if (folder is None) == (manifest_cid is None):
        raise click.UsageError("pass exactly one of --folder DIR and --manifest-cid CID")
    if manifest_cid is not None:
        return manifest_cid
    from agents.creator.publishing import oracle_public_key, publish_base

    assert folder is not None
    with _errors():
        key = oracle_public_key(
            creator.protocol.deployment, oracle_pubkey or _settings(ctx).oracle_pubkey
        )
        ref = publish_base(folder, key, progress=not as_json and sys.stderr.isatty())
    if not as_json:
        click.echo(f"published {folder} for the oracle: {ref.cid}", err=True)
    return str(ref.cid)


@click.group("creator")
@click.option("--network", help="deployments/<network>.json (OML_CREATOR_NETWORK; default local).")
@click.option(
    "--keystore",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Creator's encrypted JSON keystore (OML_CREATOR_KEYSTORE).",
)
@click.option(
    "--dev-account",
    type=click.IntRange(0, 9),
    help="Anvil test account N instead of a keystore (local chain only).",
)
@click.option("--password-env", help="Env variable with the keystore password.")
@click.pass_context
def group(
    ctx: click.Context,
    network: str | None,
    keystore: Path | None,
    dev_account: int | None,
    password_env: str | None,
) -> None:
    """Register models and derivatives, publish versions, change price and collateral.

    \b
      oml creator --dev-account 4 register --folder ./base --price 1000 --min-collateral 10000000
      oml creator --dev-account 5 register --folder ./tuned --parent 1 --share 2000 \\
          --price 1500 --min-collateral 10000000
      oml creator --dev-account 4 publish 1 --folder ./base-v2
      oml creator --dev-account 4 set-price 1 --price 2000
      oml creator show 2 --json
    """
    ctx.obj = {"network": network, "keystore": keystore, "dev_account": dev_account,
               "password_env": password_env}  # fmt: skip


@group.command()
@_source_options
@click.option(
    "--parent",
    "parents",
    type=click.IntRange(min=1),
    multiple=True,
    help="Parent model id (repeat, ≤ 4); pair each with a --share.",
)
@click.option(
    "--share",
    "shares",
    type=BPS,
    multiple=True,
    help="Share (bps) of this model's lineage revenue paid up to the parent, in order.",
)
@click.option(
    "--max-royalty-stack",
    type=click.IntRange(0, 10_000),
    default=None,
    help="Refuse a royalty stack above this (bps); default: the sum of --share.",
)
@click.option("--price", type=AMOUNT, required=True, help="Price per call (base units).")
@click.option(
    "--min-collateral", type=AMOUNT, required=True, help="Minimum host collateral (base units)."
)
@click.option(
    "--publish/--no-publish",
    default=True,
    show_default=True,
    help="Also publish the manifest as version 0, so hosts can license it.",
)
@_json_option
@click.pass_context
def register(
    ctx: click.Context,
    folder: Path | None,
    manifest_cid: str | None,
    oracle_pubkey: str | None,
    parents: tuple[int, ...],
    shares: tuple[int, ...],
    max_royalty_stack: int | None,
    price: int,
    min_collateral: int,
    publish: bool,
    as_json: bool,
) -> None:
    """Register a root model, or a derivative of --parent models; print its id.

    The royalty table is fixed here for good: each parent gets --share bps of this model's
    lineage revenue (and passes part of it up its own tree).
    """
    from agents.creator.models import Parent

    if len(parents) != len(shares):
        raise click.UsageError(
            f"{len(parents)} --parent but {len(shares)} --share: give one share per parent"
        )
    creator = _creator(ctx)
    cid = _source_cid(ctx, creator, folder, manifest_cid, oracle_pubkey, as_json)
    with _errors():
        done = creator.register(
            cid,
            price_per_call=price,
            min_collateral=min_collateral,
            parents=[Parent(p, s) for p, s in zip(parents, shares, strict=True)],
            max_royalty_stack=max_royalty_stack,
            publish_weights_cid=cid if publish else None,
        )
    table = ", ".join(f"{e['modelId']}: {e['weightPpb'] / 1e7:g}%" for e in done.lineage)
    text = [f"model {done.model_id} registered by {done.owner} (tx {done.tx_hash})",
            f"royalty table: {table}"]  # fmt: skip
    if done.version is not None:
        text.append(f"version {done.version.version} published: {cid}")
    else:
        text.append(f"next: oml creator publish {done.model_id} --manifest-cid {cid}")
    _emit(as_json, done, "\n".join(text))


@group.command()
@click.argument("model_id", type=click.IntRange(min=1))
@_source_options
@click.option(
    "--accept/--no-accept",
    default=True,
    show_default=True,
    help="Propose and vote to accept the version (passes at once with > 50% shares).",
)
@_json_option
@click.pass_context
def publish(
    ctx: click.Context,
    model_id: int,
    folder: Path | None,
    manifest_cid: str | None,
    oracle_pubkey: str | None,
    accept: bool,
    as_json: bool,
) -> None:
    """Publish a new version of MODEL_ID (owner only); versions are never overwritten."""
    creator = _creator(ctx)
    cid = _source_cid(ctx, creator, folder, manifest_cid, oracle_pubkey, as_json)
    with _errors():
        done = creator.publish(model_id, weights_cid=cid, manifest_cid=cid, accept=accept)
    text = f"model {model_id} version {done.version} published: {cid}; " + (
        "accepted for licensing" if done.accepted else _pending(done.proposal)
    )
    _emit(as_json, done, text)


@group.command("set-price")
@click.argument("model_id", type=click.IntRange(min=1))
@click.option("--price", type=AMOUNT, default=None, help="New price per call (base units).")
@click.option(
    "--min-collateral", type=AMOUNT, default=None, help="New minimum host collateral (base units)."
)
@_json_option
@click.pass_context
def set_price(
    ctx: click.Context, model_id: int, price: int | None, min_collateral: int | None, as_json: bool
) -> None:
    """Change MODEL_ID's price and/or minimum collateral through its governance.

    Proposes and votes with this account's shares; a majority holder's proposal executes at
    once, otherwise it waits for other holders' votes (then `oml creator execute ID`).
    """
    creator = _creator(ctx)
    with _errors():
        outcomes = creator.set_terms(model_id, price_per_call=price, min_collateral=min_collateral)
    lines = [
        f"{o.action} {o.value}: proposal {o.proposal_id} "
        + ("executed" if o.executed else _pending(o))
        for o in outcomes
    ]
    _emit(
        as_json, {"modelId": model_id, "proposals": [asdict(o) for o in outcomes]}, "\n".join(lines)
    )


@group.command()
@click.argument("proposal_id", type=click.IntRange(min=1))
@_json_option
@click.pass_context
def execute(ctx: click.Context, proposal_id: int, as_json: bool) -> None:
    """Execute a succeeded proposal (after its vote ended with quorum)."""
    creator = _creator(ctx)
    with _errors():
        outcome = creator.governance.execute(proposal_id)
    _emit(as_json, outcome, f"proposal {proposal_id} executed: {outcome.action} {outcome.value}")


@group.command()
@click.argument("model_id", type=click.IntRange(min=1))
@_json_option
@click.pass_context
def show(ctx: click.Context, model_id: int, as_json: bool) -> None:
    """Owner, terms, parents, royalty table and versions of MODEL_ID."""
    creator = _creator(ctx, read_only=True)
    with _errors():
        view = creator.show(model_id)
    lines = [
        f"model {view.model_id} owned by {view.owner}",
        f"price {view.price_per_call}, min collateral {view.min_collateral}, licensing "
        f"{'open' if view.licensing_open else 'paused'}",
        f"parents {view.parents or 'none (root)'}, depth {view.depth}, royalty stack "
        f"{view.royalty_stack_bps} bps",
        "royalty table: "
        + ", ".join(f"{e['modelId']}: {e['weightPpb']} ppb" for e in view.lineage),
    ]
    for v in view.versions:
        state = "accepted" if v["accepted"] else "not accepted"
        lines.append(f"  v{v['version']} {v['weightsCID']} ({state})")
    _emit(as_json, view, "\n".join(lines))


def _pending(outcome: Any) -> str:
    if outcome is None:
        return "not accepted yet (--no-accept): its share holders must accept it"
    return (
        f"{outcome.state}: {outcome.for_votes} shares voted for so far; other holders vote "
        f"until {outcome.vote_end}, then `oml creator execute {outcome.proposal_id}`"
    )
