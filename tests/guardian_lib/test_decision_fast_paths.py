"""The decision round's fast paths give exactly what reading every frame back gives.

A round reads status, prediction and case columns as numpy arrays handed over by whoever
built the frame (the Observer, the rule scorer, the policy itself), computes case ages
per element and hands out empty frames from templates. Each test compares with the plain
way — every column read back from its pandas frame, the vectorised pandas time
arithmetic, a frame built each time — bit for bit.
"""

import numpy as np
import pandas as pd
import pytest

import guardian_lib.decision._base as base
import guardian_lib.decision.engine as engine
import guardian_lib.loop.closed as closed
from guardian_lib.decision import Observer, Snapshot
from guardian_lib.decision._columns import FrameColumns, records
from guardian_lib.loop import Tick


def _same(a, b) -> bool:
    """Equal values of the same type (missing values equal when of the same type)."""
    return type(a) is type(b) and ((pd.isna(a) and pd.isna(b)) or a == b)


def _plain_seconds_from(ts, times):
    return (pd.to_datetime(pd.Series(times), utc=True) - ts).dt.total_seconds().to_numpy()


def test_seconds_per_element_equal_the_pandas_arithmetic(rng):
    ts = pd.Timestamp("2026-03-01 12:34:56.789123", tz="UTC")
    offsets = rng.integers(-40 * 86400 * 10**6, 40 * 86400 * 10**6, 200)
    times = np.empty(203, dtype=object)
    times[:200] = [ts + pd.Timedelta(microseconds=int(o)) for o in offsets]
    times[200], times[201], times[202] = pd.NaT, None, ts.tz_localize(None)  # naive = UTC
    got = base._seconds_from(ts, times)
    np.testing.assert_array_equal(got, _plain_seconds_from(ts, times))
    assert np.isnan(got[200]) and np.isnan(got[201]) and got[202] == 0.0
    # Beyond ~104 days, or anything but timestamps: the pandas path itself.
    for odd in (ts + pd.Timedelta(days=400), "2026-03-01T00:00:00Z", np.datetime64(1, "s")):
        arr = np.array([times[0], odd], dtype=object)
        np.testing.assert_array_equal(base._seconds_from(ts, arr), _plain_seconds_from(ts, arr))


def test_observer_columns_are_the_status_frames_columns(rng):
    n = 12
    onus = pd.DataFrame({"onu_id": [f"O{i}" for i in range(n)], "pon_id": ["P1"] * 6 + ["P2"] * 6,
                         "olt_id": "OLT1", "splitter_id": [f"S{i // 3}" for i in range(n)]})  # fmt: skip
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n - 1)],
                              "onu_id": [f"O{i}" for i in range(n - 1)],  # O11 has none
                              "cpe_id": [f"CPE{i}" for i in range(n - 1)],
                              "region": "north", "segment": "residential"})  # fmt: skip
    obs = Observer(onus, customers)
    ts = pd.Timestamp("2026-03-01", tz="UTC")
    for k in range(4):
        online = rng.random(n) > 0.3
        values = {"rx_dbm": np.where(online, rng.normal(-20, 3, n), np.nan),
                  "latency_ms": rng.normal(20, 5, n), "loss_pct": rng.random(n) * 3}  # fmt: skip
        obs.update(Tick(ts + pd.Timedelta(minutes=5 * k), {"online": online, **values}, ()))
    status, cols = obs.status_with_columns()
    pd.testing.assert_frame_equal(status, obs.status(), check_exact=True)
    assert set(cols) == set(status.columns)
    for c in status.columns:
        want = status[c].to_numpy()
        assert cols[c].dtype == want.dtype, c
        assert all(_same(a, b) for a, b in zip(cols[c], want, strict=True)), c


def test_rows_read_through_the_column_cache_equal_the_frames_rows():
    ts = pd.Timestamp("2026-03-01", tz="UTC")
    source = {
        "x": np.array([1.5, np.nan, 3.0]),
        "flag": np.array([True, False, True]),
        "case_id": np.array(["A", None, "B"], dtype=object),
        "none": np.array([None, None, None], dtype=object),
        "at": np.array([ts, pd.NaT, ts], dtype=object),
    }
    df = pd.DataFrame(source, index=pd.Index(["o1", "o2", "o3"], dtype=object))
    cols = FrameColumns(df, source)
    assert cols["x"] is source["x"]  # numeric: the array the frame was built from
    rows = records(df, cols)
    for i, row in enumerate(rows):
        want = {c: df[c].to_numpy()[i] for c in df.columns}
        assert list(row) == list(want) and len(row) == len(want)
        for c, v in want.items():
            assert _same(row[c], v), c  # None stays None, nan stays nan
    assert rows[1].get("missing", 7) == 7
    with pytest.raises(KeyError):
        rows[0]["missing"]
    assert records(df.iloc[:0], None) == []


