"""Hostile submissions: one attack per plugin, registered through the real entry-point door and
run through ``submit`` in the sandbox. Each test asserts what the attack achieved (nothing) and
how the run ended. Where it proves the test can fail, the same attack is also run with
``sandbox="none"`` and is seen to succeed there.

An attack reports what it found by raising ``RuntimeError("FINDINGS {json}")`` at the end of
``fit``: the run fails and its stored error carries the findings. The attacker is given the
real home path and the pid of a rival process as parameters: the worst case of a guess.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from harness.errors import ConfigError, RunError
from harness.store import runs as store

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bwrap is Linux only")

PRELUDE = '''
import json, os, sys, time
import polars as pl

class Model:
    def __init__(self, home: str = "", target: int = 0, port: int = 0, marker: str = "", size: int = 0,
                 walk: bool = True):
        self.home, self.target, self.port, self.marker, self.size = home, target, port, marker, size
        self.walk = walk

    def recommend(self, users, k):
        return pl.DataFrame({"user_id": users, "item_id": [self.item] * len(users),
                             "score": [1.0] * len(users)})

    def fit(self, data):
        self.item = data.interactions["item_id"][0]
        found = attack(self)
        if found is not None:
            raise RuntimeError("FINDINGS " + json.dumps(found, default=str))


def attempt(fn):
    """'ok: ...' when the action worked, else the error's class."""
    try:
        result = fn()
        return "ok" if result is None else f"ok: {str(result)[:300]}"
    except BaseException as exc:
        return type(exc).__name__
