"""The worker process and its supervision: start ``python -m harness.runner.worker JOB_DIR``,
follow its progress lines, enforce the time and memory limits, and report how it ended.

Nothing here knows about the store or the metrics: :func:`run_worker` returns a
:class:`WorkerOutcome` and the pipeline decides what to record.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import HarnessError

STDERR_TAIL_CHARS = 4000
POLL_SECONDS = 0.2
THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "POLARS_MAX_THREADS",
    "RAYON_NUM_THREADS",
)

Event = Callable[[dict], None]  # one parsed progress line of the worker


@dataclass
class WorkerOutcome:
    """How a worker ended. ``result`` is its result.json when it succeeded; otherwise ``reason``
    says why it failed, in words fit for the run's error field."""

    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    kind: str | None = (
        None  # timeout, memory, error; config, usage or plugin: the model could not be built
    )
    stderr_tail: str = ""
    peak_memory_bytes: int | None = None


def allowed_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


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


def run_worker(
    job_dir: Path,
    *,
    sandbox: str = "bwrap",
    timeout: float | None,
    memory: int | None,
    on_event: Event | None = None,
    hidden: Sequence[Path] = (),
    masked: Sequence[Path] = (),
    readable: Sequence[Path] = (),
) -> WorkerOutcome:
    """Run the worker on the job in ``job_dir`` under the limits; report how it ended.

    ``sandbox``: "bwrap" runs it in the sandbox (:mod:`harness.runner.sandbox`: ``hidden`` paths
    never mounted, ``masked`` ones covered, ``readable`` ones added read-only), "none" as a plain
    child process. ``on_event`` gets each progress event (``{"stage": "fit"}``) in this thread,
    while the worker runs. Its stderr and stdout come through a pipe of which only the tail is
    kept, so a plugin that prints gigabytes grows neither the parent nor the disk.
    """
    from harness.runner import sandbox as sb

    env = sb.environment(allowed_cores(), THREAD_VARS)
    if sandbox == "bwrap":
        tmpfs = memory if memory is not None else sb.DEFAULT_TMPFS_BYTES
        argv = sb.command(
            sb.find_bwrap(),
            job_dir,
            [sys.executable, "-m", "harness.runner.worker", sb.JOB_MOUNT],
            env,
            hidden=hidden,
            masked=masked,
            tmpfs_bytes=tmpfs,
            extra_readable=readable,
        )
    else:
        argv = [sys.executable, "-m", "harness.runner.worker", str(job_dir)]
    err_r, err_w = os.pipe()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=err_w,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=job_dir,
            start_new_session=True,
        )
    finally:
        os.close(err_w)
    events: queue.Queue = queue.Queue()
    stderr = _Tail()
    readers = [
        threading.Thread(target=_read_events, args=(proc.stdout, events), daemon=True),
        threading.Thread(target=stderr.drain, args=(err_r,), daemon=True),
    ]
    for t in readers:
        t.start()
    seen_events = False
    try:
        limit = None
        deadline = None if timeout is None else time.monotonic() + timeout
        step = POLL_SECONDS if memory is not None else 1.0
        ended = False  # the event stream closed: wait on the process itself, not the queue
        while proc.poll() is None:
            wait_for = (
                step if deadline is None else min(step, max(0.0, deadline - time.monotonic()))
            )
            if ended:
                try:
                    proc.wait(timeout=wait_for)
                    break
                except subprocess.TimeoutExpired:
                    pass
            else:
                try:
                    event = events.get(timeout=wait_for)
                    if event is _END:
                        ended = True
                        continue
                    seen_events = True
                    if on_event:
                        on_event(event)
                    continue
                except queue.Empty:
                    pass
            if memory is not None and held_memory(proc, sandbox) > memory:
                limit = "memory"
            elif deadline is not None and time.monotonic() >= deadline:
                limit = "timeout"
            if limit:
                kill(proc)
                break
    except BaseException:
        kill(proc)
        raise
    proc.wait()
    for t in readers:
        t.join(timeout=5)
    while not events.empty():  # the last lines (recommend, done) after the worker left
        event = events.get()
        if event is _END:
            continue
        seen_events = True
        if on_event:
            on_event(event)
    tail_text = stderr.text()
    if proc.returncode == 0 and (job_dir / "result.json").exists():
        result = _read_json(job_dir / "result.json")
        return WorkerOutcome(
            ok=True,
            result={
                k: v
                for k, v in result.items()
                if k in RESULT_FIELDS and isinstance(v, (int, float))
            },
        )
    if sandbox == "bwrap" and not seen_events and limit is None and "bwrap:" in tail_text:
        raise sb.start_failure(tail_text)
    error = _read_json(job_dir / "error.json")
    message = str(error.get("message") or "")[:MESSAGE_CHARS]
    peak = error.get("peak_memory_bytes")
    peak = peak if isinstance(peak, int) else None
    kind = error.get("kind")
    if limit == "timeout":
        reason = f"timeout: the worker ran past --timeout {timeout:g} s and was killed"
    elif limit == "memory":
        reason = (
            f"out of memory: the worker's resident memory and files in its /tmp and /dev/shm "
            f"exceeded --memory {format_size(memory)} and it was killed"
        )
    elif kind == "memory":
        reason = f"out of memory ({message})"
    elif kind in ("config", "usage", "plugin") and message:
        return WorkerOutcome(
            ok=False, reason=message, kind=kind, stderr_tail=tail_text, peak_memory_bytes=peak
        )
    elif message:
        reason = f"recommender raised {message}"
    else:
        reason = f"worker crashed (exit code {proc.returncode})"
    return WorkerOutcome(
        ok=False,
        reason=reason,
        stderr_tail=tail_text,
        peak_memory_bytes=peak,
        kind=limit or "error",
    )


