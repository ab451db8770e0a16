"""Per-feature drift between a reference sample (a model version's training set) and a current window.

A feature is flagged only when a significance test **and** an effect size both say so:

* numeric: two-sample Kolmogorov-Smirnov (p-value) and the Wasserstein distance divided by the
  reference's standard deviation (effect; 0.1 = the distributions differ by about a tenth of a
  standard deviation);
* categorical: chi-squared test of homogeneity on the 2 x K table of counts (a two-sample test:
  the reference is a sample too, not the true distribution) and the Jensen-Shannon distance
  (base 2, 0..1) between the two category distributions (effect).

p-values are corrected across the features of one report (Benjamini-Hochberg by default,
Bonferroni on request). With a large window every test is "significant" for a negligible shift; the
effect threshold keeps those out. With a tiny window the correction keeps noise out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pitstop.errors import ConfigError
from pitstop.extras import require_extra

__all__ = ["FeatureDrift", "adjust_p_values", "categorical_drift", "drift_table", "numeric_drift"]

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


def numeric_drift(reference: Sequence[float], current: Sequence[float]) -> tuple[float, float, float]:
    """(KS statistic, p-value, normalised Wasserstein distance); nulls and NaNs are left out."""
    require_extra("monitor", "drift statistics", "scipy")
    import numpy as np
    from scipy import stats

    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return 0.0, 1.0, 0.0
    result = stats.ks_2samp(ref, cur, method="asymp" if len(ref) * len(cur) > 10_000 else "auto")
    scale = float(np.std(ref)) or 1.0
    return float(result.statistic), float(result.pvalue), float(stats.wasserstein_distance(ref, cur) / scale)


def categorical_drift(reference: Sequence[Any], current: Sequence[Any]) -> tuple[float, float, float]:
    """(chi-squared statistic, p-value, Jensen-Shannon distance) of two samples of categories (None counts)."""
    require_extra("monitor", "drift statistics", "scipy")
    from collections import Counter

    import numpy as np
    from scipy import stats
    from scipy.spatial.distance import jensenshannon

    ref, cur = Counter(map(str, reference)), Counter(map(str, current))
    categories = sorted(set(ref) | set(cur))
    if len(categories) < 2 or not ref or not cur:
        return 0.0, 1.0, 0.0
    table = np.array([[ref[c] for c in categories], [cur[c] for c in categories]], dtype=float)
    statistic, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    shares = table / table.sum(axis=1, keepdims=True)
    return float(statistic), float(p_value), float(jensenshannon(shares[0], shares[1], base=2))


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


def drift_table(reference: Mapping[str, Sequence[Any]], current: Mapping[str, Sequence[Any]],
                categorical: set[str] | frozenset[str] = frozenset(), *, alpha: float = 0.05,
                numeric_threshold: float = 0.05, categorical_threshold: float = 0.1,
                correction: Correction = "bh") -> list[FeatureDrift]:
    """Drift of every feature of ``reference`` that ``current`` also has, in ``reference``'s order.

    Args:
        reference: feature -> reference values (e.g. the training set's column).
        current: feature -> values of the window being checked.
        categorical: features tested as categories; the others are numeric.
        alpha: significance level after the correction.
        numeric_threshold: smallest normalised Wasserstein distance that counts as drift.
        categorical_threshold: smallest Jensen-Shannon distance that counts as drift.
        correction: ``"bh"`` (Benjamini-Hochberg) or ``"bonferroni"``.
    """
    rows = []
    for feature, ref in reference.items():
        if feature not in current:
            continue
        cur = current[feature]
        if feature in categorical:
            rows.append((feature, "categorical", "chi2", *categorical_drift(ref, cur), len(ref), len(cur)))
        else:
            rows.append((feature, "numeric", "ks", *numeric_drift(ref, cur), len(ref), len(cur)))
    adjusted = adjust_p_values([r[4] for r in rows], correction)
    out = []
    for (feature, kind, test, statistic, p, effect, n_ref, n_cur), p_adj in zip(rows, adjusted, strict=True):
        threshold = categorical_threshold if kind == "categorical" else numeric_threshold
        out.append(FeatureDrift(feature, kind, test, statistic, p, p_adj, effect,  # type: ignore[arg-type]
                                p_adj < alpha and effect >= threshold, n_ref, n_cur))
    return out
