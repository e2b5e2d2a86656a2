"""Where the money went, observed on chain and recomputed from the contracts' parameters.

:func:`observe` reads the run's events (fees, protocol splits, lineage settlements, slashes,
credits, claims) and :func:`expected_credits` replays the contracts' arithmetic on them with
parameters read from the chain (cuts, royalty tables, shares, slash and reward rates). The demo
prints both side by side; tests/e2e/test_demo.py asserts they are equal to the unit.

The replay follows the contracts (docs/protocol.md, "Money flow"):

* a report pays ``fee = calls × price``; ``fee × (treasury + prover pool + infra) / BPS``
  waits in ``protocolUnsplit``, the rest accrues to the copy's model lineage;
* each split hands ``unsplit × cut / totalCut`` to treasury and infrastructure, the remainder
  to the prover pool (all of it to a sole registered prover);
* each settlement of a model's lineage adds ``delta × weightPpb / PPB`` to every ancestor's
  per-share accumulator (the rounding remainder is dust); a holder harvests
  ``shares × accumulated / 1e18``;
* a slash takes ``collateral × bps / BPS``; the challenger gets ``min(slash × rewardBps / BPS,
  cap)``, the rest accrues to the copy's model lineage; an upheld leak challenge returns the
  challenger's bond.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from web3 import Web3
from web3.contract import Contract

from agents.dev.devchain import DevChain

TOTAL_SHARES = 10**18
UNDER_REPORT, EQUIVOCATION, MISSED_REPORT = 0, 1, 2
UPHELD = 4  # ChallengeManager.LeakState.Upheld


@dataclass(frozen=True)
class Event:
    """One log, in chain order."""

    name: str
    block: int
    index: int
    args: dict[str, Any]


@dataclass
class Observed:
    """Everything the run did to the ledger, plus the parameters needed to recompute it."""

    events: list[Event]
    bps: int
    ppb: int
    cuts: tuple[int, int, int]  # treasury, prover pool, infrastructure (bps)
    challenge: dict[str, Any]  # ChallengeManager.Params by name
    price: dict[int, int]  # copy id -> price per call
    copy_model: dict[int, int]  # copy id -> model id
    collateral: dict[int, int]  # copy id -> collateral staked at request
    lineage: dict[int, list[tuple[int, int]]]  # model id -> [(ancestor, weightPpb)]
    shares: dict[tuple[int, str], int]  # (model id, holder) -> shares
    treasury: str
    infrastructure: str
    unsplit_start: int
    pool_start: int
    provers: int  # registered provers at the end
    accrued_start: dict[str, int]
    accrued_end: dict[str, int]
    claimed_start: dict[str, int]
    claimed_end: dict[str, int]
    # still inside the ledger at the end: protocol cut not split, prover pool not handed out,
    # lineage not settled and settled-but-unharvested revenue of the run's models
    unsplit_end: int = 0
    pool_end: int = 0
    unsettled_end: int = 0
    outstanding_end: int = 0


@dataclass
class Expected:
    credits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    fees: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    calls: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    slashed: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    protocol_cut: int = 0
    to_treasury: int = 0
    to_infrastructure: int = 0
    to_provers: int = 0
    dust: int = 0
    problems: list[str] = field(default_factory=list)


def _logs(contract: Contract, event: str, from_block: int) -> list[Event]:
    found = getattr(contract.events, event)().get_logs(from_block=from_block)
    return [
        Event(event, int(log["blockNumber"]), int(log["logIndex"]), dict(log["args"]))
        for log in found
    ]


def snapshot(dev: DevChain, addresses: list[str]) -> dict[str, Any]:
    """What the ledger holds for ``addresses`` now (taken at the start and the end of a run)."""
    ledger = dev.ledger
    accrued, claimed = {}, {}
    for address in addresses:
        total, paid_out = ledger.functions.accounting(Web3.to_checksum_address(address)).call()
        accrued[address] = int(total)
        claimed[address] = int(paid_out)
    config = dev.ledger.functions.config().call()
    names = [c["name"] for c in _outputs(ledger, "config")]
    return {
        "block": dev.node.block_number(),
        "accrued": accrued,
        "claimed": claimed,
        "unsplit": int(dict(zip(names, config, strict=True))["protocolUnsplit"]),
        "pool": int(ledger.functions.proverPool().call()),
    }


def _outputs(contract: Contract, function: str) -> list[dict[str, Any]]:
    abi: list[dict[str, Any]] = [dict(item) for item in contract.abi]
    for item in abi:
        if item.get("type") == "function" and item.get("name") == function:
            outputs: list[dict[str, Any]] = list(item.get("outputs", []))
            if len(outputs) == 1 and outputs[0].get("components"):
                return list(outputs[0]["components"])
            return outputs
    raise KeyError(function)


def observe(
    dev: DevChain,
    start: dict[str, Any],
    copies: list[int],
    holders: dict[str, list[int]],
) -> Observed:
    """Read the run's events since ``start`` and the parameters to recompute them."""
    ledger, access, registry = dev.ledger, dev.access, dev.registry
    governor = dev.contract("ModelGovernor")
    since = int(start["block"]) + 1
    events = [
        *_logs(ledger, "UsageReported", since),
        *_logs(ledger, "ProtocolFeesSplit", since),
        *_logs(ledger, "LineageSettled", since),
        *_logs(access, "Slashed", since),
        *_logs(dev.challenges, "ProvableChallenge", since),
        *_logs(dev.challenges, "LeakResolved", since),
    ]
    events.sort(key=lambda e: (e.block, e.index))
    config_names = [c["name"] for c in _outputs(ledger, "config")]
    config = dict(zip(config_names, ledger.functions.config().call(), strict=True))
    copy_model, collateral, price = {}, {}, {}
    requested = {
        int(e.args["copyId"]): int(e.args["collateral"])
        for e in _logs(access, "AccessRequested", dev.deployment.deploy_block)
        if int(e.args["copyId"]) in copies
    }
    for copy_id in copies:
        info = dev.copy(copy_id)
        copy_model[copy_id] = int(info["modelId"])
        collateral[copy_id] = requested.get(copy_id, int(info["collateral"]) + int(info["slashed"]))
        price[copy_id] = int(ledger.functions.pricePerCall(copy_id).call())
    models = set(copy_model.values()) | {m for held in holders.values() for m in held}
    lineage = {}
    for model in models:
        ids, weights = registry.functions.lineageOf(model).call()
        lineage[model] = [(int(i), int(w)) for i, w in zip(ids, weights, strict=True)]
    shares = {
        (model, holder): int(governor.functions.sharesOf(model, holder).call())
        for holder, held in holders.items()
        for model in held
    }
    end = snapshot(dev, list(start["accrued"]))
    unsettled = sum(
        int(ledger.functions.lineageAccrued(m).call())
        - int(ledger.functions.lineageSettled(m).call())
        for m in models
    )
    outstanding = sum(int(ledger.functions.modelOutstanding(m).call()) for m in models)
    return Observed(
        events=events,
        bps=int(ledger.functions.BPS().call()),
        ppb=int(ledger.functions.PPB().call()),
        cuts=(int(config["treasuryBps"]), int(config["proverPoolBps"]), int(config["infraBps"])),
        challenge=dev.params(),
        price=price,
        copy_model=copy_model,
        collateral=collateral,
        lineage=lineage,
        shares=shares,
        treasury=Web3.to_checksum_address(ledger.functions.treasury().call()),
        infrastructure=Web3.to_checksum_address(ledger.functions.infrastructure().call()),
        unsplit_start=int(start["unsplit"]),
        pool_start=int(start["pool"]),
        provers=int(ledger.functions.proverCount().call()),
        accrued_start=dict(start["accrued"]),
        accrued_end=end["accrued"],
        claimed_start=dict(start["claimed"]),
        claimed_end=end["claimed"],
        unsplit_end=int(end["unsplit"]),
        pool_end=int(end["pool"]),
        unsettled_end=unsettled,
        outstanding_end=outstanding,
    )


