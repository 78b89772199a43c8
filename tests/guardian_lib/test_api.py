"""The operator API over a tiny warehouse and a real operate state store.

The permission matrix (role × endpoint × own/other region) is generated from
:data:`guardian_lib.api.app.ENDPOINTS` and :data:`ROLE_PERMISSIONS` and asserted through
FastAPI's TestClient; problem+json bodies, token expiry and revocation, the approval
flow into operate's state store and the audit file are checked on the same app.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest
import yaml
from api_world import REGIONS, T0, auth, clear_pending, make_warehouse, propose
from fastapi.testclient import TestClient

from guardian_lib.api.app import ENDPOINTS, PREFIX, ApiConfig, create_app
from guardian_lib.api.users import ROLE_PERMISSIONS, ROLES, UserStore
from guardian_lib.audit import AuditLog
from guardian_lib.layout import RunLayout
from guardian_lib.operate.state import StateStore


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A run, an operate state folder with an open incident, and one user per role × scope."""
    root = tmp_path_factory.mktemp("api")
    run, state = root / "run", root / "state"
    make_warehouse(run)
    StateStore(state).close()
    audit = AuditLog(state / "audit.duckdb", tag="t-")
    for scope_type, key in (("pon", "PON-N1"), ("pon", "PON-S1")):
        audit.record_incident(audit.new_incident_id(), T0, scope_type=scope_type,
                              scope_key=key, start_at=T0, severity="major", cause="fiber",
                              affected_customers=2, opened_by="loop")  # fmt: skip
    audit.close()
    users = UserStore(root / "users.json")
    tokens = {}
    for role in ROLES:
        users.add(f"{role}-n", role, ["north"])
        tokens[(role, "north")] = users.issue_token(f"{role}-n")[0]
        users.add(f"{role}-all", role)
        tokens[(role, None)] = users.issue_token(f"{role}-all")[0]
    users.add("pw-user", "viewer", password="pw-user-secret")
    olt_cli = root / "olt-cli.yaml"  # POST /olt/changes (dry runs need no OLT to answer)
    olt_cli.write_text(yaml.safe_dump({"olts": [
        {"olt_id": o, "host": "127.0.0.1", "profile": "huawei_ma5800", "credentials": "noc"}
        for o in ("OLT-N", "OLT-S")]}))  # fmt: skip
    from guardian_lib.operate.contacts import ContactSettings

    cfg = ApiConfig(run=run, users=root / "users.json", state=state, execute_per_minute=1000,
                    olt_cli_inventory=olt_cli, webhook_allow_local=True,
                    contacts=ContactSettings(), contacts_folder=root / "contacts")  # fmt: skip
    client = TestClient(create_app(cfg, users))
    return {"run": run, "state": state, "users": users, "tokens": tokens, "client": client,
            "cfg": cfg, "root": root}  # fmt: skip


# --- the permission matrix ------------------------------------------------------------------
_ONU = {"north": ("ONU-N1", "PON-N1", "C-N1"), "south": ("ONU-S1", "PON-S1", "C-S1")}


