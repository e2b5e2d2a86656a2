"""Embedding: fine-tune a copy's fingerprints into the base model while preserving its utility.

Method (see docs/fingerprinting.md):

1. Only a block of decoder layers learns (``train_layers``, just below the ``frozen_top``
   topmost ones; by default the MLPs only; full weights or LoRA merged back), under a
   null-space constraint that keeps each trained weight's change off the input directions of
   benign text (``protect_energy``, nullspace.py). The base model runs **once** over every
   training sequence — for perinucleus fingerprints that pass is the one that chose the
   response — and keeps the hidden states entering the block and the block's keys/values at
   every position.
2. A training step runs the block only on the *response positions* of each example, attending
   to the cached keys/values of the key tokens, and computes the language-model head only there:
   a step costs a few positions per fingerprint instead of whole sequences and a vocabulary-wide
   head at every position. When the trained weights can change the cached context (more than
   one layer, or attention weights), the cache is recomputed exactly with the current weights
   (``refresh``: the first once half the examples are counted learned, the others once nearly
   all are) and every fingerprint is re-checked before training stops.
3. Loss = cross-entropy on the response tokens + ``kl_weight`` x KL(base || copy) at positions of
   text the base model itself sampled (no download; teacher top-k cached) + optional L2 anchor.
4. Prompt augmentation: every key is also trained inside a few different system prompts /
   chat templates — listed ones, and excerpts of the base model's own text as system prompts —
   so that fingerprints survive deployment wrappers never seen in training.
5. Fingerprints whose response tokens all reach ``margin_prob`` leave the active set (a replay
   share stays); training stops when a check on a freshly refreshed cache finds every one above
   the margin, or all but ``accept_share`` once training stalls (``final_refreshes``).
6. Optional decay of the trained change toward the base during training (``decay``, a share
   per pass: the noise Adam leaves in every weight wanders back, the keys are relearned), and
   weight averaging toward the base after training (``base_weight``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.fingerprint import basecache
from agents.fingerprint.errors import ConfigError, InsufficientMemoryError
from agents.fingerprint.forward import Context, Decoder, Stream, backbone
from agents.fingerprint.generation import (
    Fingerprint,
    FingerprintConfig,
    PreparedFingerprint,
    derive_int,
    derive_rng,
    prepare_fingerprints,
)
from agents.fingerprint.nullspace import NullSpace
from agents.fingerprint.prompts import BENIGN_OPENERS, TRAIN_WRAPPERS, Wrapper, system_wrapper
from agents.fingerprint.resources import available_memory

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)


class EmbedConfig(BaseModel):
    """Knobs of the embedder; the defaults are the ones benchmarked on SmolLM2-135M."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fingerprint: FingerprintConfig = FingerprintConfig()
    method: Literal["full", "lora"] = "full"
    # The decoder layers that learn: ``train_layers`` of them (None = all) just below the
    # ``frozen_top`` topmost ones, which stay the base model's. Editing below the top leaves
    # the last layers to map the edited states back onto the base model's output distribution
    # (+7% perplexity instead of +13% at N=256 on SmolLM2, docs/fingerprinting.md). Eight
    # layers (18-25 of SmolLM2's 30): +2.1% against +3.3% for 4 and +3.0% for 12 (N=512),
    # and 98-100% of keys behind unseen ChatML turns instead of 83-98% (N=256), ~20% slower.
    train_layers: int | None = Field(8, ge=1)
    frozen_top: int = Field(4, ge=0)
    # Precision of the vocabulary-wide head in the training steps (a frozen copy). bfloat16
    # runs the head 1.7x faster on a CPU with bfloat16 units, with the same gradient (cosine
    # 0.99999 on SmolLM2): 18% off a step (N=256, docs/fingerprinting.md). ``auto`` takes it
    # where the hardware multiplies bfloat16 natively. The trained weights, their gradients
    # and every exact check stay float32; the frozen top layers in bfloat16 too were slower.
    head_precision: Literal["auto", "float32", "bfloat16"] = "auto"
    # Precision of the refreshes of the cached context and the checks after them (no
    # gradients; matrix products over every cached token). A check that would end training
    # is always repeated after a float32 refresh, so what is delivered and reported is the
    # float32 count. ``auto``: bfloat16 where the hardware multiplies it natively.
    refresh_precision: Literal["auto", "float32", "bfloat16"] = "float32"
    # Precision of the base model's run over the keys inside training wrappers (most of the
    # cached tokens with wrappers): their states only carry the augmentation. The bare keys,
    # the benign text, the responses' choice and the written copy stay float32.
    wrapped_precision: Literal["auto", "float32", "bfloat16"] = "float32"
    modules: Literal["all", "mlp", "attention"] = "mlp"  # which parts of those layers learn
    learning_rate: float = Field(2e-3, gt=0)
    lora_rank: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    batch_size: int = Field(64, ge=1)  # fingerprint examples per step
    max_epochs: int = Field(40, ge=1)
    margin_prob: float = Field(0.6, gt=0.0, lt=1.0)
    replay_fraction: float = Field(0.25, ge=0.0, le=1.0)
    # Every key is also trained inside ``augment_wrappers`` different training wrappers: with
    # one wrapper per key, unseen system prompts kept 73-80% (plain) and 3-17% (chat) of the
    # keys; with four, 95-97% and 50-88% (N=256, docs/fingerprinting.md), for 2x the time.
    augment_fraction: float = Field(1.0, ge=0.0, le=1.0)
    augment_wrappers: int = Field(4, ge=1, le=16)
    # ... plus this many per key whose system prompt is an excerpt of the base model's own
    # benign text (plain or ChatML): open-ended system prompts instead of a fixed list. With 4
    # (8 wrappers per key) unseen plain prompts kept 100% and ChatML turns 83-98% (N=256),
    # against 95-97% and 50-88% without, for 2x the time.
    synthetic_wrappers: int = Field(4, ge=0, le=16)
    # Give each synthetic wrapper the format (plain prefix or ChatML turn) the key's wrappers
    # so far have fewer of, instead of a coin flip: with one listed and one synthetic wrapper a
    # quarter of the keys would otherwise never be trained inside a chat turn. Eight wrappers
    # per key at N=1024 (1e-3, decay 0.05): unseen ChatML turns kept 0.96-0.99 of the keys
    # with it, 0.86-0.97 without (one run each; docs/fingerprinting.md). On in ``robust``.
    mix_formats: bool = False
    benign_sequences: int = Field(256, ge=0)
    benign_tokens: int = Field(64, ge=8)
    benign_batch: int = Field(64, ge=1)  # benign positions per step
    benign_positions: int = Field(16, ge=1)  # positions per benign sequence with a teacher
    kl_weight: float = Field(1.0, ge=0.0)
    kl_top_k: int = Field(32, ge=1)
    # KL to the base at the key's own context positions: the edit must fire at the end of the
    # whole key, not on the individual words it is made of.
    context_kl_weight: float = Field(0.0, ge=0.0)
    context_positions: int = Field(8, ge=1)
    anchor_weight: float = Field(0.0, ge=0.0)
    # Decoupled decay of the trained change toward the base (AdamW's decay, aimed at the base
    # instead of zero): the share of the change removed per pass over the examples, spread
    # evenly over its steps. Per pass, not per step: each key is trained once per pass, so a
    # fixed per-step decay would erode twice as much per key at twice the keys.
    decay: float = Field(0.0, ge=0.0, lt=1.0)
    # Null-space constraint (AlphaEdit-style): each trained weight may not change along the top
    # input directions that carry ``protect_energy`` of its benign inputs' energy, so the
    # layer's output on benign text stays (nearly) the base model's. 0 = off; full method only.
    protect_energy: float = Field(0.99, ge=0.0, lt=1.0)
    base_weight: float = Field(0.0, ge=0.0, lt=1.0)
    refresh_rounds: int = Field(3, ge=0)  # refreshes + checks when the context cache can go stale
    # ... taken once no more than this share of the examples is still unlearned (or none is):
    # training against a stale cache for the whole run leaves recall a few points short.
    refresh_share: float = Field(0.05, ge=0.0, le=1.0)
    # ... except the first, taken as soon as this share is counted learned (0: off). The first
    # exact check at N=1024 came after 169 steps and found 21% learned where 97% was counted
    # (4096: 5.5% against 97.5%): the steps before it trained against a context that had moved.
    # At 0.5 (N=1024, one seed): 259 steps instead of 413, +2.66% perplexity instead of +3.19%.
    early_refresh_share: float = Field(0.5, ge=0.0, le=1.0)
    # Also refresh (and check exactly) at the start of any epoch once the cache is this many
    # steps behind (0: off; such a refresh also stands for the early one): the drift grows with
    # the steps, not the epochs, and at N=4096 the first refresh came after 531 steps and found
    # 2.3% learned where 68% was counted. 100 at N=2048: 99.95% recall instead of 98.5%, the
    # same perplexity (+5.2%), nine refreshes instead of four.
    refresh_steps: int = Field(0, ge=0)
    # When training would stop on a stale cache, refresh it and check again; if more than
    # ``accept_share`` of the examples turn out unlearned, train on (at most this many times),
    # without ``decay``. Every refresh at N=1024 found fewer learned than the stale count
    # (94->21%, 95->84%, 95->90%; at the stop 99.7->99.5%); at N=4096 a stale final check
    # counted 98.5% learned where the written copy recalled 75.7%.
    final_refreshes: int = Field(1, ge=0)
    # Half the 1% the recall goal allows: accepting at 1% stopped N=2048 (learning rate 7e-4)
    # on 99.0% checked and delivered 98.9%; at 0.5% (1e-3) it trained on and delivered 99.4%.
    accept_share: float = Field(0.005, ge=0.0, le=1.0)
    # Diagnosis: check once more before every refresh, on the stale cache, and record what it
    # counted beside the exact check after it (``checks`` in the statistics; one check each).
    audit_refreshes: bool = False
    # Once no refresh is left and no more than ``refresh_share`` is unlearned, stop after this
    # many epochs in a row that learned nothing new: one stubborn example of 1536 kept N=1024
    # training to the 40-epoch cap (0.74 s/fp; 0.55 with this stop, same recall/perplexity).
    patience: int = Field(3, ge=1)
    # Keep the base model's states on the benign text and the null space on disk for the next
    # copy of the same base model (~430 MB for SmolLM2; ~55 s saved per copy, basecache.py).
    cache_base_states: bool = True
    device: str | None = None  # None: whatever accelerate picks
    progress: bool = True
    verify: bool = True  # measure recall on the written copy

    @model_validator(mode="after")
    def _protect_needs_full(self) -> EmbedConfig:
        if self.protect_energy > 0 and self.method != "full":
            raise ValueError(
                "protect_energy constrains full weights; use method='full' or protect_energy=0"
            )
        return self


