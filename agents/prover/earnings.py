"""What proving earned and what it has locked: read from the chain, never from local memory.

* rewards — the challenger's share of every slash its challenges caused (``Slashed`` events);
* bonds — the prover bond, plus the challenge bonds of leak challenges still open;
* prover pool — fees the pool owes this prover (``harvestProver`` simulated with eth_call,
  which also counts protocol fees not yet split);
* claimable / accrued / claimed — the FeeRouter's pull balance (rewards, returned bonds and
  harvested pool fees all land there; ``claimAll`` pays it out).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from agents.prover.chain import LeakState, ProverChain
from agents.prover.errors import ConfigError

OPEN = (LeakState.COMMITTED, LeakState.REVEALED, LeakState.DISPUTED)


def parse_amount(text: str, decimals: int) -> int:
    """``"100"`` or ``"0.5"`` tokens → base units; refuses more decimals than the token has."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as error:
        raise ConfigError(f"{text!r} is not an amount (e.g. 100 or 12.5)") from error
    units = value * (Decimal(10) ** decimals)
    if value < 0 or units != units.to_integral_value():
        raise ConfigError(f"{text!r} is negative or has more than {decimals} decimals")
    return int(units)


def format_amount(units: int, decimals: int) -> str:
    whole, frac = divmod(units, 10**decimals)
    return f"{whole}.{frac:0{decimals}d}".rstrip("0").rstrip(".") if decimals else str(whole)


def collect(chain: ProverChain) -> dict[str, Any]:
    me = chain.address.lower()
    slashes = []
    for event in chain.logs("AccessManager", "Slashed"):
        args = event["args"]
        if str(args["challenger"]).lower() == me:
            slashes.append(
                {
                    "challengeId": int(args["challengeId"]),
                    "copyId": int(args["copyId"]),
                    "slashed": int(args["amount"]),
                    "reward": int(args["reward"]),
                    "block": int(event["blockNumber"]),
                }
            )
    open_bonds = 0
    open_leaks = []
    for event in chain.logs("ChallengeManager", "LeakCommitted", challenger=chain.address):
        challenge_id = int(event["args"]["challengeId"])
        leak = chain.leak(challenge_id)
        if leak.state in OPEN:
            open_bonds += leak.bond
            open_leaks.append(
                {
                    "challengeId": challenge_id,
                    "state": leak.state.name.lower(),
                    "bond": leak.bond,
                    "deadline": leak.deadline,
                }
            )
    accrued, claimed = chain.accounting()
    return {
        "prover": chain.address,
        "registered": chain.is_prover(),
        "decimals": chain.token_decimals(),
        "rewards": sum(s["reward"] for s in slashes),
        "slashes": slashes,
        "bondsLocked": chain.prover_bond() + open_bonds,
        "proverBond": chain.prover_bond(),
        "openLeakBonds": open_bonds,
        "openLeaks": open_leaks,
        "proverPoolPending": chain.pending_prover_pool(),
        "claimable": chain.claimable(),
        "accrued": accrued,
        "claimed": claimed,
        "walletBalance": chain.token_balance(),
    }


def render(report: dict[str, Any]) -> str:
    d = int(report["decimals"])

    def amt(key: str) -> str:
        return format_amount(int(report[key]), d)

    lines = [
        f"prover {report['prover']} ({'registered' if report['registered'] else 'not registered'})",
        f"  rewards earned       {amt('rewards')}  ({len(report['slashes'])} slash(es))",
        f"  prover pool pending  {amt('proverPoolPending')}  (oml prover earnings --harvest)",
        f"  claimable now        {amt('claimable')}  (oml prover earnings --claim)",
        f"  accrued / claimed    {amt('accrued')} / {amt('claimed')}",
        f"  bonds locked         {amt('bondsLocked')}  (prover bond {amt('proverBond')}, "
        f"{len(report['openLeaks'])} open leak challenge(s) {amt('openLeakBonds')})",
        f"  wallet balance       {amt('walletBalance')}",
    ]
    for s in report["slashes"]:
        lines.append(
            f"  challenge {s['challengeId']:>4}: copy {s['copyId']} slashed "
            f"{format_amount(s['slashed'], d)}, reward {format_amount(s['reward'], d)}"
        )
    return "\n".join(lines)
