"""Benchmark the SNMP poller (issue 8 §5). Not part of the test suite.

1. net-snmp ``snmpd`` serves a Huawei-style ONU table of 4,096 ONUs (optical + status +
   serial columns) given as ``override`` lines, on 127.0.0.1. The poller and net-snmp's
   ``snmpbulkwalk`` walk the same table in the same run; we print OIDs/s, client CPU
   seconds and the ratio.
2. A full poll cycle over 8 emulated OLTs × 512 ONUs started with ``guardian olt serve``.

Needs the Debian packages ``snmpd`` and ``snmp`` (``apt-get install snmpd snmp``)::

    .venv/bin/python benchmarks/bench_snmp.py [--processes 2] [--skip-snmpd] [--skip-emulated]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from guardian_lib.snmp.inventory import Inventory, OltEntry, load_inventory
from guardian_lib.snmp.poller import poll_inventory
from guardian_lib.snmp.profiles import load_profiles
from guardian_lib.snmp.transport import new_engine

HW = "1.3.6.1.4.1.2011.6.128.1.1.2"
COMMUNITY = "bench"
NO_MIBS = ["-M", "/dev/null", "-m", ""]  # numeric OIDs only: no MIB files to parse


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snmpd_config(n_onus: int) -> str:
    """snmpd.conf with a Huawei ONT table of ``n_onus`` ONUs as ``override`` lines."""
    lines = [
        f"rocommunity {COMMUNITY} 127.0.0.1",
        "dontLogTCPWrappersConnects yes",
        'override .1.3.6.1.2.1.1.1.0 octet_str "Huawei Integrated Access Software MA5800-X7"',
        "override .1.3.6.1.2.1.1.2.0 object_id .1.3.6.1.4.1.2011.2.248",
    ]
    per_pon = 64
    for i in range(n_onus):
        slot, port_no, ont = i // (16 * per_pon), (i // per_pon) % 16, i % per_pon
        idx = f"{0xFA000000 + slot * 8192 + port_no * 256}.{ont}"
        rx, tx = -1800 - (i % 900), 150 + (i % 300)
        lines += [
            f"override .{HW}.51.1.4.{idx} integer {rx}",
            f"override .{HW}.51.1.3.{idx} integer {tx}",
            f"override .{HW}.51.1.6.{idx} integer {10000 + rx - 200}",
            f"override .{HW}.46.1.15.{idx} integer 1",
            f"override .{HW}.46.1.24.{idx} integer -1",
            f'override .{HW}.43.1.3.{idx} octet_str "HWTC{i:08X}"',
        ]
    return "\n".join(lines) + "\n"


def _children_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _self_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _poll_worker(args: tuple[str, int, int, int, str]) -> tuple[int, float, float]:
    """One process: poll the snmpd table ``repeat`` times; returns (OIDs, wall s, CPU s)."""
    host, port, repeat, reps, backend = args
    inv = Inventory(
        olts=[
            OltEntry(olt_id="snmpd", host=host, port=port, credentials="b", profile="huawei_ma5800")
        ],
        defaults={
            "timeout_s": 5,
            "retries": 1,
            "max_repetitions": reps,
            "max_inflight_per_olt": 2,
            "backend": backend,
        },
    )
    env = {"GUARDIAN_SNMP_B_COMMUNITY": COMMUNITY}
    profiles = load_profiles()

    async def go() -> int:
        engine = new_engine()
        n = 0
        for _ in range(repeat):
            report = await poll_inventory(inv, profiles, environ=env, engine=engine)
            r = report.results[0]
            if not r.complete:
                raise SystemExit(f"poll failed: {r.error}")
            n += r.varbinds
        return n

    cpu0, t0 = _self_cpu_s(), time.perf_counter()
    n = asyncio.run(go())
    return n, time.perf_counter() - t0, _self_cpu_s() - cpu0


def bench_snmpd(n_onus: int, processes: int, repeat: int, reps: int) -> None:
    for tool in ("snmpd", "snmpbulkwalk", "snmpget"):
        if shutil.which(tool) is None:
            sys.exit(
                f"bench_snmp: '{tool}' not found; install the Debian packages: "
                "apt-get install snmpd snmp (or run with --skip-snmpd)"
            )
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "snmpd.conf"
        conf.write_text(snmpd_config(n_onus))
        os.chmod(tmp, 0o755)
        os.chmod(conf, 0o644)
        cmd = [shutil.which("snmpd"), "-f", "-C", "-c", str(conf), "-Lf", "/dev/null", *NO_MIBS]
        cmd += ["-p", str(Path(tmp) / "pid"), f"udp:127.0.0.1:{port}"]
        agent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            target = f"127.0.0.1:{port}"
            for _ in range(100):  # bounded wait for snmpd to load 24k overrides
                ok = subprocess.run(
                    ["snmpget", *NO_MIBS, "-v2c", "-c", COMMUNITY, "-t", "1", "-r", "0", target,
                     f".{HW}.51.1.4.4194304000.0"],
                    capture_output=True, text=True,
                )  # fmt: skip
                if ok.returncode == 0 and "INTEGER" in ok.stdout:
                    break
                if agent.poll() is not None:
                    sys.exit(f"bench_snmp: snmpd exited with {agent.returncode}")
                time.sleep(0.2)
            else:
                sys.exit("bench_snmp: snmpd did not answer within 20 s")

            # net-snmp yardstick: the same subtree with snmpbulkwalk
            cpu0, t0 = _children_cpu_s(), time.perf_counter()
            n_walk = 0
            for _ in range(repeat):
                out = subprocess.run(
                    ["snmpbulkwalk", *NO_MIBS, "-v2c", "-c", COMMUNITY, "-Cr50", "-On", "-Oq",
                     target, f".{HW}"],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                n_walk += sum(1 for line in out.stdout.splitlines() if line.startswith("."))
            nw_wall, nw_cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0

            # our poller: the built-in v2c codec and pysnmp, in 1 and in `processes` processes
            results = {}
            for backend in ("fast", "pysnmp"):
                for n_proc in sorted({1, processes}):
                    t0 = time.perf_counter()
                    job = ("127.0.0.1", port, repeat, reps, backend)
                    with mp.get_context("spawn").Pool(n_proc) as pool:
                        parts = pool.map(_poll_worker, [job] * n_proc)
                    oids = sum(p[0] for p in parts)
                    cpu = sum(p[2] for p in parts)
                    busy = max(p[1] for p in parts)
                    results[(backend, n_proc)] = (oids, busy, cpu)
        finally:
            agent.terminate()
            agent.wait(timeout=10)

    print(f"\n== snmpd table: {n_onus} ONUs x 6 columns, {repeat} walk(s) each ==")
    nw_rate = n_walk / nw_wall
    print(f"snmpbulkwalk        : {n_walk:>7,} OIDs in {nw_wall:6.2f} s = {nw_rate:>8,.0f} OIDs/s, "
          f"client CPU {nw_cpu:5.2f} s")  # fmt: skip
    for (backend, n_proc), (oids, busy, cpu) in results.items():
        rate = oids / busy
        print(
            f"poller {backend:>6} x{n_proc}: {oids:>7,} OIDs in {busy:6.2f} s = "
            f"{rate:>8,.0f} OIDs/s, "
            f"client CPU {cpu:5.2f} s (ratio to snmpbulkwalk {rate / nw_rate:.2f}; "
            f"CPU/OID {1e6 * cpu / oids:.0f} us vs {1e6 * nw_cpu / n_walk:.1f} us)"
        )


def bench_emulated(n_olts: int, onus_per_olt: int, version: str) -> None:
    from simulator.scenario import load_scenario

    pons = onus_per_olt // 32
    sc = load_scenario("tiny")
    topo = sc.topology.model_dump(mode="json") | {
        "regions": [{
            "name": "Bench", "olts": n_olts,
            "cities": [{"name": "Campinas", "lat": -22.9, "lon": -47.06, "radius_km": 8}],
        }],
        "boards_per_olt": max(1, pons // 4), "pons_per_board": min(4, pons),
        "onus_per_pon_min": 32, "onus_per_pon_max": 32,
        "vendor_mix": {"huawei": 0.4, "zte": 0.4, "fiberhome": 0.2},
    }  # fmt: skip
    doc = sc.model_dump(mode="json") | {"name": "bench_snmp", "topology": topo}
    exe = Path(sys.executable).with_name("guardian")
    with tempfile.TemporaryDirectory() as tmp:
        scen = Path(tmp) / "bench.yaml"
        scen.write_text(yaml.safe_dump(doc))
        inv_path = Path(tmp) / "olts.yaml"
        serve = subprocess.Popen(
            [str(exe), "olt", "serve", "--scenario", str(scen), "--base-port", "0",
             "--inventory", str(inv_path), "--version", version],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            for _ in range(600):  # ≤ 60 s
                if inv_path.exists() or serve.poll() is not None:
                    break
                time.sleep(0.1)
            if not inv_path.exists():
                sys.exit(f"bench_snmp: guardian olt serve failed: {serve.communicate()[1]}")
            inv = load_inventory(inv_path)
            profiles = load_profiles()

            async def cycle():
                engine = new_engine()
                await poll_inventory(inv, profiles, engine=engine)  # warm-up (v3 discovery)
                cpu0, t0 = _self_cpu_s(), time.perf_counter()
                report = await poll_inventory(inv, profiles, engine=engine)
                return report, time.perf_counter() - t0, _self_cpu_s() - cpu0

            report, wall, cpu = asyncio.run(cycle())
        finally:
            serve.terminate()
            serve.wait(timeout=10)
    oids = sum(r.varbinds for r in report.results)
    onus = len(report.telemetry)
    failed = [r.olt_id for r in report.failed]
    mix = sorted({r.profile for r in report.results})
    print(f"\n== emulated: {n_olts} OLTs x {onus_per_olt} ONUs (guardian olt serve, v{version}) ==")
    print(
        f"full cycle: {onus:,} ONUs, {oids:,} OIDs in {wall:.2f} s = {oids / wall:,.0f} OIDs/s, "
        f"poller CPU {cpu:.2f} s; profiles {mix}; failed {failed or 'none'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onus", type=int, default=4096)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-repetitions", type=int, default=50)
    ap.add_argument("--olts", type=int, default=8)
    ap.add_argument("--onus-per-olt", type=int, default=512)
    ap.add_argument("--version", choices=("2c", "3"), default="2c")
    ap.add_argument("--skip-snmpd", action="store_true")
    ap.add_argument("--skip-emulated", action="store_true")
    a = ap.parse_args()
    print(f"cores: {os.cpu_count()}, python {sys.version.split()[0]}")
    if not a.skip_snmpd:
        bench_snmpd(a.onus, a.processes, a.repeat, a.max_repetitions)
    if not a.skip_emulated:
        bench_emulated(a.olts, a.onus_per_olt, a.version)


if __name__ == "__main__":
    main()