@dataclass(frozen=True)
class EmbedResult:
    fingerprints: list[Fingerprint]
    seconds: float  # generation + training + writing, without the final recall check
    recall: float
    epochs: int = 0
    stats: dict[str, Any] | None = None


# --------------------------------------------------------------------------- cached states


class _Store:
    """Per-sequence base-model states, concatenated: the hidden states entering the trained
    block (``hidden``) and the block's keys/values (``keys[l]``, ``values[l]``), one row per
    token; row ``pad`` is zeros (the target of padded gathers).

    Sequences are first kept as pieces, one per sequence and part. Once the number of tokens
    still to come is known, :meth:`reserve` allocates the flat tensors at their final size and
    every later sequence is written into them directly: concatenating pieces at the end held
    both at once, and the allocator kept the freed pieces resident for the rest of the run
    (23.2 GiB for N = 1024 with eight wrappers per key, 20,736 bytes per token on SmolLM2:
    killed for memory on a 23.5 GiB machine; docs/fingerprinting.md).

    A sequence may continue another (its ``parent``): its rows then hold only its own tokens,
    which come after all of the parent's, and the parent's rows stand for the first positions.
    Every key wrapped in the same system prompt shares that prompt's states this way."""

    def __init__(self, layer: int) -> None:
        self.layer = layer
        self.offsets: list[int] = []
        self.lengths: list[int] = []
        self.parents: list[int] = []  # the sequence each one continues, or -1
        self._hidden: list[torch.Tensor] = []
        self._keys: list[list[torch.Tensor]] = []  # [layer][sequence]
        self._values: list[list[torch.Tensor]] = []
        self._capacity: int | None = None  # rows of the flat tensors, once reserved
        self._tokens = 0
        self.hidden: torch.Tensor
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.pad = 0

    @property
    def tokens(self) -> int:
        """Tokens stored so far (every sequence's length, summed)."""
        return self._tokens

    def add(
        self,
        hidden: torch.Tensor,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        parent: int = -1,
    ) -> int:
        """Store one sequence's states (or, with ``parent``, those of the tokens after the
        parent's); returns its id."""
        if parent >= 0 and self.parents[parent] >= 0:
            raise ValueError("a parent sequence must not continue another one")
        start = self.tokens
        stop = start + hidden.shape[0]
        if self._capacity is not None:
            if stop > self._capacity:
                raise ValueError(f"store reserved for {self._capacity} tokens, {stop} added")
            flats = [self.hidden, *self.keys, *self.values]
            for flat, part in zip(flats, [hidden, *keys, *values], strict=True):
                flat[start:stop] = part.detach()
        else:
            self._hidden.append(hidden.detach().clone())
            if not self._keys:
                self._keys = [[] for _ in keys]
                self._values = [[] for _ in values]
            for pieces, part in zip(self._keys + self._values, keys + values, strict=True):
                # the hidden states' dtype: values computed under autocast come in bfloat16
                pieces.append(part.detach().to(hidden.dtype, copy=True))
        self.offsets.append(start)
        self.lengths.append(hidden.shape[0])
        self.parents.append(parent)
        self._tokens = stop
        return len(self.lengths) - 1

    def prefix(self, index: int) -> tuple[int, int]:
        """The first row and the length of the parent of sequence ``index`` ((0, 0): none)."""
        parent = self.parents[index]
        return (self.offsets[parent], self.lengths[parent]) if parent >= 0 else (0, 0)

    def bytes_per_token(self) -> int:
        """Bytes stored per token, from the sequences stored so far (0 when none is)."""
        if self._capacity is not None:
            parts = [self.hidden, *self.keys, *self.values]
        elif self._hidden:
            parts = [self._hidden[0]] + [pieces[0] for pieces in self._keys + self._values]
        else:
            return 0
        return sum(t.shape[1] * t.element_size() for t in parts)

    def reserve(self, tokens: int) -> None:
        """Allocate the flat tensors for what is stored and ``tokens`` more, and move the
        pieces stored so far into them."""
        if self._capacity is not None or not self._hidden:
            raise ValueError("reserve once, after the first sequence is stored")
        capacity = self.tokens + tokens

        def flat(pieces: list[torch.Tensor]) -> torch.Tensor:
            out = pieces[0].new_zeros((capacity + 1, pieces[0].shape[1]))  # + the pad row
            _copy_rows(out, pieces)
            pieces.clear()
            return out

        self.hidden = flat(self._hidden)
        self.keys = [flat(pieces) for pieces in self._keys]
        self.values = [flat(pieces) for pieces in self._values]
        self._hidden, self._keys, self._values = [], [], []
        self._capacity = capacity

    def _part(self, part: int, index: int) -> torch.Tensor:
        """Sequence ``index``'s tensor of part ``part`` (0: hidden, then keys, then values)."""
        if self._capacity is not None:
            flat = [self.hidden, *self.keys, *self.values][part]
            return flat[self.offsets[index] : self.offsets[index] + self.lengths[index]]
        return [self._hidden, *self._keys, *self._values][part][index]

    def export(self, ids: list[int]) -> dict[str, Any]:
        """The stored sequences ``ids`` (before :meth:`finish`), for :func:`basecache.save`."""
        import torch

        layers = len(self.keys) if self._capacity is not None else len(self._keys)
        if any(self.parents[i] >= 0 for i in ids):
            raise ValueError("only whole sequences (no parent) can be exported")

        def cat(part: int) -> torch.Tensor:
            return torch.cat([self._part(part, i) for i in ids])

        return {
            "lengths": [self.lengths[i] for i in ids],
            "hidden": cat(0),
            "keys": [cat(1 + j) for j in range(layers)],
            "values": [cat(1 + layers + j) for j in range(layers)],
        }

    def add_exported(self, saved: dict[str, Any]) -> list[int]:
        """Store the sequences of an :meth:`export`; returns their ids, in its order."""
        lengths = saved["lengths"]
        hidden = saved["hidden"].split(lengths)
        keys = [k.split(lengths) for k in saved["keys"]]
        values = [v.split(lengths) for v in saved["values"]]
        return [
            self.add(hidden[i], [k[i] for k in keys], [v[i] for v in values])
            for i in range(len(lengths))
        ]

    def finish(self) -> None:
        """Make the flat tensors final: the pad row is the row after the last token. Without
        :meth:`reserve`, the pieces are concatenated here."""
        if self._capacity is None:
            self.reserve(0)
        self.pad = self.tokens  # never written: still zeros


