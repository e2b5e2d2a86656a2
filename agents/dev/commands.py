"""`oml dev ...`: fork mode, time travel, impersonation, funding, snapshots, state, scenarios.

Every command talks to the chain at ``--rpc`` (default ``$OML_RPC_URL``, else the local world)
and refuses anything but Anvil. Commands that need the protocol read
``deployments/<network>.json`` (``--network`` / ``$OML_NETWORK``; by default the fork alias
while ``oml dev up --fork`` runs, else ``local``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click
from web3.logs import DISCARD

from agents.chain.errors import ChainError
from agents.config import get_settings
from agents.dev.args import coerce_args, find_function, parse_amount, parse_duration
from agents.dev.devchain import DevChain
from agents.dev.errors import DevError
from agents.dev.network import active_network
from agents.dev.node import AnvilNode

F = TypeVar("F", bound=Callable[..., Any])

# web3 warns for every log of another contract in a receipt it decodes; that is noise here.
warnings.filterwarnings("ignore", message="The log with transaction hash")


def rpc_option(function: F) -> F:
    return click.option(
        "--rpc",
        "rpc",
        envvar="OML_RPC_URL",
        default=None,
        help="Anvil JSON-RPC URL (default $OML_RPC_URL, else the local world).",
    )(function)


def chain_options(function: F) -> F:
    function = click.option(
        "--network",
        default=None,
        help="deployments/<network>.json (default $OML_NETWORK, else the running fork, else "
        "local).",
    )(function)
    return rpc_option(function)


def _node(rpc: str | None) -> AnvilNode:
    try:
        return AnvilNode.at(rpc or get_settings().rpc_url)
    except DevError as error:
        raise click.ClickException(str(error)) from error


def _dev(rpc: str | None, network: str | None) -> DevChain:
    try:
        return DevChain.connect(rpc, network)
    except (DevError, ChainError) as error:
        raise click.ClickException(str(error)) from error


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


class DevGroup(click.Group):
    """Turns the dev tools' own errors into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (DevError, ChainError) as error:
            raise click.ClickException(str(error)) from error


@click.group("dev", cls=DevGroup)
def group() -> None:
    """Testers' tools for a local or forked Anvil: time, blocks, accounts, state, scenarios.

    \b
    Typical session:
      oml dev up --fork https://rpc.example --block 1234   # the world forks a network
      oml dev state copy 3                                  # what the protocol says
      oml dev time to-epoch-end 3                           # let copy 3 report its epoch
      oml dev scenario run under-reporting-host             # replay a named story
    """


# ---------------------------------------------------------------------- fork mode


@group.command("up")
@click.option("--fork", "fork_url", default=None, help="RPC URL of the network to fork.")
@click.option("--block", type=int, default=None, help="Block to fork at (default: latest).")
@click.option(
    "--origin-network",
    default=None,
    help="deployments/<name>.json of the forked network (default: found by chain id "
    "and contract code).",
)
@click.option(
    "--name",
    default="fork",
    show_default=True,
    help="Name of the fork's deployment record (deployments/<name>.json).",
)
@click.option("--restart", is_flag=True, help="Replace a running Anvil that forks something else.")
@click.option("--timeout", default=90.0, show_default=True, help="Seconds to wait for readiness.")
def up_command(
    fork_url: str | None,
    block: int | None,
    origin_network: str | None,
    name: str,
    restart: bool,
    timeout: float,
) -> None:
    """Start the local world; with --fork, its Anvil forks RPC and the origin's deployment
    is aliased as deployments/<name>.json.

    The fork keeps the local chain id (31337), so dev keys and receipts work as on the plain
    local chain. While it runs, `oml dev` commands use the alias by default; point other
    agents at it with OML_NETWORK / OML_HOST_NETWORK / OML_ORACLE_NETWORK=<name>.
    """
    from agents.dev.fork import fork_up
    from agents.world import WorldError, up

    settings = get_settings()
    if fork_url is None:
        if block is not None or origin_network is not None:
            raise click.UsageError("--block and --origin-network need --fork")
        try:
            up(settings, timeout_s=timeout)
        except WorldError as error:
            raise click.ClickException(str(error)) from error
        click.echo(f"local world up: {settings.rpc_url}")
        return
    result = fork_up(
        settings,
        fork_url,
        block,
        origin_network=origin_network,
        name=name,
        restart=restart,
        timeout_s=timeout,
    )
    click.echo(
        f"anvil {result.rpc_url} forks block {result.fork_block} (chain id {result.chain_id})"
    )
    click.echo(
        f"deployment {result.deployment.name}: the contracts of "
        f"deployments/{result.origin_network}.json"
    )
    click.echo(
        f"other agents: export OML_NETWORK={result.network} "
        f"OML_HOST_NETWORK={result.network} OML_ORACLE_NETWORK={result.network}"
    )


