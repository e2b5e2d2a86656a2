"""The transformers engine: batched generation on one worker thread, never on the event loop.

Requests queue up in an asyncio queue; a batcher task takes whatever is waiting (up to
``max_batch_size``, waiting ``batch_wait_s`` for company when idle) and runs the batch on a
single worker thread with a plain KV-cached decode loop. Each row keeps its own sampling
parameters, token budget and stop strings; streamed text is pushed back to the event loop as
it is produced. Stopping drains the queue: every accepted request is answered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


class EngineBusy(RuntimeError):
    """The request queue is full; the client should retry later (HTTP 503)."""


class EngineStopped(RuntimeError):
    """The engine is shutting down and accepts no new work (HTTP 503)."""


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


@dataclass
class _Job:
    input_ids: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Generation]
    deltas: asyncio.Queue[str] | None = None
    sent: str = ""
    tokens: list[int] = field(default_factory=list)


class InferenceEngine:
    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_batch_size: int = 8,
        batch_wait_s: float = 0.005,
        max_queue: int = 1024,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.max_batch_size = max_batch_size
        self.batch_wait_s = batch_wait_s
        self.max_queue = max_queue
        self.device = next(model.parameters()).device
        self.context_length = int(getattr(model.config, "max_position_embeddings", 2048))
        self.pad_id = _first_int(tokenizer.pad_token_id, tokenizer.eos_token_id, 0)
        self.stop_ids = _stop_token_ids(tokenizer)
        self._queue: asyncio.Queue[_Job | None] | None = None
        self._batcher: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="oml-generate")
        self._accepting = False
        self._accepted = 0
        self.batches_run = 0

    @classmethod
    def load(cls, model_dir: Path, device: str = "auto", **kwargs: Any) -> InferenceEngine:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.float32 if device == "cpu" else torch.bfloat16
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype).to(device)
        model.eval()
        return cls(model, tokenizer, **kwargs)

    # ----------------------------------------------------------------- prompts

    def encode_prompt(self, prompt: str) -> list[int]:
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def encode_chat(self, messages: Sequence[dict[str, str]]) -> list[int]:
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(
                list(messages), tokenize=False, add_generation_prompt=True
            )
        else:
            text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        return list(self.tokenizer(str(text), add_special_tokens=False)["input_ids"])

    # ----------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._accepting = True
        self._batcher = asyncio.create_task(self._run_batcher(), name="oml-batcher")

    async def stop(self) -> None:
        """Refuse new work, finish everything queued, then release the worker thread."""
        self._accepting = False
        if self._queue is not None and self._batcher is not None:
            await self._queue.put(None)
            await self._batcher
        self._executor.shutdown(wait=True)

    @property
    def queued(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    @property
    def accepted(self) -> int:
        """Requests taken in since start (monotonic; for health checks and drain tests)."""
        return self._accepted

    # ----------------------------------------------------------------- requests

    async def generate(self, input_ids: list[int], params: SamplingParams) -> Generation:
        job = self._submit(input_ids, params, stream=False)
        return await job.future

    async def stream(
        self, input_ids: list[int], params: SamplingParams
    ) -> tuple[AsyncIterator[str], asyncio.Future[Generation]]:
        """Text deltas as they are produced, and the final generation (set after the last)."""
        job = self._submit(input_ids, params, stream=True)
        assert job.deltas is not None
        deltas = job.deltas

        async def iterate() -> AsyncIterator[str]:
            while True:
                get = asyncio.ensure_future(deltas.get())
                waiting: set[asyncio.Future[Any]] = {get, job.future}
                done, _ = await asyncio.wait(waiting, return_when="FIRST_COMPLETED")
                if get in done:
                    yield get.result()
                    continue
                get.cancel()
                while not deltas.empty():
                    yield deltas.get_nowait()
                return

        return iterate(), job.future

    def _submit(self, input_ids: list[int], params: SamplingParams, *, stream: bool) -> _Job:
        if not self._accepting or self._queue is None:
            raise EngineStopped("the server is shutting down")
        if self._queue.qsize() >= self.max_queue:
            raise EngineBusy(f"{self.max_queue} requests already queued")
        self._accepted += 1
        loop = asyncio.get_running_loop()
        job = _Job(
            input_ids=input_ids or [self.pad_id],  # an empty prompt still needs one position
            params=params,
            loop=loop,
            future=loop.create_future(),
            deltas=asyncio.Queue() if stream else None,
        )
        self._queue.put_nowait(job)
        return job

    async def _run_batcher(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.max_batch_size:
                # Poll rather than wait_for(queue.get()): on Python 3.11 a wait_for that times
                # out as the get completes drops the item, and that request would hang forever.
                if self._queue.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    await asyncio.sleep(min(remaining, 0.001))
                    continue
                job = self._queue.get_nowait()
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            try:
                await loop.run_in_executor(self._executor, self._run_batch, batch)
            except Exception as error:  # a broken batch must not take the server down
                log.exception("generation failed for a batch of %d", len(batch))
                for job in batch:
                    _resolve(job, error)
        # drain whatever arrived after the sentinel
        while self._queue is not None and not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None:
                await loop.run_in_executor(self._executor, self._run_batch, [job])

    # ----------------------------------------------------------------- worker thread

    @torch.inference_mode()
    def _run_batch(self, batch: list[_Job]) -> None:
        self.batches_run += 1
        rows = len(batch)
        width = max(len(job.input_ids) for job in batch)
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, width), dtype=torch.long)
        for i, job in enumerate(batch):
            n = len(job.input_ids)
            ids[i, width - n :] = torch.tensor(job.input_ids, dtype=torch.long)
            mask[i, width - n :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [_generator(job.params.seed) for job in batch]
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = out.past_key_values
        logits = out.logits[:, -1, :].float()
        finish: list[str | None] = [None] * rows
        for _ in range(max(job.params.max_tokens for job in batch)):
            next_ids = [
                _sample(logits[i], job.params, generators[i]) if finish[i] is None else self.pad_id
                for i, job in enumerate(batch)
            ]
            for i, job in enumerate(batch):
                if finish[i] is None:
                    finish[i] = self._advance(job, next_ids[i])
            if all(f is not None for f in finish):
                break
            step = torch.tensor(next_ids, dtype=torch.long, device=self.device).view(rows, 1)
            mask = torch.cat([mask, torch.ones((rows, 1), dtype=torch.long, device=self.device)], 1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=step,
                attention_mask=mask,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
            )
            cache = out.past_key_values
            logits = out.logits[:, -1, :].float()
        for i, job in enumerate(batch):
            text = self._text(job)
            _push(job, text)
            result = Generation(
                text=job.sent if job.deltas is not None else text,
                prompt_tokens=len(job.input_ids),
                completion_tokens=len(job.tokens),
                finish_reason=finish[i] or "length",
            )
            _resolve(job, result)

    def _advance(self, job: _Job, token: int) -> str | None:
        """Append ``token``; return the finish reason once the row is done."""
        if token in self.stop_ids:
            return "stop"
        job.tokens.append(token)
        text = self._text(job)
        if job.params.stop and any(s in text for s in job.params.stop):
            return "stop"
        if len(job.tokens) >= job.params.max_tokens:
            return "length"
        if job.deltas is not None:
            hold = max((len(s) for s in job.params.stop), default=1) - 1
            safe = text[: len(text) - hold] if hold else text
            _push(job, safe.rstrip("\ufffd"))
        return None

    def _text(self, job: _Job) -> str:
        text = str(self.tokenizer.decode(job.tokens, skip_special_tokens=True))
        for stop in job.params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        return text


def _push(job: _Job, text: str) -> None:
    """Send the part of ``text`` the client has not seen yet (sent text is never taken back)."""
    if job.deltas is None or not text.startswith(job.sent) or len(text) == len(job.sent):
        return
    delta = text[len(job.sent) :]
    job.sent = text
    job.loop.call_soon_threadsafe(job.deltas.put_nowait, delta)


def _resolve(job: _Job, outcome: Generation | BaseException) -> None:
    def settle() -> None:
        if job.future.done():
            return
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
        else:
            job.future.set_result(outcome)

    job.loop.call_soon_threadsafe(settle)


def _sample(logits: torch.Tensor, params: SamplingParams, gen: torch.Generator | None) -> int:
    if params.temperature <= 0:
        return int(torch.argmax(logits).item())
    probs = torch.softmax(logits / params.temperature, dim=-1)
    if params.top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < params.top_p
        keep[0] = True
        probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_probs[keep])
    if gen is not None:
        probs = probs.cpu()
    return int(torch.multinomial(probs, 1, generator=gen).item())


def _generator(seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _stop_token_ids(tokenizer: Any) -> set[int]:
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    for name in ("<|im_end|>", "<|endoftext|>", "</s>"):
        token_id = tokenizer.convert_tokens_to_ids(name)
        if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
            ids.add(token_id)
    return {int(i) for i in ids}


def _first_int(*values: Any) -> int:
    for value in values:
        if isinstance(value, int):
            return value
    return 0
