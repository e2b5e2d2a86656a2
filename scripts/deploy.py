"""Deploy and wire the OML Hub protocol, write ``deployments/<network>.json``, export ABIs.

As an ape script against the running local chain::

    ape run deploy --network ethereum:local:node [--profile dev|prod] [--epoch-length 60]

The deployer is the chain's test account 0 (the well-known Anvil mnemonic from
ape-config.yaml, never prompted); oracle, arbiter and treasury are test accounts 1, 2 and 3.
From Python (tests, agents) call :func:`deploy_all` with ape accounts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import click
from ape.cli import ConnectedProviderCommand

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from export_abis import export_abis  # noqa: E402

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
USD = 10**6  # MockUSD has 6 decimals


class Profile(NamedTuple):
    """Every deploy-time parameter; docs/protocol.md explains each default.

    (A NamedTuple, not a dataclass: ape loads scripts without registering them as modules.)
    """

    epoch_length: int
    exit_delay: int
    delivery_timeout: int
    timelock_delay: int
    voting_period: int
    quorum_bps: int
    proposal_threshold_bps: int
    treasury_bps: int
    prover_pool_bps: int
    infra_bps: int
    prover_bond: int
    challenge_bond: int
    counter_bond: int
    challenger_reward_cap: int
    report_grace: int
    reveal_window: int
    liveness: int
    arbitration_window: int
    under_report_slash_bps: int
    missed_report_slash_bps: int
    leak_slash_bps: int
    challenger_reward_bps: int
    bond_forfeit_bps: int

    def challenge_params(self, arbiter: str) -> tuple[Any, ...]:
        """The ChallengeManager.Params struct, in field order."""
        return (
            self.prover_bond,
            self.challenge_bond,
            self.counter_bond,
            self.challenger_reward_cap,
            self.report_grace,
            self.reveal_window,
            self.liveness,
            self.arbitration_window,
            self.under_report_slash_bps,
            self.missed_report_slash_bps,
            self.leak_slash_bps,
            self.challenger_reward_bps,
            self.bond_forfeit_bps,
            arbiter,
        )


PROD = Profile(
    epoch_length=3600,
    exit_delay=7 * 86400,
    delivery_timeout=86400,
    timelock_delay=2 * 86400,
    voting_period=3 * 86400,
    quorum_bps=2000,
    proposal_threshold_bps=100,
    treasury_bps=500,
    prover_pool_bps=500,
    infra_bps=500,
    prover_bond=100 * USD,
    challenge_bond=50 * USD,
    counter_bond=50 * USD,
    challenger_reward_cap=1_000 * USD,
    report_grace=3600,
    reveal_window=3600,
    liveness=86400,
    arbitration_window=3 * 86400,
    under_report_slash_bps=2500,
    missed_report_slash_bps=500,
    leak_slash_bps=10_000,
    challenger_reward_bps=3000,
    bond_forfeit_bps=5000,
)
# Same economics, minutes instead of days, so the demo shows a whole story quickly.
DEV = PROD._replace(
    epoch_length=60,
    exit_delay=1200,
    delivery_timeout=600,
    timelock_delay=60,
    voting_period=300,
    # 2 min: an honest host on a loaded 2-core machine still reports before the grace ends
    report_grace=120,
    reveal_window=300,
    liveness=120,
    arbitration_window=300,
)
PROFILES = {"dev": DEV, "prod": PROD}


def deploy_all(
    deployer: Any,
    oracle: Any,
    arbiter: Any,
    treasury: Any,
    *,
    infrastructure: Any | None = None,
    profile: Profile = DEV,
    fee_token: Any | None = None,
    params_owner: Any | None = None,
    genesis: int = 0,
) -> dict[str, Any]:
    """Deploy every contract, wire them, hand parameters to the timelock; return instances.

    ``params_owner`` (tests) keeps protocol parameters with that account instead of the
    timelock. ``fee_token`` replaces the freshly deployed MockUSD (it is allow-listed).
    Keys of the result: MockUSD (the fee token), ProtocolTimelock, ModelRegistry, UsageLedger,
    AccessManager, ChallengeManager, ModelGovernor.
    """
    from ape import project

    infra = infrastructure if infrastructure is not None else treasury
    token = fee_token if fee_token is not None else deployer.deploy(project.MockUSD)
    timelock = deployer.deploy(
        project.ProtocolTimelock,
        profile.timelock_delay,
        [deployer.address],
        [ZERO_ADDRESS],
        ZERO_ADDRESS,
    )
    owner = params_owner.address if params_owner is not None else timelock.address
    registry = deployer.deploy(project.ModelRegistry)
    ledger = deployer.deploy(
        project.UsageLedger,
        deployer.address,
        token.address,
        registry.address,
        treasury.address,
        infra.address,
        profile.treasury_bps,
        profile.prover_pool_bps,
        profile.infra_bps,
        genesis,
        profile.epoch_length,
    )
    access = deployer.deploy(
        project.AccessManager,
        deployer.address,
        token.address,
        registry.address,
        ledger.address,
        profile.exit_delay,
        profile.delivery_timeout,
    )
    challenges = deployer.deploy(
        project.ChallengeManager,
        owner,
        token.address,
        access.address,
        ledger.address,
        profile.challenge_params(arbiter.address),
    )
    governor = deployer.deploy(
        project.ModelGovernor,
        owner,
        registry.address,
        ledger.address,
        profile.voting_period,
        profile.quorum_bps,
        profile.proposal_threshold_bps,
    )

    registry.setGovernor(governor.address, sender=deployer)
    ledger.wire(access.address, challenges.address, governor.address, sender=deployer)
    ledger.setTokenAllowed(token.address, True, sender=deployer)
    access.wire(challenges.address, sender=deployer)
    access.grantRole(access.ORACLE_ROLE(), oracle.address, sender=deployer)
    if owner != deployer.address:
        admin_role = access.DEFAULT_ADMIN_ROLE()
        access.grantRole(admin_role, owner, sender=deployer)
        access.renounceRole(admin_role, deployer.address, sender=deployer)
        ledger.transferOwnership(owner, sender=deployer)
    return {
        "MockUSD": token,
        "ProtocolTimelock": timelock,
        "ModelRegistry": registry,
        "UsageLedger": ledger,
        "AccessManager": access,
        "ChallengeManager": challenges,
        "ModelGovernor": governor,
    }


def write_deployment(
    network: str,
    chain_id: int,
    deploy_block: int,
    contracts: dict[str, Any],
    roles: dict[str, str],
    profile: Profile,
    root: Path = ROOT,
) -> Path:
    """Write ``deployments/<network>.json`` (addresses, chain id, block, ABI paths, roles)."""
    abis = export_abis(root / "deployments" / "abi")
    record = {
        "network": network,
        "chainId": chain_id,
        "deployBlock": deploy_block,
        "contracts": {
            name: {
                "address": str(instance.address),
                "abi": str(abis[name].relative_to(root)),
            }
            for name, instance in contracts.items()
        },
        "roles": roles,
        "params": profile._asdict(),
    }
    path = root / "deployments" / f"{network}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


@click.command(cls=ConnectedProviderCommand)
@click.option("--profile", "profile_name", type=click.Choice(sorted(PROFILES)), default="dev")
@click.option("--epoch-length", type=int, default=None, help="Override the epoch length (s).")
@click.option("--fund/--no-fund", default=True, help="Faucet mUSD to test accounts 4-9 (dev).")
def cli(profile_name: str, epoch_length: int | None, fund: bool) -> None:
    """Deploy the protocol to the connected network and record it."""
    from ape import accounts, chain, networks

    provider = networks.provider
    profile = PROFILES[profile_name]
    if epoch_length is not None:
        profile = profile._replace(epoch_length=epoch_length)
    test = accounts.test_accounts
    deployer, oracle, arbiter, treasury = test[0], test[1], test[2], test[3]
    deploy_block = chain.blocks.height + 1
    contracts = deploy_all(deployer, oracle, arbiter, treasury, profile=profile)
    if fund and profile_name == "dev":
        for account in list(test)[4:10]:
            contracts["MockUSD"].faucet(100_000 * USD, sender=account)
    roles = {
        "deployer": str(deployer.address),
        "oracle": str(oracle.address),
        "arbiter": str(arbiter.address),
        "treasury": str(treasury.address),
        "infrastructure": str(treasury.address),
        "timelock": str(contracts["ProtocolTimelock"].address),
    }
    network = provider.network.name
    path = write_deployment(network, int(chain.chain_id), deploy_block, contracts, roles, profile)
    click.echo(
        f"deployed {len(contracts)} contracts at block {deploy_block}: {path.relative_to(ROOT)}"
    )
    for name, instance in contracts.items():
        click.echo(f"  {name:<18} {instance.address}")