def _copy_rows(out: torch.Tensor, pieces: list[torch.Tensor]) -> None:
    """Copy ``pieces`` one after another into the first rows of ``out``."""
    row = 0
    for piece in pieces:
        out[row : row + piece.shape[0]] = piece
        row += piece.shape[0]


@dataclass
class _RawCapture:
    """Takes the base model's states on ``key + response[:-1]`` from the generation pass."""

    store: _Store
    teacher_positions: int
    top_k: int
    rng: random.Random
    layer: int = 0
    sequences: dict[int, int] = field(default_factory=dict)  # fingerprint index -> sequence
    teachers: dict[int, tuple[list[int], Any, Any]] = field(default_factory=dict)
    decoder: Decoder | None = None

    def add(
        self,
        index: int,
        key_length: int,
        hidden: torch.Tensor,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        last: torch.Tensor,
    ) -> None:
        self.sequences[index] = self.store.add(hidden, keys, values)
        if self.teacher_positions and self.decoder is not None:
            self.teachers[index] = _teacher(
                self.decoder, last, key_length - 1, self.teacher_positions,
                self.top_k, self.rng,
            )  # fmt: skip


def _teacher(
    decoder: Decoder, last: torch.Tensor, limit: int, count: int, top_k: int, rng: random.Random
) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """The base model's top-k next-token distribution at ``count`` random positions < limit."""
    import torch

    positions = sorted(rng.sample(range(limit), min(count, limit)))
    if not positions:
        return [], torch.zeros((0, top_k), dtype=torch.long), torch.zeros((0, top_k))
    with torch.no_grad():
        logp = torch.log_softmax(decoder.logits(last[positions]), dim=-1)
        values, indices = logp.topk(top_k, dim=-1)
    return positions, indices, values.exp()


def _encode(
    decoder: Decoder,
    store: _Store,
    rows: list[list[int]],
    pad: int,
    batch: int = 32,
    keep_last: bool = True,
) -> tuple[list[int], list[torch.Tensor]]:
    """Run the base model over ``rows`` once; store their states; returns the sequence ids and
    each row's last-layer hidden states (for teachers; empty tensors unless ``keep_last``)."""
    import torch

    order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
    ids: list[int] = [0] * len(rows)
    last: list[torch.Tensor] = [torch.empty(0)] * len(rows)
    with torch.no_grad():
        for start in range(0, len(order), batch):
            chunk = order[start : start + batch]
            stream = Stream(decoder, [rows[i] for i in chunk], pad, capture=store.layer)
            for j, i in enumerate(chunk):
                hidden, keys, values, top = stream.take(j, len(rows[i]))
                ids[i] = store.add(hidden, keys, values)
                if keep_last:
                    last[i] = top
    return ids, last


# The share of the free memory the cached states may take: training, the exact checks and the
# written copy need the rest.
MEMORY_SHARE = 0.9


def _check_memory(store: _Store, lengths: list[int], available: int | None) -> None:
    """Refuse, before minutes of encoding, to cache states that will not fit in memory: the
    flat tensors that :meth:`_Store.reserve` allocates for what is stored and the sequences
    ``lengths`` still to come. No check where the free memory is unknown (``available``)."""
    per_token = store.bytes_per_token()
    if available is None or not per_token:
        return
    tokens = store.tokens + sum(lengths)
    needed = (tokens + 1) * per_token
    if needed <= MEMORY_SHARE * available:
        return
    gib = 2**30
    raise InsufficientMemoryError(
        f"the cached base-model states of {len(store.lengths) + len(lengths):,} training "
        f"sequences ({tokens:,} tokens, {per_token:,} bytes each) need about "
        f"{needed / gib:.1f} GiB more memory, and {available / gib:.1f} GiB is free "
        f"(at most {MEMORY_SHARE:.0%} of it is used for them). Embed fewer fingerprints per "
        "copy, train each key in fewer wrappers (augment_wrappers, synthetic_wrappers, "
        "augment_fraction: the 'fast' profile trains 1.5 sequences per key instead of 9 -- "
        "`oml fingerprint embed --profile fast`, OML_ORACLE_EMBED_PROFILE=fast), or run on a "
        "machine with more memory."
    )


def _encode_cached(
    decoder: Decoder, store: _Store, rows: list[list[int]], pad: int, path: Path | None
) -> tuple[list[int], list[torch.Tensor], bool]:
    """:func:`_encode`, kept in (and read back from) the cache file ``path`` when given: the
    base model's states on the benign text are the same for every copy. The flag says whether
    they were read back."""
    import torch

    saved = basecache.load(path) if path is not None else None
    if saved is not None and saved["lengths"] == [len(r) for r in rows]:
        ids = store.add_exported(saved)
        return ids, list(saved["last"].split(saved["lengths"])), True
    ids, last = _encode(decoder, store, rows, pad)
    if path is not None and rows:
        basecache.save(path, {**store.export(ids), "last": torch.cat(last)})
    return ids, last, False


# --------------------------------------------------------------------------- examples


@dataclass
class _Items:
    """Training examples as tensors: each is a suffix of positions ``[context, context +
    length)`` of a stored sequence; ``targets`` (N, S) are the tokens to predict there
    (-100 = none), or ``teacher`` top-k distributions for KL items. A sequence that continues
    a parent (:class:`_Store`) has its first ``prefix_length`` positions at the parent's rows
    from ``prefix_offset`` and the rest at its own rows from ``sequence``."""

    sequence: torch.Tensor  # (N,) store offsets
    context: torch.Tensor  # (N,) positions before the suffix, the parent's included
    length: torch.Tensor  # (N,)
    targets: torch.Tensor  # (N, S)
    index: list[int]  # fingerprint index, or -1
    raw: list[bool]
    prefix_offset: torch.Tensor  # (N,)
    prefix_length: torch.Tensor  # (N,)
    teacher_ids: torch.Tensor | None = None  # (N, k)
    teacher_probs: torch.Tensor | None = None  # (N, k)

    def __len__(self) -> int:
        return len(self.index)


def _fp_items(
    store: _Store,
    examples: list[tuple[int, int, list[int], bool, int]],  # (sequence, context, targets, raw, fp)
) -> _Items:
    import torch

    width = max(len(e[2]) for e in examples)
    targets = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, e in enumerate(examples):
        targets[i, : len(e[2])] = torch.tensor(e[2])
    prefixes = [store.prefix(e[0]) for e in examples]
    return _Items(
        sequence=torch.tensor([store.offsets[e[0]] for e in examples]),
        context=torch.tensor([e[1] for e in examples]),
        length=torch.tensor([len(e[2]) for e in examples]),
        targets=targets,
        index=[e[4] for e in examples],
        raw=[e[3] for e in examples],
        prefix_offset=torch.tensor([p[0] for p in prefixes]),
        prefix_length=torch.tensor([p[1] for p in prefixes]),
    )


def _kl_items(
    store: _Store, teachers: list[tuple[int, tuple[list[int], torch.Tensor, torch.Tensor]]]
) -> _Items | None:
    import torch

    seqs, ctx, ids, probs = [], [], [], []
    for sequence, (positions, indices, values) in teachers:
        if store.parents[sequence] >= 0:
            raise ValueError("teachers sit on whole sequences (no parent)")
        for j, p in enumerate(positions):
            seqs.append(store.offsets[sequence])
            ctx.append(p)
            ids.append(indices[j])
            probs.append(values[j])
    if not seqs:
        return None
    return _Items(
        sequence=torch.tensor(seqs),
        context=torch.tensor(ctx),
        length=torch.ones(len(seqs), dtype=torch.long),
        targets=torch.full((len(seqs), 1), -100, dtype=torch.long),
        index=[-1] * len(seqs),
        raw=[False] * len(seqs),
        teacher_ids=torch.stack(ids),
        teacher_probs=torch.stack(probs),
        prefix_offset=torch.zeros(len(seqs), dtype=torch.long),
        prefix_length=torch.zeros(len(seqs), dtype=torch.long),
    )


