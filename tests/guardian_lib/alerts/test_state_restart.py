"""Rule timers and aggregation groups survive a restart of the pipeline (SQLite state)."""

from __future__ import annotations

import pandas as pd
import yaml

from guardian_lib.alerts.config import load_alerting
from guardian_lib.alerts.pipeline import AlertPipeline

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
RULES = {
    "rules": [{"name": "PonDown", "source": "health", "for": "10m", "severity": "major",
               "when": [{"field": "level", "value": "pon"},
                        {"field": "offline_share", "op": ">", "value": 0.5}]}],
    "route": {"receiver": "rec", "group_by": ["alertname", "pon"], "group_wait": "0s",
              "group_interval": "5m", "repeat_interval": "4h"},
    "receivers": [{"name": "rec", "webhook": {"url": "http://127.0.0.1:9/unused"}}],
}  # fmt: skip


class Recorder:
    def __init__(self):
        self.got = []

    def send(self, key, payload):
        self.got.append(payload)
        return "200"


def _down(share):
    return {"health": [{"level": "pon", "pon": "P1", "olt": "O1", "offline_share": share}]}


def _run(cfg, state, rec, minutes, share):
    """One process lifetime: start, one cycle, stop."""
    pipe = AlertPipeline(cfg, state, receivers={"rec": rec})
    try:
        return pipe.cycle(T0 + pd.Timedelta(minutes=minutes), _down(share))
    finally:
        pipe.close()


def test_for_timers_and_notified_groups_survive_restarts(tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RULES))
    cfg = load_alerting(tmp_path / "r.yaml")
    rec = Recorder()
    state = tmp_path / "state"
    # A restart every cycle (5-minute cycles): the condition holds from minute 0.
    assert _run(cfg, state, rec, 0, 0.9).alerts == 0  # pending
    assert _run(cfg, state, rec, 5, 0.9).alerts == 0  # still pending: 5 of 10 min
    assert _run(cfg, state, rec, 10, 0.9).delivery.delivered == 1  # fires on time
    for m in (15, 20, 25):  # still firing: the group was told, no new message
        assert _run(cfg, state, rec, m, 0.9).notifications == 0
    assert _run(cfg, state, rec, 30, 0.0).delivery.delivered == 1  # the resolution
    assert [p["status"] for p in rec.got] == ["firing", "resolved"]
    (alert,) = rec.got[0]["alerts"]
    assert alert["startsAt"] == (T0 + pd.Timedelta(minutes=10)).isoformat()
    assert rec.got[1]["alerts"][0]["endsAt"] == (T0 + pd.Timedelta(minutes=30)).isoformat()


def test_without_the_saved_state_a_restart_would_start_over(tmp_path):
    """The control: the same cycles in fresh state folders fire late and notify again."""
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RULES))
    cfg = load_alerting(tmp_path / "r.yaml")
    rec = Recorder()
    fired = [_run(cfg, tmp_path / f"s{m}", rec, m, 0.9).alerts for m in (0, 5, 10)]
    assert fired == [0, 0, 0]  # each process saw the condition for the first time


def test_a_changed_route_drops_its_groups_and_an_unknown_rule_its_timers(tmp_path):
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(RULES))
    rec = Recorder()
    state = tmp_path / "state"
    cfg = load_alerting(tmp_path / "r.yaml")
    _run(cfg, state, rec, 0, 0.9)
    _run(cfg, state, rec, 10, 0.9)
    assert len(rec.got) == 1
    renamed = {**RULES, "rules": [{**RULES["rules"][0], "name": "PonOffline"}]}
    (tmp_path / "r2.yaml").write_text(yaml.safe_dump(renamed))
    cfg2 = load_alerting(tmp_path / "r2.yaml")
    # The old rule's timer is gone: the renamed rule starts its own `for:`.
    assert _run(cfg2, state, rec, 15, 0.9).alerts == 0
    pipe = AlertPipeline(cfg2, state, receivers={"rec": rec})
    try:
        assert [s["rule"] for s in pipe.engine.state_dict()] == ["PonOffline"]
    finally:
        pipe.close()
