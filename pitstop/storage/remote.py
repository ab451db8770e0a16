"""Files in object storage (``s3://bucket/key``), listed and read through ``pyarrow.fs``.

Configuration is the standard AWS chain that every AWS SDK reads, so pitstop holds no secrets:
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (or a profile, or the instance role),
``AWS_REGION``, and ``AWS_ENDPOINT_URL`` for an S3-compatible server (SeaweedFS, MinIO, Ceph).

Reads go through a per-host cache of local copies, keyed by the object's URL and ETag (its
content version; listing times have one-second resolution, so they cannot tell two writes apart):
DuckDB and the point-in-time join then read local files at local speed, a
second read of unchanged data downloads nothing, and a file replaced in the bucket gets a new
copy (the old one is never read again). Copies are written to a temporary name and renamed, so
concurrent readers never see half a file.

Invariant: ``local_copies(url)`` returns one local path per object listed under ``url`` at the
time of the call, each holding exactly that object's bytes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pitstop.errors import NotFoundError, OfflineStoreError
from pitstop.redaction import redact_text

__all__ = ["RemoteFile", "cache_root", "is_remote", "resolve_path", "list_remote_parquet", "list_remote_parquet_many", "local_copies",
           "set_cache_dir"]

REMOTE_SCHEMES = ("s3://",)
_lock = threading.Lock()
_cache_dir: Path | None = None
_filesystems: dict[str, Any] = {}


def is_remote(path: str) -> bool:
    """Whether ``path`` names object storage (``s3://...``) rather than a local file."""
    return path.startswith(REMOTE_SCHEMES)


def resolve_path(path: str, root: Path | str) -> Path | str:
    """Where a definition's ``path`` points: itself when absolute or remote, else under ``root``
    (a local folder, or an ``s3://`` offline root)."""
    if is_remote(path):
        return path
    local = Path(path).expanduser()
    if local.is_absolute():
        return local
    if isinstance(root, str) and is_remote(root):
        relative = path[2:] if path.startswith("./") else path
        return f"{root.rstrip('/')}/{relative}"
    return Path(root) / local


def set_cache_dir(path: str | Path | None) -> None:
    """Where this process keeps local copies of remote files (``storage.cache_dir``; None: a temp folder)."""
    global _cache_dir
    _cache_dir = Path(path).expanduser() if path else None


def _cache_root() -> Path:
    root = _cache_dir or Path(tempfile.gettempdir()) / f"pitstop-remote-cache-{os.getuid()}"
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_root() -> Path:
    """This host's cache folder for copies of remote files (``storage.cache_dir``), created if missing."""
    return _cache_root()


@dataclass(frozen=True)
class RemoteFile:
    """One object: its URL, size in bytes and ETag, which together name its version."""

    url: str
    size: int
    etag: str

    @property
    def version_key(self) -> str:
        return hashlib.sha256(f"{self.url}\0{self.size}\0{self.etag}".encode()).hexdigest()[:32]


def _filesystem(url: str) -> tuple[Any, str]:
    """The pyarrow filesystem for ``url``'s scheme (one per process) and the path inside it."""
    from pyarrow import fs

    scheme = url.split("://", 1)[0]
    path = url.split("://", 1)[1]
    key = f"{scheme}|{os.environ.get('AWS_ENDPOINT_URL', '')}|{os.environ.get('AWS_ACCESS_KEY_ID', '')}"
    with _lock:
        filesystem = _filesystems.get(key)
        if filesystem is None:
            try:
                filesystem, _ = fs.FileSystem.from_uri(url)
            except (OSError, ValueError) as exc:
                raise OfflineStoreError(f"cannot open object storage for {url}: {redact_text(str(exc))}") from None
            _filesystems[key] = filesystem
    return filesystem, path.rstrip("/")


def list_remote_parquet(url: str) -> list[RemoteFile]:
    """The Parquet objects at ``url``: one object, every ``*.parquet`` under a prefix, or a glob; sorted.

    Raises:
        OfflineStoreError: the storage cannot be reached or refuses the listing (credentials, bucket).
    """
    from pyarrow import fs

    filesystem, path = _filesystem(url)
    scheme = url.split("://", 1)[0] + "://"
    pattern = None
    if any(ch in path for ch in "*?["):
        cut = min(path.index(ch) for ch in "*?[" if ch in path)
        prefix, pattern = path[:cut].rsplit("/", 1)[0], path
        path = prefix
    try:
        info = filesystem.get_file_info(path)
        if info.type == fs.FileType.File and pattern is None:
            found = [info]
        elif info.type == fs.FileType.NotFound and pattern is None:
            found = []
        else:
            found = [f for f in filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True))
                     if f.type == fs.FileType.File]
            found = [f for f in found if (fnmatch.fnmatch(f.path, pattern) if pattern else f.path.endswith(".parquet"))]
        files = [RemoteFile(scheme + f.path, int(f.size), _etag(filesystem, f.path)) for f in found]
    except (OSError, ValueError) as exc:  # pyarrow raises ArrowInvalid (a ValueError) for malformed paths
        raise OfflineStoreError(f"cannot list {url}: {redact_text(str(exc))}") from None
    return sorted(files, key=lambda r: r.url)


def _etag(filesystem: Any, path: str) -> str:
    """The object's ETag (one HEAD request)."""
    with filesystem.open_input_file(path) as handle:
        return bytes(handle.metadata().get("ETag", b"")).decode().strip('"')


def list_remote_parquet_many(urls: list[str]) -> list[RemoteFile]:
    """The current version of each object in ``urls`` (missing objects are left out)."""
    from pyarrow import fs

    out = []
    for url in urls:
        filesystem, path = _filesystem(url)
        try:
            info = filesystem.get_file_info(path)
            if info.type == fs.FileType.File:
                out.append(RemoteFile(url, int(info.size), _etag(filesystem, path)))
        except OSError as exc:
            raise OfflineStoreError(f"cannot read {url}: {redact_text(str(exc))}") from None
    return out


def local_copies(files: list[RemoteFile]) -> list[Path]:
    """A local path holding each file's bytes, downloading only the versions this host has not seen.

    Raises:
        NotFoundError: an object vanished between listing and download.
        OfflineStoreError: the download failed.
    """
    root = _cache_root()
    out = []
    for file in files:
        target = root / file.version_key[:2] / f"{file.version_key}.parquet"
        if not (target.exists() and target.stat().st_size == file.size):
            _download(file, target)
        out.append(target)
    return out


def _download(file: RemoteFile, target: Path) -> None:
    filesystem, path = _filesystem(file.url)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, filesystem.open_input_stream(path) as stream:
            etag = bytes(stream.metadata().get("ETag", b"")).decode().strip('"')
            if etag != file.etag:
                raise OfflineStoreError(f"{file.url} was replaced after it was listed; read again")
            while chunk := stream.read(8 << 20):
                out.write(chunk)
        if os.path.getsize(tmp) != file.size:
            raise OfflineStoreError(f"{file.url} changed while it was downloaded ({os.path.getsize(tmp)} bytes "
                                    f"read, {file.size} listed); read again")
        os.replace(tmp, target)
    except FileNotFoundError:
        raise NotFoundError(f"{file.url} vanished between listing and reading it; read again") from None
    except OSError as exc:
        raise OfflineStoreError(f"cannot read {file.url}: {redact_text(str(exc))}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
