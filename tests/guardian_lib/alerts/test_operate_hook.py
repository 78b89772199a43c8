"""guardian operate with an alerting file: each cycle's alerts reach a real local webhook."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pandas as pd
import yaml

from guardian_lib.operate.fleet import load_subscribers
from guardian_lib.operate.site import load_site

from .test_delivery import SECRET, Hook


def test_operate_cycle_alerts_one_webhook_per_incident(tmp_path, monkeypatch):
    from guardian_lib.operate.service import Operator

    Hook.fail_first, Hook.received, Hook.bad_signatures = 0, [], 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    monkeypatch.setenv("HOOK_KEY", SECRET.decode())
    rules = {
        "rules": [
            {"name": "MassiveIncident", "source": "incidents", "severity": "critical",
             "summary": "{scope_key}: {affected_customers} customers affected"},
            {"name": "OnuLos", "source": "events", "when": [{"field": "type", "value": "LOS"}]},
        ],
        "inhibit_rules": [{"source_matchers": {"alertname": "MassiveIncident"},
                           "target_matchers": {"level": "onu"}, "equal": ["pon"]}],
        "route": {"receiver": "hook", "group_by": ["alertname", "pon"], "group_wait": "0s"},
        "receivers": [{"name": "hook", "webhook": {
            "url": f"http://127.0.0.1:{srv.server_address[1]}/", "token_env": "HOOK_KEY"}}],
    }  # fmt: skip
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "subs.csv").write_text(
        "onu_id,customer_id,pon_id,region\nA,C1,P1,Campinas\nB,C2,P1,Campinas\nC,C3,P2,Campinas\n"
    )
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv", "alerts": "alerts.yaml"}))  # fmt: skip
    op = Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state")
    try:
        op._build(load_subscribers(tmp_path / "subs.csv"))
        op.autopilot.incidents["INC1"] = {"scope_type": "pon", "scope_key": "P1",
                                          "cause": "MASSIVE_OUTAGE", "affected": 2}  # fmt: skip
        polled = pd.DataFrame({"onu_id": ["A", "B", "C"], "online": [False, False, True]})
        events = pd.DataFrame({"entity_id": ["A", "B"], "entity_type": "onu", "type": "LOS"})
        t0 = pd.Timestamp("2026-01-01T00:00:00Z")
        first = op._alerts_cycle(t0, polled, events, {})
        again = op._alerts_cycle(t0 + pd.Timedelta(minutes=5), polled, events, {})
    finally:
        op.close()
        srv.shutdown()
        srv.server_close()
    assert first["delivered"] == 1 and again["queued"] == 0
    assert len(Hook.received) == 1 and Hook.bad_signatures == 0
    (body,) = [b for _, b in Hook.received]
    assert [a["labels"]["alertname"] for a in body["alerts"]] == ["MassiveIncident"]
    assert body["alerts"][0]["annotations"]["summary"] == "P1: 2 customers affected"