'''


def plugin(body: str) -> str:
    return PRELUDE + "\n" + body


def run_attack(home, register_plugins, source, *, params=None, sandbox="auto", **limits):
    """Submit the attack; return (stored run, findings dict or None)."""
    from harness.runner import submit

    register_plugins({"attack": source})
    try:
        submit(
            home,
            "attack",
            dataset="synthetic-small",
            k=5,
            params=params or {},
            sandbox=sandbox,
            **limits,
        )
    except RunError:
        pass
    runs = store.list_runs(home)
    if not runs:
        return None, None
    run = store.get_run(home, runs[0].run_id)
    findings = None
    if run.error and "FINDINGS " in run.error:
        findings = json.loads(run.error.split("FINDINGS ", 1)[1])
    return run, findings


def _markers(marker: str) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if marker in " ".join(p.info["cmdline"] or []):
                out.append(p)
        except psutil.Error:
            pass
    return out


def _survivors(marker: str, within: float = 20.0) -> list[psutil.Process]:
    """The processes still carrying ``marker`` once they had ``within`` seconds to die.

    The kernel kills a pid namespace's processes when its pid 1 exits, but their exit is not
    instant on a loaded machine: poll instead of a fixed sleep.
    """
    deadline = time.monotonic() + within
    while (found := _markers(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


# -- reading the truth ----------------------------------------------------------------------------

FIND_STORE = plugin("""
def attack(self):
    import glob
    found = {"env_home": os.environ.get("HARNESS_HOME"),
             "env_keys": sorted(k for k in os.environ if k.startswith("HARNESS") or "SECRET" in k),
             "home_listing": attempt(lambda: os.listdir(self.home)),
             "db_open": attempt(lambda: open(os.path.join(self.home, "harness.duckdb"), "rb").read(16)),
             "platform_dir": attempt(lambda: os.listdir(os.path.expanduser("~/.local/share/harness"))),
             "user_home": attempt(lambda: sorted(os.listdir(self.marker))),
             "embedded": attempt(lambda: os.listdir(os.path.join(os.path.dirname(__import__("harness").__file__), "datasets", "embedded"))),
             "db_files": [], "truth_files": []}
    for top in ("/tmp", "/work", "/home", "/root", "/var", "/run", "/mnt", "/job") if self.walk else ():
        for dirpath, dirs, files in os.walk(top):
            for f in files:
                if f.endswith(".duckdb"):
                    found["db_files"].append(os.path.join(dirpath, f))
                if f.startswith("truth") or f == "ratings.parquet":
                    found["truth_files"].append(os.path.join(dirpath, f))
    try:
        import duckdb
        deadline = time.monotonic() + 60
        while True:  # where the store is reachable: wait until the parent has stored this run
            try:
                con = duckdb.connect(os.path.join(self.home, "harness.duckdb"))
                if con.execute("SELECT count(*) FROM runs").fetchone()[0]:
                    break
                con.close()
            except duckdb.IOException as exc:  # the parent holds the lock: try again
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        con.execute("UPDATE run_metrics SET value = 0.01")
        con.execute("DELETE FROM runs")
        con.close()
        found["db_write"] = "ok"
    except BaseException as exc:
        found["db_write"] = type(exc).__name__
    return found
""")


def test_the_store_the_home_and_the_truth_are_out_of_reach(
    home, dataset, register_plugins, monkeypatch
):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hunter2")
    run, found = run_attack(
        home, register_plugins, FIND_STORE, params={"home": str(home), "marker": str(Path.home())}
    )
    assert run.status == "failed" and run.sandbox == "bwrap"
    assert found["env_home"] is None
    assert found["env_keys"] == []
    assert found["home_listing"] == "FileNotFoundError"
    assert found["db_open"] == "FileNotFoundError"
    assert found["db_write"] != "ok"
    assert found["platform_dir"] == "FileNotFoundError"
    # of the user's home, only the way to the Python environment (pyenv's, here) is mounted
    python = [Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix)]
    allowed = {p.relative_to(Path.home()).parts[0] for p in python if Path.home() in p.parents}
    assert (
        found["user_home"] == "FileNotFoundError" or found["user_home"] == f"ok: {sorted(allowed)}"
    )
    assert found["embedded"] == "ok: []"  # the shipped ratings are covered
    assert found["db_files"] == [] and found["truth_files"] == []
    assert store.list_runs(home)[0].status == "failed"  # nothing deleted


def test_every_copy_of_the_shipped_data_the_worker_could_read_is_covered(tmp_path, monkeypatch):
    """Run from a source checkout, this process imports the checkout's harness while the worker
    imports the installed one (the attack above, run from a git worktree, listed the installed
    copy's ratings): the copies on the worker's import path are covered as well as this one."""
    from harness.datasets.registry import EMBEDDED
    from harness.runner import pipeline
    from harness.runner import sandbox as sb

    site = tmp_path / "site"
    copy = site / "harness" / "datasets" / "embedded"
    copy.mkdir(parents=True)
    monkeypatch.setenv("PYTHONPATH", str(site))
    masked = pipeline._embedded_data()
    assert copy in masked and EMBEDDED in masked
    cmd = sb.command(
        "bwrap",
        tmp_path / "job",
        ["true"],
        sb.environment(1, ()),
        hidden=[],
        masked=masked,
        tmpfs_bytes=1 << 20,
    )
    pairs = list(zip(cmd, cmd[1:]))
    mounted = pairs.index(("--ro-bind", str(site)))
    assert pairs.index(("--tmpfs", str(copy))) > mounted  # covered after it is mounted


def test_without_the_sandbox_the_same_attack_reads_the_store(home, dataset, register_plugins):
    """The control: the findings above are the sandbox's doing, not a broken attack. (Without the
    search of the machine's files for databases and truths: outside the sandbox it would walk
    every file on the machine, and it decides nothing here.)"""
    run, found = run_attack(
        home,
        register_plugins,
        FIND_STORE,
        params={"home": str(home), "walk": "false"},
        sandbox="none",
    )
    assert run is None and store.list_runs(home) == []  # it deleted every run, its own included


PROC = plugin("""
def attack(self):
    import ctypes, signal
    libc = ctypes.CDLL(None, use_errno=True)
    visible = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    found = {"pids": visible, "ppid": os.getppid(),
             "parent_cmdline": attempt(lambda: open(f"/proc/{os.getppid()}/cmdline", "rb").read()),
             "parent_environ": attempt(lambda: open(f"/proc/{os.getppid()}/environ", "rb").read()),
             "target_cmdline": attempt(lambda: open(f"/proc/{self.target}/cmdline", "rb").read()),
             "stop_target": attempt(lambda: os.kill(self.target, signal.SIGSTOP)),
             "kill_minus_1": attempt(lambda: os.kill(-1, 0))}
    PTRACE_ATTACH = 16
    rc = libc.ptrace(PTRACE_ATTACH, self.target, None, None)
    found["ptrace_target"] = "ok" if rc == 0 else os.strerror(ctypes.get_errno())
    others = [p for p in visible if p not in (1, os.getpid())]
    found["others_cmdline"] = [open(f"/proc/{p}/cmdline", "rb").read().decode(errors="replace") for p in others]
    return found
""")


def test_processes_outside_the_sandbox_cannot_be_seen_stopped_or_traced(
    home, dataset, register_plugins
):
    rival = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run, found = run_attack(home, register_plugins, PROC, params={"target": str(rival.pid)})
        assert psutil.Process(rival.pid).status() != psutil.STATUS_STOPPED
    finally:
        rival.kill()
        rival.wait()
    assert run.status == "failed"
    # its own pid namespace: bwrap's init is 1, the worker 2; the parent and the rival are absent
    assert found["ppid"] == 1 and max(found["pids"]) < 100
    assert found["target_cmdline"] == "FileNotFoundError" or rival.pid in found["pids"] and False
    assert found["stop_target"] == "ProcessLookupError"
    assert found["ptrace_target"] == os.strerror(3)  # ESRCH: no such process
    assert "harness" not in found["parent_cmdline"] and "HARNESS" not in found["parent_environ"]
    assert not any("submit" in c or "pytest" in c for c in found["others_cmdline"])


# -- writing ---------------------------------------------------------------------------------------

WRITE = plugin("""
def attack(self):
    import site
    spot = os.path.join(self.home, "evil")
    pkg = os.path.dirname(__file__)
    found = {"site_pth": attempt(lambda: open(os.path.join(site.getsitepackages()[0], "zz_evil.pth"), "w").write("import os")),
             "prefix": attempt(lambda: open(os.path.join(sys.prefix, "evil"), "w").write("x")),
             "own_package": attempt(lambda: open(os.path.join(pkg, "evil.py"), "w").write("x")),
             "usr": attempt(lambda: open("/usr/evil", "w").write("x")),
             "etc": attempt(lambda: open("/etc/evil", "w").write("x")),
             "home": attempt(lambda: open(spot, "w").write("x")),
             "runs": attempt(lambda: os.listdir(os.path.join(self.home, "runs"))),
             "tmp": attempt(lambda: open("/tmp/evil", "w").write("x")),
             "job": attempt(lambda: open("/job/evil", "w").write("x")),
             "cwd": os.getcwd()}
    return found
""")


def test_only_the_job_directory_and_the_private_tmp_are_writable(home, dataset, register_plugins):
    import site

    run, found = run_attack(home, register_plugins, WRITE, params={"home": str(home)})
    assert run.status == "failed"
    assert found["site_pth"] in ("OSError", "PermissionError") and found["prefix"] in (
        "OSError",
        "PermissionError",
    )
    assert found["own_package"] in ("OSError", "PermissionError")
    assert found["usr"] in ("OSError", "PermissionError") and found["etc"] in (
        "OSError",
        "PermissionError",
    )
    assert found["home"] == "FileNotFoundError" and found["runs"] == "FileNotFoundError"
    assert (
        found["tmp"].startswith("ok") and found["job"].startswith("ok") and found["cwd"] == "/job"
    )
    assert not (Path(site.getsitepackages()[0]) / "zz_evil.pth").exists()
    assert not Path("/tmp/evil").exists() and not (home / "evil").exists()
    assert not (home / "jobs").exists() or not list((home / "jobs").iterdir())  # cleaned up


def test_links_left_in_the_job_directory_are_not_followed(home, dataset, register_plugins):
    source = plugin("""
def attack(self):
    os.symlink("/etc/passwd", "/job/recs.parquet")
    open("/job/result.json", "w").write('{"fit_seconds": 1}')
    return None
""").replace(
        "    def recommend(self, users, k):",
        "    def recommend(self, users, k):\n        os._exit(0)\n    def _unused(self, users, k):",
    )
    run, _ = run_attack(home, register_plugins, source)
    assert run.status == "failed" and "not a regular file" in run.error


# -- the network -----------------------------------------------------------------------------------

NET = plugin("""
def attack(self):
    import socket
    found = {"interfaces": [name for _, name in socket.if_nameindex()],
             "connect_host": attempt(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=2).close()),
             "connect_internet": attempt(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2).close()),
             "resolve": attempt(lambda: socket.gethostbyname("pypi.org"))}
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", self.port + 1))
    server.listen()
    found["listen"] = "ok"
    time.sleep(1)  # the host side tries its port + 1 every 0.3 s meanwhile
    return found
""")


def test_no_network_in_or_out(home, dataset, register_plugins):
    # the attack listens on port + 1 inside the sandbox: on the host, that port is bound (never
    # listened on) by this test, so no other process can make the host's side reach a listener
    while True:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        reserved = socket.socket()
        try:
            reserved.bind(("127.0.0.1", port + 1))
            break
        except OSError:
            reserved.close()
            listener.close()
    listener.listen()
    listener.settimeout(0.1)
    accepted, reached = [], []
    done = threading.Event()

    def watch():  # the host side: does anything connect to us, can we reach its listener?
        while not done.is_set():
            try:
                accepted.append(listener.accept())
            except OSError:
                pass
            try:
                socket.create_connection(("127.0.0.1", port + 1), timeout=0.2).close()
                reached.append(True)
            except OSError:
                pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run, found = run_attack(home, register_plugins, NET, params={"port": str(port)})
    finally:
        done.set()
        watcher.join()
        listener.close()
        reserved.close()
    assert run.status == "failed"
    assert found["interfaces"] == ["lo"]
    assert found["connect_host"] == "ConnectionRefusedError" and not accepted
    assert found["connect_internet"] == "OSError" or found["connect_internet"].endswith("Error")
    assert not found["resolve"].startswith("ok")
    assert found["listen"] == "ok" and not reached  # it listens on its own loopback only


# -- outliving the run -----------------------------------------------------------------------------


def _daemon(marker: str) -> str:
    return plugin(f'''
