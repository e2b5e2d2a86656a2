"""Detection: query a suspect model with keys, count matches, state the false-positive odds.

Decision rule: a model is accused when the probability that a model which does *not* carry the
fingerprints matches at least as many keys by chance is at most ``threshold`` (default 1e-9).
That probability is the binomial upper tail ``P[X >= matched]``, ``X ~ Bin(queried, p)``, where
``p`` bounds the chance that one clean model emits one key's response (see
docs/fingerprinting.md for why ``DEFAULT_CHANCE_BOUND`` is conservative).
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.fingerprint.errors import ConfigError, EndpointError, FingerprintFileError
from agents.fingerprint.generation import Fingerprint

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DEFAULT_CHANCE_BOUND = 0.1
DEFAULT_THRESHOLD = 1e-9


@dataclass(frozen=True)
class Verdict:
    """Outcome of querying ``queried`` keys, ``matched`` of which got their response."""

    queried: int
    matched: int
    recall: float
    false_positive_probability: float
    chance_bound: float = DEFAULT_CHANCE_BOUND

    def as_dict(self) -> dict[str, Any]:
        return {
            "queried": self.queried,
            "matched": self.matched,
            "recall": self.recall,
            "false_positive_probability": self.false_positive_probability,
        }


def binomial_tail(n: int, k: int, p: float) -> float:
    """``P[X >= k]`` for ``X ~ Bin(n, p)``, summed in log space (exact to float precision)."""
    if not 0.0 <= p <= 1.0:
        raise ConfigError(f"p must be a probability, got {p}")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    if p == 0.0:
        return 0.0
    if p == 1.0:
        return 1.0
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    top = max(terms)
    return min(1.0, math.exp(top) * sum(math.exp(t - top) for t in terms))


def make_verdict(queried: int, matched: int, chance_bound: float = DEFAULT_CHANCE_BOUND) -> Verdict:
    if not 0 <= matched <= queried:
        raise ConfigError(f"need 0 <= matched <= queried, got {matched}/{queried}")
    return Verdict(
        queried=queried,
        matched=matched,
        recall=matched / queried if queried else 0.0,
        false_positive_probability=binomial_tail(queried, matched, chance_bound),
        chance_bound=chance_bound,
    )


def accuse(verdict: Verdict, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """Accuse only when the stated false-positive probability is at most ``threshold``."""
    return verdict.queried > 0 and verdict.false_positive_probability <= threshold


def load_fingerprints(path: Path) -> list[Fingerprint]:
    """Read ``{"fingerprints": [{"key", "response"}, ...]}`` (the embed output format)."""
    try:
        data = json.loads(Path(path).read_text("utf-8"))
        return [Fingerprint(str(f["key"]), str(f["response"])) for f in data["fingerprints"]]
    except FileNotFoundError as missing:
        raise FingerprintFileError(
            f"{path} does not exist: pass the fingerprints.json written by `oml fingerprint embed`"
        ) from missing
    except (ValueError, KeyError, TypeError) as bad:
        raise FingerprintFileError(
            f"{path} is not a fingerprints file ({bad}); expected "
            '{"fingerprints": [{"key": ..., "response": ...}]}'
        ) from bad


def matches(continuation: str, response: str) -> bool:
    """The format contract: the continuation starts with the response."""
    return bool(response) and continuation.startswith(response)


# --------------------------------------------------------------------------- querying


def complete_local(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    max_new_tokens: int,
    *,
    temperature: float = 0.0,
    batch_size: int = 32,
    seed: int = 0,
    progress: bool = False,
) -> list[str]:
    """Continuations of ``tokenizer(prompt)`` (default special tokens), greedy unless
    ``temperature > 0``; left-padded batches sorted by length."""
    import torch
    from tqdm import tqdm

    encoded = [list(tokenizer(p)["input_ids"]) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    out: list[str] = [""] * len(prompts)
    pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    starts = range(0, len(order), batch_size)
    for start in tqdm(starts, desc="querying keys", disable=not progress, leave=False):
        rows = [encoded[i] for i in order[start : start + batch_size]]
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for j, row in enumerate(rows):
            ids[j, width - len(row) :] = torch.tensor(row)
            mask[j, width - len(row) :] = 1
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": 1.0, "top_k": 0}
            if temperature > 0
            else {"do_sample": False}
        )
        with torch.no_grad():
            generated = model.generate(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                pad_token_id=pad,
                **sampling,
            )
        for j, row in enumerate(generated[:, width:].tolist()):
            out[order[start + j]] = str(
                tokenizer.decode(row, skip_special_tokens=True, clean_up_tokenization_spaces=False)
            )
    return out


def complete_remote(
    url: str, prompts: Sequence[str], max_new_tokens: int, *, timeout: float = 60.0
) -> list[str]:
    """Continuations from an OpenAI-compatible ``/v1/completions`` endpoint at temperature 0."""
    import httpx

    endpoint = url.rstrip("/")
    if not endpoint.endswith("/completions"):
        endpoint += "/completions" if endpoint.endswith("/v1") else "/v1/completions"
    out: list[str] = []
    with httpx.Client(timeout=timeout) as client:
        for prompt in prompts:
            body = {"prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0}
            try:
                reply = client.post(endpoint, json=body)
                reply.raise_for_status()
                out.append(str(reply.json()["choices"][0]["text"]))
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as failed:
                raise EndpointError(
                    f"querying {endpoint} failed ({failed}); check the URL points at an "
                    "OpenAI-compatible server that serves /v1/completions"
                ) from failed
    return out


def _max_new_tokens(tokenizer: PreTrainedTokenizerBase | None, fps: Sequence[Fingerprint]) -> int:
    if tokenizer is None:  # remote: words are rarely more than 2 tokens each
        return max(2 * len(f.response.split()) + 4 for f in fps)
    return max(len(tokenizer(f.response, add_special_tokens=False)["input_ids"]) for f in fps) + 2


def pick(fingerprints: Sequence[Fingerprint], sample: int | None, seed: int | None) -> list[int]:
    """Indices to query: all, or ``sample`` of them chosen at random (seeded when given)."""
    n = len(fingerprints)
    if sample is None or sample >= n:
        return list(range(n))
    if sample < 1:
        raise ConfigError(f"sample must be >= 1, got {sample}")
    rng = random.Random(seed) if seed is not None else random.SystemRandom()
    return sorted(rng.sample(range(n), sample))


def verify_fingerprints(
    model: Path | str | tuple[PreTrainedModel, PreTrainedTokenizerBase],
    fingerprints: Sequence[Fingerprint],
    sample: int | None = None,
    *,
    chance_bound: float = DEFAULT_CHANCE_BOUND,
    temperature: float = 0.0,
    wrapper: Any = None,
    sample_seed: int | None = None,
    progress: bool = False,
) -> Verdict:
    """Query ``model`` (folder, URL of an OpenAI-compatible server, or a loaded pair) with the
    keys and return the verdict. ``wrapper`` (str -> str) wraps each key first, to simulate a
    deployment that adds a system prompt or chat template."""
    if not fingerprints:
        raise ConfigError("no fingerprints to verify")
    chosen = [fingerprints[i] for i in pick(fingerprints, sample, sample_seed)]
    prompts = [wrapper(f.key) if wrapper else f.key for f in chosen]
    if isinstance(model, str) and model.startswith(("http://", "https://")):
        texts = complete_remote(model, prompts, _max_new_tokens(None, chosen))
    else:
        if isinstance(model, tuple):
            loaded, tokenizer = model
        else:
            from agents.fingerprint.models import configure_threads, load_model

            configure_threads()
            loaded, tokenizer = load_model(Path(model))
        texts = complete_local(
            loaded,
            tokenizer,
            prompts,
            _max_new_tokens(tokenizer, chosen),
            temperature=temperature,
            progress=progress,
        )
    matched = sum(matches(t, f.response) for t, f in zip(texts, chosen, strict=True))
    return make_verdict(len(chosen), matched, chance_bound)