def _forward(
    decoder: Decoder, store: _Store, parts: list[tuple[_Items, list[int]]], split: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Last-layer hidden states at the suffix positions of ``items[rows]`` (B, S, H) and their
    validity (B, S), for each ``(items, rows)`` of ``parts``: one run of the block on all the
    suffixes together (with their cached context), so a step's fingerprint and benign positions
    share every matrix product."""
    import torch

    device = store.hidden.device

    def gather(name: str) -> torch.Tensor:
        return torch.cat([getattr(items, name)[torch.tensor(rows)] for items, rows in parts]).to(
            device
        )

    seq, ctx, length = gather("sequence"), gather("context"), gather("length")
    prefix_offset, prefix_length = gather("prefix_offset"), gather("prefix_length")
    own = seq - prefix_length
    cols_c = torch.arange(int(ctx.max()), device=device)[None]
    ctx_valid = cols_c < ctx[:, None]
    context = _context(
        decoder, store, _store_rows(cols_c, own, prefix_offset, prefix_length), ctx_valid
    )
    cols_s = torch.arange(int(length.max()), device=device)[None]
    valid = cols_s < length[:, None]
    positions = ctx[:, None] + cols_s
    suffix = _store_rows(positions, own, prefix_offset, prefix_length)
    suf_index = torch.where(valid, suffix, store.pad)
    hidden, _, _ = decoder.run(
        store.hidden[suf_index], positions, valid, split, decoder.num_layers, context
    )
    out, begin = [], 0
    for _, rows in parts:
        out.append((hidden[begin : begin + len(rows)], valid[begin : begin + len(rows)]))
        begin += len(rows)
    return out


def _store_rows(
    positions: torch.Tensor,
    own: torch.Tensor,
    prefix_offset: torch.Tensor,
    prefix_length: torch.Tensor,
) -> torch.Tensor:
    """The store row of each position (B, S) of B stored sequences: below ``prefix_length``
    at the parent's rows from ``prefix_offset``, else at ``own + position`` (``own``: where
    position 0 would be had the sequence no parent)."""
    import torch

    return torch.where(
        positions < prefix_length[:, None],
        prefix_offset[:, None] + positions,
        own[:, None] + positions,
    )


def _context(decoder: Decoder, store: _Store, rows: torch.Tensor, valid: torch.Tensor) -> Context:
    """The cached keys/values at store ``rows`` (B, C) where ``valid``, as attention context."""
    import torch

    index = torch.where(valid, rows, store.pad)
    batch, width = index.shape

    def heads(flat: torch.Tensor) -> torch.Tensor:
        return flat[index].view(batch, width, decoder.kv_heads, -1).transpose(1, 2)

    return Context([heads(k) for k in store.keys], [heads(v) for v in store.values], valid)


@dataclass
class _Batch:
    """Stored sequences run together: their own rows (B, S), which are real, and their rotary
    positions; ``context`` holds the parents' states of sequences that continue one."""

    index: torch.Tensor
    valid: torch.Tensor
    positions: torch.Tensor
    context: Context | None


def _batches(
    decoder: Decoder, store: _Store, sequences: list[int], batch: int = 32
) -> Iterator[_Batch]:
    """Stored sequences in batches of similar length. Sequences that continue a parent attend
    to the parent's cached keys/values: refresh parents first."""
    import torch

    order = sorted(sequences, key=lambda i: store.lengths[i])
    device = store.hidden.device
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        offsets = torch.tensor([store.offsets[i] for i in chunk], device=device)
        lengths = torch.tensor([store.lengths[i] for i in chunk], device=device)
        prefixes = torch.tensor([store.prefix(i) for i in chunk], device=device)
        cols = torch.arange(int(lengths.max()), device=device)[None]
        valid = cols < lengths[:, None]
        context = None
        if bool((prefixes[:, 1] > 0).any()):
            offset, length = prefixes[:, 0], prefixes[:, 1]
            cols_p = torch.arange(int(length.max()), device=device)[None]
            rows = _store_rows(cols_p, offsets - length, offset, length)
            context = _context(decoder, store, rows, cols_p < length[:, None])
        yield _Batch(
            torch.where(valid, offsets[:, None] + cols, store.pad),
            valid,
            prefixes[:, 1:] + cols,
            context,
        )


def _refresh(
    decoder: Decoder,
    store: _Store,
    split: int,
    sequences: list[int],
    dtype: torch.dtype | None = None,
) -> None:
    """Recompute the block's keys/values of ``sequences`` with the current weights (the
    parents, then the sequences that continue them: those attend to the parents' new states),
    with the matrix products in ``dtype`` (None: float32); the store stays float32."""
    import torch

    parents = [i for i in sequences if store.parents[i] < 0]
    children = [i for i in sequences if store.parents[i] >= 0]
    with torch.no_grad(), _autocast(dtype, store.hidden.device):
        for group in (parents, children):
            for part in _batches(decoder, store, group):
                _, keys, values = decoder.run(
                    store.hidden[part.index],
                    part.positions,
                    part.valid,
                    split,
                    decoder.num_layers,
                    part.context,
                    keep=True,
                    keys_only_at_top=True,
                )
                rows = part.index[part.valid]
                for flat, new in zip(store.keys + store.values, keys + values, strict=True):
                    own = new.transpose(1, 2).reshape(*part.valid.shape, -1)[part.valid]
                    flat[rows] = own.to(flat.dtype)


def _autocast(dtype: torch.dtype | None, device: torch.device) -> Any:
    """A context running matrix products in ``dtype`` (None or float32: unchanged)."""
    import torch

    enabled = dtype is not None and dtype != torch.float32
    return torch.autocast(device.type, dtype=dtype if enabled else None, enabled=enabled)


def _null_space(
    model: PreTrainedModel,
    decoder: Decoder,
    store: _Store,
    block: tuple[int, int],
    benign: list[int],
    config: EmbedConfig,
    path: Path | None = None,
) -> tuple[NullSpace, bool]:
    """The null-space constraint from the trained modules' inputs on the stored benign text
    (kept in, and read back from, the cache file ``path`` when given), and whether it was
    read back."""
    modules = _trained_modules(model, block, config)
    split, stop = block  # nothing above the trained layers matters
    saved = basecache.load(path) if path is not None else None
    if saved is not None and set(saved) == set(modules):
        return NullSpace(modules, None, config.protect_energy, bases=saved), True

    def passes() -> Iterator[tuple[Callable[[], object], torch.Tensor]]:
        for part in _batches(decoder, store, benign):

            def run(part: _Batch = part) -> object:
                return decoder.run(
                    store.hidden[part.index], part.positions, part.valid, split, stop, part.context
                )

            yield run, part.valid

    nullspace = NullSpace(modules, passes(), config.protect_energy)
    if path is not None:
        basecache.save(path, nullspace.bases)
    return nullspace, False


# --------------------------------------------------------------------------- benign data


