"""Benchmark: one ``guardian operate`` cycle, in memory for 50k ONUs and over the network.

1. **50k ONUs, no network.** A :class:`~guardian_lib.loop.ClosedLoop` with the autopilot
   (expected-cost policy, safety, simulate dispatcher, in-memory audit) is fed synthetic
   ticks of 50,000 ONUs (:func:`bench_models.synthetic_cube`). Timed: one ``feed`` that
   decides — observer, the scorer's window, features, the three models, SHAP reasons for the
   top risks, policy, safety, audit. Once with the ML scorer (a bundle trained here on a
   2-day ``tiny`` run, 150 trees, unless ``--alias`` names a registered one; window 2 days
   as ``operate`` holds), once with the rule scorer. Median of ``--timed`` cycles.
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

from bench_models import synthetic_cube  # noqa: E402


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

    run = work / "tiny2d"
    simulate_to_dir(load_scenario("tiny", days=2), run)
    ingest_run(run)
    features = feature_frame(run, every_minutes=15)
    return fit_bundle(features, build_labels(features, load_truth(run)), n_estimators=150)


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


def bench_memory(n_onus: int, alias: str | None, timed: int) -> None:
    from guardian_lib.models.online import ModelScorer

    window = 576
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        bundle = _bundle(alias, Path(tmp))
        print(f"model bundle ready in {time.perf_counter() - t0:.1f} s ({bundle.model_version})")
    cube = synthetic_cube(n_onus, window + 2 + timed, np.random.default_rng(0))
    for name, scorer in (("ML scorer", ModelScorer(bundle, window_ticks=window)),
                         ("rule scorer", None)):  # fmt: skip
        loop = _loop(cube.onus, scorer)
        t0 = time.perf_counter()
        warm = window if scorer is not None else 2
        for k in range(warm):  # fill the window without deciding
            tick = cube.tick(k)
            for c in loop.consumers:
                c.update(tick)
        loop.ticks = warm
        fill_s = time.perf_counter() - t0
        loop.feed(cube.tick(warm))  # first decision (starts running sums)
        times, cpu = [], []
        for k in range(warm + 1, warm + 1 + timed):
            tick = cube.tick(k)
            c0, t0 = time.process_time(), time.perf_counter()
            loop.feed(tick)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(
            f"{name}: one cycle, {n_onus:,} ONUs (no network): {np.median(times):.2f} s wall, "
            f"{np.median(cpu):.2f} s CPU (median of {timed}; window filled in {fill_s:.0f} s); "
            f"decisions last cycle: {len(loop.decisions)}"
        )
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
