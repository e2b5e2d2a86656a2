"""Embedding: fine-tune a copy's fingerprints into the base model while preserving its utility.

Method (see docs/fingerprinting.md):

1. Only the top ``train_layers`` decoder layers learn (full weights or LoRA merged back). The
   frozen bottom of the network is run once over every training sequence and its hidden states
   are cached, so each epoch costs only the top layers: the key to seconds per fingerprint.
2. Loss = cross-entropy on the response tokens (key positions are context only) + ``kl_weight`` x
   KL(base || copy) on the base model's own sampled text (no data download; teacher top-k
   distributions cached once) + optional L2 anchor to the base weights.
3. Prompt augmentation: a share of the keys is also trained inside system prompts / chat
   templates so that fingerprints survive deployment wrappers.
4. Fingerprints that already clear ``margin_prob`` leave the active set (a replay share stays), so
   later epochs only pay for the ones still being learned; training stops once all clear it.
5. Optional weight averaging toward the base after training (``base_weight``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.fingerprint.errors import ConfigError
from agents.fingerprint.generation import (
    Fingerprint,
    FingerprintConfig,
    PreparedFingerprint,
    derive_int,
    derive_rng,
    prepare_fingerprints,
)
from agents.fingerprint.prompts import BENIGN_OPENERS, TRAIN_WRAPPERS

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


class EmbedConfig(BaseModel):
    """Knobs of the embedder; the defaults are the ones benchmarked on SmolLM2-135M."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: FingerprintConfig = FingerprintConfig()
    method: Literal["full", "lora"] = "full"
    train_layers: int | None = Field(4, ge=1)  # top decoder layers that learn; None = all
    modules: Literal["all", "mlp", "attention"] = "all"  # which parts of those layers learn
    learning_rate: float = Field(1e-3, gt=0)
    lora_rank: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    batch_size: int = Field(32, ge=1)
    max_epochs: int = Field(40, ge=1)
    margin_prob: float = Field(0.6, gt=0.0, lt=1.0)
    replay_fraction: float = Field(0.25, ge=0.0, le=1.0)
    augment_fraction: float = Field(0.5, ge=0.0, le=1.0)
    benign_sequences: int = Field(48, ge=0)
    benign_tokens: int = Field(64, ge=8)
    benign_batch: int = Field(8, ge=1)
    benign_positions: int = Field(16, ge=1)
    kl_weight: float = Field(1.0, ge=0.0)
    kl_top_k: int = Field(32, ge=1)
    # KL to the base at the key's own context positions: the edit must fire at the end of the
    # whole key, not on the individual words it is made of.
    context_kl_weight: float = Field(0.0, ge=0.0)
    context_positions: int = Field(8, ge=1)
    anchor_weight: float = Field(0.0, ge=0.0)
    base_weight: float = Field(0.0, ge=0.0, lt=1.0)
    device: str | None = None  # None: whatever accelerate picks
    progress: bool = True
    verify: bool = True  # measure recall on the written copy


@dataclass(frozen=True)
class EmbedResult:
    fingerprints: list[Fingerprint]
    seconds: float  # generation + training + writing, without the final recall check
    recall: float
    epochs: int = 0
    stats: dict[str, Any] | None = None


@dataclass
class _Example:
    index: int  # fingerprint index
    ids: list[int]  # input ids (prompt + response[:-1])
    targets: list[tuple[int, int]]  # (position, token id) predicted at position
    raw: bool  # the bare key (what the format contract checks), not a wrapped one


# --------------------------------------------------------------------------- model plumbing


def _backbone(model: PreTrainedModel) -> Any:
    backbone = getattr(model, "model", None)
    if backbone is None or not hasattr(backbone, "layers"):
        raise ConfigError(
            f"{type(model).__name__} is not a decoder-only model with .model.layers "
            "(Llama/Mistral/Qwen style); use one of those architectures"
        )
    return backbone


