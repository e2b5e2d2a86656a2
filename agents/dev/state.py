"""The protocol's state around one model, copy or host, gathered from views and events.

Each function returns an ordered dict of JSON-able values (``--json``); :func:`render` turns it
into the two-column table ``oml dev state`` prints.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3

from agents.dev.devchain import COPY_STATES, LEAK_STATES, DevChain
from agents.dev.errors import DevError

KINDS = ["UnderReport", "Equivocation", "MissedReport", "Leak"]
NO_EXIT = 2**32 - 1  # UsageLedger's endEpoch while a copy has not asked to exit


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _usd(amount: int, decimals: int) -> str:
    return f"{amount / 10**decimals:,.{min(decimals, 6)}f}"


def _logs(dev: DevChain, contract: Any, event: str, **filters: Any) -> list[dict[str, Any]]:
    entries = getattr(contract.events, event)().get_logs(
        from_block=dev.deployment.deploy_block, argument_filters=filters
    )
    return [dict(e["args"]) | {"block": int(e["blockNumber"])} for e in entries]


def _decimals(dev: DevChain) -> int:
    return int(dev.token.functions.decimals().call())


def model_state(dev: DevChain, model_id: int) -> dict[str, Any]:
    registry, ledger = dev.registry, dev.ledger
    if not registry.functions.exists(model_id).call():
        raise DevError(f"model {model_id} does not exist")
    decimals = _decimals(dev)
    info = registry.functions.modelInfo(model_id).call()
    ids, weights = registry.functions.lineageOf(model_id).call()
    versions = []
    for v in range(int(registry.functions.versionCount(model_id).call())):
        raw = registry.functions.getVersion(model_id, v).call()
        versions.append(
            {"version": v, "weightsCID": raw[0], "manifestCID": raw[1], "accepted": bool(raw[3])}
        )
    copies = []
    for event in _logs(dev, dev.access, "AccessRequested", modelId=model_id):
        copy = dev.copy(int(event["copyId"]))
        copies.append(
            {
                "copyId": int(event["copyId"]),
                "host": copy["host"],
                "state": COPY_STATES[int(copy["state"])],
                "collateral": _usd(int(copy["collateral"]), decimals),
            }
        )
    return {
        "model": model_id,
        "owner": registry.functions.ownerOf(model_id).call(),
        "pricePerCall": _usd(int(info[0]), decimals),
        "minCollateral": _usd(int(info[1]), decimals),
        "licensingOpen": bool(info[2]),
        "depth": int(info[3]),
        "royaltyStackBps": int(info[4]),
        "parents": [int(p) for p in registry.functions.parentsOf(model_id).call()],
        "lineage": {str(int(i)): f"{int(w) / 1e7:.4g}%" for i, w in zip(ids, weights, strict=True)},
        "versions": versions,
        "lineageAccrued": _usd(int(ledger.functions.lineageAccrued(model_id).call()), decimals),
        "lineageSettled": _usd(int(ledger.functions.lineageSettled(model_id).call()), decimals),
        "copies": copies,
    }


def copy_state(dev: DevChain, copy_id: int) -> dict[str, Any]:
    next_copy = int(dev.access.functions.nextCopyId().call())
    if not 0 < copy_id < next_copy:
        raise DevError(f"copy {copy_id} does not exist (next copy id is {next_copy})")
    decimals = _decimals(dev)
    copy = dev.copy(copy_id)
    state = COPY_STATES[int(copy["state"])]
    result: dict[str, Any] = {
        "copy": copy_id,
        "state": state,
        "host": copy["host"],
        "model": f"{int(copy['modelId'])} v{int(copy['version'])}",
        "collateral": _usd(int(copy["collateral"]), decimals),
        "slashed": _usd(int(copy["slashed"]), decimals),
        "fingerprints": int(copy["fpCount"]),
        "fpRoot": _plain(copy["fpRoot"]),
        "openChallenges": int(copy["openChallenges"]),
        "requestedAt": int(copy["requestedAt"]),
        "deliveredAt": int(copy["deliveredAt"]),
    }
    if int(copy["exitRequestedAt"]):
        delay = int(dev.access.functions.exitDelay().call())
        result["exitRequestedAt"] = int(copy["exitRequestedAt"])
        result["withdrawableAt"] = int(copy["exitRequestedAt"]) + delay
    now_epoch = dev.current_epoch()
    result["currentEpoch"] = now_epoch
    if int(copy["deliveredAt"]):
        ledger = dev.copy_ledger(copy_id)
        end = int(ledger["endEpoch"])
        next_epoch = int(ledger["nextEpoch"])
        last_due = min(now_epoch - 1, end)
        result |= {
            "firstEpoch": int(ledger["firstEpoch"]),
            "endEpoch": None if end == NO_EXIT else end,
            "nextEpochToReport": next_epoch,
            "unreportedClosedEpochs": max(0, last_due - next_epoch + 1),
            "reportedLastSeq": int(ledger["lastSeq"]),
            "pricePerCall": _usd(int(dev.ledger.functions.pricePerCall(copy_id).call()), decimals),
        }
        reports = []
        for epoch in range(max(int(ledger["firstEpoch"]), next_epoch - 4), next_epoch):
            raw = dev.ledger.functions.getReport(copy_id, epoch).call()
            reports.append(
                {
                    "epoch": epoch,
                    "calls": int(raw[2]) if raw[1] else None,
                    "lastSeq": int(raw[3]) if raw[1] else None,
                }
            )
        result["recentReports"] = reports
    challenges = []
    for event in _logs(dev, dev.challenges, "ProvableChallenge", copyId=copy_id):
        challenges.append(
            {
                "challengeId": int(event["challengeId"]),
                "kind": KINDS[int(event["kind"])],
                "slashed": _usd(int(event["slashed"]), decimals),
                "challenger": event["challenger"],
            }
        )
    for event in _logs(dev, dev.challenges, "LeakRevealed", copyId=copy_id):
        leak = dev.leak(int(event["challengeId"]))
        challenges.append(
            {
                "challengeId": int(event["challengeId"]),
                "kind": "Leak",
                "state": LEAK_STATES[int(leak["state"])],
                "index": int(event["index"]),
                "challenger": leak["challenger"],
                "deadline": int(leak["deadline"]),
            }
        )
    result["challenges"] = sorted(challenges, key=lambda c: c["challengeId"])
    return result


def host_state(dev: DevChain, address: str) -> dict[str, Any]:
    host = Web3.to_checksum_address(address)
    decimals = _decimals(dev)
    balances = dev.balances(host)
    accrued, claimed = dev.ledger.functions.accounting(host).call()
    copies = []
    for event in _logs(dev, dev.access, "AccessRequested", host=host):
        copy = dev.copy(int(event["copyId"]))
        copies.append(
            {
                "copyId": int(event["copyId"]),
                "model": int(copy["modelId"]),
                "state": COPY_STATES[int(copy["state"])],
                "collateral": _usd(int(copy["collateral"]), decimals),
                "slashed": _usd(int(copy["slashed"]), decimals),
            }
        )
    bond = int(dev.challenges.functions.proverBondOf(host).call())
    return {
        "address": host,
        "eth": f"{balances['eth'] / 10**18:,.6f}",
        "feeToken": _usd(balances["token"], decimals),
        "claimable": _usd(balances["claimable"], decimals),
        "accrued": _usd(int(accrued), decimals),
        "claimed": _usd(int(claimed), decimals),
        "prover": bond > 0,
        "proverBond": _usd(bond, decimals),
        "openChallenges": int(dev.challenges.functions.openChallengesOf(host).call()),
        "copies": copies,
    }


def render(state: dict[str, Any]) -> str:
    """Two columns, one row per field; lists of records become indented sub-rows."""
    width = max(len(k) for k in state)
    lines = []
    for key, value in state.items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines.append(f"{key:<{width}}  ({len(value)})")
            for item in value:
                lines.append(
                    " " * (width + 2) + "  ".join(f"{k}={_cell(v)}" for k, v in item.items())
                )
        else:
            lines.append(f"{key:<{width}}  {_cell(value)}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(_plain(value))
