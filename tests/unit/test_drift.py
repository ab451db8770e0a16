"""Drift statistics: known shifts are flagged; same-distribution windows rarely are (seeded)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from pitstop.monitoring import ReferenceProfile, adjust_p_values, build_profile, compare_tables, drift_report


def window(rng: np.random.Generator, n: int, *, shift: float = 0.0, scale: float = 1.0,
           new_category: float = 0.0, correlation: float = 0.8) -> pa.Table:
    cats = rng.choice(["a", "b", "c", "d"], size=n, p=[0.5, 0.3, 0.15, 0.05]).astype(object)
    if new_category:
        cats[rng.random(n) < new_category] = "new"
    u, v = rng.normal(0, 1, n), rng.normal(0, 1, n)
    w = correlation * u + np.sqrt(1 - correlation**2) * v  # corr(u, w) = correlation, each N(0, 1)
    return pa.table({"x": rng.normal(shift, scale, n), "y": rng.normal(0, 1, n),
                     "count": rng.poisson(3, n), "u": u, "w": w, "city": pa.array(cats, pa.string())})


def flagged(reference: pa.Table, current: pa.Table) -> set[str]:
    """Features flagged one by one (the multivariate test may flag a one-feature shift too)."""
    return {f.feature for f in compare_tables(reference, current).features if f.drifted}


def test_known_shifts_are_flagged_and_only_where_they_are() -> None:
    rng = np.random.default_rng(11)
    ref = window(rng, 100_000)
    assert flagged(ref, window(rng, 100_000, shift=0.1)) == {"x"}  # a mean shift of 0.1 sigma
    assert flagged(ref, window(rng, 100_000, scale=1.5)) == {"x"}  # a variance change
    assert flagged(ref, window(rng, 20_000, new_category=0.05)) == {"city"}  # a new category, 5 % of rows


def test_a_correlation_change_no_single_feature_shows_is_caught_by_mmd() -> None:
    rng = np.random.default_rng(14)
    ref = window(rng, 50_000, correlation=0.8)
    report = compare_tables(ref, window(rng, 50_000, correlation=-0.8))
    assert not [f.feature for f in report.features if f.drifted]  # u and w keep their own distributions
    assert report.multivariate is not None and report.multivariate.drifted
    assert report.drifted == ["<multivariate>"]
    same = compare_tables(ref, window(rng, 50_000, correlation=0.8))
    assert same.multivariate is not None and not same.multivariate.drifted


def test_a_negligible_shift_in_a_huge_window_is_not_flagged() -> None:
    rng = np.random.default_rng(12)
    ref, cur = window(rng, 1_000_000), window(rng, 1_000_000, shift=0.02)
    (x,) = [d for d in compare_tables(ref, cur).features if d.feature == "x"]
    assert x.p_adjusted < 0.05 and not x.drifted  # significant, but 0.02 sigma is below the effect threshold
    assert x.effect == pytest.approx(0.02, abs=0.006)


@pytest.mark.parametrize(("n", "trials"), [(1_000, 60), (100_000, 10), (1_000_000, 2)])
def test_same_distribution_windows_are_rarely_flagged(n: int, trials: int) -> None:
    rng = np.random.default_rng(13 + n)
    profile = build_profile(window(rng, n))
    alarms = features = 0
    for _ in range(trials):
        report = drift_report(profile, window(rng, n), multivariate=False)
        alarms += sum(f.drifted for f in report.features)
        features += len(report.features)
    assert features == trials * 6
    assert alarms / features <= 0.05  # per feature and window


def test_a_small_reference_is_tested_exactly_and_the_profile_round_trips() -> None:
    rng = np.random.default_rng(15)
    profile = build_profile(window(rng, 500))
    assert profile.numeric["x"].exact and len(profile.numeric["x"].values) == 500
    again = ReferenceProfile.from_bytes(profile.to_bytes())
    assert again.numeric["x"] == profile.numeric["x"] and again.categorical == profile.categorical
    assert again.sample is not None and again.sample.num_rows == 500
    report = drift_report(again, window(rng, 500, shift=1.0))
    assert "x" in report.drifted


def test_nulls_count_as_their_own_category_and_are_reported() -> None:
    ref = pa.table({"city": ["a", "b"] * 5_000})
    cur = pa.table({"city": ["a", None] * 5_000})
    (city,) = compare_tables(ref, cur).features
    assert city.drifted and city.null_share_current == pytest.approx(0.5) and city.null_share_reference == 0


def test_p_value_corrections() -> None:
    assert adjust_p_values([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert adjust_p_values([0.01, 0.04, 0.03, 0.5], "bh") == pytest.approx([0.04, 0.0533333, 0.0533333, 0.5])
