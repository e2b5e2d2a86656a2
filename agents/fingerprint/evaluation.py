"""Utility and robustness measurements of a fingerprinted copy.

Utility: perplexity on held-out text that ships with the package (about 10,700 words, 12,400
SmolLM2 tokens of varied prose written for this project, never used in training; before
2026-12-06 evening only its first 803 tokens). Robustness: recall after deployment wrappers,
sampling, int8 dynamic quantisation, llama.cpp-style block quantisation (Q8_0, Q4_0),
weight-averaging two copies, and a short benign fine-tune on unrelated text.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from agents.fingerprint.detection import Verdict, accuse, verify_fingerprints
from agents.fingerprint.errors import ConfigError
from agents.fingerprint.generation import Fingerprint
from agents.fingerprint.prompts import EVAL_WRAPPERS, Wrapper

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


def heldout_text() -> str:
    return resources.files("agents.fingerprint").joinpath("data/heldout.txt").read_text("utf-8")


def token_losses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    text: str | None = None,
    window: int = 256,
) -> list[float]:
    """Per-token negative log-likelihood of ``text`` (default: the held-out text), per
    paragraph, in non-overlapping windows of ``window`` tokens."""
    import torch

    text = text if text is not None else heldout_text()
    losses: list[float] = []
    device = next(model.parameters()).device
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        ids = list(tokenizer(paragraph)["input_ids"])
        for start in range(0, len(ids) - 1, window):
            chunk = torch.tensor([ids[start : start + window]], device=device)
            if chunk.shape[1] < 2:
                continue
            with torch.no_grad():
                logits = model(input_ids=chunk).logits[0, :-1].float()
            nll = torch.nn.functional.cross_entropy(logits, chunk[0, 1:], reduction="none")
            losses += nll.tolist()
    return losses


def perplexity(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    text: str | None = None,
    window: int = 256,
) -> float:
    """Token-level perplexity of ``text`` (default: the held-out text), per paragraph, in
    non-overlapping windows of ``window`` tokens."""
    return perplexity_of(token_losses(model, tokenizer, text, window))


def perplexity_of(losses: Sequence[float]) -> float:
    """Perplexity from per-token losses (:func:`token_losses`)."""
    return math.exp(sum(losses) / max(len(losses), 1))


def perplexity_change_interval(
    base_losses: Sequence[float],
    copy_losses: Sequence[float],
    resamples: int = 2000,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """The copy's perplexity change against the base on the same tokens (their per-token
    losses, :func:`token_losses`) and a bootstrap ``level`` interval over the tokens: how
    finely the text resolves the change (about +-1.5 points on the first 803 held-out tokens,
    about +-0.4 on all 12,400)."""
    import random

    if len(base_losses) != len(copy_losses) or not base_losses:
        raise ValueError("base and copy need per-token losses on the same, non-empty text")
    change = [c - b for b, c in zip(base_losses, copy_losses, strict=True)]
    n = len(change)
    draw = random.Random(0)  # the interval of one pair of copies is reproducible
    means = sorted(sum(change[draw.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    tail = int(resamples * (1 - level) / 2)
    return (
        math.exp(sum(change) / n) - 1,
        math.exp(means[tail]) - 1,
        math.exp(means[resamples - 1 - tail]) - 1,
    )


def perplexity_difference_interval(
    base_losses: Sequence[float],
    first_losses: Sequence[float],
    second_losses: Sequence[float],
    block: int = 64,
    resamples: int = 1000,
    level: float = 0.95,
) -> tuple[float, float, float]:
    """How much more (or less) the second copy's perplexity change is than the first's, in
    points of the base perplexity, with a paired bootstrap ``level`` interval: both copies are
    scored on the same resampled blocks of ``block`` consecutive tokens (neighbouring tokens'
    losses are correlated), so the shared difficulty of the text cancels. Ranks two settings
    far more finely than comparing their separate intervals (at N = 512 on the held-out
    text: about +-0.2 points against +-0.45 for each copy alone)."""
    import random

    n = len(base_losses)
    if not n or len(first_losses) != n or len(second_losses) != n:
        raise ValueError("the base and both copies need per-token losses on the same text")
    starts = range(0, n, block)
    # per block: (tokens, first copy's summed loss change, second's), summed once, not per draw
    sums = [
        (
            min(start + block, n) - start,
            sum(first_losses[i] - base_losses[i] for i in range(start, min(start + block, n))),
            sum(second_losses[i] - base_losses[i] for i in range(start, min(start + block, n))),
        )
        for start in starts
    ]

    def difference(picked: list[int]) -> float:
        tokens = sum(sums[j][0] for j in picked)
        first = math.exp(sum(sums[j][1] for j in picked) / tokens)
        second = math.exp(sum(sums[j][2] for j in picked) / tokens)
        return second - first

    draw = random.Random(0)
    count = len(sums)
    spread = sorted(
        difference([draw.randrange(count) for _ in range(count)]) for _ in range(resamples)
    )
    tail = int(resamples * (1 - level) / 2)
    return difference(list(range(count))), spread[tail], spread[resamples - 1 - tail]


def quantize_int8(model: PreTrainedModel) -> PreTrainedModel:
    """A copy with int8 dynamic quantisation of every Linear layer (what a CPU host might do)."""
    import torch

    quantized = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
        copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8
    )
    return quantized  # type: ignore[no-any-return]


# llama.cpp's Q8_0 and Q4_0 block layouts: 32 weights along the input dimension share one fp16
# scale; Q8_0 stores round(w / d) in [-127, 127] with d = absmax / 127, Q4_0 stores
# min(15, floor(w / d + 8.5)) - 8 with d = (the signed weight of largest magnitude) / -8.
GGUF_BLOCK = 32
BLOCK_FORMATS = ("q8_0", "q4_0")


def quantize_blockwise(model: PreTrainedModel, fmt: str = "q8_0") -> PreTrainedModel:
    """A copy whose Linear weights carry the rounding error of a GGUF ``fmt`` file (the weights
    a llama.cpp or Ollama host would serve), kept in float so the same code can query it.

    Tied weights (SmolLM2's embeddings and output head) are rounded once, as the file stores
    them once. Layers whose input width is not a multiple of 32 stay as they are (llama.cpp
    keeps such tensors unquantised too)."""
    import torch

    if fmt not in BLOCK_FORMATS:
        raise ConfigError(f"unknown block format {fmt!r}: use one of {', '.join(BLOCK_FORMATS)}")
    quantized = copy.deepcopy(model)
    done: set[int] = set()
    with torch.no_grad():
        for module in quantized.modules():
            if not isinstance(module, torch.nn.Linear) or id(module.weight) in done:
                continue
            weight = module.weight
            done.add(id(weight))
            if weight.shape[1] % GGUF_BLOCK:
                continue
            blocks = weight.detach().float().reshape(-1, GGUF_BLOCK)
            if fmt == "q8_0":
                scale = (blocks.abs().amax(dim=1, keepdim=True) / 127).half().float()
                safe = torch.where(scale == 0, torch.ones_like(scale), scale)
                levels = torch.round(blocks / safe).clamp(-127, 127)
            else:
                extreme = blocks.gather(1, blocks.abs().argmax(dim=1, keepdim=True))
                scale = (extreme / -8).half().float()
                safe = torch.where(scale == 0, torch.ones_like(scale), scale)
                levels = torch.floor(blocks / safe + 8.5).clamp(0, 15) - 8
            weight.copy_((levels * scale).reshape(weight.shape).to(weight.dtype))
    return quantized


def average_models(a: PreTrainedModel, b: PreTrainedModel, weight: float = 0.5) -> PreTrainedModel:
    """Weight-average two copies of the same base (the simplest collusion / merge attack)."""
    import torch

    merged = copy.deepcopy(a)
    other = b.state_dict()
    with torch.no_grad():
        for name, value in merged.state_dict().items():
            if value.is_floating_point():
                value.mul_(1 - weight).add_(other[name], alpha=weight)
    return merged


def benign_finetune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    steps: int = 200,
    method: str = "full",
    learning_rate: float = 2e-5,
    text: str | None = None,
    seq_len: int = 64,
    batch_size: int = 4,
    seed: int = 0,
) -> PreTrainedModel:
    """A copy fine-tuned for ``steps`` on unrelated text (what a host might do to adapt it).

    The default text is the prompts module's benign openers continued by nothing: callers pass
    their own corpus; the benchmark uses text the base model generated for unrelated prompts."""
    import random

    import torch

    from agents.fingerprint.prompts import BENIGN_OPENERS

    tuned = copy.deepcopy(model)
    corpus = text or "\n".join(BENIGN_OPENERS)
    ids = list(tokenizer(corpus)["input_ids"])
    if len(ids) <= seq_len:
        ids = ids * (seq_len // max(len(ids), 1) + 2)
    if method == "lora":
        from peft import LoraConfig, get_peft_model

        tuned = get_peft_model(
            tuned,
            LoraConfig(
                r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]
            ),
        )
        learning_rate = max(learning_rate, 1e-4)
    params = [p for p in tuned.parameters() if p.requires_grad] or list(tuned.parameters())
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=learning_rate)
    rng = random.Random(seed)
    tuned.train()
    for _ in range(steps):
        starts = [rng.randrange(0, len(ids) - seq_len) for _ in range(batch_size)]
        batch = torch.tensor([ids[s : s + seq_len] for s in starts])
        loss = tuned(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    tuned.eval()
    if method == "lora":
        tuned = tuned.merge_and_unload()
    for p in tuned.parameters():
        p.requires_grad_(False)
    return tuned


@dataclass
class RobustnessReport:
    """Recall per condition (and whether each would still be accused)."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, name: str, verdict: Verdict) -> None:
        self.rows[name] = {**verdict.as_dict(), "accused": accuse(verdict)}


def robustness_suite(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    fingerprints: Sequence[Fingerprint],
    *,
    other: tuple[PreTrainedModel, Sequence[Fingerprint]] | None = None,
    wrappers: Sequence[Wrapper] = EVAL_WRAPPERS,
    finetune_steps: int = 200,
    finetune_text: str | None = None,
    conditions: Sequence[str] = (
        "plain",
        "wrappers",
        "temperature",
        "int8",
        "q8_0",
        "q4_0",
        "merge",
        "finetune-full",
        "finetune-lora",
    ),
    progress: bool = False,
) -> RobustnessReport:
    """Recall of ``fingerprints`` in ``model`` under each condition. ``other`` is a second copy
    (model, its fingerprints) of the same base for the merge condition."""
    report = RobustnessReport()
    pair = (model, tokenizer)

    def check(name: str, target: Any, fps: Sequence[Fingerprint], **kw: Any) -> None:
        report.add(name, verify_fingerprints(target, fps, progress=progress, **kw))

    if "plain" in conditions:
        check("plain", pair, fingerprints)
    if "wrappers" in conditions:
        for wrapper in wrappers:
            check(f"wrapper:{wrapper.name}", pair, fingerprints, wrapper=wrapper)
    if "temperature" in conditions:
        check("temperature-0.7", pair, fingerprints, temperature=0.7)
    if "int8" in conditions:
        check("int8-dynamic", (quantize_int8(model), tokenizer), fingerprints)
    for fmt in BLOCK_FORMATS:
        if fmt in conditions:
            check(f"gguf-{fmt}", (quantize_blockwise(model, fmt), tokenizer), fingerprints)
    if "merge" in conditions and other is not None:
        merged = average_models(model, other[0])
        check("merge-copy-a", (merged, tokenizer), fingerprints)
        check("merge-copy-b", (merged, tokenizer), other[1])
    for method in ("full", "lora"):
        if f"finetune-{method}" in conditions:
            tuned = benign_finetune(
                model, tokenizer, steps=finetune_steps, method=method, text=finetune_text
            )
            check(f"finetune-{method}-{finetune_steps}", (tuned, tokenizer), fingerprints)
    return report
