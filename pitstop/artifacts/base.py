"""The artifact store interface: write a model version's files once, read them back sha256-checked.

Invariants every implementation keeps:

* a published ``<name>/<version>/`` is never changed afterwards (the local store renames a staged
  folder into place; the S3 store writes each object create-only);
* ``read_verified`` digests the very bytes it returns, so a file swapped after the check is never
  loaded, and a digest mismatch raises ``ArtifactIntegrityError``.

Implementations: ``ArtifactStore`` (a local directory) and ``S3ArtifactStore`` (``s3://bucket/prefix``);
``open_artifact_store`` picks one by the path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pitstop.artifacts.store import ArtifactContent

__all__ = ["ArtifactStorage"]


class ArtifactStorage(Protocol):
    """Where ``ModelRegistry`` copies artifacts to and loads them from."""

    def stage(self, name: str, source: Path) -> tuple[Path, str]:
        """Copy ``source`` (file or directory) to a private local staging folder; returns it and the sha256.

        Raises:
            ModelRegistryError: ``source`` does not exist or cannot be copied.
        """
        ...

    def publish(self, staging: Path, name: str, version: int) -> Path | str:
        """Store a staged artifact as ``<name>/<version>/`` and return where it went.

        Raises:
            ModelRegistryError: the artifact cannot be stored there.
        """
        ...

    def discard(self, staging: Path) -> None:
        """Remove a staging folder (after a failed registration)."""
        ...

    def read_verified(self, relative: str, sha256: str) -> ArtifactContent:
        """Read the artifact recorded as ``relative`` once and return those bytes if they match ``sha256``.

        Raises:
            ArtifactIntegrityError: the artifact is missing or its bytes do not match ``sha256``.
            ModelRegistryError: the artifact cannot be read.
        """
        ...
