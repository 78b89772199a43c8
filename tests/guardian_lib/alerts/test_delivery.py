"""Real delivery: aiosmtpd and an HTTP server on 127.0.0.1, the SQLite outbox across restarts."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from local_servers import free_port

from guardian_lib.alerts.config import EmailSettings, WebhookSettings, load_alerting
from guardian_lib.alerts.dispatch import Dispatcher
from guardian_lib.alerts.outbox import Outbox
from guardian_lib.alerts.receivers import (
    SIGNATURE_HEADER,
    EmailReceiver,
    WebhookReceiver,
    verify_signature,
)
from guardian_lib.alerts.rules import RuleEngine

SECRET = b"s3cret-for-tests"
T0 = pd.Timestamp("2026-03-02 12:00", tz="UTC")


class Hook(BaseHTTPRequestHandler):
    fail_first = 0
    received: list = []
    bad_signatures = 0

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Hook.fail_first > 0:
            Hook.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        if not verify_signature(SECRET, body, self.headers.get(SIGNATURE_HEADER)):
            Hook.bad_signatures += 1
            self.send_response(401)
            self.end_headers()
            return
        Hook.received.append((self.headers["Idempotency-Key"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def hook():
    Hook.fail_first, Hook.received, Hook.bad_signatures = 0, [], 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook", Hook
    srv.shutdown()
    srv.server_close()


RULES = """
rules:
  - name: MassiveIncident
    source: incidents
    when: [{field: scope_type, value: pon}]
    severity: critical
    summary: "PON {scope_key}: {affected_customers} customers affected"
  - name: OnuLos
    source: events
    when: [{field: type, value: LOS}]
inhibit_rules:
  - source_matchers: {alertname: MassiveIncident}
    target_matchers: {level: onu}
    equal: [pon]
route: {receiver: mail, group_by: [alertname, pon], group_wait: 0s}
receivers:
  - name: mail
    email: {host: 127.0.0.1, port: PORT, sender: guardian@isp.example, to: [noc@isp.example]}
"""


def test_one_email_per_massive_incident_with_the_affected_count(tmp_path, smtp):
    server, inbox = smtp
    port = server.port
    p = tmp_path / "rules.yaml"
    p.write_text(RULES.replace("PORT", str(port)))
    cfg = load_alerting(p)
    eng, disp = RuleEngine(cfg), Dispatcher(cfg)
    outbox = Outbox(tmp_path / "outbox.db", clock=lambda: T0)
    rx = {"mail": EmailReceiver(cfg.receiver("mail").email)}
    incidents = [
        {
            "scope_type": "pon",
            "scope_key": k,
            "pon": k,
            "level": "incident",
            "affected_customers": n,
        }
        for k, n in (("P1", 32), ("P2", 17))
    ]
    onus = [{"type": "LOS", "onu": f"N{i}", "pon": "P1" if i % 2 else "P2", "level": "onu"}
            for i in range(40)]  # fmt: skip
    for m in range(0, 30, 5):
        now = T0 + pd.Timedelta(minutes=m)
        for n in disp.step(now, eng.evaluate(now, {"incidents": incidents, "events": onus})):
            outbox.enqueue(n.key, n.receiver, n.to_dict())
        outbox.deliver(rx)
    assert len(inbox.messages) == 2
    subjects = sorted(m["Subject"] for m in inbox.messages)
    assert "17 customers affected" in subjects[0] or "17 customers affected" in subjects[1]
    assert any("32 customers affected" in s for s in subjects)
    assert all("OnuLos" not in m.get_payload() for m in inbox.messages)
    assert {m["To"] for m in inbox.messages} == {"noc@isp.example"}


def test_webhook_is_signed_retried_and_carries_the_idempotency_key(hook):
    url, h = hook
    h.fail_first = 2
    waits: list[float] = []
    rx = WebhookReceiver(WebhookSettings(url=url, retries=3, backoff_s=0.25), SECRET, waits.append)
    payload = {"status": "firing", "alerts": [{"labels": {"alertname": "X"}}]}
    assert rx.send("key-1", payload) == "204"
    assert waits == [0.25, 0.5]
    assert h.received == [("key-1", payload)] and h.bad_signatures == 0
    # a wrong key is refused by the server, and a 401 is not retried
    wrong = WebhookReceiver(WebhookSettings(url=url, retries=3), b"other", waits.append)
    with pytest.raises(RuntimeError, match="HTTP 401"):
        wrong.send("key-2", payload)
    assert h.bad_signatures == 1 and len(waits) == 2


def test_outbox_survives_a_restart_and_a_dead_receiver_blocks_no_one(tmp_path, smtp, hook):
    server, inbox = smtp
    port = server.port
    url, h = hook
    now = [T0]
    db = tmp_path / "outbox.db"
    dead = WebhookReceiver(
        WebhookSettings(url=f"http://127.0.0.1:{free_port()}/", retries=0), SECRET, lambda s: None
    )
    mail = EmailReceiver(EmailSettings(host="127.0.0.1", port=port, sender="g@x.example",
                                       to=["noc@x.example"]))  # fmt: skip
    box = Outbox(db, backoff_s=60, clock=lambda: now[0])
    for i in range(3):
        assert box.enqueue(f"m{i}", "mail", {"alerts": [], "timestamp": str(i)})
        assert box.enqueue(f"w{i}", "hook", {"n": i})
    assert not box.enqueue("m0", "mail", {"again": True})  # same key: ignored
    rep = box.deliver({"mail": mail, "hook": dead})
    assert (rep.delivered, rep.failed) == (3, 3) and len(inbox.messages) == 3
    box.close()  # "restart"
    box = Outbox(db, backoff_s=60, clock=lambda: now[0])
    live = WebhookReceiver(WebhookSettings(url=url, retries=0), SECRET, lambda s: None)
    assert box.deliver({"mail": mail, "hook": live}).delivered == 0  # backing off
    now[0] = T0 + pd.Timedelta(minutes=2)
    rep = box.deliver({"mail": mail, "hook": live})
    assert rep.delivered == 3 and len(inbox.messages) == 3  # delivered mails not resent
    assert sorted(k for k, _ in h.received) == ["w0", "w1", "w2"]
    assert {m.status for m in box.messages()} == {"delivered"}
    tries = box.attempts()
    assert sum(not t["ok"] for t in tries) == 3 and sum(t["ok"] for t in tries) == 6
    assert all("ConnectError" in t["error"] for t in tries if not t["ok"])


CHILD = """
import sys
from guardian_lib.alerts.config import WebhookSettings
from guardian_lib.alerts.outbox import Outbox
from guardian_lib.alerts.receivers import WebhookReceiver
box = Outbox(sys.argv[1])
for i in range(20):
    box.enqueue(f"k{i:02d}", "hook", {"n": i})
