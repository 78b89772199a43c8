"""The decision round's fast paths give exactly what reading every frame back gives.

A round reads status and prediction columns as numpy arrays handed over by whoever built
the frame (the Observer, the rule scorer), computes the neighbour and outage evidence
once on arrays, keeps the policy's own tables as :class:`Rows` (arrays, no pandas),
computes case ages per element and hands out empty frames from templates. Each test
compares with the plain way — every column read back from its pandas frame, the
evidence as the public frame functions compute it, each of the policy's tables passed
through a pandas DataFrame and read back (what the policies read before they worked on
arrays), the vectorised pandas time arithmetic, a frame built each time — bit for bit.
"""

import numpy as np
import pandas as pd
import pytest

import guardian_lib.decision._base as base
import guardian_lib.decision.engine as engine
import guardian_lib.decision.expected_cost as expected_cost
import guardian_lib.loop.closed as closed
from guardian_lib.decision import Observer, Snapshot
from guardian_lib.decision._columns import FrameColumns, Rows
from guardian_lib.decision.neighbours import coincident_outages, neighbour_stats
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


def test_observer_folds_events_by_hash_map_as_by_index_lookups(rng):
    """A tick's events find their ONU and customer rows by a hash map: the observer's
    state equals one that looks each up in a pandas Index, unknown ids and non-string
    ids included; the readings' NaN replacement equals ``np.nan_to_num``."""
    from guardian_lib._numeric import nan_to_num as _nan_to_num
    from guardian_lib.loop import EventRow

    n = 12
    onus = pd.DataFrame({"onu_id": [f"O{i}" for i in range(n)], "pon_id": ["P1"] * 6 + ["P2"] * 6,
                         "olt_id": "OLT1", "splitter_id": [f"S{i // 3}" for i in range(n)]})  # fmt: skip
    customers = pd.DataFrame({"customer_id": [f"C{i}" for i in range(n - 1)],
                              "onu_id": [f"O{i}" for i in range(n - 1)],
                              "cpe_id": [f"CPE{i}" for i in range(n - 1)],
                              "region": "north", "segment": "residential"})  # fmt: skip
    fast, plain = Observer(onus, customers), Observer(onus, customers)
    plain._row_map = plain._cust_map = None
    ts = pd.Timestamp("2026-03-01", tz="UTC")
    types = ("LOS", "DYING_GASP", "DHCP_FAIL", "CUSTOMER_CALL", "BOOT")
    ids = [f"O{i}" for i in range(n)] + [f"C{i}" for i in range(n)] + ["X9", 7]
    for k in range(30):
        t = ts + pd.Timedelta(minutes=5 * k)
        online = rng.random(n) > 0.3
        values = {"rx_dbm": np.where(online, rng.normal(-20, 3, n), np.nan),
                  "latency_ms": rng.normal(60, 30, n), "loss_pct": rng.random(n) * 3}  # fmt: skip
        events = tuple(
            EventRow(t, ids[int(j)], "onu", types[int(m)], "info", "{}")
            for j, m in zip(
                rng.integers(0, len(ids), 6), rng.integers(0, len(types), 6), strict=True
            )
        )
        if k % 7 == 3:  # a tick whose ids are all strings
            events = tuple(e for e in events if isinstance(e.entity_id, str))
        for obs in (fast, plain):
            obs.update(Tick(t, {"online": online, **values}, events))
    for name in ("down_type", "flaps", "dhcp_fails", "calls", "last_call_s", "lat_base"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(plain, name), err_msg=name)
    assert fast.calls.sum() > 0 and fast.flaps.sum() > 0 and fast.dhcp_fails.sum() > 0
    x = np.array([np.nan, 1.5, -np.inf, np.inf, 0.0, -2.0])
    for v in (x, x[[0, 1, 4]], x.astype(np.float32), np.arange(4)):
        for nan in (0.0, 100.0):
            want = np.nan_to_num(v, nan=nan)
            got = _nan_to_num(v, nan)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def _equivalent(a, b) -> bool:
    """The same value as a policy reads it: equal numbers of the same kind (NaN equal),
    equal strings, equal timestamps; any missing value (None, NaN, NaT) equal to any
    other (pandas turns a None into NaN in a string column)."""
    if pd.api.types.is_scalar(a) and pd.isna(a):
        return pd.api.types.is_scalar(b) and bool(pd.isna(b))
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and str(a) == str(b)
    if isinstance(a, bool | np.bool_) or isinstance(b, bool | np.bool_):
        return isinstance(b, bool | np.bool_) and isinstance(a, bool | np.bool_) and a == b
    return (
        type(pd.Timestamp(a) if isinstance(a, pd.Timestamp) else a)
        is type(pd.Timestamp(b) if isinstance(b, pd.Timestamp) else b)
        and a == b
    )


