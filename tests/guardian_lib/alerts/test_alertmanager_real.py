"""Forwarding to a real Prometheus Alertmanager (Debian's ``prometheus-alertmanager``).

The fixture starts Alertmanager on 127.0.0.1 with a temporary config and storage, no
clustering, and a webhook receiver pointing at a local HTTP server. The pipeline's
``alertmanager`` receiver posts the alerts (``POST /api/v2/alerts``); the test reads them
back from ``GET /api/v2/alerts`` and checks that Alertmanager grouped them into one
notification to its webhook, then delivered the resolution. ``make system`` (run by
``make test``) installs the package.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from local_servers import serve

from guardian_lib.alerts.config import load_alerting
from guardian_lib.alerts.pipeline import AlertPipeline

BINARY = "/usr/bin/prometheus-alertmanager"


def _until(check, timeout_s: float = 20.0, every_s: float = 0.1):
    """Poll ``check()`` until it returns something truthy (bounded)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(every_s)
    raise AssertionError(f"not reached within {timeout_s} s: {check.__doc__ or check}")


class Hook(BaseHTTPRequestHandler):
    """Alertmanager's webhook notifications, as received."""

    received: list = []

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


@pytest.fixture
def alertmanager(tmp_path):
    binary = shutil.which("prometheus-alertmanager") or BINARY
    if not Path(binary).exists():
        pytest.fail(
            "prometheus-alertmanager is not installed: `make system` "
            "(apt-get install prometheus-alertmanager)"
        )
    Hook.received = []
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    cfg = {
        "route": {"receiver": "hook", "group_by": ["alertname", "pon"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "hook", "webhook_configs": [
            {"url": f"http://127.0.0.1:{hook.server_address[1]}/hook", "send_resolved": True}]}],
    }  # fmt: skip
    (tmp_path / "am.yml").write_text(yaml.safe_dump(cfg))

    def cmd(port: int) -> list[str]:
        return [binary, f"--config.file={tmp_path / 'am.yml'}",
                f"--storage.path={tmp_path / 'am'}", f"--web.listen-address=127.0.0.1:{port}",
                "--cluster.listen-address=", "--log.level=warn"]  # fmt: skip

    try:
        with serve(cmd, tmp_path / "am.log") as am:
            am.wait_until_answers("/-/ready", timeout_s=20)
            yield am.url
    finally:
        hook.shutdown()
        hook.server_close()


def test_forwarded_alerts_reach_alertmanager_which_groups_and_notifies(alertmanager, tmp_path):
    rules = {
        "rules": [{"name": "MassiveIncident", "source": "incidents", "severity": "critical",
                   "summary": "{scope_key}: {affected_customers} customers affected"}],
        # Our side sends one message per incident; Alertmanager groups them per PON.
        "route": {"receiver": "am", "group_by": ["alertname", "scope_key"], "group_wait": "0s",
                  "group_interval": "0s"},
        "receivers": [{"name": "am", "alertmanager": {"url": alertmanager}}],
    }  # fmt: skip
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    pipe = AlertPipeline(load_alerting(tmp_path / "rules.yaml"), tmp_path / "state")
    incidents = [
        {"incident_id": f"INC{i}", "scope_type": "box", "scope_key": f"B{i}", "box": f"B{i}",
         "pon": "P1", "olt": "OLT-1", "level": "incident", "affected_customers": 8 + i}
        for i in (1, 2)
    ]  # fmt: skip
    now = pd.Timestamp.now(tz="UTC").floor("s")
    try:
        first = pipe.cycle(now, {"incidents": incidents})
        assert (first.queued, first.delivery.delivered) == (2, 2)

        def stored():
            """both alerts listed by GET /api/v2/alerts"""
            got = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=2.0).json()
            return got if len(got) == 2 else None

        listed = _until(stored, 5.0)
        assert {a["labels"]["scope_key"] for a in listed} == {"B1", "B2"}
        assert all(a["status"]["state"] == "active" for a in listed)
        assert {a["annotations"]["summary"] for a in listed} == {
            "B1: 9 customers affected", "B2: 10 customers affected"}  # fmt: skip

        def firing():
            """Alertmanager's webhook got the firing group"""
            return [n for n in Hook.received if n["status"] == "firing"]

        (note,) = _until(firing)  # one notification for the two alerts (same PON)
        assert note["groupLabels"] == {"alertname": "MassiveIncident", "pon": "P1"}
        assert sorted(a["labels"]["scope_key"] for a in note["alerts"]) == ["B1", "B2"]

        later = now + pd.Timedelta(seconds=1)
        second = pipe.cycle(later, {"incidents": []})  # both incidents closed
        assert second.delivery.delivered == 2

        def resolved():
            """Alertmanager's webhook got the resolution"""
            return [n for n in Hook.received if n["status"] == "resolved"]

        done = _until(resolved)
        assert sorted(a["labels"]["scope_key"] for n in done for a in n["alerts"]) == ["B1", "B2"]
    finally:
        pipe.close()
    assert len(firing()) == 1  # grouped: never one notification per alert
