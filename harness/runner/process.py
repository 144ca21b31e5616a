"""The worker process and its supervision: start ``python -m harness.runner.worker JOB_DIR``,
follow its progress lines, enforce the time and memory limits, and report how it ended.

Nothing here knows about the store or the metrics: :func:`run_worker` returns a
:class:`WorkerOutcome` and the pipeline decides what to record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

STDERR_TAIL_CHARS = 4000
POLL_SECONDS = 0.2
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "POLARS_MAX_THREADS",
               "RAYON_NUM_THREADS")

Event = Callable[[dict], None]  # one parsed progress line of the worker


@dataclass
class WorkerOutcome:
    """How a worker ended. ``result`` is its result.json when it succeeded; otherwise ``reason``
    says why it failed, in words fit for the run's error field."""

    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    stderr_tail: str = ""
    peak_memory_bytes: int | None = None


def allowed_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    n = str(allowed_cores())
    for var in THREAD_VARS:
        env[var] = n
    return env


def tree_rss(proc: subprocess.Popen) -> int:
    """Resident memory of the worker and its children, in bytes (0 once it has exited)."""
    import psutil

    try:
        root = psutil.Process(proc.pid)
        total = root.memory_info().rss
        for child in root.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0


def wait(proc: subprocess.Popen, timeout: float | None, memory: int | None) -> str | None:
    """Wait for the worker; return "timeout" or "memory" when a limit ended it.

    Memory is the resident set of the worker's process tree, polled. (An address-space limit,
    RLIMIT_AS, is no good here: polars reserves so much virtual memory for its thread pools that
    it aborts or deadlocks under a 1 GiB limit before the model even starts.)
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        step = POLL_SECONDS if memory is not None else 1.0
        if deadline is not None:
            step = min(step, max(0.0, deadline - time.monotonic()))
        try:
            proc.wait(timeout=step)
            return None
        except subprocess.TimeoutExpired:
            pass
        if memory is not None and tree_rss(proc) > memory:
            kill(proc)
            return "memory"
        if deadline is not None and time.monotonic() >= deadline:
            kill(proc)
            return "timeout"


def tail(path: Path) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - STDERR_TAIL_CHARS))
        return fh.read().decode("utf-8", "replace")


def run_worker(workdir: Path, *, timeout: float | None, memory: int | None,
               on_event: Event | None = None) -> WorkerOutcome:
    """Run the worker on the job in ``workdir`` under the limits; report how it ended.

    ``on_event`` gets each JSON progress line (``{"stage": "fit"}``) from a reader thread.
    """
    stderr_path = workdir / "stderr.txt"
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.runner.worker", str(workdir)],
            stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, env=worker_env(),
            cwd=workdir, start_new_session=True,
        )
        reader = threading.Thread(target=_follow, args=(proc, on_event), daemon=True)
        reader.start()
        try:
            limit = wait(proc, timeout, memory)
        except BaseException:
            kill(proc)
            raise
        reader.join(timeout=5)
    if proc.returncode == 0 and (workdir / "result.json").exists():
        return WorkerOutcome(ok=True, result=json.loads((workdir / "result.json").read_text()))
    error = json.loads((workdir / "error.json").read_text()) if (workdir / "error.json").exists() else {}
    if limit == "timeout":
        reason = f"timeout: the worker ran past --timeout {timeout:g} s and was killed"
    elif limit == "memory":
        reason = f"out of memory: the worker's resident memory exceeded --memory {format_size(memory)} and it was killed"
    elif error.get("kind") == "memory":
        reason = f"out of memory ({error['message']})"
    elif error.get("message"):
        reason = f"recommender raised {error['message']}"
    else:
        reason = f"worker crashed (exit code {proc.returncode})"
    return WorkerOutcome(ok=False, reason=reason, stderr_tail=tail(stderr_path),
                         peak_memory_bytes=error.get("peak_memory_bytes"))


def _follow(proc: subprocess.Popen, on_event: Event | None) -> None:
    for line in proc.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if on_event and isinstance(event, dict):
            on_event(event)


def kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def format_size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= size:
            return f"{n / size:g}{unit}"
    return str(n)


def parse_size(text: str) -> int:
    """'2G', '512M', '1.5g', '1000000' -> bytes."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    try:
        if t and t[-1] in mult:
            return int(float(t[:-1]) * mult[t[-1]])
        return int(float(t))
    except ValueError:
        raise HarnessError(f"--memory: cannot read size {text!r} (e.g. 2G, 512M)") from None