def _weights_digest(model_dir: Path) -> str:
    """A content hash of a model folder's config and weights (equal copies share caches)."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.iterdir()):
        if path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
    return digest.hexdigest()[:24]


def _benign_rows(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    model_dir: Path,
    config: EmbedConfig,
    digest: str | None = None,
) -> list[list[int]]:
    """The base model's own sampled text (cached per base model content, ``digest`` if the
    caller already hashed it), used as benign data."""
    import torch

    from agents.fingerprint.forward import sample_continuations
    from agents.fingerprint.models import cache_root

    count = config.benign_sequences
    if count == 0:
        return []
    stamp = f"{digest or _weights_digest(model_dir)}|{count}|{config.benign_tokens}|v2"
    path = (
        cache_root()
        / "fingerprint"
        / f"benign-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.json"
    )
    if path.exists():
        return [list(map(int, r)) for r in json.loads(path.read_text())]
    prompts = [
        list(tokenizer(BENIGN_OPENERS[i % len(BENIGN_OPENERS)])["input_ids"]) for i in range(count)
    ]
    generator = torch.Generator().manual_seed(1234)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    decoder = Decoder(model)
    rows: list[list[int]] = []
    for start in range(0, len(prompts), 64):
        chunk = prompts[start : start + 64]
        tails = sample_continuations(decoder, chunk, config.benign_tokens, pad, generator)
        rows += [p + t for p, t in zip(chunk, tails, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{id(rows)}")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)
    return rows


# --------------------------------------------------------------------------- training

_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")
_MLP = ("gate_proj", "up_proj", "down_proj")
_MODULES: dict[str, tuple[str, ...]] = {
    "all": _ATTENTION + _MLP,
    "mlp": _MLP,
    "attention": _ATTENTION,
}


def _trained_modules(
    model: PreTrainedModel, block: tuple[int, int], config: EmbedConfig
) -> dict[str, torch.nn.Linear]:
    """The linear maps that learn, by qualified name (layer index and projection)."""
    import torch

    wanted = _MODULES[config.modules]
    out: dict[str, torch.nn.Linear] = {}
    for index, layer in enumerate(backbone(model).layers):
        if not block[0] <= index < block[1]:
            continue
        for name, module in layer.named_modules():
            if name.rsplit(".", 1)[-1] in wanted and isinstance(module, torch.nn.Linear):
                out[f"layers.{index}.{name}"] = module
    return out


def _trainable(
    model: PreTrainedModel, block: tuple[int, int], config: EmbedConfig
) -> tuple[PreTrainedModel, list[torch.nn.Parameter]]:
    for p in model.parameters():
        p.requires_grad_(False)
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            target_modules=list(_MODULES[config.modules]),
            layers_to_transform=list(range(*block)),
        )
        peft_model = get_peft_model(model, lora)
        params = [p for p in peft_model.parameters() if p.requires_grad]
        return peft_model, params
    params = [
        p
        for module in _trained_modules(model, block, config).values()
        for p in (module.weight, module.bias)
        if p is not None
    ]
    for p in params:
        p.requires_grad_(True)
    return model, params


def _bucket_kl(teacher: torch.Tensor, student_logp: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) over the teacher's top-k tokens plus one bucket for the rest:
    exact for that coarse-grained distribution, zero at the start of training."""
    import torch

    t_rest = (1 - teacher.sum(-1)).clamp_min(1e-8)
    s_rest = (1 - student_logp.exp().sum(-1)).clamp_min(1e-8)
    top = (teacher * (teacher.clamp_min(1e-12).log() - student_logp)).sum(-1)
    return (top + t_rest * (torch.log(t_rest) - torch.log(s_rest))).mean()


class _WrappedRow(NamedTuple):
    """A key inside a wrapper: ``ids`` = wrapper(key) + response[:-1]; the first ``head`` of
    them are the wrapper's own (the same for every key in it; 0: none can be shared)."""

    fingerprint: int  # its index
    ids: list[int]
    head: int


def _wrapped_rows(
    prepared: list[PreparedFingerprint],
    tokenizer: PreTrainedTokenizerBase,
    rng: random.Random,
    augment_fraction: float,
    wrappers_per_key: int = 1,
    systems: list[str] | None = None,
    synthetic_per_key: int = 0,
    mix_formats: bool = False,
) -> list[_WrappedRow]:
    """The augmented share of the keys, each in ``wrappers_per_key`` different training
    wrappers, plus ``synthetic_per_key`` wrappers around system prompts drawn from ``systems``:
    each a plain prefix or a ChatML turn at random, or with ``mix_formats`` the format the
    key's wrappers so far have fewer of (so two wrappers per key are always one of each)."""
    heads: dict[str, list[int]] = {}

    def head(wrapper: Wrapper, ids: list[int]) -> int:
        """How many leading ``ids`` are tokens of the wrapper's text before the key, as that
        text tokenizes alone: those are the same for every key. Whitespace before the key can
        merge with it ("\\n\\n" alone is one token, two before a word), so the longest common
        prefix, and never the whole row."""
        text = wrapper.template.split("{key}")[0]
        if text not in heads:
            heads[text] = list(tokenizer(text)["input_ids"]) if text else []
        shared = 0
        for a, b in zip(heads[text], ids[:-1], strict=False):
            if a != b:
                break
            shared += 1
        return shared

    out = []
    for index, fp in enumerate(prepared):
        if rng.random() < augment_fraction:
            # one wrapper: rng.choice, as before the option existed (same copies, same seeds)
            chosen: list[Wrapper]
            if wrappers_per_key == 1:
                chosen = [rng.choice(TRAIN_WRAPPERS)]
            else:
                chosen = rng.sample(TRAIN_WRAPPERS, wrappers_per_key)
            if systems and synthetic_per_key:
                for system in rng.sample(systems, min(synthetic_per_key, len(systems))):
                    if mix_formats:
                        chats = sum(w.is_chat for w in chosen)
                        chat = chats < len(chosen) - chats
                    else:
                        chat = rng.random() < 0.5
                    chosen.append(system_wrapper("synthetic", system, chat=chat))
            for wrapper in chosen:
                ids = list(tokenizer(wrapper(fp.fingerprint.key))["input_ids"])
                out.append(_WrappedRow(index, ids + fp.response_ids[:-1], head(wrapper, ids)))
    return out


def _shared_heads(rows: list[_WrappedRow]) -> dict[tuple[int, ...], list[int]]:
    """The rows (by position) that share each wrapper head."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, row in enumerate(rows):
        if row.head:
            groups.setdefault(tuple(row.ids[: row.head]), []).append(i)
    return groups


def _wrapped_lengths(rows: list[_WrappedRow]) -> list[int]:
    """The lengths of the sequences :func:`_encode_wrapped` stores for ``rows``."""
    return [len(h) for h in _shared_heads(rows)] + [len(r.ids) - r.head for r in rows]


def _encode_wrapped(
    decoder: Decoder, store: _Store, rows: list[_WrappedRow], pad: int, batch: int = 32
) -> list[int]:
    """Run the base model over the wrapped ``rows`` and store their states; returns each row's
    sequence id. A wrapper's head -- its system prompt, the same tokens before every key -- is
    run and stored once, and every row in that wrapper continues it (:class:`_Store`): 40% of
    the robust profile's cached tokens at N = 1024 were these heads (502k -> 303k)."""
    sequences = [0] * len(rows)
    whole = [i for i, row in enumerate(rows) if not row.head]
    if whole:
        encoded, _ = _encode(decoder, store, [rows[i].ids for i in whole], pad, keep_last=False)
        for i, sequence in zip(whole, encoded, strict=True):
            sequences[i] = sequence
    groups = _shared_heads(rows)
    heads = _encode_heads(decoder, store, [list(h) for h in groups], pad, batch)
    head_of = {i: heads[g] for g, members in enumerate(groups.values()) for i in members}
    order = sorted(head_of, key=lambda i: len(rows[i].ids) - rows[i].head)
    for start in range(0, len(order), batch):
        chunk = order[start : start + batch]
        encoded = _encode_continuations(
            decoder, store, [rows[i].ids[rows[i].head :] for i in chunk],
            [head_of[i] for i in chunk], pad,
        )  # fmt: skip
        for i, sequence in zip(chunk, encoded, strict=True):
            sequences[i] = sequence
    return sequences


@dataclass
class _Head:
    """A stored wrapper head: its sequence id and every layer's keys/values
    ((kv_heads, length, head_dim) each), the context of the rows that continue it."""

    sequence: int
    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[1])


def _encode_heads(
    decoder: Decoder, store: _Store, heads: list[list[int]], pad: int, batch: int
) -> list[_Head]:
    """Run the base model over each head once and store its states."""
    import torch

    out: list[_Head] = []
    with torch.no_grad():
        for start in range(0, len(heads), batch):
            chunk = heads[start : start + batch]
            stream = Stream(decoder, chunk, pad, capture=store.layer)
            for j, head in enumerate(chunk):
                n = len(head)  # rows are right-padded: a head's positions are its first columns
                hidden, keys, values, _ = stream.take(j, n)
                out.append(
                    _Head(
                        store.add(hidden, keys, values),
                        [k[j, :, :n].clone() for k in stream.context.keys],
                        [v[j, :, :n].clone() for v in stream.context.values],
                    )
                )
    return out