def _request(world, method: str, path: str, region: str):
    """(method, url, json body) exercising ``path`` on an object of ``region``."""
    onu, pon, cust = _ONU[region]
    if path == "/customers/{customer_id}/timeline":
        return method, f"/customers/{cust}/timeline", None
    if path in ("/risk", "/olts", "/pons", "/onus", "/customers", "/alerts", "/silences") and (
        method == "GET"
    ):
        return method, f"{path}?region={region}" + ("&min=0" if path == "/risk" else ""), None
    if path.startswith("/decisions/{approval_id}"):
        aid = propose(world["state"], onu, pon)
        return method, path.replace("{approval_id}", str(aid)), {"comment": "matrix"}
    if path in ("/decision/simulate", "/decision/execute"):
        clear_pending(world["state"], onu)
        return method, path, {"action": "reboot", "onu_id": onu, "comment": "matrix"}
    if path == "/tokens/{token_id}":
        name = f"throwaway-{len(world['users'].users())}"
        world["users"].add(name, "viewer")
        return method, f"/tokens/{world['users'].issue_token(name)[1].token_id}", None
    if path == "/auth/login":
        return method, path, {"name": "pw-user", "password": "pw-user-secret"}
    if path == "/webhooks" and method == "POST":
        return method, path, {"url": "http://127.0.0.1:9/hook", "events": ["decision"]}
    if path == "/webhooks/{webhook_id}":
        from guardian_lib.api.webhooks import WebhookStore

        sub = WebhookStore(world["cfg"].webhooks_path()).add(
            "http://127.0.0.1:9/x", ["incident"], "t"
        )
        return method, f"/webhooks/{sub['id']}", None
    if path == "/silences":
        body = {"matchers": {"region": region, "olt": "~OLT-.*"}, "duration_minutes": 30.0,
                "comment": "matrix"}  # fmt: skip
        return method, path, body
    if path == "/silences/{silence_id}":
        from guardian_lib.alerts.silences import SilenceStore

        store = SilenceStore(world["state"] / "silences.sqlite")
        s = store.add({"region": region}, T0, T0 + pd.Timedelta(days=3650), "t", "matrix")
        store.close()
        return method, f"/silences/{s.silence_id}", None
    if path == "/olt/changes":
        olt = {"north": "OLT-N", "south": "OLT-S"}[region]
        return method, path, {"olt_id": olt, "operation": "port-disable", "dry_run": True,
                              "params": {"slot": 1, "port": 0}, "comment": "matrix"}  # fmt: skip
    if path == "/contacts":
        return method, path, {"contacts": [{"ts": T0.isoformat(), "customer_id": cust}]}
    return method, path, None


def _matrix():
    for method, path, permission, scoped in ENDPOINTS:
        for role in ROLES:
            for scope in ("north", None):
                for region in REGIONS:
                    yield method, path, permission, scoped, role, scope, region


@pytest.mark.parametrize(
    ("method", "path", "permission", "scoped", "role", "scope", "region"),
    list(_matrix()),
    ids=lambda v: str(v),
)
def test_permission_matrix(world, method, path, permission, scoped, role, scope, region):
    verb, url, body = _request(world, method, path, region)
    headers = auth(world["tokens"][(role, scope)])
    resp = world["client"].request(verb, PREFIX + url, json=body, headers=headers)
    allowed_role = permission is None or permission in ROLE_PERMISSIONS[role]
    out_of_scope = scoped and scope is not None and region != scope
    if not allowed_role:
        assert resp.status_code == 403, resp.text
        assert resp.json()["type"].endswith("/forbidden")
        assert resp.json()["permission"] == permission
    elif out_of_scope and path not in ("/incidents/active", "/decisions"):
        assert resp.status_code == 403, resp.text
        assert resp.json()["type"].endswith("/out-of-region")
    else:
        assert resp.status_code in (200, 201, 202), resp.text
    if path == "/decision/execute" and resp.status_code == 201:
        store = StateStore(world["state"])  # leave no pending duplicate for the next case
        store.decide(resp.json()["id"], "rejected", by="test")
        store.close()


@pytest.mark.parametrize("path", ["/incidents/active", "/decisions?state=proposed"])
def test_scoped_listings_show_only_the_users_regions(world, path):
    propose(world["state"], "ONU-N2", "PON-N1", action="schedule_visit")
    propose(world["state"], "ONU-S1", "PON-S1", action="schedule_visit")
    c = world["client"]
    seen = {}
    for scope in ("north", None):
        resp = c.get(PREFIX + path, headers=auth(world["tokens"][("viewer", scope)]))
        assert resp.status_code == 200, resp.text
        items = resp.json()["items"]
        if path.startswith("/incidents"):
            seen[scope] = {("north" if i["scope_key"] == "PON-N1" else "south") for i in items}
        else:
            seen[scope] = {i["region"] for i in items}
    assert seen["north"] == {"north"}
    assert seen[None] == {"north", "south"}


