"""Bootstrap intervals of KPIs stay within each quantity's range; paired headline figures."""

from __future__ import annotations

import numpy as np
import pytest

from guardian_lib.kpis_stats import (
    KPI_RANGES,
    bootstrap_ci,
    gap_share,
    paired_ratio_ci,
    paired_vs_baseline,
    summarise_runs,
)


def _runs(rng, n=5):
    """Replications with skewed, zero-heavy counts and rates near their bounds."""
    return [
        {
            "visits": int(rng.poisson(1.0)),
            "visit_cancellation_rate": float(rng.choice([0.0, 0.0, 1.0, 0.33])),
            "sla_availability": float(1 - rng.exponential(1e-4)),
            "mttr_hours": float(rng.lognormal(1.5, 1.0)),
            "total_cost_brl": float(rng.gamma(2.0, 300.0)),
            "net_savings_brl": float(rng.normal(0, 500)),
            "sla_availability_by_region": {"A": float(1 - rng.exponential(1e-4))},
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_every_interval_stays_within_its_range(seed):
    rng = np.random.default_rng(seed)
    s = summarise_runs(_runs(rng))
    for key, v in s.items():
        if key == "sla_availability_by_region":
            continue
        lo_b, hi_b = KPI_RANGES.get(key, (-np.inf, np.inf))
        lo, hi = v["ci95"]
        assert lo_b <= lo <= v["mean"] <= hi <= hi_b, (key, v)
    # A t-interval of these counts would go below 0; the bootstrap cannot.
    assert s["visits"]["ci95"][0] >= 0 and s["visit_cancellation_rate"]["ci95"][1] <= 1
    # Unbounded quantities keep their negative values.
    assert s["net_savings_brl"]["ci95"][0] < 0 or s["net_savings_brl"]["mean"] > 0


def test_bootstrap_is_deterministic_and_handles_missing():
    a = bootstrap_ci([1.0, None, 3.0, float("nan"), 2.0], seed=4)
    assert a == bootstrap_ci([1.0, None, 3.0, float("nan"), 2.0], seed=4)
    assert a[0] == pytest.approx(2.0)
    assert np.isnan(bootstrap_ci([None, float("nan")])[0])
    assert bootstrap_ci([7.0]) == (7.0, [7.0, 7.0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci([1.0, 2.0], level=1.5)


def test_paired_ratio_and_headline():
    base = [{"visits": v, "total_cost_brl": 150.0 * v + 100, "mttr_hours": 5.0}
            for v in (10, 12, 8, 11, 9)]  # fmt: skip
    pol = [{"visits": v, "total_cost_brl": 150.0 * v + 90, "mttr_hours": 4.0}
           for v in (5, 7, 4, 6, 5)]  # fmt: skip
    r, (lo, hi) = paired_ratio_ci([p["visits"] for p in pol], [b["visits"] for b in base])
    assert r == pytest.approx(27 / 50) and 0 <= lo <= r <= hi
    h = paired_vs_baseline(pol, base, days=7.0)
    v = h["visits_avoided_vs_reactive_pct"]
    assert v["mean"] == pytest.approx(46.0) and v["ci95"][0] <= 46.0 <= v["ci95"][1] <= 100
    assert h["mttr_ratio_vs_reactive"]["mean"] == pytest.approx(0.8)
    assert h["visits_avoided_per_month"]["mean"] == pytest.approx(23 / 5 * 30 / 7)
    assert h["saved_brl_per_month"]["ci95"][0] > 0
    with pytest.raises(ValueError, match="same seeds"):
        paired_vs_baseline(pol[:3], base, days=7.0)


def test_repairs_left_for_later_count_as_visits_owed():
    # The policy visits half as often but leaves 4 repairs a week for after the window,
    # which the baseline made: 46 % of the visits avoided, only 6 % of those owed.
    base = [{"visits": v, "total_cost_brl": 0.0, "mttr_hours": 5.0, "deferred_repairs": 0}
            for v in (10, 12, 8, 11, 9)]  # fmt: skip
    pol = [{"visits": v, "total_cost_brl": 0.0, "mttr_hours": 5.0, "deferred_repairs": 4}
           for v in (5, 7, 4, 6, 5)]  # fmt: skip
    h = paired_vs_baseline(pol, base, days=7.0)
    assert h["visits_avoided_vs_reactive_pct"]["mean"] == pytest.approx(46.0)
    owed = h["visits_with_deferred_avoided_vs_reactive_pct"]
    assert owed["mean"] == pytest.approx(100 * (1 - 47 / 50))
    assert owed["ci95"][0] <= owed["mean"] <= owed["ci95"][1]
    # Without the simulator's truth (an operator's own KPIs) the figure is not made up.
    no_truth = [{k: v for k, v in r.items() if k != "deferred_repairs"} for r in pol]
    assert "visits_with_deferred_avoided_vs_reactive_pct" not in paired_vs_baseline(
        no_truth, base, days=7.0
    )


def test_gap_share():
    s, (lo, hi) = gap_share([80, 90, 85], low=[100, 110, 105], high=[60, 70, 65])
    assert s == pytest.approx(0.5) and lo <= s <= hi
    assert np.isnan(gap_share([1, 2], low=[1, 2], high=[3, 4])[0])  # oracle not cheaper
