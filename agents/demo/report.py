"""The demo's final table: calls, money per party (observed vs recomputed), slashes,
fingerprints and recall, the leak accusation, and the time each step took."""

from __future__ import annotations

from typing import Any

from agents.demo import money
from agents.demo.scenario import LABELS, Demo
from agents.demo.settings import USD

KIND_NAMES = {0: "under-report", 1: "equivocation", 2: "missed report"}


def summarize(demo: Demo, steps: list[dict[str, Any]], total_s: float) -> dict[str, Any]:
    """Everything the table shows, as JSON-ready data (also written to summary.json)."""
    out: dict[str, Any] = {
        "model": demo.settings.model,
        "network": demo.network,
        "fingerprintsPerCopy": demo.settings.fingerprints,
        "recallThreshold": demo.settings.threshold(),
        "prover": demo.prover_missing or "ran",
        "steps": steps,
        "totalSeconds": round(total_s, 1),
        "notes": list(demo.facts.get("notes", [])),
    }
    if "copy_host_b" not in demo.facts or not demo.start:
        return out  # the run stopped before there was anything to count
    copies = [demo.copy_id("host_a"), demo.copy_id("host_b")]
    holders = {
        demo.parties["creator"].address: [demo.facts["model_base"]],
        demo.parties["investor"].address: [demo.facts["model_base"]],
        demo.parties["finetuner"].address: [demo.facts["model_tuned"]],
    }
    observed = money.observe(demo.dev, demo.start, copies, holders)
    prover = demo.parties["prover"].address
    expected = money.expected_credits(observed, [prover])
    bonds = money.leak_bonds(demo.dev, int(demo.start["block"]), prover)
    expected.credits[prover] += bonds
    inflow, outflow = money.conservation(observed, expected, bonds)
    slashes = _slashes(observed)

    hosts = []
    for role in ("host_a", "host_b"):
        copy_id = demo.copy_id(role)
        hosts.append(
            {
                "name": LABELS[role],
                "address": demo.parties[role].address,
                "copyId": copy_id,
                "endpoint": demo.url(role) + "/v1",
                "served": demo.facts.get(f"{role}_served"),
                "loadCalls": sum(r.ok for r in demo.loads.get(role, [])),
                "reportedCalls": expected.calls[copy_id],
                "price": observed.price[copy_id],
                "feesPaid": expected.fees[copy_id],
                "collateral": observed.collateral[copy_id],
                "slashed": expected.slashed[copy_id],
                "slashes": [s for s in slashes if s["copyId"] == copy_id],
            }
        )
    out["hosts"] = hosts
    if "rogue_served" in demo.facts:
        out["rogue"] = {
            "endpoint": demo.url("rogue") + "/v1",
            "copyId": demo.copy_id("host_b"),
            "served": demo.facts["rogue_served"],
        }

    base, tuned = demo.facts["model_base"], demo.facts["model_tuned"]
    shares = observed.shares
    parties = []
    for role, what in (
        ("creator", f"{_pct(shares[(base, demo.parties['creator'].address)])} of model {base}"),
        ("investor", f"{_pct(shares[(base, demo.parties['investor'].address)])} of model {base}"),
        (
            "finetuner",
            f"{_pct(shares[(tuned, demo.parties['finetuner'].address)])} of model {tuned}",
        ),
        ("prover", "pool share + slash rewards + bonds back"),
    ):
        address = demo.parties[role].address
        parties.append(_party(LABELS[role], what, address, observed, expected))
    treasury_cut = f"{observed.cuts[0] / 100:g}% of every fee"
    infra_cut = f"{observed.cuts[2] / 100:g}% of every fee"
    if observed.treasury == observed.infrastructure:
        what = f"{treasury_cut} + {infra_cut} (one account in the dev profile)"
        parties.append(_party("treasury + infra", what, observed.treasury, observed, expected))
    else:
        for name, address, what in (
            ("treasury", observed.treasury, treasury_cut),
            ("infrastructure", observed.infrastructure, infra_cut),
        ):
            parties.append(_party(name, what, address, observed, expected))
    out["parties"] = parties
    out["protocolCut"] = expected.protocol_cut
    out["split"] = {
        "treasury": expected.to_treasury,
        "proverPool": expected.to_provers,
        "infrastructure": expected.to_infrastructure,
    }
    out["dust"] = expected.dust
    out["moneyIn"], out["moneyOut"] = inflow, outflow
    out["problems"] = expected.problems + [
        f"{p['name']} received {p['received']} but {p['expected']} was expected"
        for p in parties
        if p["received"] != p["expected"]
    ]
    if inflow != outflow:
        out["problems"].append(f"fees and slashes in ({inflow}) != credited + held ({outflow})")
    out["copies"] = [{"copyId": c, **r} for c, r in sorted(demo.facts.get("recall", {}).items())]
    detection = demo.facts.get("detection")
    if detection:
        out["accusation"] = {
            "copyId": detection["copyId"],
            "endpoint": detection["endpoint"],
            "matched": detection["matched"],
            "queried": detection["queried"],
            "falsePositive": detection["falsePositiveProbability"],
            "threshold": detection["threshold"],
        }
    return out


def _pct(shares: int) -> str:
    return f"{shares / money.TOTAL_SHARES:.0%}"


