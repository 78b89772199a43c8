"""A CPE whose PPPoE session the ACS reports down: what ``guardian operate`` applied is
in SILVER, and ``guardian decide`` replays it.

Operate reads such an ONU as loss 100 % (no service) and records the changes of that
view as ``ACS_PPP_DOWN`` / ``ACS_PPP_UP`` RAW events (:mod:`guardian_lib.operate.ppp`);
the replay carries the state across steps. Synthetic network: one OLT of 8 ONUs that
always answers, the NBI reporting one CPE's session down for a while.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from silent_network import audit_decisions, fleet_site, olt_polls, warehouse_inventory

from guardian_lib.operate.ppp import acs_ppp_events
from guardian_lib.silver_ppp import ACS_PPP_DOWN, ACS_PPP_UP

T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
STEP_S = 300.0
ONUS = [f"A{i}" for i in range(8)]
DOWN_FROM, DOWN_TO, CYCLES = 2, 12, 20  # A3's session down in cycles [2, 12)


class _Network:
    """OLT-1's 8 ONUs answer every poll at -20 dBm; the NBI reports each CPE's PPPoE
    status (``down(onu, cycle)``), or fails (``nbi_up(cycle)`` false)."""

    def __init__(self, down, nbi_up=lambda k: True) -> None:
        self.k = -1
        self.down, self.nbi_up = down, nbi_up

    def now(self) -> float:
        return T0.timestamp() + self.k * STEP_S + 20.0

    def poll(self):
        self.k += 1
        return olt_polls(T0 + pd.Timedelta(seconds=self.k * STEP_S), [("OLT-1", ONUS, True)])

    def close(self) -> None:
        pass

    def devices(self, query=None, projection=None):
        if not self.nbi_up(self.k):
            raise ConnectionError("NBI unavailable")
        return [
            {"_id": f"cpe-{o}", "_lastInform": "2026-01-05T00:00:00Z",
             "Device": {"PPP": {"Interface": {"1": {"Status": {
                 "_value": "Down" if self.down(o, self.k) else "Up"}}}}}}
            for o in ONUS
        ]  # fmt: skip


def _a3_down(onu: str, k: int) -> bool:
    return onu == "A3" and DOWN_FROM <= k < DOWN_TO


def _operate(tmp_path: Path, net: _Network, runs=(CYCLES,)) -> list[dict]:
    """``guardian operate`` (simulate mode) on ``net``: ``runs[k]`` cycles in the k-th
    process; the cycles' figures."""
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    site = load_site(fleet_site(tmp_path, [(o, "P1", "OLT-1", f"cpe-{o}") for o in ONUS], STEP_S))
    figures = []
    for cycles in runs:
        op = Operator(site, tmp_path / "state", mode="simulate")
        op.source.close()
        op.source, op.wall, op.cpe_state = net, net.now, NbiCpeState(net)
        try:
            figures += [op.run_cycle() for _ in range(cycles)]
        finally:
            op.close()
    return figures


def _decisions(path: Path) -> list[tuple]:
    return audit_decisions(path)


def _inventory(tmp_path: Path) -> Path:
    """The warehouse ``wh`` with the fleet's inventory, SILVER up to date."""
    return warehouse_inventory(tmp_path, T0)


def _replay(tmp_path: Path, start: pd.Timestamp | None = None) -> list[tuple]:
    """``guardian decide`` (rule scorer) over operate's warehouse: its decisions."""
    from guardian_lib.operate.decide import decide_run

    audit = tmp_path / "replay.duckdb"
    decide_run(tmp_path / "wh", every_minutes=5, models="rules", site=tmp_path / "site.yaml",
               audit_path=audit, warmup_h=0.0, start=start)  # fmt: skip
    return _decisions(audit)


def _records(wh: Path) -> list[tuple]:
    from guardian_lib.warehouse import connect

    con = connect(wh)
    try:
        rows = con.execute(
            "SELECT ts, entity_id, type, payload FROM events WHERE type LIKE 'ACS_PPP%' "
            "ORDER BY ts, type"
        ).fetchall()
    finally:
        con.close()
    return [(pd.Timestamp(t).tz_convert("UTC"), e, ty, p) for t, e, ty, p in rows]


