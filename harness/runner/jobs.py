"""Job directories: where a run's files live while it runs, and their cleanup.

``<home>/jobs/<run_id>/`` belongs to the parent: ``owner.json`` (pid, host, process start time),
the truth of the split as it was when the run started (scored against at the end, so a split
prepared again meanwhile changes nothing for this run), and the validated lists before they move
into ``<home>/runs/``. Its ``box/`` subdirectory is the worker's: the only directory the sandbox
mounts (read-write, at /job). Other runs' jobs, being in the home, are never visible to a worker.

A job is removed when its run ends. A parent killed with SIGKILL cannot do that: :func:`sweep`,
called by the next command, removes the jobs of dead owners on this host, and their lists in
``runs/`` when the run was not stored as ok.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

JOBS = "jobs"


@dataclass
class Job:
    run_id: str
    dir: Path

    @property
    def box(self) -> Path:
        """The worker's directory (mounted at /job in the sandbox)."""
        return self.dir / "box"

    @property
    def truth(self) -> Path:
        return self.dir / "truth.parquet"

    @property
    def recs(self) -> Path:
        return self.dir / "recs.parquet"


def jobs_dir(home: Path) -> Path:
    return home / JOBS


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None
    except psutil.Error:
        return -1.0  # exists but cannot be inspected: treat as alive


@contextlib.contextmanager
def job(home: Path, run_id: str) -> Iterator[Job]:
    """A fresh job directory for ``run_id``, removed on exit whatever happens."""
    j = Job(run_id, jobs_dir(home) / run_id)
    j.box.mkdir(parents=True)
    (j.dir / "owner.json").write_text(
        json.dumps(
            {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": _process_started(os.getpid()),
            }
        )
    )
    try:
        yield j
    finally:
        shutil.rmtree(j.dir, ignore_errors=True)


def _owner_gone(path: Path) -> bool:
    try:
        owner = json.loads((path / "owner.json").read_text())
    except (OSError, ValueError):  # killed between mkdir and writing the owner, or being made now
        try:
            return time.time() - path.stat().st_mtime > 60
        except OSError:
            return False
    if owner.get("host") != socket.gethostname():
        return False
    started = _process_started(int(owner.get("pid", -1)))
    return started is None or (
        owner.get("started") not in (None, -1.0) and started not in (-1.0, owner["started"])
    )


def sweep(home: Path) -> list[str]:
    """Remove the jobs of this host's dead submitting processes; return their run ids.

    A killed run's lists and per-user values in ``runs/`` are removed too unless the run was
    stored as ok (the parent died between moving them into place and storing the run).
    """
    root = jobs_dir(home)
    if not root.is_dir():
        return []
    gone = [p for p in root.iterdir() if p.is_dir() and _owner_gone(p)]
    if not gone:
        return []
    from harness.config import runs_dir
    from harness.store.runs import run_status, user_values_file

    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
        files = [runs_dir(home) / f"{path.name}.parquet", user_values_file(home, path.name)]
        if any(f.exists() for f in files) and run_status(home, path.name) != "ok":
            for f in files:
                f.unlink(missing_ok=True)
    return [p.name for p in gone]