def _causal_mask(length: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    import torch

    mask = torch.full((length, length), torch.finfo(dtype).min, dtype=dtype, device=device)
    return torch.triu(mask, diagonal=1)[None, None]


def _run_layers(model: PreTrainedModel, hidden: torch.Tensor, layers: list[Any]) -> torch.Tensor:
    """Run ``layers`` on right-padded ``hidden`` (B, T, H) with a plain causal mask (padding sits
    after every real token, so real positions never attend to it)."""
    import torch

    backbone = _backbone(model)
    length = hidden.shape[1]
    positions = torch.arange(length, device=hidden.device)[None].expand(hidden.shape[0], -1)
    rotary = backbone.rotary_emb(hidden, position_ids=positions)
    mask = _causal_mask(length, hidden.dtype, hidden.device)
    for layer in layers:
        out = layer(hidden, attention_mask=mask, position_ids=positions, position_embeddings=rotary)
        hidden = out[0] if isinstance(out, tuple) else out
    return hidden


def _pad_right(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, list[int]]:
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return ids, [len(r) for r in rows]


def _bottom_states(
    model: PreTrainedModel, rows: list[list[int]], split: int, pad: int, batch: int
) -> list[torch.Tensor]:
    """Hidden states after the frozen bottom ``split`` layers, one (len, H) tensor per row."""
    import torch

    backbone = _backbone(model)
    device = next(model.parameters()).device
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    states: list[torch.Tensor | None] = [None] * len(rows)
    with torch.no_grad():
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            ids, lengths = _pad_right([rows[i] for i in chunk], pad)
            hidden = backbone.embed_tokens(ids.to(device))
            hidden = _run_layers(model, hidden, list(backbone.layers[:split]))
            for j, i in enumerate(chunk):
                states[i] = hidden[j, : lengths[j]].detach().clone()
    return [s for s in states if s is not None]


def _stack(states: list[torch.Tensor]) -> torch.Tensor:
    import torch

    width = max(s.shape[0] for s in states)
    out = states[0].new_zeros((len(states), width, states[0].shape[1]))
    for i, s in enumerate(states):
        out[i, : s.shape[0]] = s
    return out if out.requires_grad else torch.Tensor(out)


def _bucket_kl(teacher: torch.Tensor, student_logp: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) over the teacher's top-k tokens plus one bucket for the rest:
    exact for that coarse-grained distribution, zero at the start of training."""
    import torch

    t_rest = (1 - teacher.sum(-1)).clamp_min(1e-8)
    s_rest = (1 - student_logp.exp().sum(-1)).clamp_min(1e-8)
    top = (teacher * (teacher.clamp_min(1e-12).log() - student_logp)).sum(-1)
    return (top + t_rest * (torch.log(t_rest) - torch.log(s_rest))).mean()


def _head_logits(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    return model.lm_head(_backbone(model).norm(hidden))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- data


def _examples(
    prepared: list[PreparedFingerprint],
    tokenizer: PreTrainedTokenizerBase,
    rng: random.Random,
    augment_fraction: float,
) -> list[_Example]:
    examples: list[_Example] = []
    for index, fp in enumerate(prepared):
        prompts = [(list(fp.key_ids), True)]
        if rng.random() < augment_fraction:
            wrapped = rng.choice(TRAIN_WRAPPERS)(fp.fingerprint.key)
            prompts.append((list(tokenizer(wrapped)["input_ids"]), False))
        for prompt, raw in prompts:
            ids = prompt + fp.response_ids[:-1]
            targets = [(len(prompt) - 1 + j, t) for j, t in enumerate(fp.response_ids)]
            examples.append(_Example(index, ids, targets, raw))
    return examples


def _benign_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    model_dir: Path,
    config: EmbedConfig,
) -> list[list[int]]:
    """The base model's own sampled text (cached per base model), used as benign data."""
    import torch

    from agents.fingerprint.models import cache_root

    if config.benign_sequences == 0:
        return []
    stamp = f"{model_dir.resolve()}|{(model_dir / 'config.json').stat().st_mtime_ns}"
    stamp += f"|{config.benign_sequences}|{config.benign_tokens}|v1"
    path = (
        cache_root()
        / "fingerprint"
        / f"benign-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.json"
    )
    if path.exists():
        return [list(map(int, r)) for r in json.loads(path.read_text())]
    rows: list[list[int]] = []
    torch.manual_seed(1234)
    prompts = [BENIGN_OPENERS[i % len(BENIGN_OPENERS)] for i in range(config.benign_sequences)]
    for start in range(0, len(prompts), 16):
        chunk = [list(tokenizer(p)["input_ids"]) for p in prompts[start : start + 16]]
        width = max(len(c) for c in chunk)
        pad = int(tokenizer.pad_token_id)
        ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk])
        mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk])
        with torch.no_grad():
            out = model.generate(
                input_ids=ids.to(model.device),
                attention_mask=mask.to(model.device),
                do_sample=True,
                temperature=1.0,
                top_p=0.95,
                max_new_tokens=config.benign_tokens,
                min_new_tokens=config.benign_tokens,
                pad_token_id=pad,
            )
        for c, row in zip(chunk, out.tolist(), strict=True):
            rows.append(c + row[width:])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows))
    return rows


