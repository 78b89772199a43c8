"""One missed-poll rule (``missed_poll_grace_steps``) for ``guardian operate`` and
``guardian decide``: an ONU without a reading keeps its last one for the grace, then is
"not read" (offline for the observer)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.errors import ConfigError
from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS, MissedPolls

T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
STEP = pd.Timedelta(minutes=5)
# A is read at steps 0 and 5 only; B at every step (rx -19 - 0.1·k)
READ_A = [True, False, False, False, False, True]


def _rows() -> pd.DataFrame:
    rows = []
    for k, a_read in enumerate(READ_A):
        if a_read:
            rows.append((T0 + k * STEP, "A", True, -20.0 - k))
        rows.append((T0 + k * STEP, "B", True, -19.0 - 0.1 * k))
    return pd.DataFrame(rows, columns=["ts", "onu_id", "online", "rx_dbm"])


def _expected_a(grace: int) -> tuple[list[float], list[float]]:
    """A's ``online`` and ``rx_dbm`` by step under the rule (NaN: not read)."""
    online, rx = [], []
    for k, a_read in enumerate(READ_A):
        last_read = max(i for i in range(k + 1) if READ_A[i])
        if a_read:
            online.append(1.0)
            rx.append(-20.0 - k)
        elif k - last_read <= grace:  # steps missed in a row, within the grace
            online.append(1.0)
            rx.append(-20.0 - last_read)
        else:
            online.append(np.nan)
            rx.append(np.nan)
    return online, rx


def _history(grace: int) -> list:
    """``guardian decide``'s ticks of the rows (a SILVER table on a hand-made warehouse)."""
    from guardian_lib.history import HistoryTelemetrySource

    tel = _rows()
    for m in ("tx_dbm", "olt_rx_dbm", "snr_db", "ber", "crc_errors", "latency_ms", "loss_pct",
              "uptime_s"):  # fmt: skip
        tel[m] = np.nan
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_t", tel)
    con.execute("CREATE TABLE telemetry AS SELECT * FROM _t")
    end = T0 + (len(READ_A) - 1) * STEP
    src = HistoryTelemetrySource(con, np.array(["A", "B"]), T0, end, 300, grace_steps=grace)
    ticks = list(src)
    con.close()
    return ticks


def _site(tmp_path: Path, **extra) -> Path:
    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "n"}]})
    )
    (tmp_path / "subs.csv").write_text("onu_id,pon_id\nA,P1\nB,P1\n")
    site = {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
            "subscribers": "subs.csv", **extra}  # fmt: skip
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return tmp_path / "site.yaml"


def _operate(tmp_path: Path, grace: int | None, steps: range, state: str = "state") -> list:
    """``guardian operate``'s cycle ticks of the rows (the cycle's tick builder, no SNMP),
    each step committed as a cycle is (so that a restart continues the count)."""
    from guardian_lib.operate.fleet import load_subscribers
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    extra = {} if grace is None else {"missed_poll_grace_steps": grace}
    op = Operator(load_site(_site(tmp_path, **extra)), tmp_path / state)
    rows, ticks = _rows(), []
    try:
        op._build(load_subscribers(tmp_path / "subs.csv"))
        for k in steps:
            ts = T0 + k * STEP
            known = rows[rows["ts"] == ts].drop(columns="ts")
            ticks.append(op._cycle_tick(ts, known, []))
            op.store.record_cycle(k + 1, ts.isoformat(), 0.0, {}, op._blobs())
    finally:
        op.close()
    return ticks


@pytest.mark.parametrize("grace", [0, 1, 2])
def test_operate_and_decide_apply_the_same_rule(tmp_path, grace):
    online, rx = _expected_a(grace)
    decide = _history(grace)
    operate = _operate(tmp_path, grace, range(len(READ_A)))
    for name, ticks in (("decide", decide), ("operate", operate)):
        got_on = [float(t.get("online")[0]) for t in ticks]
        got_rx = [float(t.get("rx_dbm")[0]) for t in ticks]
        np.testing.assert_array_equal(got_on, online, err_msg=f"{name}: A online")
        np.testing.assert_array_equal(got_rx, rx, err_msg=f"{name}: A rx_dbm")
        assert [bool(t.online[1]) for t in ticks] == [True] * len(READ_A)  # B always read
        # the observer's view: held = online, past the grace = offline
        assert [bool(t.online[0]) for t in ticks] == [v == 1.0 for v in online]


def test_the_default_grace_is_one_step_and_survives_a_restart(tmp_path):
    assert MISSED_POLL_GRACE_STEPS == 1
    # cycle 0 by one process, 1-5 by the next: A's first missed poll is held from the
    # reading the first process committed
    first = _operate(tmp_path, None, range(1))
    second = _operate(tmp_path, None, range(1, len(READ_A)))
    got = [float(t.get("online")[0]) for t in first + second]
    np.testing.assert_array_equal(got, _expected_a(1)[0])
    assert float(second[0].get("rx_dbm")[0]) == -20.0
    # without the committed state there is nothing to hold: not read at once
    fresh = _operate(tmp_path, None, range(1, 2), state="other")
    assert np.isnan(fresh[0].get("online")[0]) and not fresh[0].online[0]


