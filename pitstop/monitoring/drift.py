"""Drift of a current window against a reference profile (a model version's training set, or another window).

A feature is flagged only when a significance test **and** an effect size both say so:

* numeric: two-sample Kolmogorov-Smirnov (p-value) and the Wasserstein distance divided by the
  reference's standard deviation (effect; 0.1 = the distributions differ by about a tenth of a
  standard deviation); the population stability index over the reference's deciles is reported too;
* categorical: chi-squared test of homogeneity on the 2 x K table of counts (a two-sample test:
  the reference is a sample too, not the true distribution; categories expected fewer than 5 times
  are pooled so the test's approximation holds) and the Jensen-Shannon distance (base 2, 0..1).

p-values are corrected across the features of one report (Benjamini-Hochberg by default,
Bonferroni on request). With a large window every test is "significant" for a negligible shift;
the effect threshold keeps those out. With a tiny window the correction keeps noise out.

Across features, a Maximum Mean Discrepancy permutation test on row samples of the numeric
features (standardised, Gaussian kernel with the median-distance bandwidth) catches changes no
single feature shows, such as a changed correlation.

The numeric tests read the reference from its profile (quantiles with their exact CDF), so the
reference's size costs nothing at test time: KS is evaluated at the 1,001 profiled points (a lower
bound of the exact statistic, so its p-value errs on the conservative side), and Wasserstein from
the quantile functions. References of at most 2,000 values are kept whole and tested exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa

from pitstop.errors import ConfigError
from pitstop.extras import require_extra
from pitstop.monitoring.profile import (
    NULL_CATEGORY,
    OTHER_CATEGORY,
    QUANTILES,
    CategoricalSummary,
    NumericSummary,
    ReferenceProfile,
    build_profile,
    category_counts,
    numeric_values,
)

__all__ = ["ColumnSource", "DatasetColumns", "DriftReport", "FeatureDrift", "MultivariateDrift", "adjust_p_values",
           "compare_tables",
           "drift_report", "mmd_test"]

Correction = Literal["bh", "bonferroni"]


@dataclass(frozen=True)
class FeatureDrift:
    """The drift report of one feature."""

    feature: str
    kind: Literal["numeric", "categorical"]
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    p_adjusted: float
    effect: float
    """Wasserstein / reference std (numeric) or Jensen-Shannon distance (categorical)."""
    drifted: bool
    reference_rows: int
    current_rows: int
    psi: float | None = None
    """Population stability index over the reference's deciles (numeric only)."""
    null_share_reference: float = 0.0
    null_share_current: float = 0.0
    histogram: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """For plots: ``labels`` (bin or category names), ``reference`` and ``current`` shares."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (without the histogram)."""
        return {k: getattr(self, k) for k in ("feature", "kind", "test", "statistic", "p_value", "p_adjusted",
                                              "effect", "drifted", "reference_rows", "current_rows", "psi",
                                              "null_share_reference", "null_share_current")}


@dataclass(frozen=True)
class MultivariateDrift:
    """The MMD test across the numeric features."""

    features: list[str]
    statistic: float
    """Squared MMD (biased estimate) between the two standardised samples."""
    p_value: float
    drifted: bool
    reference_rows: int
    current_rows: int
    permutations: int

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift, the multivariate test, and the settings they were judged by."""

    features: list[FeatureDrift]
    multivariate: MultivariateDrift | None
    alpha: float
    correction: Correction
    numeric_threshold: float
    categorical_threshold: float
    reference_rows: int
    current_rows: int

    @property
    def drifted(self) -> list[str]:
        """Names of the flagged features (plus ``<multivariate>`` when the MMD test flags)."""
        names = [f.feature for f in self.features if f.drifted]
        if self.multivariate is not None and self.multivariate.drifted:
            names.append("<multivariate>")
        return names

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict."""
        return {"alpha": self.alpha, "correction": self.correction, "numeric_threshold": self.numeric_threshold,
                "categorical_threshold": self.categorical_threshold, "reference_rows": self.reference_rows,
                "current_rows": self.current_rows, "drifted": self.drifted,
                "features": [f.as_dict() for f in self.features],
                "multivariate": self.multivariate.as_dict() if self.multivariate else None}


