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


HEAVY = ("duckdb", "pandas", "pyarrow", "numpy", "fastapi", "redis", "uvicorn", "sklearn", "psycopg")


def test_import_pitstop_and_definitions_load_no_heavy_library() -> None:
    code = ("import sys, pitstop\n"
            "from pitstop import Entity, FeatureView, Field, Float64, ParquetSource, on_demand_feature_view\n"
            "d = Entity('driver', join_keys=['driver_id'])\n"
            "v = FeatureView('stats', entities=[d], schema=[Field('rate', Float64)],"
            " source=ParquetSource('src', path='x.parquet'))\n"
            "import pitstop.cli.app\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_api_tier_loads_on_first_use_and_duckdb_only_for_the_offline_engine() -> None:
    code = ("import sys, pitstop; pitstop.FeatureStore; print('pitstop.store' in sys.modules, 'duckdb' in sys.modules);"
            "from pitstop.store import FeatureStore; from pitstop.settings import Settings;"
            "FeatureStore.offline.fget; import pitstop.offline.duckdb_engine; print('duckdb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False", "True"]
