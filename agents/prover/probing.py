"""Talking to OpenAI-compatible endpoints: probe prompts, transcripts and receipt checks.

A probe round is a shuffled mix of ordinary prompts and fingerprint keys, all sent the same
way (``/v1/completions``, temperature 0, one ``max_tokens`` for the whole round), so the
keys do not stand out from the traffic around them. Every exchange is kept as a transcript
entry (request, response body, timestamps) — the raw material of leak evidence.

A host's receipt is checked against the prover's *own* view: the EIP-712 domain is the
deployment's chain id and ChallengeManager (not what the host claims), the signer must be the
copy's host on chain, and the hashes must be those of the prompt sent and the text received.
A receipt with a valid host signature is worth keeping even when a hash is off (the contract
only checks the signature and the seq); the mismatch is recorded as an anomaly.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from eth_utils.crypto import keccak

from agents.chain.receipts import Receipt, recover_signer, text_hash
from agents.fingerprint.detection import matches
from agents.fingerprint.prompts import BENIGN_OPENERS
from agents.prover.errors import ProbeError
from agents.prover.state import KeyMaterial

RECEIPT_HEADER = "X-OML-Receipt"

_TOPICS = (
    "the water cycle",
    "compound interest",
    "the French Revolution",
    "a healthy breakfast",
    "binary search",
    "volcanoes",
    "the history of tea",
    "photosynthesis",
    "jazz music",
    "time management",
    "the Roman Empire",
    "electric cars",
    "sourdough bread",
    "black holes",
    "learning to swim",
    "the stock market",
    "recycling plastics",
    "chess openings",
)
_TEMPLATES = (
    "Explain {t} in two sentences.",
    "Write a short paragraph about {t}.",
    "What are three interesting facts about {t}?",
    "Summarise {t} for a ten-year-old.",
    "Give me a one-line definition of {t}.",
    "{t}:",
)


def cover_prompts(rng: random.Random, count: int) -> list[str]:
    """Ordinary-looking prompts (openers and everyday questions) to hide keys among."""
    out = []
    for _ in range(count):
        if rng.random() < 0.4:
            out.append(rng.choice(BENIGN_OPENERS))
        else:
            out.append(rng.choice(_TEMPLATES).replace("{t}", rng.choice(_TOPICS)))
    return out


@dataclass(frozen=True)
class ProbeItem:
    prompt: str
    key: KeyMaterial | None = None


def schedule(keys: Sequence[KeyMaterial], covers: int, rng: random.Random) -> list[ProbeItem]:
    """Keys and ``covers`` ordinary prompts in a random order."""
    items = [ProbeItem(k.key, k) for k in keys] + [ProbeItem(p) for p in cover_prompts(rng, covers)]
    rng.shuffle(items)
    return items


def key_max_tokens(keys: Sequence[KeyMaterial], floor: int) -> int:
    """Enough tokens to read each key's response (words are rarely more than 2 tokens)."""
    return max([floor, *(2 * len(k.response.split()) + 4 for k in keys)])


@dataclass
class Exchange:
    """One request/response with an endpoint, as it goes into evidence."""

    endpoint: str
    prompt: str
    request: dict[str, Any]
    started_at: float
    finished_at: float
    status: int | None = None
    text: str | None = None
    body: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None
    error: str | None = None
    key: KeyMaterial | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float:
        return self.finished_at - self.started_at

    @property
    def matched(self) -> bool | None:
        if self.key is None:
            return None
        return self.text is not None and matches(self.text, self.key.response)

    def transcript(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "endpoint": self.endpoint,
            "request": self.request,
            "status": self.status,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "text": self.text,
            "response": self.body,
            "error": self.error,
        }
        if self.key is not None:
            entry["fingerprint"] = {**self.key.to_json(), "matched": self.matched}
        return entry