def adjust_p_values(p_values: Sequence[float], method: Correction = "bh") -> list[float]:
    """p-values corrected for testing several features: Benjamini-Hochberg (false discovery rate) or Bonferroni."""
    n = len(p_values)
    if method == "bonferroni":
        return [min(1.0, p * n) for p in p_values]
    if method != "bh":
        raise ConfigError(f"unknown p-value correction {method!r}; use 'bh' or 'bonferroni'")
    order = sorted(range(n), key=lambda i: p_values[i])
    adjusted = [0.0] * n
    running = 1.0
    for rank in range(n, 0, -1):  # from the largest p-value down, keeping the adjusted values monotone
        i = order[rank - 1]
        running = min(running, p_values[i] * n / rank)
        adjusted[i] = min(1.0, running)
    return adjusted


@dataclass
class _Result:
    feature: str
    kind: Literal["numeric", "categorical"]
    statistic: float
    p_value: float
    effect: float
    current_rows: int
    reference_rows: int
    psi: float | None
    null_ref: float
    null_cur: float
    histogram: dict[str, Any]


def numeric_drift(name: str, ref: NumericSummary, values: np.ndarray) -> _Result:
    """KS, normalised Wasserstein and PSI of ``values`` (NaN = null) against ``ref``."""
    from scipy import stats

    finite = values[~np.isnan(values)]
    null_ref = ref.nulls / max(1, ref.count + ref.nulls)
    null_cur = 1.0 - len(finite) / max(1, len(values))
    if ref.count == 0 or len(finite) == 0:
        return _Result(name, "numeric", 0.0, 1.0, 0.0, len(finite), ref.count, None, null_ref, null_cur, {})
    cur = np.sort(finite)
    m, n = len(cur), ref.count
    points = np.asarray(ref.values)
    scale = ref.std or 1.0
    if ref.exact:
        result = stats.ks_2samp(points, cur, method="asymp" if n * m > 10_000 else "auto")
        statistic, p_value = float(result.statistic), float(result.pvalue)
        wasserstein = float(stats.wasserstein_distance(points, cur))
    else:
        cur_cdf = np.searchsorted(cur, points, side="right") / m
        statistic = float(np.max(np.abs(np.asarray(ref.cdf) - cur_cdf)))
        n_eff = round(n * m / (n + m))
        p_value = float(stats.kstwo.sf(statistic, max(1, n_eff)))
        probs = np.arange(1, QUANTILES + 1) / QUANTILES
        cur_q = cur[np.clip(np.ceil(probs * m).astype(np.int64) - 1, 0, m - 1)]
        wasserstein = float(np.mean(np.abs(points[1:] - cur_q)))
    psi, histogram = _psi_and_histogram(ref, cur)
    return _Result(name, "numeric", statistic, p_value, wasserstein / scale, m, n, psi, null_ref, null_cur, histogram)


def _ref_cdf_at(ref: NumericSummary, x: np.ndarray) -> np.ndarray:
    """The reference CDF at ``x`` (interpolated between profiled points)."""
    points, cdf = np.asarray(ref.values), np.asarray(ref.cdf)
    return np.interp(x, points, cdf, left=0.0, right=1.0)


def _psi_and_histogram(ref: NumericSummary, cur: np.ndarray) -> tuple[float, dict[str, Any]]:
    m = len(cur)
    deciles = np.quantile(np.asarray(ref.values), np.linspace(0.1, 0.9, 9))
    edges = np.unique(deciles)
    ref_cdf = np.concatenate([[0.0], _ref_cdf_at(ref, edges), [1.0]])
    cur_cdf = np.concatenate([[0.0], np.searchsorted(cur, edges, side="right") / m, [1.0]])
    r, c = np.clip(np.diff(ref_cdf), 1e-4, None), np.clip(np.diff(cur_cdf), 1e-4, None)
    psi = float(np.sum((c - r) * np.log(c / r)))
    low = min(ref.minimum, float(cur[0]))
    high = max(ref.maximum, float(cur[-1]))
    lo_q, hi_q = np.quantile(np.asarray(ref.values), [0.005, 0.995])  # plot the bulk, not the outliers
    low, high = max(low, float(lo_q) - 0.1 * (hi_q - lo_q)), min(high, float(hi_q) + 0.1 * (hi_q - lo_q))
    if not high > low:
        high = low + 1.0
    bins = np.linspace(low, high, 31)
    ref_h = np.diff(np.concatenate([[0.0], _ref_cdf_at(ref, bins[1:-1]), [1.0]]))
    cur_h = np.diff(np.concatenate([[0.0], np.searchsorted(cur, bins[1:-1], side="right") / m, [1.0]]))
    return psi, {"edges": bins.tolist(), "reference": ref_h.tolist(), "current": cur_h.tolist()}