def test_the_rule_checks_its_inputs_and_the_site_bounds_the_grace(tmp_path):
    with pytest.raises(ValueError, match="missed_poll_grace_steps: expected >= 0, got -1"):
        MissedPolls(2, grace_steps=-1)
    mp = MissedPolls(2)
    with pytest.raises(ValueError, match="3 ONUs read, the fleet has 2"):
        mp.fill({"online": np.ones(3)}, np.ones(3, dtype=bool))
    assert not mp.load_state_dict({"missing": np.zeros(5), "last": None})  # another fleet
    from guardian_lib.operate.site import load_site

    (tmp_path / "a").mkdir()
    with pytest.raises(ConfigError, match=r"site\.yaml.*missed_poll_grace_steps"):
        load_site(_site(tmp_path / "a", missed_poll_grace_steps=13))
    assert load_site(_site(tmp_path, missed_poll_grace_steps=3)).missed_poll_grace_steps == 3


def test_decide_reports_and_tags_the_grace_it_replayed_with(tmp_path):
    from guardian_lib.operate.decide import _settings

    (tmp_path / "wh").mkdir()
    grace = _settings(_site(tmp_path, missed_poll_grace_steps=2))[3]
    assert grace == 2
    assert _settings(None)[3] == MISSED_POLL_GRACE_STEPS


# ONUs of PON P1 polled each cycle (a missing one: a missed poll of an answering OLT; E on
# P2 always answers), online or not. The PON alert fires above half of P1 offline.
POLLS = [
    {"A": True, "B": True, "C": True, "D": True},
    {"A": False},  # B, C, D missed once: held online (1/4 offline, not 1/1)
    {"A": False, "B": False, "C": False, "D": True},  # 3/4 offline: the alert fires
    {"D": True},  # A, B, C missed once: held offline, the alert stays
    {"D": True},  # missed twice, past the grace: offline ("not read"), the alert stays
    {"A": True, "B": True, "C": True, "D": True},  # back: the alert resolves
]


class _Polls:
    """A telemetry source replaying :data:`POLLS` (operate's SNMP source's interface)."""

    def __init__(self) -> None:
        self.k = 0

    def poll(self):
        from guardian_lib.snmp.poller import OltPollResult, PollReport
        from guardian_lib.snmp.rows import EVENTS_SCHEMA, TELEMETRY_SCHEMA, empty_frame

        ts = T0 + self.k * STEP
        online = {**POLLS[self.k], "E": True}
        self.k += 1
        rows = pd.DataFrame({"ts": ts, "onu_id": list(online), "online": list(online.values()),
                             "rx_dbm": -20.0, "source": "snmp", "received_at": ts,
                             "olt_id": "OLT-1", "poll_complete": True})  # fmt: skip
        tel = pd.concat([empty_frame(TELEMETRY_SCHEMA), rows], ignore_index=True)
        return PollReport([OltPollResult("OLT-1", "test", tel, empty_frame(EVENTS_SCHEMA), True)])

    def close(self) -> None:
        pass


def test_operate_alerts_follow_the_missed_poll_rule_the_decisions_see(tmp_path):
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    rules = {"rules": [{"name": "PonOffline", "source": "health",
                        "when": [{"field": "level", "value": "pon"},
                                 {"field": "offline_share", "op": ">", "value": 0.5}]}]}  # fmt: skip
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(rules))
    site = _site(tmp_path, alerts="alerts.yaml", polling_interval_s=300)
    (tmp_path / "subs.csv").write_text(
        "onu_id,pon_id,olt_id\nA,P1,OLT-1\nB,P1,OLT-1\nC,P1,OLT-1\nD,P1,OLT-1\nE,P2,OLT-1\n"
    )
    op = Operator(load_site(site), tmp_path / "state")
    op.source.close()
    op.source = _Polls()
    shares, firing, held = [], [], []
    evaluate = op.alerts.engine.evaluate

    def spy(now, observations):
        obs = observations["health"]
        shares.append([o["offline_share"] for o in obs if o.get("pon") == "P1"])
        alerts = evaluate(now, observations)
        firing.append(sorted(a.labels["alertname"] for a in alerts if a.firing))
        return alerts

    op.alerts.engine.evaluate = spy
    try:
        for _ in POLLS:
            figures = op.run_cycle()
            assert figures["olts_failed"] == []
            held.append(op.missed.held)
    finally:
        op.close()
    # what the decisions saw: P1's ONUs online in each cycle's tick, as the alerts did
    assert shares == [[0.0], [0.25], [0.75], [0.75], [0.75], [0.0]]
    assert firing == [[], [], ["PonOffline"], ["PonOffline"], ["PonOffline"], []]
    assert held == [0, 3, 3, 6, 6, 6]  # B, C, D held in cycle 2; A, B, C in cycle 4


