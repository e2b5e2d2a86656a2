"""Start the demo's agents as separate processes, keep their logs, stop every one of them.

Each process runs in its own session (so a Ctrl-C in the terminal reaches only the driver,
which then stops the agents in order), writes stdout and stderr to ``<run>/logs/<name>.log``
and is recorded in ``<run>/pids.json``. A later run first stops whatever an earlier, killed
run left behind — only processes whose command line still matches what was recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.demo.errors import DemoError

PIDS_FILE = "pids.json"
TAIL_LINES = 15


@dataclass
class Agent:
    """One started process."""

    name: str
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None


def oml(*args: str) -> list[str]:
    """``oml ARGS`` as an argv run by this interpreter (no PATH lookup needed)."""
    return [sys.executable, "-m", "agents.cli", *args]


def oml_on_chain_time(*args: str) -> list[str]:
    """``oml ARGS`` with the host epoch clock on chain time (see agents/demo/chainclock.py)."""
    return [sys.executable, "-m", "agents.demo.chainclock", *args]


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


class Supervisor:
    """The agents of one demo run."""

    def __init__(self, run_dir: Path, env: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = env
        self.agents: dict[str, Agent] = {}
        self._pids = run_dir / PIDS_FILE

    # ------------------------------------------------------------------ one-shot commands

    def run(
        self,
        name: str,
        argv: list[str],
        *,
        timeout_s: float = 300.0,
        env: dict[str, str] | None = None,
        json_output: bool = False,
    ) -> Any:
        """Run a command to completion; its output goes to the log. Raises with the log tail.

        With ``json_output`` stdout is parsed as JSON and returned; otherwise stdout as text.
        """
        log = self.logs / f"{name}.log"
        with log.open("ab") as sink:
            sink.write(f"$ {' '.join(argv)}\n".encode())
            sink.flush()
            try:
                done = subprocess.run(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=sink,
                    env={**self.env, **(env or {})},
                    timeout=timeout_s,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise DemoError(
                    f"`{_short(argv)}` did not finish in {timeout_s:.0f} s; log {log}"
                ) from error
            sink.write(done.stdout)
        if done.returncode != 0:
            raise DemoError(
                f"`{_short(argv)}` failed (exit {done.returncode}); log {log}:\n{log_tail(log)}"
            )
        out = done.stdout.decode(errors="replace")
        if not json_output:
            return out
        try:
            return json.loads(out)
        except ValueError as error:
            raise DemoError(f"`{_short(argv)}` did not print JSON; log {log}") from error

    # ------------------------------------------------------------------ long-running agents

    def start(self, name: str, argv: list[str], *, env: dict[str, str] | None = None) -> Agent:
        if name in self.agents and self.agents[name].alive():
            raise DemoError(f"{name} is already running (pid {self.agents[name].pid})")
        log = self.logs / f"{name}.log"
        sink = log.open("ab")
        sink.write(f"$ {' '.join(argv)}\n".encode())
        sink.flush()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**self.env, **(env or {})},
            start_new_session=True,
        )
        sink.close()
        agent = Agent(name, argv, log, process)
        self.agents[name] = agent
        self._record()
        return agent

    def wait_until(
        self,
        name: str,
        ready: Callable[[], bool],
        *,
        timeout_s: float,
        what: str,
        poll_s: float = 0.5,
    ) -> None:
        """Poll ``ready`` until true; fail early (with the log tail) if the agent died."""
        agent = self.agents[name]
        deadline = time.monotonic() + timeout_s
        while True:
            self.check(name)
            try:
                if ready():
                    return
            except Exception:  # not up yet: connection refused and the like
                pass
            if time.monotonic() > deadline:
                raise DemoError(
                    f"{name} did not get {what} within {timeout_s:.0f} s; log {agent.log}:\n"
                    f"{log_tail(agent.log)}"
                )
            time.sleep(poll_s)

    def check(self, *names: str) -> None:
        """Raise if one of ``names`` (default: all) exited."""
        for name in names or tuple(self.agents):
            agent = self.agents[name]
            if not agent.alive():
                raise DemoError(
                    f"{name} exited with status {agent.process.returncode}; log {agent.log}:\n"
                    f"{log_tail(agent.log)}"
                )

    def stop(self, name: str, timeout_s: float = 20.0) -> int | None:
        """SIGINT the agent's process group (every agent shuts down cleanly on it: servers
        drain, the oracle and the prover finish their step), then SIGTERM, then SIGKILL."""
        agent = self.agents.get(name)
        if agent is None:
            return None
        for sig, wait_s in (
            (signal.SIGINT, timeout_s),
            (signal.SIGTERM, 5.0),
            (signal.SIGKILL, 10.0),
        ):
            if not agent.alive():
                break
            _signal_group(agent.pid, sig)
            try:
                agent.process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                continue
        del self.agents[name]
        self._record()
        return agent.process.returncode

    def stop_all(self) -> list[str]:
        """Stop every agent, latest first; returns their names."""
        names = list(reversed(self.agents))
        for name in names:
            try:
                self.stop(name)
            except Exception as error:  # keep stopping the others
                print(f"could not stop {name}: {error}", file=sys.stderr)
        return names

    # ------------------------------------------------------------------ leftovers

    def _record(self) -> None:
        data = {a.name: {"pid": a.pid, "argv": a.argv} for a in self.agents.values() if a.alive()}
        self._pids.write_text(json.dumps(data, indent=2))

    @staticmethod
    def stop_leftovers(run_dir: Path) -> list[str]:
        """Stop processes a previous (killed) run recorded and that still run the same command."""
        path = run_dir / PIDS_FILE
        try:
            recorded = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        stopped = []
        for name, info in recorded.items():
            pid = int(info["pid"])
            if _cmdline(pid) == [str(a) for a in info["argv"]]:
                _signal_group(pid, signal.SIGTERM)
                for _ in range(100):
                    if _cmdline(pid) is None:
                        break
                    time.sleep(0.1)
                else:
                    _signal_group(pid, signal.SIGKILL)
                stopped.append(f"{name} (pid {pid})")
        path.unlink(missing_ok=True)
        return stopped


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the agent leads (its own session), else the process."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:  # a zombie
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def _short(argv: list[str]) -> str:
    shown = ["oml" if a == "agents.cli" else a for a in argv]
    if shown[:2] == [sys.executable, "-m"]:
        shown = shown[2:]
    return " ".join(shown)