def test_health_is_public_and_everything_else_needs_a_token(world):
    c = world["client"]
    assert c.get(PREFIX + "/health").json()["status"] == "ok"
    for (
        method,
        path,
        permission,
        _,
    ) in ENDPOINTS:
        if permission is None:
            continue
        url = PREFIX + path.replace("{customer_id}", "C-N1").replace("{approval_id}", "1")
        url = url.replace("{token_id}", "0123456789ab").replace("{webhook_id}", "x")
        url = url.replace("{silence_id}", "0123456789ab")
        resp = c.request(method, url, json={"comment": "x"})
        assert resp.status_code == 401, (method, path, resp.text)


# --- problem+json bodies --------------------------------------------------------------------
def test_401_body_is_problem_json(world):
    resp = world["client"].get(PREFIX + "/risk", headers=auth("ngt_nothex_xx"))
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["www-authenticate"].startswith("Bearer")
    body = resp.json()
    assert body["status"] == 401 and body["reason"] == "malformed"
    assert body["field"] == "header.Authorization" and body["instance"] == PREFIX + "/risk"
    assert "ngt_nothex_xx" not in resp.text


def test_403_body_names_role_and_permission(world):
    resp = world["client"].post(PREFIX + "/decisions/1/approve", json={"comment": "ok"},
                                headers=auth(world["tokens"][("viewer", None)]))  # fmt: skip
    assert resp.status_code == 403
    body = resp.json()
    assert body["role"] == "viewer" and body["permission"] == "decide"
    assert "viewer" in body["detail"]


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/risk?min=1.5", "query.min"),
        ("/risk?window=3h", "query.window"),
        ("/risk?limit=0", "query.limit"),
        ("/onus?sort=password", "query.sort"),
        ("/onus?colour=red", "query.colour"),
        ("/decisions?state=maybe", "query.state"),
    ],
)
def test_422_names_the_field(world, url, field):
    resp = world["client"].get(PREFIX + url, headers=auth(world["tokens"][("viewer", None)]))
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["field"] == field
    assert field in resp.json()["detail"]


def test_422_on_a_body_names_the_body_field(world):
    aid = propose(world["state"], "ONU-N2", "PON-N1")
    resp = world["client"].post(PREFIX + f"/decisions/{aid}/approve", json={"comment": ""},
                                headers=auth(world["tokens"][("operator", None)]))  # fmt: skip
    assert resp.status_code == 422
    assert resp.json()["field"] == "body.comment"
    resp = world["client"].post(PREFIX + "/decision/simulate",
                                json={"action": "format_disk", "onu_id": "ONU-N1"},
                                headers=auth(world["tokens"][("viewer", None)]))  # fmt: skip
    assert resp.status_code == 422 and resp.json()["field"] == "body.action"
    nested = {"action": "reboot", "onu_id": "ONU-N1", "params": {"x": {"$where": "1"}}}
    resp = world["client"].post(PREFIX + "/decision/simulate", json=nested,
                                headers=auth(world["tokens"][("viewer", None)]))  # fmt: skip
    assert resp.status_code == 422 and resp.json()["field"].startswith("body.params.x")
    store = StateStore(world["state"])
    assert [a["status"] for a in store.approvals() if a["id"] == aid] == ["pending"]
    store.close()


def test_404_names_the_missing_object(world):
    tok = auth(world["tokens"][("admin", None)])
    resp = world["client"].get(PREFIX + "/customers/C-XX/timeline", headers=tok)
    assert resp.status_code == 404 and resp.json()["field"] == "path.customer_id"
    resp = world["client"].post(PREFIX + "/decisions/99999/approve", json={"comment": "x"},
                                headers=tok)  # fmt: skip
    assert resp.status_code == 404 and resp.json()["field"] == "path.approval_id"


# --- reads ----------------------------------------------------------------------------------
def test_risk_queue_serves_the_newest_prediction_riskiest_first(world):
    resp = world["client"].get(PREFIX + "/risk?min=0.5&window=24h",
                               headers=auth(world["tokens"][("viewer", None)]))  # fmt: skip
    body = resp.json()
    assert [(i["onu_id"], i["risk"]) for i in body["items"]] == [("ONU-N1", 0.9),
                                                                 ("ONU-S1", 0.7)]  # fmt: skip
    assert body["items"][0]["customer_id"] == "C-N1" and body["items"][0]["region"] == "north"
    scoped = world["client"].get(PREFIX + "/risk?min=0",
                                 headers=auth(world["tokens"][("viewer", "north")]))  # fmt: skip
    assert {i["onu_id"] for i in scoped.json()["items"]} == {"ONU-N1", "ONU-N2"}


