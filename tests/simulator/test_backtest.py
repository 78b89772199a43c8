"""Closed-loop backtest on the tiny scenario: policies change outcomes, safely."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from guardian_lib.decision import AutopilotSettings
from simulator.backtest import (
    POLICIES,
    policy_every_ticks,
    run_backtest,
    run_policy,
    safety_violations,
    scenario_of_run,
)
from simulator.backtest_cli import register
from simulator.engine import Simulation
from simulator.faults import DRAWN_KINDS
from simulator.output import simulate_to_dir
from simulator.scenario import load_scenario

KEYS = (
    "visits", "visits_avoided", "savings_brl", "net_savings_brl", "mttr_hours", "mttd_minutes",
    "sla_availability", "sla_availability_by_region", "reboots", "reboot_success_rate",
    "visit_cancellations", "false_action_rate", "calls",
)  # fmt: skip


@pytest.fixture(scope="module")
def hangs():
    """Tiny, 18 h, only hung CPEs (often): the case a remote reboot fixes.

    (The same construction as ``conftest.only_fault``, at module scope.)
    """
    sc = load_scenario("tiny")
    faults = sc.faults.model_dump()
    for kind in DRAWN_KINDS:
        faults[kind]["rate_per_year"] = 0.0
    faults["cpe_hang"]["rate_per_year"] = 40.0
    faults["cpe_hang_precursor_share"] = 0.0  # hung at once: the reboot case
    return sc.with_overrides(
        faults=faults,
        days=0.75,
        data_quality=sc.data_quality.model_dump() | {"unexplained_symptoms_per_year": 0.0},
        weather=sc.weather.model_dump() | {"storms_per_year_per_region": 0.0},
        customers=sc.customers.model_dump() | {"background_calls_per_year": 0.0},
    )


@pytest.fixture(scope="module")
def hang_results(hangs):
    return {p: run_policy(hangs, p, seed=3) for p in POLICIES}


def test_every_policy_reports_every_kpi_without_safety_violations(hang_results):
    for pol, k in hang_results.items():
        assert set(KEYS) <= set(k), pol
        assert k["safety_violations"] == 0, pol
        assert 0.0 <= k["sla_availability"] <= 1.0


def test_reboots_replace_visits_for_hung_cpes(hang_results):
    reactive, auto, oracle = (hang_results[p] for p in ("reactive", "autopilot", "oracle"))
    assert reactive["reboots"] == 0 and auto["reboots"] > 0
    assert auto["reboot_success_rate"] > 0.5
    assert auto["visits"] < max(reactive["visits"], 1)
    assert auto["mttr_hours"] < reactive["mttr_hours"]
    assert oracle["mttr_hours"] <= auto["mttr_hours"] + 0.25


def test_same_seed_same_outcome_and_common_faults(hangs):
    short = hangs.with_overrides(days=0.25)
    a = run_policy(short, "autopilot", seed=5)
    b = run_policy(short, "autopilot", seed=5)
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    s1, s2 = Simulation(hangs, seed=5), Simulation(hangs, seed=5)
    s2.ops.reactive = False
    assert [(f.kind, f.start_s) for f in s1.faults] == [(f.kind, f.start_s) for f in s2.faults]


def test_safety_violation_checker_catches_a_double_reboot():
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    acts = pd.DataFrame(
        {"action_type": ["reboot", "reboot"], "status": ["succeeded", "failed"],
         "target": ["CPE1", "CPE1"], "started_at": [t0, t0 + pd.Timedelta(hours=1)]}
    )  # fmt: skip
    assert safety_violations(acts, AutopilotSettings(), {"CPE1": "PON1"}) >= 1


def test_backtest_json_shape(hangs):
    res = run_backtest(hangs.with_overrides(days=0.25), ["reactive", "autopilot"], seeds=[1, 2])
    assert set(res["policies"]) == {"reactive", "autopilot"}
    m = res["policies"]["autopilot"]["visits"]
    assert set(m) == {"mean", "ci95"} and m["ci95"][0] <= m["mean"] <= m["ci95"][1]
    assert "Campinas" in res["policies"]["autopilot"]["sla_availability_by_region"]
    assert "cost_saving_vs_reactive_brl" in res["policies"]["autopilot"]
    assert res["settings"]["seeds"] == [1, 2]


def test_cli_writes_kpis_json(tmp_path):
    run = simulate_to_dir(load_scenario("tiny", days=0.25), tmp_path / "run")
    assert scenario_of_run(run).days == 0.25
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # keep sub-command mode with one command
    out = tmp_path / "kpis.json"
    result = CliRunner().invoke(
        app,
        ["backtest", "--run", str(run), "--policies", "reactive,rules", "--seeds", "1",
         "--json", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert set(data["policies"]) == {"reactive", "rules"}
    assert set(data["policies"]["rules"]["mttr_hours"]) == {"mean", "ci95"}
    bad = CliRunner().invoke(app, ["backtest", "--run", str(run), "--policies", "magic"])
    assert bad.exit_code != 0
    none = CliRunner().invoke(app, ["backtest", "--run", str(run), "--workers", "0"])
    assert none.exit_code != 0 and "--workers must be >= 1" in none.output


def test_policy_interval_off_the_tick_is_refused_not_rounded(hangs, tmp_path):
    # 0, -5 and 7 minutes used to run every tick (5 min) while kpis.json recorded them.
    assert policy_every_ticks(15, 5) == 3 and policy_every_ticks(5, 5) == 1
    for every in (0, -5, 7, 2.5):
        with pytest.raises(ValueError, match=rf"5-minute tick .*got {every}"):
            policy_every_ticks(every, 5)
    with pytest.raises(ValueError, match="5-minute tick"):
        run_backtest(hangs, ["reactive"], [1], every_minutes=7)
    with pytest.raises(ValueError, match="5-minute tick"):
        run_policy(hangs, "reactive", seed=1, every_minutes=0)
    run = simulate_to_dir(load_scenario("tiny", days=0.05), tmp_path / "run")
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    out = tmp_path / "kpis.json"
    bad = CliRunner().invoke(
        app, ["backtest", "--run", str(run), "--seeds", "1", "--every-minutes", "0",
              "--json", str(out)],
    )  # fmt: skip
    assert bad.exit_code != 0 and not out.exists()


def test_cli_keeps_the_autopilots_audit_where_the_dashboards_look(tmp_path):
    from guardian_lib.dashboards._data import load_run_data
    from guardian_lib.ingest import ingest_run

    sc = load_scenario("tiny", days=0.5)
    faults = sc.faults.model_dump()
    faults["cpe_hang"]["rate_per_year"] = 40.0  # something for the autopilot to do
    run = simulate_to_dir(sc.with_overrides(faults=faults), tmp_path / "run")
    ingest_run(run)
    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)
    audit = run / "audit.duckdb"
    args = ["backtest", "--run", str(run), "--policies", "reactive,autopilot", "--seeds", "1",
            "--audit", str(audit)]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = load_run_data(run)
    assert data.sources["audit"]
    decisions = data.tables["decisions"]
    assert len(decisions) > 0
    # Only the autopilot's trail is kept (ids carry the policy and seed).
    assert decisions["decision_id"].astype(str).str.startswith("AUT").all()
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and "exists" in again.output


def test_summary_pairs_against_reactive_and_headline_reads_it():
    from simulator.backtest import summarise
    from simulator.backtest_cli import headline

    def run(visits, cost, mttr):
        return {"visits": visits, "total_cost_brl": cost, "mttr_hours": mttr,
                "sla_availability_by_region": {"A": 0.999}}  # fmt: skip

    per_seed = {
        "reactive": [run(10, 2000.0, 10.0), run(12, 2400.0, 12.0), run(8, 1600.0, 9.0)],
        "rules": [run(20, 3500.0, 8.0), run(22, 3900.0, 9.0), run(18, 3100.0, 7.0)],
        "autopilot": [run(6, 1300.0, 8.0), run(7, 1500.0, 9.0), run(5, 1100.0, 7.0)],
        "oracle": [run(5, 1000.0, 7.0), run(6, 1200.0, 8.0), run(4, 900.0, 6.0)],
    }
    s = summarise(per_seed, days=7.0)
    a = s["autopilot"]
    assert a["visits_avoided_vs_reactive_pct"]["mean"] == pytest.approx(100 * (1 - 18 / 30))
    assert a["mttr_ratio_vs_reactive"]["mean"] == pytest.approx(24 / 31)
    gap = a["rules_oracle_gap_share"]
    assert gap["mean"] == pytest.approx((10500 - 3900) / (10500 - 3100))
    assert 0 <= gap["ci95"][0] <= gap["mean"] <= gap["ci95"][1]
    assert s["reactive"]["visits"]["ci95"][0] >= 0
    line = headline({"policies": s})
    assert "visits avoided per month" in line and "MTTR change" in line
    assert headline({"policies": {"reactive": s["reactive"]}}) is None


def test_parallel_backtest_equals_serial_and_merges_the_audit(hangs, tmp_path):
    """Two processes give the same KPI JSON as one, and one audit file with every seed."""
    import duckdb

    from simulator.experiment import kpis_json

    sc = hangs.with_overrides(days=0.5)
    pols, seeds = ["reactive", "autopilot"], [1, 3]  # the autopilot decides on both
    serial = run_backtest(sc, pols, seeds, audit_path=tmp_path / "s.duckdb", workers=1)
    seen: list[tuple[str, int]] = []
    parallel = run_backtest(sc, pols, seeds, audit_path=tmp_path / "p.duckdb", workers=2,
                            progress=lambda pol, seed, k: seen.append((pol, seed)))  # fmt: skip
    assert kpis_json(parallel) == kpis_json(serial)
    assert sorted(seen) == sorted((p, s) for p in pols for s in seeds)
    # The trail of each seed stays apart: the KPIs with an audit file equal those without.
    in_memory = run_backtest(sc, ["autopilot"], seeds, workers=1)["per_seed"]["autopilot"]
    paired = ("cost_saving_vs_reactive_brl", "visits_avoided_vs_reactive_pct")
    with_file = [{k: v for k, v in r.items() if k not in paired}
                 for r in serial["per_seed"]["autopilot"]]  # fmt: skip
    assert kpis_json(in_memory) == kpis_json(with_file)
    tables = {}
    for name in ("s", "p"):
        with duckdb.connect(str(tmp_path / f"{name}.duckdb"), read_only=True) as con:
            tables[name] = con.execute("SELECT * FROM decisions").df()
    assert len(tables["p"]) > 0 and tables["p"].equals(tables["s"])
    ids = tables["p"]["decision_id"].astype(str)
    assert ids.str.startswith("AUT1-").any() and ids.str.startswith("AUT3-").any()
    assert ids.is_unique
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.duckdb", "s.duckdb"]  # no parts
    with pytest.raises(ValueError, match="workers"):
        run_backtest(sc, pols, seeds, workers=0)


def test_faults_only_a_visit_ends_left_at_the_end_owe_their_visit():
    """A late visit must not cost more than leaving the fault for next week."""
    from types import SimpleNamespace

    import numpy as np

    from simulator.backtest import deferred_repairs
    from simulator.fault_model import Fault

    def fault(kind, start_h, end_h, skipped=False, duration_h=None):
        return Fault(fault_id=f"F{start_h}", kind=kind, start_s=start_h * 3600.0,
                     onus=np.array([0]), scope_type="onu", scope_key="x",
                     duration_s=None if duration_h is None else duration_h * 3600.0,
                     params={"skipped": skipped},
                     end_s=None if end_h is None else end_h * 3600.0)  # fmt: skip

    sim = SimpleNamespace(
        scenario=SimpleNamespace(horizon_s=168 * 3600.0),
        faults=[
            fault("fibre_degradation", 10, None),  # never visited: owed
            fault("hardware_failure", 160, None),  # drifting at the end: owed
            fault("fibre_degradation", 20, 100),  # visited in the week
            fault("hardware_failure", 150, 170),  # visit after the end: still owed at the end
            fault("cpe_hang", 100, None),  # a reboot or the customer ends it
            fault("fibre_degradation", 170, None),  # starts after the end
            fault("hardware_failure", 10, None, skipped=True),  # not recorded
            # A one-ONU box's fault: only a visit ends it, unless a crew comes on its
            # clock (lone_box_crew: it has a duration). Before 2026-12-06 never counted.
            fault("box_drop_fault", 30, None),  # owed
            fault("box_drop_fault", 40, None, duration_h=200.0),  # the crew ends it
            fault("box_fault", 50, None, duration_h=200.0),  # a crew's
        ],
    )
    assert deferred_repairs(sim) == 4


def test_total_cost_books_the_deferred_repairs(hang_results):
    for pol, k in hang_results.items():
        assert k["deferred_repairs_brl"] == 150.0 * k["deferred_repairs"], pol
        assert k["total_cost_brl"] >= k["deferred_repairs_brl"] + 150.0 * k["visits"], pol


def test_a_run_leaves_the_heap_it_found_out_of_full_collections_and_as_it_was(hangs):
    """run_policy freezes the objects that exist when it starts (a full collection then
    walks the run's own objects) and unfreezes them at the end, even when the run
    fails; a caller's frozen objects and a disabled collector are left as they are."""
    import gc

    from simulator import backtest

    seen = []
    build = backtest.BacktestWorld.build

    def spy(*a, **k):
        seen.append((gc.get_freeze_count(), gc.isenabled()))
        return build(*a, **k)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(backtest.BacktestWorld, "build", spy)
        assert gc.get_freeze_count() == 0
        run_policy(hangs.with_overrides(days=0.05), "rules", seed=1)
        assert seen[-1][0] > 0 and gc.get_freeze_count() == 0
        with pytest.raises(ValueError, match="policy must be one of"):
            run_policy(hangs, "nope", seed=1)
        assert seen[-1][0] > 0 and gc.get_freeze_count() == 0
        gc.freeze()  # the caller's own
        try:
            frozen = gc.get_freeze_count()
            run_policy(hangs.with_overrides(days=0.05), "rules", seed=1)
            # Not frozen again, nor unfrozen (some of the caller's may have been freed).
            assert 0 < seen[-1][0] <= frozen and 0 < gc.get_freeze_count() <= frozen
        finally:
            gc.unfreeze()
        gc.disable()
        try:
            run_policy(hangs.with_overrides(days=0.05), "rules", seed=1)
            assert seen[-1] == (0, False) and not gc.isenabled()
        finally:
            gc.enable()