# ---------------------------------------------------------------------- blocks and time


@group.command("mine")
@click.argument("blocks", type=int, default=1)
@rpc_option
def mine_command(blocks: int, rpc: str | None) -> None:
    """Mine BLOCKS empty blocks (default 1)."""
    node = _node(rpc)
    head = node.mine(blocks)
    click.echo(f"block {head} at {node.timestamp()}")


@group.group("time")
def time_group() -> None:
    """Move the chain's clock forward (a block is mined at the new time)."""


@time_group.command("now")
@chain_options
def time_now(rpc: str | None, network: str | None) -> None:
    """Show the block time, the current epoch and when it closes."""
    dev = _dev(rpc, network)
    epoch = dev.current_epoch()
    now = dev.node.timestamp()
    click.echo(
        f"block {dev.node.block_number()} at {now}; epoch {epoch} closes at "
        f"{dev.epoch_end(epoch)} (in {dev.epoch_end(epoch) - now}s)"
    )


@time_group.command("advance")
@click.argument("duration")
@rpc_option
def time_advance(duration: str, rpc: str | None) -> None:
    """Move time forward by DURATION (90, 90s, 15m, 2h, 1d, 1w) and mine a block."""
    node = _node(rpc)
    before = node.timestamp()
    after = node.advance(parse_duration(duration))
    click.echo(f"time {before} -> {after} (+{after - before}s), block {node.block_number()}")


@time_group.command("to-epoch-end")
@click.argument("copy_id", type=int, required=False)
@click.option("--epoch", type=int, default=None, help="This epoch instead of a copy's.")
@click.option(
    "--plus-grace", is_flag=True, help="Also past reportGrace: a missing report becomes slashable."
)
@chain_options
def time_to_epoch_end(
    copy_id: int | None, epoch: int | None, plus_grace: bool, rpc: str | None, network: str | None
) -> None:
    """Jump to just after an epoch closes, so that it can be reported.

    With COPY_ID: the epoch that copy must report next; with --epoch: that epoch; with
    neither: the current epoch.
    """
    if copy_id is not None and epoch is not None:
        raise click.UsageError("give COPY_ID or --epoch, not both")
    dev = _dev(rpc, network)
    if copy_id is not None:
        epoch = int(dev.copy_ledger(copy_id)["nextEpoch"])
        if dev.copy(copy_id)["deliveredAt"] == 0:
            raise click.ClickException(f"copy {copy_id} is not delivered: it has no epochs yet")
    target = dev.current_epoch() if epoch is None else epoch
    now = dev.to_epoch_end(target, plus_grace=plus_grace)
    what = "and its report grace " if plus_grace else ""
    click.echo(f"epoch {target} {what}is over: time {now}, current epoch {dev.current_epoch()}")


@time_group.command("to-challenge-end")
@click.argument("challenge_id", type=int)
@chain_options
def time_to_challenge_end(challenge_id: int, rpc: str | None, network: str | None) -> None:
    """Jump past the window a leak challenge waits in (reveal, liveness or arbitration)."""
    dev = _dev(rpc, network)
    window, now = dev.to_challenge_end(challenge_id)
    click.echo(
        f"challenge {challenge_id} ({window.state}): {window.window} window ended at "
        f"{window.ends_at}; time {now}; finalizeLeak({challenge_id}) can run now"
    )


# ---------------------------------------------------------------------- accounts


@group.command("impersonate")
@click.argument("address")
@click.option("--stop", is_flag=True, help="Stop impersonating ADDRESS.")
@rpc_option
def impersonate_command(address: str, stop: bool, rpc: str | None) -> None:
    """Let the node accept unsigned transactions from ADDRESS (eth_sendTransaction)."""
    node = _node(rpc)
    if stop:
        node.stop_impersonating(address)
        click.echo(f"no longer impersonating {address}")
    else:
        node.impersonate(address)
        click.echo(
            f"impersonating {address}: send with `oml dev send-as {address} ...` or any "
            "client's eth_sendTransaction"
        )