def _at(k: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=k * STEP_S)


def _loss(wh: Path, start: pd.Timestamp, end: pd.Timestamp, onu: str = "A3") -> np.ndarray:
    """``onu``'s ``loss_pct`` in each replayed step from ``start`` to ``end``. [%]"""
    from guardian_lib.history import HistoryTelemetrySource
    from guardian_lib.warehouse import connect

    con = connect(wh)
    try:
        ticks = list(HistoryTelemetrySource(con, np.array(ONUS), start, end, int(STEP_S)))
    finally:
        con.close()
    assert all(e.type not in (ACS_PPP_DOWN, ACS_PPP_UP) for t in ticks for e in t.events)
    return np.array([t.get("loss_pct")[ONUS.index(onu)] for t in ticks])


def test_decide_makes_the_decisions_operate_made_for_a_cpe_with_pppoe_down(tmp_path):
    figures = _operate(tmp_path, _Network(_a3_down))
    assert [f["cpe_sessions_down"] for f in figures] == [
        int(DOWN_FROM <= k < DOWN_TO) for k in range(CYCLES)
    ]
    operate = _decisions(tmp_path / "state" / "audit.duckdb")
    assert any(s == "A3" and a == "open_case" for _, s, a, _ in operate)  # it acted on A3
    wh = _inventory(tmp_path)
    # before: the replay read A3 as served and made none of these decisions
    assert _replay(tmp_path) == operate
    # two rows for a session down 50 minutes: the changes, not one per cycle
    records = _records(wh)
    assert [r[:3] for r in records] == [
        (_at(DOWN_FROM), "A3", ACS_PPP_DOWN), (_at(DOWN_TO), "A3", ACS_PPP_UP),
    ]  # fmt: skip
    assert [json.loads(r[3])["cpe_id"] for r in records] == ["cpe-A3"] * 2
    loss = _loss(wh, T0, _at(CYCLES - 1))
    assert loss.tolist() == [100.0 if DOWN_FROM <= k < DOWN_TO else 0.0 for k in range(CYCLES)]
    # a replay that starts while the session is down carries the state from before it
    assert _loss(wh, _at(5), _at(DOWN_TO))[[0, -1]].tolist() == [100.0, 0.0]


def test_a_restart_while_the_session_is_down_records_no_second_change(tmp_path):
    _operate(tmp_path, _Network(_a3_down), runs=(5, 3, CYCLES - 8))
    wh = _inventory(tmp_path)
    # each restart appends the last change again (a crash may have cut it): SILVER keeps one
    assert [(t, ty) for t, _, ty, _ in _records(wh)] == [
        (_at(DOWN_FROM), ACS_PPP_DOWN), (_at(DOWN_TO), ACS_PPP_UP),
    ]  # fmt: skip
    assert len(list((wh / "lake/raw/events").rglob("acs-ppp-*.parquet"))) == 4
    assert _replay(tmp_path) == _decisions(tmp_path / "state" / "audit.duckdb")
    # one cycle run three times (two crashes), reading A5 down, up, down again: SILVER
    # keeps the three reads, applied as received: down
    from guardian_lib.snmp.poller import append_raw_events

    last = _at(CYCLES - 1)
    for h, (down, up) in enumerate(((["A5"], []), ([], ["A5"]), (["A5"], []))):
        rows = acs_ppp_events(last, down, up, {"A5": "cpe-A5"}, T0 + pd.Timedelta(hours=h))
        append_raw_events(wh, rows, "acs-ppp")
    _inventory(tmp_path)
    assert [ty for t, e, ty, _ in _records(wh) if e == "A5"] == [
        ACS_PPP_DOWN,
        ACS_PPP_DOWN,
        ACS_PPP_UP,
    ]
    assert _loss(wh, last, last, "A5").tolist() == [100.0]


