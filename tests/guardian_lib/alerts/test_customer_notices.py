"""Customer notices really sent: the autopilot's notify → outbox → SMS / webhook, once per
customer per incident even across restarts; opt-out, quiet hours, the resolution."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from types import SimpleNamespace
from urllib.parse import parse_qs

import pandas as pd
import pytest
import yaml

from guardian_lib.alerts.config import load_alerting
from guardian_lib.alerts.customers import CustomerNotifier
from guardian_lib.alerts.pipeline import AlertPipeline
from guardian_lib.decision import Decision, Snapshot
from guardian_lib.errors import ConfigError
from guardian_lib.operate.fleet import load_subscribers
from guardian_lib.operate.site import load_site

from .test_delivery import SECRET, Hook
from .test_providers import SID, Fake

NOON = pd.Timestamp("2026-03-02 15:00", tz="UTC")  # 12:00 in São Paulo
SUBS = (
    "onu_id,customer_id,pon_id,region,phone,lang,name,notices_opt_out\n"
    "A,C1,P1,Campinas,+5519911110001,pt-BR,Ana,\n"
    "B,C2,P1,Campinas,+5519911110002,en,Bob,no\n"
    "C,C3,P1,Campinas,+5519911110003,,Caio,sim\n"
    "D,C4,P1,Campinas,,,Dora,\n"
    "E,C5,P2,Campinas,+5519911110005,,Eva,\n"
)


def _serve(handler):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def server():
    """A fake Twilio (the request checker of test_providers)."""
    Fake.seen = []
    srv = _serve(Fake)
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def hook():
    """A webhook that checks the signature (test_delivery's)."""
    Hook.fail_first, Hook.received, Hook.bad_signatures = 0, [], 0
    srv = _serve(Hook)
    yield f"http://127.0.0.1:{srv.server_address[1]}/hook"
    srv.shutdown()
    srv.server_close()


def _config(tmp_path, receiver, **extra):
    cfg = {"rules": [{"name": "X", "source": "health"}], "route": {"receiver": "null"},
           "receivers": [receiver], "customer_notices": {"receiver": receiver["name"]},
           **extra}  # fmt: skip
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(cfg))
    return load_alerting(tmp_path / "alerts.yaml")


class _Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def _sms(base):
    return {"name": "customers-sms", "sms": {"account_sid": SID, "sender": "+5511900000000",
                                             "base_url": base, "token_env": "TWILIO_TOKEN"}}  # fmt: skip


def _texts():
    return [
        (parse_qs(b.decode())["To"][0], parse_qs(b.decode())["Body"][0]) for _, _, b in Fake.seen
    ]


def test_sms_notices_once_per_customer_per_incident_across_a_restart(tmp_path, server, monkeypatch):
    monkeypatch.setenv("TWILIO_TOKEN", "tw-token")
    cfg = _config(tmp_path, _sms(server))
    fleet = load_subscribers(_write(tmp_path)).table
    ap = SimpleNamespace(incidents={"INC1": {"members": ("A", "B", "C", "D")}}, cases={})
    clock = _Clock(NOON)

    def start():
        pipe = AlertPipeline(cfg, tmp_path / "state", clock=clock)
        n = CustomerNotifier(cfg.customer_notices, pipe.outbox, clock, channel="sms")
        n.bind(fleet, ap)
        return pipe, n

    pipe, n = start()
    assert [n.notify(o, "massive_outage", 4.0) for o in "ABCD"] == [True, True, True, False]
    assert n.counts == {"queued": 2, "duplicate": 0, "opted_out": 1, "no_phone": 1, "unknown": 0}
    assert n.notify("A", "massive_outage", 4.0)  # second decision: nothing more queued
    assert pipe.cycle(NOON, {}).delivery.delivered == 2
    sent = dict(_texts())
    assert set(sent) == {"+5519911110001", "+5519911110002"}
    assert sent["+5519911110001"].startswith("Olá, Ana. Identificamos uma falha")
    assert "02/03/2026 16:00" in sent["+5519911110001"]  # ETA 4 h, São Paulo time
    assert sent["+5519911110002"].startswith("Hello Bob.") and "INC1" in sent["+5519911110002"]
    pipe.close()

    pipe, n = start()  # restart: the same decisions again send nothing
    assert all(n.notify(o, "massive_outage", 4.0) for o in "AB")
    assert n.counts["queued"] == 0 and n.counts["duplicate"] == 2
    assert n.incidents_closed({"INC1"}) == 0  # still open
    clock.t = NOON + pd.Timedelta(hours=2)
    ap.incidents = {}
    assert n.incidents_closed(set()) == 2  # only those told of the opening
    assert n.incidents_closed(set()) == 0
    assert pipe.cycle(clock.t, {}).delivery.delivered == 2
    pipe.close()
    texts = _texts()
    assert len(texts) == 4
    assert sorted(t for t, _ in texts[2:]) == ["+5519911110001", "+5519911110002"]
    assert any("foi resolvida em 02/03/2026 14:00" in b for _, b in texts[2:])