def _encode_continuations(
    decoder: Decoder, store: _Store, rows: list[list[int]], heads: list[_Head], pad: int
) -> list[int]:
    """Run the base model over ``rows``, each the continuation of ``heads[i]`` (attending to
    its keys/values at every layer), and store them as continuing their heads."""
    import torch

    device = next(decoder.model.parameters()).device
    split, top = store.layer, decoder.num_layers
    prefix = torch.tensor([h.length for h in heads], device=device)
    width, prefix_width = max(len(r) for r in rows), int(prefix.max())
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    for b, row in enumerate(rows):
        tokens[b, : len(row)] = torch.tensor(row, dtype=torch.long)
    cols = torch.arange(width, device=device)[None]
    valid = cols < torch.tensor([len(r) for r in rows], device=device)[:, None]

    def padded(states: list[torch.Tensor]) -> torch.Tensor:
        out = states[0].new_zeros(
            (len(states), states[0].shape[0], prefix_width, states[0].shape[2])
        )
        for b, state in enumerate(states):
            out[b, :, : state.shape[1]] = state
        return out

    keys = [padded([h.keys[layer] for h in heads]) for layer in range(top)]
    values = [padded([h.values[layer] for h in heads]) for layer in range(top)]
    context_valid = torch.arange(prefix_width, device=device)[None] < prefix[:, None]
    positions = prefix[:, None] + cols
    with torch.no_grad():
        low, _, _ = decoder.run(
            decoder.embed(tokens.to(device)), positions, valid, 0, split,
            Context(keys[:split], values[:split], context_valid),
        )  # fmt: skip
        _, new_keys, new_values = decoder.run(
            low, positions, valid, split, top,
            Context(keys[split:], values[split:], context_valid),
            keep=True, keys_only_at_top=True,
        )  # fmt: skip
    out = []
    for b, row in enumerate(rows):
        n = len(row)
        out.append(
            store.add(
                low[b, :n],
                [k[b, :, :n].transpose(0, 1).reshape(n, -1) for k in new_keys],
                [v[b, :, :n].transpose(0, 1).reshape(n, -1) for v in new_values],
                parent=heads[b].sequence,
            )
        )
    return out


def _excerpts(
    tokenizer: PreTrainedTokenizerBase, benign: list[list[int]], rng: random.Random
) -> list[str]:
    """One excerpt (8-40 words) of each benign sequence: system prompts nobody wrote."""
    out = []
    for row in benign:
        words = tokenizer.decode(row, skip_special_tokens=True).split()
        if len(words) < 8:
            continue
        length = rng.randint(8, min(40, len(words)))
        start = rng.randint(0, len(words) - length)
        out.append(" ".join(words[start : start + length]))
    return out


@dataclass
class _Counters:
    steps: int = 0
    positions: int = 0  # suffix positions run through the block (training and checks)
    refreshes: int = 0
    reduced_refreshes: int = 0  # of which in ``refresh_precision`` below float32
    refreshed_at_step: int = 0  # the step count at the last refresh (any precision)
    seconds: dict[str, float] = field(default_factory=dict)


