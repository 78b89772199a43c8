"""The dashboard behind the login (``/login``, ``/console``), served by the operator API.

The session rules (cookie flags, CSRF, logout, redirects) are checked through FastAPI's
TestClient; then Debian's chromium (Playwright) logs in as an operator of one region,
sees the open incident, approves a proposed reboot with a comment (which reaches
operate's queue) and signs out; a viewer sees the queue without buttons and gets 403
when it forces the call.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import api_world as W
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient
from local_servers import free_port, wait_until_answers

from guardian_lib.api.app import PREFIX, ApiConfig, create_app
from guardian_lib.api.deps import CSRF_HEADER, SESSION_COOKIE, csrf_token
from guardian_lib.api.users import UserStore
from guardian_lib.audit import AuditLog
from guardian_lib.dashboards.screenshots import Capture, chromium_path, launch_chromium, watch_page
from guardian_lib.operate.state import StateStore

PASSWORDS = {"op-n": "north-operator-pw", "viewer": "viewer-pw", "op-s": "south-operator-pw"}


def _serve(app):
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port: (base URL, stop())."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_answers(url + PREFIX + "/health", timeout_s=30, every_s=0.05)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    return url, stop


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A run, operate's state with an open incident and two proposed reboots (one per
    region), three users with passwords, and the API served by uvicorn on 127.0.0.1."""
    root = tmp_path_factory.mktemp("console")
    run, state = root / "run", root / "state"
    W.make_warehouse(run)
    StateStore(state).close()
    audit = AuditLog(state / "audit.duckdb", tag="t-")
    iid = audit.new_incident_id()
    audit.record_incident(iid, W.T0, scope_type="pon", scope_key="PON-N1", start_at=W.T0,
                          severity="major", cause="EXTERNAL_NETWORK", affected_customers=2,
                          opened_by="loop")  # fmt: skip
    audit.close()
    users = UserStore(root / "users.json")
    users.add("op-n", "operator", ["north"], password=PASSWORDS["op-n"])
    users.add("op-s", "operator", ["south"], password=PASSWORDS["op-s"])
    users.add("viewer", "viewer", password=PASSWORDS["viewer"])
    cfg = ApiConfig(run=run, users=root / "users.json", state=state, webhook_every_s=0,
                    console_refresh_s=60.0)  # fmt: skip
    app = create_app(cfg, users)
    url, stop = _serve(app)
    yield {"root": root, "run": run, "state": state, "cfg": cfg, "app": app, "url": url,
           "incident": iid, "users": users}  # fmt: skip
    stop()


