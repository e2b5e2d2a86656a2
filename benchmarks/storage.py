"""Storage throughput and memory: verified, encrypted transfers next to plain ipfshttpclient.

One random file of ``--size-mb`` MB (default 2048) goes through, in this order:

    plain_add        ipfshttpclient ``add`` (the node chunks and hashes; nothing checked)
    plain_cat        ipfshttpclient ``cat(stream=True)`` written to a file (nothing checked)
    add              IpfsClient.add_file: streamed upload + local CID computation and check
    get              IpfsClient.get_file: streamed download + CID verification + fsync
    publish_enc      publish_model(folder, encrypt_to=key): sha256 + encrypt + add + manifest
    fetch_enc        fetch_model(cid, key): verify + decrypt on the fly + sha256 check

Each phase runs in its own Python process so its peak RSS (VmHWM) is its own. By
default a private js-ipfs node is started on free ports with a throw-away repo (deleted at the
end), so the shared dev node is not filled with gigabytes; ``--api-url`` uses a running node.

    python benchmarks/storage.py [--size-mb 2048] [--api-url URL]

Writes benchmarks/results/storage-<date>.json and .md (MB = 10^6 bytes).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import machine, private_ipfs  # noqa: E402

from agents.storage.client import IpfsClient, get_multiaddr  # noqa: E402
from agents.storage.keys import public_key_of  # noqa: E402
from agents.storage.models import fetch_model, publish_model  # noqa: E402

KEY = bytes.fromhex("8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba")
PHASES = ["plain_add", "plain_cat", "add", "get", "publish_enc", "fetch_enc"]


# ---------------------------------------------------------------------------- phases (children)


def run_phase(name: str, api_url: str, work: Path, state: dict[str, str]) -> dict[str, Any]:
    """One phase in this process; returns what it measured and what later phases need."""
    source = work / "model" / "weights.bin"
    out: dict[str, Any] = {}
    started = time.perf_counter()
    if name == "plain_add":
        import warnings

        import ipfshttpclient

        warnings.simplefilter("ignore")
        client = ipfshttpclient.Client(get_multiaddr(api_url), timeout=600)
        out["cid"] = client.add(str(source), chunker="size-262144")["Hash"]
    elif name == "plain_cat":
        import warnings

        import ipfshttpclient

        warnings.simplefilter("ignore")
        client = ipfshttpclient.Client(get_multiaddr(api_url), timeout=600)
        with (work / "plain_cat.bin").open("wb") as handle:
            for piece in client.cat(state["plain_add"], stream=True):
                handle.write(piece)
    elif name == "add":
        with IpfsClient(api_url, timeout_s=600) as ipfs:
            out["cid"] = ipfs.add_file(source)
    elif name == "get":
        with IpfsClient(api_url, timeout_s=600) as ipfs:
            ipfs.get_file(state["add"], work / "get.bin")
    elif name == "publish_enc":
        with IpfsClient(api_url, timeout_s=600) as ipfs:
            out["cid"] = publish_model(ipfs, work / "model", public_key_of(KEY)).cid
    elif name == "fetch_enc":
        with IpfsClient(api_url, timeout_s=600) as ipfs:
            fetch_model(ipfs, state["publish_enc"], work / "fetched", KEY)
    else:
        raise SystemExit(f"unknown phase {name}")
    out["seconds"] = time.perf_counter() - started
    out["peak_rss_mb"] = peak_rss_mb()
    return out


def peak_rss_mb() -> float:
    """This process's peak resident set size.

    VmHWM, not ru_maxrss: on Linux ru_maxrss survives fork + exec, so a child would report its
    parent's peak; VmHWM belongs to the address space the exec created.
    """
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> None:
    state = json.loads(args.state)
    result = run_phase(args.phase, args.api_url, Path(args.work), state)
    print(json.dumps(result))


# ---------------------------------------------------------------------------- orchestration


def make_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    block = 16 << 20
    with path.open("wb") as handle:
        left = size
        while left:
            handle.write(os.urandom(min(block, left)))
            left -= min(block, left)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=2048, help="file size in MB (10^6 B)")
    parser.add_argument("--api-url", default=None, help="use this node instead of a private one")
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--state", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
        return
    size = args.size_mb * 1_000_000
    work = Path(args.work or tempfile.mkdtemp(prefix="oml-bench-storage-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"writing a {args.size_mb} MB random file in {work}", flush=True)
        make_file(work / "model" / "weights.bin", size)
        node = contextlib.nullcontext(args.api_url) if args.api_url else private_ipfs(work)
        results: dict[str, dict[str, Any]] = {}
        with node as api_url:
            with IpfsClient(api_url) as probe:
                node_version = probe.version()
                # Warm the node (repo folders, JIT) so the first timed phase is not penalised.
                warm = work / "warm.bin"
                make_file(warm, 64_000_000)
                probe.add_file(warm, pin=False)
                warm.unlink()
            state: dict[str, str] = {}
            for phase in PHASES:
                command = [
                    sys.executable,
                    __file__,
                    "--phase",
                    phase,
                    "--api-url",
                    api_url,
                    "--work",
                    str(work),
                    "--state",
                    json.dumps(state),
                ]
                done = subprocess.run(command, check=True, capture_output=True, text=True)
                result = json.loads(done.stdout.strip().splitlines()[-1])
                result["mb_per_s"] = size / 1e6 / result["seconds"]
                if "cid" in result:
                    state[phase] = result["cid"]
                results[phase] = result
                print(
                    f"{phase:12s} {result['seconds']:8.1f} s {result['mb_per_s']:8.1f} MB/s "
                    f"peak RSS {result['peak_rss_mb']:7.1f} MB",
                    flush=True,
                )
                for leftover in ("plain_cat.bin", "get.bin"):
                    (work / leftover).unlink(missing_ok=True)
                shutil.rmtree(work / "fetched", ignore_errors=True)
        assert state["plain_add"] == state["add"], "local CID differs from the node's"
        report(results, size, node_version, bool(args.api_url), Path(args.results))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


def report(
    results: dict[str, dict[str, Any]], size: int, node: str, shared: bool, folder: Path
) -> None:
    ratio = {
        "add_vs_plain_add": results["add"]["mb_per_s"] / results["plain_add"]["mb_per_s"],
        "get_vs_plain_cat": results["get"]["mb_per_s"] / results["plain_cat"]["mb_per_s"],
        "publish_enc_vs_plain_add": results["publish_enc"]["mb_per_s"]
        / results["plain_add"]["mb_per_s"],
        "fetch_enc_vs_plain_cat": results["fetch_enc"]["mb_per_s"]
        / results["plain_cat"]["mb_per_s"],
    }
    peak = max(results[p]["peak_rss_mb"] for p in ("add", "get", "publish_enc", "fetch_enc"))
    today = dt.date.today().isoformat()
    document = {
        "benchmark": "storage",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "ipfs_node": f"js-ipfs, ipfs-core {node} ({'given URL' if shared else 'private, offline'})",
        "load_average_at_end": list(os.getloadavg()),
        "file_bytes": size,
        "phases": results,
        "throughput_ratios": ratio,
        "peak_rss_mb_oml": peak,
        "rss_goal_mb": 300,
        "rss_goal_met": peak < 300,
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"storage-{today}.json").write_text(json.dumps(document, indent=2) + "\n")
    lines = [
        f"# Storage benchmark, {today}",
        "",
        f"{size / 1e6:,.0f} MB random file; node {document['ipfs_node']}; "
        f"{document['machine']['cores']} cores, {document['machine']['cpu']}, "
        f"Python {document['machine']['python']}; load average at the end "
        f"{document['load_average_at_end'][0]:.1f} (a shared machine: noisy). "
        "MB = 10^6 bytes. Each phase in its own "
        "process; peak RSS is that process's VmHWM (high-water resident set).",
        "",
        "| phase | what | seconds | MB/s | peak RSS (MB) |",
        "|---|---|---:|---:|---:|",
    ]
    what = {
        "plain_add": "ipfshttpclient add (no checks)",
        "plain_cat": "ipfshttpclient cat, streamed to a file (no checks)",
        "add": "IpfsClient.add_file + local CID check",
        "get": "IpfsClient.get_file, CID-verified, fsync",
        "publish_enc": "publish_model encrypted: sha256 + encrypt + add + manifest",
        "fetch_enc": "fetch_model encrypted: verify + decrypt + sha256",
    }
    for phase, result in results.items():
        lines.append(
            f"| {phase} | {what[phase]} | {result['seconds']:.1f} | "
            f"{result['mb_per_s']:.1f} | {result['peak_rss_mb']:.0f} |"
        )
    lines += ["", "| ratio (throughput, oml / plain) | value |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in ratio.items()]
    lines += [
        "",
        f"Peak RSS of the verified/encrypted phases: {peak:.0f} MB "
        f"(goal < 300 MB: {'met' if peak < 300 else 'NOT met'}).",
    ]
    (folder / f"storage-{today}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {folder / f'storage-{today}.json'} and .md")


if __name__ == "__main__":
    main()
