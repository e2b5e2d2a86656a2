"""Usage logs from other engines (vLLM, TGI, a proxy): JSON lines booked into the ledger.

One call per line::

    {"id": "req-123", "timestamp": 1718000000.5, "prompt": "...", "response": "..."}

``prompt``/``response`` may be replaced by ``prompt_hash``/``response_hash`` (0x + 64 hex).
``timestamp`` (unix seconds or ISO 8601) picks the epoch; a call whose epoch is already closed
is booked into the oldest open epoch. ``id`` makes re-imports idempotent; without it the line's
own content is the key. Each booked call gets a signed receipt like a served one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from agents.chain.receipts import text_hash
from agents.host.errors import LogFormatError
from agents.host.ledger import Call, ReceiptLedger

BATCH = 500


@dataclass(frozen=True)
class ImportResult:
    booked: int
    duplicates: int
    first_seq: int | None
    last_seq: int | None


def read_calls(path: Path, ledger: ReceiptLedger) -> Iterator[Call]:
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                if not isinstance(entry, dict):
                    raise ValueError("not a JSON object")
                yield _call(entry, raw, ledger)
            except (ValueError, KeyError, TypeError) as error:
                raise LogFormatError(f"{path}:{number}: {error}") from error


def import_log(path: Path, ledger: ReceiptLedger) -> ImportResult:
    booked = duplicates = 0
    first = last = None
    batch: list[Call] = []

    def flush() -> None:
        nonlocal booked, duplicates, first, last
        for receipt in ledger.issue(batch):
            if receipt is None:
                duplicates += 1
                continue
            booked += 1
            first = receipt.receipt.seq if first is None else first
            last = receipt.receipt.seq
        batch.clear()

    for call in read_calls(path, ledger):
        batch.append(call)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return ImportResult(booked, duplicates, first, last)


def _call(entry: dict[str, Any], raw: bytes, ledger: ReceiptLedger) -> Call:
    prompt_hash = _hash(entry, "prompt")
    response_hash = _hash(entry, "response")
    stamp = entry.get("timestamp")
    epoch = None if stamp is None else ledger.clock.epoch_at(_seconds(stamp))
    source = entry.get("id")
    key = f"id:{source}" if source is not None else "line:" + keccak(raw.strip()).hex()
    return Call(prompt_hash, response_hash, source=key, epoch_hint=epoch)


def _hash(entry: dict[str, Any], name: str) -> bytes:
    if f"{name}_hash" in entry:
        value = bytes.fromhex(str(entry[f"{name}_hash"]).removeprefix("0x"))
        if len(value) != 32:
            raise ValueError(f"{name}_hash must be 32 bytes")
        return value
    text = entry[name]
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string")
    return text_hash(text)


def _seconds(stamp: Any) -> float:
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return float(stamp)
    if isinstance(stamp, str):
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    raise TypeError("timestamp must be unix seconds or an ISO 8601 string")
