"""Benchmark: early-warning lead of TemporalAnomalyScorer on degradation faults of a run.

Per ONU whose fibre degrades (or whose hardware fails) in a simulated run, plus a sample
of ONUs without any fault: ``fit`` on each ONU's first day of raw KPIs (RX/TX power,
OLT RX, SNR, latency, loss, BER every 15 min), then ``anomaly_score`` streaming over the
rest. The lead of a fault is :func:`guardian_lib.models.training.anomaly_lead_minutes`:
minutes from the first score ≥ 0.99 after the fault started to the first LOS or call
(positive: warned before the customer was hurt). Faults that start within the fitting
day are left out. Beside it: the share of the fault-free ONUs' rows scored ≥ 0.99 (false
flags), and, when the run holds the bundle's scored predictions (``lake/gold``), the
bundle ``AnomalyScorer``'s lead on the same faults (at its own, hourly, scoring times).

    guardian simulate --scenario experiments/scenarios/small.yaml --seed 8 --out RUN
    guardian ingest --run RUN
    nice -n 10 .venv/bin/python benchmarks/bench_anomaly_lead.py --run RUN [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.features import feature_frame
from guardian_lib.models.temporal import TemporalAnomalyScorer
from guardian_lib.models.training import anomaly_lead_minutes, load_truth

#: Raw per-ONU KPIs the temporal scorer watches. [dBm, dB, ms, %, log10]
KPIS = ("rx_dbm", "tx_dbm", "olt_rx_dbm", "snr_db", "latency_ms", "loss_pct", "log10_ber")
KINDS = ("fibre_degradation", "hardware_failure")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--healthy", type=int, default=100, help="fault-free ONUs sampled")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--features", default=None, help="cached 15-min feature parquet")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    truth = load_truth(a.run)
    if a.features and Path(a.features).exists():
        features = pd.read_parquet(a.features)
    else:
        features = feature_frame(a.run, every_minutes=15)
        if a.features:
            features.to_parquet(a.features)
    features = features.sort_values(["ts", "onu_id"], kind="stable").reset_index(drop=True)
    fit_end = features["ts"].min() + pd.Timedelta(days=1)
    faults = truth[truth["kind"].isin(KINDS) & (truth["start_at"] >= fit_end)]
    faulty = {str(f[0]) for f in faults["affected_onus"]}
    touched = {str(o) for onus in truth["affected_onus"] for o in onus}
    rng = np.random.default_rng(a.seed)
    clean = sorted(set(features["onu_id"].astype(str)) - touched)
    healthy = set(rng.choice(clean, size=min(a.healthy, len(clean)), replace=False))
    rows = features[features["onu_id"].astype(str).isin(faulty | healthy)]
    cols = ["onu_id", *KPIS]
    started = time.process_time()
    scorer = TemporalAnomalyScorer(series_column="onu_id", max_period=48).fit(
        rows.loc[rows["ts"] < fit_end, cols]
    )
    rest = rows[rows["ts"] >= fit_end].reset_index(drop=True)
    score = scorer.anomaly_score(rest[cols])
    cpu = time.process_time() - started
    preds = pd.DataFrame({"anomaly_score": score})
    leads = anomaly_lead_minutes(preds, rest, faults)
    is_healthy = rest["onu_id"].astype(str).isin(healthy).to_numpy()
    out = {
        "faults": len(faults),
        "faults_with_lead": len(leads),
        "median_lead_min": float(np.median(leads)) if leads else float("nan"),
        "leads_min": [round(x, 1) for x in sorted(leads)],
        "healthy_onus": len(healthy),
        "healthy_rows_flagged_share": float(np.mean(score[is_healthy] >= 0.99)),
        "period": int(scorer.period_),
        "members": scorer.members_,
        "rows_scored": int(len(rest)),
        "cpu_s": round(cpu, 1),
    }
    gold = Path(a.run, "lake", "gold", "ml_predictions")
    files = sorted(gold.glob("*.parquet")) if gold.exists() else []
    if files:
        bundle = pd.read_parquet(files[-1], columns=["ts", "onu_id", "anomaly_score"])
        both = bundle.merge(features[["ts", "onu_id", "los_1h", "calls_24h"]], on=["ts", "onu_id"])
        both = both.sort_values(["ts", "onu_id"], kind="stable").reset_index(drop=True)
        both = both[both["ts"] >= fit_end].reset_index(drop=True)
        b_leads = anomaly_lead_minutes(both, both, faults)
        out["bundle_faults_with_lead"] = len(b_leads)
        out["bundle_median_lead_min"] = float(np.median(b_leads)) if b_leads else float("nan")
        out["bundle_leads_min"] = [round(x, 1) for x in sorted(b_leads)]
    print(json.dumps(out, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
