"""Choose the artifact store for ``artifacts.path``: a local directory or an ``s3://bucket/prefix`` URL."""

from __future__ import annotations

from pathlib import Path

from pitstop.artifacts.base import ArtifactStorage
from pitstop.artifacts.store import ArtifactStore
from pitstop.storage.remote import is_remote

__all__ = ["open_artifact_store"]


def open_artifact_store(path: str | Path) -> ArtifactStorage:
    """The artifact store at ``path``: ``S3ArtifactStore`` for an ``s3://`` URL, else ``ArtifactStore``.

    Args:
        path: an ``s3://bucket/prefix`` URL, or a local directory (already resolved against the repo).

    Raises:
        ConfigError: an ``s3://`` URL names no bucket.
    """
    if isinstance(path, str) and is_remote(path):
        from pitstop.artifacts.s3 import S3ArtifactStore  # pyarrow.fs loads only for remote artifacts

        return S3ArtifactStore(path)
    return ArtifactStore(path)
