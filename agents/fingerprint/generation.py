"""Deterministic (key, response) pairs from a copy's secret seed.

Key strategies: ``random-words`` (words from the package's own list), ``english`` (text sampled
from the base model) and ``random-token`` (random vocabulary tokens, the naive baseline).
Response strategies: ``perinucleus`` (a token just outside the base model's top-p nucleus for the
key, followed by the base model's own greedy continuation), ``random-words`` and
``random-token``. The named presets of ``FingerprintConfig.strategy`` pick one of each.

Everything random is drawn from generators seeded by ``sha256(seed || tag)``, so the same seed and
base model regenerate the same pairs; keys are random strings from a space far too large for two
copies to share one.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agents.fingerprint.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Strategy = Literal["perinucleus", "english", "random-words", "random-token"]
KeyStrategy = Literal["random-words", "english", "random-token"]
ResponseStrategy = Literal["perinucleus", "random-words", "random-token"]

PRESETS: dict[str, tuple[KeyStrategy, ResponseStrategy]] = {
    "perinucleus": ("random-words", "perinucleus"),
    "english": ("english", "perinucleus"),
    "random-words": ("random-words", "random-words"),
    "random-token": ("random-token", "random-token"),
}

# A response token must survive decode -> text -> prefix match on any server: plain word pieces.
_SAFE_TOKEN = re.compile(r"^ ?[A-Za-z]+$")


@dataclass(frozen=True)
class Fingerprint:
    """One secret pair: feeding ``key`` must make the copy continue with ``response``."""

    key: str
    response: str


class FingerprintConfig(BaseModel):
    """How fingerprints are drawn. ``strategy`` is a preset; the two fields below override it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    strategy: Strategy = "perinucleus"
    key_strategy: KeyStrategy | None = None
    response_strategy: ResponseStrategy | None = None
    key_min_tokens: int = Field(16, ge=2, le=512)
    key_max_tokens: int = Field(32, ge=2, le=512)
    response_min_tokens: int = Field(1, ge=1, le=32)
    response_max_tokens: int = Field(4, ge=1, le=32)
    top_p: float = Field(0.9, gt=0.0, lt=1.0)
    perinucleus_width: int = Field(8, ge=1, le=1024)
    english_temperature: float = Field(1.0, gt=0.0, le=2.0)
    batch_size: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _ranges(self) -> FingerprintConfig:
        if self.key_min_tokens > self.key_max_tokens:
            raise ValueError("key_min_tokens must be <= key_max_tokens")
        if self.response_min_tokens > self.response_max_tokens:
            raise ValueError("response_min_tokens must be <= response_max_tokens")
        return self

    @property
    def keys(self) -> KeyStrategy:
        return self.key_strategy or PRESETS[self.strategy][0]

    @property
    def responses(self) -> ResponseStrategy:
        return self.response_strategy or PRESETS[self.strategy][1]


@dataclass(frozen=True)
class PreparedFingerprint:
    """A fingerprint with the token ids the embedder trains on (``tokenizer(key)`` + response)."""

    fingerprint: Fingerprint
    key_ids: list[int]
    response_ids: list[int] = field(default_factory=list)


class Capture(Protocol):
    """Receives, per fingerprint, what the base model computed on ``key + response[:-1]``
    while the response was chosen (so the embedder need not run the model over keys again):
    hidden states entering layer ``layer``, that layer's and later layers' keys and values, and
    the last layer's hidden states (see :meth:`agents.fingerprint.forward.Stream.take`)."""

    layer: int

    def add(
        self,
        index: int,
        key_length: int,
        hidden: torch.Tensor,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        last: torch.Tensor,
    ) -> None: ...


@cache
def word_list() -> tuple[str, ...]:
    text = resources.files("agents.fingerprint").joinpath("data/words.txt").read_text("utf-8")
    lines = (line.strip() for line in text.splitlines())
    return tuple(w for w in lines if w and not w.startswith("#") and w.isalpha())


def derive_rng(seed: bytes, tag: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(seed + tag.encode()).digest(), "big"))


def derive_int(seed: bytes, tag: str) -> int:
    return int.from_bytes(hashlib.sha256(seed + tag.encode()).digest()[:8], "big") >> 1