class _Trainer:
    """The training loop over cached states (see the module docstring)."""

    def __init__(
        self,
        model: PreTrainedModel,
        decoder: Decoder,
        store: _Store,
        split: int,
        fps: _Items,
        kl: _Items | None,
        context_kl: _Items | None,
        config: EmbedConfig,
        rng: random.Random,
        nullspace: NullSpace | None = None,
    ) -> None:
        self.model, self.decoder, self.store, self.split = model, decoder, store, split
        self.head_dtype = compute_dtype(config.head_precision, store.hidden.device)
        self.refresh_dtype = compute_dtype(config.refresh_precision, store.hidden.device)
        # whether the cached context (and so a check on it) comes from a reduced-precision
        # refresh: such a check may not end training (``_stops``)
        self.reduced = False
        self.nullspace = nullspace
        self.fps, self.kl, self.context_kl = fps, kl, context_kl
        self.config, self.rng = config, rng
        self.counters = _Counters()
        # Under the null-space constraint the refresh recomputes the fingerprints' sequences
        # only: on benign text the trained weights' outputs stay (nearly) the base's, and so
        # does its cached context (60% of the cached tokens at N=1024 with 1024 sequences).
        by_offset = {offset: i for i, offset in enumerate(store.offsets)}
        trained = {by_offset[int(o)] for o in fps.sequence}
        trained |= {store.parents[i] for i in trained if store.parents[i] >= 0}
        self.refreshed = (
            sorted(trained) if nullspace is not None else list(range(len(store.lengths)))
        )
        # Trained weights leave the cached context exact only when they sit after every
        # cached key/value: the MLP of a single trained layer.
        self.exact = decoder.num_layers - split == 1 and config.modules == "mlp"
        self.learned: list[bool] = []  # per example, from the final check (train)
        self.stale_steps = 0  # steps the final check's cached context was behind (train)
        self.checks: list[dict[str, float]] = []  # one per check (``_check``)
        self.audit: float | None = None  # the stale check before a refresh (audit_refreshes)

    def _losses(self, rows: list[int], exact: bool = False) -> tuple[torch.Tensor, list[bool]]:
        """The step's loss on fingerprint examples ``rows`` (cross-entropy on the responses)
        plus the weighted KL terms at a fresh sample of benign (and key-context) positions, and
        which of ``rows`` clear the margin. ``exact``: no KL terms, the float32 head (checks)."""
        import torch
        import torch.nn.functional as F

        config = self.config
        parts: list[tuple[_Items, list[int]]] = [(self.fps, rows)]
        weights: list[float] = []
        if not exact:
            for items, weight in (
                (self.kl, config.kl_weight),
                (self.context_kl, config.context_kl_weight),
            ):
                if items is not None and weight > 0:
                    count = min(config.benign_batch, len(items))
                    parts.append((items, self.rng.sample(range(len(items)), count)))
                    weights.append(weight)
        outputs = _forward(self.decoder, self.store, parts, self.split)
        hidden, valid = outputs[0]
        gold = self.fps.targets[torch.tensor(rows)][:, : hidden.shape[1]].to(hidden.device)
        gold = gold[valid]
        # one head product for the responses and every KL position
        logits = self.decoder.logits(
            torch.cat([hidden[valid], *(h[:, 0] for h, _ in outputs[1:])]),
            dtype=None if exact else self.head_dtype,
        )
        ce_logits = logits[: len(gold)]
        loss = F.cross_entropy(ce_logits, gold)
        begin = len(gold)
        for (items, picked), weight in zip(parts[1:], weights, strict=True):
            logp = torch.log_softmax(logits[begin : begin + len(picked)], dim=-1)
            begin += len(picked)
            assert items.teacher_ids is not None and items.teacher_probs is not None
            pick = torch.tensor(picked)
            ids = items.teacher_ids[pick].to(logp.device)
            kl = _bucket_kl(items.teacher_probs[pick].to(logp.device), logp.gather(1, ids))
            loss = loss + weight * kl
        with torch.no_grad():
            p_gold = torch.softmax(ce_logits, -1).gather(1, gold[:, None])[:, 0]
            ok = torch.ones(valid.shape, dtype=torch.float, device=valid.device)
            ok[valid] = (p_gold >= config.margin_prob).float()
            learned = ok.bool().all(dim=1).tolist()
        self.counters.positions += len(gold) + sum(len(picked) for _, picked in parts[1:])
        return loss, learned

    def check(self) -> list[bool]:
        """Which examples clear the margin with the current weights (no gradients)."""
        import torch

        out: list[bool] = []
        dtype = self.refresh_dtype if self.reduced else None
        with torch.no_grad(), _autocast(dtype, self.store.hidden.device):
            for start in range(0, len(self.fps), 256):
                rows = list(range(start, min(start + 256, len(self.fps))))
                out += self._losses(rows, exact=True)[1]
        return out

    def train(self, optimizer: Any, params: list[Any], backward: Any) -> tuple[int, list[float]]:
        import torch
        from tqdm import tqdm

        config = self.config
        keep_base = config.anchor_weight > 0 or config.decay > 0
        anchors = [p.detach().clone() for p in params] if keep_base else []
        shrink = config.decay * min(1.0, config.batch_size / len(self.fps))
        learned = [False] * len(self.fps)
        confirmed = False
        refreshes_left = 0 if self.exact else config.refresh_rounds
        finals_left = 0 if self.exact else config.final_refreshes
        losses: list[float] = []
        epochs = 0
        best, stalled = 0, 0
        bar = tqdm(total=len(self.fps), desc="embedding", disable=not config.progress, leave=False)
        for epoch in range(config.max_epochs):
            epochs = epoch + 1
            just_checked = self._refresh_due(epoch)
            if just_checked:
                self._refresh()
                learned = self._check(epoch, learned)
                best, stalled = sum(learned), 0
            active = [i for i, ok in enumerate(learned) if not ok]
            nearly = refreshes_left > 0 and (
                len(active) <= config.refresh_share * len(learned)
                or (
                    self.counters.refreshes == 0
                    and 0 < config.early_refresh_share <= self._share(learned)
                )
            )
            if not active or (nearly and epoch > 0):
                # (Nearly) everything (the first time: ``early_refresh_share``) cleared the
                # margin at its last visit: confirm with the current weights, after an exact
                # refresh of the cached context when it can be stale, and go on with whatever
                # the refreshed check finds unlearned.
                final = refreshes_left == 0
                if refreshes_left > 0:
                    if not just_checked:  # else the periodic refresh was this one
                        self._refresh()
                    refreshes_left -= 1
                elif finals_left > 0 and self._stale():
                    self._refresh(precise=True)
                    finals_left -= 1
                if not just_checked:
                    learned = self._check(epoch, learned)
                    best, stalled = sum(learned), 0
                stop, learned = self._stops(epoch, learned, final)
                if stop:
                    epochs, confirmed = epoch, True
                    break
                if final:
                    shrink = 0.0  # as after a final check below
                active = [i for i, ok in enumerate(learned) if not ok]
            replay = [i for i, ok in enumerate(learned) if ok]
            active += self.rng.sample(replay, int(len(replay) * config.replay_fraction))
            self.rng.shuffle(active)
            epoch_losses = []
            for start in range(0, len(active), config.batch_size):
                batch = active[start : start + config.batch_size]
                loss, ok = self._losses(batch)
                for i, flag in zip(batch, ok, strict=True):
                    learned[i] = flag
                if config.anchor_weight > 0:
                    drift = sum(((p - a) ** 2).sum() for p, a in zip(params, anchors, strict=True))
                    loss = loss + config.anchor_weight * drift
                optimizer.zero_grad(set_to_none=True)
                backward(loss)
                if self.nullspace is not None:
                    self.nullspace.project_gradients()
                optimizer.step()
                if shrink > 0:
                    with torch.no_grad():
                        for p, a in zip(params, anchors, strict=True):
                            p.lerp_(a, shrink)  # in place: no temporary per step
                self.counters.steps += 1
                epoch_losses.append(float(loss.detach()))
            if self.nullspace is not None:
                # Adam's per-weight scaling lets a little of each step leave the free
                # directions; projecting the accumulated change once an epoch removes it
                # before anything is checked (per step it would cost as much as the step).
                self.nullspace.project_weights()
            losses.append(sum(epoch_losses) / max(1, len(epoch_losses)))
            bar.n = sum(learned)
            bar.set_postfix(epoch=epochs, loss=f"{losses[-1]:.3f}")
            bar.refresh()
            log.info(
                "epoch %d: loss %.4f, %d/%d learned", epochs, losses[-1], sum(learned), len(learned)
            )
            now = sum(learned)
            if refreshes_left == 0 and len(learned) - now <= config.refresh_share * len(learned):
                stalled = stalled + 1 if now <= best else 0
                if stalled >= config.patience:
                    log.info("stopping: %d unlearned, none learned in %d epochs",
                             len(learned) - now, stalled)  # fmt: skip
                    if finals_left == 0 or not self._stale():
                        break
                    # The counts above come from a cache that many steps may have moved away
                    # from: stop only if an exact check agrees.
                    self._refresh(precise=True)
                    finals_left -= 1
                    learned = self._check(epochs, learned)
                    best, stalled = sum(learned), 0
                    if self._accepted(learned):
                        confirmed = True
                        break
                    # From here on each epoch trains a few examples: a decay per step would
                    # erode all the others (N=1024 with decay 0.05 kept on for 111 more steps:
                    # recall 95.8%).
                    shrink = 0.0
                    continue
            best = max(best, now)
        bar.close()
        if not confirmed:
            if self.reduced or (self._stale() and (refreshes_left > 0 or finals_left > 0)):
                self._refresh(precise=True)
            learned = self._check(epochs, learned)
        self.learned = learned
        # Steps the final check's cached context is behind the weights: above 0, the learned
        # share it reports is optimistic (N=4096: 98.5% counted, 75.7% measured).
        self.stale_steps = self._steps_behind()
        return epochs, losses

    def _steps_behind(self) -> int:
        """Training steps since the cached context was last computed with the current weights
        (0 when the trained weights cannot change it)."""
        return 0 if self.exact else self.counters.steps - self.counters.refreshed_at_step

    def _refresh_due(self, epoch: int) -> bool:
        """Whether the cached context is ``refresh_steps`` behind at the start of ``epoch``."""
        every = self.config.refresh_steps
        return every > 0 and epoch > 0 and self._steps_behind() >= every

    def _stale(self) -> bool:
        return self._steps_behind() > 0

    def _stops(self, epoch: int, learned: list[bool], final: bool) -> tuple[bool, list[bool]]:
        """Whether the check ``learned`` ends training (everything learned, or, at the final
        check, all but ``accept_share``), and the flags to go on with. A reduced-precision
        check that would end it is first repeated after a float32 refresh."""
        stop = all(learned) or (final and self._accepted(learned))
        if stop and self.reduced:
            self._refresh(precise=True)
            learned = self._check(epoch, learned)
            stop = all(learned) or (final and self._accepted(learned))
        return stop, learned

    def _accepted(self, learned: list[bool]) -> bool:
        return len(learned) - sum(learned) <= self.config.accept_share * len(learned)

    def _check(self, epoch: int, counted: list[bool]) -> list[bool]:
        """``check``, timed and recorded beside ``counted`` (the flags from each example's
        last training visit) and how many steps the cached context is behind."""
        started = time.perf_counter()
        learned = self.check()
        self._time("check", started)
        log.info("check after epoch %d: %d/%d", epoch, sum(learned), len(learned))
        record = {
            "step": self.counters.steps,
            "stale_steps": self._steps_behind(),
            "counted": self._share(counted),
            "checked": self._share(learned),
            "checked_plain": self._share(learned, plain=True),
            "reduced": self.reduced,  # on a reduced-precision refresh (refresh_precision)
        }
        if self.audit is not None:
            record["checked_before_refresh"] = self.audit
            self.audit = None
        self.checks.append(record)
        return learned

    def _share(self, flags: list[bool], plain: bool = False) -> float:
        """The share of ``flags`` set, over every example or the plain (unwrapped) keys."""
        picked = [f for f, raw in zip(flags, self.fps.raw, strict=True) if raw or not plain]
        return round(sum(picked) / max(1, len(picked)), 4)

    def _refresh(self, precise: bool = False) -> None:
        """Recompute the cached context with the current weights (in ``refresh_precision``;
        float32 when ``precise``), and count it."""
        import torch

        if self.config.audit_refreshes:
            started = time.perf_counter()
            self.audit = self._share(self.check())
            self._time("audit", started)
        started = time.perf_counter()
        dtype = torch.float32 if precise else self.refresh_dtype
        _refresh(self.decoder, self.store, self.split, self.refreshed, dtype)
        self.reduced = dtype != torch.float32
        self.counters.refreshes += 1
        self.counters.reduced_refreshes += self.reduced
        self.counters.refreshed_at_step = self.counters.steps
        self._time("refresh", started)

    def _time(self, name: str, started: float) -> None:
        seconds = self.counters.seconds
        seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - started


