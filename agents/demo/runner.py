"""Play the demo's steps in order: one progress line per step, agents stopped on any exit.

Ctrl-C (SIGINT) or SIGTERM stops the run between two polls: every agent the run started is
stopped (SIGINT, then SIGTERM, then SIGKILL), then the table shows what happened so far.
A run that was killed outright leaves ``pids.json``; the next run stops those processes first.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from agents.config import REPO_ROOT, get_settings
from agents.demo.errors import DemoError, StepSkipped
from agents.demo.processes import Supervisor
from agents.demo.report import render, summarize
from agents.demo.scenario import STEPS, Demo, Step, skip_reason
from agents.demo.settings import DemoSettings

# agent settings a developer's shell may carry: the demo sets its own
STRIPPED_PREFIXES = ("OML_HOST_", "OML_ORACLE_", "OML_PROVER_", "OML_CREATOR_")


def agent_env(settings: DemoSettings) -> dict[str, str]:
    world = get_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith(STRIPPED_PREFIXES)}
    env.update(
        OML_RPC_URL=world.rpc_url,
        OML_IPFS_API_URL=world.ipfs_api_url,
        OML_RUN_DIR=str(world.run_dir),
        PYTHONUNBUFFERED="1",
        TOKENIZERS_PARALLELISM="false",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")])),
    )
    if settings.torch_threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(settings.torch_threads)
    return env


@contextmanager
def _exclusive(run_dir: Path) -> Iterator[None]:
    """One demo per run folder at a time."""
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir.with_name(run_dir.name + ".lock")
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            lock.seek(0)
            raise DemoError(
                f"another demo is running on {run_dir} (pid {lock.read().strip() or '?'}); "
                "wait for it, or set DEMO_RUN_DIR and DEMO_PORT_BASE for a second one"
            ) from error
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so both end in the same clean-up."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class Progress:
    """``[ 4/25] title ..........   3.2s  detail`` — one line per step."""

    def __init__(self, total: int, stream: TextIO = sys.stdout, width: int = 46) -> None:
        self.total = total
        self.stream = stream
        self.width = width

    def begin(self, index: int, title: str) -> None:
        dots = "." * max(2, self.width - len(title))
        self.stream.write(f"[{index:2d}/{self.total}] {title} {dots} ")
        self.stream.flush()

    def end(self, seconds: float, status: str, detail: str) -> None:
        mark = {"ok": "", "skipped": "skipped: ", "failed": "FAILED: "}[status]
        self.stream.write(f"{seconds:6.1f}s  {mark}{detail}\n")
        self.stream.flush()


def run_demo(
    settings: DemoSettings,
    *,
    steps: list[Step] | None = None,
    stream: TextIO = sys.stdout,
    on_demo: Callable[[Demo], None] | None = None,
) -> dict[str, Any]:
    """Play ``steps`` (default: the whole story); returns the summary (also summary.json)."""
    world = get_settings()
    run_dir = settings.run_dir or world.run_dir / "demo"
    with _exclusive(run_dir), _interruptible():
        leftovers = Supervisor.stop_leftovers(run_dir)
        if leftovers:
            stream.write(f"stopped agents a killed run left behind: {', '.join(leftovers)}\n")
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        supervisor = Supervisor(run_dir, agent_env(settings))
        return _play(settings, run_dir, supervisor, steps or STEPS, stream, on_demo)


def _play(
    settings: DemoSettings,
    run_dir: Path,
    supervisor: Supervisor,
    steps: list[Step],
    stream: TextIO,
    on_demo: Callable[[Demo], None] | None,
) -> dict[str, Any]:
    from agents.dev.devchain import DevChain

    world = get_settings()
    stream.write(
        f"OML Hub demo: {settings.model} model, chain {world.rpc_url}, deployment "
        f"{settings.network}; agent logs in {_relative(run_dir / 'logs')}/\n"
    )
    progress = Progress(len(steps), stream)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    demo: Demo | None = None
    outcome = "ok"
    try:
        try:
            dev = DevChain.connect(world.rpc_url, settings.network)
        except Exception as error:
            raise DemoError(
                f"{error} (is the world up and deployed? `make demo` does both)"
            ) from error
        demo = Demo(
            settings,
            world,
            dev,
            run_dir,
            supervisor,
            say=lambda line: stream.write(f"        {line}\n"),
        )
        if on_demo is not None:
            on_demo(demo)
        for index, step in enumerate(steps, 1):
            progress.begin(index, step.title)
            t0 = time.monotonic()
            reason = skip_reason(demo, step)
            status, detail = "ok", ""
            try:
                if reason is not None:
                    raise StepSkipped(reason)
                # libraries used in-process (transformers, web3) print progress bars and
                # warnings: they go to the driver's log, the terminal keeps one line per step
                with (
                    (supervisor.logs / "driver.log").open("a") as log,
                    redirect_stdout(log),
                    redirect_stderr(log),
                ):
                    detail = step.run(demo)
            except StepSkipped as skipped:
                status, detail = "skipped", str(skipped)
            except DemoError as error:
                status, detail = "failed", str(error)
            except KeyboardInterrupt:
                status, detail = "failed", "interrupted"
                raise
            except Exception as error:
                status = "failed"
                detail = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=6)}"
            finally:
                seconds = time.monotonic() - t0
                progress.end(seconds, status, detail)
                results.append(
                    {
                        "key": step.key,
                        "title": step.title,
                        "status": status,
                        "seconds": round(seconds, 1),
                        "detail": detail,
                    }
                )
            if status == "failed":
                outcome = "failed"
                break
    except KeyboardInterrupt:
        outcome = "interrupted"
        stream.write("\ninterrupted: stopping the agents\n")
    except DemoError as error:
        outcome = "failed"
        stream.write(f"FAILED: {error}\n")
    finally:
        stopped = supervisor.stop_all()
        if stopped and outcome != "ok":
            stream.write(f"stopped {', '.join(stopped)}\n")
    total = time.monotonic() - started
    summary: dict[str, Any] = {"outcome": outcome, "steps": results, "totalSeconds": total}
    if demo is not None:
        try:
            summary = {"outcome": outcome, **summarize(demo, results, total)}
        except Exception as error:  # the table must never hide the run's own error
            summary["tableError"] = f"{type(error).__name__}: {error}"
            if outcome == "ok":
                summary["outcome"] = outcome = "failed"
    summary.setdefault("model", settings.model)
    summary.setdefault("fingerprintsPerCopy", settings.fingerprints)
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if "tableError" in summary:
        stream.write(f"could not build the table: {summary['tableError']}\n")
    else:
        stream.write(render(summary) + "\n")
    stream.write(
        f"summary: {_relative(run_dir / 'summary.json')}; logs: {_relative(run_dir / 'logs')}/\n"
    )
    return summary


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