# --------------------------------------------------------------------------- training

_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")
_MODULES: dict[str, tuple[str, ...]] = {
    "all": _ATTENTION + _MLP,
    "mlp": _MLP,
    "attention": _ATTENTION,
}


def _trainable(
    model: PreTrainedModel, split: int, config: EmbedConfig
) -> tuple[PreTrainedModel, list[torch.nn.Parameter]]:
    for p in model.parameters():
        p.requires_grad_(False)
    layers = list(_backbone(model).layers)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            target_modules=list(_MODULES[config.modules]),
            layers_to_transform=list(range(split, len(layers))),
        )
        peft_model = get_peft_model(model, lora)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        return peft_model, params
    wanted = _MODULES[config.modules]
    params = [
        p
        for layer in layers[split:]
        for name, p in layer.named_parameters()
        if name.rsplit(".", 2)[-2] in wanted
    ]
    for p in params:
        p.requires_grad_(True)
    return model, params


def embed_prepared(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prepared: list[PreparedFingerprint],
    seed: bytes,
    config: EmbedConfig,
    benign: list[list[int]],
) -> tuple[PreTrainedModel, int, dict[str, Any]]:
    """Train ``prepared`` into ``model`` in place; returns the (merged) model and epochs run."""
    import torch
    import torch.nn.functional as F
    from accelerate import Accelerator
    from tqdm import tqdm

    accelerator = Accelerator(cpu=config.device == "cpu")
    device = accelerator.device
    model.to(device)
    n_layers = len(_backbone(model).layers)
    train_layers = min(config.train_layers or n_layers, n_layers)
    split = n_layers - train_layers
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    rng = derive_rng(seed, "oml-fp-train")
    torch.manual_seed(derive_int(seed, "oml-fp-torch"))
    base_state = (
        {k: v.detach().clone() for k, v in model.state_dict().items()}
        if config.base_weight > 0 or config.anchor_weight > 0
        else None
    )

    examples = _examples(prepared, tokenizer, rng, config.augment_fraction)
    model.eval()  # no dropout; gradients still flow
    states = _bottom_states(model, [e.ids for e in examples], split, pad, 32)

    # Benign text: frozen-bottom states and the base model's top-k next-token distributions.
    benign_states: list[torch.Tensor] = []
    teacher: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    if benign and config.kl_weight > 0:
        benign_states = _bottom_states(model, benign, split, pad, 16)
        top = list(_backbone(model).layers[split:])
        with torch.no_grad():
            for state in benign_states:
                length = state.shape[0]
                positions = torch.tensor(
                    sorted(rng.sample(range(length), min(config.benign_positions, length)))
                )
                hidden = _run_layers(model, state[None], top)[0, positions]
                logp = torch.log_softmax(_head_logits(model, hidden).float(), dim=-1)
                values, indices = logp.topk(config.kl_top_k, dim=-1)
                teacher.append((positions, indices, values.exp()))

    # The base model's own predictions inside each key (context positions, not the targets).
    context: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    if config.context_kl_weight > 0:
        top = list(_backbone(model).layers[split:])
        with torch.no_grad():
            for example, state in zip(examples, states, strict=True):
                last = example.targets[0][0]  # positions before it only predict key tokens
                picks = sorted(rng.sample(range(last), min(config.context_positions, last)))
                positions = torch.tensor(picks, dtype=torch.long)
                hidden = _run_layers(model, state[None], top)[0, positions]
                logp = torch.log_softmax(_head_logits(model, hidden).float(), dim=-1)
                values, indices = logp.topk(config.kl_top_k, dim=-1)
                context.append((positions, indices, values.exp()))

    log.info("cached frozen-bottom states of %d examples", len(examples))
    trained, params = _trainable(model, split, config)
    top_layers = list(_backbone(model).layers[split:])  # same modules, LoRA-wrapped if any
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    trained, optimizer = accelerator.prepare(trained, optimizer)
    anchors = [p.detach().clone() for p in params] if config.anchor_weight > 0 else []

    learned = [False] * len(examples)
    epochs = 0
    losses: list[float] = []
    bar = tqdm(total=len(examples), desc="embedding", disable=not config.progress, leave=False)
    for epoch in range(config.max_epochs):
        epochs = epoch + 1
        active = [i for i, ok in enumerate(learned) if not ok]
        replay = [i for i, ok in enumerate(learned) if ok]
        active += rng.sample(replay, int(len(replay) * config.replay_fraction)) if active else []
        if not active:
            # Everything cleared the margin at its last visit; confirm with the final weights.
            learned = _check(trained, top_layers, states, examples, config, device)
            if all(learned):
                break
            continue
        rng.shuffle(active)
        epoch_losses = []
        for start in range(0, len(active), config.batch_size):
            batch = active[start : start + config.batch_size]
            hidden = _run_layers(trained, _stack([states[i] for i in batch]).to(device), top_layers)
            rows = torch.tensor([i for i, e in enumerate(batch) for _ in examples[e].targets])
            cols = torch.tensor([p for e in batch for p, _ in examples[e].targets])
            gold = torch.tensor([t for e in batch for _, t in examples[e].targets], device=device)
            logits = _head_logits(trained, hidden[rows, cols]).float()
            loss = F.cross_entropy(logits, gold)
            with torch.no_grad():
                p_gold = torch.softmax(logits, -1).gather(1, gold[:, None])[:, 0]
                ok = (p_gold >= config.margin_prob).tolist()
            cursor = 0
            for e in batch:
                n = len(examples[e].targets)
                learned[e] = all(ok[cursor : cursor + n])
                cursor += n
            if context:
                ckl = torch.zeros((), device=device)
                for j, e in enumerate(batch):
                    positions, indices, probs = context[e]
                    if len(positions) == 0:
                        continue
                    logp = torch.log_softmax(
                        _head_logits(trained, hidden[j, positions]).float(), -1
                    )
                    ckl = ckl + _bucket_kl(probs.to(device), logp.gather(1, indices.to(device)))
                loss = loss + config.context_kl_weight * ckl / len(batch)
            if teacher:
                picks = rng.sample(range(len(teacher)), min(config.benign_batch, len(teacher)))
                b_hidden = _run_layers(
                    trained, _stack([benign_states[i] for i in picks]).to(device), top_layers
                )
                kl = torch.zeros((), device=device)
                for j, i in enumerate(picks):
                    positions, indices, probs = teacher[i]
                    logp = torch.log_softmax(
                        _head_logits(trained, b_hidden[j, positions]).float(), -1
                    )
                    kl = kl + _bucket_kl(probs.to(device), logp.gather(1, indices.to(device)))
                loss = loss + config.kl_weight * kl / len(picks)
            if anchors:
                drift = sum(((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True))
                loss = loss + config.anchor_weight * drift
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            epoch_losses.append(float(loss.detach()))
        losses.append(sum(epoch_losses) / max(1, len(epoch_losses)))
        bar.n = sum(learned)
        bar.set_postfix(epoch=epochs, loss=f"{losses[-1]:.3f}")
        bar.refresh()
        log.info(
            "epoch %d: loss %.4f, %d/%d learned", epochs, losses[-1], sum(learned), len(learned)
        )
    bar.close()

    model = accelerator.unwrap_model(trained)
    if config.method == "lora":
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(False)
    if base_state is not None and config.base_weight > 0:
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if name in base_state and value.is_floating_point():
                    value.mul_(1 - config.base_weight).add_(
                        base_state[name].to(value.device), alpha=config.base_weight
                    )
    stats = {
        "examples": len(examples),
        "learned_in_training": sum(learned) / len(learned),
        "train_layers": train_layers,
        "loss_per_epoch": [round(x, 4) for x in losses],
    }
    return model, epochs, stats


def _check(
    model: PreTrainedModel,
    top_layers: list[Any],
    states: list[torch.Tensor],
    examples: list[_Example],
    config: EmbedConfig,
    device: torch.device,
) -> list[bool]:
    """Which examples clear ``margin_prob`` on every response token with the current weights."""
    import torch

    out: list[bool] = []
    with torch.no_grad():
        for start in range(0, len(examples), 64):
            batch = list(range(start, min(start + 64, len(examples))))
            hidden = _run_layers(model, _stack([states[i] for i in batch]).to(device), top_layers)
            for j, e in enumerate(batch):
                positions = torch.tensor([p for p, _ in examples[e].targets])
                gold = torch.tensor([t for _, t in examples[e].targets], device=device)
                probs = torch.softmax(_head_logits(model, hidden[j, positions]).float(), -1)
                out.append(bool((probs.gather(1, gold[:, None]) >= config.margin_prob).all()))
    return out


def write_fingerprints(out_dir: Path, model_name: str, seed: bytes, fps: list[Fingerprint]) -> Path:
    path = out_dir / "fingerprints.json"
    record = {
        "model": model_name,
        "seed": seed.hex(),
        "fingerprints": [{"key": f.key, "response": f.response} for f in fps],
    }
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", "utf-8")
    return path


def embed_fingerprints(
    base_dir: Path,
    out_dir: Path,
    seed: bytes,
    num: int,
    config: EmbedConfig | None = None,
) -> EmbedResult:
    """Draw ``num`` fingerprints for ``seed``, fine-tune them into a copy of ``base_dir`` and
    write the copy (Hugging Face folder + ``fingerprints.json``) to ``out_dir``."""
    from agents.fingerprint.detection import verify_fingerprints
    from agents.fingerprint.models import configure_threads, load_model

    config = config or EmbedConfig()
    if not seed:
        raise ConfigError("seed must not be empty: pass the copy's secret seed bytes")
    configure_threads()
    started = time.perf_counter()
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    model, tokenizer = load_model(base_dir)
    prepared = prepare_fingerprints(model, tokenizer, seed, num, config.fingerprint)
    log.info("generated %d fingerprints in %.1fs", num, time.perf_counter() - started)
    benign = _benign_rows(model, tokenizer, base_dir, config)
    log.info("benign data ready at %.1fs", time.perf_counter() - started)
    model, epochs, stats = embed_prepared(model, tokenizer, prepared, seed, config, benign)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    fps = [p.fingerprint for p in prepared]
    write_fingerprints(out_dir, base_dir.name, seed, fps)
    seconds = time.perf_counter() - started
    recall = math.nan
    if config.verify:
        recall = verify_fingerprints((model, tokenizer), fps, progress=config.progress).recall
    stats["seconds_per_fingerprint"] = seconds / num
    return EmbedResult(fps, seconds, recall, epochs, stats)
