"""Provider requests exactly as the APIs expect, checked by a local fake server."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
import yaml

from guardian_lib.alerts.config import load_alerting
from guardian_lib.alerts.receivers import build_receivers
from guardian_lib.errors import ConfigError

SID = "AC" + "0123456789abcdef" * 2
PAYLOAD = {
    "status": "firing", "groupLabels": {"pon": "P1"}, "timestamp": "2026-01-01T00:00:00+00:00",
    "alerts": [
        {"status": "firing", "labels": {"alertname": "MassiveIncident", "pon": "P1"},
         "annotations": {"summary": "PON P1: 30 customers affected"},
         "startsAt": "2026-01-01T00:00:00+00:00", "endsAt": None},
        {"status": "resolved", "labels": {"alertname": "OltUnreachable", "olt": "O1"},
         "annotations": {"summary": "OLT O1 unreachable"},
         "startsAt": "2026-01-01T00:00:00+00:00", "endsAt": "2026-01-01T01:00:00+00:00"},
    ],
}  # fmt: skip


class Fake(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Fake.seen.append((self.path, dict(self.headers), body))
        self.send_response(201 if "Messages.json" in self.path else 200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *a):
        pass


@pytest.fixture
def server():
    Fake.seen = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Fake)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _receivers(tmp_path, base, monkeypatch):
    monkeypatch.setenv("TWILIO_TOKEN", "tw-token")
    monkeypatch.setenv("WA_TOKEN", "wa-token")
    cfg = {
        "rules": [{"name": "X", "source": "health"}],
        "route": {"receiver": "am"},
        "receivers": [
            {"name": "am", "alertmanager": {"url": base}},
            {"name": "sms", "sms": {"account_sid": SID, "sender": "+5511900000000",
                                    "to": ["+5519911112222"], "base_url": base,
                                    "token_env": "TWILIO_TOKEN"}},
            {"name": "wa", "whatsapp": {"phone_number_id": "1234567890", "to": ["+5519933334444"],
                                        "base_url": base, "token_env": "WA_TOKEN"}},
        ],
    }  # fmt: skip
    p = tmp_path / "rules.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return build_receivers(load_alerting(p))


def test_alertmanager_v2_twilio_and_whatsapp_requests(tmp_path, server, monkeypatch):
    rx = _receivers(tmp_path, server, monkeypatch)
    assert rx["am"].send("k", PAYLOAD) == "200"
    assert rx["sms"].send("k", PAYLOAD) == "201"
    assert rx["wa"].send("k", PAYLOAD) == "200"
    (am_path, am_h, am_b), (sms_path, sms_h, sms_b), (wa_path, wa_h, wa_b) = Fake.seen
    assert am_path == "/api/v2/alerts" and am_h["Content-Type"] == "application/json"
    alerts = json.loads(am_b)
    assert [a["labels"]["alertname"] for a in alerts] == ["MassiveIncident", "OltUnreachable"]
    assert "endsAt" not in alerts[0] and alerts[1]["endsAt"] == "2026-01-01T01:00:00+00:00"
    assert sms_path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert sms_h["Content-Type"] == "application/x-www-form-urlencoded"
    assert base64.b64decode(sms_h["Authorization"].split()[1]).decode() == f"{SID}:tw-token"
    form = parse_qs(sms_b.decode())
    assert form["To"] == ["+5519911112222"] and form["From"] == ["+5511900000000"]
    assert "30 customers affected" in form["Body"][0]
    assert wa_path == "/v21.0/1234567890/messages" and wa_h["Authorization"] == "Bearer wa-token"
    msg = json.loads(wa_b)
    assert msg["messaging_product"] == "whatsapp" and msg["to"] == "5519933334444"
    assert msg["type"] == "text" and "MassiveIncident" in msg["text"]["body"]


def test_a_provider_error_raises_and_a_missing_secret_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("TWILIO_TOKEN", raising=False)
    cfg = {"rules": [{"name": "X", "source": "health"}], "route": {"receiver": "sms"},
           "receivers": [{"name": "sms", "sms": {"account_sid": SID, "sender": "+5511900000000",
                                                 "to": ["+5519911112222"],
                                                 "token_env": "TWILIO_TOKEN"}}]}  # fmt: skip
    p = tmp_path / "r.yaml"
    p.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="receivers.sms.sms.token_env"):
        build_receivers(load_alerting(p))
    bad = {**cfg, "receivers": [{"name": "sms", "sms": {"account_sid": "nope", "sender": "1",
                                                        "to": []}}]}  # fmt: skip
    p.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="receivers\\[0\\].sms.account_sid"):
        load_alerting(p)
