"""Benchmark: one ``guardian operate`` cycle, in memory for 50k ONUs and over the network.

1. **50k ONUs, no network.** A :class:`~guardian_lib.loop.ClosedLoop` with the autopilot
   (expected-cost policy, safety, simulate dispatcher, in-memory audit) is fed synthetic
   ticks of 50,000 ONUs (:class:`bench_models.SyntheticFleet`, generated tick by tick so
   that the peak RSS is the loop's). Timed: one ``feed`` that decides — observer, the
   scorer's window, features, the three models, SHAP reasons for the top risks, policy,
   safety, audit. Once with the ML scorer exactly as ``operate`` builds it
   (:func:`guardian_lib.operate.components.model_scorer`: 2-day window, bounded SHAP) from a
   bundle trained here on a 4-day ``tiny`` run with frequent faults (150 trees) unless
   ``--alias`` names a registered one, once with the rule scorer. Median of ``--timed``
   cycles.
2. **8 OLTs × 512 ONUs + their CPEs, over SNMP and HTTP.** ``guardian twin
   --serve-network`` (real time, a separate process) serves 8 emulated OLTs and 4,096 CPE
   agents; an in-process :class:`~guardian_lib.operate.service.Operator` runs
   ``--cycles`` cycles back to back (poll 8 OLTs, RAW + SILVER, CPE state from the NBI,
   score, decide): seconds per cycle, CPU seconds per cycle of the operate process, and its
   peak RSS.

Usage::

    .venv/bin/python benchmarks/bench_operate.py [--onus 50000] [--alias champion]
        [--skip-network] [--skip-memory]
"""

from __future__ import annotations

import argparse
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from bench_models import SyntheticFleet  # noqa: E402


def _bundle(alias: str | None, work: Path):
    if alias:
        from guardian_lib.models.registry import load_bundle

        return load_bundle(alias)
    from guardian_lib.features import feature_frame
    from guardian_lib.ingest import ingest_run
    from guardian_lib.labels import build_labels
    from guardian_lib.models.training import fit_bundle, load_truth
    from simulator.output import simulate_to_dir
    from simulator.scenario import load_scenario

    # Four days of the tiny fleet with ten times its fault rates: every model gets both
    # labels (on 2 plain tiny days the cause model is a constant and the hazard intervals
    # have no booster, so the cycle would time none of LightGBM or SHAP), while the
    # calibrated risks stay low on a healthy fleet.
    sc = load_scenario("tiny", days=4)
    faults = sc.faults.model_dump()
    for params in faults.values():
        if isinstance(params, dict) and params.get("rate_per_year"):
            params["rate_per_year"] *= 10
    run = work / "tiny4d"
    simulate_to_dir(sc.with_overrides(faults=faults), run, seed=7)
    ingest_run(run)
    features = feature_frame(run, every_minutes=15)
    bundle = fit_bundle(features, build_labels(features, load_truth(run)), n_estimators=150)
    boosters = sum(getattr(m, "booster_", None) is not None for m in bundle.risk.hazards_)
    if bundle.cause.constant_ is not None or boosters < len(bundle.risk.hazards_):
        raise SystemExit(f"bench bundle degenerate: cause constant {bundle.cause.constant_}, "
                         f"{boosters} hazard boosters")  # fmt: skip
    return bundle


def _loop(onus, scorer):
    from guardian_lib.actions import Dispatcher
    from guardian_lib.audit import AuditLog
    from guardian_lib.decision import Autopilot, AutopilotSettings, make_autopilot
    from guardian_lib.loop import ClosedLoop

    n = len(onus)
    customers = onus[["onu_id"]].assign(
        customer_id=[f"C{i:06d}" for i in range(n)],
        cpe_id=[f"CPE{i:06d}" for i in range(n)],
        region="r",
        segment="residential",
    )
    settings = AutopilotSettings(autopilot_mode="simulate")
    sc, policy = make_autopilot(scorer, settings=settings)
    ap = Autopilot(policy, sc, settings=settings, dispatcher=Dispatcher("simulate"),
                   audit=AuditLog())  # fmt: skip
    return ClosedLoop(onus, customers, ap, every=1, tick_s=300)


def _scorer_parts(scorer, timed: int) -> None:
    """CPU seconds of the scorer's two parts at the newest tick (median of ``timed``)."""
    parts = []
    for _ in range(timed):
        c0 = time.process_time()
        features = scorer.cube.latest_features()
        c1 = time.process_time()
        preds = scorer.bundle.predict(
            features, explain=scorer.explain, max_explained=scorer.max_explained,
            max_risk_explained=scorer.max_risk_explained,
        )  # fmt: skip
        parts.append((c1 - c0, time.process_time() - c1))
    feat_s, model_s = np.median(np.array(parts), axis=0)
    print(f"  of which features {feat_s:.2f} s CPU, three models + SHAP {model_s:.2f} s CPU "
          f"({int((preds['top_reasons'] != '[]').sum())} rows explained)")  # fmt: skip


