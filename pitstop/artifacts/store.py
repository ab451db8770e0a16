"""ArtifactStore: model artifacts copied under ``<root>/<name>/<version>/`` with their sha256."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from pathlib import Path

from pitstop.errors import ArtifactIntegrityError, ModelRegistryError

_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    """The sha256 of a file, or of a directory's files (relative paths and contents, in sorted order).

    Raises:
        ArtifactIntegrityError: ``path`` does not exist.
    """
    if not path.exists():
        raise ArtifactIntegrityError(f"artifact {path} is missing")
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if path.is_dir():
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


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

    def verify(self, relative: str, sha256: str) -> Path:
        """Check the artifact's content against ``sha256`` and return its absolute path.

        Raises:
            ArtifactIntegrityError: the artifact is missing or was modified after registration.
        """
        path = self.path(relative)
        actual = sha256_of(path)
        if actual != sha256:
            raise ArtifactIntegrityError(
                f"artifact {path} was modified after registration (sha256 {actual[:12]}..., "
                f"registered {sha256[:12]}...); register the model again instead of editing stored artifacts"
            )
        return path