def test_an_nbi_that_goes_down_is_recorded_as_operate_read_it(tmp_path):
    """Operate reads a CPE as served while the NBI is down (SNMP view only): the record
    says so, and the replay reads it as operate did."""
    net = _Network(lambda o, k: o == "A3" and k >= DOWN_FROM, nbi_up=lambda k: not 6 <= k < 9)
    _operate(tmp_path, net)
    wh = _inventory(tmp_path)
    assert [(t, ty) for t, _, ty, _ in _records(wh)] == [
        (_at(DOWN_FROM), ACS_PPP_DOWN), (_at(6), ACS_PPP_UP), (_at(9), ACS_PPP_DOWN),
    ]  # fmt: skip
    loss = _loss(wh, T0, _at(CYCLES - 1))
    assert loss.tolist() == [100.0 if k >= DOWN_FROM and not 6 <= k < 9 else 0.0
                             for k in range(CYCLES)]  # fmt: skip
    assert _replay(tmp_path) == _decisions(tmp_path / "state" / "audit.duckdb")


def test_a_new_state_folder_starts_from_what_silver_records(tmp_path):
    """The state folder is lost while A3's session is down and it comes back up before
    operate starts again: operate starts from SILVER's record (down) and records the UP;
    with an empty start it would leave A3 down in the warehouse for ever."""
    import shutil

    _operate(tmp_path, _Network(_a3_down), runs=(5,))
    shutil.rmtree(tmp_path / "state")
    net = _Network(lambda o, k: False)
    net.k = 4  # the network goes on at cycle 5
    _operate(tmp_path, net, runs=(3,))
    wh = _inventory(tmp_path)
    assert [(t, ty) for t, _, ty, _ in _records(wh)] == [
        (_at(DOWN_FROM), ACS_PPP_DOWN), (_at(5), ACS_PPP_UP),
    ]  # fmt: skip


# --- the reader: order, unknown entities, hostile rows -------------------------------------


def _source_over(events: pd.DataFrame, steps: int = 4, grace: int = 1) -> list:
    """:class:`HistoryTelemetrySource` over in-memory tables: A and B read online at every
    step, ``events`` as SILVER events."""
    from guardian_lib.history import HistoryTelemetrySource
    from guardian_lib.schema import MEASURES

    at = [_at(k) for k in range(steps)]
    tel = pd.DataFrame({"ts": at * 2, "onu_id": ["A"] * steps + ["B"] * steps, "online": True,
                        "rx_dbm": -20.0})  # fmt: skip
    tel = tel.assign(**{m: np.nan for m in MEASURES if m not in tel})
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_t", tel)
    con.register("_e", events)
    con.execute("CREATE TABLE telemetry AS SELECT * FROM _t")
    con.execute("CREATE TABLE events AS SELECT * FROM _e")
    try:
        src = HistoryTelemetrySource(con, np.array(["A", "B"]), T0, at[-1], int(STEP_S), grace)
        return [t.get("loss_pct").tolist() for t in src]
    finally:
        con.close()


def test_rows_of_the_same_onu_and_time_apply_as_received_the_later_read_wins():
    """A cycle cut by a crash recorded A down; run again at the same time, it read the
    ACS anew and recorded A up: the replay reads A up from that step."""
    first = acs_ppp_events(_at(1), ["A"], [], {"A": "c"}, T0 + pd.Timedelta(hours=1))
    again = acs_ppp_events(_at(1), [], ["A"], {"A": "c"}, T0 + pd.Timedelta(hours=2))
    assert _source_over(pd.concat([again, first], ignore_index=True)) == [[0.0, 0.0]] * 4
    # the other way round (up first, down read again later): down from step 1 on
    first = acs_ppp_events(_at(1), [], ["A"], {"A": "c"}, T0 + pd.Timedelta(hours=1))
    again = acs_ppp_events(_at(1), ["A"], [], {"A": "c"}, T0 + pd.Timedelta(hours=2))
    assert _source_over(pd.concat([again, first], ignore_index=True)) == [
        [0.0, 0.0], [100.0, 0.0], [100.0, 0.0], [100.0, 0.0],
    ]  # fmt: skip


