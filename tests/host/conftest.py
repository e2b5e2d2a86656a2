"""Fixtures: a tiny real model, and real uvicorn servers on free ports in background threads."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

sys.path.insert(0, str(Path(__file__).parent))

from hostkit import CHAIN_ID, COPY_ID, MODEL_NAME, VERIFYING_CONTRACT, RunningHost, free_port
from tiny_model import tiny_model_dir

from agents.chain.keystore import dev_account
from agents.host.api import ServingConfig, create_app
from agents.host.epochs import EpochClock
from agents.host.inference import InferenceEngine
from agents.host.ledger import ReceiptLedger, ReceiptSigner
from agents.host.metering import Metering


@pytest.fixture(scope="session")
def tiny_model() -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    folder = tiny_model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    return model, tokenizer


@pytest.fixture
def start_host(tiny_model: tuple[Any, Any], tmp_path: Path) -> Iterator[Callable[..., RunningHost]]:
    """Start a host server; each call may reuse ``ledger_path`` to simulate a restart."""
    started: list[RunningHost] = []

    def start(
        *,
        ledger_path: Path | None = None,
        metering: bool = True,
        clock: EpochClock | None = None,
        max_tokens_limit: int = 32,
        max_prompt_tokens: int = 256,
        max_batch_size: int = 8,
    ) -> RunningHost:
        model, tokenizer = tiny_model
        account = dev_account(2)
        signer = ReceiptSigner(account, CHAIN_ID, VERIFYING_CONTRACT)
        ledger = None
        if metering:
            ledger = ReceiptLedger(
                ledger_path or tmp_path / "receipts.sqlite3",
                copy_id=COPY_ID,
                signer=signer,
                clock=clock or EpochClock(genesis=0, length=3600),
            )
        engine = InferenceEngine(model, tokenizer, max_batch_size=max_batch_size)
        config = ServingConfig(
            model_name=MODEL_NAME,
            copy_id=COPY_ID,
            signer=account.address,
            chain_id=CHAIN_ID,
            verifying_contract=VERIFYING_CONTRACT,
            max_tokens_limit=max_tokens_limit,
            default_max_tokens=4,
            max_prompt_tokens=max_prompt_tokens,
            max_body_bytes=64_000,
        )
        app = create_app(engine, Metering(ledger) if ledger else None, config)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)
        host = RunningHost(url, ledger, server, thread, account.address)
        started.append(host)
        return host

    yield start
    for host in started:
        if host.thread.is_alive():
            host.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60) as client:
        yield client
