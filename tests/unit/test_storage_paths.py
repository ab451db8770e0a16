"""Where a definition's path points, under a local or an s3:// offline root."""

from __future__ import annotations

from pathlib import Path

from pitstop.storage import is_remote, resolve_path


def test_paths_resolve_under_local_and_remote_roots() -> None:
    assert resolve_path("data/trips", Path("/repo")) == Path("/repo/data/trips")
    assert resolve_path("./data/trips", "s3://bucket/offline") == "s3://bucket/offline/data/trips"
    assert resolve_path("data/trips", "s3://bucket/offline/") == "s3://bucket/offline/data/trips"
    assert resolve_path("s3://other/x.parquet", Path("/repo")) == "s3://other/x.parquet"
    assert resolve_path("/abs/x.parquet", "s3://bucket/offline") == Path("/abs/x.parquet")
    assert is_remote("s3://b/k") and not is_remote("/tmp/s3://x") and not is_remote("data/s3")