def _party(
    name: str, what: str, address: str, observed: money.Observed, expected: money.Expected
) -> dict[str, Any]:
    return {
        "name": name,
        "what": what,
        "address": address,
        "received": money.received(observed, address),
        "expected": int(expected.credits.get(address, 0)),
        "claimed": money.claimed(observed, address),
    }


def _slashes(observed: money.Observed) -> list[dict[str, Any]]:
    kinds: dict[int, str] = {}
    for e in observed.events:
        if e.name == "ProvableChallenge":
            kinds[int(e.args["challengeId"])] = KIND_NAMES.get(int(e.args["kind"]), "provable")
        if e.name == "LeakResolved":
            kinds.setdefault(int(e.args["challengeId"]), "leak")
    return [
        {
            "copyId": int(e.args["copyId"]),
            "challengeId": int(e.args["challengeId"]),
            "kind": kinds.get(int(e.args["challengeId"]), "leak"),
            "amount": int(e.args["amount"]),
            "reward": int(e.args["reward"]),
        }
        for e in observed.events
        if e.name == "Slashed"
    ]


# ====================================================================== text


def usd(units: int | None) -> str:
    if units is None:
        return "-"
    return f"{units / USD:,.6f}"


def render(summary: dict[str, Any]) -> str:
    lines = [
        "",
        f"=== OML Hub demo: the whole story ({summary['model']} model, "
        f"{summary['fingerprintsPerCopy']} fingerprints per copy) ===",
    ]
    if "hosts" not in summary:
        lines.append("(the run stopped before any usage: nothing to tabulate)")
        return "\n".join([*lines, *_timings(summary)])
    lines += ["", "calls and fees (mUSD)"]
    lines.append(
        f"  {'':<8} {'copy':>4}  {'served':>6} {'reported':>8} {'price':>10} "
        f"{'fees paid':>12}  {'slashed':>12} of {'stake':<12}"
    )
    for h in summary["hosts"]:
        lines.append(
            f"  {h['name']:<8} {h['copyId']:>4}  {h['served'] or '-':>6} {h['reportedCalls']:>8} "
            f"{usd(h['price']):>10} {usd(h['feesPaid']):>12}  {usd(h['slashed']):>12} of "
            f"{usd(h['collateral'])}"
        )
        for s in h["slashes"]:
            lines.append(
                f"  {'':<8} {'':>4}  challenge {s['challengeId']} ({s['kind']}): "
                f"slashed {usd(s['amount'])}, prover's reward {usd(s['reward'])}"
            )
    if "rogue" in summary:
        r = summary["rogue"]
        lines.append(
            f"  rogue    {r['copyId']:>4}  {r['served']:>6} {'never':>8}   "
            f"(leaked copy at {r['endpoint']}, not registered)"
        )
    lines += ["", "who received what (mUSD; expected = recomputed from on-chain parameters)"]
    lines.append(f"  {'party':<17} {'received':>12} {'expected':>12} {'claimed':>12}  holds")
    for p in summary["parties"]:
        mark = "" if p["received"] == p["expected"] else "  MISMATCH"
        lines.append(
            f"  {p['name']:<17} {usd(p['received']):>12} {usd(p['expected']):>12} "
            f"{usd(p['claimed']):>12}  {p['what']}{mark}"
        )
    split = summary["split"]
    lines.append(
        f"  protocol cut {usd(summary['protocolCut'])} = treasury {usd(split['treasury'])} + "
        f"prover pool {usd(split['proverPool'])} + infrastructure {usd(split['infrastructure'])};"
        f" rounding dust {usd(summary['dust'])} stays in the ledger"
    )
    lines.append(
        f"  fees + slashes in: {usd(summary['moneyIn'])}; credited + still in the ledger: "
        f"{usd(summary['moneyOut'])}"
    )
    lines += ["", "fingerprints"]
    for c in summary.get("copies", []):
        lines.append(
            f"  copy {c['copyId']}: {c['fingerprints']} fingerprints, recall {c['recall']:.0%} on "
            f"the host's decrypted copy ({c['matched']}/{c['fingerprints']}; oracle measured "
            f"{c['oracleRecall']:.0%}, threshold {summary['recallThreshold']:.0%})"
        )
    accusation = summary.get("accusation")
    if accusation:
        lines.append(
            f"  leak accusation: copy {accusation['copyId']} at {accusation['endpoint']}: "
            f"{accusation['matched']}/{accusation['queried']} keys matched, false-positive "
            f"probability {accusation['falsePositive']:.1e} (accuses below "
            f"{accusation['threshold']:.1e} per copy)"
        )
    else:
        lines.append(f"  prover: {summary['prover']}")
    problems = summary.get("problems", [])
    lines.append("")
    lines.append(
        "checks: every amount matches the contracts' arithmetic"
        if not problems
        else "checks FAILED:\n" + "\n".join(f"  - {p}" for p in problems)
    )
    for note in summary.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join([*lines, *_timings(summary)])


def _timings(summary: dict[str, Any]) -> list[str]:
    steps = [s for s in summary["steps"] if s["status"] == "ok"]
    slow = sorted(steps, key=lambda s: -s["seconds"])[:3]
    total = summary["totalSeconds"]
    return [
        "",
        f"total {int(total // 60)}m{total % 60:04.1f}s; slowest: "
        + ", ".join(f"{s['title']} {s['seconds']:.0f}s" for s in slow),
    ]