@group.command("send-as", context_settings={"ignore_unknown_options": True})
@click.argument("address")
@click.argument("contract")
@click.argument("function")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--value", default="0", help="Ether to send along, in ETH.")
@chain_options
def send_as_command(
    address: str,
    contract: str,
    function: str,
    args: tuple[str, ...],
    value: str,
    rpc: str | None,
    network: str | None,
) -> None:
    """Call CONTRACT.FUNCTION(ARGS...) as ADDRESS (impersonated); views are only called.

    CONTRACT is a name from the deployment (AccessManager, ChallengeManager, ...). ARGS are
    read by the function's ABI: integers (decimal or 0x), addresses, true/false, 0x-hex bytes,
    JSON arrays for arrays and structs. Example:

        oml dev send-as 0x3C44...93BC ChallengeManager rule 7 false
    """
    dev = _dev(rpc, network)
    target = dev.contract(contract)
    spec = find_function(cast(list[dict[str, Any]], target.abi), function, len(args))
    values = coerce_args(spec, args)
    call = target.get_function_by_signature(
        f"{function}({','.join(_canonical(i) for i in spec['inputs'])})"
    )(*values)
    if spec.get("stateMutability") in {"view", "pure"}:
        click.echo(json.dumps(call.call({"from": address}), default=_json_default))
        return
    receipt = dev.send_as(address, call, value=parse_amount(value, 18), label=function)
    click.echo(
        f"{function} mined in block {receipt['blockNumber']} "
        f"(tx {receipt['transactionHash'].to_0x_hex()}, gas {receipt['gasUsed']})"
    )
    for name in dev.deployment.addresses:
        instance = dev.contract(name)
        for item in cast(list[dict[str, Any]], instance.abi):
            if item.get("type") != "event":
                continue
            for log in getattr(instance.events, item["name"])().process_receipt(
                receipt, errors=DISCARD
            ):
                args_text = ", ".join(f"{k}={_json_default(v)}" for k, v in log["args"].items())
                click.echo(f"  {name}.{item['name']}({args_text})")


def _canonical(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in item["components"])
        return f"({inner}){kind[5:]}"
    return kind


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_json_default(v) for v in value]
    return value


@group.command("fund")
@click.argument("address")
@click.option("--eth", default=None, help="Set the ether balance to this many ETH.")
@click.option("--token", default=None, help="Add this many fee tokens (whole units).")
@click.option(
    "--from",
    "source",
    default=None,
    help="Transfer the tokens from this holder (impersonated) instead of the faucet.",
)
@chain_options
def fund_command(
    address: str,
    eth: str | None,
    token: str | None,
    source: str | None,
    rpc: str | None,
    network: str | None,
) -> None:
    """Give ADDRESS ether (anvil_setBalance) and fee tokens (MockUSD faucet, or --from)."""
    if eth is None and token is None:
        raise click.UsageError("say what to give: --eth X and/or --token Y")
    dev = _dev(rpc, network)
    decimals = int(dev.token.functions.decimals().call())
    balances = dev.fund(
        address,
        eth=None if eth is None else parse_amount(eth, 18),
        token=0 if token is None else parse_amount(token, decimals),
        source=source,
    )
    click.echo(
        f"{address}: {balances['eth'] / 10**18:,.4f} ETH, "
        f"{balances['token'] / 10**decimals:,.2f} fee tokens"
    )


# ---------------------------------------------------------------------- snapshots


@group.command("snapshot")
@rpc_option
def snapshot_command(rpc: str | None) -> None:
    """Save the chain's state; prints the id `oml dev revert` takes."""
    node = _node(rpc)
    snapshot_id = node.snapshot()
    click.echo(snapshot_id)


@group.command("revert")
@click.argument("snapshot_id")
@rpc_option
def revert_command(snapshot_id: str, rpc: str | None) -> None:
    """Go back to snapshot SNAPSHOT_ID (each snapshot can be used once; later ones are lost)."""
    node = _node(rpc)
    if not node.revert(snapshot_id):
        raise click.ClickException(f"no snapshot {snapshot_id} (already used, or never taken)")
    click.echo(f"reverted to {snapshot_id}: block {node.block_number()} at {node.timestamp()}")


# ---------------------------------------------------------------------- state


