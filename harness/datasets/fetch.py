"""Download into the cache with a Rich progress bar, verify sha256, unpack zip archives.

A cached file whose checksum matches is reused, never downloaded again. Where a registry entry
gives no sha256 (KION publishes none), the checksum of the first download is recorded next to
the file (``NAME.sha256``) and every later use is checked against it. Where the host publishes only
a git blob id (a file in a pinned GitHub commit, as KION's archives are), that first download is
checked against it (``git_sha1``, what ``git hash-object FILE`` prints) before it is recorded.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from pathlib import Path

from harness.errors import FetchError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The id git gives the file's content: sha1 of ``blob SIZE\\0`` followed by the bytes."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, progress: bool) -> None:
    tmp = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            if progress:
                from rich.progress import Progress

                with Progress() as bar:
                    task = bar.add_task(f"download {target.name}", total=total)
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.advance(task, len(block))
            else:
                shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FetchError(f"{url}: download failed ({exc})") from exc
    tmp.replace(target)


def fetch(
    url: str,
    sha256: str | None,
    cache: Path,
    *,
    progress: bool = False,
    git_sha1: str | None = None,
) -> tuple[Path, str]:
    """Return (path of the usable data: unpacked directory or the file itself, its sha256)."""
    cache.mkdir(parents=True, exist_ok=True)
    name = url.rstrip("/").rsplit("/", 1)[-1] or "download"
    target = cache / name
    recorded = cache / (name + ".sha256")
    expected = sha256 or (recorded.read_text().strip() if recorded.exists() else None)
    if not target.exists() or (expected and sha256_of(target) != expected):
        _download(url, target, progress)
    actual = sha256_of(target)
    if expected and actual != expected:
        raise FetchError(
            f"{target}: sha256 {actual} does not match the expected {expected} "
            f"(from {url}); delete the file to download it again"
        )
    if not sha256 and not recorded.exists():
        if git_sha1 and (blob := git_blob_sha1(target)) != git_sha1:
            target.unlink()
            raise FetchError(
                f"{target}: git blob id {blob} does not match the published {git_sha1} "
                f"(from {url}); the download was deleted"
            )
        recorded.write_text(actual + "\n")
    if not zipfile.is_zipfile(target):
        if name.endswith(".zip"):
            raise FetchError(f"{target}: corrupt zip archive")
        return target, actual
    out = cache / (name + ".d")
    marker = out / ".complete"
    if not (marker.exists() and marker.read_text() == actual):
        shutil.rmtree(out, ignore_errors=True)
        try:
            with zipfile.ZipFile(target) as archive:
                archive.extractall(out)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            shutil.rmtree(out, ignore_errors=True)
            raise FetchError(f"{target}: corrupt zip archive ({exc})") from exc
        marker.write_text(actual)
    return out, actual
