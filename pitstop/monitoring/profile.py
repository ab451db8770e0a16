"""The reference profile of a training set: what drift is measured against, kept with each model version.

Per numeric feature: 1,001 quantiles with the exact share of rows at or below each (its empirical
CDF at those points; every value when there are at most 2,000), mean, standard deviation, min, max
and null count. Per categorical feature: the count of every category (nulls as their own category;
beyond 1,000 categories the rarest are pooled). Plus a bounded uniform sample of rows of the numeric
features for the multivariate (MMD) test. A profile is a few hundred kilobytes whatever the training
set's size, and is stored as one Parquet file (the sample) whose metadata holds the summaries.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pitstop.errors import PitstopError

__all__ = ["CategoricalSummary", "NumericSummary", "ReferenceProfile", "build_profile", "is_categorical_type",
           "numeric_values"]

QUANTILES = 1000
EXACT_LIMIT = 2000
MAX_CATEGORIES = 1000
NULL_CATEGORY = "<null>"
OTHER_CATEGORY = "<other>"
_META_KEY = b"pitstop.profile"


@dataclass
class NumericSummary:
    """A numeric feature's distribution: quantile values and the empirical CDF at each."""

    count: int
    nulls: int
    mean: float
    std: float
    minimum: float
    maximum: float
    values: list[float]
    """Sorted quantile values (every value, sorted, when ``exact``)."""
    cdf: list[float]
    """Share of the non-null values at or below each of ``values``."""
    exact: bool


@dataclass
class CategoricalSummary:
    """A categorical feature's category counts (``<null>`` for nulls, ``<other>`` for pooled rare ones)."""

    count: int
    nulls: int
    counts: dict[str, int]


@dataclass
class ReferenceProfile:
    """Summaries of every profiled feature of one table, and a sample of its numeric rows."""

    rows: int
    numeric: dict[str, NumericSummary] = field(default_factory=dict)
    categorical: dict[str, CategoricalSummary] = field(default_factory=dict)
    sample: pa.Table | None = None

    @property
    def features(self) -> list[str]:
        """Every profiled feature, numeric first."""
        return [*self.numeric, *self.categorical]

    def to_bytes(self) -> bytes:
        """The profile as one Parquet file (the sample, with the summaries in its metadata)."""
        meta = json.dumps({"rows": self.rows, "numeric": {k: asdict(v) for k, v in self.numeric.items()},
                           "categorical": {k: asdict(v) for k, v in self.categorical.items()}})
        sample = self.sample if self.sample is not None else pa.table({})
        sample = sample.replace_schema_metadata({_META_KEY: meta.encode()})
        sink = io.BytesIO()
        pq.write_table(sample, sink, compression="zstd")
        return sink.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> ReferenceProfile:
        """Read a profile written by ``to_bytes``.

        Raises:
            PitstopError: the bytes are not a pitstop profile.
        """
        try:
            sample = pq.read_table(io.BytesIO(data))
            meta = json.loads((sample.schema.metadata or {})[_META_KEY])
        except Exception as exc:
            raise PitstopError(f"not a pitstop reference profile: {exc}") from exc
        return cls(rows=meta["rows"], numeric={k: NumericSummary(**v) for k, v in meta["numeric"].items()},
                   categorical={k: CategoricalSummary(**v) for k, v in meta["categorical"].items()},
                   sample=sample.replace_schema_metadata(None) if sample.num_columns else None)


def is_categorical_type(kind: pa.DataType) -> bool:
    """Strings, booleans and dictionary-encoded columns are tested as categories."""
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
            or pa.types.is_dictionary(kind))


def _is_numeric_type(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def numeric_values(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls (and for NaNs)."""
    array = column.cast(pa.float64())
    return np.asarray(array.to_numpy(zero_copy_only=False) if isinstance(array, pa.Array)
                      else array.to_numpy(), dtype=np.float64)


def category_counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Counts of each category as text, nulls under ``<null>``."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    text = column.cast(pa.string()) if not pa.types.is_string(column.type) else column
    counts: dict[str, int] = {}
    for item in pc.value_counts(text).to_pylist():
        key = NULL_CATEGORY if item["values"] is None else item["values"]
        counts[key] = counts.get(key, 0) + int(item["counts"])
    return counts


def summarize_numeric(values: np.ndarray) -> NumericSummary:
    """Summary of one numeric column (NaN = null)."""
    finite = values[~np.isnan(values)]
    nulls = int(len(values) - len(finite))
    if len(finite) == 0:
        return NumericSummary(0, nulls, 0.0, 0.0, 0.0, 0.0, [], [], True)
    ordered = np.sort(finite)
    n = len(ordered)
    if n <= EXACT_LIMIT:
        points = ordered
        exact = True
    else:
        ranks = np.ceil(np.linspace(0, 1, QUANTILES + 1) * n).astype(np.int64) - 1  # inverted CDF
        points = ordered[np.clip(ranks, 0, n - 1)]
        exact = False
    cdf = np.searchsorted(ordered, points, side="right") / n
    return NumericSummary(n, nulls, float(ordered.mean()), float(ordered.std()), float(ordered[0]),
                          float(ordered[-1]), points.tolist(), cdf.tolist(), exact)


def summarize_categorical(column: pa.ChunkedArray | pa.Array) -> CategoricalSummary:
    """Summary of one categorical column; beyond ``MAX_CATEGORIES`` the rarest are pooled."""
    counts = category_counts(column)
    if len(counts) > MAX_CATEGORIES:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        counts = dict(ranked[: MAX_CATEGORIES - 1])
        counts[OTHER_CATEGORY] = counts.get(OTHER_CATEGORY, 0) + sum(c for _, c in ranked[MAX_CATEGORIES - 1:])
    return CategoricalSummary(len(column), counts.get(NULL_CATEGORY, 0), counts)


def profiled_columns(table: pa.Table, features: Iterable[str] | None = None,
                     categorical: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """(numeric, categorical) feature names of ``table`` that can be profiled; other types are skipped."""
    forced = set(categorical)
    names = list(features) if features is not None else table.column_names
    numeric, cats = [], []
    for name in names:
        if name not in table.column_names:
            continue
        kind = table.schema.field(name).type
        if name in forced or is_categorical_type(kind):
            cats.append(name)
        elif _is_numeric_type(kind):
            numeric.append(name)
    return numeric, cats


def build_profile(table: pa.Table, features: Iterable[str] | None = None, *, categorical: Iterable[str] = (),
                  sample_rows: int = 5_000, seed: int = 0) -> ReferenceProfile:
    """Profile the ``features`` of ``table`` (default: every numeric, string or boolean column).

    Args:
        table: the training set (or any reference window).
        features: which columns to profile.
        categorical: columns to treat as categories whatever their type (e.g. integer codes).
        sample_rows: size of the uniform row sample kept for the multivariate test.
        seed: seed of that sample.
    """
    numeric, cats = profiled_columns(table, features, categorical)
    profile = ReferenceProfile(rows=table.num_rows)
    for name in numeric:
        profile.numeric[name] = summarize_numeric(numeric_values(table.column(name)))
    for name in cats:
        profile.categorical[name] = summarize_categorical(table.column(name))
    if numeric and table.num_rows:
        rng = np.random.default_rng(seed)
        take = rng.choice(table.num_rows, size=min(sample_rows, table.num_rows), replace=False)
        profile.sample = table.select(numeric).take(pa.array(np.sort(take)))
    return profile