def _assert_rows_equal(got: Rows, want: Rows) -> None:
    assert list(got.index) == list(want.index)
    assert set(got.columns) == set(want.columns)
    for c in want.columns:
        g, w = got[c], want[c]
        if w.dtype.kind in "biuf" and g.dtype.kind in "biuf":
            assert g.dtype == w.dtype, c
            np.testing.assert_array_equal(g, w, err_msg=c, strict=True)
        else:
            assert all(_equivalent(x, y) for x, y in zip(g, w, strict=True)), (c, g, w)


def test_rows_take_columns_and_records():
    ts = pd.Timestamp("2026-03-01", tz="UTC")
    cols = {
        "x": np.array([1.5, np.nan, 3.0]),
        "flag": np.array([True, False, True]),
        "case_id": np.array(["A", None, "B"], dtype=object),
        "at": np.array([ts, pd.NaT, ts], dtype=object),
    }
    rows = Rows(np.array(["o1", "o2", "o3"], dtype=object), cols)
    assert rows["x"] is cols["x"] and "flag" in rows and "y" not in rows and len(rows) == 3
    sub = rows.take(np.array([2, 0]))
    assert list(sub.index) == ["o3", "o1"] and list(sub["case_id"]) == ["B", "A"]
    more = sub.with_columns(y=np.array([7, 8]), x=np.array([0.0, 1.0]))
    assert more.columns == ["x", "flag", "case_id", "at", "y"] and list(sub["x"]) == [3.0, 1.5]
    recs = rows.records()
    assert [r["case_id"] for r in recs] == ["A", None, "B"] and recs[1].get("nope", 7) == 7
    assert list(recs[0]) == rows.columns and len(recs[0]) == 4
    with pytest.raises(KeyError, match="no column 'nope'"):
        rows["nope"]
    with pytest.raises(ValueError, match="column 'bad' has 2 values, index has 3"):
        Rows(rows.index, {"bad": np.zeros(2)})
    # Through pandas and back: the same values as the policy reads them.
    _assert_rows_equal(Rows.from_frame(rows.to_frame()), rows)
    assert Rows(np.zeros(0, dtype=object), {}).records() == []


def _through_pandas(rows: Rows) -> Rows:
    """``rows`` as a DataFrame read back: what the policies read before :class:`Rows`."""
    return Rows.from_frame(rows.to_frame())


def _plain_paths(m: pytest.MonkeyPatch) -> None:
    """Every fast path replaced by reading the frames back (the code before them)."""
    m.setattr(Snapshot, "seed_columns", lambda self, columns: None)
    m.setattr(Snapshot, "seed_predictions", lambda self, preds, source, exact=False: None)
    m.setattr(Snapshot, "seed_cases", lambda self, columns: None)
    m.setattr(Snapshot, "seed_fleet", lambda self, onu_ids, row_of: None)
    m.setattr(Snapshot, "rows_of",
              lambda self, ids: self.status.index.get_indexer(pd.Index(list(ids), dtype=object)))  # fmt: skip
    m.setattr(Snapshot, "column", lambda self, name: self.status[name].to_numpy())
    m.setattr(Snapshot, "prediction_columns", lambda self: FrameColumns(self.predictions))
    m.setattr(
        Snapshot, "neighbours",
        lambda self: {c: v.to_numpy() for c, v in neighbour_stats(self.status).items()},
    )  # fmt: skip
    m.setattr(
        Snapshot, "outages",
        lambda self, ev, eligible=None: {
            c: v.to_numpy() for c, v in coincident_outages(self.status, ev, eligible).items()
        },
    )  # fmt: skip
    m.setattr(base, "_seconds_from", _plain_seconds_from)
    m.setattr(FrameColumns, "rows", lambda self, name, rows: self[name][rows])
    m.setattr(
        base.PolicyBase, "_aligned",
        staticmethod(lambda snap, pcols: len(pcols["onu_id"]) == len(snap.status)
                     and np.array_equal(pcols["onu_id"], snap.status.index.to_numpy(dtype=object))),
    )  # fmt: skip
    empty = {
        "cases": lambda: pd.DataFrame(columns=[*base.CASE_COLUMNS, *base.OPTIONAL_CASE_COLUMNS],
                                      index=pd.Index([], name="onu_id")),
        "incidents": lambda: pd.DataFrame([], columns=list(base.INCIDENT_COLUMNS)),
        "reboot_holds": lambda: pd.DataFrame(
            {"rule": [], "until": pd.to_datetime([], unit="s", utc=True)},
            index=pd.Index([], dtype=object, name="target")),
    }  # fmt: skip
    m.setattr(engine, "_empty", lambda kind: empty[kind]())
    m.setattr(engine.Autopilot, "_frame_of", lambda self, name, key, build: build())
    m.setattr(closed, "_events_frame",
              lambda ev: pd.DataFrame(ev, columns=list(closed.EVENT_COLUMNS)))  # fmt: skip
    # The policy's own tables through pandas, as the policies read them before.
    case_costs = expected_cost.case_costs
    m.setattr(expected_cost, "case_costs",
              lambda active, *a, **k: _through_pandas(case_costs(active, *a, **k)))  # fmt: skip


