"""ArtifactStore: model artifacts copied under ``<root>/<name>/<version>/`` with their sha256.

The object-storage twin is ``S3ArtifactStore`` (pitstop/artifacts/s3.py); ``open_artifact_store``
(pitstop/artifacts/factory.py) picks one by the path's scheme. Both digest with ``digest_files``.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pitstop.errors import ArtifactIntegrityError, ModelRegistryError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArtifactContent:
    """An artifact's bytes, read once: the bytes whose sha256 was checked are the bytes that get loaded.

    Attributes:
        path: where the artifact was read from, a local path or an ``s3://`` URL (for messages).
        files: relative POSIX path -> content; a single-file artifact has one entry under its file name.
        sha256: the digest of exactly these bytes (same scheme as ``sha256_of``).
    """

    path: Path | str
    files: dict[str, bytes]
    sha256: str


def _artifact_files(path: Path) -> list[tuple[str | None, Path]]:
    """(name hashed with the content or None for a single file, file) in digest order."""
    if not path.exists():
        raise ArtifactIntegrityError(f"artifact {path} is missing")
    if path.is_file():
        return [(None, path)]
    return [(p.relative_to(path).as_posix(), p) for p in sorted(p for p in path.rglob("*") if p.is_file())]


def sha256_of(path: Path) -> str:
    """The sha256 of a file, or of a directory's files (relative paths and contents, in sorted order).

    Raises:
        ArtifactIntegrityError: ``path`` does not exist.
    """
    digest = hashlib.sha256()
    for name, file in _artifact_files(path):
        if name is not None:
            digest.update(name.encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


def digest_files(entries: Iterable[tuple[str | None, bytes]]) -> str:
    """The ``sha256_of`` digest of in-memory files: (relative POSIX path or None for a single file, bytes).

    ``entries`` must be in digest order: the order of ``PurePosixPath(relative)``, as ``sha256_of`` sorts.
    """
    digest = hashlib.sha256()
    for name, data in entries:
        if name is not None:
            digest.update(name.encode() + b"\0")
        digest.update(data)
        digest.update(b"\0")
    return digest.hexdigest()


def read_artifact(path: Path) -> ArtifactContent:
    """Read every byte of an artifact once and digest those bytes (no second read to race with).

    Raises:
        ArtifactIntegrityError: ``path`` does not exist or cannot be read.
    """
    entries: list[tuple[str | None, bytes]] = []
    files: dict[str, bytes] = {}
    try:
        for name, file in _artifact_files(path):
            data = file.read_bytes()
            entries.append((name, data))
            files[name if name is not None else file.name] = data
    except OSError as exc:
        raise ArtifactIntegrityError(f"artifact {path} cannot be read: {exc}") from exc
    return ArtifactContent(path, files, digest_files(entries))


class ArtifactStore:
    """A local directory of model artifacts; each saved version is written once and never changed.

    Args:
        root: the directory holding ``<name>/<version>/`` folders (created on first save).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def stage(self, name: str, source: Path) -> tuple[Path, str]:
        """Copy ``source`` (a file or directory) to a private staging folder under ``<root>/<name>/``.

        Returns the staging folder and the sha256 of the copied artifact. ``publish`` moves the
        folder into place once a version number is known; ``discard`` removes it on failure.

        Raises:
            ModelRegistryError: ``source`` does not exist or cannot be copied.
        """
        if not source.exists():
            raise ModelRegistryError(f"model artifact {source} does not exist; pass a file or directory path")
        staging = self.root / name / f".staging-{uuid.uuid4().hex}"
        try:
            staging.mkdir(parents=True)
            if source.is_dir():
                shutil.copytree(source, staging / source.name)
            else:
                shutil.copy2(source, staging / source.name)
        except OSError as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelRegistryError(f"cannot copy {source} into the artifact store at {self.root}: {exc}") from exc
        return staging, sha256_of(staging / source.name)

    def publish(self, staging: Path, name: str, version: int) -> Path:
        """Rename a staged folder to ``<root>/<name>/<version>`` (atomic on one filesystem)."""
        target = self.root / name / str(version)
        try:
            if target.exists():  # left by a registry that was since deleted: no version row points at it
                shutil.rmtree(target)
            staging.replace(target)
        except OSError as exc:
            raise ModelRegistryError(
                f"version {version} of {name!r} was recorded but its artifact could not be moved to {target}: {exc}; "
                "register the model again"
            ) from exc
        return target

    @staticmethod
    def discard(staging: Path) -> None:
        """Remove a staging folder (after a failed registration)."""
        shutil.rmtree(staging, ignore_errors=True)

    def path(self, relative: str) -> Path:
        """The absolute path of an artifact recorded relative to the root."""
        return self.root / relative

    def read_verified(self, relative: str, sha256: str) -> ArtifactContent:
        """Read the artifact once, check those bytes against ``sha256`` and return them.

        Loading from the returned bytes (never from the file again) means a file swapped in after
        the check is never executed.

        Raises:
            ArtifactIntegrityError: the artifact is missing or was modified after registration.
        """
        content = read_artifact(self.path(relative))
        if content.sha256 != sha256:
            raise ArtifactIntegrityError(
                f"artifact {content.path} was modified after registration (sha256 {content.sha256[:12]}..., "
                f"registered {sha256[:12]}...); register the model again instead of editing stored artifacts"
            )
        return content