def _login(client: TestClient, name: str) -> None:
    r = client.post("/login", data={"name": name, "password": PASSWORDS[name]},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith("/console")


def _pending(state: Path, onu: str) -> int:
    return W.propose(state, onu, "PON-N1" if onu.startswith("ONU-N") else "PON-S1")


def _row(state: Path, aid: int) -> dict:
    st = StateStore(state)
    try:
        return next(r for r in st.approvals() if r["id"] == aid)
    finally:
        st.close()


# --- the session rules ------------------------------------------------------------------------
def test_console_needs_a_login_and_sets_a_strict_cookie(site):
    client = TestClient(site["app"], base_url="http://testserver")
    r = client.get("/console", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    bad = client.post("/login", data={"name": "op-n", "password": "wrong"})
    assert bad.status_code == 401 and 'data-testid="login-error"' in bad.text
    r = client.post("/login", data={"name": "op-n", "password": PASSWORDS["op-n"]},
                    follow_redirects=False)  # fmt: skip
    cookie = r.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=ngt_" in cookie
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Secure" not in cookie
    page = client.get("/console")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert csrf_token(client.cookies[SESSION_COOKIE]) in page.text
    assert "<script>" not in page.text  # no inline script: the CSP would block it


def test_secure_flag_is_configurable(site):
    cfg = ApiConfig(run=site["run"], users=site["cfg"].users, state=site["state"],
                    webhook_every_s=0, cookie_secure=True)  # fmt: skip
    client = TestClient(create_app(cfg, site["users"]), base_url="https://testserver")
    r = client.post("/login", data={"name": "viewer", "password": PASSWORDS["viewer"]},
                    follow_redirects=False)  # fmt: skip
    assert "Secure" in r.headers["set-cookie"]


def test_cookie_mutations_need_the_csrf_token_and_same_origin(site):
    client = TestClient(site["app"], base_url="http://testserver")
    _login(client, "op-n")
    aid = _pending(site["state"], "ONU-N2")
    url = f"{PREFIX}/decisions/{aid}/approve"
    no_token = client.post(url, json={"comment": "csrf"})
    assert no_token.status_code == 403 and no_token.json()["type"].endswith("/csrf")
    assert no_token.json()["field"] == f"header.{CSRF_HEADER}"
    good = {CSRF_HEADER: csrf_token(client.cookies[SESSION_COOKIE])}
    evil = client.post(
        url, json={"comment": "csrf"}, headers=good | {"Origin": "http://evil.example"}
    )
    assert evil.status_code == 403 and evil.json()["field"] == "header.Origin"
    assert _row(site["state"], aid)["status"] == "pending"
    ok = client.post(url, json={"comment": "csrf ok"},
                     headers=good | {"Origin": "http://testserver"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert _row(site["state"], aid)["comment"] == "csrf ok"
    # reads need no token; a bearer token (no cookie) needs none either
    assert client.get(f"{PREFIX}/decisions").status_code == 200


def test_logout_revokes_the_session(site):
    client = TestClient(site["app"], base_url="http://testserver")
    _login(client, "viewer")
    session = client.cookies[SESSION_COOKIE]
    assert client.post("/logout").status_code == 403  # no CSRF header
    r = client.post("/logout", headers={CSRF_HEADER: csrf_token(session)})
    assert r.status_code == 200
    again = TestClient(site["app"], base_url="http://testserver", cookies={SESSION_COOKIE: session})
    resp = again.get(f"{PREFIX}/decisions")
    assert resp.status_code == 401 and resp.json()["reason"] == "revoked"
    assert again.get("/console", follow_redirects=False).status_code == 303


# --- in chromium ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    chromium_path()
    with sync_playwright() as pw:
        b = launch_chromium(pw)
        yield b
        b.close()


def _browser_login(browser, site, name: str, lang: str = "en"):
    cap = Capture()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    watch_page(page, cap)
    page.goto(f"{site['url']}/?lang={lang}", timeout=60_000)
    page.wait_for_url("**/login**")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click('[data-testid="sign-in"]')
    page.wait_for_url("**/console**")
    page.wait_for_selector('[data-testid="approvals"] table, [data-testid="approvals"] p')
    return page, cap


def test_operator_approves_in_the_browser(site, browser):
    north = _pending(site["state"], "ONU-N1")
    south = _pending(site["state"], "ONU-S1")
    page, cap = _browser_login(browser, site, "op-n")
    try:
        page.wait_for_selector('[data-testid="incident-table"]')
        incidents = page.inner_text('[data-testid="incidents"]')
        assert site["incident"] in incidents
        assert "external network" in incidents and "major" in incidents
        assert "EXTERNAL_NETWORK" not in incidents
        queue = page.locator('[data-testid="approval-table"]')
        assert queue.locator(f'tr[data-row="{north}"]').count() == 1
        assert queue.locator(f'tr[data-row="{south}"]').count() == 0  # other region: hidden
        assert "Rule: low rx" in queue.locator(f'tr[data-row="{north}"]').inner_text()
        page.click(f'[data-testid="approve-{north}"]')  # no comment yet: refused on the page
        assert "comment" in page.inner_text('[data-testid="message"]')
        assert _row(site["state"], north)["status"] == "pending"
        page.fill(f'[data-testid="comment-{north}"]', "RX -29 dBm since 06:00")
        page.click(f'[data-testid="approve-{north}"]')
        # (wait_for_function evaluates a string: the page's CSP forbids that)
        page.locator('[data-testid="message"]', has_text="approved").wait_for()
        row = _row(site["state"], north)
        assert (row["status"], row["decided_by"], row["comment"]) == (
            "approved", "api:op-n", "RX -29 dBm since 06:00")  # fmt: skip
        queue.locator(f'tr[data-row="{north}"]').wait_for(state="detached")  # left the queue
        # the timeline of a customer, from the risk queue
        page.click('[data-testid="risk-table"] button:has-text("C-N1")')
        page.wait_for_selector('[data-testid="timeline-events"]')
        assert "CUSTOMER_CALL" in page.inner_text('[data-testid="timeline"]')
        assert not cap.console_errors, cap.console_errors
        assert not cap.blocked, cap.blocked
        page.click('[data-testid="logout"]')
        page.wait_for_url("**/login**")
    finally:
        page.close()


def test_viewer_has_no_buttons_and_is_refused(site, browser):
    aid = _pending(site["state"], "ONU-N2")
    page, cap = _browser_login(browser, site, "viewer", lang="pt-BR")
    try:
        page.wait_for_selector(f'[data-testid="approval-table"] tr[data-row="{aid}"]')
        assert "Ações aguardando aprovação" in page.inner_text("#approvals")
        page.wait_for_selector('[data-testid="incident-table"]')
        incidents = page.inner_text('[data-testid="incidents"]')
        assert "rede externa" in incidents and "alta" in incidents  # cause, severity
        assert "EXTERNAL_NETWORK" not in incidents and "major" not in incidents
        assert page.locator('[data-testid="viewer-note"]').count() == 1
        assert page.locator("button.approve, button.reject").count() == 0
        assert not cap.console_errors, cap.console_errors
        # forcing the call with the page's own session and CSRF token: the API says no
        status, kind = page.evaluate(
            """async (aid) => {
                const boot = JSON.parse(document.getElementById('boot').textContent);
                const r = await fetch('/api/v1/decisions/' + aid + '/approve', {
                  method: 'POST', credentials: 'same-origin',
                  headers: {'Content-Type': 'application/json', 'X-CSRF-Token': boot.csrf},
                  body: JSON.stringify({comment: 'forced'})});
                return [r.status, (await r.json()).type];
            }""",
            aid,
        )
        assert status == 403 and kind.endswith("/forbidden")
        assert _row(site["state"], aid)["status"] == "pending"
    finally:
        page.close()


# --- the analysis screens of `guardian dashboard` behind the login ------------------------------
@pytest.fixture(scope="module")
def analysis_site(tiny_run, tmp_path_factory):
    """``guardian api`` in site mode over the simulated tiny run (a warehouse the six
    screens can draw) with operate's state: its audit trail, held open by a writer as
    operate holds it, has an incident; a viewer and an operator scoped to one region."""
    from guardian_lib.dashboards._data import load_run_data

    root = tmp_path_factory.mktemp("analysis")
    state = root / "state"
    StateStore(state).close()
    audit = AuditLog(state / "audit.duckdb", tag="a-")
    t0 = load_run_data(tiny_run).end - pd.Timedelta(hours=3)
    iid = audit.new_incident_id()
    audit.record_incident(iid, t0, scope_type="pon", scope_key="PON-X", start_at=t0,
                          severity="major", cause="EXTERNAL_NETWORK", affected_customers=3,
                          opened_by="loop")  # fmt: skip
    audit.flush()
    users = UserStore(root / "users.json")
    users.add("viewer", "viewer", password=PASSWORDS["viewer"])
    users.add("op-n", "operator", ["north"], password=PASSWORDS["op-n"])
    cfg = ApiConfig(run=tiny_run, users=root / "users.json", state=state, webhook_every_s=0)
    app = create_app(cfg, users)
    url, stop = _serve(app)
    yield {"app": app, "url": url, "run": tiny_run, "audit": audit, "incident": iid}
    stop()
    audit.close()


def test_analysis_screens_need_a_login_and_no_region_scope(analysis_site):
    from guardian_lib.api.analysis import ANALYSIS_PATH
    from guardian_lib.dashboards._compress import expand_scripts

    run = analysis_site["run"]
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    client = TestClient(analysis_site["app"], base_url="http://testserver")
    r = client.get(ANALYSIS_PATH + "?lang=pt-BR", follow_redirects=False)  # no session
    assert r.status_code == 303 and r.headers["location"] == "/login?lang=pt-BR"
    _login(client, "op-n")  # scoped to a region: the screens cover every region
    assert 'data-testid="analysis-link"' not in client.get("/console").text
    refused = client.get(ANALYSIS_PATH)
    assert refused.status_code == 403 and "north" in refused.text
    assert 'data-testid="analysis-refused"' in refused.text
    client = TestClient(analysis_site["app"], base_url="http://testserver")
    _login(client, "viewer")
    assert 'data-testid="analysis-link"' in client.get("/console").text
    page = client.get(ANALYSIS_PATH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "connect-src 'none'" in csp and "frame-ancestors 'none'" in csp
    text = expand_scripts(page.text)
    assert "NOC overview" in text and "Optical signal" in text
    # operate's trail (read from a copy while its writer holds the file), cause in words
    assert analysis_site["incident"] in text and "external network" in text
    analysis_site["audit"].record_incident(
        analysis_site["audit"].new_incident_id(), pd.Timestamp("2026-01-01", tz="UTC"),
        scope_type="pon", scope_key="PON-Y", start_at=pd.Timestamp("2026-01-01", tz="UTC"),
        severity="minor", cause="UNKNOWN", affected_customers=1, opened_by="loop",
    )  # fmt: skip
    analysis_site["audit"].flush()  # the writer was not kept out
    assert client.get(ANALYSIS_PATH).text == page.text  # cached: the run did not change
    assert analysis_site["app"].state.analysis.builds == 1
    # built from a snapshot: nothing was written into the served run
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before


def test_viewer_opens_the_analysis_screens_in_the_browser(analysis_site, browser):
    from guardian_lib.dashboards.screenshots import SCREEN_KEYS, open_screen
    from guardian_lib.i18n import label

    page, cap = _browser_login(browser, analysis_site, "viewer")
    try:
        page.click('[data-testid="analysis-link"]')
        page.wait_for_url("**/console/analysis**")
        page.wait_for_selector(".bk-tab", timeout=60_000)
        tabs = page.locator(".bk-tab").all_inner_texts()
        for key in SCREEN_KEYS:
            assert label(key, "en") in tabs, (key, tabs)
        assert open_screen(page, SCREEN_KEYS[-1]), "the last screen was not drawn"
        assert not cap.console_errors, cap.console_errors
        assert not cap.blocked, cap.blocked
    finally:
        page.close()


# --- comments in operate's queue --------------------------------------------------------------
def test_guardian_decisions_keeps_and_shows_comments(tmp_path):
    import sqlite3

    import typer
    from typer.testing import CliRunner

    from guardian_lib.operate.cli import register

    state = tmp_path / "state"
    state.mkdir()
    # a state file written before comments were kept: opened, it gains the column
    con = sqlite3.connect(state / "operate.sqlite")
    con.execute(
        "CREATE TABLE approvals (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL, ts TEXT,"
        " action TEXT, subject TEXT, target TEXT, pon_id TEXT, decision_id TEXT, params TEXT,"
        " rationale TEXT, status TEXT, decided_at REAL, decided_by TEXT, result TEXT)"
    )
    con.execute("INSERT INTO approvals (ts, action, subject, target, status) "
                "VALUES ('t', 'reboot', 'ONU-1', 'ONU-1', 'pending')")  # fmt: skip
    con.commit()
    con.close()
    aid = W.propose(state, "ONU-N1", "PON-N1")
    app = typer.Typer()
    register(app)
    r = CliRunner()
    out = r.invoke(app, ["decisions", "reject", str(aid), "--state", str(state),
                         "--comment", "customer asked to wait until 18:00"])  # fmt: skip
    assert out.exit_code == 0, out.output
    out = r.invoke(app, ["decisions", "list", "--state", str(state), "--status", "", "--json"])
    rows = {x["id"]: x for x in json.loads(out.output)}
    assert rows[aid]["comment"] == "customer asked to wait until 18:00"
    assert rows[1]["comment"] is None and rows[1]["status"] == "pending"  # the old row kept
    table = r.invoke(app, ["decisions", "list", "--state", str(state), "--status", "rejected"],
                     env={"COLUMNS": "250"})  # fmt: skip
    assert "customer asked to wait until 18:00" in table.output
    long = r.invoke(
        app, ["decisions", "approve", "1", "--state", str(state), "--comment", "x" * 2001]
    )
    assert long.exit_code == 2 and "--comment" in long.output


def test_every_label_the_page_uses_exists_in_both_languages():
    import re

    from guardian_lib.api.console_assets import CONSOLE_JS, LABELS

    assert set(LABELS["en"]) == set(LABELS["pt-BR"])
    used = set(re.findall(r'\bt\("([a-z_]+)"', CONSOLE_JS))
    used |= set(re.findall(r'label: "([a-z_]+)"', CONSOLE_JS))
    assert used and used <= set(LABELS["en"]), sorted(used - set(LABELS["en"]))
    assert all(LABELS["pt-BR"][k] != LABELS["en"][k] for k in ("approve", "reject", "logout"))


def test_guardian_dashboard_site_serves_the_console_behind_the_login(site, monkeypatch):
    """``guardian dashboard --site`` builds the API's console app (not a second dashboard):
    without a session ``/console`` sends the browser to ``/login``; a login reaches it."""
    import typer
    import yaml
    from typer.testing import CliRunner

    from guardian_lib.dashboards.cli import register

    root = site["root"]
    (root / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (root / "site.yaml").write_text(yaml.safe_dump(
        {"site_id": "isp-sul", "inventory": "olts.yaml", "warehouse": str(site["run"]),
         "model_alias": None}))  # fmt: skip
    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: served.update(app=app, **kw))
    app = typer.Typer()
    register(app)
    args = ["dashboard", "--site", str(root / "site.yaml"), "--state", str(site["state"]),
            "--users", str(root / "users.json"), "--port", "8765"]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert served["host"] == "127.0.0.1" and served["port"] == 8765
    client = TestClient(served["app"])
    first = client.get("/console", follow_redirects=False)
    assert first.status_code in (302, 303) and "/login" in first.headers["location"]
    assert client.get("/login").status_code == 200
    login = client.post("/login", data={"name": "viewer", "password": PASSWORDS["viewer"]},
                        follow_redirects=False)  # fmt: skip
    assert login.status_code in (302, 303) and SESSION_COOKIE in login.cookies
    assert client.get("/console").status_code == 200
    # Contradictory options are refused with one line.
    bad = CliRunner().invoke(app, ["dashboard", "--run", str(site["run"]), "--users", "u.json"])
    assert bad.exit_code == 2 and "--state and --users go with --site" in bad.output
    none = CliRunner().invoke(app, ["dashboard"])
    assert none.exit_code == 2 and "exactly one of --run RUN or --site" in none.output
