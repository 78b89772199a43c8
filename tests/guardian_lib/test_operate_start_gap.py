"""``guardian operate`` started while no OLT answers (the poller's network is down, the
host came up before it): the first cycles read nothing at all. Nothing is known, and as in
any gap the collection stopped, not the network: no fleet-wide incident and no outage notice
to every customer. Once a poll reads the ONUs, a real outage is seen as usual."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from silent_network import fleet_site, olt_polls

from guardian_lib.loop.missed import MissedPolls

T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
STEP_S = 300.0
ONUS = [f"A{i:02d}" for i in range(16)]  # P1: A00-A07, P2: A08-A15
DARK, ANSWERS_FROM = 4, 4  # cycles 0-3: no OLT answers; from 4: P2 answers, P1 is down


class _Network:
    """OLT-1 times out for the first ``DARK`` polls; then only P2's ONUs are read (P1's
    feeder is cut: its ONUs have no row). The NBI is down: no ACS evidence either way."""

    def __init__(self) -> None:
        self.k = -1

    def now(self) -> float:
        return T0.timestamp() + self.k * STEP_S + 20.0

    def poll(self):
        self.k += 1
        ts = T0 + pd.Timedelta(seconds=self.k * STEP_S)
        return olt_polls(ts, [("OLT-1", ONUS[8:], self.k >= ANSWERS_FROM)])

    def close(self) -> None:
        pass

    def devices(self, query=None, projection=None):
        raise ConnectionError("NBI unavailable")


def _run(tmp_path: Path, cycles: int) -> dict:
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    rows = [(o, "P1" if i < 8 else "P2", "OLT-1", f"cpe-{o}") for i, o in enumerate(ONUS)]
    op = Operator(load_site(fleet_site(tmp_path, rows, STEP_S)), tmp_path / "st", mode="execute")
    op.source.close()
    net = _Network()
    op.source, op.wall, op.cpe_state = net, net.now, NbiCpeState(net)
    try:
        figures = [op.run_cycle() for _ in range(cycles)]
        notices = list(op.notifier.sent)
    finally:
        op.close()
    con = duckdb.connect(str(tmp_path / "st" / "audit.duckdb"), read_only=True)
    try:
        scopes = con.execute("SELECT DISTINCT scope_type, scope_key FROM incidents").fetchall()
    finally:
        con.close()
    return {"figures": figures, "notices": notices, "scopes": scopes}


def test_a_start_while_no_olt_answers_opens_no_incident_and_sends_no_notice(tmp_path):
    # Before: the first cycle read every ONU as offline, opened an OLT-wide incident and
    # sent the outage notice to all 16 customers; later gaps repeated that cycle.
    out = _run(tmp_path, DARK)
    assert [f["olts_failed"] for f in out["figures"]] == [["OLT-1"]] * DARK
    assert out["scopes"] == [] and out["notices"] == []
    assert all(f["open_incidents"] == 0 for f in out["figures"])


def test_after_the_start_gap_a_real_outage_is_seen_as_usual(tmp_path):
    out = _run(tmp_path, DARK + 4)
    p1 = {(s, k) for s, k in out["scopes"]}
    assert p1 == {("pon", "P1")}, out["scopes"]  # P1's ONUs have no row past the grace
    assert {n[0] for n in out["notices"]} <= set(ONUS[:8])


def test_the_start_gap_is_online_with_unknown_readings_and_holds_nothing():
    mp = MissedPolls(3, grace_steps=1)
    nothing = np.zeros(3, dtype=bool)
    values = {m: np.full(3, np.nan) for m in ("online", "rx_dbm", "loss_pct")}
    out = mp.step(values, nothing)
    np.testing.assert_array_equal(out["online"], [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(out["loss_pct"], [0.0, 0.0, 0.0])
    assert np.isnan(out["rx_dbm"]).all() and mp.gaps == 1 and mp.last is None
    # the first reading: the ONU it lacks is not read (nothing to hold), the others are
    first = {"online": np.array([1.0, 1.0, np.nan]), "rx_dbm": np.array([-20.0, -21.0, np.nan]),
             "loss_pct": np.zeros(3)}  # fmt: skip
    out = mp.step(first, np.array([True, True, False]))
    np.testing.assert_array_equal(out["online"], [1.0, 1.0, np.nan])
    # a gap after it repeats it, as before
    again = mp.step({m: np.full(3, np.nan) for m in first}, nothing)
    np.testing.assert_array_equal(again["rx_dbm"], [-20.0, -21.0, np.nan])
    assert mp.gaps == 2