def test_quiet_hours_hold_the_notice_in_the_outbox(tmp_path, server, monkeypatch):
    monkeypatch.setenv("TWILIO_TOKEN", "tw-token")
    cfg = _config(tmp_path, _sms(server))
    fleet = load_subscribers(_write(tmp_path)).table
    night = pd.Timestamp("2026-03-03 02:30", tz="UTC")  # 23:30 in São Paulo
    clock = _Clock(night)
    pipe = AlertPipeline(cfg, tmp_path / "state", clock=clock)
    n = CustomerNotifier(cfg.customer_notices, pipe.outbox, clock, channel="sms")
    n.bind(fleet, SimpleNamespace(incidents={}, cases={"E": {"case_id": "CASE7"}}))
    try:
        assert n.notify("E", "individual_problem", 6.0)
        assert pipe.cycle(night, {}).delivery.delivered == 0
        (msg,) = pipe.outbox.messages("pending")
        assert msg.payload["send_at"] == "2026-03-03T10:00:00+00:00" and msg.payload["deferred"]
        clock.t = pd.Timestamp("2026-03-03 10:01", tz="UTC")
        assert pipe.cycle(clock.t, {}).delivery.delivered == 1
    finally:
        pipe.close()
    ((to, body),) = _texts()
    assert to == "+5519911110005" and "instabilidade na sua conexão" in body and "CASE7" in body


def test_a_notice_receiver_must_be_sms_whatsapp_or_webhook(tmp_path):
    email = {"name": "mail", "email": {"host": "127.0.0.1", "sender": "g@isp.example",
                                       "to": ["noc@isp.example"]}}  # fmt: skip
    with pytest.raises(ConfigError, match="customer_notices.receiver.*'mail'"):
        _config(tmp_path, email)
    with pytest.raises(ConfigError, match="route.receiver.*sms.to lists no number"):
        cfg = {"rules": [{"name": "X", "source": "health"}],
               "route": {"receiver": "customers-sms"}, "receivers": [_sms("http://x")]}  # fmt: skip
        (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
        load_alerting(tmp_path / "bad.yaml")


def _write(tmp_path):
    (tmp_path / "subs.csv").write_text(SUBS)
    return tmp_path / "subs.csv"


class _Notify:
    name, version = "stub", "1"

    def decide(self, snap):
        return [Decision(ts=snap.ts, subject="pon:P1", action="notify", targets=("A", "B"),
                         params={"template": "massive_outage", "until_h": 12.0})]  # fmt: skip


def test_operate_sends_the_autopilots_notices_once_through_a_signed_webhook(
    tmp_path, hook, monkeypatch
):
    from guardian_lib.operate.service import Operator

    monkeypatch.setenv("HOOK_KEY", SECRET.decode())
    _config(tmp_path, {"name": "crm", "webhook": {"url": hook, "token_env": "HOOK_KEY"}})
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    _write(tmp_path)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv", "alerts": "alerts.yaml"}))  # fmt: skip
    empty = pd.DataFrame(columns=["entity_id", "entity_type", "type"])
    polled = pd.DataFrame({"onu_id": list("ABCDE"), "online": [False] * 4 + [True]})
    figures = []
    for _ in range(2):  # the second run is a restart on the same state folder
        op = Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state", mode="execute")
        try:
            op._build(load_subscribers(tmp_path / "subs.csv"))
            op.autopilot.incidents["INC9"] = {"scope_type": "pon", "scope_key": "P1",
                                              "members": ("A", "B", "C", "D")}  # fmt: skip
            op.autopilot.policy = _Notify()
            op.autopilot.scorer = lambda s: pd.DataFrame({"onu_id": list(s.status.index)})
            op.context.ts = NOON.isoformat()
            status = op.fleet.table.set_index("onu_id").assign(
                online=True, service_up=True, degraded=False)  # fmt: skip
            op.autopilot.step(Snapshot(ts=NOON, status=status))
            figures.append(op._alerts_cycle(NOON, polled, empty, {}))
            notes = op.audit.frame("notifications")
        finally:
            op.close()
    assert figures[0]["delivered"] == 2 and figures[1]["delivered"] == 0
    assert figures[1]["notices"]["duplicate"] == 2
    assert Hook.bad_signatures == 0 and len(Hook.received) == 2
    bodies = {b["customer_id"]: b for _, b in Hook.received}
    assert set(bodies) == {"C1", "C2"} and {b["incident_id"] for b in bodies.values()} == {"INC9"}
    assert bodies["C1"]["kind"] == "customer_notice" and bodies["C1"]["to"] == "+5519911110001"
    assert bodies["C1"]["text"].startswith("Olá, Ana") and bodies["C2"]["lang"] == "en"
    assert [k for k, _ in Hook.received] == [b["idempotencyKey"] for _, b in Hook.received]
    # The audit keeps each run's decisions (two notify rows a run); the outbox sent once.
    assert len(notes) == 4 and set(notes["status"]) == {"done"}
