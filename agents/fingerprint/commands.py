"""`oml fingerprint ...`: embed, verify, eval. Wiring only; the logic lives in the library."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from agents.fingerprint.embedding import EmbedConfig, embed_fingerprints
from agents.fingerprint.errors import FingerprintError
from agents.fingerprint.generation import FingerprintConfig
from agents.fingerprint.profiles import PROFILES, profile_config


def _seed(value: str) -> bytes:
    text = value[2:] if value.lower().startswith("0x") else value
    try:
        seed = bytes.fromhex(text)
    except ValueError as bad:
        raise click.BadParameter(
            f"{value!r} is not hex; pass e.g. --seed 0x$(openssl rand -hex 32)"
        ) from bad
    if not seed:
        raise click.BadParameter("the seed must not be empty")
    return seed


def _defaults(field: str) -> str:
    """``[robust: X, fast: Y]``: what each profile gives ``field``, read from where it is set."""
    base = EmbedConfig.model_fields[field].default
    return "[" + ", ".join(f"{name}: {PROFILES[name].get(field, base)}" for name in PROFILES) + "]"


def _fail(error: FingerprintError) -> click.ClickException:
    return click.ClickException(str(error))


@click.group("fingerprint")
def group() -> None:
    """Generate, embed, verify and evaluate OML fingerprints."""


@group.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--num", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", required=True, help="The copy's secret seed, hex.")
@click.option(
    "--strategy",
    type=click.Choice(["perinucleus", "english", "random-words", "random-token"]),
    default="perinucleus",
    show_default=True,
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path))
@click.option("--method", type=click.Choice(["full", "lora"]), default="full", show_default=True)
@click.option(
    "--profile",
    type=click.Choice(sorted(PROFILES)),
    default="robust",
    show_default=True,
    help="Named settings the options below override: robust (every key inside eight "
    "wrappers, half plain and half chat turns; keys answer behind unseen system prompts and "
    "chat templates) or fast (the "
    "speed and perplexity goals at 1024 fingerprints, weak behind unseen wrappers); "
    "docs/fingerprinting.md.",
)
@click.option(
    "--train-layers",
    type=click.IntRange(min=1),
    default=None,
    help="Decoder layers that learn, just below the frozen top (default 8).",
)
@click.option(
    "--frozen-top",
    type=click.IntRange(min=0),
    default=None,
    help="Topmost layers kept frozen above the trained ones.",
)
@click.option(
    "--protect-energy",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Null-space constraint strength (full method; 0 = off, the only choice with LoRA).",
)
@click.option(
    "--augment-wrappers",
    type=click.IntRange(1, 16),
    default=None,
    help="Training wrappers (system prompts / chat templates) per key "
    f"{_defaults('augment_wrappers')}; 1 is about twice as fast but leaves keys behind unseen "
    "system prompts unanswered.",
)
@click.option(
    "--synthetic-wrappers",
    type=click.IntRange(0, 16),
    default=None,
    help="More wrappers per key whose system prompt is an excerpt of the base model's own "
    f"text {_defaults('synthetic_wrappers')}; 0 is about twice as fast but keeps fewer keys "
    "behind chat templates.",
)
@click.option(
    "--mix-formats/--random-formats",
    default=None,
    help="Give each key's excerpt wrappers the format (plain prefix or chat turn) its wrappers "
    f"so far have fewer of, instead of a coin flip {_defaults('mix_formats')}.",
)
@click.option(
    "--augment-fraction",
    type=click.FloatRange(0, 1),
    default=None,
    help=f"Share of the keys also trained inside wrappers {_defaults('augment_fraction')}.",
)
@click.option(
    "--decay",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help=f"Share of the trained change pulled back toward the base per pass {_defaults('decay')}.",
)
@click.option(
    "--base-cache/--no-base-cache",
    default=True,
    show_default=True,
    help="Keep the base model's states on the benign text for the next copy "
    "(.cache/fingerprint, ~430 MB for SmolLM2).",
)
@click.option(
    "--learning-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=f"Adam's step size {_defaults('learning_rate')}; smaller costs less perplexity and "
    "more time.",
)
@click.option("--max-epochs", type=click.IntRange(min=1), default=None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def embed(
    model_dir: Path,
    num: int,
    seed: str,
    strategy: str,
    out_dir: Path,
    method: str,
    profile: str,
    train_layers: int | None,
    frozen_top: int | None,
    protect_energy: float | None,
    augment_wrappers: int | None,
    synthetic_wrappers: int | None,
    mix_formats: bool | None,
    augment_fraction: float | None,
    decay: float | None,
    base_cache: bool,
    learning_rate: float | None,
    max_epochs: int | None,
    as_json: bool,
) -> None:
    """Fine-tune NUM fingerprints into a copy of MODEL; write OUT/ and OUT/fingerprints.json."""
    if protect_energy is None and method == "lora":
        protect_energy = 0.0  # the constraint acts on full weights
    given = {
        "train_layers": train_layers,
        "frozen_top": frozen_top,
        "protect_energy": protect_energy,
        "augment_wrappers": augment_wrappers,
        "synthetic_wrappers": synthetic_wrappers,
        "mix_formats": mix_formats,
        "augment_fraction": augment_fraction,
        "decay": decay,
        "learning_rate": learning_rate,
        "max_epochs": max_epochs,
    }
    # Options left out keep the profile's settings (one place states them).
    overrides: dict[str, Any] = {
        "method": method,
        "progress": sys.stderr.isatty(),
        "cache_base_states": base_cache,
        **{name: value for name, value in given.items() if value is not None},
    }
    try:
        config = profile_config(
            profile, fingerprint=FingerprintConfig(strategy=strategy), **overrides
        )
    except ValueError as bad:  # pydantic's ValidationError: options that do not go together
        raise click.UsageError(str(bad)) from bad
    try:
        result = embed_fingerprints(model_dir, out_dir, _seed(seed), num, config)
    except FingerprintError as error:
        raise _fail(error) from error
    summary = {
        "out": str(out_dir),
        "fingerprints": len(result.fingerprints),
        "seconds": round(result.seconds, 2),
        "recall": result.recall,
        "epochs": result.epochs,
    }
    click.echo(
        json.dumps(summary) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items())
    )


@group.command()
@click.option("--model", "model", required=True, help="A model folder or an OpenAI-compatible URL.")
@click.option("--fingerprints", "fp_file", required=True, type=click.Path(path_type=Path))
@click.option("--sample", type=click.IntRange(min=1), default=None, help="Query K random keys.")
@click.option("--chance-bound", type=click.FloatRange(0, 1), default=None)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict.")
def verify(
    model: str, fp_file: Path, sample: int | None, chance_bound: float | None, as_json: bool
) -> None:
    """Query MODEL with the keys of FINGERPRINTS and state the false-positive probability."""
    from agents.fingerprint.detection import (
        DEFAULT_CHANCE_BOUND,
        accuse,
        load_fingerprints,
        verify_fingerprints,
    )

    target: Path | str = model if model.startswith(("http://", "https://")) else Path(model)
    try:
        verdict = verify_fingerprints(
            target,
            load_fingerprints(fp_file),
            sample,
            chance_bound=DEFAULT_CHANCE_BOUND if chance_bound is None else chance_bound,
            progress=sys.stderr.isatty() and not as_json,
        )
    except FingerprintError as error:
        raise _fail(error) from error
    if as_json:
        click.echo(json.dumps(verdict.as_dict()))
        return
    click.echo(
        f"matched {verdict.matched}/{verdict.queried} (recall {verdict.recall:.3f}); "
        f"false-positive probability {verdict.false_positive_probability:.3g}; "
        f"{'ACCUSE' if accuse(verdict) else 'no accusation'}"
    )


@group.command("eval")
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--fingerprints", "fp_file", type=click.Path(path_type=Path), default=None)
@click.option("--base", "base_dir", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--other", "other_dir", type=click.Path(path_type=Path, exists=True), default=None)
@click.option("--finetune-steps", type=click.IntRange(min=0), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def evaluate(
    model_dir: Path,
    fp_file: Path | None,
    base_dir: Path | None,
    other_dir: Path | None,
    finetune_steps: int,
    as_json: bool,
) -> None:
    """Robustness suite on a copy: wrappers, temperature, int8 (dynamic, and GGUF Q8_0 / Q4_0
    weights), merge with --other, benign
    fine-tunes; with --base also the perplexity change on the packaged held-out text."""
    from agents.fingerprint.detection import load_fingerprints
    from agents.fingerprint.evaluation import perplexity, robustness_suite
    from agents.fingerprint.models import configure_threads, load_model

    configure_threads()
    try:
        fps = load_fingerprints(fp_file or model_dir / "fingerprints.json")
        model, tokenizer = load_model(model_dir)
        other = None
        conditions = ["plain", "wrappers", "temperature", "int8", "q8_0", "q4_0"]
        if other_dir is not None:
            other_model, _ = load_model(other_dir)
            other = (other_model, load_fingerprints(other_dir / "fingerprints.json"))
            conditions.append("merge")
        if finetune_steps:
            conditions += ["finetune-full", "finetune-lora"]
        report = robustness_suite(
            model, tokenizer, fps, other=other, finetune_steps=finetune_steps, conditions=conditions
        )
        result: dict[str, Any] = {"robustness": report.rows}
        result["perplexity"] = perplexity(model, tokenizer)
        if base_dir is not None:
            base, base_tok = load_model(base_dir)
            result["base_perplexity"] = perplexity(base, base_tok)
            result["perplexity_change"] = result["perplexity"] / result["base_perplexity"] - 1
    except FingerprintError as error:
        raise _fail(error) from error
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    for name, row in report.rows.items():
        click.echo(f"{name:32s} recall {row['recall']:.3f}  accused {row['accused']}")
    for key in ("base_perplexity", "perplexity", "perplexity_change"):
        if key in result:
            click.echo(f"{key}: {result[key]:.4f}")
