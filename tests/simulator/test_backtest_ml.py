"""The ML models as the autopilot's scorer in the closed loop (observable data only)."""

import duckdb

from guardian_lib.ingest import ingest_run
from guardian_lib.models.online import ModelScorer
from guardian_lib.models.training import fit_bundle, labelled_frame
from simulator.backtest import run_policy
from simulator.output import simulate_to_dir


def test_autopilot_with_ml_scorer_runs_safely(tmp_path, only_fault):
    # Train a small bundle on a run full of hung CPEs and fibre cuts.
    sc = only_fault("cpe_hang", 200.0, days=1.5)  # > 24 h: risk_24h needs it
    faults = sc.faults.model_dump()
    faults["feeder_cut"]["rate_per_year"] = 200.0
    faults["fibre_degradation"]["rate_per_year"] = 50.0
    sc = sc.with_overrides(faults=faults)
    run = simulate_to_dir(sc, tmp_path / "train", seed=4)
    ingest_run(run)
    features, labels = labelled_frame(run, every_minutes=30)
    bundle = fit_bundle(features, labels, n_estimators=15)
    bundle.model_version = "test-bundle/1"

    audit = tmp_path / "audit.duckdb"
    kpis = run_policy(
        sc.with_overrides(days=0.5),
        "autopilot",
        seed=9,
        scorer=ModelScorer(bundle, window_ticks=72),
        audit_path=audit,
    )
    assert kpis["safety_violations"] == 0
    assert kpis["decisions"] > 0
    con = duckdb.connect(str(audit), read_only=True)
    versions = {
        r[0] for r in con.execute("SELECT DISTINCT model_version FROM decisions").fetchall()
    }
    con.close()
    assert versions == {"test-bundle/1"}