def expected_credits(o: Observed, provers: list[str]) -> Expected:
    """Replay the run's events with the contracts' arithmetic; credits by address.

    Assumes what the demo does: shares change hands before any revenue, and every holder
    harvests once, after the last settlement of each model it holds.
    """
    out = Expected()
    total_cut = sum(o.cuts)
    unsplit = o.unsplit_start
    pending: dict[int, int] = defaultdict(int)  # model -> lineage accrued, not yet settled
    acc: dict[int, int] = defaultdict(int)  # model -> accumulated per whole model
    left = dict(o.collateral)
    kinds: dict[int, int] = {}  # challenge id -> provable kind
    for e in o.events:
        a = e.args
        if e.name == "UsageReported":
            copy_id, calls, fee = int(a["copyId"]), int(a["calls"]), int(a["fee"])
            if copy_id not in o.price:
                continue  # another party's copy on a shared deployment
            out.calls[copy_id] += calls
            out.fees[copy_id] += fee
            if fee != calls * o.price[copy_id]:
                out.problems.append(
                    f"copy {copy_id} epoch {a['epoch']}: fee {fee} != {calls} × {o.price[copy_id]}"
                )
            cut = fee * total_cut // o.bps
            out.protocol_cut += cut
            unsplit += cut
            pending[o.copy_model[copy_id]] += fee - cut
        elif e.name == "ProtocolFeesSplit":
            to_treasury = unsplit * o.cuts[0] // total_cut
            to_infra = unsplit * o.cuts[2] // total_cut
            to_pool = unsplit - to_treasury - to_infra
            seen = (int(a["treasury"]), int(a["proverPool"]), int(a["infrastructure"]))
            if seen != (to_treasury, to_pool, to_infra):
                out.problems.append(
                    f"protocol split {seen} != expected {(to_treasury, to_pool, to_infra)}"
                )
            out.to_treasury += to_treasury
            out.to_infrastructure += to_infra
            out.to_provers += to_pool
            out.credits[o.treasury] += to_treasury
            out.credits[o.infrastructure] += to_infra
            unsplit = 0
        elif e.name == "ProvableChallenge":
            kinds[int(a["challengeId"])] = int(a["kind"])
        elif e.name == "Slashed":
            copy_id, amount, reward = int(a["copyId"]), int(a["amount"]), int(a["reward"])
            if copy_id not in left:
                continue
            p = o.challenge
            rates = {
                UNDER_REPORT: p["underReportSlashBps"],
                EQUIVOCATION: p["underReportSlashBps"],
                MISSED_REPORT: p["missedReportSlashBps"],
            }
            kind = kinds.get(int(a["challengeId"]), -1)  # not provable: an upheld leak
            bps = int(rates.get(kind, p["leakSlashBps"]))
            want = left[copy_id] * bps // o.bps
            want_reward = min(
                want * int(p["challengerRewardBps"]) // o.bps, int(p["challengerRewardCap"])
            )
            if (amount, reward) != (want, want_reward):
                out.problems.append(
                    f"slash of copy {copy_id}: {(amount, reward)} != expected {(want, want_reward)}"
                )
            left[copy_id] -= amount
            out.slashed[copy_id] += amount
            out.credits[Web3.to_checksum_address(a["challenger"])] += reward
            pending[o.copy_model[copy_id]] += amount - reward
        elif e.name == "LeakResolved" and int(a["outcome"]) == UPHELD:
            pass  # bond refunds are added per prover below (the event names no challenger)
        elif e.name == "LineageSettled":
            model, amount = int(a["modelId"]), int(a["amount"])
            if model not in o.lineage:
                continue
            if amount != pending[model]:
                out.problems.append(f"model {model} settled {amount}, expected {pending[model]}")
            given = 0
            for ancestor, weight in o.lineage[model]:
                share = amount * weight // o.ppb
                acc[ancestor] += share
                given += share
            out.dust += amount - given
            if int(a["dust"]) != amount - given:
                out.problems.append(f"model {model} dust {a['dust']} != {amount - given}")
            pending[model] = 0
    for (model, holder), shares in o.shares.items():
        out.credits[holder] += shares * acc[model] // TOTAL_SHARES
    if provers:
        if o.provers == 1:
            out.credits[provers[0]] += o.pool_start + out.to_provers
        else:
            out.problems.append(f"{o.provers} provers share the pool: not recomputed")
    return out