def categorical_drift(name: str, ref: CategoricalSummary, counts: Mapping[str, int]) -> _Result:
    """Chi-squared homogeneity and Jensen-Shannon distance of ``counts`` against ``ref``'s counts."""
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    known = set(ref.counts)
    cur_counts: dict[str, int] = {}
    for key, count in counts.items():  # categories pooled as "other" in the reference are pooled here too
        target = key if key in known or OTHER_CATEGORY not in known else OTHER_CATEGORY
        cur_counts[target] = cur_counts.get(target, 0) + count
    n_ref, n_cur = sum(ref.counts.values()), sum(cur_counts.values())
    null_ref = ref.counts.get(NULL_CATEGORY, 0) / max(1, n_ref)
    null_cur = cur_counts.get(NULL_CATEGORY, 0) / max(1, n_cur)
    categories = sorted(set(ref.counts) | set(cur_counts), key=lambda c: -(ref.counts.get(c, 0) + cur_counts.get(c, 0)))
    if not n_ref or not n_cur:
        return _Result(name, "categorical", 0.0, 1.0, 0.0, n_cur, n_ref, None, null_ref, null_cur, {})
    table = np.array([[ref.counts.get(c, 0) for c in categories], [cur_counts.get(c, 0) for c in categories]],
                     dtype=float)
    shares = table / table.sum(axis=1, keepdims=True)
    effect = float(jensenshannon(shares[0], shares[1], base=2))
    pooled = _pool_rare(table)
    if pooled.shape[1] < 2:
        statistic, p_value = 0.0, 1.0
    else:
        statistic, p_value, _, _ = stats.chi2_contingency(pooled, correction=False)
    top = categories[:20]
    histogram = {"labels": top, "reference": shares[0][: len(top)].tolist(), "current": shares[1][: len(top)].tolist()}
    return _Result(name, "categorical", float(statistic), float(p_value), effect, n_cur, n_ref, None,
                   null_ref, null_cur, histogram)


def _pool_rare(table: np.ndarray) -> np.ndarray:
    """Merge the categories expected fewer than 5 times in either sample into one column (left out if still rare)."""
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    rare = (expected < 5).any(axis=0)
    if not rare.any():
        return table
    merged = table[:, rare].sum(axis=1, keepdims=True)
    if (merged.sum() * table.sum(axis=1) / table.sum() < 5).any():
        return table[:, ~rare]
    return np.hstack([table[:, ~rare], merged])


def mmd_test(reference: np.ndarray, current: np.ndarray, *, permutations: int = 300, max_rows: int = 1_000,
             seed: int = 0) -> tuple[float, float, int, int]:
    """Maximum Mean Discrepancy permutation test of two row samples (rows x features, no NaN).

    Returns (squared MMD, p-value, reference rows used, current rows used). Columns are standardised
    by the reference; Gaussian kernel with the median pairwise distance as bandwidth.
    """
    rng = np.random.default_rng(seed)
    if len(reference) > max_rows:
        reference = reference[rng.choice(len(reference), max_rows, replace=False)]
    if len(current) > max_rows:
        current = current[rng.choice(len(current), max_rows, replace=False)]
    n, m = len(reference), len(current)
    if n < 10 or m < 10:
        return 0.0, 1.0, n, m
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std[std == 0] = 1.0
    pooled = (np.vstack([reference, current]) - mean) / std
    sq = np.sum(pooled**2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * pooled @ pooled.T, 0.0)
    upper = d2[np.triu_indices(len(pooled), k=1)]
    bandwidth2 = float(np.median(upper)) or 1.0
    kernel = np.exp(-d2 / bandwidth2)
    weights = np.empty((n + m, permutations + 1))
    base = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    weights[:, 0] = base
    for j in range(1, permutations + 1):
        weights[:, j] = base[rng.permutation(n + m)]
    stats_ = np.einsum("ij,ij->j", weights, kernel @ weights)
    observed = float(stats_[0])
    p_value = (1 + int(np.sum(stats_[1:] >= observed))) / (permutations + 1)
    return observed, float(p_value), n, m


class ColumnSource(Protocol):
    """A window read one column at a time (a ``pa.Table`` is one; so is ``DatasetColumns``)."""

    @property
    def num_rows(self) -> int: ...

    @property
    def column_names(self) -> list[str]: ...

    def column(self, name: str) -> pa.ChunkedArray: ...


