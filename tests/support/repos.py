"""Build small feature repos on disk for tests: definition files, Parquet data, pitstop.yaml."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from pitstop import FeatureStore

YAML = """project: test
registry:
  path: data/registry.db
online_store:
  url: sqlite:///data/online.db
offline_store:
  memory_limit: 1GB
auth:
  enabled: false  # test repos serve on loopback only; tests/serving/test_auth.py and the auth integration tests turn it on
"""


def write_repo(root: Path, files: dict[str, str], data: dict[str, pd.DataFrame] | None = None) -> Path:
    """Write ``files`` (name -> Python source, dedented) and ``data`` (relative path -> frame)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pitstop.yaml").write_text(YAML)
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    for rel, frame in (data or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    return root


def applied_store(root: Path, files: dict[str, str], data: dict[str, pd.DataFrame] | None = None) -> FeatureStore:
    """Write the repo, apply it, and return its FeatureStore."""
    write_repo(root, files, data)
    store = FeatureStore(root)
    store.apply()
    return store


def ts(text: str) -> pd.Timestamp:
    """A UTC timestamp from ISO text."""
    return pd.Timestamp(text, tz="UTC")