def test_inventory_is_paginated_filtered_and_sorted(world):
    tok = auth(world["tokens"][("viewer", None)])
    c = world["client"]
    body = c.get(PREFIX + "/onus?sort=-distance_m&limit=2", headers=tok).json()
    assert body["total"] == 3 and [i["onu_id"] for i in body["items"]] == ["ONU-S1", "ONU-N1"]
    body = c.get(PREFIX + "/onus?sort=-distance_m&limit=2&offset=2", headers=tok).json()
    assert [i["onu_id"] for i in body["items"]] == ["ONU-N2"]
    body = c.get(PREFIX + "/customers?segment=business", headers=tok).json()
    assert [i["customer_id"] for i in body["items"]] == ["C-N2"]


def test_timeline_has_events_and_predictions_of_the_customer(world):
    body = world["client"].get(PREFIX + "/customers/C-N1/timeline",
                               headers=auth(world["tokens"][("viewer", None)])).json()  # fmt: skip
    assert {e["type"] for e in body["events"]} == {"LOW_RX", "CUSTOMER_CALL"}
    assert len(body["predictions"]) == 2 and body["predictions"][0]["risk_24h"] == 0.9
    assert body["customer"]["onu_id"] == "ONU-N1"


def test_openapi_document_lists_every_endpoint(world):
    doc = world["client"].get(PREFIX + "/openapi.json").json()
    for method, path, _, _ in ENDPOINTS:
        assert method.lower() in doc["paths"][PREFIX + path], path
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


# --- tokens ---------------------------------------------------------------------------------
def test_token_expiry_and_revocation_through_the_api(world, tmp_path):
    now = [1_800_000_000.0]
    users = UserStore(tmp_path / "u.json", clock=lambda: now[0])
    users.add("op", "operator")
    users.add("boss", "admin")
    tok, info = users.issue_token("op", expires_days=1)
    admin_tok = users.issue_token("boss", expires_days=None)[0]
    cfg = ApiConfig(run=world["run"], users=tmp_path / "u.json", state=world["state"],
                    audit=tmp_path / "audit.jsonl")  # fmt: skip
    c = TestClient(create_app(cfg, users))
    assert c.get(PREFIX + "/risk", headers=auth(tok)).status_code == 200
    now[0] += 86400
    resp = c.get(PREFIX + "/risk", headers=auth(tok))
    assert resp.status_code == 401 and resp.json()["reason"] == "expired"
    tok2, info2 = users.issue_token("op", expires_days=1)
    assert c.get(PREFIX + "/risk", headers=auth(tok2)).status_code == 200
    assert c.delete(PREFIX + f"/tokens/{info2.token_id}", headers=auth(admin_tok)).json()["revoked"]
    resp = c.get(PREFIX + "/risk", headers=auth(tok2))
    assert resp.status_code == 401 and resp.json()["reason"] == "revoked"
    rows = [r for r in json.loads("[" + ",".join(
        (tmp_path / "audit.jsonl").read_text().splitlines()) + "]")]  # fmt: skip
    assert [(r["user"], r["action"], r["target"]) for r in rows] == [
        ("boss", "revoke_token", info2.token_id)
    ]


def test_a_token_revoked_by_the_cli_stops_working_in_a_running_api(world, tmp_path):
    path = tmp_path / "u.json"
    UserStore(path).add("op", "operator")
    tok, info = UserStore(path).issue_token("op")
    cfg = ApiConfig(run=world["run"], users=path, state=world["state"])
    c = TestClient(create_app(cfg))
    assert c.get(PREFIX + "/risk", headers=auth(tok)).status_code == 200
    UserStore(path).revoke(info.token_id)  # another process: `guardian users revoke`
    assert c.get(PREFIX + "/risk", headers=auth(tok)).status_code == 401