def bench_memory(n_onus: int, alias: str | None, timed: int) -> None:
    from guardian_lib.operate.components import model_scorer

    tick_s = 300
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle = _bundle(alias, Path(tmp))
        print(f"model bundle ready in {time.perf_counter() - t0:.1f} s ({bundle.model_version})")
    fleet = SyntheticFleet(n_onus, seed=0)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The scorer operate builds (its window, its SHAP bounds), then the rule scorer.
    for name, scorer in (("ML scorer", model_scorer(bundle, tick_s)), ("rule scorer", None)):
        loop = _loop(fleet.onus, scorer)
        window = loop.scorer.cube.window_ticks if scorer is not None else 2
        t0 = time.perf_counter()
        for k in range(window):  # fill the window without deciding
            tick = fleet.tick(k)
            for c in loop.consumers:
                c.update(tick)
        loop.ticks = window
        fill_s = time.perf_counter() - t0
        loop.feed(fleet.tick(window))  # first decision (starts running sums)
        times, cpu = [], []
        for k in range(window + 1, window + 1 + timed):
            tick = fleet.tick(k)
            c0, t0 = time.process_time(), time.perf_counter()
            loop.feed(tick)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(
            f"{name}: one cycle, {n_onus:,} ONUs (no network): {np.median(times):.2f} s wall, "
            f"{np.median(cpu):.2f} s CPU (median of {timed}; window of {window} ticks filled "
            f"in {fill_s:.0f} s); decisions last cycle: {len(loop.decisions)}"
        )
        if scorer is not None:
            _scorer_parts(loop.scorer, timed)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"peak RSS after the ML scorer: {rss:.0f} MB ({rss0:.0f} MB before the fleet)")
            del loop
    print(f"peak RSS so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def _fleet_scenario(path: Path) -> Path:
    from simulator.scenario import load_scenario

    sc = load_scenario("tiny")
    data = sc.model_dump(mode="json")
    topo = data["topology"]
    topo["regions"][0]["olts"] = 8
    topo.update(boards_per_olt=1, pons_per_board=16, onus_per_pon_min=32, onus_per_pon_max=32)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def bench_network(cycles: int) -> None:
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    guardian = Path(sys.executable).with_name("guardian")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sc = _fleet_scenario(tmp / "fleet.yaml")
        site_path = tmp / "net" / "site.yaml"
        t0 = time.perf_counter()
        twin = subprocess.Popen(
            [str(guardian), "twin", "--scenario", str(sc), "--speed", "1", "--serve-network",
             "--site-out", str(site_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            while not site_path.exists():
                if twin.poll() is not None:
                    raise SystemExit(f"twin failed: {twin.stderr.read()[-2000:]}")
                time.sleep(0.2)
            print(f"twin network (8 OLTs × 512 ONUs, 4,096 CPE agents) up in "
                  f"{time.perf_counter() - t0:.0f} s")  # fmt: skip
            site = load_site(site_path)
            op = Operator(site, tmp / "state", mode="execute")
            try:
                walls, cpus = [], []
                for _ in range(cycles):
                    c0, t0 = time.process_time(), time.perf_counter()
                    fig = op.run_cycle()
                    walls.append(time.perf_counter() - t0)
                    cpus.append(time.process_time() - c0)
                    print(f"  cycle {fig['cycle']}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU, "
                          f"{fig['rows_polled']:,} rows, OLTs failed {fig['olts_failed']}, "
                          f"decisions {fig['decisions_by_action']}")  # fmt: skip
            finally:
                op.close()
        finally:
            twin.send_signal(signal.SIGTERM)
            twin.communicate(timeout=120)
    steady = walls[1:] or walls
    print(
        f"full cycle, 8 OLTs × 512 ONUs over SNMP + NBI: {np.median(steady):.2f} s wall, "
        f"{np.median(cpus[1:] or cpus):.2f} s CPU (median after the first, which takes "
        f"{walls[0]:.2f} s); at a 300 s polling interval the operate process is busy "
        f"{100 * np.median(cpus[1:] or cpus) / 300:.2f} % of one core"
    )
    print(f"operate peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onus", type=int, default=50_000)
    parser.add_argument("--alias", default=None)
    parser.add_argument("--timed", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--skip-network", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if not args.skip_network:
        bench_network(args.cycles)
    if not args.skip_memory:
        bench_memory(args.onus, args.alias, args.timed)


if __name__ == "__main__":
    main()
