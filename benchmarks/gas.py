"""Gas table of the protocol's main operations → benchmarks/gas.md.

Runs on a throw-away Anvil started by ape (ethereum:local:foundry), deploys with
scripts/deploy.py, and measures `gas_used` of real transactions. Goals from issue 4:
reportUsage at lineage depth 8 / 32 ancestors within 5% of depth 0 and under 80k gas;
claim under 60k.
"""

from __future__ import annotations

import datetime
import platform
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "contracts"))
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "gas.md"


def measure() -> tuple[list[tuple[str, int, str]], dict[str, int]]:
    from ape import accounts, chain
    from omlkit import (
        COPY_CID,
        ENDPOINT,
        MANIFEST,
        Fingerprints,
        World,
        commitment,
        pubkey,
        signed_receipt,
    )

    acct = accounts.test_accounts
    w = World(acct, chain)
    creator, host, prover, fresh = acct[4], acct[5], acct[6], acct[7]
    for a in (creator, host, prover):
        w.fund(a)
    rows: list[tuple[str, int, str]] = []

    def gas(tx: Any) -> int:
        return int(tx.gas_used)

    tx = w.registry.registerModel([], [], MANIFEST, (10_000, 100 * 10**6), 0, sender=creator)
    rows.append(("registerModel (root)", gas(tx), ""))
    w.registry.publishVersion(1, "bafyweights", MANIFEST, sender=creator)
    root = 1

    # depth-8 chain, each link with 3 extra root parents: 8 + 24 = 32 ancestors
    node = w.register(creator, publish=False)
    last_tx: Any = None
    for _ in range(8):
        extras = [w.register(creator, publish=False) for _ in range(3)]
        last_tx = w.registry.registerModel(
            [node, *extras], [500] * 4, MANIFEST, (10_000, 100 * 10**6), 10_000, sender=creator
        )
        node = int(w.registry.nextModelId()) - 1
    deep = node
    info = w.registry.modelInfo(deep)
    assert (info.depth, info.ancestorCount) == (8, 32), info
    rows.append(("registerModel (depth 8, 4 parents, 32 ancestors)", gas(last_tx), ""))
    w.registry.publishVersion(deep, "bafyweights", MANIFEST, sender=creator)

    def licence(model: int) -> tuple[int, Any, Any, Fingerprints]:
        req = w.access.requestAccess(model, 0, ENDPOINT, 100 * 10**6, pubkey(host), sender=host)
        copy_id = int(req.events.filter(w.access.AccessRequested)[0].copyId)
        fp = Fingerprints.make(copy_id, 64)
        dlv = w.access.deliverCopy(copy_id, fp.root, 64, COPY_CID, sender=w.oracle)
        return copy_id, req, dlv, fp

    shallow_copy, req, dlv, _ = licence(root)
    rows.append(("requestAccess", gas(req), "first copy of the host"))
    rows.append(("deliverCopy", gas(dlv), ""))
    deep_copy, _, _, fp = licence(deep)

    report: dict[str, int] = {}
    for label, copy_id in (("depth 0", shallow_copy), ("depth 8", deep_copy)):
        e = w.first_epoch(copy_id)
        first = w.report(host, copy_id, e, 10, 10)
        steady = w.report(host, copy_id, e + 1, 10, 20)
        report[label] = gas(steady)
        rows.append((f"reportUsage ({label}, first fee of the model)", gas(first), "cold slots"))
        rows.append((f"reportUsage ({label}, steady state)", gas(steady), "the goal's figure"))
    settle = w.ledger.settleLineage(deep, sender=host)
    rows.append(("settleLineage (33-entry table)", gas(settle), "off the hot path"))
    harvest = w.ledger.harvest(root, creator, sender=creator)
    rows.append(("harvest (share revenue → claimable)", gas(harvest), ""))
    w.ledger.harvest(deep, creator, sender=creator)
    have = int(w.ledger.claimable(creator))
    claim = w.ledger.claim(have // 2, sender=creator)
    rows.append(("claim (recipient already holds the token)", gas(claim), ""))
    w.gov.transferShares(root, fresh, 10**17, sender=creator)
    w.ledger.settleLineage(root, sender=host)
    w.report(host, shallow_copy, w.first_epoch(shallow_copy) + 2, 10, 30)
    w.ledger.harvest(root, fresh, sender=fresh)
    claim_fresh = w.ledger.claimAll(sender=fresh)
    rows.append(("claim (first token balance of the recipient)", gas(claim_fresh), "zero→nonzero"))

    reg = w.cm.registerProver(sender=prover)
    rows.append(("registerProver", gas(reg), ""))
    c = w.cm.commitLeak(commitment(prover.address, deep_copy, 7, fp.salts[7], "ev"), sender=prover)
    rows.append(("commitLeak", gas(c), ""))
    cid = int(c.return_value)
    r = w.cm.revealLeak(cid, fp.reveal(7, "ev"), sender=prover)
    rows.append(("revealLeak (64 fingerprints, 6-hash proof)", gas(r), ""))
    w.sleep(int(w.cm.params().liveness) + 1)
    f = w.cm.finalizeLeak(cid, sender=prover)
    rows.append(("finalizeLeak (undisputed: slash + payouts)", gas(f), ""))

    e = w.first_epoch(shallow_copy)
    rec, sig = signed_receipt(host, w.cm.address, shallow_copy, e + 1, 25)
    u = w.cm.challengeUnderReport(rec, sig, sender=prover)
    rows.append(("challengeUnderReport (EIP-712 receipt, slash)", gas(u), ""))
    return rows, report


def render(rows: list[tuple[str, int, str]], report: dict[str, int]) -> str:
    d0, d8 = report["depth 0"], report["depth 8"]
    diff = (d8 - d0) / d0 * 100
    claim = next(g for name, g, _ in rows if name.startswith("claim (recipient already"))
    lines = [
        "# Gas per operation",
        "",
        f"Generated by `benchmarks/gas.py` on {datetime.date.today().isoformat()} "
        f"({platform.machine()}, solc 0.8.30, optimizer 200 runs, Anvil). Do not edit by hand.",
        "",
        "| operation | gas | note |",
        "|---|---:|---|",
        *[f"| {name} | {g:,} | {note} |" for name, g, note in rows],
        "",
        "## Goals",
        "",
        f"- reportUsage depth 8 (32 ancestors) vs depth 0: {d8:,} vs {d0:,} gas "
        f"({diff:+.2f}%; goal within 5%): {'met' if abs(diff) <= 5 else 'NOT met'}",
        f"- reportUsage under 80k: {'met' if max(d0, d8) < 80_000 else 'NOT met'}",
        f"- claim under 60k: {claim:,} gas, {'met' if claim < 60_000 else 'NOT met'}",
        "",
        "reportUsage touches the same slots whatever the lineage: the royalty table is walked",
        "later by `settleLineage`, once per accumulated amount, not once per call or report.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    from ape import networks

    with networks.parse_network_choice("ethereum:local:foundry"):
        rows, report = measure()
    OUT.write_text(render(rows, report))
    print(OUT.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
