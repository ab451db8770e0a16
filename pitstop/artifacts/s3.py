"""S3ArtifactStore: model artifacts in object storage under ``s3://bucket/prefix/<name>/<version>/``.

Invariants:

* Create-only: each file of a version is written with a conditional PUT (``If-None-Match: *``,
  pitstop/storage/s3_put.py), so an existing object is never replaced; a key that already exists
  fails the registration with ``ModelRegistryError`` naming it.
* Check the bytes that are loaded: ``read_verified`` digests exactly the bytes it returns, whether
  they were just downloaded or read from this host's cache. A mismatch raises
  ``ArtifactIntegrityError``; bytes that do not match are never cached.
* One download per host: verified artifacts are kept under ``<storage cache>/artifacts/<sha256>/``
  (written to a temporary name and renamed), and a damaged cached copy is downloaded again.

Reads go through ``pyarrow.fs`` (the full AWS chain, ``AWS_ENDPOINT_URL`` included); writes need
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` in the environment (see s3_put.py).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from pitstop.artifacts.store import ArtifactContent, ArtifactStore, digest_files, read_artifact
from pitstop.errors import ArtifactIntegrityError, ConfigError, ModelRegistryError
from pitstop.log import get_logger
from pitstop.redaction import redact_text
from pitstop.storage.remote import cache_root
from pitstop.storage.s3_put import credentials_from_env, put_if_absent

__all__ = ["S3ArtifactStore"]

_log = get_logger(__name__)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class S3ArtifactStore:
    """Model artifacts in an S3 bucket (or an S3-compatible server); each version is written once.

    Args:
        url: ``s3://bucket`` or ``s3://bucket/prefix`` (``artifacts.path``).

    Raises:
        ConfigError: ``url`` names no bucket.
    """

    def __init__(self, url: str) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not bucket:
            raise ConfigError(f"artifacts.path {url!r} names no bucket; use s3://<bucket>/<prefix>")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._lock = threading.Lock()
        self._filesystem: Any = None

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    @staticmethod
    def _cache() -> Path:
        return cache_root() / "artifacts"

    def stage(self, name: str, source: Path) -> tuple[Path, str]:
        """Copy ``source`` to a local staging folder (in this host's cache) and digest the copy.

        Raises:
            ConfigError: the AWS key pair needed for writing is not in the environment.
            ModelRegistryError: ``source`` does not exist, cannot be copied or is an empty directory.
        """
        credentials_from_env()  # fail before a version number is taken, not after
        staging, digest = ArtifactStore(self._cache() / ".staging").stage(name, source)
        if not any(p.is_file() for p in staging.rglob("*")):
            ArtifactStore.discard(staging)
            raise ModelRegistryError(f"model artifact {source} is a directory without files; object storage "
                                     "cannot hold an empty directory")
        return staging, digest

    def publish(self, staging: Path, name: str, version: int) -> str:
        """Upload a staged artifact to ``<prefix>/<name>/<version>/``, create-only, then remove the staging folder.

        Returns:
            the ``s3://`` URL of the version's folder.

        Raises:
            ModelRegistryError: a key already exists (it is left unchanged), or the upload failed.
        """
        target = f"{self.url}/{name}/{version}"
        try:
            credentials = credentials_from_env()
            for file in sorted(p for p in staging.rglob("*") if p.is_file()):
                key = self._key(f"{name}/{version}/{file.relative_to(staging).as_posix()}")
                if not put_if_absent(self.bucket, key, file.read_bytes(), credentials):
                    raise ModelRegistryError(
                        f"version {version} of {name!r} was recorded but s3://{self.bucket}/{key} already exists "
                        "and artifacts are never overwritten; it is left from another registry using the same "
                        "artifacts.path: point artifacts.path at a new prefix (or delete that registry's "
                        "objects) and register the model again")
        except OSError as exc:
            raise ModelRegistryError(
                f"version {version} of {name!r} was recorded but its artifact could not be written to {target}: "
                f"{redact_text(str(exc))}; check the bucket and credentials and register the model again") from None
        finally:
            ArtifactStore.discard(staging)
        return target

    @staticmethod
    def discard(staging: Path) -> None:
        """Remove a staging folder (after a failed registration)."""
        ArtifactStore.discard(staging)

    def read_verified(self, relative: str, sha256: str) -> ArtifactContent:
        """The artifact's bytes, checked against ``sha256``: from this host's cache, or downloaded once.

        Raises:
            ArtifactIntegrityError: the artifact is missing or its bytes do not match ``sha256``.
            ModelRegistryError: object storage cannot be reached or refuses the read.
        """
        url = f"{self.url}/{relative}"
        base = relative.rsplit("/", 1)[-1]
        if not _SHA256.match(sha256) or base in ("", ".", ".."):
            raise ArtifactIntegrityError(f"artifact {url} has an invalid registry record (sha256 {sha256[:16]!r}); "
                                         "register the model again")
        cached = self._cache() / sha256 / base
        if cached.exists():
            try:
                content = read_artifact(cached)
                if content.sha256 == sha256:
                    return ArtifactContent(url, content.files, content.sha256)
            except ArtifactIntegrityError:
                pass
            _log.warning("cached copy of %s at %s does not match its sha256; downloading it again", url, cached)
        entries = self._download(url)
        digest = digest_files(entries)
        if digest != sha256:
            raise ArtifactIntegrityError(
                f"artifact {url} was modified after registration (sha256 {digest[:12]}..., registered "
                f"{sha256[:12]}...); register the model again instead of editing stored artifacts")
        files = {name if name is not None else base: data for name, data in entries}
        self._keep(cached, files, single=entries[0][0] is None)
        return ArtifactContent(url, files, digest)

    def _filesystem_and_path(self, url: str) -> tuple[Any, str]:
        from pyarrow import fs

        with self._lock:
            if self._filesystem is None:
                try:
                    self._filesystem, _ = fs.FileSystem.from_uri(url)
                except (OSError, ValueError) as exc:
                    raise ModelRegistryError(f"cannot open object storage for {url}: {redact_text(str(exc))}") from None
        return self._filesystem, url.removeprefix("s3://")

    def _download(self, url: str) -> list[tuple[str | None, bytes]]:
        """The artifact's files in digest order: [(None, bytes)] for one object, else (relative path, bytes)."""
        from pyarrow import fs

        filesystem, path = self._filesystem_and_path(url)
        try:
            info = filesystem.get_file_info(path)
            if info.type == fs.FileType.File:
                return [(None, _read(filesystem, path))]
            found = [] if info.type == fs.FileType.NotFound else [
                f.path for f in filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
                if f.type == fs.FileType.File]
            if not found:
                raise ArtifactIntegrityError(f"artifact {url} is missing from object storage; register the model again")
            names = sorted((p[len(path) + 1:] for p in found), key=PurePosixPath)  # sha256_of's order
            return [(name, _read(filesystem, f"{path}/{name}")) for name in names]
        except FileNotFoundError:
            raise ArtifactIntegrityError(f"artifact {url} vanished while it was read; register the model again") from None
        except OSError as exc:
            raise ModelRegistryError(f"cannot read artifact {url}: {redact_text(str(exc))}") from None

    @staticmethod
    def _keep(cached: Path, files: dict[str, bytes], *, single: bool) -> None:
        """Cache verified bytes at ``cached`` (a file, or a folder of files) via a temporary name and a rename."""
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(dir=cached.parent, prefix=".part-"))
            try:
                written = tmp / cached.name
                for name, data in files.items():
                    out = written if single else written / name
                    out.parent.mkdir(parents=True, exist_ok=True)
                    out.write_bytes(data)
                if cached.is_dir():  # a damaged copy: replace it
                    shutil.rmtree(cached, ignore_errors=True)
                try:
                    os.replace(written, cached)
                except OSError:
                    if not cached.exists():  # else another process cached the same bytes first
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:  # the bytes are verified already: a failed copy only costs a download later
            _log.warning("cannot cache artifact at %s: %s", cached, exc)


def _read(filesystem: Any, path: str) -> bytes:
    with filesystem.open_input_stream(path) as stream:
        return bytes(stream.read())
