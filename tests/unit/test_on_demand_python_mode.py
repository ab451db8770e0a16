"""On-demand views in python mode: same answers as pandas mode online and offline, stored mode, clear errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from pitstop import FeatureStore, Field, Float64, RequestSource, on_demand_feature_view
from pitstop.definitions.on_demand import OnDemandFeatureView
from pitstop.errors import DefinitionError
from tests.support.online_repo import make_repo, now_hour

PYTHON_DEFS = '''

@on_demand_feature_view(
    sources=[stats[["rate", "city"]], req],
    schema=[Field("rate_plus_py", Float64), Field("shout", String)],
    mode="python",
)
def rate_plus_python(inputs: dict) -> dict:
    return {
        "rate_plus_py": [None if r is None else r + b for r, b in zip(inputs["rate"], inputs["bonus"])],
        "shout": [None if c is None else c.upper() + "!" for c in inputs["city"]],
    }
'''
REFS = ["stats:rate", "rate_plus:rate_plus", "rate_plus_python:rate_plus_py", "rate_plus_python:shout"]


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    first = make_repo(tmp_path)
    first.close()
    defs = tmp_path / "defs.py"
    defs.write_text(defs.read_text() + PYTHON_DEFS)
    store = FeatureStore(tmp_path)
    store.apply()
    now = now_hour()
    store.materialize(now - timedelta(days=500), now + timedelta(hours=1))
    yield store
    store.close()


def test_online_python_mode_matches_pandas_mode_and_passes_missing_inputs_as_none(store: FeatureStore) -> None:
    rows = [{"driver_id": 1, "bonus": 1.0}, {"driver_id": 3, "bonus": 0.5}, {"driver_id": 4, "bonus": 2.0}]
    got = store.get_online_features(REFS, rows)
    values = got.to_dict()
    assert values["rate_plus_py"] == values["rate_plus"] == [pytest.approx(1.2), pytest.approx(1.2), None]
    assert values["shout"] == ["B!", None, None]  # driver 3's city is null, driver 4 is not found
    assert got.statuses["rate_plus_py"] == got.statuses["rate_plus"] == ["PRESENT", "PRESENT", "NOT_FOUND"]


def test_training_sets_run_the_python_function_on_the_joined_columns(store: FeatureStore) -> None:
    now = now_hour()
    entity = pd.DataFrame({"driver_id": [1, 2, 3, 9], "event_timestamp": [now] * 4, "bonus": [1.0, 2.0, 0.5, 1.0]})
    frame = store.get_historical_features(entity, REFS).to_pandas()
    pd.testing.assert_series_equal(frame["rate_plus_py"], frame["rate_plus"], check_names=False)
    # driver 2's only row is past the 2 h ttl and driver 9 has none: null inputs, null outputs
    assert frame["rate_plus_py"].tolist()[0] == pytest.approx(1.2) and frame["rate_plus_py"].isna().tolist() == [
        False, True, False, True]
    assert frame["shout"].iloc[0] == "B!" and frame["shout"].isna().tolist() == [False, True, True, True]


def test_the_mode_is_stored_in_the_registry_and_a_reapply_changes_nothing(store: FeatureStore, tmp_path: Path) -> None:
    reopened = FeatureStore(tmp_path)
    try:
        views = reopened.definitions().on_demand
        assert views["rate_plus_python"].mode == "python"
        assert views["rate_plus"].mode == "pandas"
        assert reopened.plan().is_empty
    finally:
        reopened.close()


def make_view(udf, mode: str = "python") -> OnDemandFeatureView:
    req = RequestSource("req", schema=[Field("x", Float64)])
    return OnDemandFeatureView("twice", sources=[req], schema=[Field("y", Float64)], udf=udf, mode=mode)


@pytest.mark.parametrize(
    ("udf", "message"),
    [
        (lambda cols: pd.DataFrame({"y": cols["x"]}), "must return a dict of lists, got DataFrame"),
        (lambda cols: {"z": cols["x"]}, r"lacks declared key\(s\) \['y'\]"),
        (lambda cols: {"y": cols["x"][:1]}, "returned 1 values for 'y' from 2 input rows"),
        (lambda cols: {"y": 3.0}, "must be a list of 2 values, got float"),
        (lambda cols: {"y": [c / 0 for c in cols["x"]]}, "udf raised ZeroDivisionError"),
    ],
)
def test_a_bad_python_udf_result_names_the_view_and_what_is_wrong(udf, message: str) -> None:
    view = make_view(udf)
    with pytest.raises(DefinitionError, match=message) as info:
        view.transform_columns({"x": [1.0, 2.0]}, 2)
    assert "on-demand feature view 'twice'" in str(info.value)
    assert __file__.rsplit("/", 1)[-1] in str(info.value)  # where the view was defined


def test_python_udfs_may_return_numpy_arrays_or_tuples() -> None:
    import numpy as np

    assert make_view(lambda cols: {"y": np.asarray(cols["x"]) * 2}).transform_columns({"x": [1.0, 2.0]}, 2) == (
        {"y": [2.0, 4.0]}
    )
    assert make_view(lambda cols: {"y": (float("nan"), 1.0)}).transform_columns({"x": [1.0, 2.0]}, 2) == (
        {"y": [None, 1.0]}
    )


def test_an_unknown_mode_is_refused_where_it_is_declared() -> None:
    req = RequestSource("req", schema=[Field("x", Float64)])
    with pytest.raises(DefinitionError, match="mode"):
        @on_demand_feature_view(sources=[req], schema=[Field("y", Float64)], mode="polars")  # type: ignore[arg-type]
        def bad(cols):
            return cols