# Two OLTs: A, B on OLT-1, C, D on OLT-2. ``None``: the OLT did not answer (no rows, an
# incomplete poll); a missing ONU: a missed poll of an answering OLT.
SILENT = [
    {"OLT-1": {"A": True, "B": True}, "OLT-2": {"C": True, "D": True}},
    {"OLT-1": {"A": True, "B": True}, "OLT-2": None},
    {"OLT-1": {"A": True, "B": True}, "OLT-2": None},
    {"OLT-1": {"B": True}, "OLT-2": None},  # and A missed once
    {"OLT-1": {"A": True, "B": True}, "OLT-2": {"C": False, "D": True}},
    {"OLT-1": {"A": True, "B": True}, "OLT-2": None},
    {"OLT-1": {"A": True, "B": True}, "OLT-2": {"D": True}},
]


class _SilentOlt:
    """Operate's telemetry source replaying :data:`SILENT` (rx −20 − step)."""

    def __init__(self) -> None:
        self.k = 0

    def poll(self):
        from guardian_lib.snmp.poller import OltPollResult, PollReport
        from guardian_lib.snmp.rows import EVENTS_SCHEMA, TELEMETRY_SCHEMA, empty_frame

        ts = T0 + self.k * STEP
        results = []
        for olt, onus in SILENT[self.k].items():
            tel = empty_frame(TELEMETRY_SCHEMA)
            if onus is not None:
                rows = pd.DataFrame({"ts": ts, "onu_id": list(onus), "online": list(onus.values()),
                                     "rx_dbm": -20.0 - self.k, "source": "snmp",
                                     "received_at": ts, "olt_id": olt, "poll_complete": True})  # fmt: skip
                tel = pd.concat([tel, rows], ignore_index=True)
            err = None if onus is not None else "timeout"
            results.append(OltPollResult(olt, "test", tel, empty_frame(EVENTS_SCHEMA),
                                         onus is not None, err))  # fmt: skip
        self.k += 1
        return PollReport(results)

    def close(self) -> None:
        pass


@pytest.mark.parametrize("grace", [1, 2])
def test_a_silent_olt_reads_the_same_in_operate_and_in_decide(tmp_path, grace):
    """An OLT that stops answering: its ONUs keep their last reading for the grace, then
    count as missed, in ``guardian operate``'s cycles and in ``guardian decide``'s replay
    of the warehouse operate wrote (and so in ``guardian alerts replay``)."""
    from guardian_lib.history import HistoryTelemetrySource
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site
    from guardian_lib.warehouse import connect

    site = _site(tmp_path, polling_interval_s=300, missed_poll_grace_steps=grace)
    (tmp_path / "subs.csv").write_text(
        "onu_id,pon_id,olt_id\nA,P1,OLT-1\nB,P1,OLT-1\nC,P2,OLT-2\nD,P2,OLT-2\n"
    )
    op = Operator(load_site(site), tmp_path / "state")
    op.source.close()
    op.source = _SilentOlt()
    seen: list = []
    build = op._cycle_tick

    def spy(ts, known, events):
        seen.append(build(ts, known, events))
        return seen[-1]

    op._cycle_tick = spy
    try:
        failed = [op.run_cycle()["olts_failed"] for _ in SILENT]
        ids = list(op.fleet.onu_ids)
    finally:
        op.close()
    assert failed == [[] if s["OLT-2"] is not None else ["OLT-2"] for s in SILENT]
    con = connect(tmp_path / "wh")
    try:
        end = T0 + (len(SILENT) - 1) * STEP
        replay = list(HistoryTelemetrySource(con, np.array(ids), T0, end, 300, grace_steps=grace))
    finally:
        con.close()
    assert [t.ts for t in seen] == [t.ts for t in replay]
    for m in ("online", "rx_dbm"):
        got = np.array([t.get(m) for t in seen], dtype=float)
        want = np.array([t.get(m) for t in replay], dtype=float)
        np.testing.assert_array_equal(got, want, err_msg=f"operate vs decide: {m}")
    # What that is: C and D held from step 0 for the grace, then not read (offline) until
    # OLT-2 answers again; the count restarts with each answer.
    c = ids.index("C")
    online_c = [float(t.get("online")[c]) for t in seen]
    held = [1.0] * grace + [np.nan] * (3 - grace)
    np.testing.assert_array_equal(online_c, [1.0, *held, 0.0, 0.0, np.nan if grace == 1 else 0.0])


def test_a_step_without_any_reading_is_a_gap_that_moves_no_count():
    mp = MissedPolls(2, grace_steps=1)
    mp.step({"online": np.array([1.0, 1.0])}, np.array([True, True]))
    mp.step({"online": np.array([np.nan, 1.0])}, np.array([False, True]))  # A missed once
    for _ in range(3):  # nothing read at all: the previous step, A's count unchanged
        out = mp.step({"online": np.full(2, np.nan)}, np.array([False, False]))
        np.testing.assert_array_equal(out["online"], [1.0, 1.0])
    assert mp.gaps == 3
    # A missed again: its second step in a row (the gap did not count), past the grace
    out = mp.step({"online": np.array([np.nan, 1.0])}, np.array([False, True]))
    np.testing.assert_array_equal(out["online"], [np.nan, 1.0])