def attack(self):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", "{marker}"])
        os._exit(0)
    time.sleep(0.5)
    return None
''')


def test_a_double_forked_daemon_dies_with_the_run(home, dataset, register_plugins):
    marker = f"{4000 + os.getpid() % 1000}.{time.time_ns() % 997}"
    run, _ = run_attack(home, register_plugins, _daemon(marker))
    assert run.status == "ok"
    assert _survivors(f"sleep {marker}") == []


def test_a_daemon_dies_with_a_timed_out_run_too(home, dataset, register_plugins):
    marker = f"{5000 + os.getpid() % 1000}.{time.time_ns() % 997}"
    source = _daemon(marker).replace("    time.sleep(0.5)\n    return None", "    time.sleep(60)")
    seen, running = [], threading.Event()

    def watch():  # the daemon did start before the timeout: else this test would prove nothing
        while running.is_set() and not seen:
            seen.extend(_markers(f"sleep {marker}"))
            time.sleep(0.1)

    running.set()
    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run, _ = run_attack(home, register_plugins, source, timeout=4)
    finally:
        running.clear()
        watcher.join()
    assert run.status == "failed" and "timeout" in run.error
    assert seen
    assert _survivors(f"sleep {marker}") == []


def test_two_hundred_forked_processes_end_with_the_run(home, dataset, register_plugins):
    marker = f"{6000 + os.getpid() % 1000}.{time.time_ns() % 997}"
    source = plugin(f'''