# --- the approval queue -------------------------------------------------------------------
def test_approve_and_reject_reach_operates_state_store_and_the_audit(world):
    c, state = world["client"], world["state"]
    a1 = propose(state, "ONU-N1", "PON-N1")
    a2 = propose(state, "ONU-N2", "PON-N1")
    listed = c.get(PREFIX + "/decisions?state=proposed",
                   headers=auth(world["tokens"][("viewer", None)])).json()  # fmt: skip
    assert {a1, a2} <= {i["id"] for i in listed["items"]}
    tok = auth(world["tokens"][("operator", "north")])
    r = c.post(PREFIX + f"/decisions/{a1}/approve", json={"comment": "rx -29 dBm"}, headers=tok)
    assert r.status_code == 200 and r.json()["status"] == "approved"
    r = c.post(PREFIX + f"/decisions/{a2}/reject", json={"comment": "customer away"}, headers=tok)
    assert r.status_code == 200
    again = c.post(PREFIX + f"/decisions/{a1}/reject", json={"comment": "late"}, headers=tok)
    assert again.status_code == 409 and again.json()["current"] == "approved"
    store = StateStore(state)
    rows = {a["id"]: a for a in store.approvals()}
    store.close()
    assert (rows[a1]["status"], rows[a1]["decided_by"]) == ("approved", "api:operator-n")
    assert (rows[a2]["status"], rows[a2]["decided_by"]) == ("rejected", "api:operator-n")
    trail = [json.loads(line) for line in
             world["cfg"].audit_path().read_text().splitlines()]  # fmt: skip
    mine = [(t["action"], t["target"], t["status"], t["comment"]) for t in trail
            if t["target"] in (a1, a2)]  # fmt: skip
    assert mine == [("approved", a1, 200, "rx -29 dBm"), ("rejected", a2, 200, "customer away"),
                    ("rejected", a1, 409, "late")]  # fmt: skip
    assert all(t["user"] == "operator-n" for t in trail if t["target"] in (a1, a2))


def test_execute_queues_a_pending_action_and_refuses_a_duplicate(world):
    c, tok = world["client"], auth(world["tokens"][("operator", None)])
    body = {"action": "schedule_visit", "onu_id": "ONU-N2", "comment": "from the portal"}
    clear_pending(world["state"], "ONU-N2")
    r = c.post(PREFIX + "/decision/execute", json=body, headers=tok)
    assert r.status_code == 201, r.text
    aid = r.json()["id"]
    store = StateStore(world["state"])
    row = next(a for a in store.approvals("pending") if a["id"] == aid)
    store.close()
    assert (row["action"], row["target"], row["pon_id"]) == ("schedule_visit", "ONU-N2", "PON-N1")
    assert json.loads(row["rationale"])["requested_by"] == "api:operator-all"
    sim = c.post(PREFIX + "/decision/simulate", json=body, headers=tok).json()
    assert sim["blocked_by"] == "duplicate_of_pending" and not sim["would_queue"]
    dup = c.post(PREFIX + "/decision/execute", json=body, headers=tok)
    assert dup.status_code == 409 and dup.json()["rule"] == "duplicate_of_pending"
    store = StateStore(world["state"])
    store.decide(aid, "rejected", by="test")
    store.close()


def test_execute_is_rate_limited_and_read_only_in_run_mode(world, tmp_path):
    users = UserStore(tmp_path / "u.json")
    users.add("op", "operator")
    tok = auth(users.issue_token("op")[0])
    cfg = ApiConfig(run=world["run"], users=tmp_path / "u.json", execute_per_minute=2)
    c = TestClient(create_app(cfg, users))
    body = {"action": "reboot", "onu_id": "ONU-N1"}
    codes = [c.post(PREFIX + "/decision/execute", json=body, headers=tok).status_code
             for _ in range(3)]  # fmt: skip
    assert codes == [409, 409, 429]
    r = c.post(PREFIX + "/decision/execute", json=body, headers=tok)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    sim = c.post(PREFIX + "/decision/simulate", json=body, headers=tok)
    assert sim.status_code == 200 and sim.json()["blocked_by"] == "read_only"
    assert c.get(PREFIX + "/decisions", headers=tok).status_code == 409
    trail = ApiConfig(run=world["run"], users=tmp_path / "u.json").audit_path()
    assert [json.loads(x)["status"] for x in trail.read_text().splitlines()] == [409, 409, 429,
                                                                                 429]  # fmt: skip


