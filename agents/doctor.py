"""`oml doctor`: what is installed, what answers, and how to fix what does not."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
from dataclasses import dataclass

from agents.config import REPO_ROOT, Settings
from agents.world import NODE_BIN, chain_answers, ipfs_answers

SOLC_SHIM = REPO_ROOT / "tools" / "solc" / "solc-v0.8.30"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"[{mark}] {self.name:<13} {self.detail}"
        return text if self.ok else f"{text} -> {self.fix}"


def _run_version(command: list[str]) -> str | None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = (done.stdout or done.stderr).strip()
    return out.splitlines()[0] if done.returncode == 0 and out else None


def _package(name: str) -> Check:
    try:
        return Check(name, True, importlib.metadata.version(name))
    except importlib.metadata.PackageNotFoundError:
        return Check(name, False, "not installed", "run `make setup`")


def run_checks(settings: Settings) -> list[Check]:
    checks = [
        Check(
            "python",
            sys.version_info[:2] == (3, 11),
            sys.version.split()[0],
            "use Python 3.11 (`make setup` builds .venv with python3.11)",
        )
    ]
    checks += [_package(name) for name in ("torch", "eth-ape", "web3", "transformers", "peft")]

    solc = _run_version([str(SOLC_SHIM), "--version"]) if SOLC_SHIM.exists() else None
    checks.append(
        Check(
            "solc",
            solc is not None,
            solc or "shim not working",
            "run `make setup` (installs solc-js into node_modules)",
        )
    )
    anvil = _run_version([str(NODE_BIN / "anvil"), "--version"])
    checks.append(
        Check(
            "anvil",
            anvil is not None,
            anvil or "missing",
            "run `make setup` (npm installs @foundry-rs/anvil)",
        )
    )
    jsipfs = (NODE_BIN / "jsipfs").exists()
    checks.append(
        Check(
            "js-ipfs",
            jsipfs,
            "installed" if jsipfs else "missing",
            "run `make setup` (npm installs ipfs@0.66.1)",
        )
    )
    node = _run_version(["node", "--version"])
    npm = _run_version(["npm", "--version"])
    checks.append(
        Check("node", node is not None, f"node {node} / npm {npm}", "install Node.js 20 and npm")
    )
    chromium_path = shutil.which("chromium") or shutil.which("chromium-browser")
    chromium = _run_version([chromium_path, "--version"]) if chromium_path else None
    checks.append(
        Check(
            "chromium",
            chromium is not None,
            chromium or "missing",
            "run `make setup` (apt-get install -y chromium), needed by frontend tests",
        )
    )

    chain_id = chain_answers(settings.rpc_url)
    checks.append(
        Check(
            "chain",
            chain_id == settings.chain_id,
            f"{settings.rpc_url} chain id {chain_id}" if chain_id else f"{settings.rpc_url} silent",
            "start it with `make up` (or set OML_ANVIL_PORT / OML_RPC_URL to where it runs)",
        )
    )
    agent = ipfs_answers(settings.ipfs_api_url)
    checks.append(
        Check(
            "ipfs",
            agent is not None,
            f"{settings.ipfs_api_url} ({agent})" if agent else f"{settings.ipfs_api_url} silent",
            "start it with `make up` (or set OML_IPFS_API_PORT to where it runs)",
        )
    )
    return checks
