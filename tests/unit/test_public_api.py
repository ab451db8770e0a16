"""The public names design.md promises are exported, and nothing else sneaks into __all__."""

from __future__ import annotations

import subprocess
import sys

import pitstop

DESIGN_NAMES = {
    "Entity", "Field", "Int64", "Int32", "Float64", "Float32", "String", "Bool", "Timestamp", "Array",
    "ParquetSource", "KafkaSource", "PushSource", "FeatureView", "OnDemandFeatureView", "FeatureService",
    "FeatureStore",
}


def test_all_matches_exports_and_is_sorted() -> None:
    assert DESIGN_NAMES <= set(pitstop.__all__)
    assert pitstop.__all__ == sorted(pitstop.__all__)
    for name in pitstop.__all__:
        assert hasattr(pitstop, name), name


def test_core_imports_no_service_layers() -> None:
    code = "import sys, pitstop, pitstop.cli.app; bad = [m for m in sys.modules if m.startswith(('pitstop.serving', 'pitstop.ingestion', 'fastapi', 'uvicorn', 'gunicorn', 'kafka'))]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
