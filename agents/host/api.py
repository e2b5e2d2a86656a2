"""The OpenAI-compatible HTTP surface: completions, chat (incl. SSE streams), models, health.

Every completed call carries its signed receipt in the ``X-OML-Receipt`` header (compact JSON)
and in a ``receipt`` field of the body; a stream carries it in its last chunk. Bad input of any
kind is answered with an OpenAI-style 4xx error object, never a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agents.chain.receipts import chat_prompt_text, text_hash
from agents.host.inference import (
    EngineBusy,
    EngineStopped,
    Generation,
    InferenceEngine,
    SamplingParams,
)
from agents.host.ledger import SignedReceipt
from agents.host.metering import Metering

log = logging.getLogger(__name__)

RECEIPT_HEADER = "X-OML-Receipt"
_R = TypeVar("_R", bound=BaseModel)


@dataclass
class ServingConfig:
    model_name: str
    copy_id: int
    signer: str
    chain_id: int
    verifying_contract: str
    max_tokens_limit: int = 512
    default_max_tokens: int = 16
    max_prompt_tokens: int = 2048
    max_body_bytes: int = 1_000_000


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> JSONResponse:
        kind = {404: "not_found_error", 413: "invalid_request_error", 503: "server_busy"}
        return JSONResponse(
            {
                "error": {
                    "message": self.message,
                    "type": kind.get(self.status, "invalid_request_error"),
                    "param": self.param,
                    "code": self.code,
                }
            },
            status_code=self.status,
            headers={"Retry-After": "1"} if self.status == 503 else None,
        )


# --------------------------------------------------------------------- request bodies


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    model: str
    max_tokens: int | None = None
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    n: int = 1
    stream: bool = False
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=0, lt=2**63)
    stream_options: dict[str, Any] | None = None

    @field_validator("temperature", "top_p", mode="before")
    @classmethod
    def _numbers(cls, value: Any) -> Any:
        # strict mode refuses ints for floats; JSON has no such distinction
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def stop_strings(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ApiError(400, "stop takes at most 4 non-empty strings", param="stop")
        return tuple(stops)


class CompletionRequest(_Request):
    prompt: str | list[str]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(_Request):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = None


# --------------------------------------------------------------------- the app


def create_app(
    engine: InferenceEngine,
    metering: Metering | None,
    config: ServingConfig,
    *,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """``metering=None`` serves without receipts (benchmark baseline only)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await engine.start()
        if metering is not None:
            await metering.start()
        log.info("serving %s (copy %d) as %s", config.model_name, config.copy_id, config.signer)
        try:
            yield
        finally:
            # uvicorn has already let in-flight responses finish; drain what is queued.
            await engine.stop()
            if on_shutdown is not None:  # e.g. stop the reporter before the ledger closes
                await on_shutdown()
            if metering is not None:
                await metering.stop()
            log.info("stopped; last seq %s", metering.ledger.last_seq if metering else "-")

    app = FastAPI(title="OML Hub host", version="1", lifespan=lifespan)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return error.response()

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {
            "status": "ok",
            "model": config.model_name,
            "copyId": config.copy_id,
            "signer": config.signer,
            "queued": engine.queued,
            "accepted": engine.accepted,
            "lastSeq": metering.ledger.last_seq if metering else None,
        }

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": config.model_name, "object": "model", "created": 0, "owned_by": "oml-hub"}
            ],
        }

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        body = _parse(CompletionRequest, await _read_json(request, config.max_body_bytes))
        prompt = body.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise ApiError(400, "exactly one prompt per request", param="prompt")
            prompt = prompt[0]
        _check_text(prompt, "prompt", config)
        ids = await asyncio.to_thread(engine.encode_prompt, prompt)
        return await _serve(
            engine, metering, config, body, body.max_tokens, ids, prompt, chat=False
        )

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        body = _parse(ChatRequest, await _read_json(request, config.max_body_bytes))
        messages = [(m.role, m.text()) for m in body.messages]
        for _, text in messages:
            _check_text(text, "messages", config)
        turns = [{"role": role, "content": text} for role, text in messages]
        try:
            ids = await asyncio.to_thread(engine.encode_chat, turns)
        except Exception as error:  # templates may reject role orders (e.g. two system turns)
            raise ApiError(400, f"messages do not fit the chat template: {error}") from error
        max_tokens = body.max_completion_tokens or body.max_tokens
        return await _serve(
            engine, metering, config, body, max_tokens, ids, chat_prompt_text(messages), chat=True
        )

    return app


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes", code="request_too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body over {limit} bytes", code="request_too_large")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as error:
        raise ApiError(400, f"body is not valid JSON: {error}", code="invalid_json") from error


def _parse(model: type[_R], data: Any) -> _R:
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object", code="invalid_json")
    if "model" in data and not isinstance(data["model"], str):
        raise ApiError(400, "model must be a string", param="model")
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        raise ApiError(400, f"{param}: {first['msg']}", param=param) from None


