"""Fetch: file:// downloads, sha256 verification, unzip, cache reuse, errors naming the file."""

import hashlib
import zipfile

import pytest

from harness.datasets.fetch import fetch
from harness.errors import FetchError


def make_zip(path, files):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_verify_unpack_and_reuse(tmp_path):
    archive = tmp_path / "src" / "data.zip"
    archive.parent.mkdir()
    digest = make_zip(archive, {"data/a.csv": "x\n1\n"})
    cache = tmp_path / "cache"
    root, sha = fetch(archive.as_uri(), digest, cache)
    assert sha == digest and (root / "data" / "a.csv").read_text() == "x\n1\n"
    archive.unlink()  # the cache must serve the second call without the source
    root2, _ = fetch(archive.as_uri(), digest, cache)
    assert root2 == root


def test_wrong_checksum_names_the_file(tmp_path):
    archive = tmp_path / "data.zip"
    make_zip(archive, {"a.csv": "x\n"})
    with pytest.raises(FetchError, match=r"data\.zip: sha256 .* does not match"):
        fetch(archive.as_uri(), "0" * 64, tmp_path / "cache")


def test_corrupt_archive_names_the_file(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 not really a zip")
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    with pytest.raises(FetchError, match=r"broken\.zip: corrupt zip archive"):
        fetch(archive.as_uri(), digest, tmp_path / "cache")


def test_missing_url_is_a_fetch_error(tmp_path):
    with pytest.raises(FetchError, match="download failed"):
        fetch((tmp_path / "absent.zip").as_uri(), None, tmp_path / "cache")


def test_without_checksum_the_first_download_is_recorded_and_enforced(tmp_path):
    archive = tmp_path / "data.zip"
    digest = make_zip(archive, {"a.csv": "x\n"})
    cache = tmp_path / "cache"
    fetch(archive.as_uri(), None, cache)
    assert (cache / "data.zip.sha256").read_text().strip() == digest
    (cache / "data.zip").write_bytes(b"tampered")  # cache no longer valid: fetched again
    make_zip(archive, {"a.csv": "changed\n"})  # and the source changed too
    with pytest.raises(FetchError, match="does not match"):
        fetch(archive.as_uri(), None, cache)


def test_first_download_is_checked_against_the_published_git_blob_id(tmp_path):
    import shutil
    import subprocess

    from harness.datasets.fetch import git_blob_sha1

    archive = tmp_path / "data.zip"
    make_zip(archive, {"a.csv": "x\n"})
    blob = git_blob_sha1(archive)
    if shutil.which("git"):  # an independent oracle where git is installed
        assert (
            blob
            == subprocess.run(
                ["git", "hash-object", str(archive)], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    with pytest.raises(
        FetchError, match=r"data\.zip: git blob id .* does not match the published 0+"
    ):
        fetch(archive.as_uri(), None, tmp_path / "bad", git_sha1="0" * 40)
    assert (
        not (tmp_path / "bad" / "data.zip").exists()
        and not (tmp_path / "bad" / "data.zip.sha256").exists()
    )
    root, sha = fetch(archive.as_uri(), None, tmp_path / "good", git_sha1=blob)
    assert (tmp_path / "good" / "data.zip.sha256").read_text().strip() == sha


def test_git_blob_id_of_known_content(tmp_path):
    from harness.datasets.fetch import git_blob_sha1

    (tmp_path / "hello").write_bytes(b"hello\n")  # `echo hello | git hash-object --stdin`
    assert git_blob_sha1(tmp_path / "hello") == "ce013625030ba8dba906f756967f9e9ca394464a"
