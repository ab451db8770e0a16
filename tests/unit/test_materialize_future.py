"""Materialization never writes rows timed beyond now plus online_store.max_future_seconds: they would win
every later write for their key. They are skipped and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from pitstop import FeatureStore
from tests.support.online_repo import make_repo


def _write_speed_rows(store: FeatureStore, rows: pd.DataFrame) -> None:
    folder = store.settings.offline_root / "data" / "speed"
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_parquet(folder / "part-0.parquet", index=False)


def test_rows_beyond_the_future_bound_are_skipped_and_counted(tmp_path: Path) -> None:
    store = make_repo(tmp_path)
    now = datetime.now(UTC).replace(microsecond=0)
    _write_speed_rows(store, pd.DataFrame({
        "driver_id": [1, 2, 3],
        "event_timestamp": [now - timedelta(minutes=5), now + timedelta(days=3650), now + timedelta(seconds=30)],
        "speed": [1.0, 99.0, 3.0],
    }))
    outcome = {o.view: o for o in store.materialize(now - timedelta(days=1), now + timedelta(days=4000),
                                                    views=["pushed"])}["pushed"]
    assert outcome.rows == 2 and outcome.future == 1
    got = store.get_online_features(["pushed:speed"], {"driver_id": [1, 2, 3]}).to_dict()["speed"]
    assert got == [1.0, None, 3.0]
    # the skipped row does not pin driver 2: a later, correct value is written
    store.push("speed_push", pd.DataFrame({"driver_id": [2], "event_timestamp": [now], "speed": [2.0]}))
    assert store.get_online_features(["pushed:speed"], {"driver_id": [2]}).to_dict()["speed"] == [2.0]
    store.close()


def test_no_bound_means_only_the_year_2262_limit(tmp_path: Path) -> None:
    store = make_repo(tmp_path)
    settings = store.settings.model_copy(update={"online_store": store.settings.online_store.model_copy(
        update={"max_future_seconds": None})})
    store.close()
    now = datetime.now(UTC).replace(microsecond=0)
    with FeatureStore(tmp_path, settings=settings) as unbounded:
        _write_speed_rows(unbounded, pd.DataFrame({"driver_id": [2], "event_timestamp": [now + timedelta(days=30)],
                                                   "speed": [99.0]}))
        outcome = unbounded.materialize(now - timedelta(days=1), now + timedelta(days=40), views=["pushed"])[0]
        assert outcome.rows == 1 and outcome.future == 0