def test_reads_do_not_hold_the_warehouse_against_a_writer(world):
    """After a request the warehouse file can be opened for writing at once."""
    c = world["client"]
    assert c.get(PREFIX + "/onus", headers=auth(world["tokens"][("viewer", None)])).status_code
    con = duckdb.connect(str(RunLayout(world["run"]).warehouse))  # raises if a lock is held
    con.execute("CREATE TABLE IF NOT EXISTS writer_probe (x INT)")
    con.close()


def test_no_cors_unless_configured(world, tmp_path):
    pre = {"Origin": "https://portal.example", "Access-Control-Request-Method": "GET"}
    resp = world["client"].options(PREFIX + "/risk", headers=pre)
    assert "access-control-allow-origin" not in resp.headers
    cfg = ApiConfig(run=world["run"], users=world["cfg"].users, state=world["state"],
                    cors_origins=["https://portal.example"])  # fmt: skip
    c = TestClient(create_app(cfg, world["users"]))
    resp = c.options(PREFIX + "/risk", headers=pre)
    assert resp.headers["access-control-allow-origin"] == "https://portal.example"


def test_run_mode_serves_a_simulated_and_ingested_run(tiny_run, tmp_path):
    """The API reads a real warehouse (the tiny run), not only the hand-made one."""
    users = UserStore(tmp_path / "u.json")
    users.add("ana", "viewer")
    tok = auth(users.issue_token("ana")[0])
    c = TestClient(create_app(ApiConfig(run=tiny_run, users=tmp_path / "u.json"), users))
    con = duckdb.connect(str(RunLayout(tiny_run).warehouse), read_only=True)
    n_onus, cust_id, region = con.execute(
        "SELECT (SELECT count(*) FROM onus), min(customer_id), min(region) FROM customers"
    ).fetchone()
    con.close()
    onus = c.get(PREFIX + "/onus?limit=1000", headers=tok).json()
    assert onus["total"] == n_onus and all(o["region"] for o in onus["items"])
    tl = c.get(PREFIX + f"/customers/{cust_id}/timeline", headers=tok)
    assert tl.status_code == 200, tl.text
    assert tl.json()["customer"]["customer_id"] == cust_id
    by_region = c.get(PREFIX + f"/customers?region={region}&limit=1000", headers=tok).json()
    assert by_region["total"] >= 1 and {x["region"] for x in by_region["items"]} == {region}
    for path in ("/risk?min=0", "/metrics/kpis", "/incidents/active"):
        assert c.get(PREFIX + path, headers=tok).status_code == 200, path


