"""The live app and the offline report in Debian's chromium (Playwright), network blocked.

One busy tiny run (many CPE hangs and fibre cuts) is simulated, ingested and backtested
with ``guardian backtest`` (so the autopilot KPIs are what ``guardian_lib.kpis`` computes),
and given synthetic ``ml_predictions``. Both the static report (``file://``) and the
live server must load without console errors or any request leaving the machine, show
the library's KPI figures, and let a filter change the risk queue. The live server is
the Panel server ``guardian dashboard --run`` runs (:func:`guardian_lib.dashboards.app.serve`),
started in a Python process of its own on a free port of 127.0.0.1 (so the browser opens
the server's first session) and stopped at the end; the command's own options are tested without a browser (test_dashboards). A PNG of
every screen is saved under the report folder (``<tmp>/report/screenshots/{static,live}/``).

Chromium is required: if it is missing these tests fail (install it with
``apt-get install -y chromium``; ``.ci/run`` does).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from local_servers import free_port, stop_process

from guardian_lib.dashboards import load_run_data, risk_queue, write_report
from guardian_lib.dashboards.glossary import format_metric, metric_label
from guardian_lib.dashboards.headline import headline
from guardian_lib.dashboards.screenshots import (
    SCREEN_KEYS,
    Capture,
    chromium_path,
    launch_chromium,
    open_screen,
    screenshot_content,
    watch_page,
)
from guardian_lib.i18n import format_money, format_number, label
from guardian_lib.warehouse import run_summary
from simulator.experiment import run_backtest

CAUSES = [
    "p_massive_outage", "p_customer_premises", "p_equipment_fail",
    "p_external_network", "p_intermittent", "p_unknown",
]  # fmt: skip
LANG = "en"


def _busy_run(root: Path) -> Path:
    from guardian_lib.ingest import ingest_run
    from simulator.output import simulate_to_dir
    from simulator.scenario import load_scenario

    sc = load_scenario("tiny", days=1)
    faults = sc.faults.model_dump()
    faults["cpe_hang"]["rate_per_year"] = 60.0
    faults["feeder_cut"]["rate_per_year"] = 40.0
    run = root / "busy"
    # Every call about a fault becomes a service order: the cards need orders, whatever
    # the call centre's draws of this seed.
    ops = sc.operations.model_dump() | {"visit_prob_with_fault": 1.0, "phone_reboot_fix_prob": 0.0}
    simulate_to_dir(sc.with_overrides(faults=faults, operations=ops), run, seed=5)
    ingest_run(run)
    return run


def _add_predictions(run: Path) -> None:
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    onus = con.execute("SELECT onu_id FROM onus ORDER BY onu_id").df()["onu_id"]
    con.close()
    rng = np.random.default_rng(11)
    n = len(onus)
    df = pd.DataFrame({"ts": pd.Timestamp("2026-01-05T23:45:00Z"), "onu_id": onus})
    df["anomaly_score"] = rng.random(n)
    probs = rng.dirichlet(np.ones(6), size=n)
    for i, col in enumerate(CAUSES):
        df[col] = probs[:, i]
    df["risk_2h"] = np.round(rng.random(n), 4)
    df["risk_6h"] = df["risk_2h"]
    df["risk_24h"] = df["risk_2h"]
    df["model_version"] = "network-guardian/1"
    df["top_reasons"] = "[]"
    out = run / "lake" / "gold" / "ml_predictions"
    out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "synthetic.parquet", index=False)


@pytest.fixture(scope="module")
def busy(request, tmp_path_factory):
    """The busy run, backtested, with synthetic predictions, and its report folder.

    When the live test is to run, its dashboard server is started here, as soon as the
    run is ready (:func:`_start_server`): its start overlaps the static report's test.
    """
    chromium_path()  # fail early, with the install hint, if the browser is missing
    root = tmp_path_factory.mktemp("browser")
    run = _busy_run(root)
    res = run_backtest(
        run, ["reactive", "autopilot"], 1, run / "kpis.json", every_minutes=60, days=0.5
    )
    assert res["status"] == "ok", res
    _add_predictions(run)
    keep = os.environ.get("GUARDIAN_TEST_REPORT_DIR")  # to look at the screenshots afterwards
    report_dir = Path(keep) if keep else root / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    out = {"run": run, "report_dir": report_dir, "kpis": res["kpis"], "server": None}
    if any(item.name == test_live_dashboard_in_chromium.__name__ for item in request.session.items):
        out["server"] = _start_server(out)
    try:
        yield out
    finally:
        if out["server"] is not None:
            stop_process(out["server"][0])


@pytest.fixture(scope="module")
def report_html(busy) -> Path:
    return write_report(busy["run"], busy["report_dir"] / "report.html", lang=LANG)


def _expected_cards(busy: dict) -> dict[str, str]:
    """What each KPI card must show: the library's numbers, formatted for ``LANG``."""
    run = busy["run"]
    ops = run_summary(run)["operations"]
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    cost = con.execute("SELECT coalesce(sum(cost_brl), 0) FROM service_orders").fetchone()[0]
    con.close()
    assert ops["calls"] > 0 and ops["service_orders"] > 0, "the busy run should be busy"
    cards = {k: format_number(ops[k], LANG) for k in ("customers", "onus", "calls", "visits")}
    cards["visits_no_fault_found"] = format_number(ops["visits_no_fault_found"], LANG)
    cards["service_orders_total"] = format_number(ops["service_orders"], LANG)
    cards["visit_cost_brl"] = format_money(cost, LANG)
    auto = busy["kpis"]["policies"]["autopilot"]
    # Backtest KPIs: the mean, formatted by the glossary's unit (NaN is written as null).
    for key in (
        "visits_avoided", "savings_brl", "cost_saving_vs_reactive_brl", "mttr_hours",
        "sla_availability", "false_action_rate",
    ):  # fmt: skip
        cards[key] = format_metric(key, auto[key]["mean"], LANG)
    return cards


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


