"""Host node throughput and latency with receipts + metering on vs off, in one run.

Two real servers (uvicorn, same process, same tiny model weights) are driven alternately by
the same load (concurrent clients, short generations); rounds alternate off/on so a noisy
shared machine hurts both equally. Separately, the per-call cost of a receipt is timed:
EIP-712 signing alone, and allocate + sign + SQLite WAL commit (fsync) as the server does it.

    python benchmarks/host.py [--requests 300] [--clients 16] [--rounds 3] [--max-tokens 8]

Writes benchmarks/results/host-<date>.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "host"))
sys.path.insert(0, str(ROOT))

from _common import machine  # noqa: E402
from tiny_model import tiny_model_dir  # noqa: E402

from agents.chain.keystore import dev_account  # noqa: E402
from agents.chain.receipts import Receipt  # noqa: E402
from agents.host.api import ServingConfig, create_app  # noqa: E402
from agents.host.epochs import EpochClock  # noqa: E402
from agents.host.inference import InferenceEngine  # noqa: E402
from agents.host.ledger import Call, ReceiptLedger, ReceiptSigner  # noqa: E402
from agents.host.metering import Metering  # noqa: E402

VC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


def start_server(model: Any, tokenizer: Any, ledger: ReceiptLedger | None) -> tuple[str, Any]:
    engine = InferenceEngine(model, tokenizer, max_batch_size=8)
    config = ServingConfig("bench", 1, dev_account(2).address, 31337, VC, max_tokens_limit=64)
    app = create_app(engine, Metering(ledger) if ledger else None, config)
    with __import__("socket").socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", (server, thread)


async def load(url: str, requests: int, clients: int, max_tokens: int) -> dict[str, float]:
    latencies: list[float] = []
    counter = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for i in counter:
            body = {
                "model": "bench",
                "prompt": f"request {i} says",
                "max_tokens": max_tokens,
                "temperature": 0,
            }
            start = time.perf_counter()
            response = await http.post(url + "/v1/completions", json=body)
            response.raise_for_status()
            latencies.append(time.perf_counter() - start)

    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=clients)) as h:
        start = time.perf_counter()
        await asyncio.gather(*(client(h) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "requests_per_s": requests / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def receipt_costs(path: Path, calls: int = 500) -> dict[str, float]:
    signer = ReceiptSigner(dev_account(2), 31337, VC)
    receipt = Receipt.for_call(1, 0, 1, "prompt", "response")
    start = time.perf_counter()
    for _ in range(calls):
        signer.sign(receipt)
    sign_ms = 1000 * (time.perf_counter() - start) / calls
    ledger = ReceiptLedger(path, copy_id=1, signer=signer, clock=EpochClock(0, 3600))
    call = Call(receipt.prompt_hash, receipt.response_hash)
    start = time.perf_counter()
    for _ in range(calls):
        ledger.issue([call])
    one_ms = 1000 * (time.perf_counter() - start) / calls
    start = time.perf_counter()
    for _ in range(calls // 8):
        ledger.issue([call] * 8)
    group_ms = 1000 * (time.perf_counter() - start) / (calls // 8 * 8)
    ledger.close()
    relaxed = ReceiptLedger(
        path.with_suffix(".normal"), copy_id=1, signer=signer, clock=ledger.clock, durable=False
    )
    start = time.perf_counter()
    for _ in range(calls):
        relaxed.issue([call])
    normal_ms = 1000 * (time.perf_counter() - start) / calls
    relaxed.close()
    return {
        "sign_ms": sign_ms,
        "sign_and_commit_fsync_ms": one_ms,
        "sign_and_commit_fsync_grouped8_ms_per_call": group_ms,
        "sign_and_commit_no_fsync_ms": normal_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ledger = ReceiptLedger(
            Path(tmp) / "bench.sqlite3",
            copy_id=1,
            signer=ReceiptSigner(dev_account(2), 31337, VC),
            clock=EpochClock(0, 3600),
        )
        off_url, off = start_server(model, tokenizer, None)
        on_url, on = start_server(model, tokenizer, ledger)
        asyncio.run(load(off_url, 40, args.clients, args.max_tokens))  # warm-up
        asyncio.run(load(on_url, 40, args.clients, args.max_tokens))
        runs: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for name, url in (("off", off_url), ("on", on_url)):
                runs[name].append(
                    asyncio.run(load(url, args.requests, args.clients, args.max_tokens))
                )
        for server, thread in (off, on):
            server.should_exit = True
            thread.join(30)
        costs = receipt_costs(Path(tmp) / "micro.sqlite3")

    summary = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    cost_pct = 100 * (1 - summary["on"]["requests_per_s"] / summary["off"]["requests_per_s"])
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "model": "tiny Llama (2 layers, hidden 64, SmolLM2 tokenizer), CPU fp32",
        "load": {**vars(args), "durable": "SQLite WAL synchronous=FULL"},
        "median_of_rounds": summary,
        "rounds": runs,
        "throughput_cost_pct": cost_pct,
        "receipt_cost": costs,
    }
    out = ROOT / "benchmarks" / "results" / f"host-{dt.date.today().isoformat()}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    md = [
        f"# Host benchmark, {result['date']}",
        "",
        f"Machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
        f"{result['machine']['memory_gib']} GiB, torch {result['machine']['torch']}, "
        f"load average at end {result['machine']['load_average']}.",
        f"Model: {result['model']}. Load: {args.requests} requests × {args.rounds} rounds per "
        f"mode, {args.clients} concurrent clients, max_tokens {args.max_tokens}, greedy.",
        "",
        "| receipts + metering | requests/s | p50 ms | p99 ms |",
        "|---|---|---|---|",
        *(
            f"| {name} | {s['requests_per_s']:.1f} | {s['p50_ms']:.1f} | {s['p99_ms']:.1f} |"
            for name, s in summary.items()
        ),
        "",
        f"Throughput cost of receipts + metering: {cost_pct:.1f}% (goal < 5%).",
        "",
        "| per-call receipt cost | ms |",
        "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in costs.items()),
        "",
        "Goal: signing + persistence < 2 ms per call.",
    ]
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
