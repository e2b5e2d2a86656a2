"""What `oml host status` shows: local ledgers plus, when reachable, the chain's view."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.host.service import HostContext

LEDGER_GLOB = "receipts-*.sqlite3"


def collect(context: HostContext) -> dict[str, Any]:
    settings = context.settings
    copies = sorted(
        {settings.copy_id}
        | {_copy_id(p) for p in settings.state_dir.glob(LEDGER_GLOB) if _copy_id(p) >= 0}
    )
    out: dict[str, Any] = {
        "host": context.signer.address,
        "chainId": context.signer.chain_id,
        "currentEpoch": context.clock.current(),
        "epochLengthS": context.clock.length,
        "stateDir": str(settings.state_dir),
        "copies": [],
    }
    if context.chain is not None:
        try:
            out["tokenBalance"] = context.chain.token_balance()
        except Exception as error:
            out["chainError"] = str(error)
    for copy_id in copies:
        out["copies"].append(_copy(context, copy_id))
    return out


def _copy(context: HostContext, copy_id: int) -> dict[str, Any]:
    entry: dict[str, Any] = {"copyId": copy_id}
    path = context.settings.state_dir / f"receipts-{copy_id}.sqlite3"
    if path.exists():
        ledger = context.open_ledger(copy_id, path)
        try:
            reports = ledger.reports()
            done = [r for r in reports if r.status == "done"]
            entry.update(
                lastSeq=ledger.last_seq,
                currentEpochCalls=ledger.usage(context.clock.current()).calls,
                epochsReported=len(done),
                lastReportedEpoch=done[-1].epoch if done else None,
                feesPaid=sum(r.fee for r in done),
                sending=[r.epoch for r in reports if r.status == "sending"],
            )
        finally:
            ledger.close()
    if context.chain is not None:
        try:
            entry.update(context.chain.copy_status(copy_id))
        except Exception as error:
            entry["chainError"] = str(error)
    return entry


def _copy_id(path: Path) -> int:
    try:
        return int(path.stem.removeprefix("receipts-"))
    except ValueError:
        return -1


def render(status: dict[str, Any]) -> str:
    lines = [
        f"host {status['host']} on chain {status['chainId']}, epoch {status['currentEpoch']} "
        f"({status['epochLengthS']} s)",
    ]
    if "tokenBalance" in status:
        lines.append(f"fee-token balance: {status['tokenBalance']}")
    if "chainError" in status:
        lines.append(f"chain unreachable: {status['chainError']}")
    for copy in status["copies"]:
        lines.append(f"copy {copy['copyId']}:")
        for key, value in copy.items():
            if key != "copyId":
                lines.append(f"  {key}: {value}")
    return "\n".join(lines)
