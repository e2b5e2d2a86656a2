"""What every benchmark shares: the machine description, free ports and a private IPFS node.

Results must say where and when they were measured (machine, load average, date), because
these machines are shared and a loaded CPU halves any figure.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
NODE_BIN = ROOT / "node_modules" / ".bin"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    """CPU, cores, memory, versions and the load average at the time of the run."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(memory_gib, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def peak_rss_gib() -> float:
    """The most resident memory this process has held so far, in GiB (Linux counts KiB)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak * (1 if sys.platform == "darwin" else 1024) / 2**30, 2)


def matmul_gflops(seconds: float = 2.0) -> float:
    """The CPU's speed right now on one product of a training step's size (256 x 576 by
    576 x 1536, float32, torch's threads): the same code measured 97-178 GFLOP/s on these
    shared machines within an hour, so a timing means little without it."""
    import torch

    a, b = torch.randn(256, 576), torch.randn(576, 1536)
    for _ in range(10):
        a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(20):
            a @ b
        count += 20
    return round(2 * 256 * 576 * 1536 * count / (time.perf_counter() - started) / 1e9, 1)


def today() -> str:
    return dt.date.today().isoformat()


def write_results(name: str, document: dict[str, Any], markdown: str) -> tuple[Path, Path]:
    """``benchmarks/results/<name>-<date>.json`` and ``.md``; returns both paths."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{name}-{today()}"
    json_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    md_path.write_text(markdown)
    return json_path, md_path


def append_row(name: str, row: dict[str, Any]) -> Path:
    """Append ``row`` as one JSON line to ``results/<name>-<date>.jsonl`` (for benchmarks run
    once per setting, compared row by row) and echo it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}-{today()}.jsonl"
    with path.open("a") as out:
        out.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def private_ipfs(work: Path) -> Iterator[str]:
    """A throw-away offline js-ipfs node; yields its API URL; its repo is deleted afterwards."""
    from agents.storage.client import IpfsClient

    repo = work / "ipfs-repo"
    env = {**os.environ, "IPFS_PATH": str(repo)}
    jsipfs = str(NODE_BIN / "jsipfs")
    subprocess.run([jsipfs, "init", "--profile=test", "--empty-repo"], env=env, check=True,
                   capture_output=True, timeout=180)  # fmt: skip
    api, gateway, grpc, swarm = (free_port() for _ in range(4))
    config = json.loads((repo / "config").read_text())
    config["Addresses"].update(
        {
            "API": f"/ip4/127.0.0.1/tcp/{api}",
            "Gateway": f"/ip4/127.0.0.1/tcp/{gateway}",
            "RPC": f"/ip4/127.0.0.1/tcp/{grpc}",
            "Swarm": [f"/ip4/127.0.0.1/tcp/{swarm}"],
        }
    )
    (repo / "config").write_text(json.dumps(config))
    log = (work / "ipfs.log").open("wb")
    process = subprocess.Popen([jsipfs, "daemon", "--offline", "--enable-preload=false"],
                               env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{api}"
    try:
        with IpfsClient(url, timeout_s=2) as probe:
            for _ in range(120):
                try:
                    probe.version()
                    break
                except Exception:
                    if process.poll() is not None:
                        raise SystemExit(f"js-ipfs exited; see {work / 'ipfs.log'}") from None
                    time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        shutil.rmtree(repo, ignore_errors=True)
