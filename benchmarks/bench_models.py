"""Benchmark: feature-build rows/s and the latency of scoring a 50,000-ONU fleet at one tick.

1. Feature store: point-in-time features over the full history of a `small` run
   (every 5 minutes), in rows/s.
2. One tick for 50,000 ONUs through the online path (:class:`OnlineScorer`): the tick
   is appended to a :class:`RollingCube` holding the last 2 days, features are taken at
   the newest tick, then the three models and SHAP top reasons (with the online scorer's
   cap on explained rows), in seconds. The median of 3 ticks is reported, after one
   untimed tick that starts the running window sums (also printed). The models are
   trained here on the `small` run (150 trees) unless ``--alias`` names a registered
   bundle.

Usage::

    .venv/bin/python benchmarks/bench_models.py [--run data/runs/small] [--alias champion]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.features import Cube, compute_features, feature_frame
from guardian_lib.ingest import ingest_run
from guardian_lib.models.online import OnlineScorer


def ensure_run(path: Path) -> Path:
    if not (path / "warehouse.duckdb").exists():
        from simulator.output import simulate_to_dir
        from simulator.scenario import load_scenario

        simulate_to_dir(load_scenario("small"), path, overwrite=True)
        ingest_run(path)
    return path


class SyntheticFleet:
    """Plausible telemetry for a large fleet, one tick at a time: 32 ONUs per PON, 128
    PONs per OLT, 0.2 % of readings offline. Tick ``k`` depends only on ``(seed, k)``,
    so a long run need not hold its history (the benchmark measures the scorer's memory,
    not its input's)."""

    def __init__(self, n_onus: int, seed: int = 0) -> None:
        rng = np.random.default_rng([seed, 0])
        per_pon, pons_per_olt = 32, 128
        pon = np.arange(n_onus) // per_pon
        self.seed, self.n_onus = seed, n_onus
        self.onus = pd.DataFrame(
            {
                "onu_id": [f"ONU{i:06d}" for i in range(n_onus)],
                "pon_id": [f"OLT{p // pons_per_olt}/1/{p % pons_per_olt}" for p in pon],
                "olt_id": [f"OLT{p // pons_per_olt}" for p in pon],
                "splitter_id": [f"CX{i // 8}" for i in range(n_onus)],
                "lat": -22.9 + rng.normal(0, 0.05, n_onus),
                "lon": -47.0 + rng.normal(0, 0.05, n_onus),
                "distance_m": rng.uniform(1000, 12000, n_onus),
            }
        )
        self.base = rng.uniform(-25, -18, n_onus)
        self.t0_us = int(pd.Timestamp("2026-01-05", tz="UTC").value // 1000)

    def values(self, k: int) -> dict[str, np.ndarray]:
        """Readings of tick ``k`` per measure, shape (n_onus,)."""
        rng = np.random.default_rng([self.seed, 1, k])
        n = self.n_onus
        online = (rng.random(n) > 0.002).astype(float)
        values = {
            "rx_dbm": self.base + rng.normal(0, 0.2, n),
            "tx_dbm": 2.5 + rng.normal(0, 0.2, n),
            "olt_rx_dbm": self.base - 1.5 + rng.normal(0, 0.2, n),
            "snr_db": 29 + rng.normal(0, 0.5, n),
            "ber": np.full(n, 1e-12),
            "crc_errors": np.zeros(n),
            "latency_ms": 15 + rng.exponential(2, n),
            "loss_pct": rng.gamma(1, 0.1, n),
            "online": online,
            "uptime_s": np.full(n, k * 300.0),
        }
        for m in ("rx_dbm", "tx_dbm", "olt_rx_dbm", "snr_db", "latency_ms", "loss_pct"):
            values[m][online == 0] = np.nan
        return values

    def tick(self, k: int):
        """Tick ``k`` as the closed loop receives it (no events)."""
        from guardian_lib.loop import Tick

        ts = pd.Timestamp((self.t0_us + k * 300 * 1_000_000) * 1000, tz="UTC")
        return Tick(ts, self.values(k))


def synthetic_cube(n_onus: int, ticks: int, rng: np.random.Generator) -> Cube:
    """``ticks`` ticks of a :class:`SyntheticFleet` (seeded from ``rng``) as one Cube."""
    fleet = SyntheticFleet(n_onus, seed=int(rng.integers(2**31)))
    per_tick = [fleet.values(k) for k in range(ticks)]
    values = {m: np.stack([v[m] for v in per_tick]) for m in per_tick[0]}
    empty_ev = pd.DataFrame({"onu": np.array([], int), "tick": np.array([], int), "type": []})
    return Cube(
        onus=fleet.onus,
        t0_us=fleet.t0_us,
        tick_s=300,
        values=values,
        events=empty_ev,
        olt_alarms=pd.DataFrame({"olt_id": [], "tick": []}),
        orders=pd.DataFrame({"onu": [], "opened_tick": [], "closed_tick": [], "completed": []}),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("data/runs/small"))
    parser.add_argument("--alias", default=None)
    parser.add_argument("--onus", type=int, default=50_000)
    args = parser.parse_args()
    run = ensure_run(args.run)

    t0 = time.perf_counter()
    features = feature_frame(run, every_minutes=5)
    dt = time.perf_counter() - t0
    print(
        f"feature build, full history of {run}: {len(features):,} rows in {dt:.1f} s = {len(features) / dt:,.0f} rows/s"
    )

    if args.alias:
        from guardian_lib.models.registry import load_bundle

        bundle = load_bundle(args.alias)
    else:
        from guardian_lib.labels import build_labels
        from guardian_lib.models.training import fit_bundle, load_truth

        sample = features.iloc[::3].reset_index(drop=True)
        t0 = time.perf_counter()
        bundle = fit_bundle(sample, build_labels(sample, load_truth(run)), n_estimators=150)
        print(f"training (150 trees, {len(sample):,} rows): {time.perf_counter() - t0:.1f} s")

    window, timed = 576, 3  # 2 days held; 3 timed ticks after them
    cube = synthetic_cube(args.onus, window + 1 + timed, np.random.default_rng(0))
    scorer = OnlineScorer(bundle, cube.onus, window_ticks=window)

    def observe(k: int) -> None:
        scorer.update(cube.tick(k))

    def score() -> tuple[pd.DataFrame, pd.DataFrame, float]:  # scorer(), timed in two parts
        tick = scorer.cube.latest_features()
        t = time.perf_counter()
        preds = bundle.predict(
            tick, explain=scorer.explain, max_risk_explained=scorer.max_risk_explained
        )
        return tick, preds, time.perf_counter() - t

    for k in range(window + 1):
        observe(k)
    t0 = time.perf_counter()
    score()
    print(f"first online tick (starts the running window sums): {time.perf_counter() - t0:.2f} s")
    timings = []
    for k in range(window + 1, window + 1 + timed):
        t0 = time.perf_counter()
        observe(k)
        t1 = time.perf_counter()
        tick, preds, model_s = score()
        t2 = time.perf_counter()
        timings.append((t1 - t0, t2 - t1 - model_s, model_s, t2 - t0))
    append_s, feat_s, model_s, total_s = np.median(np.array(timings), axis=0)
    explained = int((preds["top_reasons"] != "[]").sum())
    print(
        f"one tick, {args.onus:,} ONUs: append {append_s:.2f} s + features {feat_s:.2f} s "
        f"+ models and SHAP {model_s:.2f} s = {total_s:.2f} s "
        f"(median of {timed}; {explained:,} rows explained)"
    )
    # For comparison: the same features from a plain Cube (no running sums).
    plain = dataclasses.replace(scorer.cube.cube(), running={}, groups={})
    t0 = time.perf_counter()
    compute_features(plain, np.array([plain.n_ticks - 1]))
    print(f"  (features from a plain Cube of the same window: {time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
    main()
