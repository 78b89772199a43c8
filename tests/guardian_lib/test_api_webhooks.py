"""Durable webhook deliveries: a failed delivery is kept, retried with back-off across a
restart of the dispatcher, listed by ``GET /webhooks/deliveries``, and marked dead after
its last try. The receiver is a real HTTP server on 127.0.0.1; time is moved by a clock
the dispatcher is given (never slept through)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import api_world
import pandas as pd
import pytest
from api_world import T0, auth

from guardian_lib.api.app import PREFIX
from guardian_lib.api.webhooks import WebhookDispatcher, verify_signature


class Clock:
    def __init__(self) -> None:
        self.now = pd.Timestamp("2026-12-04T08:00:00Z")

    def __call__(self) -> pd.Timestamp:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += pd.Timedelta(seconds=seconds)


@pytest.fixture
def receiver():
    """A webhook receiver answering ``state['status']`` and recording every request."""
    state: dict = {"status": 503, "got": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state["got"].append((dict(self.headers), body))
            self.send_response(state["status"])
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def api(tmp_path):
    w = api_world.api_client(tmp_path, [("boss", "admin", ()), ("op", "operator", ())],
                             webhook_every_s=0, webhook_allow_local=True)  # fmt: skip
    return {**w, "admin": auth(w["tokens"]["boss"]), "op": auth(w["tokens"]["op"])}


def _dispatcher(app, clock: Clock, **kw) -> WebhookDispatcher:
    base = app.state.webhooks
    return WebhookDispatcher(base.store, base.approvals, base.incidents, clock=clock,
                             allow_local=True, **kw)  # fmt: skip


def test_failed_delivery_is_kept_and_retried_after_a_restart(api, receiver):
    c, admin = api["client"], api["admin"]
    sub = c.post(PREFIX + "/webhooks", json={"url": receiver["url"], "events": ["decision"]},
                 headers=admin).json()  # fmt: skip
    clock = Clock()
    first = _dispatcher(api["app"], clock)
    assert first.poll_once() == 0  # baseline
    aid = api_world.propose(api["state"], "ONU-N1", "PON-N1")
    assert first.poll_once() == 0  # the receiver answers 503
    assert len(receiver["got"]) == 1
    pending = c.get(PREFIX + "/webhooks/deliveries?status=pending", headers=admin).json()["items"]
    assert len(pending) == 1
    d = pending[0]
    assert (d["event"], d["webhook_id"], d["attempts"]) == ("decision.proposed", sub["id"], 1)
    assert "503" in d["last_error"]
    assert pd.Timestamp(d["next_attempt_at"]) == clock.now + pd.Timedelta(seconds=30)
    clock.advance(10)
    assert first.poll_once() == 0 and len(receiver["got"]) == 1  # backing off: no try
    del first  # the API restarts: a new dispatcher, the same files
    receiver["status"] = 204
    clock.advance(25)
    again = _dispatcher(api["app"], clock)
    assert again.poll_once() == 1
    assert len(receiver["got"]) == 2
    (h1, b1), (h2, b2) = receiver["got"]
    assert b1 == b2 and h1["X-Guardian-Delivery"] == h2["X-Guardian-Delivery"] == d["delivery_id"]
    assert verify_signature(sub["secret"], h2["X-Guardian-Timestamp"], b2,
                            h2["X-Guardian-Signature"])  # fmt: skip
    assert json.loads(b2)["data"]["id"] == aid
    done = c.get(PREFIX + "/webhooks/deliveries", headers=admin).json()["items"]
    assert [(x["status"], x["attempts"]) for x in done] == [("delivered", 2)]
    assert again.poll_once() == 0 and len(receiver["got"]) == 2  # never sent twice


def test_delivery_dies_after_its_last_try_and_only_admins_list(api, receiver):
    c, admin = api["client"], api["admin"]
    c.post(PREFIX + "/webhooks", json={"url": receiver["url"], "events": ["decision"]},
           headers=admin)  # fmt: skip
    clock = Clock()
    d = _dispatcher(api["app"], clock, max_attempts=3, backoff_s=60.0)
    d.poll_once()
    api_world.propose(api["state"], "ONU-S1", "PON-S1")
    waits = []
    for _ in range(5):
        d.poll_once()
        rows = d.deliveries()
        if rows[0]["status"] == "dead":
            break
        waits.append((pd.Timestamp(rows[0]["next_attempt_at"]) - clock.now).total_seconds())
        clock.advance(3600)
    assert waits == [60.0, 120.0]  # doubling back-off
    assert len(receiver["got"]) == 3 and d.dead == 1
    dead = c.get(PREFIX + "/webhooks/deliveries?status=dead", headers=admin).json()["items"]
    assert len(dead) == 1 and dead[0]["attempts"] == 3 and dead[0]["next_attempt_at"] is None
    assert c.get(PREFIX + "/webhooks/deliveries", headers=api["op"]).status_code == 403
    bad = c.get(PREFIX + "/webhooks/deliveries?status=lost", headers=admin)
    assert bad.status_code == 422 and bad.json()["field"] == "query.status"


# --- delivered at once ----------------------------------------------------------------------
def test_webhooks_deliver_signed_decision_events_to_a_real_receiver(api, receiver):
    from guardian_lib.api.webhooks import sign

    receiver["status"] = 204
    got, url = receiver["got"], receiver["url"]
    c, admin, op, state = api["client"], api["admin"], api["op"], api["state"]
    denied = c.post(PREFIX + "/webhooks", json={"url": url, "events": ["decision"]}, headers=op)
    assert denied.status_code == 403
    bad = c.post(PREFIX + "/webhooks", json={"url": url, "events": ["weather"]}, headers=admin)
    assert bad.status_code == 422 and bad.json()["field"].startswith("body.events")
    sub = c.post(PREFIX + "/webhooks", json={"url": url, "events": ["decision"]},
                 headers=admin).json()  # fmt: skip
    assert "secret" not in json.dumps(c.get(PREFIX + "/webhooks", headers=admin).json())
    dispatcher = api["app"].state.webhooks
    assert dispatcher.poll_once() == 0  # the baseline: history is not replayed
    aid = api_world.propose(state, "ONU-N1", "PON-N1")
    assert dispatcher.poll_once() == 1
    r = c.post(PREFIX + f"/decisions/{aid}/approve", json={"comment": "go"}, headers=op)
    assert r.status_code == 200
    assert dispatcher.poll_once() == 1
    assert dispatcher.poll_once() == 0
    kinds = [h["X-Guardian-Event"] for h, _ in got]
    assert kinds == ["decision.proposed", "decision.approved"]
    for headers, body in got:
        assert verify_signature(sub["secret"], headers["X-Guardian-Timestamp"], body,
                                headers["X-Guardian-Signature"])  # fmt: skip
        assert not verify_signature(sub["secret"], headers["X-Guardian-Timestamp"],
                                    body + b" ", headers["X-Guardian-Signature"])  # fmt: skip
        assert not verify_signature("other-secret", headers["X-Guardian-Timestamp"], body,
                                    headers["X-Guardian-Signature"])  # fmt: skip
    last = json.loads(got[-1][1])
    assert last["data"]["id"] == aid and last["data"]["decided_by"] == "api:op"
    old = str(int(got[0][0]["X-Guardian-Timestamp"]) - 3600)
    assert not verify_signature(sub["secret"], old, got[0][1], sign(sub["secret"], old, got[0][1]))
    assert c.delete(PREFIX + f"/webhooks/{sub['id']}", headers=admin).status_code == 200
    api_world.propose(state, "ONU-N2", "PON-N1")
    assert dispatcher.poll_once() == 0  # no subscription left


def test_webhooks_deliver_incident_opened_and_closed(api):
    from guardian_lib.audit import AuditLog

    state = api["state"]
    sent: list[tuple[str, dict]] = []
    base: WebhookDispatcher = api["app"].state.webhooks
    base.store.add("http://127.0.0.1:9/hook", ["incident"], "boss")
    d = WebhookDispatcher(base.store, base.approvals, base.incidents,
                          post=lambda url, body, h: sent.append((h["X-Guardian-Event"],
                                                                 json.loads(body))) or 200)  # fmt: skip
    assert d.poll_once() == 0
    audit = AuditLog(state / "audit.duckdb", tag="w-")
    iid = audit.new_incident_id()
    audit.record_incident(iid, T0, scope_type="pon", scope_key="PON-S1", start_at=T0,
                          severity="major", cause="fiber", affected_customers=1)  # fmt: skip
    audit.close()
    assert d.poll_once() == 1
    audit = AuditLog(state / "audit.duckdb", tag="w-")
    audit.record_incident(iid, T0 + pd.Timedelta("1h"), scope_type="pon", scope_key="PON-S1",
                          start_at=T0, end_at=T0 + pd.Timedelta("1h"))  # fmt: skip
    audit.close()
    assert d.poll_once() == 1
    assert [(k, b["data"]["incident_id"]) for k, b in sent] == [("incident.opened", iid),
                                                               ("incident.closed", iid)]  # fmt: skip