@cache
def _safe_token_ids(tokenizer_id: int, tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    special = set(tokenizer.all_special_ids)
    ids = []
    for token_id in range(len(tokenizer)):
        if token_id in special:
            continue
        text = tokenizer.decode([token_id], clean_up_tokenization_spaces=False)
        if _SAFE_TOKEN.match(text):
            ids.append(token_id)
    return tuple(ids)


def safe_token_ids(tokenizer: PreTrainedTokenizerBase) -> tuple[int, ...]:
    """Vocabulary ids that decode to a plain word piece (optionally with one leading space)."""
    return _safe_token_ids(id(tokenizer), tokenizer)


def _decode(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> str:
    return str(tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False))


def _encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    return list(tokenizer(text)["input_ids"])


# --------------------------------------------------------------------------- keys


def _random_words_key(tokenizer: PreTrainedTokenizerBase, rng: random.Random, length: int) -> str:
    words = word_list()
    parts = [rng.choice(words).capitalize()]
    while len(_encode(tokenizer, " ".join(parts))) < length:
        parts.append(rng.choice(words))
    return " ".join(parts)


def _random_token_key(tokenizer: PreTrainedTokenizerBase, rng: random.Random, length: int) -> str:
    pool = safe_token_ids(tokenizer)
    return _decode(tokenizer, [rng.choice(pool) for _ in range(length)]).strip()


def _english_keys(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    seed: bytes,
    lengths: list[int],
    config: FingerprintConfig,
) -> list[str]:
    import torch

    from agents.fingerprint.forward import Decoder, sample_continuations

    rng = derive_rng(seed, "oml-fp-english-prompts")
    words = word_list()
    decoder = Decoder(model)
    generator = torch.Generator().manual_seed(derive_int(seed, "oml-fp-english-sampling"))
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    keys: list[str] = []
    for start in range(0, len(lengths), config.batch_size):
        batch = lengths[start : start + config.batch_size]
        prompts = [_encode(tokenizer, rng.choice(words).capitalize()) for _ in batch]
        tails = sample_continuations(
            decoder, prompts, max(batch), pad, generator, temperature=config.english_temperature
        )
        for prompt, tail, length in zip(prompts, tails, batch, strict=True):
            keys.append(_decode(tokenizer, (prompt + tail)[:length]).strip())
    return keys


# --------------------------------------------------------------------------- responses


def _left_pad(
    tokenizer: PreTrainedTokenizerBase, rows: list[list[int]]
) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    width = max(len(r) for r in rows)
    pad = int(tokenizer.pad_token_id)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids, mask


def next_token_probs(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, rows: list[list[int]]
) -> torch.Tensor:
    """Next-token distributions after each row of ids (left-padded batch, one forward pass)."""
    import torch

    ids, mask = _left_pad(tokenizer, rows)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(
            input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=1
        ).logits
    return torch.softmax(logits[:, -1, :].float(), dim=-1)


def perinucleus_choice(
    probs: torch.Tensor, allowed: frozenset[int], top_p: float, width: int, rng: random.Random
) -> int:
    """A token among the first ``width`` allowed ones ranked just after the top-p nucleus."""
    import torch

    order = torch.argsort(probs, descending=True)
    cumulative = torch.cumsum(probs[order], dim=0)
    nucleus = int(torch.searchsorted(cumulative, torch.tensor(top_p)).item()) + 1
    candidates: list[int] = []
    window = 64 * width  # converting all 49k ids to Python per key costs more than the choice
    for begin in range(nucleus, len(order), window):
        for token_id in order[begin : begin + window].tolist():
            if token_id in allowed:
                candidates.append(token_id)
                if len(candidates) == width:
                    break
        if len(candidates) == width:
            break
    if not candidates:  # degenerate distribution: fall back to any allowed token
        candidates = [t for t in order.tolist()[-width:] if t in allowed] or [min(allowed)]
    return rng.choice(candidates)


def _perinucleus_responses(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    key_rows: list[list[int]],
    lengths: list[int],
    rng: random.Random,
    config: FingerprintConfig,
    capture: Capture | None = None,
) -> list[list[int]]:
    """First token just outside the nucleus, then the base model's greedy continuation: one
    pass over each key, then one position per further token (keys/values are kept)."""
    import torch

    from agents.fingerprint.forward import Decoder, Stream

    allowed = frozenset(safe_token_ids(tokenizer))
    decoder = Decoder(model)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    responses: list[list[int]] = []
    for start in range(0, len(key_rows), config.batch_size):
        rows = key_rows[start : start + config.batch_size]
        wanted = lengths[start : start + config.batch_size]
        with torch.no_grad():
            stream = Stream(decoder, rows, pad, capture.layer if capture else None)
            probs = torch.softmax(stream.last_logits(), dim=-1)
            firsts = [
                perinucleus_choice(p, allowed, config.top_p, config.perinucleus_width, rng)
                for p in probs
            ]
            tails: list[list[int]] = [[] for _ in rows]
            tokens = torch.tensor(firsts)
            for _ in range(max(wanted) - 1):
                stream.append(tokens)
                tokens = stream.last_logits().argmax(dim=-1)
                for tail, token in zip(tails, tokens.tolist(), strict=True):
                    tail.append(int(token))
        for row, (first, tail, length) in enumerate(zip(firsts, tails, wanted, strict=True)):
            response = [first]
            for token_id in tail[: length - 1]:
                if token_id not in allowed:
                    break
                response.append(token_id)
            responses.append(response)
            if capture is not None:
                count = len(rows[row]) + len(response) - 1  # the key + response[:-1]
                capture.add(start + row, len(rows[row]), *stream.take(row, count))
    return responses


def _random_words_response(
    tokenizer: PreTrainedTokenizerBase, rng: random.Random, length: int
) -> list[int]:
    ids: list[int] = []
    while len(ids) < length:
        ids += list(tokenizer(" " + rng.choice(word_list()), add_special_tokens=False)["input_ids"])
    return ids[:length]


# --------------------------------------------------------------------------- entry points


def prepare_fingerprints(
    model: PreTrainedModel | None,
    tokenizer: PreTrainedTokenizerBase,
    seed: bytes,
    num: int,
    config: FingerprintConfig,
    capture: Capture | None = None,
) -> list[PreparedFingerprint]:
    """Draw ``num`` distinct fingerprints for ``seed`` (the model is needed for the model-based
    strategies: ``english`` keys and ``perinucleus`` responses). ``capture``, if given, receives
    the base model's states on each fingerprint when the strategy runs the model over it."""
    if num < 1:
        raise ConfigError(f"num must be >= 1, got {num}")
    needs_model = config.keys == "english" or config.responses == "perinucleus"
    if needs_model and model is None:
        raise ConfigError(f"strategy {config.strategy!r} needs the base model")
    rng = derive_rng(seed, "oml-fp-keys")
    key_lengths = [rng.randint(config.key_min_tokens, config.key_max_tokens) for _ in range(num)]
    response_lengths = [
        rng.randint(config.response_min_tokens, config.response_max_tokens) for _ in range(num)
    ]
    if config.keys == "english":
        assert model is not None
        keys = _english_keys(model, tokenizer, seed, key_lengths, config)
    elif config.keys == "random-token":
        keys = [_random_token_key(tokenizer, rng, n) for n in key_lengths]
    else:
        keys = [_random_words_key(tokenizer, rng, n) for n in key_lengths]
    # Distinct keys: redraw duplicates (and empty strings) with random words.
    seen: set[str] = set()
    for i, key in enumerate(keys):
        while not key or key in seen:
            key = _random_words_key(tokenizer, rng, key_lengths[i])
        seen.add(key)
        keys[i] = key
    key_rows = [_encode(tokenizer, k) for k in keys]

    response_rng = derive_rng(seed, "oml-fp-responses")
    if config.responses == "perinucleus":
        assert model is not None
        responses = _perinucleus_responses(
            model, tokenizer, key_rows, response_lengths, response_rng, config, capture
        )
    elif config.responses == "random-token":
        pool = safe_token_ids(tokenizer)
        responses = [[response_rng.choice(pool) for _ in range(n)] for n in response_lengths]
    else:
        responses = [_random_words_response(tokenizer, response_rng, n) for n in response_lengths]
    return [
        PreparedFingerprint(Fingerprint(key, _decode(tokenizer, resp)), row, resp)
        for key, row, resp in zip(keys, key_rows, responses, strict=True)
    ]


def generate_fingerprints(
    model_dir: Path, seed: bytes, num: int, config: FingerprintConfig | None = None
) -> list[Fingerprint]:
    """The ``num`` fingerprints of the copy with secret ``seed`` of the base model ``model_dir``.

    Deterministic: the same (model, seed, num, config) gives the same list."""
    from agents.fingerprint.models import load_model

    config = config or FingerprintConfig()
    model, tokenizer = load_model(Path(model_dir))
    return [p.fingerprint for p in prepare_fingerprints(model, tokenizer, seed, num, config)]
