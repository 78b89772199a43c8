"""benchmarks/calibration.py: the reactive operation's calibrated figures per variant."""

from __future__ import annotations

import math

import pytest
from benchmark_scripts import benchmark_module

from simulator.backtest import run_backtest
from simulator.scenario import load_scenario, scenario_dir


@pytest.fixture(scope="module")
def calib():
    yield from benchmark_module("calibration")


def _run(visits: int, wasted: int, contacts: float, mttr: float) -> dict:
    return {"visits": visits, "wasted_visits": wasted, "contacts_per_sub_year": contacts,
            "mttr_hours": mttr}  # fmt: skip


def test_no_fault_share_is_pooled_over_seeds_and_flags_leave_the_range(calib):
    # Per-seed shares 1/2 and 1/8: their mean (31 %) would be outside, the pooled 2/10 inside.
    runs = [_run(2, 1, 2.5, 5.0), _run(8, 1, 2.9, 7.0), _run(0, 0, 2.6, 6.0)]
    fig = calib.calibration_figures(runs)
    assert fig["visits"] == 10
    assert fig["no_fault_found_share"]["mean"] == pytest.approx(0.2)
    assert fig["no_fault_found_share"]["seed_range"] == pytest.approx([0.125, 0.5])
    assert fig["contacts_per_sub_year"]["mean"] == pytest.approx(8.0 / 3)
    lo, hi = fig["mttr_hours"]["ci95"]
    assert fig["mttr_hours"]["mean"] == pytest.approx(6.0)
    assert 5.0 <= lo <= 6.0 <= hi <= 7.0
    assert fig["outside"] == []
    fig = calib.calibration_figures([_run(10, 5, 6.0, 30.0)])
    assert fig["outside"] == ["no_fault_found_share", "contacts_per_sub_year", "mttr_hours"]
    row = calib.table({"variants": {"v": fig}}).splitlines()[-1]
    assert row.startswith("| `v` | 10 | 50.0 %") and row.count("⚠") == 3


def test_no_visits_at_all_is_outside_not_a_crash(calib):
    fig = calib.calibration_figures([_run(0, 0, 2.5, 5.0)])
    assert math.isnan(fig["no_fault_found_share"]["mean"])
    assert "no_fault_found_share" in fig["outside"]


def test_pooled_share_matches_the_backtests_per_run_share(calib):
    """The KPIs' wasted / completed visits are the backtest's own no-fault share."""
    sc = load_scenario("tiny")
    faults = sc.faults.model_dump()
    faults["wifi_interference"]["rate_per_year"] = 60.0  # something to visit in a day
    faults["hardware_failure"]["rate_per_year"] = 60.0
    faults["customer_power_off"]["rate_per_year"] = 60.0
    sc = sc.with_overrides(faults=faults, days=2)
    runs = run_backtest(sc, ("reactive",), [1, 2], workers=1)["per_seed"]["reactive"]
    assert sum(r["visits"] for r in runs) > 0
    for r in runs:
        if r["visits"]:
            assert r["wasted_visits"] / r["visits"] == pytest.approx(r["no_fault_found_share"])
    fig = calib.calibration_figures(runs)
    assert 0.0 <= fig["no_fault_found_share"]["mean"] <= 1.0


def test_default_variants_are_shipped(calib):
    shipped = {p.stem for p in scenario_dir().glob("*.yaml")}
    assert set(calib.VARIANTS) <= shipped
    assert shipped - set(calib.VARIANTS) == {"tiny", "city"}


def test_merge_pools_seeds_and_refuses_mixed_runs(calib):
    def result(seeds, runs, default_faults=False):
        meta = {"seeds": seeds, "days": 7.0, "default_faults": default_faults}
        return {"meta": meta, "variants": {}, "per_seed": {"v": runs, "w": runs}}

    a = result([1], [_run(4, 1, 2.0, 5.0)])
    b = result([2], [_run(6, 1, 3.0, 7.0)])
    m = calib.merge([a, b])
    assert m["meta"]["seeds"] == [1, 2]
    assert m["variants"]["v"]["no_fault_found_share"]["mean"] == pytest.approx(0.2)
    assert m["variants"]["v"]["contacts_per_sub_year"]["mean"] == pytest.approx(2.5)
    last = calib.table(m).splitlines()[-1]
    assert last.startswith("| all of the above | 20 | 20.0 %")
    with pytest.raises(ValueError, match="seed appears twice"):
        calib.merge([a, a])
    with pytest.raises(ValueError, match="default_faults differs"):
        calib.merge([a, result([3], [_run(1, 0, 2.0, 5.0)], default_faults=True)])