def base_url(endpoint: str) -> str:
    """``http://h:p`` from ``http://h:p``, ``http://h:p/v1`` or ``…/v1/completions``."""
    url = endpoint.strip().rstrip("/")
    for suffix in ("/v1/completions", "/completions", "/v1"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
            break
    if not url.startswith(("http://", "https://")):
        raise ProbeError(f"{endpoint!r} is not an http(s) URL")
    return url


class EndpointClient:
    """An OpenAI-compatible server, asked one completion at a time."""

    def __init__(self, endpoint: str, *, timeout_s: float = 60.0, model: str | None = None) -> None:
        self.endpoint = endpoint
        self.base = base_url(endpoint)
        self._model = model
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EndpointClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def model(self) -> str:
        """The model name to ask for: given, or the first one ``/v1/models`` lists."""
        if self._model is None:
            try:
                reply = self._http.get(f"{self.base}/v1/models")
                reply.raise_for_status()
                self._model = str(reply.json()["data"][0]["id"])
            except (httpx.HTTPError, KeyError, IndexError, ValueError) as error:
                raise ProbeError(
                    f"{self.base}/v1/models did not name a model ({error}); pass the model "
                    "name explicitly (oml prover watch URL --model-name NAME)"
                ) from error
        return self._model

    def complete(self, item: ProbeItem, max_tokens: int) -> Exchange:
        request = {
            "model": self.model(),
            "prompt": item.prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
        }
        started = time.time()
        exchange = Exchange(self.endpoint, item.prompt, request, started, started, key=item.key)
        try:
            reply = self._http.post(f"{self.base}/v1/completions", json=request)
            exchange.status = reply.status_code
            body = reply.json()
            exchange.body = body if isinstance(body, dict) else {"value": body}
            if reply.status_code == 200:
                exchange.text = str(body["choices"][0]["text"])
                raw = body.get("receipt") or _header_receipt(reply)
                exchange.receipt = raw if isinstance(raw, dict) else None
            else:
                exchange.error = f"HTTP {reply.status_code}"
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as error:
            exchange.error = f"{type(error).__name__}: {error}"
        exchange.finished_at = time.time()
        return exchange


def _header_receipt(reply: httpx.Response) -> Any:
    raw = reply.headers.get(RECEIPT_HEADER)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


# --------------------------------------------------------------------------- receipts


@dataclass(frozen=True)
class CheckedReceipt:
    receipt: Receipt
    signature: bytes
    signer: str
    valid: bool  # signed by the copy's host under the deployment's domain: usable on chain
    problems: tuple[str, ...]  # anomalies worth recording (hash mismatches, wrong copy, ...)


def check_receipt(
    raw: dict[str, Any],
    *,
    prompt: str,
    text: str,
    copy_id: int,
    host: str,
    chain_id: int,
    verifying_contract: str,
) -> CheckedReceipt:
    """Parse and verify a receipt; raises :class:`ProbeError` if it cannot even be read."""
    try:
        receipt = Receipt(
            copy_id=int(raw["copyId"]),
            epoch=int(raw["epoch"]),
            seq=int(raw["seq"]),
            prompt_hash=_hex(raw["promptHash"]),
            response_hash=_hex(raw["responseHash"]),
        )
        signature = _hex(raw["signature"])
    except (KeyError, ValueError, TypeError) as error:
        raise ProbeError(f"unreadable receipt {raw!r}: {error}") from error
    problems: list[str] = []
    try:
        signer = recover_signer(receipt, signature, chain_id, verifying_contract)
    except Exception as error:
        return CheckedReceipt(receipt, signature, "", False, (f"bad-signature: {error}",))
    if signer.lower() != host.lower():
        problems.append(f"wrong-signer: {signer} is not the copy's host {host}")
    if receipt.copy_id != copy_id:
        problems.append(f"wrong-copy: receipt names copy {receipt.copy_id}, probed {copy_id}")
    if receipt.prompt_hash != text_hash(prompt):
        problems.append("prompt-hash: does not hash the prompt sent")
    if receipt.response_hash != text_hash(text):
        problems.append("response-hash: does not hash the text returned")
    if receipt.seq == 0:
        problems.append("seq-zero: receipt seqs start at 1")
    valid = signer.lower() == host.lower() and len(signature) == 65
    return CheckedReceipt(receipt, signature, signer, valid, tuple(problems))


def receipt_key(receipt: Receipt) -> bytes:
    """Identity of a receipt's struct (two receipts with one seq and different keys equivocate)."""
    return keccak(
        json.dumps(
            [
                receipt.copy_id,
                receipt.epoch,
                receipt.seq,
                receipt.prompt_hash.hex(),
                receipt.response_hash.hex(),
            ]
        ).encode()
    )


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value).removeprefix("0x"))
