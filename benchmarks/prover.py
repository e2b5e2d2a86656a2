"""Prover benchmarks → benchmarks/results/prover-<date>.json and .md.

1. **Probes per second** against a local host (the tiny test model behind the real
   OpenAI-compatible server, receipts signed and fsynced per call): the prover's whole
   per-probe path — request, response, receipt signature recovered and checked against the
   deployment's domain and the copy's host, receipt stored in the prover's SQLite state.
2. **Leak to slash** on Anvil with the DEV windows (liveness 120 s), in real time: the
   oracle delivers two fingerprinted copies, one leaks to an unregistered endpoint, the prover
   runs on its APScheduler schedule and is timed from the moment the rogue endpoint comes up
   to the slash. Anvil gets a block every 2 s (an L2-like chain), since reveal waits for one
   confirmation on top of the commit.
3. **False-positive probability** of each accusation (per copy and family-wise over the
   copies tested together), plus a control: an endpoint serving the *unfingerprinted* base
   model, probed the same way — how many keys it matches by chance.

    python benchmarks/prover.py [--probes 200] [--skip-leak]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import ROOT, machine, write_results

sys.path.insert(0, str(ROOT / "tests" / "prover"))
sys.path.insert(0, str(ROOT / "tests" / "host"))

VC = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


# --------------------------------------------------------------------------- 1. probes/s


def bench_probes(count: int, max_tokens: int) -> dict[str, Any]:
    from proverkit import free_port, serve
    from tiny_model import tiny_model_dir
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agents.chain.keystore import dev_account, public_key_bytes
    from agents.host.api import ServingConfig, create_app
    from agents.host.epochs import EpochClock
    from agents.host.inference import InferenceEngine
    from agents.host.ledger import ReceiptLedger, ReceiptSigner
    from agents.host.metering import Metering
    from agents.prover.probing import EndpointClient, check_receipt, schedule
    from agents.prover.state import KeyMaterial, ProverState

    folder = tiny_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    host, prover = dev_account(6), dev_account(4)
    tmp = Path(tempfile.mkdtemp(prefix="prover-bench-"))
    ledger = ReceiptLedger(
        tmp / "receipts.sqlite3",
        copy_id=1,
        signer=ReceiptSigner(host, 31337, VC),
        clock=EpochClock(0, 3600),
    )
    config = ServingConfig("bench", 1, host.address, 31337, VC, max_tokens_limit=64)
    server = serve(
        create_app(InferenceEngine(model, tokenizer), Metering(ledger), config), free_port()
    )
    state = ProverState.open(
        tmp / "prover.sqlite3",
        public_key=public_key_bytes(prover),
        private_key=bytes(prover.key),
        chain_id=31337,
    )
    rng = random.Random(0)
    words = [
        "river",
        "table",
        "orange",
        "quiet",
        "seven",
        "violin",
        "paper",
        "cloud",
        "summer",
        "engine",
    ]
    keys = [
        KeyMaterial(1, i, " ".join(rng.choices(words, k=12)), "x", b"\0" * 32, [])
        for i in range(count // 4)
    ]
    items = schedule(keys, count - len(keys), rng)
    latencies, checks, stores = [], [], []
    try:
        with EndpointClient(server.url, timeout_s=60) as client:
            client.complete(items[0], max_tokens)  # warm-up
            started = time.perf_counter()
            for item in items:
                exchange = client.complete(item, max_tokens)
                latencies.append(exchange.seconds)
                assert exchange.text is not None and exchange.receipt is not None, exchange
                t0 = time.perf_counter()
                checked = check_receipt(
                    exchange.receipt,
                    prompt=item.prompt,
                    text=exchange.text,
                    copy_id=1,
                    host=host.address,
                    chain_id=31337,
                    verifying_contract=VC,
                )
                t1 = time.perf_counter()
                assert checked.valid and not checked.problems, checked.problems
                r = checked.receipt
                state.add_receipt(
                    copy_id=1,
                    epoch=r.epoch,
                    seq=r.seq,
                    prompt_hash=r.prompt_hash,
                    response_hash=r.response_hash,
                    signature=checked.signature,
                    endpoint=server.url,
                    observed_epoch=r.epoch,
                )
                checks.append(t1 - t0)
                stores.append(time.perf_counter() - t1)
            elapsed = time.perf_counter() - started
    finally:
        server.stop()
    latencies.sort()
    return {
        "probes": len(items),
        "keysMixedIn": len(keys),
        "maxTokens": max_tokens,
        "seconds": round(elapsed, 2),
        "probesPerSecond": round(len(items) / elapsed, 1),
        "latencyP50ms": round(1000 * statistics.median(latencies), 1),
        "latencyP99ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "receiptCheckMs": round(1000 * statistics.mean(checks), 3),
        "receiptStoreMs": round(1000 * statistics.mean(stores), 3),
    }


# --------------------------------------------------------------------------- 2. leak → slash


def bench_leak_to_slash() -> dict[str, Any]:
    from ape import accounts, chain, networks

    with networks.parse_network_choice("ethereum:local:foundry"):
        return _leak_to_slash(accounts.test_accounts, chain)


def _leak_to_slash(test_accounts: Any, chain: Any) -> dict[str, Any]:
    from proverkit import build_world, free_port, serve
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from agents.host.api import ServingConfig, create_app
    from agents.host.inference import InferenceEngine

    root = Path(tempfile.mkdtemp(prefix="prover-bench-world-"))
    env: dict[str, str] = {}

    def setenv(name: str, value: str) -> None:
        env[name] = os.environ.get(name, "")
        os.environ[name] = value

    t_world = time.perf_counter()
    world = build_world(test_accounts, chain, root, setenv)
    world_seconds = time.perf_counter() - t_world
    stop = threading.Event()

    def blocks() -> None:  # a live chain: one block every 2 s
        while not stop.wait(2.0):
            world.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    miner = threading.Thread(target=blocks, daemon=True)
    miner.start()
    prover = world.prover(
        root / "prover",
        host_probe_calls=0,
        host_probe_keys=0,
        challenge_missed_reports=False,
        watch_interval_s=10.0,
        challenge_interval_s=2.0,
        sync_interval_s=5.0,
    )

    # control: the unfingerprinted base model on another unregistered endpoint
    tokenizer = AutoTokenizer.from_pretrained(root / "base")
    base = AutoModelForCausalLM.from_pretrained(root / "base").eval()
    clean_config = ServingConfig(
        "clean-llm",
        0,
        "0x" + "00" * 20,
        world.chain_id,
        world.challenge_manager,
        max_tokens_limit=64,
    )
    clean = serve(create_app(InferenceEngine(base, tokenizer), None, clean_config), free_port())
    control = prover.probe_endpoint(clean.url)
    control_matches = _control_matches(prover, clean.url)
    clean.stop()

    scheduler = None
    try:
        leak_at = time.time()
        rogue = world.rogue("a")
        prover.state.add_watch(rogue.url, None, None)
        scheduler = prover.start()
        marks: dict[str, float] = {}
        deadline = time.time() + 900
        while time.time() < deadline:
            rows = prover.state.challenges(kind="leak")
            if rows:
                row = rows[0]
                marks.setdefault("detected+committing", time.time())
                if row.state in ("committed", "revealed", "upheld"):
                    marks.setdefault("committed", time.time())
                if row.state in ("revealed", "upheld"):
                    marks.setdefault("revealed", time.time())
                if row.state == "upheld":
                    marks.setdefault("slashed", time.time())
                    break
            time.sleep(0.5)
        rogue.stop()
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
        stop.set()
        world.key_service.stop()
        (ROOT / "deployments" / f"{world.network}.json").unlink(missing_ok=True)
        for name, old in env.items():
            os.environ[name] = old
    detections = prover.state.detections()
    accused = [d for d in detections if d["accused"]]
    return {
        "worldSetupSeconds": round(world_seconds, 1),
        "windows": {
            k: world.params[k]
            for k in ("epoch_length", "reveal_window", "liveness", "arbitration_window")
        },
        "blockTimeSeconds": 2.0,
        "schedule": {"watchIntervalS": 10.0, "challengeIntervalS": 2.0},
        "leakToSlashSeconds": round(marks["slashed"] - leak_at, 1) if "slashed" in marks else None,
        "phases": {k: round(v - leak_at, 1) for k, v in marks.items()},
        "accusations": [
            {
                "copyId": d["copyId"],
                "matched": d["matched"],
                "queried": d["queried"],
                "falsePositiveProbability": d["falsePositiveProbability"],
                "copiesTested": d["copiesTested"],
                "familyFalsePositiveBound": d["falsePositiveProbability"] * d["copiesTested"],
                "threshold": d["threshold"],
            }
            for d in accused
        ],
        "notAccused": [
            {
                "copyId": d["copyId"],
                "matched": d["matched"],
                "queried": d["queried"],
                "falsePositiveProbability": d["falsePositiveProbability"],
            }
            for d in detections
            if not d["accused"]
        ],
        "control": {
            "endpoint": "unfingerprinted base model",
            "decisions": control,
            **control_matches,
        },
    }


def _control_matches(prover: Any, url: str) -> dict[str, Any]:
    """Every key the control endpoint was asked, and how many it matched by chance."""
    rows = prover.state.query(
        "SELECT COUNT(*), COALESCE(SUM(matched), 0) FROM probe WHERE endpoint = ? "
        "AND key_index IS NOT NULL",
        (url,),
    )
    asked, matched = int(rows[0][0]), int(rows[0][1])
    return {
        "keysAsked": asked,
        "keysMatched": matched,
        "observedChanceRate": matched / asked if asked else None,
    }


# --------------------------------------------------------------------------- report


def render(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"# Prover benchmark — {result['date'][:10]}",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['platform']}, "
        f"Python {m['python']}, torch {m.get('torch', '-')}; load average at the end "
        f"{m['load_average']} (shared machine).",
        "",
        "## Probes per second against a local host",
        "",
        "Tiny 2-layer Llama behind the real host server (receipts signed + fsynced per call);"
        " the prover sends one request at a time, checks each receipt's EIP-712 signature "
        "against the copy's host and stores it.",
        "",
        "| max_tokens | probes | probes/s | p50 ms | p99 ms | receipt check ms | store ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in result["probes"]:
        lines.append(
            f"| {p['maxTokens']} | {p['probes']} | {p['probesPerSecond']} | "
            f"{p['latencyP50ms']} | {p['latencyP99ms']} | {p['receiptCheckMs']} | "
            f"{p['receiptStoreMs']} |"
        )
    leak = result.get("leak")
    if leak:
        lines += [
            "",
            "## Leak to slash on Anvil (DEV windows, real time)",
            "",
            f"Windows: {leak['windows']}; a block every {leak['blockTimeSeconds']} s; prover "
            f"schedule {leak['schedule']}. World setup (deploy, oracle fingerprints and delivers "
            f"2 copies of 32 fingerprints) took {leak['worldSetupSeconds']} s.",
            "",
            f"**Leak to slash: {leak['leakToSlashSeconds']} s** (rogue endpoint up → "
            f"copy slashed); phases (s after the leak): {leak['phases']}. The liveness window "
            f"({leak['windows']['liveness']} s) is the floor.",
            "",
            "## False-positive probability of each accusation",
            "",
            "| copy | matched / queried | P(false positive) | copies tested | family bound "
            "| threshold per copy |",
            "|---|---|---|---|---|---|",
        ]
        for a in leak["accusations"]:
            lines.append(
                f"| {a['copyId']} | {a['matched']}/{a['queried']} | "
                f"{a['falsePositiveProbability']:.2e} | {a['copiesTested']} | "
                f"{a['familyFalsePositiveBound']:.2e} | {a['threshold']:.1e} |"
            )
        c = leak["control"]
        lines += [
            "",
            f"Control (an endpoint serving the unfingerprinted base model): {c['keysMatched']} "
            f"of {c['keysAsked']} keys matched by chance (observed rate "
            f"{c['observedChanceRate']}; the decision rule assumes at most 0.1); "
            f"accusations: {sum(d['accused'] for d in c['decisions'])}.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--skip-leak", action="store_true")
    args = parser.parse_args()
    result: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    result["probes"] = [bench_probes(args.probes, 16), bench_probes(args.probes, 4)]
    print(json.dumps(result["probes"], indent=1))
    if not args.skip_leak:
        result["leak"] = bench_leak_to_slash()
        print(json.dumps(result["leak"], indent=1))
    result["machine"] = machine()  # after the runs: torch is loaded, the load is the run's
    write_results("prover", result, render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