def _plain_paths(m: pytest.MonkeyPatch) -> None:
    """Every fast path replaced by reading the frames back (the code before them)."""
    m.setattr(Snapshot, "seed_columns", lambda self, columns: None)
    m.setattr(Snapshot, "seed_predictions", lambda self, preds, source: None)
    m.setattr(Snapshot, "column", lambda self, name: self.status[name].to_numpy())
    m.setattr(Snapshot, "prediction_columns", lambda self: FrameColumns(self.predictions))
    m.setattr(base.PolicyBase, "columns", lambda self, df: FrameColumns(df))
    m.setattr(base.PolicyBase, "_register", lambda self, df, source: FrameColumns(df))
    m.setattr(base, "_seconds_from", _plain_seconds_from)
    empty = {
        "cases": lambda: pd.DataFrame(columns=[*base.CASE_COLUMNS, *base.OPTIONAL_CASE_COLUMNS],
                                      index=pd.Index([], name="onu_id")),
        "incidents": lambda: pd.DataFrame([], columns=list(base.INCIDENT_COLUMNS)),
        "reboot_holds": lambda: pd.DataFrame(
            {"rule": [], "until": pd.to_datetime([], unit="s", utc=True)},
            index=pd.Index([], dtype=object, name="target")),
    }  # fmt: skip
    m.setattr(engine, "_empty", lambda kind: empty[kind]())
    m.setattr(closed, "_events_frame",
              lambda ev: pd.DataFrame(ev, columns=list(closed.EVENT_COLUMNS)))  # fmt: skip


@pytest.mark.parametrize("policy", ["rules", "autopilot"])
def test_a_closed_loop_decides_as_with_every_frame_read_back(only_fault, policy):
    """Same frames every round, same audited decisions and actions, same KPIs (tiny,
    6 h, frequent hangs, Wi-Fi interference and feeder cuts)."""
    from simulator.backtest import BacktestWorld

    sc = only_fault("cpe_hang", 2000.0, days=0.25)
    faults = sc.faults.model_dump()
    faults["feeder_cut"]["rate_per_year"] = 2000.0
    faults["wifi_interference"]["rate_per_year"] = 2000.0
    sc = sc.with_overrides(faults=faults)

    def run(plain: bool):
        frames, actives = [], []
        with pytest.MonkeyPatch.context() as m:
            if plain:
                _plain_paths(m)
            frame, case_decisions = base.PolicyBase.frame, base.PolicyBase.case_decisions

            def recorded_frame(self, snap):
                frames.append((frame(self, snap), snap.predictions))
                return frames[-1][0]

            def recorded_cases(self, snap, df, covered):
                out, active = case_decisions(self, snap, df, covered)
                actives.append(active)
                return out, active

            m.setattr(base.PolicyBase, "frame", recorded_frame)
            m.setattr(base.PolicyBase, "case_decisions", recorded_cases)
            world = BacktestWorld.build(sc, policy, seed=5)
            world.sim.run()
            audit = (world.audit.frame("decisions"), world.audit.frame("actions"))
            return frames, actives, audit, world.close()

    fast, plain = run(False), run(True)
    assert len(fast[0]) == len(plain[0]) == 24  # a round every 15 min for 6 h
    for (df, preds), (df0, preds0) in zip(fast[0], plain[0], strict=True):
        pd.testing.assert_frame_equal(preds, preds0, check_exact=True)
        pd.testing.assert_frame_equal(df, df0, check_exact=True)
    for active, active0 in zip(fast[1], plain[1], strict=True):
        pd.testing.assert_frame_equal(active, active0, check_exact=True)
    for got, want in zip(fast[2], plain[2], strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert repr(fast[3]) == repr(plain[3])
    actions = set(fast[2][0]["action"])
    # The run exercises what the fast paths touch: cases, incidents, device actions.
    assert {"open_case", "close_case", "open_incident", "reboot"} <= actions, actions
    assert max(len(a) for a in fast[1]) > 0
