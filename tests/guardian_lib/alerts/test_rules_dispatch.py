"""Alert rules, silences, inhibition, routing and grouping (injected clock, no I/O)."""

from __future__ import annotations

import pandas as pd
import pytest

from guardian_lib.alerts.config import load_alerting, parse_duration_s
from guardian_lib.alerts.dispatch import Dispatcher
from guardian_lib.alerts.rules import RuleEngine
from guardian_lib.alerts.silences import SilenceStore
from guardian_lib.errors import ConfigError
from guardian_lib.matchers import parse_matchers

T0 = pd.Timestamp("2026-03-02 12:00", tz="UTC")


def at(minutes: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


RULES = """
rules:
  - name: MassiveIncident
    source: incidents
    when: [{field: scope_type, op: in, value: [olt, pon]}]
    severity: critical
    summary: "{scope_type} {scope_key}: {affected_customers} customers"
  - name: PonOffline
    source: health
    when: [{field: level, value: pon}, {field: offline_share, op: ">", value: 0.5}]
    for: 10m
  - name: OnuLos
    source: events
    when: [{field: type, value: LOS}]
inhibit_rules:
  - source_matchers: {alertname: MassiveIncident, scope_type: pon}
    target_matchers: {level: "~(onu|customer)"}
    equal: [pon]
route:
  receiver: mail
  group_by: [alertname, olt]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 1h
  routes:
    - matchers: {severity: critical}
      receiver: hook
      continue: true
    - matchers: {severity: critical}
      receiver: mail
receivers:
  - name: mail
    email: {host: 127.0.0.1, sender: g@isp.example, to: [noc@isp.example]}
  - name: hook
    webhook: {url: "http://127.0.0.1:9/hook"}
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return load_alerting(p)


def incident(key="P1", affected=40):
    return {"scope_type": "pon", "scope_key": key, "pon": key, "olt": "O1",
            "level": "incident", "affected_customers": affected}  # fmt: skip


def los(onu, pon="P1"):
    return {"type": "LOS", "onu": onu, "pon": pon, "olt": "O1", "level": "onu"}


def test_durations_and_the_shipped_file_loads():
    assert parse_duration_s("5m") == 300 and parse_duration_s("1h") == 3600
    assert parse_duration_s(2) == 120 and parse_duration_s("45s") == 45
    with pytest.raises(ValueError, match="duration"):
        parse_duration_s("5 minutes")
    cfg = load_alerting()
    names = {r.name for r in cfg.rules}
    assert {"MassiveIncident", "OltUnreachable", "PonOfflineShare", "VipCustomerAtRisk",
            "CircuitBreakerTripped"} <= names  # fmt: skip


@pytest.mark.parametrize(
    "bad, where",
    [
        ("rules: [{name: X, source: weather}]", "rules[0].source"),
        ("rules: [{name: X, source: health, for: soon}]", "rules[0]"),
        ("rules: [{name: X, source: health, when: [{field: a, op: in, value: 3}]}]",
         "rules[0].when[0]"),
        ("rules: [{name: X, source: health, colour: red}]", "rules[0].colour"),
        ("rules: [{name: X, source: health}]\nroute: {receiver: pager}", "unknown receiver"),
    ],
)  # fmt: skip
def test_bad_files_name_the_file_and_the_field(tmp_path, bad, where):
    p = tmp_path / "bad.yaml"
    p.write_text(bad)
    with pytest.raises(ConfigError) as exc:
        load_alerting(p)
    assert str(p) in str(exc.value) and where in str(exc.value)


def test_for_duration_pending_then_firing_then_resolved_once(cfg):
    eng = RuleEngine(cfg)
    pon = {"level": "pon", "pon": "P1", "olt": "O1", "offline_share": 0.8}
    assert eng.evaluate(at(0), {"health": [pon]}) == []
    assert eng.evaluate(at(5), {"health": [pon]}) == []
    (a,) = eng.evaluate(at(10), {"health": [pon]})
    assert a.firing and a.labels["alertname"] == "PonOffline" and a.starts_at == at(10)
    (r,) = eng.evaluate(at(15), {"health": [{**pon, "offline_share": 0.1}]})
    assert not r.firing and r.ends_at == at(15) and r.fingerprint == a.fingerprint
    assert eng.evaluate(at(20), {"health": []}) == []
    # a blip shorter than `for` never fires
    eng.evaluate(at(30), {"health": [pon]})
    assert eng.evaluate(at(35), {"health": []}) == []
    assert len(eng.fired) == 1


def test_one_notification_per_incident_none_per_onu_beneath(cfg):
    eng, disp = RuleEngine(cfg), Dispatcher(cfg)
    obs = {"incidents": [incident()], "events": [los(f"N{i}") for i in range(30)]}
    alerts = eng.evaluate(at(0), obs)
    assert len(alerts) == 31
    assert disp.step(at(0), alerts) == []  # group_wait
    sent = disp.step(at(1), eng.evaluate(at(1), obs))
    assert sorted(n.receiver for n in sent) == ["hook", "mail"]
    for n in sent:
        assert [a.labels["alertname"] for a in n.alerts] == ["MassiveIncident"]
        assert "40 customers" in n.alerts[0].summary
    assert disp.muted["inhibited"] == 60
    # unchanged group: nothing until repeat_interval
    for m in (6, 11, 30):
        assert disp.step(at(m), eng.evaluate(at(m), obs)) == []
    again = disp.step(at(61), eng.evaluate(at(61), obs))
    assert len(again) == 2
    # resolution: told once, then the group is gone
    done = disp.step(at(66), eng.evaluate(at(66), {}))
    assert {n.status for n in done} == {"resolved"} and len(done) == 2
    assert disp.step(at(71), eng.evaluate(at(71), {})) == []


def test_an_onu_outside_the_incident_is_not_inhibited(cfg):
    eng, disp = RuleEngine(cfg), Dispatcher(cfg)
    obs = {"incidents": [incident("P1")], "events": [los("N1", "P1"), los("N9", "P2")]}
    eng.evaluate(at(0), obs)
    disp.step(at(0), eng.evaluate(at(0), obs))
    sent = disp.step(at(1), eng.evaluate(at(1), obs))
    mail = [n for n in sent if n.receiver == "mail"]
    names = sorted((a.labels["alertname"], a.labels.get("onu", "")) for n in mail for a in n.alerts)
    assert names == [("MassiveIncident", ""), ("OnuLos", "N9")]


def test_silence_mutes_until_expired(cfg, tmp_path):
    store = SilenceStore(tmp_path / "silences.db")
    s = store.add(parse_matchers(["olt=O1", "alertname=~Massive.*"]), at(-1), at(120),
                  "ana", "maintenance on O1")  # fmt: skip
    eng, disp = RuleEngine(cfg), Dispatcher(cfg, store)
    obs = {"incidents": [incident()]}
    assert disp.step(at(0), eng.evaluate(at(0), obs)) == []
    assert disp.step(at(5), eng.evaluate(at(5), obs)) == []
    assert disp.muted["silenced"] == 2
    # persisted: a new store on the same file sees it, and can expire it
    again = SilenceStore(tmp_path / "silences.db")
    assert [x.silence_id for x in again.active(at(6))] == [s.silence_id]
    again.expire(s.silence_id, at(7))
    disp.silences = SilenceStore(tmp_path / "silences.db")
    disp.step(at(8), eng.evaluate(at(8), obs))
    sent = disp.step(at(9), eng.evaluate(at(9), obs))
    assert len(sent) == 2
    with pytest.raises(ConfigError, match="no silence"):
        again.expire("nope", at(9))
    with pytest.raises(ConfigError, match="matcher"):
        parse_matchers(["olt"])


def test_grouping_batches_alerts_of_one_olt(cfg):
    eng, disp = RuleEngine(cfg), Dispatcher(cfg)
    first = {"events": [los("N1", "P7")]}
    disp.step(at(0), eng.evaluate(at(0), first))
    more = {"events": [los("N1", "P7"), los("N2", "P7")]}
    (n,) = disp.step(at(1), eng.evaluate(at(1), more))
    assert n.receiver == "mail" and len(n.alerts) == 2
    # a third ONU joins: told at the next group_interval, not before
    most = {"events": [los(f"N{i}", "P7") for i in (1, 2, 3)]}
    assert disp.step(at(3), eng.evaluate(at(3), most)) == []
    (n2,) = disp.step(at(6), eng.evaluate(at(6), most))
    assert len(n2.alerts) == 3 and n2.key != n.key


def test_a_maintenance_window_mutes_its_area_only_while_scheduled(tmp_path):
    p = tmp_path / "mw.yaml"
    p.write_text(
        RULES
        + """
maintenance_windows:
  - name: olt-o1-upgrade
    matchers: {olt: O1}
    start: 2026-03-02T12:00:00Z
    end: 2026-03-02T13:00:00Z
    comment: firmware upgrade
"""
    )
    cfg = load_alerting(p)
    eng, disp = RuleEngine(cfg), Dispatcher(cfg)
    obs = {"incidents": [incident()]}
    for m in (0, 10, 30, 59):
        assert disp.step(at(m), eng.evaluate(at(m), obs)) == []
    assert disp.muted["maintenance"] == 4
    disp.step(at(60), eng.evaluate(at(60), obs))
    assert len(disp.step(at(61), eng.evaluate(at(61), obs))) == 2
    p.write_text(
        RULES
        + """
maintenance_windows:
  - {name: w, matchers: {olt: O1}, start: 2026-03-02T13:00:00Z, end: 2026-03-02T12:00:00Z}
"""
    )
    with pytest.raises(ConfigError, match=r"maintenance_windows\[0\].*must be after start"):
        load_alerting(p)