@pytest.mark.parametrize("policy", ["rules", "autopilot", "oracle"])
def test_a_closed_loop_decides_as_with_every_frame_read_back(only_fault, policy):
    """Same tables every round, same audited decisions and actions, same KPIs (tiny,
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
                df = frame(self, snap)
                frames.append((_through_pandas(df) if plain else df, snap.predictions))
                return frames[-1][0]

            def recorded_cases(self, snap, df, covered):
                out, active = case_decisions(self, snap, df, covered)
                actives.append(_through_pandas(active) if plain else active)
                return out, actives[-1]

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
        _assert_rows_equal(df, df0)
    for active, active0 in zip(fast[1], plain[1], strict=True):
        _assert_rows_equal(active, active0)
    for got, want in zip(fast[2], plain[2], strict=True):
        pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert repr(fast[3]) == repr(plain[3])
    actions = set(fast[2][0]["action"])
    # The run exercises what the fast paths touch: cases, incidents, device actions.
    want = {"open_case", "close_case", "open_incident"}
    assert want | ({"reboot"} if policy != "oracle" else set()) <= actions, actions
    assert max(len(a) for a in fast[1]) > 0


def test_case_and_hold_views_are_built_again_when_a_value_changes():
    """The autopilot hands out its last cases / holds frame while their values stay the
    same (type, time zone and unit included) and builds them again otherwise."""
    from guardian_lib.decision import Autopilot, RuleScorer, RulesPolicy

    ap = Autopilot(RulesPolicy(), RuleScorer())
    ts = pd.Timestamp("2026-03-01 10:00", tz="UTC")
    ap.cases["O1"] = {"case_id": "C1", "opened_at": ts, "reboots": 0, "last_reboot_at": pd.NaT,
                      "visit_os_id": None, "notified": False, "last_wifi_change_at": pd.NaT,
                      "wifi_changes": 0}  # fmt: skip

    def plain():
        with pytest.MonkeyPatch.context() as m:
            m.setattr(engine.Autopilot, "_frame_of", lambda self, name, key, build: build())
            return ap.cases_frame()

    first = ap.cases_frame()
    first.loc["O1", "reboots"] = 5  # a change to a copy stays in the copy
    again = ap.cases_frame()
    pd.testing.assert_frame_equal(again, plain(), check_exact=True)
    assert again.loc["O1", "reboots"] == 0
    changes = [("reboots", 1), ("reboots", True), ("last_reboot_at", ts),
               ("last_reboot_at", ts.tz_convert("America/Sao_Paulo")),
               ("last_reboot_at", ts.as_unit("ns")), ("visit_os_id", "OS1")]  # fmt: skip
    for col, value in changes:
        ap.cases["O1"][col] = value
        got = ap.cases_frame()
        pd.testing.assert_frame_equal(got, plain(), check_exact=True)
        assert _same(got.loc["O1", col], plain().loc["O1", col]), (col, value)
    ap.cases["O2"] = dict(ap.cases["O1"], case_id="C2")
    pd.testing.assert_frame_equal(ap.cases_frame(), plain(), check_exact=True)


def test_the_documented_custom_policy_runs_on_rows():
    """docs/autopilot.md "Writing a policy": its example, as written, in a loop."""
    import re
    from pathlib import Path

    from decision_harness import SyntheticNet

    doc = (Path(__file__).parents[2] / "docs" / "autopilot.md").read_text()
    section = doc[doc.index("### Writing a policy") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "docs/autopilot.md", "exec"), namespace)  # noqa: S102 - our own docs
    net = SyntheticNet(1, 8, 4, policy="rules")
    net.ap.policy = namespace["NotifyLongOutages"]()
    dec = net.run(range(0, 60, 5), lambda m: ({2: "LOS"}, {}, ()))
    notes = dec[dec["action"] == "notify"]
    assert list(notes["subject"]) == ["ONU002"]  # once: the case remembers it
    assert notes["mins"].iat[0] == 30.0  # the first round with 30 min of outage
    assert {"open_case", "notify"} <= set(dec["action"])


def test_a_few_rows_of_a_column_are_the_rows_of_the_whole_column():
    ts = pd.Timestamp("2026-03-01", tz="UTC")
    df = pd.DataFrame(
        {
            "s": np.array(["a", None, "c", "d"], dtype=object),  # inferred as strings
            "o": pd.Series([{"k": 1}, None, "x", 2], dtype=object),
            "t": [ts, pd.NaT, ts, ts],
            "k": pd.Categorical(["LOS", "none", "LOS", "none"]),
            "f": [1.0, np.nan, 3.0, 4.0],
        }
    )
    cols = FrameColumns(df, {"f": df["f"].to_numpy()})
    for rows in (np.array([3, 1]), np.array([], dtype=int), np.arange(4)):
        for c in df.columns:
            got, want = cols.rows(c, rows), df[c].to_numpy()[rows]
            assert got.dtype == want.dtype, c
            assert all(_same(a, b) for a, b in zip(got, want, strict=True)), c


@pytest.mark.parametrize("ids", [["O1", "O2", "O3"], ["O1", "O3", "O2"], ["O1", None, "O3"]])
def test_predictions_aligned_with_the_status_as_when_compared_as_objects(ids):
    index = pd.Index(pd.array(["O1", None if None in ids else "O2", "O3"], dtype="str"))
    snap = Snapshot(ts=pd.Timestamp("2026-03-01", tz="UTC"), status=pd.DataFrame(index=index))
    preds = pd.DataFrame({"onu_id": pd.array(ids, dtype="str")})
    pcols = FrameColumns(preds)
    want = np.array_equal(pcols["onu_id"], index.to_numpy(dtype=object))
    assert base.PolicyBase._aligned(snap, FrameColumns(preds)) == want


def _plain_residual_h(elapsed_h, prior, horizon_h=168.0):
    """``lognormal_residual_h`` as first written: temporaries and ``np.trapezoid``."""
    from math import log

    from scipy.special import ndtr

    from guardian_lib.decision.costs import _Z90

    e = np.atleast_1d(np.asarray(elapsed_h, dtype=float))
    mu, sigma = log(prior.median_h), log(prior.p90_h / prior.median_h) / _Z90
    grid = np.linspace(0.0, 1.0, 65)
    t = e[:, None] + grid[None, :] * horizon_h
    with np.errstate(divide="ignore"):
        z = (np.log(np.maximum(t, 1e-9)) - mu) / sigma
    surv = 1.0 - ndtr(z)
    rel = surv / np.maximum(surv[:, :1], 1e-12)
    out = np.trapezoid(rel, dx=horizon_h / (len(grid) - 1), axis=1)
    return out.reshape(np.shape(elapsed_h)) if np.ndim(elapsed_h) else out[0]


def test_lognormal_residual_equals_the_trapezoid_on_temporaries(rng):
    from guardian_lib.decision.costs import Prior, lognormal_residual_h

    priors = [Prior(median_h=4, p90_h=30), Prior(median_h=0.3, p90_h=2.5),
              Prior(median_h=40, p90_h=41)]  # fmt: skip
    for prior in priors:
        for horizon in (2.0, 168.0, 0.25, 2.0):  # 2.0 twice: the cached grid steps
            for n in (0, 1, 7, 60):
                e = rng.exponential(5.0, n)
                e[: n // 3] = 0.0
                if n > 3:
                    e[3] = 1e7
                got, want = (
                    lognormal_residual_h(e, prior, horizon),
                    _plain_residual_h(e, prior, horizon),
                )
                assert got.dtype == want.dtype and got.shape == want.shape
                np.testing.assert_array_equal(got, want)
            for x in (0.0, 3.3, float("nan"), [1.0], np.float32(2.5)):
                got, want = (
                    lognormal_residual_h(x, prior, horizon),
                    _plain_residual_h(x, prior, horizon),
                )
                assert type(got) is type(want) and np.shape(got) == np.shape(want)
                np.testing.assert_array_equal(got, want)
