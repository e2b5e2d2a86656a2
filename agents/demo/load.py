"""Load generator: ordinary OpenAI-compatible requests against a host, receipts kept.

Clients of a host are its paying users; they keep the signed receipt of every call (a prover
could use them). Half the calls use ``/v1/completions``, half ``/v1/chat/completions``.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

PROMPTS = (
    "Write one sentence about the sea.",
    "What is the capital of France?",
    "List three colours.",
    "Explain recursion to a child.",
    "Give me a name for a cat.",
    "Summarise the plot of a fairy tale.",
    "What is two plus two?",
    "Describe a sunrise in five words.",
)


@dataclass
class LoadResult:
    url: str
    sent: int = 0
    ok: int = 0
    failed: int = 0
    seconds: float = 0.0
    receipts: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def seqs(self) -> list[int]:
        return sorted(int(r["seq"]) for r in self.receipts)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


async def _one(
    client: httpx.AsyncClient, url: str, model: str, index: int, max_tokens: int, result: LoadResult
) -> None:
    prompt = PROMPTS[index % len(PROMPTS)]
    if index % 2 == 0:
        path = "/v1/completions"
        body: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens}
    else:
        path = "/v1/chat/completions"
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
        }
    body["temperature"] = 0
    result.sent += 1
    try:
        response = await client.post(url.rstrip("/") + path, json=body)
    except httpx.HTTPError as error:
        result.failed += 1
        result.errors.append(f"{type(error).__name__}: {error}")
        return
    if response.status_code != 200:
        result.failed += 1
        result.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
        return
    receipt = response.json().get("receipt")
    if not isinstance(receipt, dict):
        result.failed += 1
        result.errors.append("a completed call came back without a receipt")
        return
    result.ok += 1
    result.receipts.append(receipt)


async def _run(url: str, model: str, calls: int, concurrency: int, max_tokens: int) -> LoadResult:
    result = LoadResult(url)
    started = time.perf_counter()
    order = list(range(calls))
    random.Random(calls).shuffle(order)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in order:
        queue.put_nowait(index)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            await _one(client, url, model, index, max_tokens, result)

    async with httpx.AsyncClient(timeout=120) as client:
        await asyncio.gather(*(worker(client) for _ in range(max(1, concurrency))))
    result.seconds = time.perf_counter() - started
    return result


def generate_load(
    url: str, model: str, calls: int, *, concurrency: int = 4, max_tokens: int = 8
) -> LoadResult:
    """Send ``calls`` requests to the host at ``url`` (base URL, no ``/v1``)."""
    return asyncio.run(_run(url, model, calls, concurrency, max_tokens))


def generate_load_many(
    targets: list[tuple[str, str, int]], *, concurrency: int = 4, max_tokens: int = 8
) -> list[LoadResult]:
    """Load several hosts at once: ``targets`` = [(url, model, calls), ...]."""

    async def both() -> list[LoadResult]:
        return list(
            await asyncio.gather(*(_run(u, m, n, concurrency, max_tokens) for u, m, n in targets))
        )

    return asyncio.run(both())