def test_records_of_unknown_onus_or_other_entities_and_duplicates_change_nothing_else():
    down = acs_ppp_events(_at(1), ["A", "Z"], [], {}, T0)  # Z: not in the fleet
    olt = acs_ppp_events(_at(1), ["B"], [], {}, T0).assign(entity_type="olt")
    up = acs_ppp_events(_at(3), [], ["A"], {}, T0)
    late = acs_ppp_events(_at(2), ["A"], [], {}, T0 + pd.Timedelta(days=1))  # a duplicate
    rows = pd.concat([up, late, down, olt, down], ignore_index=True)
    assert _source_over(rows) == [[0.0, 0.0], [100.0, 0.0], [100.0, 0.0], [0.0, 0.0]]


def test_an_import_of_an_acs_record_naming_no_onu_is_refused(tmp_path):
    """``guardian ingest --source``: an ``ACS_PPP_*`` row on an OLT would be skipped by
    the replay without a word: refused, the mapping's field named."""
    from guardian_lib.errors import IngestError
    from guardian_lib.mapping import RowOrigin
    from guardian_lib.owndata.config import TableSource
    from guardian_lib.owndata.tables import convert

    frame = pd.DataFrame({"quando": ["2026-01-05 00:10:00"], "equipamento": ["OLT-1"],
                          "alarme": ["PPP CAIU"], "tipo": ["olt"]})  # fmt: skip
    table = TableSource.model_validate({
        "file": "alarmes.csv",
        "columns": {"ts": "quando", "entity_id": "equipamento", "type": "alarme",
                    "entity_type": "tipo"},
        "values": {"type": {"PPP CAIU": ACS_PPP_DOWN}},
    })  # fmt: skip
    origin = RowOrigin("alarmes.csv", csv_lines=True)
    with pytest.raises(IngestError) as info:
        convert("events", origin, frame, table, "UTC")
    assert str(info.value) == (
        "alarmes.csv: row 1 (line 2): column 'tipo': expected 'onu' for the event types "
        "['ACS_SEEN', 'ACS_PPP_DOWN', 'ACS_PPP_UP'], got 'olt'"
    )
    ok = convert("events", origin, frame.assign(tipo="onu"), table, "UTC")
    assert ok["type"].tolist() == [ACS_PPP_DOWN]


def test_rows_whose_append_failed_are_appended_by_the_next_cycle(tmp_path, monkeypatch):
    """The RAW append fails (a full disk): the cycle fails with it, and the next cycle of
    the same process, which sees no change, appends those rows first."""
    from guardian_lib.operate import ppp
    from guardian_lib.operate.ppp import PppRecord

    class Store(dict):
        def put(self, key, value):
            self[key] = value

    real, calls = ppp._append, []

    def flaky(warehouse, rows):
        calls.append(len(rows))
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        real(warehouse, rows)

    monkeypatch.setattr(ppp, "_append", flaky)
    rec, store = PppRecord(["A", "B"], {"A": "cA", "B": "cB"}), Store()
    with pytest.raises(OSError):
        rec.record(_at(1), rec.mask({"cA": False}), store, tmp_path)
    assert rec.record(_at(2), rec.mask({"cA": False}), store, tmp_path) == 0  # no change
    assert calls == [1, 1]
    files = list((tmp_path / "lake/raw/events").rglob("acs-ppp-*.parquet"))
    rows = pd.concat([pd.read_parquet(f) for f in files])
    assert rows[["entity_id", "type"]].values.tolist() == [["A", ACS_PPP_DOWN]]
    assert pd.Timestamp(rows["ts"].iloc[0]) == _at(1)


# --- the batch features (train, evaluate, score) read what operate read ---------------------

#: Features that read the session state (the ONU's own and its neighbours').
_SESSION_FEATURES = ["pppoe_down", "pppoe_down_for_min"] + [
    f"{lvl}_share_{what}" for lvl in ("box", "pon", "olt", "geo")
    for what in ("pppoe_down", "degraded")
]  # fmt: skip