RESULT_FIELDS = ("fit_seconds", "recommend_seconds", "peak_memory_bytes")
MESSAGE_CHARS = 2000
JSON_LIMIT = 1 << 20
EVENT_LINE_LIMIT = 1 << 16


def _read_json(path: Path) -> dict:
    """A JSON object the worker wrote, read defensively: the sandboxed code controls the file (a
    link to elsewhere, a huge file, not JSON) and none of that may reach further than {}."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return {}
        data = fh.read(JSON_LIMIT + 1)
    try:
        value = json.loads(data) if len(data) <= JSON_LIMIT else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def held_memory(proc: subprocess.Popen, sandbox: str) -> int:
    """What the run holds: resident memory of its process tree, plus, in the sandbox, the files
    in its private /tmp and /dev/shm (tmpfs pages are memory too)."""
    total = tree_rss(proc)
    if sandbox == "bwrap":
        from harness.runner.sandbox import tmpfs_used

        inner = _children(proc)
        if inner:
            total += tmpfs_used(inner[0])
    return total


def _children(proc: subprocess.Popen) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(proc.pid).children()]
    except psutil.Error:
        return []


class _Tail:
    """Drains a pipe, keeping only its last STDERR_TAIL_CHARS bytes."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def drain(self, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as fh:
            while chunk := fh.read(1 << 16):
                self.buf += chunk
                if len(self.buf) > 2 * STDERR_TAIL_CHARS:
                    del self.buf[:-STDERR_TAIL_CHARS]

    def text(self) -> str:
        return bytes(self.buf[-STDERR_TAIL_CHARS:]).decode("utf-8", "replace")


_END = object()  # queued when the worker's event stream closes (it is exiting)


def _read_events(stream, events: queue.Queue) -> None:
    """Progress lines of the worker; a line longer than EVENT_LINE_LIMIT is skipped, never held.
    Ends with ``_END``: the supervisor then waits on the process, so the run goes on as soon as
    the worker exits (not after the rest of a poll interval)."""
    skipping = False
    while line := stream.readline(EVENT_LINE_LIMIT):
        complete = line.endswith(b"\n")
        if skipping or not complete:
            skipping = not complete
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.put(event)
    events.put(_END)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the worker. In the sandbox, its pid 1 first: the kernel then kills every process
    of the pid namespace, daemons included."""
    for pid in _children(proc):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
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