def _check_text(text: str, param: str, config: ServingConfig) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"{param} is not valid Unicode (lone surrogate)", param=param) from None
    # a token is at least one character, so this rejects absurd prompts before tokenizing
    if len(text) > config.max_prompt_tokens * 64:
        raise ApiError(400, f"{param} is too long", param=param, code="context_length_exceeded")


async def _serve(
    engine: InferenceEngine,
    metering: Metering | None,
    config: ServingConfig,
    body: _Request,
    max_tokens: int | None,
    ids: list[int],
    prompt_text: str,
    *,
    chat: bool,
) -> Response:
    if body.model != config.model_name:
        raise ApiError(
            404,
            f"model {body.model!r} is not served here; use {config.model_name!r}",
            param="model",
            code="model_not_found",
        )
    if body.n != 1:
        raise ApiError(400, "only n=1 is supported", param="n")
    max_tokens = config.default_max_tokens if max_tokens is None else max_tokens
    if not 1 <= max_tokens <= config.max_tokens_limit:
        raise ApiError(
            400,
            f"max_tokens must be between 1 and {config.max_tokens_limit}, got {max_tokens}",
            param="max_tokens",
        )
    if len(ids) > config.max_prompt_tokens:
        raise ApiError(
            400,
            f"prompt is {len(ids)} tokens; the limit is {config.max_prompt_tokens}",
            param="messages" if chat else "prompt",
            code="context_length_exceeded",
        )
    if len(ids) + max_tokens > engine.context_length:
        raise ApiError(
            400,
            f"prompt ({len(ids)} tokens) + max_tokens ({max_tokens}) exceeds the context "
            f"length {engine.context_length}",
            param="max_tokens",
            code="context_length_exceeded",
        )
    params = SamplingParams(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stop_strings(),
        seed=body.seed,
    )
    call_id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex
    created = int(time.time())
    try:
        if body.stream:
            deltas, result = await engine.stream(ids, params)
            include_usage = bool((body.stream_options or {}).get("include_usage"))
            events = _sse(
                deltas, result, metering, config, prompt_text, call_id, created, chat, include_usage
            )
            return StreamingResponse(events, media_type="text/event-stream")
        generation = await engine.generate(ids, params)
    except EngineBusy as error:
        raise ApiError(503, f"busy: {error}; retry shortly", code="busy") from error
    except EngineStopped as error:
        raise ApiError(503, str(error), code="shutting_down") from error
    receipt = await _book(metering, config, prompt_text, generation.text)
    choice: dict[str, Any] = {"index": 0, "finish_reason": generation.finish_reason}
    if chat:
        choice["message"] = {"role": "assistant", "content": generation.text}
    else:
        choice.update(text=generation.text, logprobs=None)
    payload: dict[str, Any] = {
        "id": call_id,
        "object": "chat.completion" if chat else "text_completion",
        "created": created,
        "model": config.model_name,
        "choices": [choice],
        "usage": _usage(generation),
    }
    headers = {}
    if receipt is not None:
        payload["receipt"] = receipt
        headers[RECEIPT_HEADER] = json.dumps(receipt, separators=(",", ":"))
    return JSONResponse(payload, headers=headers)


async def _book(
    metering: Metering | None, config: ServingConfig, prompt_text: str, response_text: str
) -> dict[str, Any] | None:
    if metering is None:
        return None
    signed: SignedReceipt = await metering.issue(text_hash(prompt_text), text_hash(response_text))
    return {
        **signed.to_json(),
        "signer": config.signer,
        "chainId": config.chain_id,
        "verifyingContract": config.verifying_contract,
    }


def _usage(generation: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": generation.prompt_tokens,
        "completion_tokens": generation.completion_tokens,
        "total_tokens": generation.prompt_tokens + generation.completion_tokens,
    }


async def _sse(
    deltas: AsyncIterator[str],
    result: asyncio.Future[Generation],
    metering: Metering | None,
    config: ServingConfig,
    prompt_text: str,
    call_id: str,
    created: int,
    chat: bool,
    include_usage: bool,
) -> AsyncIterator[bytes]:
    def chunk(delta: str | None, finish: str | None, **extra: Any) -> bytes:
        if chat:
            piece: dict[str, Any] = {"role": "assistant", "content": delta} if delta else {}
            choice: dict[str, Any] = {"index": 0, "delta": piece, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta or "", "finish_reason": finish, "logprobs": None}
        body = {
            "id": call_id,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": config.model_name,
            "choices": [choice],
            **extra,
        }
        return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"

    async for delta in deltas:
        yield chunk(delta, None)
    generation = await result
    receipt = await _book(metering, config, prompt_text, generation.text)
    extra: dict[str, Any] = {"receipt": receipt} if receipt is not None else {}
    if include_usage:
        extra["usage"] = _usage(generation)
    yield chunk(None, generation.finish_reason, **extra)
    yield b"data: [DONE]\n\n"
