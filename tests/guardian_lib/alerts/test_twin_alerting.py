"""``guardian twin --alerting``: operate's alert pipeline on the twin's cycles, delivering to
a real SMTP server (aiosmtpd) and a signed webhook on 127.0.0.1.

The scenario is ``tiny`` with only feeder cuts (seed 8 cuts a PON in the first 10 minutes);
at 3000× an hour of simulation takes a couple of seconds.
"""

from __future__ import annotations

import json
from email.header import decode_header, make_header
from pathlib import Path

import pytest
import yaml
from cli_runner import run_guardian

from acs_emulator.twin import Twin
from guardian_lib.decision import AutopilotSettings

from .test_delivery import SECRET, Hook

SEED = 8


@pytest.fixture
def cut_scenario(only_fault):
    return only_fault("feeder_cut", 2000.0)


def _alerting(tmp_path: Path, smtp_port: int, url: str) -> Path:
    cfg = {
        "rules": [
            {"name": "MassiveIncident", "source": "incidents", "severity": "critical",
             "summary": "{scope_type} {scope_key}: {affected_customers} customers affected"},
            {"name": "OnuLos", "source": "events", "when": [{"field": "type", "value": "LOS"}]},
        ],
        "inhibit_rules": [{"source_matchers": {"alertname": "MassiveIncident"},
                           "target_matchers": {"level": "onu"}, "equal": ["olt"]}],
        "route": {"receiver": "noc-mail", "group_by": ["alertname", "scope_key"], "group_wait": "0s"},
        "receivers": [
            {"name": "noc-mail", "email": {"host": "127.0.0.1", "port": smtp_port,
                                           "sender": "guardian@isp.example",
                                           "to": ["noc@isp.example"]}},
            {"name": "crm", "webhook": {"url": url, "token_env": "CRM_HOOK_KEY"}},
        ],
        "customer_notices": {"receiver": "crm"},
    }  # fmt: skip
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_the_twin_runs_operates_alerting_one_mail_per_incident_one_notice_per_customer(
    cut_scenario, smtp, crm_webhook, tmp_path, monkeypatch
):
    monkeypatch.setenv("CRM_HOOK_KEY", SECRET.decode())
    server, inbox = smtp
    port = server.port
    twin = Twin(cut_scenario, seed=SEED, speed=3000.0, every_minutes=5, n_cpes=8,
                settings=AutopilotSettings(autopilot_mode="execute", jitter_max_seconds=0),
                alerting=_alerting(tmp_path, port, crm_webhook),
                alerting_state=tmp_path / "state")  # fmt: skip
    try:
        report = twin.run(ticks=12, settle_timeout_s=30)
        incidents = twin.audit.frame("incidents")
        members = {m for inc in twin.autopilot.incidents.values() for m in inc["members"]}
        customer_of = dict(zip(twin.sim.topology.customers["onu_id"],
                               twin.sim.topology.customers["customer_id"], strict=True))  # fmt: skip
    finally:
        twin.close()
    opened = incidents.drop_duplicates("incident_id")
    assert len(opened) >= 1
    # One e-mail per massive incident with its count; the LOS of the ONUs beneath inhibited.
    subjects = [str(make_header(decode_header(m["Subject"]))).replace("\r\n", "")
                for m in inbox.messages]  # fmt: skip
    assert len(subjects) == len(opened), subjects
    for r in opened.itertuples():
        said = f"{r.scope_type} {r.scope_key}: "
        assert sum(said in s and "customers affected" in s for s in subjects) == 1, subjects
    assert not any("OnuLos" in m.get_payload() for m in inbox.messages)
    # One notice per affected customer, signed, through the CRM webhook.
    notices = [b for _, b in Hook.received if b.get("kind") == "customer_notice"]
    told = [b["customer_id"] for b in notices]
    assert len(told) == len(set(told)) == len(members) > 0
    assert set(told) == {customer_of[m] for m in members}
    assert {b["template"] for b in notices} == {"outage_detected"}
    assert Hook.bad_signatures == 0
    a = report.alerts
    assert a["cycles"] == 12 and a["delivered"] == len(subjects) + len(notices)
    assert a["notices"]["by_template"] == {"outage_detected": len(members)}
    assert a["outbox"] == {"delivered:crm": len(notices), "delivered:noc-mail": len(subjects)}


def test_cli_twin_alerting_writes_its_outbox_and_reports_the_figures(
    cut_scenario, smtp, crm_webhook, tmp_path, monkeypatch
):
    server, inbox = smtp
    port = server.port
    path = _alerting(tmp_path, port, crm_webhook)
    res = run_guardian(
        "twin", "--scenario", "tiny", "--seed", "1", "--speed", "6000", "--hours", "0.5",
        "--mode", "simulate", "--cpes", "8", "--json", "--alerting", str(path),
        "--alerting-state", str(tmp_path / "st"),
        env={"CRM_HOOK_KEY": SECRET.decode()}, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["alerts"]["cycles"] == 2  # decisions every 15 min: 2 in half an hour
    assert (tmp_path / "st" / "alerts_outbox.sqlite").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: X, source: nowhere}]\n")
    res = run_guardian(
        "twin", "--hours", "0.1", "--alerting", str(bad), "--alerting-state", str(tmp_path / "st2"),
        env={"COLUMNS": "400"}, check=False,  # the usage box must not wrap the long tmp path
    )  # fmt: skip
    assert res.returncode == 2 and "bad.yaml" in res.stderr
