"""The real server with a tiny model, driven by the official openai client and raw HTTP."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
from eth_utils.crypto import keccak
from hostkit import COPY_ID, MODEL_NAME, RunningHost
from receipts_check import recover


def client(host: RunningHost) -> openai.OpenAI:
    return openai.OpenAI(base_url=host.url + "/v1", api_key="unused", max_retries=0)


def test_completion_and_chat_with_openai_client_carry_verifiable_receipts(start_host: Any) -> None:
    host = start_host()
    api = client(host)

    raw = api.completions.with_raw_response.create(
        model=MODEL_NAME, prompt="The capital of France is", max_tokens=5, temperature=0
    )
    completion = raw.parse()
    text = completion.choices[0].text
    assert completion.usage is not None and completion.usage.completion_tokens <= 5
    receipt = json.loads(raw.headers["x-oml-receipt"])
    assert receipt == completion.model_extra["receipt"]  # type: ignore[index]
    assert receipt["copyId"] == COPY_ID and receipt["seq"] == 1
    assert receipt["promptHash"] == "0x" + keccak(text="The capital of France is").hex()
    assert receipt["responseHash"] == "0x" + keccak(text=text).hex()
    assert recover(receipt) == host.signer

    messages: list[Any] = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Héllo 👋"},
    ]
    chat = api.chat.completions.create(model=MODEL_NAME, messages=messages, max_tokens=4)
    answer = chat.choices[0].message.content or ""
    chat_receipt = chat.model_extra["receipt"]  # type: ignore[index]
    expected_prompt = json.dumps(messages, separators=(",", ":"), ensure_ascii=False)
    assert chat_receipt["promptHash"] == "0x" + keccak(text=expected_prompt).hex()
    assert chat_receipt["responseHash"] == "0x" + keccak(text=answer).hex()
    assert chat_receipt["seq"] == 2
    assert recover(chat_receipt) == host.signer

    models = api.models.list()
    assert [m.id for m in models.data] == [MODEL_NAME]


def test_streams_deliver_text_then_a_receipt_in_the_last_chunk(start_host: Any) -> None:
    host = start_host()
    api = client(host)
    chunks = list(
        api.chat.completions.create(
            model=MODEL_NAME,
            messages=[{"role": "user", "content": "count"}],
            max_tokens=6,
            temperature=0,
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason in {"stop", "length"}
    receipt = last.model_extra["receipt"]  # type: ignore[index]
    assert receipt["responseHash"] == "0x" + keccak(text=text).hex()
    assert recover(receipt) == host.signer

    # the same greedy request without streaming gives the same text
    plain = api.chat.completions.create(
        model=MODEL_NAME,
        messages=[{"role": "user", "content": "count"}],
        max_tokens=6,
        temperature=0,
    )
    assert plain.choices[0].message.content == text

    pieces = list(
        api.completions.create(model=MODEL_NAME, prompt="a b c", max_tokens=4, stream=True)
    )
    assert pieces[-1].model_extra["receipt"]["seq"] == 3  # type: ignore[index]


def test_seq_is_contiguous_across_a_restart(start_host: Any, tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite3"
    first = start_host(ledger_path=path)
    api = client(first)
    seqs = [
        api.completions.create(model=MODEL_NAME, prompt=f"p{i}", max_tokens=2).model_extra[  # type: ignore[index]
            "receipt"
        ]["seq"]
        for i in range(3)
    ]
    first.stop()  # graceful: flushes and checkpoints the ledger
    second = start_host(ledger_path=path)
    api = client(second)
    seqs += [
        api.completions.create(model=MODEL_NAME, prompt=f"q{i}", max_tokens=2).model_extra[  # type: ignore[index]
            "receipt"
        ]["seq"]
        for i in range(3)
    ]
    assert seqs == [1, 2, 3, 4, 5, 6]
    assert second.ledger is not None
    assert [r.receipt.seq for r in second.ledger.receipts()] == [1, 2, 3, 4, 5, 6]


def test_concurrent_load_keeps_seq_unique_and_contiguous(start_host: Any) -> None:
    host = start_host(max_batch_size=16)

    def worker(index: int) -> list[dict[str, Any]]:
        out = []
        with httpx.Client(base_url=host.url, timeout=120) as http:
            for j in range(10):
                chat = j % 2 == 1
                path = "/v1/chat/completions" if chat else "/v1/completions"
                body: dict[str, Any] = {"model": MODEL_NAME, "max_tokens": 2, "seed": j}
                if chat:
                    body["messages"] = [{"role": "user", "content": f"client {index} call {j}"}]
                else:
                    body["prompt"] = f"client {index} call {j}"
                response = http.post(path, json=body)
                assert response.status_code == 200, response.text
                out.append(response.json()["receipt"])
        return out

    with ThreadPoolExecutor(max_workers=20) as pool:
        receipts = [r for batch in pool.map(worker, range(20)) for r in batch]
    seqs = sorted(r["seq"] for r in receipts)
    assert seqs == list(range(1, 201))
    assert host.ledger is not None and host.ledger.last_seq == 200
    for receipt in receipts[::37]:
        assert recover(receipt) == host.signer


def test_bad_requests_get_clear_4xx(start_host: Any, http: httpx.Client) -> None:
    host = start_host(max_tokens_limit=16, max_prompt_tokens=32)
    url = host.url + "/v1/completions"

    def post(body: Any, **kw: Any) -> httpx.Response:
        return http.post(url, content=body if isinstance(body, bytes) else json.dumps(body), **kw)

    cases: list[tuple[Any, int, str | None]] = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        ({"model": "gpt-4", "prompt": "x"}, 404, "model_not_found"),
        ({"model": MODEL_NAME, "prompt": "x", "max_tokens": 0}, 400, None),
        ({"model": MODEL_NAME, "prompt": "x", "max_tokens": 17}, 400, None),
        ({"model": MODEL_NAME, "prompt": "x", "max_tokens": "4"}, 400, None),
        ({"model": MODEL_NAME, "prompt": "word " * 200}, 400, "context_length_exceeded"),
        ({"model": MODEL_NAME, "prompt": "x", "n": 2}, 400, None),
        ({"model": MODEL_NAME, "prompt": ["a", "b"]}, 400, None),
        ({"model": MODEL_NAME}, 400, None),
        ({"model": MODEL_NAME, "prompt": "x", "temperature": 9}, 400, None),
        ({"model": MODEL_NAME, "prompt": "x", "stop": ["a", "b", "c", "d", "e"]}, 400, None),
        (b'{"model": "tiny-copy", "prompt": "\\ud800"}', 400, None),
        (b'{"model": "tiny-copy", "prompt": "' + b"x" * 70_000 + b'"}', 413, None),
    ]
    for body, status, code in cases:
        response = post(body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert error["message"]
        if code:
            assert error["code"] == code
    chat = http.post(
        host.url + "/v1/chat/completions",
        json={"model": MODEL_NAME, "messages": [{"role": "wizard", "content": "x"}]},
    )
    assert chat.status_code == 400 and chat.json()["error"]["param"].startswith("messages")
    # nothing was metered for refused calls
    assert host.ledger is not None and host.ledger.last_seq == 0
    health = http.get(host.url + "/healthz").json()
    assert health["status"] == "ok" and health["lastSeq"] == 0


def test_serving_without_metering_returns_no_receipt(start_host: Any) -> None:
    host = start_host(metering=False)
    response = httpx.post(
        host.url + "/v1/completions", json={"model": MODEL_NAME, "prompt": "hi", "max_tokens": 2}
    )
    assert response.status_code == 200
    assert "receipt" not in response.json() and "x-oml-receipt" not in response.headers