rx = WebhookReceiver(WebhookSettings(url=sys.argv[2], retries=0), sys.argv[3].encode())
box.deliver({"hook": rx})
"""


class SlowHook(Hook):
    def do_POST(self):  # noqa: N802 - http.server API
        import time

        time.sleep(0.05)  # so that the kill lands in the middle of the batch
        super().do_POST()


def test_outbox_survives_kill_9_resending_only_what_was_not_delivered(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    Hook.fail_first, Hook.received, Hook.bad_signatures = 0, [], 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), SlowHook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    db = tmp_path / "outbox.db"
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), url, SECRET.decode()])
        deadline = time.monotonic() + 60
        while len(Hook.received) < 5 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
        before = [k for k, _ in Hook.received]
        assert 5 <= len(before) < 20  # killed mid-batch
        box = Outbox(db)
        pending = {m.key for m in box.messages("pending")}
        assert not pending & set(before[:-1])  # committed deliveries stay delivered
        rx = WebhookReceiver(WebhookSettings(url=url, retries=0), SECRET)
        box.deliver({"hook": rx})
        keys = [k for k, _ in Hook.received]
        assert sorted(set(keys)) == [f"k{i:02d}" for i in range(20)]
        assert len(keys) - 20 <= 1  # at least once: only an in-flight message may repeat
        assert {m.status for m in box.messages()} == {"delivered"}
    finally:
        srv.shutdown()
        srv.server_close()


def test_pipeline_queues_then_delivers_and_a_restart_resends_nothing(tmp_path, smtp):
    from guardian_lib.alerts.pipeline import AlertPipeline

    server, inbox = smtp
    port = server.port
    p = tmp_path / "rules.yaml"
    p.write_text(RULES.replace("PORT", str(port)))
    cfg = load_alerting(p)
    inc = {"scope_type": "pon", "scope_key": "P1", "pon": "P1", "level": "incident",
           "affected_customers": 12}  # fmt: skip
    pipe = AlertPipeline(cfg, tmp_path / "state", clock=lambda: T0)
    rep = pipe.cycle(T0, {"incidents": [inc]})
    assert (rep.alerts, rep.queued, rep.delivery.delivered) == (1, 1, 1)
    pipe.close()
    again = AlertPipeline(cfg, tmp_path / "state", clock=lambda: T0)
    assert again.outbox.deliver(again.receivers).delivered == 0
    again.close()
    assert len(inbox.messages) == 1 and "12 customers affected" in inbox.messages[0]["Subject"]