def attack(self):
    for _ in range(200):
        if os.fork() == 0:
            os.execv("/bin/sleep", ["sleep", "{marker}"])
    return None
''')
    run, _ = run_attack(home, register_plugins, source)
    assert run.status == "ok"
    assert _survivors(f"sleep {marker}") == []


def test_sandboxed_daemon_cannot_lock_the_database(home, dataset, register_plugins, cli):
    source = plugin("""
def attack(self):
    if os.fork() == 0:
        import duckdb
        while True:
            try:
                duckdb.connect(os.path.join(self.home, "harness.duckdb"))
            except BaseException:
                time.sleep(0.1)
    return None
""")
    run, _ = run_attack(home, register_plugins, source, params={"home": str(home)})
    assert run.status == "ok"
    board = json.loads(
        cli("leaderboard", "--dataset", "synthetic-small", "--metric", "ndcg@5", "--json").stdout
    )
    assert [r["run_id"] for r in board["rows"]] == [run.run_id]


# -- memory ----------------------------------------------------------------------------------------


def _filler(where: str) -> str:
    return plugin(f'''
def attack(self):
    chunk = b"x" * (64 << 20)
    written = 0
    with open("{where}/fill", "wb") as fh:
        try:
            while written < (3 << 30):
                fh.write(chunk)
                fh.flush()
                written += len(chunk)
        except OSError as exc:
            pass
    time.sleep(5)  # hold it: the limit must see it
    return {{"written": written}}
