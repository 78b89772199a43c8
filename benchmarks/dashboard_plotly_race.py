"""Reproduce the live dashboard's Plotly race: console errors in a slowed-down chromium.

The live app's tabs are dynamic: opening a tab removes the previous tab's views and
Plotly purges their charts. Panel's (1.9) Plotly view still resizes its container when
one of its stylesheets finishes loading, and a purged container makes ``Plotly.relayout``
fail: ``Cannot read properties of undefined (reading '_guiEditing')`` in the browser
console (see :mod:`guardian_lib.dashboards._plotly_guard`, the fix). A fast browser on a
fast link rarely loses that race. Each session here slows chromium down (its CPU with
CDP ``Emulation.setCPUThrottlingRate``, every request with ``--latency-ms``), goes through
every screen ``--rounds`` times, waiting ``--settle-ms`` after each tab, and counts the
sessions with console errors (or requests that left the machine).

Every session opens the first page of a freshly started server (``--fresh``, the
default: what the browser test sees) or of one long-running server (``--no-fresh``).
The dashboard code is whatever ``guardian_lib`` is on the path, so the same script
measures the code before and after a change::

    PYTHONPATH=. .venv/bin/python benchmarks/dashboard_plotly_race.py --workdir /tmp/race \
        --sessions 10 --latency-ms 800 --no-shots --rounds 2 --settle-ms 100,300

The run (the browser test's busy ``tiny`` day, ingested) is built once in ``--workdir``
and reused. Exit status 1 when any session saw a console error.
"""

from __future__ import annotations

import argparse
import collections
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from guardian_lib.dashboards.screenshots import (
    SCREEN_KEYS,
    Capture,
    launch_chromium,
    screenshot_content,
    watch_page,
)
from guardian_lib.i18n import label


def busy_run(workdir: Path) -> Path:
    """The busy tiny day of the browser test (seed 5), simulated and ingested once."""
    run = workdir / "busy"
    if (run / "warehouse.duckdb").exists():
        return run
    from guardian_lib.ingest import ingest_run
    from simulator.output import simulate_to_dir
    from simulator.scenario import load_scenario

    sc = load_scenario("tiny", days=1)
    faults = sc.faults.model_dump()
    faults["cpe_hang"]["rate_per_year"] = 60.0
    faults["feeder_cut"]["rate_per_year"] = 40.0
    simulate_to_dir(sc.with_overrides(faults=faults), run, seed=5)
    ingest_run(run)
    return run


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(run: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``serve(run)`` in a process of its own; returns it and its URL once it listens."""
    port = _free_port()
    code = (
        "import sys; from guardian_lib.dashboards.app import serve; "
        "serve(sys.argv[1], port=int(sys.argv[2]))"
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(run), str(port)], stdout=out, stderr=out
        )
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}); see {log}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("server not listening within 120 s") from None
            time.sleep(0.2)


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def session(
    browser,
    url: str,
    rate: float,
    shots: Path | None,
    settle_ms: list[int],
    rounds: int,
    latency_ms: float = 0.0,
) -> Capture:
    """One page through every screen ``rounds`` times with chromium's CPU slowed ``rate``
    times, waiting ``settle_ms`` in turn after each tab (and screenshots if ``shots``)."""
    cap = Capture()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        cdp = page.context.new_cdp_session(page)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": rate})
        if latency_ms:
            cdp.send("Network.enable")
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                     "downloadThroughput": -1, "uploadThroughput": -1})  # fmt: skip
        watch_page(page, cap)
        page.goto(url, timeout=300_000)
        page.wait_for_selector(".bk-tab", timeout=300_000)
        n = 0
        for _ in range(rounds):
            for i, key in enumerate(SCREEN_KEYS, start=1):
                # a fixed wait, the same on every version of the dashboard code
                text = label(key, "en")
                tab = page.locator(".bk-tab", has_text=re.compile(f"^{re.escape(text)}$"))
                tab.first.click()
                page.wait_for_timeout(settle_ms[n % len(settle_ms)])
                n += 1
                if shots is not None:
                    screenshot_content(page, shots / f"{i:02d}_{key}.png")
        page.wait_for_timeout(2000)  # late stylesheet loads and resizes
    finally:
        page.close()
    return cap


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/dashboard-race"))
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--rate", type=float, default=4.0, help="CPU slow-down factor [-]")
    ap.add_argument("--settle-ms", default="800",
                    help="wait after each tab, comma-separated values used in turn [ms]")  # fmt: skip
    ap.add_argument("--latency-ms", type=float, default=0.0,
                    help="added to every request (CDP network emulation) [ms]")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=1, help="times through the tabs per session")
    ap.add_argument("--shots", action=argparse.BooleanOptionalAction, default=True,
                    help="a screenshot after each tab, as the browser test takes (default)")  # fmt: skip
    ap.add_argument("--fresh", action=argparse.BooleanOptionalAction, default=True,
                    help="a new server for every session (default)")  # fmt: skip
    args = ap.parse_args(argv)
    settle = [int(x) for x in args.settle_ms.split(",")]
    from playwright.sync_api import sync_playwright

    args.workdir.mkdir(parents=True, exist_ok=True)
    run = busy_run(args.workdir)
    shots = args.workdir / "shots"
    shots.mkdir(exist_ok=True)
    log = args.workdir / "server.log"
    failed = 0
    kinds: collections.Counter[str] = collections.Counter()
    proc = None
    t0 = time.monotonic()
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            for i in range(args.sessions):
                if proc is None or args.fresh:
                    if proc is not None:
                        stop_server(proc)
                    proc, url = start_server(run, log)
                cap = session(browser, url, args.rate, shots if args.shots else None,
                              settle, args.rounds, args.latency_ms)  # fmt: skip
                errors = cap.console_errors + [f"blocked: {u}" for u in cap.blocked]
                failed += bool(errors)
                kinds.update(e.splitlines()[0][:120] for e in errors)
                print(f"session {i + 1}/{args.sessions}: {len(errors)} error(s)"
                      + (f": {errors[0].splitlines()[0][:160]}" if errors else ""), flush=True)  # fmt: skip
        finally:
            browser.close()
            if proc is not None:
                stop_server(proc)
    print(f"\n{failed} of {args.sessions} sessions with console errors "
          f"(CPU throttled {args.rate:g}x, latency {args.latency_ms:g} ms, fresh server: {args.fresh}, rounds: {args.rounds}, "
          f"settle: {args.settle_ms} ms, screenshots: {args.shots}, "
          f"{time.monotonic() - t0:.0f} s)")  # fmt: skip
    for k, n in kinds.most_common():
        print(f"  {n} x {k}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
