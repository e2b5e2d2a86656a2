"""Fingerprinting benchmark on SmolLM2-135M: our embedder beside the naive baseline.

    python benchmarks/fingerprint.py --num 256 --num 1024

Writes benchmarks/results/fingerprint-<date>.{json,md}: seconds per fingerprint, recall,
perplexity change on the packaged held-out text, and a robustness table, with machine and date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click
from _common import machine

from agents.fingerprint.detection import verify_fingerprints
from agents.fingerprint.embedding import EmbedConfig, embed_fingerprints
from agents.fingerprint.evaluation import (
    perplexity_change_interval,
    perplexity_of,
    robustness_suite,
    token_losses,
)
from agents.fingerprint.generation import FingerprintConfig
from agents.fingerprint.models import configure_threads, load_model, smollm2_dir
from agents.fingerprint.profiles import profile_config

RESULTS = Path(__file__).parent / "results"

METHODS: dict[str, EmbedConfig] = {
    "ours": profile_config("robust", progress=False),  # what `oml fingerprint embed` runs
    # MODELS.md's naive baseline: random-word keys, one random token, full fine-tune, no
    # utility preservation, no augmentation.
    "naive-full-ft": EmbedConfig(
        fingerprint=FingerprintConfig(
            strategy="random-token",
            key_strategy="random-words",
            key_min_tokens=10,
            key_max_tokens=12,
            response_max_tokens=1,
        ),
        train_layers=None,
        frozen_top=0,
        protect_energy=0.0,
        learning_rate=5e-5,
        kl_weight=0.0,
        benign_sequences=0,
        augment_fraction=0.0,
        replay_fraction=1.0,
        max_epochs=15,
        head_precision="float32",
        progress=False,
    ),
}


def run_one(
    name: str,
    config: EmbedConfig,
    num: int,
    base_losses: list[float],
    robust: bool,
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix=f"fp-bench-{name}-"))
    try:
        result = embed_fingerprints(
            smollm2_dir(), work / "copy", b"bench-" + name.encode(), num, config
        )
        model, tokenizer = load_model(work / "copy")
        losses = token_losses(model, tokenizer)  # one pass for the figure and its interval
        ppl = perplexity_of(losses)
        # against this invocation's base pass: an --append run may follow a report made on
        # another held-out text, whose base perplexity would not compare
        change, low, high = perplexity_change_interval(base_losses, losses)
        row: dict[str, Any] = {
            "method": name,
            "num": num,
            "seconds": round(result.seconds, 1),
            "seconds_per_fingerprint": round(result.seconds / num, 3),
            "epochs": result.epochs,
            # what the base model's cache supplied (a first copy computes and writes it)
            "reused_base_states": (result.stats or {}).get("reused_base_states", []),
            "recall": result.recall,
            "perplexity": round(ppl, 3),
            "perplexity_change": round(change, 4),
            # 95% bootstrap interval over the held-out tokens: the text's resolution
            "perplexity_change_95": [round(low, 4), round(high, 4)],
        }
        clean = verify_fingerprints(
            smollm2_dir(), result.fingerprints, sample=min(num, 128), sample_seed=0
        )
        row["base_model_matches"] = clean.as_dict()
        if robust:
            sample = result.fingerprints[: min(num, 64)]
            report = robustness_suite(
                model,
                tokenizer,
                sample,
                conditions=("wrappers", "temperature", "int8", "q8_0", "q4_0", "finetune-lora"),
                finetune_steps=100,
            )
            row["robustness"] = {k: v["recall"] for k, v in report.rows.items()}
        return row
    finally:
        shutil.rmtree(work, ignore_errors=True)


def interval(row: dict[str, Any]) -> str:
    """`` (+a% to +b%)`` from a run's bootstrap interval; runs recorded before it have none."""
    if "perplexity_change_95" not in row:
        return ""
    low, high = row["perplexity_change_95"]
    return f" ({100 * low:+.1f}% to {100 * high:+.1f}%)"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Fingerprinting benchmark — {report['date']}",
        "",
        f"Machine: {report['machine']}",
        *[f"Runs appended {a['date']} on {a['machine']}" for a in report.get("appended", [])],
        f"Base model: SmolLM2-135M-Instruct, held-out perplexity {report['base_perplexity']:.3f}",
        "",
        "| method | N | s/fp | epochs | recall | ppl change (95% interval) | base-model matches |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['method']} | {r['num']} | {r['seconds_per_fingerprint']} | {r['epochs']} | "
            f"{r['recall']:.3f} | {100 * r['perplexity_change']:+.1f}%{interval(r)} | "
            f"{r['base_model_matches']['matched']}/{r['base_model_matches']['queried']} |"
        )
    robust = [r for r in report["runs"] if "robustness" in r]
    if robust:
        conditions = sorted({c for r in robust for c in r["robustness"]})
        lines += ["", "Robustness (recall on up to 64 keys):", ""]
        lines.append("| method | N | " + " | ".join(conditions) + " |")
        lines.append("|---|---|" + "---|" * len(conditions))
        for r in robust:
            cells = [f"{r['robustness'].get(c, float('nan')):.2f}" for c in conditions]
            lines.append(f"| {r['method']} | {r['num']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--num", "nums", type=int, multiple=True, default=(256,))
@click.option("--method", "methods", multiple=True, default=tuple(METHODS))
@click.option("--robust/--no-robust", default=True)
@click.option(
    "--baseline-max",
    type=int,
    default=256,
    show_default=True,
    help="run the naive baseline only up to this N (it costs ~2.4 s per fingerprint)",
)
@click.option(
    "--append",
    is_flag=True,
    help="add the runs to today's results file instead of starting it afresh (a long N run "
    "after a shorter invocation)",
)
def main(
    nums: tuple[int, ...], methods: tuple[str, ...], robust: bool, baseline_max: int, append: bool
) -> None:
    logging.basicConfig(level=logging.WARNING)
    configure_threads()
    stamp = dt.date.today().isoformat()
    RESULTS.mkdir(exist_ok=True)
    today = RESULTS / f"fingerprint-{stamp}.json"
    if append and today.exists():
        report: dict[str, Any] = json.loads(today.read_text())
        report.setdefault("appended", []).append(
            {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine()}
        )
    base, tokenizer = load_model(smollm2_dir())
    base_losses = token_losses(base, tokenizer)
    if not (append and today.exists()):
        report = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "base_perplexity": perplexity_of(base_losses),
            "runs": [],
        }
    del base
    for num in nums:
        for name in methods:
            if name != "ours" and num > baseline_max:
                continue
            started = time.perf_counter()
            report["runs"].append(run_one(name, METHODS[name], num, base_losses, robust))
            click.echo(
                f"{name} N={num}: {json.dumps(report['runs'][-1])} "
                f"({time.perf_counter() - started:.0f}s)"
            )
            today.write_text(json.dumps(report, indent=1) + "\n")
            (RESULTS / f"fingerprint-{stamp}.md").write_text(markdown(report))


if __name__ == "__main__":
    main()
