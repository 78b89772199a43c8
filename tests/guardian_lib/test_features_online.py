"""RollingCube: online features (running window sums) equal the batch computation."""

import numpy as np
import pandas as pd
import pytest

from guardian_lib.features import RollingCube, compute_features
from guardian_lib.features._online import BUFFER_DTYPE
from guardian_lib.features._windows import ffill, run_length, run_length_at, window_min


def _append(rc: RollingCube, cube, k: int) -> None:
    rc.update(cube.tick(k))


def _batch(cube, last: int, window: int, dtype=BUFFER_DTYPE) -> pd.DataFrame:
    """Batch features at tick ``last`` over the ``window`` ticks a RollingCube holds,
    from the readings rounded to ``dtype`` (as the RollingCube stores them)."""
    first = max(last + 1 - window, 0)
    trimmed = type(cube)(
        onus=cube.onus,
        t0_us=cube.t0_us + first * cube.tick_s * 1_000_000,
        tick_s=cube.tick_s,
        values={m: v[first : last + 1].astype(dtype) for m, v in cube.values.items()},
        events=cube.events.assign(tick=cube.events["tick"] - first).query(
            "tick >= 0 and tick <= @last - @first"
        ),
        olt_alarms=cube.olt_alarms.iloc[0:0],
        orders=cube.orders.iloc[0:0],
    )
    return compute_features(trimmed, np.array([last - first]))


