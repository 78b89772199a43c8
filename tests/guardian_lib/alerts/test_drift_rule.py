"""Model drift (PSI of live features vs the training sample) as the ``ModelDrift`` rule."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.alerts.config import load_alerting
from guardian_lib.alerts.drift import DriftMonitor
from guardian_lib.alerts.rules import RuleEngine
from guardian_lib.operate.fleet import load_subscribers
from guardian_lib.operate.site import load_site

COLS = ["rx_dbm_mean_1h", "loss_pct_max_1h"]
T0 = pd.Timestamp("2026-01-01T00:00:00Z")


def _frame(rng, n, shift=0.0):
    return pd.DataFrame({"rx_dbm_mean_1h": rng.normal(-20.0 + shift, 1.0, n),
                         "loss_pct_max_1h": rng.exponential(1.0, n)})  # fmt: skip


def _drift_rule(cfg):
    (rule,) = [r for r in cfg.rules if r.name == "ModelDrift"]
    return rule


def test_the_shipped_rule_fires_after_its_for_only_when_features_drift():
    rng = np.random.default_rng(7)
    cfg = load_alerting()
    rule = _drift_rule(cfg)
    threshold = next(c.value for c in rule.when if c.field == "psi_max")
    mon = DriftMonitor(_frame(rng, 4000), COLS, every_cycles=cfg.drift_every_cycles)
    eng = RuleEngine(cfg)
    step = pd.Timedelta(minutes=5)
    for k in range(30):  # 2.5 h of a stable fleet: nothing
        mon.add(_frame(rng, 500))
        alerts = eng.evaluate(T0 + k * step, {"health": mon.observe()})
        assert not alerts, alerts
    assert mon.last["psi_max"] < threshold
    fired_at = None
    for k in range(30, 80):  # the optics of the fleet shift by 1.5 dB
        mon.add(_frame(rng, 500, shift=1.5))
        alerts = eng.evaluate(T0 + k * step, {"health": mon.observe()})
        if alerts and fired_at is None:
            fired_at = k
            (a,) = alerts
    assert a.labels["alertname"] == "ModelDrift" and a.labels["level"] == "model"
    assert a.values["feature"] == "rx_dbm_mean_1h" and a.values["psi_max"] > threshold
    assert "rx_dbm_mean_1h drifted" in a.summary
    # PSI is recomputed every drift_every_cycles cycles, then `for:` must pass.
    lag_min = (fired_at - 30) * 5
    assert rule.for_s / 60 <= lag_min <= rule.for_s / 60 + 5 * cfg.drift_every_cycles


def test_the_threshold_is_read_from_the_rules_file(tmp_path):
    rng = np.random.default_rng(1)
    rules = {"drift_every_cycles": 1, "rules": [{
        "name": "ModelDrift", "source": "health",
        "when": [{"field": "level", "value": "model"},
                 {"field": "psi_max", "op": ">", "value": 5.0}]}]}  # fmt: skip
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(rules))
    cfg = load_alerting(tmp_path / "r.yaml")
    mon = DriftMonitor(_frame(rng, 3000), COLS, every_cycles=cfg.drift_every_cycles)
    mon.add(_frame(rng, 3000, shift=1.5))
    obs = mon.observe()
    assert 0.25 < obs[0]["psi_max"] < 5.0
    assert RuleEngine(cfg).evaluate(T0, {"health": obs}) == []


def test_a_reference_without_the_models_features_is_refused():
    with pytest.raises(ValueError, match="lacks the model's features"):
        DriftMonitor(pd.DataFrame({"x": [1.0]}), COLS)


def test_operate_evaluates_drift_every_cycle_through_its_alert_pipeline(tmp_path):
    from guardian_lib.operate.service import Operator

    rng = np.random.default_rng(3)
    rules = {"drift_every_cycles": 2, "rules": [{
        "name": "ModelDrift", "source": "health", "summary": "{feature}: PSI {psi_max:.2f}",
        "when": [{"field": "level", "value": "model"},
                 {"field": "psi_max", "op": ">", "value": 0.25}]}]}  # fmt: skip
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rules))
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "subs.csv").write_text("onu_id,customer_id,pon_id\nA,C1,P1\n")
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv", "alerts": "alerts.yaml"}))  # fmt: skip
    op = Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state")
    try:
        assert op.drift is None  # no registered model: nothing to monitor
        op._build(load_subscribers(tmp_path / "subs.csv"))
        op.drift = DriftMonitor(_frame(rng, 3000), COLS,
                                every_cycles=op.alerts.config.drift_every_cycles)  # fmt: skip
        empty = pd.DataFrame(columns=["entity_id", "entity_type", "type"])
        polled = pd.DataFrame({"onu_id": ["A"], "online": [True]})
        op.loop.scorer = SimpleNamespace(last_features=_frame(rng, 2000))
        quiet = op._alerts_cycle(T0, polled, empty, {})
        op.loop.scorer = SimpleNamespace(last_features=_frame(rng, 2000, shift=2.0))
        still = op._alerts_cycle(T0 + pd.Timedelta(minutes=5), polled, empty, {})
        drifted = op._alerts_cycle(T0 + pd.Timedelta(minutes=10), polled, empty, {})
        fired = list(op.alerts.engine.fired)
    finally:
        op.close()
    assert quiet["alerts"] == 0
    assert still["alerts"] == 0  # not recomputed yet (every 2 cycles)
    assert drifted["alerts"] == 1
    (a,) = fired
    assert a.labels["alertname"] == "ModelDrift" and a.summary.startswith("rx_dbm_mean_1h: PSI")
