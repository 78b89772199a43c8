"""Benchmarks of the emulated ACS (not part of the test suite).

1. CWMP sessions/s: ``guardian acs serve`` in its own process (one core) with a preset
   that queues one GetParameterValues on every periodic Inform; N emulated CPEs in
   this process (the other core) run sessions back to back (Inform + empty POST +
   GetParameterValues + 204). Reports sessions/s and the share of failed sessions.
2. Time to reboot M CPEs through the NBI: ``guardian cpe run --count M`` in its own
   process; this process sends M reboot tasks (``connection_request``) with
   ``guardian_lib.acs.NbiClient`` from a thread pool, and reports the time until every
   task answered 200 and until every CPE informed "1 BOOT" + "M Reboot".

Usage::

    .venv/bin/python benchmarks/bench_acs.py [--agents 1000] [--seconds 20] [--reboots 500]

All agents run sessions at once (1,000 simultaneous sessions; latency is then
mostly queueing). ``--max-in-flight K`` adds a run with at most K sessions at a time
(its latency figures include the wait for a slot).

Targets (issue 7): ≥ 300 sessions/s on 2 cores; 1,000 simultaneous agents with < 1 %
failed sessions. A Python client tops out near 2.5k simple sessions/s,
so the client side may be the bottleneck; the figure is a lower bound for the ACS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import httpx
import psutil

from acs_emulator.cpe import CpeAgent, SessionError, StaticStateSource, make_identities
from guardian_lib.acs import NbiClient

GUARDIAN = str(Path(sys.executable).with_name("guardian"))
PERIODIC_GPV = [
    {
        "name": "periodic-refresh",
        "events": ["2 PERIODIC"],
        "tasks": [
            {
                "name": "getParameterValues",
                "parameterNames": ["{root}.Optical.Interface.1.OpticalSignalLevel"],
            }
        ],
    }
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(url: str) -> None:
    for _ in range(200):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


# The ACS and the CPE process must share a connection-request password.
_ENV = dict(os.environ, GUARDIAN_CPE_CR_PASSWORD=secrets.token_hex(16))


def start_acs(tmp: Path, presets: list | None = None) -> tuple[subprocess.Popen, int, int]:
    cwmp, nbi = _port(), _port()
    args = [
        GUARDIAN,
        "acs",
        "serve",
        "--cwmp-port",
        str(cwmp),
        "--nbi-port",
        str(nbi),
        "--db",
        str(tmp / "acs.sqlite"),
        "--no-auth",  # NBI on loopback without a token: a benchmark on one machine
        "--file-port",
        str(_port()),
        "--file-dir",
        str(tmp / "files"),
    ]
    if presets:
        (tmp / "presets.json").write_text(json.dumps(presets))
        args += ["--presets", str(tmp / "presets.json")]
    proc = subprocess.Popen(args, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=_ENV)
    _wait(f"http://127.0.0.1:{nbi}/devices/")
    return proc, cwmp, nbi


async def sessions_per_second(
    acs_url: str, n_agents: int, seconds: float, max_in_flight: int | None = None
) -> dict:
    """Run ``n_agents`` CPEs doing back-to-back sessions for ``seconds``.

    ``max_in_flight`` caps simultaneous sessions (``None``: all agents at once).
    """
    state = StaticStateSource(seed=1)
    agents = [
        CpeAgent(ident, acs_url, state=state, seed=i)
        for i, ident in enumerate(make_identities(n_agents, seed=42))
    ]
    ok = failed = 0
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=n_agents),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as http:
        # Register every device first (BOOTSTRAP sessions are not counted).
        await asyncio.gather(*(a.run_session(http) for a in agents), return_exceptions=True)
        loop = asyncio.get_running_loop()
        t_end = loop.time() + seconds
        gate = asyncio.Semaphore(max_in_flight or n_agents)
        latencies: list[float] = []

        async def loop_agent(agent: CpeAgent) -> None:
            nonlocal ok, failed
            while loop.time() < t_end:
                agent.pending_events["2 PERIODIC"] = ""
                t_start = loop.time()
                try:
                    async with gate:
                        await agent.run_session(http)
                    ok += 1
                    latencies.append(loop.time() - t_start)
                except SessionError:
                    failed += 1
                    await asyncio.sleep(0.05)

        t0, cpu0 = loop.time(), time.process_time()
        await asyncio.gather(*(loop_agent(a) for a in agents))
        elapsed = loop.time() - t0
        client_cpu_s = time.process_time() - cpu0
    gpv = sum(a.rpcs_handled.count("GetParameterValues") for a in agents)
    lat = sorted(latencies) or [float("nan")]
    return {
        "agents": n_agents,
        "max_in_flight": max_in_flight or n_agents,
        "seconds": round(elapsed, 1),
        "sessions_ok": ok,
        "sessions_failed": failed,
        "failed_pct": round(100 * failed / max(ok + failed, 1), 2),
        "sessions_per_s": round(ok / elapsed, 1),
        "gpv_per_session": round(gpv / max(ok, 1), 2),
        "client_cpu_share": round(client_cpu_s / elapsed, 2),
        "latency_p50_s": round(lat[len(lat) // 2], 3),
        "latency_p95_s": round(lat[int(len(lat) * 0.95)], 3),
    }


def reboot_through_nbi(tmp: Path, n: int, threads: int = 50) -> dict:
    acs, cwmp, nbi = start_acs(tmp)
    cr = _port()
    cpes = subprocess.Popen(
        [
            GUARDIAN,
            "cpe",
            "run",
            "--acs-url",
            f"http://127.0.0.1:{cwmp}/",
            "--count",
            str(n),
            "--cr-port",
            str(cr),
            "--spread",
            "2",
            "--periodic-interval",
            "3600",
            "--duration",
            "600",
        ],
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        env=_ENV,
    )
    try:
        client = NbiClient(f"http://127.0.0.1:{nbi}", token="", task_timeout_ms=10000)
        deadline = time.monotonic() + 120
        ids: list[str] = []
        while time.monotonic() < deadline and len(ids) < n:
            ids = [d["_id"] for d in client.devices(projection=["_id"])]
            time.sleep(0.5)
        t0 = time.monotonic()
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda d: client.reboot(d), ids))
        t_tasks = time.monotonic() - t0
        done = sum(r.status == "done" for r in results)
        back = 0
        while time.monotonic() - t0 < 120:
            docs = client.devices({"_events": "M Reboot"}, projection=["_id"])
            back = len(docs)
            if back >= len(ids):
                break
            time.sleep(0.2)
        t_back = time.monotonic() - t0
        client.close()
        return {
            "cpes": len(ids),
            "nbi_threads": threads,
            "tasks_done_200": done,
            "time_all_tasks_answered_s": round(t_tasks, 2),
            "cpes_back_with_M_Reboot": back,
            "time_all_back_s": round(t_back, 2),
            "reboot_down_time_s": 2.0,
        }
    finally:
        for p in (cpes, acs):
            p.terminate()
            p.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--agents", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--reboots", type=int, default=500)
    ap.add_argument(
        "--max-in-flight", type=int, default=0, help="also run with this many sessions at most"
    )
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        acs, cwmp, _ = start_acs(tmp, PERIODIC_GPV)
        try:
            proc = psutil.Process(acs.pid)
            url = f"http://127.0.0.1:{cwmp}/"
            for cap in (None, args.max_in_flight) if args.max_in_flight else (None,):
                cpu0 = sum(proc.cpu_times()[:2])
                res = asyncio.run(sessions_per_second(url, args.agents, args.seconds, cap))
                # ACS CPU per session (bootstrap sessions included): a figure that does
                # not depend on how busy the machine is.
                acs_cpu_s = sum(proc.cpu_times()[:2]) - cpu0
                per_session_ms = 1000 * acs_cpu_s / (res["sessions_ok"] + args.agents)
                res["acs_cpu_ms_per_session"] = round(per_session_ms, 2)
                res["acs_capacity_sessions_per_core_s"] = round(1000 / per_session_ms)
                print("CWMP sessions (Inform + GetParameterValues + 204):", json.dumps(res))
        finally:
            acs.terminate()
            acs.wait(10)
        tmp2 = tmp / "reboot"
        tmp2.mkdir()
        print("Reboot through the NBI:", json.dumps(reboot_through_nbi(tmp2, args.reboots)))


if __name__ == "__main__":
    main()
