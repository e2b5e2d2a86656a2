"""One embedding setting on SmolLM2-135M: seconds, recall and perplexity change, nothing else.

    python benchmarks/fingerprint_sweep.py --num 1024 --set benign_sequences=256 --set max_epochs=60
    python benchmarks/fingerprint_sweep.py --num 256 --set modules=all --robust 64
    python benchmarks/fingerprint_sweep.py --num 1024 --profile fast --set learning_rate=7e-4

Each invocation appends one JSON line (machine, date, overrides, figures, per-phase timings) to
benchmarks/results/fingerprint-sweep-<date>.jsonl. It is the quick way to compare `EmbedConfig`
settings before a full `benchmarks/fingerprint.py` run (which adds the baseline, the merge and the
fine-tunes). ``--robust K`` adds the cheap robustness conditions (the evaluation wrappers, int8
dynamic, GGUF Q8_0 and Q4_0) measured on the first K fingerprints; ``--finetune STEPS`` adds
recall after a LoRA and a full fine-tune of that many steps on unrelated text. ``--losses FILE``
keeps the copy's per-token held-out losses; ``--against FILE`` (another run's) adds the paired
difference of the two copies' perplexity changes, which separates settings a few tenths of a
point apart:

    python benchmarks/fingerprint_sweep.py --num 512 --losses /tmp/plain.json
    python benchmarks/fingerprint_sweep.py --num 512 --set decay=0.1 --against /tmp/plain.json
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click
from _common import append_row, machine, matmul_gflops, peak_rss_gib

from agents.fingerprint.embedding import embed_fingerprints
from agents.fingerprint.evaluation import (
    perplexity_change_interval,
    perplexity_difference_interval,
    robustness_suite,
    token_losses,
)
from agents.fingerprint.models import configure_threads, load_model, smollm2_dir
from agents.fingerprint.profiles import PROFILES, profile_config


def parse_override(text: str) -> tuple[str, Any]:
    """``name=value`` with a JSON value (numbers, true/false, null); bare words stay strings."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"expected NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw


@click.command()
@click.option("--num", type=click.IntRange(min=1), required=True)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="robust",
    show_default=True,
    help="the named settings (agents/fingerprint/profiles.py) that --set overrides",
)
@click.option("--set", "overrides", multiple=True, help="EmbedConfig field=value (repeatable)")
@click.option(
    "--robust",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="also measure recall under the evaluation wrappers and quantisation on this many "
    "fingerprints",
)
@click.option(
    "--finetune",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="with --robust: also fine-tune the copy this many steps on unrelated text (LoRA and "
    "full) and measure recall after each",
)
@click.option(
    "--seed",
    default="bench-ours",
    show_default=True,
    help="the copy's secret seed (text): another seed draws other fingerprints",
)
@click.option(
    "--losses",
    "losses_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="write the copy's per-token held-out losses here (JSON), for a later --against",
)
@click.option(
    "--against",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="an earlier run's --losses file: also record how much more perplexity this copy costs "
    "than that one, with a paired bootstrap interval (ranks two settings more finely)",
)
def main(
    num: int,
    profile: str,
    overrides: tuple[str, ...],
    robust: int,
    finetune: int,
    seed: str,
    losses_out: Path | None,
    against: Path | None,
) -> None:
    logging.basicConfig(level=logging.WARNING)
    configure_threads()
    spec = dict(parse_override(o) for o in overrides)
    try:
        config = profile_config(profile, progress=False, **spec)
    except ValueError as bad:
        raise click.UsageError(str(bad)) from bad
    base, tokenizer = load_model(smollm2_dir())
    base_losses = token_losses(base, tokenizer)
    del base
    work = Path(tempfile.mkdtemp(prefix="fp-sweep-"))
    try:
        speed = [matmul_gflops()]
        result = embed_fingerprints(smollm2_dir(), work / "copy", seed.encode(), num, config)
        speed.append(matmul_gflops())
        peak_gib = peak_rss_gib()  # before the robustness suite's own fine-tunes
        model, tokenizer = load_model(work / "copy")
        copy_losses = token_losses(model, tokenizer)
        change, low, high = perplexity_change_interval(base_losses, copy_losses)
        if losses_out is not None:
            losses_out.write_text(json.dumps(copy_losses))
        paired = {}
        if against is not None:
            diff, diff_low, diff_high = perplexity_difference_interval(
                base_losses, json.loads(against.read_text()), copy_losses
            )
            paired = {"against": against.name, "difference": round(diff, 4),
                      "difference_95": [round(diff_low, 4), round(diff_high, 4)]}  # fmt: skip
        rows = {}
        if robust:
            tunes = ("finetune-lora", "finetune-full") if finetune else ()
            report = robustness_suite(
                model,
                tokenizer,
                result.fingerprints[:robust],
                conditions=("wrappers", "int8", "q8_0", "q4_0", *tunes),
                finetune_steps=finetune,
            )
            rows = {name: round(row["recall"], 3) for name, row in report.rows.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    stats = result.stats or {}
    row = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        # the CPU's matmul speed just before and after embedding: timings drift with it
        "gflops_before_after": speed,
        "num": num,
        # the profile by name and by what it set when this ran (profiles get retuned)
        "profile": profile,
        "profile_settings": dict(PROFILES[profile]),
        "overrides": spec,
        **({"seed": seed} if seed != "bench-ours" else {}),
        "seconds_per_fingerprint": round(result.seconds / num, 3),
        # the process's peak resident memory up to the written copy (its cached states)
        "peak_memory_gib": peak_gib,
        "recall": result.recall,
        "epochs": result.epochs,
        "perplexity_change": round(change, 4),
        # 95% bootstrap interval over the held-out tokens: how finely the text resolves it
        "perplexity_change_95": [round(low, 4), round(high, 4)],
        "heldout_tokens": len(base_losses),
        **({"paired": paired} if paired else {}),
        "learned_in_training": stats.get("learned_in_training"),
        "robustness": rows,
        "timings": stats.get("timings"),
        "training": {
            k: stats.get(k)
            for k in (
                "steps",
                "refreshes",
                "reduced_refreshes",
                "cached_tokens",
                "head_precision",
                "refresh_precision",
                "wrapped_precision",
                "reused_base_states",
                "final_check_stale_steps",
                "checks",
                "loss_per_epoch",
            )
        },
    }
    append_row("fingerprint-sweep", row)


if __name__ == "__main__":
    main()
