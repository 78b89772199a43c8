"""``guardian decide`` on operate's warehouse sees each cycle on the step operate decided it.

Operate decides a cycle at one time on the polling grid and records the ACS's view at it
(``ACS_SEEN``, ``ACS_PPP_*``); the replay steps on SILVER's grid. The polled rows must
land on that same step: on a test network with a scaled clock (the twin), where the poll
is stamped by the host's wall clock, and on a real network whose poll straddles a grid
boundary or whose cycle is bumped a step (an extra cycle a trap started).

Synthetic network: two OLTs of 4 ONUs that always answer; the NBI reports A3's PPPoE
session down for a few cycles (operate reads A3 as loss 100 % and records the change).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from silent_network import audit_decisions, fleet_site, olt_polls, warehouse_inventory

T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
STEP_S = 300
OLTS = {"OLT-1": ["A0", "A1", "A2", "A3"], "OLT-2": ["B0", "B1", "B2", "B3"]}
ONUS = [o for onus in OLTS.values() for o in onus]


class _Network:
    """Poll ``k`` starts at ``starts[k]`` (host time, epoch s); OLT-2 is walked
    ``olt2_after_s`` later (each OLT's rows carry the start of its walk, as the SNMP
    poller stamps them); the poll ends ``walk_s`` after OLT-2's walk began (host time,
    the :meth:`now` operate reads at the end of the poll). The NBI reports A3's PPPoE
    session down in polls ``down``; B2 is read offline in polls ``dark``, and OLT-2 reports
    an ``LOS`` of B1 (at its walk's start) in polls ``los``. [s]"""

    def __init__(self, starts: list[float], down: range, olt2_after_s: float = 0.0,
                 walk_s: float = 2.0, dark: range = range(0), los: tuple = ()) -> None:  # fmt: skip
        self.k = -1
        self.starts, self.down, self.dark, self.los = starts, down, dark, los
        self.olt2_after_s, self.walk_s = olt2_after_s, walk_s

    def now(self) -> float:
        return self.starts[self.k] + self.olt2_after_s + self.walk_s

    def poll(self):
        self.k += 1
        at = pd.Timestamp(self.starts[self.k], unit="s", tz="UTC")
        olts = [(olt, onus, True) for olt, onus in OLTS.items()]
        report = olt_polls(at, olts, offsets_s=(0.0, self.olt2_after_s))
        if self.k in self.dark:
            tel = report.results[1].telemetry
            tel.loc[tel["onu_id"] == "B2", ["online", "rx_dbm"]] = [False, np.nan]
        if self.k in self.los:
            from guardian_lib.snmp.rows import EVENTS_SCHEMA, empty_frame

            at = report.results[1].telemetry["ts"].iloc[0]
            row = pd.DataFrame({"ts": [at], "entity_id": "B1", "entity_type": "onu", "type": "LOS",
                                "severity": "critical", "source": "snmp", "payload": "{}",
                                "received_at": [at]})  # fmt: skip
            report.results[1].events = pd.concat([empty_frame(EVENTS_SCHEMA), row])
        return report

    def close(self) -> None:
        pass

    def devices(self, query=None, projection=None):
        down = self.k in self.down
        return [
            {"_id": f"cpe-{o}", "_lastInform": "2026-01-05T00:00:00Z",
             "Device": {"PPP": {"Interface": {"1": {"Status": {
                 "_value": "Down" if down and o == "A3" else "Up"}}}}}}
            for o in ONUS
        ]  # fmt: skip


def _site(tmp_path: Path, poll_s: float, clock: dict | None = None) -> Path:
    fleet = [(o, f"P-{olt}", olt, f"cpe-{o}") for olt, onus in OLTS.items() for o in onus]
    path = fleet_site(tmp_path, fleet, STEP_S)
    site = yaml.safe_load(path.read_text())
    site["polling_interval_s"] = poll_s
    if clock is not None:
        site["clock"] = clock
    path.write_text(yaml.safe_dump(site))
    return path


def _operate(tmp_path: Path, site_path: Path, net: _Network) -> list[dict]:
    """``guardian operate`` (simulate mode) on ``net``, one cycle per poll of ``net``."""
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    op = Operator(load_site(site_path), tmp_path / "state", mode="simulate")
    op.source.close()
    op.source, op.wall, op.cpe_state = net, net.now, NbiCpeState(net)
    try:
        return [op.run_cycle() for _ in net.starts]
    finally:
        op.close()


def _silver_steps(wh: Path) -> dict[pd.Timestamp, set[str]]:
    """SILVER telemetry: step → the ONUs with a row at it."""
    from guardian_lib.warehouse import connect

    con = connect(wh)
    try:
        rows = con.execute("SELECT ts, onu_id FROM telemetry").fetchall()
    finally:
        con.close()
    out: dict[pd.Timestamp, set[str]] = {}
    for t, onu in rows:
        out.setdefault(pd.Timestamp(t).tz_convert("UTC"), set()).add(onu)
    return out


def _replayed(wh: Path, start: pd.Timestamp, end: pd.Timestamp) -> tuple[dict, dict]:
    """Step → A3's ``loss_pct`` as the replay reads it (its grid: SILVER's) [%], and step
    → the types of its events (the steps with some)."""
    from guardian_lib.history import HistoryTelemetrySource, silver_grid_s
    from guardian_lib.warehouse import connect

    con = connect(wh)
    try:
        grid = silver_grid_s(con, start, end)
        ticks = list(HistoryTelemetrySource(con, np.array(ONUS), start, end, grid))
    finally:
        con.close()
    loss = {t.ts: float(t.get("loss_pct")[ONUS.index("A3")]) for t in ticks}
    return loss, {t.ts: [e.type for e in t.events] for t in ticks if t.events}


def _replay(tmp_path: Path, every_minutes: float = STEP_S / 60) -> list[tuple]:
    from guardian_lib.operate.decide import decide_run

    audit = tmp_path / "replay.duckdb"
    decide_run(tmp_path / "wh", every_minutes=every_minutes, models="rules",
               site=tmp_path / "site.yaml", audit_path=audit, warmup_h=0.0)  # fmt: skip
    return audit_decisions(audit)


def _assert_cycles_on_their_steps(
    tmp_path: Path, figures: list[dict], step_s: float = STEP_S
) -> tuple[list, dict]:
    """Each cycle's rows are SILVER's rows at the cycle's time (none elsewhere), the
    replay reads A3 as operate did at each of them, and decides as operate did (the
    decisions returned, and the replay's events by step)."""
    wh = warehouse_inventory(tmp_path, T0)
    cycles = [pd.Timestamp(f["ts"]) for f in figures]
    assert _silver_steps(wh) == {ts: set(ONUS) for ts in cycles}
    loss, events = _replayed(wh, cycles[0], cycles[-1])
    assert {ts: loss[ts] for ts in cycles} == {
        ts: 100.0 * f["cpe_sessions_down"] for ts, f in zip(cycles, figures, strict=True)
    }
    operate = audit_decisions(tmp_path / "state" / "audit.duckdb")
    assert any(s == "A3" and a == "open_case" for _, s, a, _ in operate)  # it acted on A3
    assert _replay(tmp_path, step_s / 60) == operate
    return operate, events


def test_a_network_on_a_scaled_clock_is_replayed_on_the_steps_operate_decided(tmp_path):
    """The twin: network time = epoch + (wall - wall_epoch) × speed. The poll's rows are
    stamped by the host's wall clock; before, 16 cycles half a wall second apart fell on
    one SILVER step of the host's time, away from operate's records, and the replay
    decided nothing operate decided."""
    speed, wall0 = 600.0, pd.Timestamp("2026-12-05T11:00:00", tz="UTC").timestamp()
    # one cycle per network step (0.5 wall s); OLT-2 walked 0.6 network s after OLT-1,
    # the poll over 1.2 network s after that
    starts = [wall0 + k * STEP_S / speed for k in range(16)]
    net = _Network(starts, down=range(2, 10), olt2_after_s=0.001, walk_s=0.002)
    clock = {"speed": speed, "epoch": T0.isoformat(), "wall_epoch": wall0}
    figures = _operate(tmp_path, _site(tmp_path, STEP_S / speed, clock), net)
    cycles = [pd.Timestamp(f["ts"]) for f in figures]
    assert cycles == [T0 + pd.Timedelta(seconds=k * STEP_S) for k in range(16)]
    _assert_cycles_on_their_steps(tmp_path, figures)
    # the rows keep when they were polled, on the network's clock
    raw = pd.concat(
        pd.read_parquet(f) for f in (tmp_path / "wh/lake/raw/telemetry").rglob("*.parquet")
    )
    polled = raw.loc[raw["onu_id"] == "B0", "polled_at"].sort_values()
    expected = [T0 + pd.Timedelta(seconds=k * STEP_S + 0.6) for k in range(16)]
    assert (polled.dt.round("ms") == pd.DatetimeIndex(expected).round("ms")).all()


def test_polls_across_a_grid_boundary_and_a_bumped_cycle_keep_their_steps(tmp_path):
    """A real network (no clock). Cycle 1's poll straddles the boundary between two
    steps (OLT-1 walked 2:20 after a step, OLT-2 20 s later: past half a step); cycle 3
    is an extra cycle (a trap) 1:40 after cycle 2, bumped to the next step; the cycles
    after it keep the trap's phase, 1:40 after a step, and are bumped too. Before, their
    rows fell on the steps SILVER rounds each row's own time to: a step earlier than the
    cycle's records from cycle 3 on, two cycles on one step, and the replay opened B2's
    case (dark from cycle 5) a step before operate did. An event the poll reports after
    the cycle's time (cycles 1 and 2 round down to theirs) was replayed a step late."""
    after_t0 = [0, 440, 610, 700, *range(1000, 3101, STEP_S)]  # [s]
    starts = [T0.timestamp() + s for s in after_t0]
    net = _Network(starts, down=range(2, 7), olt2_after_s=20.0, dark=range(5, 10),
                   los=(1, 2, 8))  # fmt: skip
    figures = _operate(tmp_path, _site(tmp_path, STEP_S), net)
    cycles = [pd.Timestamp(f["ts"]) for f in figures]
    assert cycles == [T0 + pd.Timedelta(seconds=k * STEP_S) for k in range(len(starts))]
    decisions, events = _assert_cycles_on_their_steps(tmp_path, figures)
    assert (cycles[5], "B2", "open_case", True) in decisions
    assert events == {cycles[k]: ["LOS"] for k in (1, 2, 8)}


def test_a_90_s_network_is_stored_and_replayed_on_90_s_steps(tmp_path):
    """Polling every 90 s: operate's cycles, SILVER's steps and the replay's (deciding
    every 1.5 minutes, as operate decides every cycle) are the same. Before, SILVER's grid
    was whole minutes: 90 s made 2, two cycles in four fell on one step (one lost) and the
    replay could not decide every cycle."""
    step = 90
    starts = [T0.timestamp() + k * step + 5.0 for k in range(14)]
    net = _Network(starts, down=range(2, 6), olt2_after_s=3.0, dark=range(7, 12))
    figures = _operate(tmp_path, _site(tmp_path, step), net)
    cycles = [pd.Timestamp(f["ts"]) for f in figures]
    assert cycles == [T0 + pd.Timedelta(seconds=k * step) for k in range(len(starts))]
    decisions, _events = _assert_cycles_on_their_steps(tmp_path, figures, step)
    assert any(s == "B2" and a == "open_case" for _, s, a, _ in decisions)
