"""The local world: an Anvil chain and a js-ipfs node started in the background.

``oml world up`` is idempotent: a service whose recorded pid is alive and answering is left
alone. Pids and logs live under ``.run/`` so ``oml world down`` stops exactly what it started.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agents.config import REPO_ROOT, Settings

log = logging.getLogger(__name__)

NODE_BIN = REPO_ROOT / "node_modules" / ".bin"


class WorldError(RuntimeError):
    """A local service could not be started or stopped; the message says what to do."""


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    port_setting: str
    command: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]

    def pid_file(self, run_dir: Path) -> Path:
        return run_dir / f"{self.name}.pid"

    def log_file(self, run_dir: Path) -> Path:
        return run_dir / f"{self.name}.log"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return True


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def chain_answers(rpc_url: str, timeout: float = 1.0) -> int | None:
    """Return the chain id if a JSON-RPC node answers at ``rpc_url``."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(
        rpc_url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.load(response)["result"], 16)
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


def ipfs_answers(api_url: str, timeout: float = 1.0) -> str | None:
    """Return the node's agent version if an IPFS RPC API answers at ``api_url``."""
    request = urllib.request.Request(f"{api_url}/api/v0/id", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(json.load(response).get("AgentVersion", "unknown"))
    except (OSError, ValueError, urllib.error.URLError):
        return None


def _fork_arguments(settings: Settings) -> list[str]:
    if not settings.fork_url:
        return []
    arguments = ["--fork-url", settings.fork_url]
    if settings.fork_block is not None:
        arguments += ["--fork-block-number", str(settings.fork_block)]
    return arguments


def _ipfs_repo(settings: Settings) -> Path:
    return settings.run_dir / "ipfs-repo"


def _ipfs_env(settings: Settings) -> dict[str, str]:
    return {"IPFS_PATH": str(_ipfs_repo(settings))}


def services(settings: Settings) -> list[Service]:
    host = settings.host
    anvil = Service(
        name="anvil",
        port=settings.anvil_port,
        port_setting="OML_ANVIL_PORT",
        command=[
            str(NODE_BIN / "anvil"),
            "--host",
            host,
            "--port",
            str(settings.anvil_port),
            "--chain-id",
            str(settings.chain_id),
            "--accounts",
            "10",
            "--balance",
            "10000",
            "--silent",
            *_fork_arguments(settings),
        ],
        env={},
        ready=lambda: chain_answers(settings.rpc_url) == settings.chain_id,
    )
    ipfs = Service(
        name="ipfs",
        port=settings.ipfs_api_port,
        port_setting="OML_IPFS_API_PORT",
        command=[str(NODE_BIN / "jsipfs"), "daemon", "--offline", "--enable-preload=false"],
        env=_ipfs_env(settings),
        ready=lambda: ipfs_answers(settings.ipfs_api_url) is not None,
    )
    return [anvil, ipfs]


def _init_ipfs_repo(settings: Settings) -> None:
    """Create the node's repo once and pin every listen address to our loopback ports."""
    repo = _ipfs_repo(settings)
    env = {**os.environ, **_ipfs_env(settings)}
    jsipfs = str(NODE_BIN / "jsipfs")
    if not (repo / "config").exists():
        subprocess.run(
            [jsipfs, "init", "--profile=test", "--empty-repo"],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )
    addresses = {
        "Addresses.API": f"/ip4/{settings.host}/tcp/{settings.ipfs_api_port}",
        "Addresses.Gateway": f"/ip4/{settings.host}/tcp/{settings.ipfs_gateway_port}",
        "Addresses.RPC": f"/ip4/{settings.host}/tcp/{settings.ipfs_grpc_port}",
    }
    config = json.loads((repo / "config").read_text())
    changed = False
    section = config.setdefault("Addresses", {})
    for key, value in addresses.items():
        field = key.split(".", 1)[1]
        if section.get(field) != value:
            section[field] = value
            changed = True
    swarm = [f"/ip4/{settings.host}/tcp/{settings.ipfs_swarm_port}"]
    if section.get("Swarm") != swarm:
        section["Swarm"] = swarm
        changed = True
    if changed:
        (repo / "config").write_text(json.dumps(config, indent=2))


def _check_toolchain() -> None:
    for binary in ("anvil", "jsipfs"):
        if not (NODE_BIN / binary).exists():
            raise WorldError(
                f"{NODE_BIN / binary} is missing: run `make setup` to install the node toolchain"
            )


def status(settings: Settings) -> dict[str, dict[str, object]]:
    report: dict[str, dict[str, object]] = {}
    for service in services(settings):
        pid = read_pid(service.pid_file(settings.run_dir))
        report[service.name] = {
            "pid": pid if pid is not None and pid_alive(pid) else None,
            "port": service.port,
            "answering": service.ready(),
        }
    return report


def up(settings: Settings, timeout_s: float = 90.0) -> dict[str, dict[str, object]]:
    """Start every service that is not already running under our pid file; wait until ready."""
    _check_toolchain()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    started: list[Service] = []
    for service in services(settings):
        pid_file = service.pid_file(settings.run_dir)
        pid = read_pid(pid_file)
        if pid is not None and pid_alive(pid):
            if service.ready():
                log.info("%s already running (pid %s)", service.name, pid)
                continue
            # Ours but not answering yet (e.g. a parallel `up`): wait for it below.
            started.append(service)
            continue
        pid_file.unlink(missing_ok=True)
        if port_in_use(settings.host, service.port):
            raise WorldError(
                f"port {service.port} on {settings.host} is already taken, so {service.name} "
                f"cannot start: stop whatever listens there or choose another port with "
                f"{service.port_setting}=<port> (e.g. `{service.port_setting}="
                f"{service.port + 100} make up`)"
            )
        if service.name == "ipfs":
            _init_ipfs_repo(settings)
        log_handle = service.log_file(settings.run_dir).open("ab")
        process = subprocess.Popen(
            service.command,
            env={**os.environ, **service.env},
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO_ROOT,
            start_new_session=True,  # survives the shell that ran `make up`
        )
        log_handle.close()
        pid_file.write_text(str(process.pid))
        started.append(service)
    deadline = time.monotonic() + timeout_s
    for service in started:
        while not service.ready():
            pid = read_pid(service.pid_file(settings.run_dir))
            if pid is None or not pid_alive(pid):
                tail = _tail(service.log_file(settings.run_dir))
                raise WorldError(f"{service.name} exited during start-up; last log lines:\n{tail}")
            if time.monotonic() > deadline:
                raise WorldError(
                    f"{service.name} did not answer on port {service.port} within {timeout_s:.0f}s;"
                    f" see {service.log_file(settings.run_dir)}"
                )
            time.sleep(0.25)
    return status(settings)


def down(settings: Settings, timeout_s: float = 15.0) -> list[str]:
    """Stop exactly the processes recorded under ``.run/``; returns the names stopped."""
    stopped: list[str] = []
    for service in services(settings):
        pid_file = service.pid_file(settings.run_dir)
        pid = read_pid(pid_file)
        if pid is not None and pid_alive(pid):
            _terminate(pid, timeout_s)
            stopped.append(service.name)
        pid_file.unlink(missing_ok=True)
    return stopped


def _terminate(pid: int, timeout_s: float) -> None:
    # Each service leads its own session, so signal the whole group (node spawns helpers).
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
