"""plan/apply against the SQLite registry: diffs field by field, history, refusals, atomicity."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore
from pitstop.errors import ApplyRefusedError, NotRegisteredError
from tests.support.repos import ts, write_repo

DATA = {"data/d.parquet": pd.DataFrame({"driver_id": [1], "event_timestamp": [ts("2026-01-01")],
                                        "rate": pd.Series([0.5], dtype="float32"), "trips": [3]})}

VIEWS = """from datetime import timedelta
from pitstop import Entity, FeatureView, Field, Float32, Float64, Int64, ParquetSource
driver = Entity("driver", join_keys=["driver_id"])
src = ParquetSource("src", path="data/d.parquet")
stats = FeatureView("stats", entities=[driver], schema=[Field("rate", Float32), Field("trips", Int64)], source=src,
                    ttl=timedelta(hours=1))
"""
SERVICE = """from pitstop import FeatureService
svc = FeatureService("svc", features=["stats"])
"""


def test_plan_changes_nothing_and_apply_registers(tmp_path: Path) -> None:
    write_repo(tmp_path, {"views.py": VIEWS, "services.py": SERVICE}, DATA)
    store = FeatureStore(tmp_path)
    plan = store.plan()
    assert plan.counts() == {"add": 4, "change": 0, "remove": 0}
    assert store.registry.version() == 0
    with pytest.raises(NotRegisteredError):
        store.definitions().service("svc")
    store.apply()
    assert store.registry.version() == 1
    assert store.plan().is_empty
    assert store.definitions().service("svc").feature_refs == ["stats:rate", "stats:trips"]
    store.apply()  # nothing changed: no new version
    assert store.registry.version() == 1


def test_changes_are_reported_field_by_field_and_kept_in_history(tmp_path: Path) -> None:
    write_repo(tmp_path, {"views.py": VIEWS}, DATA)
    store = FeatureStore(tmp_path)
    store.apply()
    (tmp_path / "views.py").write_text(VIEWS.replace("hours=1", "hours=2").replace('Field("rate", Float32)', 'Field("rate", Float32, description="conversion")'))
    plan = store.plan()
    [change] = plan.changes
    assert (change.kind, change.name, change.action) == ("feature view", "stats", "change")
    paths = {f.path: (f.old, f.new) for f in change.fields}
    assert paths == {"schema.rate.description": ("", "conversion"), "ttl_seconds": (3600.0, 7200.0)}
    store.apply()
    history = store.history()
    assert [h.version for h in history] == [2, 1]
    assert history[0].summary == {"add": 0, "change": 1, "remove": 0}


def test_removed_objects_are_planned_as_removals(tmp_path: Path) -> None:
    write_repo(tmp_path, {"views.py": VIEWS, "services.py": SERVICE}, DATA)
    store = FeatureStore(tmp_path)
    store.apply()
    (tmp_path / "services.py").unlink()
    plan = store.plan()
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [("feature service", "svc", "remove")]
    store.apply()
    assert "svc" not in store.definitions().services


def test_removing_a_view_a_service_uses_is_refused(tmp_path: Path) -> None:
    write_repo(tmp_path, {"views.py": VIEWS, "services.py": SERVICE}, DATA)
    store = FeatureStore(tmp_path)
    store.apply()
    (tmp_path / "views.py").write_text(VIEWS.replace("stats = FeatureView", "other = FeatureView").replace('"stats"', '"other"'))
    with pytest.raises(ApplyRefusedError, match="feature view 'stats'.*feature service 'svc'"):
        store.apply()
    assert store.registry.version() == 1
    assert "stats" in store.definitions().views


def test_registry_round_trip_keeps_on_demand_functions(tmp_path: Path) -> None:
    odfv = VIEWS + """
import pandas as pd
from pitstop import on_demand_feature_view
@on_demand_feature_view(sources=[stats], schema=[Field("double_rate", Float64)])
def doubled(df):
    return pd.DataFrame({"double_rate": df["rate"] * 2})
"""
    write_repo(tmp_path, {"views.py": odfv}, DATA)
    FeatureStore(tmp_path).apply()
    fresh = FeatureStore(tmp_path)  # a new process would only have the registry
    view = fresh.definitions().on_demand["doubled"]
    assert view.transform(pd.DataFrame({"rate": [1.5]}))["double_rate"].tolist() == [3.0]
    assert "def doubled" in view.udf_source


def test_a_push_source_no_view_reads_keeps_its_inline_batch_source(tmp_path: Path) -> None:
    unread = """from pitstop import ParquetSource, PushSource
labels = PushSource("labels_push", batch_source=ParquetSource("labels_batch", path="data/labels"))
"""
    write_repo(tmp_path, {"views.py": VIEWS, "labels.py": unread}, DATA)
    with FeatureStore(tmp_path) as store:
        assert {"labels_push", "labels_batch"} <= {c.name for c in store.plan().changes}
        store.apply()
    with FeatureStore(tmp_path) as store:  # the stored definitions load again
        assert store.plan().is_empty
        assert store.definitions().sources["labels_push"].batch.name == "labels_batch"
