"""The store under concurrency: fresh databases opened by several threads or processes at once,
read-only and write connections in one process, and runs whose submitting process was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from harness import store
from harness.store import runs
from harness.store.migrations import MIGRATIONS


def _versions(home) -> list[int]:
    with store.connect(home, read_only=True) as con:
        return [r[0] for r in con.sql("SELECT version FROM schema_version ORDER BY 1").fetchall()]


def test_threads_opening_a_fresh_database_at_once_all_succeed(home):
    barrier = threading.Barrier(8)

    def open_one(i: int) -> int:
        barrier.wait()
        with store.connect(home, read_only=i % 2 == 1) as con:
            return con.sql("SELECT count(*) FROM runs").fetchall()[0][0]

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(open_one, range(8))) == [0] * 8
    assert _versions(home) == [m[0] for m in MIGRATIONS]


def test_processes_opening_a_fresh_database_at_once_all_succeed(home):
    code = (
        "import sys, time; from pathlib import Path; from harness import store\n"
        "time.sleep(max(0, float(sys.argv[2]) - time.time()))\n"
        "with store.connect(Path(sys.argv[1]), read_only=sys.argv[3] == 'ro') as con:\n"
        "    print(con.sql('SELECT count(*) FROM runs').fetchall()[0][0])"
    )
    start = time.time() + 3  # all imports done by then: the opens really race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(home), str(start), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for mode in ("rw", "ro") * 4  # 4 reported "not a harness database" 1 time in ~10 before
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert out.strip() == "0"
    assert _versions(home) == [m[0] for m in MIGRATIONS]


def test_read_only_open_while_this_process_holds_a_write_connection(home):
    with store.connect(home) as writer:
        writer.execute("CREATE TABLE t AS SELECT 1 AS x")
        assert runs.list_runs(home) == []  # a read-only open inside: same process, other config
        with store.connect(home, read_only=True) as reader:
            assert reader.sql("SELECT x FROM t").fetchall() == [(1,)]


def test_write_open_waits_for_a_read_only_connection_of_another_thread(home):
    store.connect(home).__enter__().close()  # create the schema
    opened = threading.Event()

    def read_a_while():
        with store.connect(home, read_only=True) as con:
            opened.set()
            time.sleep(0.5)
            con.sql("SELECT 1").fetchall()

    reader = threading.Thread(target=read_a_while)
    reader.start()
    opened.wait(5)
    with store.connect(home) as con:  # waits for the reader instead of failing
        con.execute("CREATE TABLE t (x INTEGER)")
    reader.join()


def _run(run_id: str, **values) -> runs.Run:
    return runs.Run(
        run_id=run_id,
        recommender="popular",
        dataset="d",
        split="s",
        fingerprint="f",
        started_at=datetime.now(),
        **values,
    )


def test_run_of_a_process_killed_with_sigkill_shows_as_aborted(home):
    code = (
        "import sys, time; from pathlib import Path; from harness.store import runs\n"
        "from datetime import datetime\n"
        "runs.create_run(Path(sys.argv[1]), runs.Run(run_id='r-killed', recommender='popular',"
        " dataset='d', split='s', fingerprint='f', started_at=datetime.now()))\n"
        "print('created', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(home)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "created"
    runs.create_run(home, _run("r-alive"))  # this process lives on: its run stays running
    assert runs.get_run(home, "r-killed").status == "running"  # its process still lives
    assert runs.get_run(home, "r-killed").pid == proc.pid
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    shown = runs.get_run(home, "r-killed")
    assert shown.status == "aborted" and str(proc.pid) in shown.error
    assert {r.run_id: r.status for r in runs.list_runs(home)} == {
        "r-killed": "aborted",
        "r-alive": "running",
    }
    with store.connect(home, read_only=True) as con:  # reads present it, they do not write
        assert con.sql("SELECT status FROM runs WHERE run_id = 'r-killed'").fetchall() == [
            ("running",)
        ]
    runs.create_run(home, _run("r-next"))  # the next write records it
    with store.connect(home, read_only=True) as con:
        stored = dict(con.sql("SELECT run_id, status FROM runs").fetchall())
    assert stored == {"r-killed": "aborted", "r-alive": "running", "r-next": "running"}


def test_cli_runs_lists_a_killed_submission_as_aborted(home, cli):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    runs.create_run(home, _run("r-gone", pid=proc.pid))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    listed = json.loads(cli("runs", "--json").stdout)
    assert [(r["run_id"], r["status"]) for r in listed] == [("r-gone", "aborted")]
    assert "aborted" in cli("show", "r-gone").stdout