def _start_server(busy: dict) -> tuple[subprocess.Popen, int, Path]:
    """`guardian dashboard --run RUN --lang LANG` in a Python process of its own, on a free
    port of 127.0.0.1: (process, port, log). Nothing is requested from it here."""
    port = free_port()
    code = (
        "import sys; from guardian_lib.dashboards.app import serve; "
        "serve(sys.argv[1], port=int(sys.argv[2]), lang=sys.argv[3])"
    )
    log = busy["report_dir"] / "dashboard-server.log"  # a file: a full pipe would block it
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, str(busy["run"]), str(port), LANG],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return proc, port, log


@pytest.fixture(scope="module")
def live_url(busy):
    """The live dashboard of the busy run, served by a process of its own, once it listens.

    It is what `guardian dashboard --run RUN --lang LANG` runs
    (:func:`guardian_lib.dashboards.app.serve`), in a new Python process so that the
    browser opens the first session of a server that has drawn nothing yet (Panel keeps
    per-process state; the first session once asked a CDN for stylesheets). No page is
    requested before the browser's: a TCP connect builds nothing. The process is the one
    ``busy`` started, or one started here.
    """
    own = busy["server"] is None
    proc, port, log = _start_server(busy) if own else busy["server"]
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                err = log.read_text(errors="replace")[-2000:]
                pytest.fail(f"the dashboard server exited ({proc.returncode}): {err}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"port {port}: not listening within 120 s"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/"
    finally:
        if own:
            stop_process(proc)


def _open(browser, url: str) -> tuple:
    cap = Capture()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch_page(page, cap)
    page.goto(url, timeout=180_000)
    page.wait_for_selector(".bk-tab", timeout=180_000)
    return page, cap


def _text(page, selector: str, want: str, timeout_s: float = 30.0) -> str:
    """Text of the visible element matching ``selector``, once it equals ``want`` or time is up.

    Screens redraw asynchronously (live tabs render when shown, filters re-render the
    queue): poll rather than read once.
    """
    loc = page.locator(f"{selector} >> visible=true").first
    loc.wait_for(timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    got = loc.inner_text()
    while got != want and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        got = loc.inner_text()
    return got


def _check_screens(busy: dict, page, cap: Capture, mode: str) -> None:
    """KPI figures, the risk-queue filter, screenshots, then no errors and no network."""
    shots = busy["report_dir"] / "screenshots" / mode
    shots.mkdir(parents=True, exist_ok=True)
    heights = {}
    for i, key in enumerate(SCREEN_KEYS, start=1):
        assert open_screen(page, key, LANG), f"{mode}: {key} not drawn"
        heights[key] = screenshot_content(page, shots / f"{i:02d}_{key}.png")
        full = page.evaluate("() => document.documentElement.scrollHeight")
        assert 0 < heights[key] <= full, f"{mode}: {key} cropped to {heights[key]} px of {full}"
    # the screens are of different lengths: cropped to content, not all the layout's height
    assert len(set(heights.values())) > 1, f"{mode}: screenshots not cropped: {heights}"
    assert sorted(p.name for p in shots.iterdir()) == [
        f"{i:02d}_{k}.png" for i, k in enumerate(SCREEN_KEYS, start=1)
    ]

    # The headline, above the screens: the same figures as guardian_lib's headline().
    head = page.locator('[data-testid="headline"] >> visible=true').first
    head.wait_for(timeout=30_000)
    text = head.inner_text()
    for item in headline(load_run_data(busy["run"])):
        assert metric_label(item.key, LANG) in text, f"{mode}: headline lacks {item.key}"
        want = item.texts(LANG)[0]
        got = _text(page, f'[data-testid="headline"] [data-kpi="{item.key}"] .kpi-value', want)
        assert got == want, f"{mode}: headline {item.key!r} shows {got!r}, not {want!r}"

    # KPIs & savings: every card shows the library's number.
    open_screen(page, "kpis_savings", LANG)
    for key, want in _expected_cards(busy).items():
        got = _text(page, f'[data-kpi="{key}"] .kpi-value', want)
        assert got == want, f"{mode}: KPI card {key!r} shows {got!r}, the library says {want!r}"

    # Risk queue: choosing a plan changes the queue to exactly that plan's customers.
    open_screen(page, "risk_queue", LANG)
    data = load_run_data(busy["run"])
    full = risk_queue(data, limit=None)
    count = '[data-testid="risk-count"]'
    before = label("rows_shown", LANG, n=format_number(min(50, len(full)), LANG),
                   total=format_number(len(full), LANG))  # fmt: skip
    assert _text(page, count, before) == before
    plan = full["plan"].value_counts().index[-1]  # the least common plan: a visible change
    want = risk_queue(data, plan=plan, limit=None)
    assert 0 < len(want) < len(full)
    page.locator(f"select:has(option[value='{plan}'])").first.select_option(plan)
    after = label("rows_shown", LANG, n=format_number(min(50, len(want)), LANG),
                  total=format_number(len(want), LANG))  # fmt: skip
    assert _text(page, count, after) == after, f"{mode}: the plan filter did not change the queue"
    rows = page.locator('[data-testid="risk-queue"] tbody tr td:first-child >> visible=true')
    ids = rows.all_inner_texts()
    assert ids == list(want["customer_id"].head(50)), f"{mode}: filtered queue differs"

    assert not cap.console_errors, f"{mode}: browser console errors: {cap.console_errors}"
    assert not cap.blocked, f"{mode}: requests that left the machine: {cap.blocked}"


def test_static_report_offline_in_chromium(busy, browser, report_html):
    page, cap = _open(browser, report_html.as_uri())
    try:
        _check_screens(busy, page, cap, "static")
    finally:
        page.close()


def test_live_dashboard_in_chromium(busy, browser, live_url):
    page, cap = _open(browser, live_url)
    try:
        _check_screens(busy, page, cap, "live")
        # A resize of a chart container Plotly has not plotted (or has purged: the view of
        # a tab left) does nothing, where plotly.js alone throws (_plotly_guard); a
        # plotted chart is still resized.
        resized = page.evaluate(
            """async () => {
                const gd = document.createElement("div");
                await Plotly.relayout(gd, {width: 300});
                await Plotly.Plots.resize(gd);
                document.body.appendChild(gd);
                await Plotly.newPlot(gd, [{y: [1, 2]}], {width: 200, height: 150});
                await Plotly.relayout(gd, {width: 300});
                const w = gd._fullLayout.width;
                Plotly.purge(gd);
                await Plotly.relayout(gd, {width: 400});
                gd.remove();
                return w;
            }"""
        )
        assert resized == 300
        assert not cap.console_errors, f"live: console errors: {cap.console_errors}"
    finally:
        page.close()


def test_kpis_come_from_the_backtest_of_this_run(busy):
    kpis = json.loads((busy["run"] / "kpis.json").read_text())
    assert set(kpis["policies"]) == {"reactive", "autopilot"}
    assert load_run_data(busy["run"]).backtest["policies"].keys() == kpis["policies"].keys()