@pytest.mark.parametrize("window", [30, 80])
def test_running_sums_match_batch_long_after_the_buffer_shifts(cube, window):
    # Small windows: 24 h and 7 d windows are capped at them, and more than 2 × window
    # appends pass after the running sums start, so the buffer shifts several times
    # and every running window is recomputed from the buffer a few times (with 80,
    # the long ones one per tick).
    rc = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    last = min(cube.n_ticks - 1, 7 * window + 3)
    checked = 0
    for k in range(last + 1):
        _append(rc, cube, k)
        assert sum(s.w >= 64 and s.rebased == k for s in rc._sums.values()) <= 1
        # From the first tick on (sums start before the window is full), then sparsely.
        if k in (0, 1, 2, 5, 13) or k % (window // 3) == 0 or k == last:
            pd.testing.assert_frame_equal(
                rc.latest_features(), _batch(cube, k, window), rtol=1e-6, atol=1e-6
            )
            checked += 1
    assert last > 6 * window and checked > 20
    # Every running window was recomputed recently (bounded rounding error and offsets).
    assert rc._sums and all(last - s.origin < 2 * s.w for s in rc._sums.values())
    assert any(s.w == window for s in rc._sums.values())


def test_float32_window_stays_within_input_rounding_of_the_float64_batch(cube):
    # The buffer holds float32 readings: against the batch over the original float64
    # readings, features differ by the inputs' rounding only (1e-7 relative), which
    # ratios and slopes amplify: 1e-5 relative (to max(1, |value|)), and hours to the
    # critical level (margin / slope) 1e-4 relative.
    window = 80
    rc = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    checked = 0
    for k in range(3 * window):
        _append(rc, cube, k)
        if k % 37 == 5:
            got = rc.latest_features()
            want = _batch(cube, k, window, dtype=np.float64)
            for col in got.columns[2:]:
                x, y = got[col].to_numpy(float), want[col].to_numpy(float)
                np.testing.assert_array_equal(np.isnan(x), np.isnan(y), err_msg=col)
                tol = 1e-4 if col == "rx_hours_to_critical" else 1e-5
                err = np.abs(x - y) / np.maximum(1.0, np.abs(y))
                assert np.nanmax(err, initial=0.0) <= tol, (col, k, np.nanmax(err))
            checked += 1
    assert checked >= 6
    assert next(iter(rc._buf.values())).dtype == np.float32


def test_running_sums_started_late_and_a_stale_view_fall_back(cube):
    window = 40
    rc = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    for k in range(102):
        _append(rc, cube, k)
    view = rc.cube()  # the window ending at tick 101
    pd.testing.assert_frame_equal(
        compute_features(view, np.array([view.n_ticks - 1])),
        _batch(cube, 101, window),
        rtol=1e-6,
        atol=1e-6,
    )
    # Tick 102 does not compact the buffer (ticks 50, 60, ..., 100 did): the view's
    # rows stay in place.
    _append(rc, cube, 102)
    # The view still reads ticks up to 101; its running sums have moved on, so the
    # window functions sum the view's matrix instead.
    assert view.running["rx_dbm"].sums(12) is None
    pd.testing.assert_frame_equal(
        compute_features(view, np.array([view.n_ticks - 1])),
        _batch(cube, 101, window),
        rtol=1e-6,
        atol=1e-6,
    )
    pd.testing.assert_frame_equal(
        rc.latest_features(), _batch(cube, 102, window), rtol=1e-6, atol=1e-6
    )


def test_run_length_at_and_window_min_equal_the_full_computation(rng):
    flag = rng.random((200, 9)) < 0.8
    flag[:, 0] = True  # a run as long as the matrix
    flag[:, 1] = False
    rows = np.array([0, 1, 57, 199])
    full = run_length(flag)
    np.testing.assert_array_equal(run_length_at(flag, rows), full[rows])
    for cap in (1, 5, 60):
        np.testing.assert_array_equal(
            np.minimum(run_length_at(flag, rows, cap=cap), cap), np.minimum(full[rows], cap)
        )
    x = rng.normal(size=(200, 9))
    x[rng.random(x.shape) < 0.3] = np.nan
    x[150:, 2] = np.nan
    for w in (1, 12, 50):
        expected = np.array(
            [np.nanmin(np.r_[x[max(r - w + 1, 0) : r + 1], np.full((1, 9), np.inf)], axis=0)
             for r in rows]
        )  # fmt: skip
        expected[np.isinf(expected)] = np.nan
        np.testing.assert_array_equal(window_min(x, w, rows), expected)


def test_ffill_equals_a_tick_by_tick_loop(rng):
    def loop(x, limit):  # the definition: last valid value, if at most `limit` ticks old
        out, age, last = x.copy(), np.zeros(x.shape[1]), np.full(x.shape[1], np.nan)
        for t in range(len(x)):
            miss = np.isnan(x[t])
            age = np.where(miss, age + 1, 0)
            last = np.where(miss, last, x[t])
            out[t] = np.where(miss & (age <= limit), last, x[t])
        return out

    # Few to most values missing, in C and Fortran order (a column selection of the
    # window is the latter), float64 and the window's float32.
    for share, order, dtype in ((0.0, "C", float), (0.005, "F", float), (0.3, "C", np.float32),
                                (0.9, "F", np.float32)):  # fmt: skip
        x = np.asarray(rng.normal(size=(200, 60)), dtype=dtype, order=order)
        x[rng.random(x.shape) < share] = np.nan
        x[30:100, 3] = np.nan  # one long gap
        for limit in (0, 1, 2, 6, 288):
            np.testing.assert_array_equal(ffill(x, limit), loop(x, limit))


def test_a_restored_cube_gives_the_features_of_the_one_that_kept_running(cube):
    import pickle

    window = 40
    a = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    for k in range(95):  # past a buffer shift, running sums started
        _append(a, cube, k)
    a.latest_features()
    b = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    b.load_state_dict(pickle.loads(pickle.dumps(a.state_dict())))
    assert b.n_ticks == a.n_ticks == window
    for k in range(95, 110):
        _append(a, cube, k)
        _append(b, cube, k)
    pd.testing.assert_frame_equal(b.latest_features(), a.latest_features(), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="expected the tick"):
        _append(b, cube, 200)  # the restored clock still checks the spacing


def test_a_window_saved_as_float64_restores_into_the_float32_buffer(cube):
    # States written before the window became float32 hold float64 readings.
    window = 40
    a = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    for k in range(60):
        _append(a, cube, k)
    state = a.state_dict()
    assert all(v.dtype == BUFFER_DTYPE for v in state["values"].values())
    state["values"] = {m: v.astype(np.float64) for m, v in state["values"].items()}
    b = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    b.load_state_dict(state)
    assert next(iter(b._buf.values())).dtype == BUFFER_DTYPE
    # Window plus a quarter, not twice the window.
    assert len(next(iter(b._buf.values()))) == window + window // 4
    pd.testing.assert_frame_equal(b.latest_features(), a.latest_features())


def test_the_cube_views_events_frame_is_the_constructors_frame(cube):
    """The events of each cube view equal the frame ``pd.DataFrame`` builds from the held
    events (the ticks relative to the window; none left: its empty frame)."""
    from guardian_lib.loop.tick import EventRow, Tick

    window = 12
    rc = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    rng = np.random.default_rng(3)
    ids = cube.onus["onu_id"].astype(str).to_numpy()
    seen = empty = 0
    for k in range(min(cube.n_ticks, 10 * window)):
        t = cube.tick(k)
        # Bursts of events, then quiet spells longer than the window (all of them leave).
        n_new = rng.integers(0, 4) if (k // window) % 3 == 0 else 0
        extra = tuple(
            EventRow(t.ts, str(rng.choice(ids)), "onu", str(rng.choice(["LOS", "REBOOT", "X"])),
                     "info")
            for _ in range(n_new)
        )  # fmt: skip
        rc.update(Tick(t.ts, t.values, t.events + extra))
        view = rc.cube()
        start = rc._first_tick + max(rc._pos - window, 0)
        if rc._events:
            tick, onu, etype = zip(*rc._events, strict=True)
            rel = np.array(tick, dtype=np.int64) - start
            keep = rel >= 0
            want = pd.DataFrame(
                {
                    "onu": np.array(onu, dtype=np.int64)[keep],
                    "tick": rel[keep],
                    "type": np.array(etype, dtype=object)[keep],
                }
            )
            seen += int(keep.any())
            empty += int(not keep.any())
        else:
            want = pd.DataFrame(columns=["onu", "tick", "type"])
        pd.testing.assert_frame_equal(view.events, want, check_exact=True)
        assert list(view.events.dtypes) == list(want.dtypes)
    assert seen > 5 and empty > 0  # and a window whose held events all left it


def test_events_are_filed_as_the_frame_lookup_files_them(cube):
    """Each tick's events are filed (tick, ONU row, type) as selecting the frame of
    ``Tick.onu_events()`` by type and looking its ids up in the fleet's index does: calls
    mapped through their payload, ids of other fleets, missing or numeric ids, types the
    features do not count."""
    import json

    from guardian_lib.features._cube import EVENT_FEATURE_TYPES
    from guardian_lib.loop.tick import EventRow, Tick

    rng = np.random.default_rng(5)
    rc = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=10)
    index = pd.Index(cube.onus["onu_id"].astype(str))
    ids = list(index) + ["ELSEWHERE", "7"]
    want: list[tuple[int, int, str]] = []
    for k in range(40):
        t = cube.tick(k)
        extra = []
        for _ in range(rng.integers(0, 5)):
            kind = str(rng.choice(["LOS", "REBOOT", "CUSTOMER_CALL", "OLT_ALARM", "X"]))
            onu = str(rng.choice(ids))
            if kind == "CUSTOMER_CALL":
                payload_id = rng.choice([onu, None, 7], p=[0.8, 0.1, 0.1])
                payload = json.dumps({"onu_id": None if payload_id is None else payload_id})
                extra.append(EventRow(t.ts, "C1", "customer", kind, "info", payload))
            else:
                extra.append(EventRow(t.ts, onu, str(rng.choice(["onu", "olt"])), kind, "info"))
        tick = Tick(t.ts, t.values, t.events + tuple(extra))
        ev = tick.onu_events()
        if len(ev):
            ev = ev[ev["type"].isin(EVENT_FEATURE_TYPES)]
            idx = index.get_indexer(ev["onu_id"].astype(str).to_numpy())
            want += [(k, int(i), str(t)) for i, t in zip(idx, ev["type"], strict=True) if i >= 0]
        want = [e for e in want if e[0] >= k - 10]
        rc.update(tick)
        assert rc._events == want
        for etype, (ticks, onus) in rc._by_type.items():
            assert list(zip(ticks, onus, strict=True)) == [(a, b) for a, b, c in want if c == etype]
    assert len(want) > 10


@pytest.mark.parametrize("slope", [False, True])
def test_compiled_slide_of_running_sums_is_the_numpy_update_bit_for_bit(slope):
    # The compiled step must give exactly what the NumPy expressions it replaced gave
    # (the scores of the closed loop are reproduced to the bit): a tick added with its
    # NaN read as "not valid, 0", and a leaving tick taken out, in that order.
    from guardian_lib.features._kernels import slide_sums

    rng = np.random.default_rng(11)
    n = 500
    sums = tuple(rng.normal(size=n) * 1e3 for _ in range(5 if slope else 2))
    want = [s.copy() for s in sums]
    new, old = (rng.normal(-20, 3, size=n).astype(BUFFER_DTYPE) for _ in range(2))
    new[rng.random(n) < 0.2] = np.nan
    old[rng.random(n) < 0.2] = np.nan
    for row, k, sign in ((new, 37.0, 1.0), (old, 5.0, -1.0)):
        valid = (~np.isnan(row)).astype(np.float64)
        x = np.where(~np.isnan(row), row, 0.0).astype(np.float64)
        want[0] += sign * valid
        want[1] += sign * x
        if slope:
            want[2] += (sign * k) * valid
            want[3] += (sign * k * k) * valid
            want[4] += (sign * k) * x
    slide_sums(sums, new, 37, old, 5)
    for got, exp in zip(sums, want, strict=True):
        assert np.array_equal(got, exp)
        assert got.tobytes() == exp.tobytes()
    # Without a leaving tick only the new one is added.
    again = tuple(s.copy() for s in sums)
    slide_sums(again, new, 38, None, 0)
    assert np.array_equal(again[0], sums[0] + (~np.isnan(new)))
