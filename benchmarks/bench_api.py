"""Benchmark: ``GET /risk`` and ``GET /customers/{id}/timeline`` on a 50k-customer warehouse.

A synthetic run folder (``--customers`` customers and ONUs in 8 regions, 32 ONUs per
PON, ``--snapshots`` prediction snapshots per ONU in GOLD, ``--events-per-customer``
SILVER events each) is served by the real application under uvicorn on 127.0.0.1 (a
thread of this process) with one extra trivial endpoint (``GET /api/v1/bench/noop``:
returns a constant, no token). One client on one connection sends ``--requests``
requests to each endpoint, after ``--warmup``; per endpoint it reports requests/s and the
p50 / p99 latency [ms], and the ratio of each to the trivial endpoint measured in the
same run (the ratio is what carries across machines).

``/risk`` cycles through regions and windows (``min=0.5``, first page of 100);
``/timeline`` draws customers with a seeded generator. The first ``/risk`` builds the
newest-prediction cache; warm-up requests absorb it.

Usage::

    .venv/bin/python benchmarks/bench_api.py [--customers 50000] [--requests 300]
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd


def make_warehouse(run: Path, customers: int, snapshots: int, events_per: int, seed: int) -> None:
    """A run folder with inventory tables, GOLD predictions and SILVER events."""
    from guardian_lib.layout import RunLayout

    rng = np.random.default_rng(seed)
    lay = RunLayout(run)
    run.mkdir(parents=True, exist_ok=True)
    regions = [f"R{i}" for i in range(8)]
    n_pon = -(-customers // 32)
    n_olt = -(-n_pon // 16)
    olts = pd.DataFrame({"olt_id": [f"OLT-{i:04d}" for i in range(n_olt)],
                         "vendor": "huawei", "model": "MA5800",
                         "region": [regions[i % 8] for i in range(n_olt)], "city": "c",
                         "pop_id": "p", "lat": 0.0, "lon": 0.0, "mgmt_address": "10.0.0.1"})  # fmt: skip
    pons = pd.DataFrame({"pon_id": [f"PON-{i:05d}" for i in range(n_pon)],
                         "olt_id": [f"OLT-{i // 16:04d}" for i in range(n_pon)],
                         "slot": 1, "port": np.arange(n_pon) % 16, "if_index": np.arange(n_pon),
                         "technology": "gpon"})  # fmt: skip
    onu_ids = np.array([f"ONU-{i:06d}" for i in range(customers)])
    onus = pd.DataFrame({"onu_id": onu_ids, "serial": onu_ids, "pon_id":
                         [f"PON-{i // 32:05d}" for i in range(customers)], "splitter_id": "s",
                         "onu_index": np.arange(customers) % 32, "vendor": "huawei",
                         "model": "HG8245", "distance_m": rng.uniform(100, 20000, customers),
                         "lat": 0.0, "lon": 0.0})  # fmt: skip
    cust_ids = np.array([f"C-{i:06d}" for i in range(customers)])
    region_of_onu = (
        olts.set_index("olt_id")["region"]
        .loc[pons.set_index("pon_id").loc[onus["pon_id"], "olt_id"]]
        .to_numpy()
    )
    cust = pd.DataFrame({"customer_id": cust_ids, "onu_id": onu_ids,
                         "cpe_id": [f"CPE-{i:06d}" for i in range(customers)], "plan": "500M",
                         "segment": "residential", "sla_tier": "std", "region": region_of_onu,
                         "city": "c", "lat": 0.0, "lon": 0.0,
                         "created_at": pd.Timestamp("2026-01-01", tz="UTC")})  # fmt: skip
    con = duckdb.connect(str(lay.warehouse))
    for name, frame in {"olts": olts, "pons": pons, "onus": onus, "customers": cust}.items():
        con.register("f", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
        con.unregister("f")
    con.close()
    t0 = pd.Timestamp("2026-12-04T06:00:00Z")
    lay.predictions.mkdir(parents=True)
    for s in range(snapshots):
        r24 = rng.beta(0.5, 4.0, customers)
        pd.DataFrame({"ts": t0 - pd.Timedelta(minutes=15 * s), "onu_id": onu_ids,
                      "anomaly_score": rng.random(customers), "risk_2h": r24 / 4,
                      "risk_6h": r24 / 2, "risk_24h": r24, "model_version": "bench",
                      "top_reasons": '["rx_dbm low"]'}
                     ).to_parquet(lay.predictions / f"snap-{s:03d}.parquet")  # fmt: skip
    n_ev = customers * events_per
    ent = rng.integers(0, customers, n_ev)
    ev = lay.silver("events")
    ev.mkdir(parents=True)
    pd.DataFrame({"ts": t0 - pd.to_timedelta(rng.integers(0, 7 * 86400, n_ev), unit="s"),
                  "entity_id": onu_ids[ent], "entity_type": "onu",
                  "type": rng.choice(["LOS", "LOW_RX", "CUSTOMER_CALL", "REBOOT"], n_ev),
                  "severity": "minor", "source": "bench", "payload": "{}"}
                 ).sort_values("ts").to_parquet(ev / "data.parquet")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _measure(client, urls: list[str], headers: dict, warmup: int) -> dict[str, float]:
    for u in urls[:warmup]:
        client.get(u, headers=headers).raise_for_status()
    lat = []
    start = time.perf_counter()
    for u in urls:
        t = time.perf_counter()
        client.get(u, headers=headers).raise_for_status()
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - start
    ms = np.array(lat) * 1000
    return {"rps": len(urls) / total, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--events-per-customer", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    import httpx
    import uvicorn

    from guardian_lib.api.app import ApiConfig, create_app
    from guardian_lib.api.users import UserStore

    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        t = time.perf_counter()
        make_warehouse(run, args.customers, args.snapshots, args.events_per_customer, args.seed)
        print(f"warehouse: {args.customers:,} customers, {args.snapshots} prediction snapshots, "
              f"{args.customers * args.events_per_customer:,} events "
              f"({time.perf_counter() - t:.1f} s to build)")  # fmt: skip
        users = UserStore(Path(tmp) / "users.json")
        users.add("bench", "viewer")
        token = users.issue_token("bench")[0]
        app = create_app(ApiConfig(run=run, users=Path(tmp) / "users.json"), users)
        app.get("/api/v1/bench/noop")(lambda: {"ok": True})
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))  # fmt: skip
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline:
                raise SystemExit("uvicorn did not start")
            time.sleep(0.05)
        rng = np.random.default_rng(args.seed)
        n = args.requests
        regions = [f"R{i}" for i in range(8)]
        windows = ["2h", "6h", "24h"]
        urls = {
            "noop": ["/api/v1/bench/noop"] * n,
            "risk": [
                f"/api/v1/risk?region={regions[i % 8]}&window={windows[i % 3]}&min=0.5"
                for i in range(n)
            ],  # fmt: skip
            "timeline": [
                f"/api/v1/customers/C-{c:06d}/timeline?limit=50"
                for c in rng.integers(0, args.customers, n)
            ],  # fmt: skip
        }
        headers = {"Authorization": f"Bearer {token}"}
        out = {}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            for name, lst in urls.items():
                out[name] = _measure(client, lst, headers, args.warmup)
        server.should_exit = True
        thread.join(timeout=30)
    base = out["noop"]
    print(f"{'endpoint':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'req/s ÷ noop':>13} {'p99 ÷ noop':>11}")  # fmt: skip
    for name, m in out.items():
        print(f"{name:<10} {m['rps']:8.1f} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f} "
              f"{m['rps'] / base['rps']:13.3f} {m['p99_ms'] / base['p99_ms']:11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