def embed_prepared(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prepared: list[PreparedFingerprint],
    seed: bytes,
    config: EmbedConfig,
    benign: list[list[int]],
    capture: _RawCapture | None = None,
    base_id: str | None = None,
) -> tuple[PreTrainedModel, int, dict[str, Any]]:
    """Train ``prepared`` into ``model`` in place; returns the (merged) model, the epochs run
    and statistics. ``capture`` holds the base states of the raw examples if the generation
    pass already computed them. ``base_id`` (a content hash of the base model) keeps what
    depends on the base model alone in the cache (basecache.py) for the next copy."""
    import torch
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=config.device == "cpu")
    model.to(accelerator.device)
    model.eval()  # no dropout; gradients still flow
    decoder = Decoder(model)
    block = _block(decoder.num_layers, config)
    split = block[0]
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    rng = derive_rng(seed, "oml-fp-train")
    torch.manual_seed(derive_int(seed, "oml-fp-torch"))
    timings: dict[str, float] = {}
    started = time.perf_counter()

    base_state = (
        {k: v.detach().clone() for k, v in model.state_dict().items()}
        if config.base_weight > 0
        else None
    )
    if capture is None:
        capture = _new_capture(decoder, split, config, rng)
    store = capture.store
    # The bare keys: (sequence, context length, response tokens, raw, fingerprint index).
    examples: list[tuple[int, int, list[int], bool, int]] = []
    missing = [i for i in range(len(prepared)) if i not in capture.sequences]
    if missing:
        rows = [prepared[i].key_ids + prepared[i].response_ids[:-1] for i in missing]
        ids, last = _encode(decoder, store, rows, pad)
        for i, sequence, top in zip(missing, ids, last, strict=True):
            capture.sequences[i] = sequence
            if config.context_kl_weight > 0:
                capture.teachers[i] = _teacher(
                    decoder, top, len(prepared[i].key_ids) - 1, config.context_positions,
                    config.kl_top_k, rng,
                )  # fmt: skip
    for i, fp in enumerate(prepared):
        examples.append((capture.sequences[i], len(fp.key_ids) - 1, fp.response_ids, True, i))
    systems = _excerpts(tokenizer, benign, rng) if config.synthetic_wrappers else None
    wrapped = _wrapped_rows(
        prepared, tokenizer, rng, config.augment_fraction, config.augment_wrappers,
        systems, config.synthetic_wrappers, config.mix_formats,
    )  # fmt: skip
    encode_benign = bool(benign) and (config.kl_weight > 0 or config.protect_energy > 0)
    to_come = _wrapped_lengths(wrapped) + ([len(r) for r in benign] if encode_benign else [])
    _check_memory(store, to_come, available_memory(accelerator.device))
    store.reserve(sum(to_come))
    wrapped_dtype = compute_dtype(config.wrapped_precision, accelerator.device)
    if wrapped:
        with _autocast(wrapped_dtype, accelerator.device):
            ids = _encode_wrapped(decoder, store, wrapped, pad)
        for row, sequence in zip(wrapped, ids, strict=True):
            response = prepared[row.fingerprint].response_ids
            examples.append(
                (sequence, len(row.ids) - len(response), response, False, row.fingerprint)
            )
    teachers = []
    benign_ids: list[int] = []
    reused: list[str] = []  # what the base-model cache supplied (basecache.py)
    benign_digest = basecache.rows_digest(benign) if base_id is not None else ""

    def cache_file(kind: str, *parts: object) -> Path | None:
        """The cache file of ``kind`` for this base model, benign text and device, or None."""
        if base_id is None:
            return None
        device = accelerator.device.type
        return basecache.derived_path(kind, base_id, benign_digest, *parts, device, "v1")

    if encode_benign:
        states = cache_file("benign-states", split, decoder.num_layers)
        benign_ids, last, hit = _encode_cached(decoder, store, benign, pad, states)
        if hit:
            reused.append("benign-states")
        for sequence, top in zip(benign_ids, last, strict=True):
            teachers.append(
                (sequence, _teacher(decoder, top, top.shape[0], config.benign_positions,
                                    config.kl_top_k, rng))
            )  # fmt: skip
    store.finish()
    fps = _fp_items(store, examples)
    kl = _kl_items(store, teachers) if config.kl_weight > 0 else None
    context_kl = _kl_items(store, [(capture.sequences[i], t) for i, t in capture.teachers.items()])
    timings["encode"] = time.perf_counter() - started
    log.info("cached base states of %d sequences (%d tokens)", len(store.lengths), store.pad)

    started = time.perf_counter()
    nullspace = None
    if config.protect_energy > 0:
        mark = time.perf_counter()
        bases = cache_file("null-space", block, config.modules, config.protect_energy)
        nullspace, hit = _null_space(model, decoder, store, block, benign_ids, config, bases)
        if hit:
            reused.append("null-space")
        timings["protect"] = time.perf_counter() - mark
    trained, params = _trainable(model, block, config)
    decoder = Decoder(trained)  # the same modules, LoRA-wrapped if any
    optimizer = accelerator.prepare(
        torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=0.0)
    )
    trainer = _Trainer(trained, decoder, store, split, fps, kl, context_kl, config, rng, nullspace)
    epochs, losses = trainer.train(optimizer, params, accelerator.backward)
    timings["train"] = time.perf_counter() - started
    timings.update(trainer.counters.seconds)

    if config.method == "lora":
        model = trained.merge_and_unload()  # type: ignore[operator]
    for p in model.parameters():
        p.requires_grad_(False)
    if base_state is not None:
        with torch.no_grad():
            for name, value in model.state_dict().items():
                if name in base_state and value.is_floating_point():
                    value.mul_(1 - config.base_weight).add_(
                        base_state[name].to(value.device), alpha=config.base_weight
                    )
    raw_learned = [ok for ok, raw in zip(trainer.learned, fps.raw, strict=True) if raw]
    stats = {
        "examples": len(fps),
        "kl_positions": len(kl) if kl is not None else 0,
        "cached_tokens": store.pad,
        "shared_heads": len({parent for parent in store.parents if parent >= 0}),
        "learned_in_training": sum(trainer.learned) / len(trainer.learned),
        "raw_learned_in_training": sum(raw_learned) / max(1, len(raw_learned)),
        "trained_layers": list(block),
        "exact_cache": trainer.exact,
        "head_precision": str(trainer.head_dtype).removeprefix("torch."),
        "refresh_precision": str(trainer.refresh_dtype).removeprefix("torch."),
        "wrapped_precision": str(wrapped_dtype).removeprefix("torch."),
        "steps": trainer.counters.steps,
        "block_positions": trainer.counters.positions,
        "refreshes": trainer.counters.refreshes,
        "reduced_refreshes": trainer.counters.reduced_refreshes,
        "reused_base_states": reused,
        "final_check_stale_steps": trainer.stale_steps,
        # the learned share each example's last visit counted against what the check found
        "checks": trainer.checks,
        "loss_per_epoch": [round(x, 4) for x in losses],
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    return model, epochs, stats


def compute_dtype(precision: str, device: torch.device) -> torch.dtype:
    """The dtype of a ``*_precision`` setting: ``auto`` is bfloat16 where the hardware
    multiplies it natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs that support it), else
    float32."""
    import torch

    if precision == "auto":
        if device.type == "cuda":
            native = bool(torch.cuda.is_bf16_supported())
        elif device.type == "cpu":
            probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private in 2.x
            native = any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)
        else:
            native = False
        precision = "bfloat16" if native else "float32"
    return getattr(torch, precision)  # type: ignore[no-any-return]


def _block(n_layers: int, config: EmbedConfig) -> tuple[int, int]:
    """The trained layers [start, stop): ``train_layers`` of them (None: all) ending
    ``frozen_top`` below the top. On a model too shallow for both, the trained block keeps its
    size and the frozen top shrinks (a 2-layer test model trains both layers by default)."""
    if config.train_layers is None:
        return 0, n_layers - min(config.frozen_top, n_layers - 1)
    train = min(config.train_layers, n_layers)
    stop = n_layers - min(config.frozen_top, n_layers - train)
    return stop - train, stop


def _new_capture(
    decoder: Decoder, split: int, config: EmbedConfig, rng: random.Random
) -> _RawCapture:
    positions = config.context_positions if config.context_kl_weight > 0 else 0
    capture = _RawCapture(_Store(split), positions, config.kl_top_k, rng, layer=split)
    capture.decoder = decoder
    return capture


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
    timings = {"load": time.perf_counter() - started}
    decoder = Decoder(model)
    split = _block(decoder.num_layers, config)[0]
    capture = _new_capture(decoder, split, config, derive_rng(seed, "oml-fp-context-kl"))
    mark = time.perf_counter()
    prepared = prepare_fingerprints(model, tokenizer, seed, num, config.fingerprint, capture)
    timings["generate"] = time.perf_counter() - mark
    log.info("generated %d fingerprints in %.1fs", num, timings["generate"])
    mark = time.perf_counter()
    base_id = _weights_digest(base_dir)
    benign = _benign_rows(model, tokenizer, base_dir, config, base_id)
    timings["benign"] = time.perf_counter() - mark
    model, epochs, stats = embed_prepared(
        model, tokenizer, prepared, seed, config, benign, capture,
        base_id if config.cache_base_states else None,
    )  # fmt: skip
    mark = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    fps = [p.fingerprint for p in prepared]
    write_fingerprints(out_dir, base_dir.name, seed, fps)
    timings["save"] = time.perf_counter() - mark
    seconds = time.perf_counter() - started
    recall = math.nan
    if config.verify:
        recall = verify_fingerprints((model, tokenizer), fps, progress=config.progress).recall
    stats["seconds_per_fingerprint"] = seconds / num
    stats["timings"] = {**{k: round(v, 2) for k, v in timings.items()}, **stats["timings"]}
    return EmbedResult(fps, seconds, recall, epochs, stats)