def leak_bonds(dev: DevChain, start_block: int, prover: str) -> int:
    """Challenge bonds returned to ``prover`` by upheld leak challenges since ``start_block``."""
    bond = int(dev.params()["challengeBond"])
    committed = {
        int(e.args["challengeId"])
        for e in _logs(dev.challenges, "LeakCommitted", start_block + 1)
        if Web3.to_checksum_address(e.args["challenger"]) == Web3.to_checksum_address(prover)
    }
    upheld = {
        int(e.args["challengeId"])
        for e in _logs(dev.challenges, "LeakResolved", start_block + 1)
        if int(e.args["outcome"]) == UPHELD
    }
    return bond * len(committed & upheld)


def received(o: Observed, address: str) -> int:
    return o.accrued_end.get(address, 0) - o.accrued_start.get(address, 0)


def claimed(o: Observed, address: str) -> int:
    return o.claimed_end.get(address, 0) - o.claimed_start.get(address, 0)


def conservation(o: Observed, expected: Expected, bonds_returned: int) -> tuple[int, int]:
    """(money in, money out) of the run: fees and slashes in; credits to the payees (less the
    bonds returned, which were the prover's own), dust and what still waits in the ledger out.
    Equal when nothing was lost or created (the payees must be every credited account)."""
    inflow = sum(expected.fees.values()) + sum(expected.slashed.values())
    credited = sum(received(o, address) for address in o.accrued_end)
    waiting = (
        (o.unsplit_end - o.unsplit_start)
        + (o.pool_end - o.pool_start)
        + o.unsettled_end
        + o.outstanding_end
    )
    return inflow, credited - bonds_returned + expected.dust + waiting
