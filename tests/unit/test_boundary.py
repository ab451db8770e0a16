"""The boundary rules: one answer per input, whether it arrives as a JSON value, an Arrow column,
a Kafka message, pushed rows or entity rows."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from pitstop.boundary import MAX_US, MIN_US, check_value, latest_us, shown, timestamp_us
from pitstop.boundary.columns import check_feature_column, timestamps_us
from pitstop.definitions.dtypes import Array, Float32, Float64, Int32, Int64, String
from pitstop.errors import InvalidValueError, RetrievalError

NOW_S = int(time.time())
NOW_US = NOW_S * 1_000_000
LATEST = latest_us(300, NOW_US)


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (NOW_S, "s", NOW_US),
    (NOW_S * 1000, "ms", NOW_US),
    (NOW_S * 1_000_000, "us", NOW_US),
    (NOW_S * 10**9 + 999, "ns", NOW_US),
    (NOW_S + 0.5, "s", NOW_US + 500_000),
    ("2026-01-31T12:00:00Z", "s", 1_769_860_800_000_000),
    ("2026-01-31T14:00:00+02:00", "s", 1_769_860_800_000_000),
    ("2026-01-31 12:00:00", "s", 1_769_860_800_000_000),
    ("1900-01-01T00:00:00Z", "s", MIN_US),
])
def test_accepted_times_are_the_same_as_values_and_as_columns(value: object, unit: str, expected: int) -> None:
    assert timestamp_us(value, unit, LATEST) == expected  # type: ignore[arg-type]
    assert timestamps_us(pa.array([value]), "ts", unit=unit, latest=LATEST).to_pylist() == [expected]  # type: ignore[arg-type]


@pytest.mark.parametrize(("value", "unit", "reason"), [
    (1796015494153838, "s", "read as epoch seconds is year 56,915,435; is it epoch microseconds? set timestamp_unit='us'"),
    (NOW_S * 1000, "s", "is it epoch milliseconds? set timestamp_unit='ms'"),
    (NOW_S * 10**9, "us", "is it epoch nanoseconds? set timestamp_unit='ns'"),
    (NOW_S + 3600, "s", "later than the latest accepted time"),
    ("2200-01-01T00:00:00Z", "s", "later than the latest accepted time"),
    ("1899-12-31T23:59:59Z", "s", "times must fall between 1900-01-01 and 2262-04-11"),
    (-1e12, "s", "times must fall between"),
    ("", "s", "not an ISO-8601 time"),
    ("NaT", "s", "not an ISO-8601 time"),
    ("now", "s", "not an ISO-8601 time"),
    ("today", "s", "not an ISO-8601 time"),
    (" Today ", "s", "not an ISO-8601 time"),
    ("31/01/2026", "s", "not an ISO-8601 time"),
    (float("nan"), "s", "not a time"),
    (float("inf"), "s", "not a time"),
])
def test_refused_times_give_the_same_reason_as_values_and_as_columns(value: object, unit: str, reason: str) -> None:
    with pytest.raises(ValueError) as scalar:
        timestamp_us(value, unit, LATEST)  # type: ignore[arg-type]
    assert reason in str(scalar.value)
    with pytest.raises(InvalidValueError) as column:
        first = "2026-01-01T00:00:00Z" if isinstance(value, str) else type(value)(NOW_S)  # type: ignore[call-arg]
        timestamps_us(pa.array([first, value], from_pandas=False), "ts", unit=unit, latest=LATEST)  # type: ignore[arg-type]
    assert column.value.row == 1 and column.value.column == "ts"
    assert reason in column.value.reason
    assert str(column.value).startswith("column 'ts', row 1: ")


def test_the_future_bound_is_relative_to_now_and_optional() -> None:
    assert latest_us(0, NOW_US) == NOW_US
    assert latest_us(None, NOW_US) == MAX_US
    assert timestamp_us("2200-01-01T00:00:00Z", "s", latest_us(None)) > NOW_US
    with pytest.raises(ValueError, match="later than"):
        timestamp_us(NOW_S + 1, "s", latest_us(0, NOW_US))


def test_typed_columns_keep_their_fast_path_and_are_checked() -> None:
    stamps = pd.Series(pd.date_range("2026-01-01", periods=1000, freq="s", tz="UTC"))
    got = timestamps_us(pa.array(stamps), "ts").to_numpy()
    assert got[0] == 1_767_225_600_000_000 and got[-1] - got[0] == 999_000_000
    naive = pa.array(pd.Series([pd.Timestamp("2026-01-01")]))
    assert timestamps_us(naive, "ts").to_pylist() == [1_767_225_600_000_000]
    with pytest.raises(InvalidValueError, match="row 1: is missing"):
        timestamps_us(pa.array(pd.Series([pd.Timestamp("2026-01-01"), pd.NaT])), "ts")
    with pytest.raises(InvalidValueError, match="row 0: .*later than the latest accepted time"):
        timestamps_us(pa.array(pd.Series([pd.Timestamp("2200-01-01", tz="UTC")])), "ts", latest=LATEST)
    with pytest.raises(InvalidValueError, match="unit is unknown"):
        timestamps_us(pa.array([NOW_S]), "ts", unit=None)


@pytest.mark.parametrize(("value", "dtype", "reason"), [
    (1e39, Float32, "out of range for Float32"),
    (-1e39, Float32, "out of range for Float32"),
    (float("nan"), Float64, "send null for a missing value"),
    (float("inf"), Float64, "send null for a missing value"),
    (10**400, Float64, "out of range for Float64"),
    (2**31, Int32, "out of range for Int32"),
    (2**63, Int64, "out of range for Int64"),
    (1.0, Int64, "expected an integer (Int64), got 1.0"),
    (True, Int64, "expected an integer (Int64), got true"),
    (5, String, "expected a string, got 5"),
    ([1.0, 1e39], Array(Float32), "list element: 1e+39 is out of range for Float32"),
])
def test_values_that_a_dtype_cannot_hold_are_refused(value: object, dtype, reason: str) -> None:
    with pytest.raises(ValueError) as scalar:
        check_value(value, dtype)
    assert reason in str(scalar.value)
    if isinstance(value, float | list) and dtype.name != "Int64":  # a float column may hold 1.0 for Int64 (pandas)
        with pytest.raises(InvalidValueError) as column:
            check_feature_column(pa.array([[1.0] if isinstance(value, list) else 1.0, value]), "f", dtype)
        assert column.value.row == 1 and reason.split(",")[0].split(" (")[0] in column.value.reason


def test_values_that_fit_are_kept() -> None:
    assert check_value(3.4e38, Float32) == 3.4e38
    assert check_value(2**31 - 1, Int32) == 2**31 - 1
    assert check_value(3, Float64) == 3.0
    check_feature_column(pa.array([1.0, None, 3.4e38]), "f", Float32)
    check_feature_column(pa.array([1, 2**31 - 1], pa.int64()), "f", Int32)


def test_error_excerpts_are_short() -> None:
    assert len(shown("x" * 10_000_000)) <= 100
    with pytest.raises(ValueError) as exc:
        timestamp_us("2" * 10_000_000)
    assert len(str(exc.value)) < 200
    with pytest.raises(ValueError) as exc:
        check_value("s" * 10_000_000, Int64)
    assert len(str(exc.value)) < 200


# ------------------------------------------------------------------ entity rows (get_historical_features)


@pytest.fixture
def entity_store(tmp_path: Path):
    from tests.support.online_repo import make_repo

    store = make_repo(tmp_path)
    yield store
    store.close()


@pytest.mark.parametrize(("stamp", "reason"), [
    ("", "not an ISO-8601 time"), ("NaT", "not an ISO-8601 time"), ("now", "not an ISO-8601 time"),
    ("today", "not an ISO-8601 time"), ("1800-01-01", "1900-01-01"), ("2300-01-01", "2262-04-11"),
])
def test_entity_rows_refuse_bad_timestamp_text_naming_column_and_row(entity_store, stamp: str, reason: str) -> None:
    rows = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": ["2026-01-01T00:00:00Z", stamp]})
    with pytest.raises(RetrievalError, match=r"column 'event_timestamp', row 1: ") as exc:
        entity_store.get_historical_features(rows, features=["stats:rate"]).to_pandas()
    assert reason in str(exc.value)


def test_entity_rows_refuse_numbers_and_nulls(entity_store) -> None:
    with pytest.raises(RetrievalError, match="unit is unknown"):
        entity_store.get_historical_features(pd.DataFrame({"driver_id": [1], "event_timestamp": [NOW_S]}),
                                             features=["stats:rate"]).to_pandas()
    rows = pd.DataFrame({"driver_id": [1, 2], "event_timestamp": [pd.Timestamp("2026-01-01", tz="UTC"), pd.NaT]})
    with pytest.raises(RetrievalError, match="row 1: is missing"):
        entity_store.get_historical_features(rows, features=["stats:rate"]).to_pandas()


def test_entity_rows_accept_text_and_timestamps_alike(entity_store) -> None:
    when = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    text = pd.DataFrame({"driver_id": [1], "event_timestamp": [when.isoformat()]})
    typed = pd.DataFrame({"driver_id": [1], "event_timestamp": [when]})
    a = entity_store.get_historical_features(text, features=["stats:rate"]).to_pandas()
    b = entity_store.get_historical_features(typed, features=["stats:rate"]).to_pandas()
    assert a["rate"].tolist() == b["rate"].tolist()


def test_message_json_and_push_json_agree() -> None:
    """The ingester's decoder and the /push checks read one JSON value the same way."""
    from pitstop.serving.errors import ApiError
    from pitstop.serving.inputs import _timestamps

    for raw in ["1796015494153", '"now"', '"2026-01-01T00:00:00Z"', "1e400", '""']:
        value = json.loads(raw)
        try:
            expected: object = timestamp_us(value, "s", LATEST)
        except ValueError as exc:
            expected = str(exc)
        try:
            got: object = _timestamps([value], "rows.ts", "s", LATEST, nulls=False).cast(pa.int64()).to_pylist()[0]
        except ApiError as exc:
            got = exc.message
        assert got == expected
