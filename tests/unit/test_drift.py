"""Drift statistics: known shifts are flagged; same-distribution windows rarely are (seeded)."""

from __future__ import annotations

import numpy as np
import pytest

from pitstop.monitoring import adjust_p_values, drift_table


def window(rng: np.random.Generator, n: int, *, shift: float = 0.0, scale: float = 1.0,
           new_category: float = 0.0) -> dict[str, list]:
    cats = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2]).astype(object)
    if new_category:
        cats[rng.random(n) < new_category] = "new"
    return {"x": list(rng.normal(shift, scale, n)), "y": list(rng.normal(0, 1, n)), "city": list(cats)}


def flagged(reference: dict, current: dict) -> set[str]:
    return {d.feature for d in drift_table(reference, current, categorical={"city"}) if d.drifted}


def test_known_shifts_are_flagged_and_only_where_they_are() -> None:
    rng = np.random.default_rng(11)
    ref = window(rng, 100_000)
    assert flagged(ref, window(rng, 100_000, shift=0.1)) == {"x"}  # a mean shift of 0.1 sigma
    assert flagged(ref, window(rng, 100_000, scale=1.5)) == {"x"}  # a variance change
    assert flagged(ref, window(rng, 20_000, new_category=0.2)) == {"city"}  # a new category, 20 % of rows


def test_a_negligible_shift_in_a_huge_window_is_not_flagged() -> None:
    rng = np.random.default_rng(12)
    ref, cur = window(rng, 500_000), window(rng, 500_000, shift=0.02)
    (x,) = [d for d in drift_table(ref, cur, categorical={"city"}) if d.feature == "x"]
    assert x.p_adjusted < 0.05 and not x.drifted  # significant, but 0.02 sigma is below the effect threshold


@pytest.mark.parametrize("n", [1_000, 100_000])
def test_same_distribution_windows_are_rarely_flagged(n: int) -> None:
    rng = np.random.default_rng(13 + n)
    ref = window(rng, n)
    trials = 40 if n == 1_000 else 8
    alarms = sum(len(flagged(ref, window(rng, n))) for _ in range(trials))
    assert alarms / (trials * 3) <= 0.05  # per feature and window


def test_p_value_corrections() -> None:
    assert adjust_p_values([0.01, 0.04, 0.03], "bonferroni") == pytest.approx([0.03, 0.12, 0.09])
    assert adjust_p_values([0.01, 0.04, 0.03, 0.5], "bh") == pytest.approx([0.04, 0.0533333, 0.0533333, 0.5])