@group.group("state")
def state_group() -> None:
    """The protocol's state around a model, a copy or a host, in one table (or --json)."""


def _show(state: dict[str, Any], as_json: bool) -> None:
    from agents.dev.state import render

    _echo_json(state) if as_json else click.echo(render(state))


@state_group.command("model")
@click.argument("model_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@chain_options
def state_model(model_id: int, as_json: bool, rpc: str | None, network: str | None) -> None:
    """Terms, lineage, versions, revenue and copies of MODEL_ID."""
    from agents.dev.state import model_state

    _show(model_state(_dev(rpc, network), model_id), as_json)


@state_group.command("copy")
@click.argument("copy_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@chain_options
def state_copy(copy_id: int, as_json: bool, rpc: str | None, network: str | None) -> None:
    """Licence, stake, epochs, reports and challenges of COPY_ID."""
    from agents.dev.state import copy_state

    _show(copy_state(_dev(rpc, network), copy_id), as_json)


@state_group.command("host")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@chain_options
def state_host(address: str, as_json: bool, rpc: str | None, network: str | None) -> None:
    """Balances, claimable fees, prover bond and copies of ADDRESS."""
    from agents.dev.state import host_state

    _show(host_state(_dev(rpc, network), address), as_json)


# ---------------------------------------------------------------------- scenarios


@group.group("scenario")
def scenario_group() -> None:
    """Named, replayable stories of honest and dishonest actors, each checking its outcome."""


@scenario_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def scenario_list(as_json: bool) -> None:
    """Every scenario, what it shows and the outcome it checks."""
    from agents.dev.scenarios import all_scenarios

    scenarios = all_scenarios()
    if as_json:
        _echo_json(
            [
                {
                    "name": s.name,
                    "title": s.title,
                    "expected": s.expected,
                    "requires": list(s.requires),
                    "missing": s.missing(),
                }
                for s in scenarios
            ]
        )
        return
    for s in scenarios:
        missing = s.missing()
        note = f"  [needs {', '.join(missing)}]" if missing else ""
        click.echo(f"{s.name:<28} {s.title}{note}")
        click.echo(f"{'':<28}   expect: {s.expected}")


@scenario_group.command("run")
@click.argument("name")
@click.option(
    "--revert",
    "revert_after",
    is_flag=True,
    help="Leave the chain as it was (snapshot before, revert after).",
)
@click.option(
    "--fund-from",
    default=None,
    help="Fund the actors' fee tokens from this holder (impersonated) instead of "
    "MockUSD's faucet: for forks of networks with a real token.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@chain_options
def scenario_run(
    name: str,
    revert_after: bool,
    fund_from: str | None,
    as_json: bool,
    rpc: str | None,
    network: str | None,
) -> None:
    """Play scenario NAME on the chain at --rpc (a plain or forked Anvil) and check its outcome.

    Actors are fresh keys funded by cheatcodes; the oracle and the arbiter are the
    deployment's role accounts, impersonated. Exit status 1 when a check fails.
    """
    from agents.dev.scenarios import run_scenario

    dev = _dev(rpc, network)
    dev.token_source = fund_from
    snapshot = dev.node.snapshot() if revert_after else None
    try:
        outcome = run_scenario(name, dev)
    finally:
        if snapshot is not None:
            dev.node.revert(snapshot)
    if as_json:
        _echo_json(outcome.as_json())
    else:
        click.echo(
            f"scenario {outcome.scenario} on {outcome.rpc_url} "
            f"(deployments/{outcome.network}.json), {outcome.seconds:.1f}s"
        )
        for number, text in enumerate(outcome.steps, 1):
            click.echo(f"  {number}. {text}")
        click.echo(f"expected: {outcome.expected}")
        for check in outcome.checks:
            mark = "ok  " if check.ok else "FAIL"
            click.echo(f"  {mark} {check.what}: expected {check.expected!r}, got {check.actual!r}")
        if outcome.error:
            click.echo(f"error: {outcome.error}")
            click.echo(str(outcome.facts.get("traceback", "")))
        click.echo("outcome: as expected" if outcome.ok else "outcome: NOT as expected")
    if not outcome.ok:
        raise SystemExit(1)


@group.command("network")
def network_command() -> None:
    """Which deployment dev commands use now, and why."""
    chosen = active_network()
    click.echo(f"deployments/{chosen}.json at {get_settings().rpc_url}")