def test_login_exchanges_a_password_for_a_short_token_and_is_throttled(world, tmp_path):
    users = UserStore(tmp_path / "u.json")
    users.add("ana", "operator", ["north"], password="ana-long-password")
    cfg = ApiConfig(run=world["run"], users=tmp_path / "u.json", state=world["state"],
                    audit=tmp_path / "audit.jsonl")  # fmt: skip
    c = TestClient(create_app(cfg, users))
    ok = c.post(PREFIX + "/auth/login", json={"name": "ana", "password": "ana-long-password"})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["user"] == {"name": "ana", "role": "operator", "regions": ["north"],
                            "disabled": False}  # fmt: skip
    info = next(t for t in users.tokens("ana") if t.token_id == body["token_id"])
    assert info.expires_at - info.created_at == pytest.approx(8 * 3600)
    assert c.get(PREFIX + "/risk", headers=auth(body["token"])).status_code == 200
    wrong = c.post(PREFIX + "/auth/login", json={"name": "ana", "password": "nope-nope"})
    unknown = c.post(PREFIX + "/auth/login", json={"name": "bob", "password": "nope-nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]
    codes = [c.post(PREFIX + "/auth/login", json={"name": "ana", "password": "x"}).status_code
             for _ in range(5)]  # fmt: skip
    assert codes == [401, 401, 401, 401, 429]
    # throttled: even the right password waits
    again = c.post(PREFIX + "/auth/login", json={"name": "ana", "password": "ana-long-password"})
    assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1
    trail = [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [t["status"] for t in trail if t["action"] == "login"] == [200, 401, 401, 401, 401,
                                                                      401, 401, 429, 429]  # fmt: skip
    assert "ana-long-password" not in (tmp_path / "audit.jsonl").read_text()


def test_new_predictions_and_inventory_are_served_without_a_restart(tmp_path):
    run = tmp_path / "run"
    make_warehouse(run)
    users = UserStore(tmp_path / "u.json")
    users.add("ana", "viewer")
    tok = auth(users.issue_token("ana")[0])
    c = TestClient(create_app(ApiConfig(run=run, users=tmp_path / "u.json"), users))
    first = c.get(PREFIX + "/risk?min=0.8", headers=tok).json()["items"]
    assert [i["onu_id"] for i in first] == ["ONU-N1"]
    newer = pd.DataFrame({"ts": [T0 + pd.Timedelta("15min")], "onu_id": ["ONU-N2"],
                          "risk_2h": [0.3], "risk_6h": [0.6], "risk_24h": [0.95],
                          "anomaly_score": [0.5], "model_version": ["v2"],
                          "top_reasons": ["[]"]})  # fmt: skip
    newer.to_parquet(RunLayout(run).predictions / "part-1.parquet")
    con = duckdb.connect(str(RunLayout(run).warehouse))
    con.execute("UPDATE olts SET region = 'east' WHERE olt_id = 'OLT-N'")
    con.close()
    items = c.get(PREFIX + "/risk?min=0.8", headers=tok).json()["items"]
    assert [(i["onu_id"], i["risk"], i["region"]) for i in items] == [
        ("ONU-N2", 0.95, "east"), ("ONU-N1", 0.9, "east")]  # fmt: skip


def test_active_incidents_are_read_while_the_writer_holds_the_audit_file(world, tmp_path):
    state = tmp_path / "state"
    StateStore(state).close()
    users = UserStore(tmp_path / "u.json")
    users.add("ana", "viewer")
    tok = auth(users.issue_token("ana")[0])
    c = TestClient(create_app(ApiConfig(run=world["run"], users=tmp_path / "u.json",
                                        state=state), users))  # fmt: skip
    writer = AuditLog(state / "audit.duckdb", tag="h-")  # held open, as operate does
    try:
        iid = writer.new_incident_id()
        writer.record_incident(iid, T0, scope_type="pon", scope_key="PON-N1", start_at=T0)
        writer.flush()
        resp = c.get(PREFIX + "/incidents/active", headers=tok)
        assert resp.status_code == 200, resp.text
        assert [i["incident_id"] for i in resp.json()["items"]] == [iid]
        writer.record_incident(iid, T0 + pd.Timedelta("1h"), scope_type="pon",
                               scope_key="PON-N1", start_at=T0, end_at=T0 + pd.Timedelta("1h"))  # fmt: skip
        writer.flush()
        assert c.get(PREFIX + "/incidents/active", headers=tok).json()["items"] == []
        writer.record_incident(writer.new_incident_id(), T0, scope_type="pon",
                               scope_key="PON-S1", start_at=T0)  # fmt: skip
        writer.flush()  # the writer goes on writing after our reads
    finally:
        writer.close()
    con = duckdb.connect(str(state / "audit.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM incidents").fetchone()[0] == 3
    con.close()


def test_the_api_audit_file_is_started_again_when_its_folder_is_removed(tmp_path, caplog):
    # Before: every mutating call answered 500 (FileNotFoundError) after its effect,
    # and went unrecorded, once the state folder was removed under a running API.
    import logging
    import shutil

    from guardian_lib.api.trail import ApiTrail

    trail = ApiTrail(tmp_path / "state" / "api-audit.jsonl")
    trail.record(action="approve", status=200)
    shutil.rmtree(tmp_path / "state")
    with caplog.at_level(logging.WARNING, logger="guardian_lib.api.trail"):
        trail.record(action="reject", status=200)
    assert [r["action"] for r in trail.rows()] == ["reject"]
    assert (trail.path.stat().st_mode & 0o777) == 0o600
    assert "was missing" in caplog.text