class DatasetColumns:
    """A window of a Parquet file, folder or Delta table, decoded one column at a time to keep memory flat.

    Args:
        dataset: a ``pyarrow.dataset.Dataset`` (e.g. ``DeltaTable.to_pyarrow_dataset()``) or a path.
        condition: a row filter (``pyarrow.dataset`` expression) applied to every read.
    """

    def __init__(self, dataset: Any, condition: Any = None) -> None:
        import pyarrow.dataset as ds

        self._dataset = dataset if isinstance(dataset, ds.Dataset) else ds.dataset(str(dataset))
        self._condition = condition
        self._rows: int | None = None

    @property
    def num_rows(self) -> int:
        if self._rows is None:
            self._rows = int(self._dataset.count_rows(filter=self._condition))
        return self._rows

    @property
    def column_names(self) -> list[str]:
        return list(self._dataset.schema.names)

    def column(self, name: str) -> pa.ChunkedArray:
        return self._dataset.to_table(columns=[name], filter=self._condition).column(name)


def drift_report(profile: ReferenceProfile, current: ColumnSource, *, features: Iterable[str] | None = None,
                 alpha: float = 0.05, correction: Correction = "bh", numeric_threshold: float = 0.05,
                 categorical_threshold: float = 0.1, multivariate: bool = True, seed: int = 0,
                 mmd_rows: int = 1_000) -> DriftReport:
    """Drift of every profiled feature that ``current`` also holds.

    Args:
        profile: the reference (``build_profile`` of the training set or of another window).
        current: the window to check (e.g. logged predictions), one column per feature: a
            ``pa.Table`` or a ``DatasetColumns`` (read column by column).
        features: only these features (default: every profiled one).
        alpha: significance level after the correction.
        correction: ``"bh"`` (Benjamini-Hochberg) or ``"bonferroni"``.
        numeric_threshold: smallest Wasserstein distance, in reference standard deviations, that counts.
        categorical_threshold: smallest Jensen-Shannon distance that counts.
        multivariate: also run the MMD test across the numeric features.
        seed: seed of the MMD test's sampling and permutations.
        mmd_rows: rows sampled from each side for the MMD test.
    """
    require_extra("monitor", "drift statistics", "scipy")
    wanted = set(features) if features is not None else None
    names = set(current.column_names)
    total = current.num_rows
    rng = np.random.default_rng(seed + 1)
    # the MMD sample's rows are drawn up front and kept while each numeric column passes through
    picks = np.sort(rng.choice(total, min(total, 20 * mmd_rows), replace=False)) if total else np.empty(0, int)
    sampled: dict[str, np.ndarray] = {}
    results: list[_Result] = []
    for name, summary in profile.numeric.items():
        if name in names and (wanted is None or name in wanted):
            values = numeric_values(current.column(name))
            results.append(numeric_drift(name, summary, values))
            if multivariate and profile.sample is not None and name in profile.sample.column_names:
                sampled[name] = values[picks]
            del values
    for name, cat_summary in profile.categorical.items():
        if name in names and (wanted is None or name in wanted):
            results.append(categorical_drift(name, cat_summary, category_counts(current.column(name))))
    adjusted = adjust_p_values([r.p_value for r in results], correction)
    out = []
    for r, p_adj in zip(results, adjusted, strict=True):
        threshold = categorical_threshold if r.kind == "categorical" else numeric_threshold
        drifted = p_adj < alpha and r.effect >= threshold and not math.isnan(r.effect)
        out.append(FeatureDrift(r.feature, r.kind, "chi2" if r.kind == "categorical" else "ks", r.statistic,
                                r.p_value, p_adj, r.effect, drifted, r.reference_rows, r.current_rows, r.psi,
                                r.null_ref, r.null_cur, r.histogram))
    mv = None
    if len(sampled) >= 2 and profile.sample is not None:
        columns = list(sampled)
        ref_rows = _without_nulls(np.column_stack([numeric_values(profile.sample.column(c)) for c in columns]))
        cur_rows = _without_nulls(np.column_stack([sampled[c] for c in columns]))
        statistic, p_value, n_ref, n_cur = mmd_test(ref_rows, cur_rows, seed=seed, max_rows=mmd_rows)
        mv = MultivariateDrift(columns, statistic, p_value, p_value < alpha, n_ref, n_cur, 300)
    return DriftReport(out, mv, alpha, correction, numeric_threshold, categorical_threshold, profile.rows, total)


def _without_nulls(matrix: np.ndarray) -> np.ndarray:
    return matrix[~np.isnan(matrix).any(axis=1)]


def compare_tables(reference: pa.Table, current: pa.Table, *, categorical: Iterable[str] = (),
                   features: Iterable[str] | None = None, **options: Any) -> DriftReport:
    """Drift between two tables: profiles ``reference`` (see ``build_profile``), then ``drift_report``."""
    chosen = list(features) if features is not None else [c for c in reference.column_names
                                                         if c in current.column_names]
    profile = build_profile(reference, chosen, categorical=categorical)
    return drift_report(profile, current, **options)
