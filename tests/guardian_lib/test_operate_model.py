"""``guardian operate`` with a registered model: every cycle is scored by the models, the
predictions carry the model version, and a restart restores the scorer's window."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.models.online import RISK_EVERY_ROUNDS, OnlineScorer
from guardian_lib.operate.components import EXPLAIN_SYMPTOMATIC, EXPLAIN_TOP_RISKS
from guardian_lib.snmp.poller import OltPollResult, PollReport
from guardian_lib.snmp.rows import EVENTS_SCHEMA, empty_frame

N_ONUS, T0 = 24, pd.Timestamp("2026-03-02T00:00:00Z")


@pytest.fixture(scope="module")
def tiny_bundle(tiny_run):
    """A 10-tree bundle trained on the tiny run (the session's simulated run)."""
    from guardian_lib.models.training import fit_bundle, labelled_frame

    features, labels = labelled_frame(tiny_run, every_minutes=60)
    return fit_bundle(features, labels, n_estimators=10)


class FakeOlt:
    """One OLT's poll, tick by tick: ONU 0 fades (its RX falls 0.3 dB per cycle), ONU 1 is
    offline from the third cycle on, the others are steady with seeded noise."""

    def __init__(self, seed: int = 3) -> None:
        self.rng = np.random.default_rng(seed)
        self.cycle = 0

    def poll(self) -> PollReport:
        k, n = self.cycle, N_ONUS
        self.cycle += 1
        rx = -20.0 - 0.1 * np.arange(n) + self.rng.normal(0, 0.05, n)
        rx[0] -= 0.3 * k
        online = np.ones(n, dtype=bool)
        online[1] = k < 2
        ts = T0 + pd.Timedelta(minutes=5 * k)
        tel = pd.DataFrame(
            {
                "ts": ts, "onu_id": [f"ONU{i:02d}" for i in range(n)],
                "rx_dbm": np.where(online, rx, np.nan), "tx_dbm": 2.3,
                "olt_rx_dbm": np.where(online, rx - 1.0, np.nan), "snr_db": 30.0, "ber": 1e-12,
                "crc_errors": 0, "latency_ms": 12.0 + self.rng.exponential(1.0, n),
                "loss_pct": np.where(online, 0.0, np.nan), "online": online,
                "uptime_s": 86_400 + 300 * k, "source": "snmp", "received_at": ts,
                "olt_id": "OLT-1", "snmp_index": [f"1.{i // 12}.{i}" for i in range(n)],
                "serial": None, "poll_complete": True,
            }
        )  # fmt: skip
        res = OltPollResult("OLT-1", "fake", tel, empty_frame(EVENTS_SCHEMA), complete=True)
        return PollReport([res])

    def close(self) -> None:
        pass


def _site(tmp_path: Path) -> Path:
    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]})
    )
    subs = pd.DataFrame(
        {
            "onu_id": [f"ONU{i:02d}" for i in range(N_ONUS)],
            "pon_id": [f"OLT-1:1.{i // 12}" for i in range(N_ONUS)],
            "olt_id": "OLT-1",
            "box_id": [f"BOX{i // 6}" for i in range(N_ONUS)],
            "lat": -22.9 + 0.001 * np.arange(N_ONUS),
            "lon": -47.0,
            "distance_m": 3000.0,
        }
    )
    subs.to_csv(tmp_path / "subs.csv", index=False)
    site = {"inventory": "olts.yaml", "warehouse": "wh", "subscribers": "subs.csv",
            "polling_interval_s": 300, "model_alias": "champion"}  # fmt: skip
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return tmp_path / "site.yaml"


def _operator(site: Path, state: Path, olt: FakeOlt):
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    op = Operator(load_site(site), state, mode="simulate")
    op.source.close()
    op.source = olt  # the SNMP poller's place: same PollReport, no network
    return op


def test_operate_scores_every_cycle_with_the_registered_model_and_restores_the_window(
    tmp_path, monkeypatch, tiny_bundle
):
    from guardian_lib.models.registry import register_bundle

    monkeypatch.setenv("GUARDIAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    version = register_bundle(tiny_bundle, params={"test": 1}, metrics={}, alias="champion")
    assert version.endswith("/1")

    scored: list[pd.DataFrame] = []
    real_call = OnlineScorer.__call__

    def spy(self, snapshot=None):  # the real scorer; keeps what it returned
        out = real_call(self, snapshot)
        scored.append(out)
        return out

    monkeypatch.setattr(OnlineScorer, "__call__", spy)
    site = _site(tmp_path)

    # Three cycles, then the process stops; a new one on the same state runs two more.
    olt = FakeOlt()
    op = _operator(site, tmp_path / "state", olt)
    try:
        for _ in range(3):
            op.run_cycle()
        assert op.summary.model_version == version
        assert isinstance(op.loop.scorer, OnlineScorer)
        assert op.loop.scorer.model_version == version
        assert op.loop.scorer.cube.n_ticks == 3
        # Reasons for the top risks and symptoms, bounded (operate's SHAP budget).
        assert op.loop.scorer.explain
        assert op.loop.scorer.max_risk_explained == EXPLAIN_TOP_RISKS
        assert op.loop.scorer.max_explained == EXPLAIN_SYMPTOMATIC
        # The whole fleet every RISK_EVERY_ROUNDS cycles, the rows that can matter between.
        assert op.loop.scorer.full_every == RISK_EVERY_ROUNDS
    finally:
        op.close()
    op = _operator(site, tmp_path / "state", olt)
    try:
        restored = op.loop.scorer if op.loop is not None else None
        for _ in range(2):
            op.run_cycle()
        assert restored is None  # built on the first cycle, from the saved state
        assert op.loop.scorer.cube.n_ticks == 5  # 3 restored + 2 new
        restarted = op.loop.scorer.cube.latest_features()
    finally:
        op.close()

    # One scoring of the whole fleet per cycle, by the registered models.
    assert len(scored) == 5
    for preds in scored:
        assert len(preds) == N_ONUS
        assert set(preds["model_version"]) == {version}
        assert preds[["anomaly_score", "risk_2h", "risk_6h", "risk_24h"]].notna().all().all()
    # The offline ONU gets cause probabilities (symptomatic), the healthy ones none.
    last = scored[-1].set_index("onu_id")
    assert last.filter(regex="^p_").loc["ONU01"].notna().all()
    assert last.filter(regex="^p_").loc["ONU05"].isna().all()

    # The restarted service sees the same window as one that never stopped.
    (tmp_path / "ref").mkdir()
    ref = _operator(_site(tmp_path / "ref"), tmp_path / "ref" / "state", FakeOlt())
    try:
        for _ in range(5):
            ref.run_cycle()
        pd.testing.assert_frame_equal(restarted, ref.loop.scorer.cube.latest_features())
        # ONU 0's 1 h RX slope (falling 0.3 dB per 5 min) needs the restored ticks.
        slope = restarted.set_index("onu_id").loc["ONU00", "rx_slope_1h"]
        assert slope == pytest.approx(-3.6, abs=0.3)
    finally:
        ref.close()
    assert len(scored) == 10
    pd.testing.assert_frame_equal(scored[4], scored[9])
