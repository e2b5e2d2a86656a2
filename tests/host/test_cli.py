"""`oml host` as an operator runs it: a real subprocess, SIGTERM while requests are in flight."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from click.testing import CliRunner
from hostkit import free_port
from receipts_check import recover
from tiny_model import tiny_model_dir

from agents.chain.keystore import dev_account
from agents.cli import cli


def test_serve_drains_in_flight_requests_on_sigterm_and_status_reads_the_ledger(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "OML_HOST_STATE_DIR": str(tmp_path),
        "OML_HOST_MAX_TOKENS_LIMIT": "64",
        "OML_HOST_MAX_BATCH_SIZE": "2",
        # three batches must finish inside the grace even on a loaded 2-core CI machine
        "OML_HOST_SHUTDOWN_TIMEOUT_S": "300",
    }
    config = tmp_path / "host.toml"
    config.write_text(f'[host]\ncopy_id = 5\nport = {port}\nmodel_name = "copy5"\n')
    command = [sys.executable, "-m", "agents.cli", "host", "--config", str(config), "--offline"]
    command += ["serve", "--model-dir", str(tiny_model_dir())]
    process = subprocess.Popen(
        [sys.executable, "-c", "from agents.cli import main; main()", *command[3:]],
        env=env,
        stderr=(tmp_path / "serve.log").open("w"),  # a pipe nobody reads could block the server
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.2)

        def call(i: int) -> httpx.Response:
            body = {"model": "copy5", "prompt": f"call {i}", "max_tokens": 16, "temperature": 0}
            return httpx.post(url + "/v1/completions", json=body, timeout=600)

        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(call, i) for i in range(6)]
            wait_until_accepted(url, 6)  # all six are queued or generating
            process.send_signal(signal.SIGTERM)
            responses = [f.result() for f in futures]
        # uvicorn re-raises the signal after its graceful shutdown (conventional exit status)
        assert process.wait(timeout=300) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    codes = [r.status_code for r in responses]
    assert codes == [200] * 6, (tmp_path / "serve.log").read_text()[-3000:]
    receipts = [r.json()["receipt"] for r in responses]
    assert sorted(r["seq"] for r in receipts) == [1, 2, 3, 4, 5, 6]
    assert all(recover(r) == dev_account(2).address for r in receipts)

    runner = CliRunner()
    result = runner.invoke(
        cli, ["host", "--config", str(config), "--offline", "status", "--json"], env=env
    )
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["host"] == dev_account(2).address
    [copy] = status["copies"]
    assert copy["copyId"] == 5 and copy["lastSeq"] == 6 and copy["epochsReported"] == 0

    refused = runner.invoke(cli, ["host", "--offline", "report"], env=env)
    assert refused.exit_code != 0 and "needs the chain" in refused.output


def wait_until_accepted(url: str, count: int, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if httpx.get(url + "/healthz", timeout=5).json()["accepted"] >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"the server did not take in {count} requests in {timeout_s}s")
