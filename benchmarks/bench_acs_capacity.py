"""ACS capacity against a trivial aiohttp handler, and a boot storm (not part of the tests).

Capacity (issue 21): the ACS (``guardian acs serve``, its own process, SQLite store)
and a *trivial* aiohttp handler (its own process: canned answers, no parsing, no
storage) are driven in turn, A B A B …, by the same lean CWMP load generator in this
process (pre-rendered Informs of real emulated CPEs, the ACS's answers checked by
status and RPC name). Two session shapes:

* ``inform``: Inform → InformResponse, empty POST → 204 (a periodic Inform with
  nothing queued: what 100k CPEs informing every 30 min cost);
* ``gpv``: as above plus one GetParameterValues queued by a preset on "2 PERIODIC".

Per round and server: sessions/s (bound by the load generator on a shared machine),
the server's CPU time per session (psutil, user+sys) and so its capacity per core
(1 / CPU per session). The figures to quote are *ratios* to the trivial handler,
round by round (medians): of capacity per core (CPU-bound, what the ACS costs) and
of sessions/s (what the same load generator achieved); they hold when the machine's
speed drifts. ``--baseline-src DIR`` measures a second ACS from another source tree
in the same rounds (before/after). ``--workers 1,2`` measures ``acs serve --workers N``
for each N against a trivial handler with as many processes (``SO_REUSEPORT``); the
server's CPU is that of its whole process tree. Each in-flight session keeps its own
TCP connection, as a CPE does (``--shared-pool``: one pool, so a session's requests
change connections and are forwarded between ACS processes).

Boot storm: ``--storm N`` emulated CPEs (:class:`~acs_emulator.cpe.CpeAgent`, full
CWMP) all boot within ``--storm-window`` seconds against an ACS limited to
``--storm-rate`` new sessions/s; the ACS answers 503 + Retry-After beyond it, the
CPEs retry with the TR-069 §3.2.1.1 back-off. Reports 503s, failed sessions and the
time until every CPE has delivered its "1 BOOT".

Usage::

    .venv/bin/python benchmarks/bench_acs_capacity.py [--rounds 3] [--seconds 6]
        [--devices 1000] [--concurrency 64]
    .venv/bin/python benchmarks/bench_acs_capacity.py --workers 1,2   # 1 and 2 processes
    .venv/bin/python benchmarks/bench_acs_capacity.py --rounds 0 --storm 3000 \
        --storm-window 10 --storm-rate 200 [--workers 2]   # boot storm only
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))

from bench_acs import _ENV, GUARDIAN, PERIODIC_GPV, _port, _wait  # noqa: E402

from acs_emulator.cpe import CpeAgent, StaticStateSource, make_identities  # noqa: E402
from acs_emulator.cwmp import soap  # noqa: E402

_GPV_REPLY = soap.envelope(
    soap.rpc_xml(
        "GetParameterValuesResponse",
        raw=soap.values_xml([("Device.Optical.Interface.1.OpticalSignalLevel", "-19500", "int")]),
    )
)
_INFORM_RESPONSE = soap.envelope(soap.rpc_xml("InformResponse", {"MaxEnvelopes": 1}), msg_id="1")
_GPV_RPC = soap.envelope(
    soap.rpc_xml(
        "GetParameterValues",
        raw=soap.names_xml(["Device.Optical.Interface.1.OpticalSignalLevel"]),
    ),
    msg_id="acs-1",
)


def trivial_server(port: int, mode: str, workers: int = 1) -> None:
    """A trivial CWMP answerer: canned bodies chosen by a substring, nothing stored.

    ``workers`` processes share the port (``SO_REUSEPORT``), as ``acs serve --workers``.
    """
    import os

    from aiohttp import web

    for _ in range(workers - 1):
        if os.fork() == 0:
            break

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        if b"Inform>" in body or b"Inform " in body:
            return web.Response(
                body=_INFORM_RESPONSE,
                content_type="text/xml",
                headers={"Set-Cookie": "session=0123456789abcdef; Path=/"},
            )
        if not body.strip() and mode == "gpv":
            return web.Response(body=_GPV_RPC, content_type="text/xml")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    web.run_app(
        app, host="127.0.0.1", port=port, access_log=None, print=None, reuse_port=workers > 1
    )


def _informs(n: int) -> list[bytes]:
    """Pre-rendered periodic Informs of ``n`` emulated CPEs (real agent XML)."""
    state = StaticStateSource(seed=1)
    out = []
    for i, ident in enumerate(make_identities(n, seed=42)):
        agent = CpeAgent(ident, "http://unused/", state=state, seed=i)
        agent.pending_events = {"2 PERIODIC": ""}
        out.append(soap.envelope(agent._inform_xml(), msg_id="1"))
    return out


async def _drive(
    url: str, informs: list[bytes], seconds: float, concurrency: int, shared_pool: bool = False
) -> dict:
    """Sessions back to back from ``concurrency`` workers for ``seconds``.

    Each worker keeps its own TCP connection, as a CPE does for a session
    (``shared_pool``: all share one pool, so a session's requests change connections,
    hence ACS processes, and are forwarded between them).
    """
    ok = failed = 0
    hdr = {"Content-Type": 'text/xml; charset="utf-8"', "SOAPAction": ""}

    def client(limit: int) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    pool = client(concurrency) if shared_pool else None
    own = [pool or client(1) for _ in range(concurrency)]
    try:
        loop = asyncio.get_running_loop()

        async def session(http: aiohttp.ClientSession, body: bytes) -> bool:
            async with http.post(url, data=body, headers=hdr) as r:
                data = await r.read()
                if r.status != 200 or b"InformResponse" not in data:
                    return False
                cookie = (r.headers.get("Set-Cookie") or "").split(";", 1)[0]
            h = dict(hdr, Cookie=cookie)
            post: bytes = b""
            for _ in range(4):
                async with http.post(url, data=post, headers=h) as r:
                    data = await r.read()
                    if r.status == 204:
                        return True
                    if r.status != 200 or b"GetParameterValues" not in data:
                        return False
                post = _GPV_REPLY
            return False

        async def worker(k: int, t_end: float) -> None:
            nonlocal ok, failed
            i = k
            while loop.time() < t_end:
                try:
                    good = await session(own[k], informs[i % len(informs)])
                except (aiohttp.ClientError, TimeoutError):
                    good = False
                ok += good
                failed += not good
                i += concurrency

        # Warm-up: every device once (registers it), not counted.
        await asyncio.gather(*(worker(k, loop.time() + 0.5) for k in range(concurrency)))
        ok = failed = 0
        t0 = loop.time()
        await asyncio.gather(*(worker(k, t0 + seconds) for k in range(concurrency)))
        elapsed = loop.time() - t0
    finally:
        for http in dict.fromkeys(own):
            await http.close()
    return {"ok": ok, "failed": failed, "elapsed": elapsed}


def _tree_cpu(proc: psutil.Process) -> float:
    """User+system CPU of a process and its children (``--workers``). [s]"""
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        try:
            total += sum(p.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def _measure(proc: psutil.Process, url: str, informs: list[bytes], args) -> dict:
    cpu0 = _tree_cpu(proc)
    r = asyncio.run(
        _drive(url, informs, args.seconds, args.concurrency, shared_pool=args.shared_pool)
    )
    cpu = _tree_cpu(proc) - cpu0
    # CPU of the warm-up is included: the sessions it ran are counted with it.
    ms = 1000 * cpu / max(r["ok"], 1)
    return {
        "sessions_per_s": round(r["ok"] / r["elapsed"], 1),
        "failed": r["failed"],
        "server_cpu_ms_per_session": round(ms, 3),
        "capacity_per_core": round(1000 / ms) if ms else None,
    }


def _start_acs(
    tmp: Path, mode: str, env: dict[str, str], workers: int = 1
) -> tuple[subprocess.Popen, int, int]:
    cwmp, nbi = _port(), _port()
    args = [GUARDIAN, "acs", "serve", "--cwmp-port", str(cwmp), "--nbi-port", str(nbi)]
    if workers > 1:
        args += ["--workers", str(workers)]
    args += ["--db", str(tmp / "acs.sqlite"), "--no-auth"]
    help_text = subprocess.run(
        [GUARDIAN, "acs", "serve", "--help"], capture_output=True, text=True, env=env
    ).stdout
    if "--file-port" in help_text:  # an older ACS (a baseline) has no file server
        args += ["--file-port", str(_port()), "--file-dir", str(tmp / "files")]
    if mode == "gpv":
        (tmp / "presets.json").write_text(json.dumps(PERIODIC_GPV))
        args += ["--presets", str(tmp / "presets.json")]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return proc, cwmp, nbi


def capacity(args) -> dict:
    """Rounds of trivial / ACS (/ baseline ACS) for each session shape and worker count."""
    informs = _informs(args.devices)
    workers = [int(w) for w in str(args.workers).split(",")]
    out: dict = {}
    for mode in args.modes.split(","):
        with tempfile.TemporaryDirectory() as d:
            servers: dict[str, tuple[subprocess.Popen, int]] = {}
            # Labels: trivial, acs (one process); trivial_wN, acs_wN (N processes).
            pairs: dict[str, str] = {}  # ACS label -> its trivial handler's label
            envs: dict[str, tuple[dict[str, str], int]] = {}
            for n in workers:
                sfx = "" if n == 1 else f"_w{n}"
                envs[f"acs{sfx}"] = (_ENV, n)
                pairs[f"acs{sfx}"] = f"trivial{sfx}"
            if args.baseline_src:
                envs["baseline"] = (dict(_ENV, PYTHONPATH=args.baseline_src), 1)
                pairs["baseline"] = "trivial"
            try:
                for n in workers:
                    tport = _port()
                    cmd = [sys.executable, __file__, "--trivial-server", str(tport)]
                    cmd += ["--modes", mode, "--workers", str(n)]
                    servers["trivial" if n == 1 else f"trivial_w{n}"] = (
                        subprocess.Popen(cmd),
                        tport,
                    )
                    _wait(f"http://127.0.0.1:{tport}/")
                for label, (env, n) in envs.items():
                    (Path(d) / label).mkdir()
                    proc, cwmp, nbi = _start_acs(Path(d) / label, mode, env, n)
                    servers[label] = (proc, cwmp)
                    _wait(f"http://127.0.0.1:{nbi}/devices/")
                rows = []
                for _ in range(args.rounds):
                    row: dict = {}
                    for label, (proc, port) in servers.items():
                        url = f"http://127.0.0.1:{port}/"
                        row[label] = _measure(psutil.Process(proc.pid), url, informs, args)
                    for label in envs:
                        base = row[pairs[label]]
                        row[f"ratio_{label}"] = round(
                            row[label]["capacity_per_core"] / base["capacity_per_core"], 3
                        )
                        row[f"throughput_ratio_{label}"] = round(
                            row[label]["sessions_per_s"] / base["sessions_per_s"], 3
                        )
                    rows.append(row)
                    print(mode, json.dumps(row), flush=True)
            finally:
                for label, (proc, _) in servers.items():
                    if label.startswith("trivial"):  # its forked processes
                        for child in psutil.Process(proc.pid).children():
                            child.terminate()
                    proc.terminate()
                    proc.wait(10)
        summary: dict = {}
        for label in servers:
            summary[label] = {
                k: statistics.median(r[label][k] for r in rows)
                for k in ("sessions_per_s", "server_cpu_ms_per_session", "capacity_per_core")
            }
            summary[label]["failed"] = sum(r[label]["failed"] for r in rows)
        for label in envs:
            ratios = [r[f"ratio_{label}"] for r in rows]
            summary[f"capacity_ratio_{label}_over_trivial"] = {
                "median": statistics.median(ratios),
                "min": min(ratios),
                "max": max(ratios),
            }
            summary[f"throughput_ratio_{label}_over_trivial_median"] = statistics.median(
                r[f"throughput_ratio_{label}"] for r in rows
            )
        out[mode] = summary
    return out


async def _storm_agents(url: str, nbi: str, args) -> dict:
    state = StaticStateSource(seed=1)
    agents = [
        CpeAgent(ident, url, state=state, seed=i, periodic_interval_s=1800, bootstrap=False)
        for i, ident in enumerate(make_identities(args.storm, seed=11))
    ]
    rng = np.random.default_rng(0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=args.concurrency),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=60),
    ) as http:
        t0 = loop.time()
        tasks = [
            asyncio.create_task(
                a.run(
                    http,
                    stop=stop,
                    first_delay_s=float(rng.uniform(0, args.storm_window)),
                    retry_base_s=args.storm_retry_min,
                )
            )
            for a in agents
        ]
        t_all = None
        while loop.time() - t0 < args.storm_timeout:
            await asyncio.sleep(0.5)
            if all(a.sessions_ok for a in agents):
                t_all = loop.time() - t0
                break
        stop.set()
        await asyncio.gather(*tasks)
    async with aiohttp.ClientSession() as h, h.get(f"{nbi}/devices/?projection=_id") as r:
        in_acs = len(await r.json())
    return {
        "cpes": args.storm,
        "boot_window_s": args.storm_window,
        "admission_rate_per_s": args.storm_rate,
        "retry_min_wait_s": args.storm_retry_min,
        "booted": sum(bool(a.sessions_ok) for a in agents),
        "devices_in_acs": in_acs,
        "refused_503": sum(a.sessions_refused for a in agents),
        "failed_sessions": sum(a.sessions_failed for a in agents),
        "max_retries_of_one_cpe": max(a.sessions_refused for a in agents),
        "time_all_booted_s": round(t_all, 1) if t_all is not None else None,
    }


def storm(args) -> dict:
    """The boot storm against the ACS in its own process (see the module docstring)."""
    with tempfile.TemporaryDirectory() as d:
        cwmp, nbi = _port(), _port()
        acs_args = [GUARDIAN, "acs", "serve", "--cwmp-port", str(cwmp), "--nbi-port", str(nbi)]
        acs_args += ["--db", str(Path(d) / "acs.sqlite"), "--no-auth", "--retry-after", "1"]
        acs_args += ["--file-port", str(_port()), "--file-dir", str(Path(d) / "files")]
        acs_args += ["--max-sessions", str(args.storm_max_sessions)]
        acs_args += ["--max-new-sessions-per-s", str(args.storm_rate)]
        acs_args += ["--workers", str(max(int(w) for w in str(args.workers).split(",")))]
        acs = subprocess.Popen(acs_args, stdout=subprocess.DEVNULL, env=_ENV)
        try:
            _wait(f"http://127.0.0.1:{nbi}/devices/")
            return asyncio.run(
                _storm_agents(f"http://127.0.0.1:{cwmp}/", f"http://127.0.0.1:{nbi}", args)
            )
        finally:
            acs.terminate()
            acs.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--modes", default="inform,gpv")
    ap.add_argument(
        "--baseline-src",
        default="",
        help="also measure the ACS of another source tree (e.g. an export of main)",
    )
    ap.add_argument("--storm", type=int, default=0, help="boot storm of this many CPEs")
    ap.add_argument("--storm-window", type=float, default=10.0, help="all boot within [s]")
    ap.add_argument("--storm-rate", type=float, default=500.0, help="ACS admission [1/s]")
    ap.add_argument("--storm-retry-min", type=float, default=1.0, help="CWMP retry m [s]")
    ap.add_argument("--storm-timeout", type=float, default=120.0)
    ap.add_argument("--storm-max-sessions", type=int, default=5000)
    ap.add_argument(
        "--workers",
        default="1",
        help="ACS processes (guardian acs serve --workers), comma-separated to compare "
        "(e.g. 1,2); each against a trivial handler with as many processes. The boot "
        "storm uses the largest.",
    )
    ap.add_argument(
        "--shared-pool",
        action="store_true",
        help="one client connection pool for all sessions (requests of a session change "
        "connections) instead of one connection per emulated CPE",
    )
    ap.add_argument("--trivial-server", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trivial_server:
        trivial_server(args.trivial_server, args.modes, int(args.workers))
        return
    if args.rounds:
        print("Capacity:", json.dumps(capacity(args)))
    if args.storm:
        print("Boot storm:", json.dumps(storm(args)))


if __name__ == "__main__":
    main()