''')


def test_dev_shm_counts_against_the_memory_limit(home, dataset, register_plugins):
    run, found = run_attack(home, register_plugins, _filler("/dev/shm"), memory=1 << 30)
    assert run.status == "failed" and "out of memory" in run.error and found is None
    assert not Path("/dev/shm/fill").exists()


def test_filling_the_private_tmp_stops_at_its_cap_and_the_limit(home, dataset, register_plugins):
    run, found = run_attack(home, register_plugins, _filler("/tmp"), memory=300 << 20)
    assert run.status == "failed" and "out of memory" in run.error
    assert not Path("/tmp/fill").exists()


def test_a_hundred_megabytes_of_output_do_not_grow_the_parent(home, dataset, register_plugins):
    source = plugin("""
def attack(self):
    block = "y" * (1 << 20)
    for _ in range(50):
        sys.stdout.write(block)  # no newline: one 50 MB line
    sys.stdout.flush()
    for _ in range(50):
        sys.stderr.write(block + "\\n")
    sys.stderr.write("THE END\\n")
    sys.stderr.flush()
    return {"printed": 100}
""")
    before = psutil.Process().memory_info().rss
    run, found = run_attack(home, register_plugins, source)
    grown = psutil.Process().memory_info().rss - before
    assert found == {"printed": 100}
    assert len(run.stderr_tail) <= 4000 and "THE END" in run.stderr_tail
    assert grown < 40 << 20


# -- what honest models need still works -----------------------------------------------------------

HONEST = plugin("""
def attack(self):
    here = os.path.dirname(__file__)
    open("/tmp/scratch", "wb").write(b"0" * (1 << 20))
    assert os.path.getsize("/tmp/scratch") == 1 << 20
    assert open(os.path.join(here, "data.txt")).read() == "weights"
    assert os.environ["OMP_NUM_THREADS"].isdigit() and os.environ["HOME"] == "/tmp"
    import numpy, polars, harness.api
    return None
""")


def test_an_honest_model_reads_its_package_files_and_uses_tmp(home, dataset, register_plugins):
    root = register_plugins({"attack": HONEST})
    (root / "fakeplugins_mods" / "data.txt").write_text("weights")
    from harness.runner import submit

    run = submit(home, "attack", dataset="synthetic-small", k=5)
    assert run.status == "ok" and run.sandbox == "bwrap"


def test_sandbox_and_none_give_the_same_numbers(home, dataset):
    from harness.runner import submit

    a = submit(home, "popular", dataset="synthetic-small", k=10)
    b = submit(home, "popular", dataset="synthetic-small", k=10, sandbox="none")
    assert (a.sandbox, b.sandbox) == ("bwrap", "none")
    assert a.metrics == b.metrics and a.metrics["ndcg@10"] > 0


# -- the parent ------------------------------------------------------------------------------------


def test_the_parent_imports_no_plugin_code(home, dataset, register_plugins, tmp_path):
    sentinel = tmp_path / "imported-here"
    source = (
        f"""
import os
if os.path.exists({str(tmp_path)!r}):  # only the parent can see this directory
    open({str(sentinel)!r}, "w").close()
"""
        + PRELUDE
        + "\ndef attack(self):\n    return None\n"
    )
    register_plugins({"attack": source})
    from harness.runner import submit

    with pytest.raises(ConfigError, match="no parameter 'nope'"):
        submit(home, "attack", dataset="synthetic-small", params={"nope": "1"})
    run = submit(home, "attack", dataset="synthetic-small", k=5, params={"size": "3"})
    assert run.status == "ok" and not sentinel.exists()
    assert not [m for m in sys.modules if m.startswith("fakeplugins_mods.")]


def test_parameters_the_source_cannot_tell_are_checked_in_the_worker(
    home, dataset, register_plugins
):
    source = """
import functools
def wrap(cls):
    return cls
@wrap
class Model:
    def __init__(self, n: int = 1):
        self.n = n
    def fit(self, data):
        pass
    def recommend(self, users, k):
        pass
"""
    register_plugins({"deco": source})
    from harness.runner import submit

    with pytest.raises(ConfigError, match=r"parameter n='x' is not a valid int"):
        submit(home, "deco", dataset="synthetic-small", params={"n": "x"})
    assert store.list_runs(home) == []


def test_where_bwrap_cannot_start_auto_refuses_naming_sandbox_none(
    home, dataset, tmp_path, monkeypatch, cli
):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = cli("submit", "popular", "--dataset", "synthetic-small", expect=1)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: the sandbox cannot start here (bwrap: setting up uid map")
    assert "--sandbox none" in lines[-1]
    assert store.list_runs(home) == []
    ok = json.loads(
        cli(
            "submit", "popular", "--dataset", "synthetic-small", "--sandbox", "none", "--json"
        ).stdout
    )
    assert ok["sandbox"] == "none"


def test_plugin_text_is_shown_escaped(home, dataset, register_plugins, cli):
    source = """
class Model:
    def fit(self, data):
        import sys
        sys.stderr.write("\\x1b[2J[bold red]fake[/] [link=http://evil.example]x[/link]\\n")
        raise RuntimeError("[link=http://evil.example]click[/link] \\x1b[2J")
    def recommend(self, users, k):
        pass
"""
    register_plugins({"evil": source})
    from harness.runner import submit

    with pytest.raises(RunError):
        submit(home, "evil", dataset="synthetic-small", k=5)
    run_id = store.list_runs(home)[0].run_id
    shown, listed = cli("show", run_id).stdout, cli("runs").stdout
    assert "\x1b" not in shown and "\x1b" not in listed
    assert "[link=http://evil.example]click[/link] \\x1b[2J" in shown  # the error, as text
    assert "[bold red]fake[/] [link=http://evil.example]x[/link]" in shown  # the stderr tail
    assert "[link=" in listed


def test_sigterm_aborts_the_run_and_leaves_no_job_behind(home, dataset, register_plugins):
    register_plugins({"attack": plugin("def attack(self):\n    time.sleep(120)\n")})
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from harness.cli import main; main()",
            "submit",
            "attack",
            "--dataset",
            "synthetic-small",
            "--k",
            "5",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not store.list_runs(home):
        time.sleep(0.2)
    tree = psutil.Process(parent.pid).children(recursive=True)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) != 0
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive
    run = store.list_runs(home)[0]
    assert run.status == "aborted" and "SIGTERM" in run.error
    assert not list((home / "jobs").iterdir())


def test_a_killed_parents_job_is_swept_by_the_next_command(home, dataset, cli):
    from harness.runner import jobs

    job = home / "jobs" / "20260101-000000-abcdef"
    (job / "box").mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (job / "owner.json").write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname(), "started": 1.0})
    )
    (home / "runs").mkdir(exist_ok=True)
    orphan = home / "runs" / "20260101-000000-abcdef.parquet"
    orphan.write_bytes(b"PAR1")
    mine = home / "jobs" / "20260101-000000-live00"
    with jobs.job(home, "20260101-000000-live00"):
        cli("runs")
        assert not job.exists() and not orphan.exists()
        assert mine.exists()  # a live owner's job stays
    assert not mine.exists()


def test_a_run_is_scored_against_the_truth_it_started_with(
    home, dataset, register_plugins, tmp_path
):
    """Re-preparing the split with another registry while the model trains changes nothing for it:
    it scores exactly as the same model did before, on the fingerprint it started with."""
    from harness.datasets import prepare
    from harness.runner import submit

    root = register_plugins(
        {
            "gated": PRELUDE.replace(
                "found = attack(self)",
                "found = None\n        while not os.path.exists(os.path.join(os.path.dirname(__file__), 'go')):"
                " time.sleep(0.1)",
            )
        }
    )
    gate = root / "fakeplugins_mods" / "go"
    gate.write_text("go")
    reference = submit(home, "gated", dataset="synthetic-small", k=10)
    gate.unlink()
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(run=submit(home, "gated", dataset="synthetic-small", k=10))
    )
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and [r.status for r in store.list_runs(home)] != [
        "running",
        "ok",
    ]:
        time.sleep(0.2)
    registry = tmp_path / "other.toml"
    registry.write_text(
        '[synthetic-small]\nformat = "synthetic"\n'
        "params = { n_users = 500, n_items = 100, n_interactions = 6000, days = 30, seed = 3 }\n"
        '  [synthetic-small.splits.temporal]\n  protocol = "temporal"\n  days = 7\n'
    )
    meta = prepare("synthetic-small", home=home, registry_file=registry, force=True)
    gate.write_text("go")
    worker.join(timeout=120)
    assert meta["fingerprint"] != reference.fingerprint  # the split really changed meanwhile
    run = result["run"]
    assert run.status == "ok" and run.fingerprint == reference.fingerprint
    assert run.metrics == reference.metrics