def _operate_features(wh: Path) -> pd.DataFrame:
    """The features operate's loop computes from what it read: the replay's ticks (its
    reading, step for step) fed to the online feature window."""
    from guardian_lib.features import RollingCube
    from guardian_lib.history import HistoryTelemetrySource
    from guardian_lib.warehouse import connect

    con = connect(wh)
    try:
        onus = con.execute("SELECT * FROM onus ORDER BY onu_id").df()
        src = HistoryTelemetrySource(con, onus["onu_id"].to_numpy(), T0, _at(CYCLES - 1),
                                     int(STEP_S))  # fmt: skip
        rc, rows = RollingCube(onus, tick_s=int(STEP_S)), []
        for tick in src:
            rc.update(tick)
            rows.append(rc.latest_features())
    finally:
        con.close()
    return pd.concat(rows, ignore_index=True).set_index(["ts", "onu_id"])


def test_batch_features_read_a_cpe_with_pppoe_down_as_operate_did(tmp_path):
    """``guardian train`` / ``evaluate`` / ``score`` compute features from the warehouse:
    they read A3's session as operate did (before: served, ``pppoe_down`` 0, no loss) —
    every feature of A3 from its first record on, and the session features of every ONU
    (its neighbours' shares) at every step, down and back up."""
    from guardian_lib.features import feature_frame

    _operate(tmp_path, _Network(_a3_down))
    wh = _inventory(tmp_path)
    batch = feature_frame(wh, tick_s=int(STEP_S)).set_index(["ts", "onu_id"])
    online = _operate_features(wh).reindex(batch.index)
    ts = batch.index.get_level_values("ts")
    a3 = batch.index.get_level_values("onu_id") == "A3"
    down = ts.isin([_at(k) for k in range(DOWN_FROM, DOWN_TO)])
    assert batch.loc[down & a3, "pppoe_down"].tolist() == [1.0] * (DOWN_TO - DOWN_FROM)
    assert batch.loc[down & a3, "loss_pct"].tolist() == [100.0] * (DOWN_TO - DOWN_FROM)
    assert (batch.loc[down & ~a3, "pon_share_pppoe_down"] == 1 / 7).all()
    assert batch.loc[~down & a3, "pppoe_down"].sum() == 0  # up again: at once, as operate
    pd.testing.assert_frame_equal(
        batch[_SESSION_FEATURES], online[_SESSION_FEATURES], check_dtype=False, rtol=1e-6
    )
    since = a3 & (ts >= _at(DOWN_FROM))
    assert since.sum() == CYCLES - DOWN_FROM
    # the loss before A3's first record is as stored (SNMP: not read): the 1 h mean agrees
    # once its window lies after that record
    cols = [c for c in batch.columns if c != "loss_mean_1h"]
    pd.testing.assert_frame_equal(
        batch.loc[since, cols], online.loc[since, cols], check_dtype=False, rtol=1e-5
    )
    after = a3 & (ts >= _at(DOWN_FROM) + pd.Timedelta(minutes=55))
    assert after.sum() >= 5
    np.testing.assert_allclose(batch.loc[after, "loss_mean_1h"], online.loc[after, "loss_mean_1h"],
                               rtol=1e-6)  # fmt: skip


def test_batch_features_carry_the_session_state_from_before_their_first_step(tmp_path):
    """A window that starts while the session is down (a date of the feature store, a
    partition) reads it down from its first step: the record lies before the window."""
    from guardian_lib.features import load_cube
    from guardian_lib.warehouse import connect

    _operate(tmp_path, _Network(_a3_down))
    wh = _inventory(tmp_path)
    con = connect(wh)
    try:
        us = [int(_at(k).value // 1000) for k in (5, DOWN_TO + 2)]
        cube = load_cube(con, us[0], us[1], int(STEP_S), onu_ids=["A3", "A4"])
    finally:
        con.close()
    # up again: registered, its loss not read (SNMP), so served, as operate read it
    want = [100.0] * (DOWN_TO - 5) + [0.0] * 3
    np.testing.assert_array_equal(cube.values["loss_pct"][:, 0], want)
    assert np.isnan(cube.values["loss_pct"][:, 1]).all()  # A4: no record, as stored
