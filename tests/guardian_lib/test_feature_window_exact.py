"""The online feature window's shortcuts give exactly what the whole-fleet formulas give.

A decision round computes the features of one tick. Run lengths are read as one block
per running column; flaps and the offline share are counted on the ONUs that reported
offline only, PPPoE down on those that lost all traffic only; a neighbour level's flags
go through one stacked group sum. Each test writes the plain formula (as the feature
code had it) and compares bit for bit, on random windows with gaps, offline runs and
flaps.
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import guardian_lib.features._compute as compute
from guardian_lib.features import MEASURES, RollingCube, compute_features
from guardian_lib.features._cube import Cube
from guardian_lib.features._windows import (
    event_counts,
    ffill,
    ffill_at,
    last_event_at,
    last_valid_at,
    run_length,
    run_length_at,
    window_mean,
    window_sum,
)


def _status_window(rng, n_ticks: int, n_onus: int) -> dict[str, np.ndarray]:
    """Readings of ``n_onus`` ONUs: most healthy, some flapping, some dark for hours,
    polls missed at random."""
    online = np.ones((n_ticks, n_onus))
    for j in rng.choice(n_onus, n_onus // 5, replace=False):
        for _ in range(rng.integers(1, 4)):  # offline runs of 1 tick to a day
            start = rng.integers(0, n_ticks)
            online[start : start + rng.integers(1, 300), j] = 0.0
    # Sessions down (all traffic lost) on a third of the ONUs.
    lossy = rng.random(n_onus) < 0.3
    loss = np.where((rng.random((n_ticks, n_onus)) < 0.03) & lossy, 100.0, 0.5)
    online[rng.random((n_ticks, n_onus)) < 0.05] = np.nan  # missed polls
    dark = rng.choice(n_onus, 3, replace=False)
    online[:, dark[0]] = np.nan  # never reported
    online[: n_ticks // 2, dark[1]] = np.nan
    online[online == 0] = np.where(rng.random(int((online == 0).sum())) < 0.7, np.nan, 0.0)
    values = {m: np.full((n_ticks, n_onus), -20.0) for m in ("rx_dbm", "latency_ms")}
    values.update(online=online, loss_pct=np.where(np.isnan(online), np.nan, loss))
    values["uptime_s"] = np.full((n_ticks, n_onus), 3600.0)
    return values


def _cube(values: dict[str, np.ndarray]) -> Cube:
    n = next(iter(values.values())).shape[1]
    onus = pd.DataFrame({"onu_id": [f"o{i}" for i in range(n)], "distance_m": 1000.0})
    return Cube(onus, 0, 300, values, pd.DataFrame(), pd.DataFrame())


def _plain_counts(st: compute._Status, w: compute._Windows) -> dict[str, np.ndarray]:
    """Reference: flaps and offline share over every ONU of the slice."""
    on = np.where(np.isnan(st.online), 1.0, st.online)
    drops = np.zeros_like(on)
    drops[1:] = (on[:-1] == 1) & (on[1:] == 0)
    return {
        "flaps_1h": window_sum(drops, w.w1h, st.r)[0],
        "flaps_24h": window_sum(drops, w.w24, st.r)[0],
        "offline_share_24h": window_mean(
            np.where(np.isnan(st.online), np.nan, st.offline), w.w24, st.r
        ),
    }


@pytest.mark.parametrize("rows", [[599], [10, 300, 599], list(range(0, 600, 7))])
def test_status_counts_on_the_flapping_onus_equal_the_whole_fleet(rng, rows):
    cube = _cube(_status_window(rng, 600, 300))
    w = compute._windows(cube.tick_s)
    st = compute._status(cube, np.array(rows), w.w24)
    got = compute._status_features(cube, st, w)
    want = _plain_counts(st, w)
    assert want["flaps_24h"].sum() > 0 and np.isnan(want["offline_share_24h"]).any()
    assert ((want["offline_share_24h"] > 0) & (want["offline_share_24h"] < 1)).any()
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    # PPPoE down, filled on the ONUs that lost all traffic in the slice only.
    ppp = (st.online == 1) & (ffill(st.s["loss_pct"], limit=1) >= 99.9)
    np.testing.assert_array_equal(st.pppoe_down, ppp)
    assert ppp.any() and not ppp[:, ~(st.s["loss_pct"] >= 99.9).any(axis=0)].any()


@pytest.mark.parametrize("cap", [None, 1, 50, 288])
def test_run_lengths_read_as_a_block_equal_the_step_back(rng, cap):
    flag = rng.random((400, 120)) < 0.9
    flag[:, :10] = True  # runs as long as the matrix
    flag[:, 10] = False
    full = run_length(flag)
    want = full if cap is None else np.minimum(full, cap)
    few, many = np.array([0, 57, 399]), np.arange(400)
    np.testing.assert_array_equal(run_length_at(flag, few, cap=cap), want[few])
    np.testing.assert_array_equal(run_length_at(flag, many, cap=cap), want)
    assert want[few].max() == (400 if cap is None else cap)


def test_stacked_neighbour_shares_equal_one_call_per_flag(rng):
    group = rng.integers(0, 23, 500)
    flags = [rng.random((2, 500)) < 0.3, rng.integers(0, 5, (2, 500)) + 0.0]
    stacked, size = compute._neighbour_share(np.concatenate(flags), group)
    for k, flag in enumerate(flags):
        alone, alone_size = compute._neighbour_share(flag, group)
        np.testing.assert_array_equal(stacked[2 * k : 2 * k + 2], alone)
        np.testing.assert_array_equal(size[:2], alone_size)


def _fleet(n_onus: int) -> pd.DataFrame:
    """An inventory of ``n_onus`` ONUs in boxes of 4 and PONs of 16."""
    i = np.arange(n_onus)
    return pd.DataFrame(
        {
            "onu_id": [f"o{k:03d}" for k in i],
            "pon_id": [f"olt{k // 64}/0/{k // 16}" for k in i],
            "splitter_id": [f"box{k // 4}" for k in i],
            "olt_id": [f"olt{k // 64}" for k in i],
            "lat": -23.5 + (i // 8) * 0.01,
            "lon": -46.6 + (i % 8) * 0.01,
            "distance_m": 1000.0 + i,
        }
    )


def _random_tick(rng, online: np.ndarray, lossy: np.ndarray) -> dict[str, np.ndarray]:
    """One tick's readings for the given online status (NaN: nothing reported)."""
    n = len(online)
    on = online == 1
    values = {m: np.where(on, rng.normal(-20, 1, n), np.nan) for m in MEASURES}
    values["online"] = online
    values["uptime_s"] = np.where(np.isnan(online), np.nan, 3600.0)
    values["loss_pct"] = np.where(on, np.where(lossy & (rng.random(n) < 0.3), 100.0, 0.5), np.nan)
    return values


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Equal frames, bit for bit (NaN where NaN), naming the columns that differ."""
    assert list(got.columns) == list(want.columns) and (got.dtypes == want.dtypes).all()
    differ = [c for c in got.columns if not got[c].equals(want[c])]
    assert not differ, f"columns differ: {differ}"


@pytest.mark.parametrize(("tick_s", "window", "n_ticks"), [(300, 300, 420), (7200, 40, 120)])
def test_status_from_marks_equals_the_slice_computation(rng, tick_s, window, n_ticks):
    # A rolling window marks the ONUs that reported offline or lost their session; the
    # newest tick's status features look at those only. Against the plain computation
    # over every ONU of the slice (the same cube without marks), bit for bit, on a fleet
    # with offline runs, flaps, lost sessions, missed polls and silences longer than the
    # carry (also across the slice's first tick), after the buffer has shifted; also
    # once restored from a saved state, and with a 2-hour tick (a day of 12 ticks).
    n = 96
    rc = RollingCube(_fleet(n), tick_s=tick_s, window_ticks=window)
    w = compute._windows(tick_s)
    status = np.ones(n)
    flappy = np.arange(n) % 3 == 0  # a third flaps, a third loses sessions, a third not
    lossy = (np.arange(n) % 3 == 1) & (rng.random(n) < 0.5)
    quiet = np.arange(n) % 3 == 2
    phase = np.arange(n) * 7
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    checked = 0
    for k in range(n_ticks):
        flip = flappy & (rng.random(n) < 0.03)
        status = np.where(flip, 1.0 - status, status)  # offline runs and flaps
        online = status.copy()
        online[rng.random(n) < 0.05] = np.nan  # missed polls
        online[(online == 0) & (rng.random(n) < 0.6)] = np.nan  # offline sends nothing
        # Silences longer than the carry on ONUs that never report offline, each in its
        # own phase, so that some end or last at every offset from the carry's limits.
        period = 2 * w.w24 + 2
        silent = quiet & ((k + phase) // period % 2 == 1)
        online[silent] = np.nan
        went = np.flatnonzero(flip & (status == 0))
        events = pd.DataFrame(
            {"onu_id": [f"o{j:03d}" for j in went], "type": np.where(went % 2, "LOS", "DYING_GASP")}
        )
        rc._append(t0 + pd.Timedelta(seconds=k * tick_s), _random_tick(rng, online, lossy), events)
        if k % 11 == 0 or k == n_ticks - 1:
            cube = rc.cube()
            rows = np.array([cube.n_ticks - 1])
            st = compute._status(cube, rows, w.w24)
            assert st.cols is not None and 0 < len(st.cols) < n
            plain = replace(cube, status_marks={}, events_by_type={})
            by_type = compute._events_by_type(cube.events)
            assert sorted(by_type) == sorted(cube.events_by_type) and "LOS" in by_type
            for etype, (onu, tick) in by_type.items():
                np.testing.assert_array_equal(cube.events_by_type[etype][0], onu)
                np.testing.assert_array_equal(cube.events_by_type[etype][1], tick)
            full = compute._status(plain, rows, w.w24)
            assert full.cols is None
            np.testing.assert_array_equal(st.online_r, full.online[full.r])
            back = np.maximum(st.r - w.w15, 0)
            for k_rows in (st.r, back):
                np.testing.assert_array_equal(st.offline_at(k_rows), full.offline[k_rows])
                np.testing.assert_array_equal(st.pppoe_down_at(k_rows), full.pppoe_down[k_rows])
            _assert_same(compute_features(cube, rows), compute_features(plain, rows))
            checked += 1
    assert checked > 10 and rc._first_tick > 0  # the buffer has shifted
    restored = RollingCube(_fleet(n), tick_s=tick_s, window_ticks=window)
    restored.load_state_dict(rc.state_dict())
    cube = restored.cube()
    rows = np.array([cube.n_ticks - 1])
    _assert_same(
        compute_features(cube, rows), compute_features(replace(cube, status_marks={}), rows)
    )


def test_one_row_lookbacks_and_counts_equal_the_many_row_paths(rng):
    # Online scoring asks for one row: ffill_at and last_valid_at read the columns
    # missing at the row as one block, event_counts counts the row's events directly.
    x = rng.normal(size=(300, 80)).astype(np.float32)
    x[rng.random(x.shape) < 0.3] = np.nan
    x[100:260, :8] = np.nan  # gaps longer than the look-back
    x[:, 8] = np.nan  # never valid
    many = np.arange(0, 300, 1)  # more rows than the one-row paths take
    for limit in (1, 6, 12, 200):
        carried = ffill(x, limit)
        assert np.isnan(carried[250, :8]).all() or limit == 200
        for row in (0, 3, 150, 250, 299):
            one = np.array([row])
            np.testing.assert_array_equal(ffill_at(x, limit, one), carried[one])
            np.testing.assert_array_equal(last_valid_at(x, one, limit), carried[one])
            assert ffill_at(x, limit, one).dtype == np.float32
        np.testing.assert_array_equal(ffill_at(x, limit, many), carried[many])
        np.testing.assert_array_equal(last_valid_at(x, many, limit), carried[many])
    onu, tick = rng.integers(0, 80, 500), rng.integers(0, 300, 500)
    for w in (1, 12, 288):
        want = event_counts(onu, tick, 80, many, w)
        assert want.max() > 0
        for row in (0, 11, 200, 299):
            np.testing.assert_array_equal(
                event_counts(onu, tick, 80, np.array([row]), w), want[[row]]
            )
        np.testing.assert_array_equal(
            event_counts(onu, tick, 80, np.array([5, 299]), w), want[[5, 299]]
        )


def _plain_share(flag: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Reference: every row's group sums, minus the ONU's own flag, over the others."""
    n_groups = int(group.max()) + 1
    f = flag.astype(np.float64)
    totals = np.stack([np.bincount(group, weights=row, minlength=n_groups) for row in f])
    size = np.bincount(group, minlength=n_groups)[group].astype(np.float64)
    return (totals[:, group] - f) / np.maximum(size - 1, 1)


def test_neighbour_shares_skip_the_rows_without_a_flag(rng):
    # A round's flags are mostly all 0 (no new outage, no LOS in the hour): those rows
    # are not summed, and their shares are the formula's exact 0.
    group = rng.integers(0, 23, 500)
    group[::100] = 23 + np.arange(5)  # groups of one ONU
    flags = np.zeros((6, 500))
    flags[1] = rng.random(500) < 0.01
    flags[4] = rng.integers(0, 3, 500)
    got, size = compute._neighbour_share(flags, group)
    want = _plain_share(flags, group)
    np.testing.assert_array_equal(got, want)
    assert not got[[0, 2, 3, 5]].any() and got[1].any()
    np.testing.assert_array_equal(size[0], np.bincount(group)[group])


def test_one_row_last_event_equals_the_many_row_search(rng):
    # The last event of each ONU at or before a row, at most `limit` back, the largest
    # value winning a tie: one row reads the row's window only.
    onu, tick = rng.integers(0, 50, 400), rng.integers(0, 200, 400)
    value = rng.integers(0, 2, 400).astype(float)
    many = np.arange(200)
    for limit in (0, 5, 60, 500):
        want = last_event_at(onu, tick, value, 50, many, limit)
        for row in (0, 7, 100, 199):
            got = last_event_at(onu, tick, value, 50, np.array([row]), limit)
            np.testing.assert_array_equal(got, want[[row]])
    assert np.isfinite(want).any() and np.isnan(want).any()


@pytest.mark.parametrize("few", [True, False])
def test_share_down_together_equals_the_pairwise_count(rng, few):
    # Only the groups with a dark ONU are visited: found one at a time when they are a
    # few, as ranges of the sorted fleet when many; both give the plain pairwise count.
    n = 400
    group = rng.integers(0, 60, n)
    down_tick = np.where(rng.random((2, n)) < 0.9, rng.integers(0, 20, (2, n)), np.nan)
    offline = np.zeros((2, n), dtype=bool)
    dark = np.flatnonzero(group < 3) if few else rng.choice(n, 120, replace=False)
    offline[:, dark] = True
    assert (len(np.unique(group[dark])) <= compute._FEW_GROUPS) == few
    got = compute._share_down_together(down_tick, offline, group, 3)
    want = np.zeros((2, n))
    down = offline & np.isfinite(down_tick)
    for i in range(2):
        for j in np.flatnonzero(down[i]):
            mates = (group == group[j]) & down[i] & (np.abs(down_tick[i] - down_tick[i, j]) <= 3)
            want[i, j] = (mates.sum() - 1) / max((group == group[j]).sum() - 1, 1)
    np.testing.assert_array_equal(got, want)
    assert (got > 0).any()


def test_a_window_restored_from_an_empty_state_marks_like_a_new_one(rng):
    # A restart before the first tick: no marks, then the same marks as a new window.
    fresh = RollingCube(_fleet(16), window_ticks=20)
    restored = RollingCube(_fleet(16), window_ticks=20)
    restored.load_state_dict(fresh.state_dict())
    t0 = pd.Timestamp("2026-01-05", tz="UTC")
    online = np.where(rng.random(16) < 0.3, 0.0, 1.0)
    for rc in (fresh, restored):
        rc._append(t0, _random_tick(np.random.default_rng(1), online, np.arange(16) < 4))
    for kind in fresh._marks:
        np.testing.assert_array_equal(restored._marks[kind], fresh._marks[kind])
    assert (fresh._marks["offline"] == 0).sum() == (online == 0).sum()


def test_the_fill_of_some_columns_equals_the_fill_of_their_copy(rng):
    """ffill_take(x, cols, limit) is ffill(x[:, cols], limit) and its reports
    ~isnan(x[:, cols]), for float32 and float64 windows, C- and F-ordered, any limit,
    columns in any order or repeated, none at all."""
    from guardian_lib.features._kernels import ffill_take

    x = rng.normal(size=(300, 60))
    x[rng.random(x.shape) < 0.4] = np.nan
    x[50:200, :5] = np.nan  # gaps longer than a short limit
    x[:, 7] = np.nan  # never valid
    for arr in (x, x.astype(np.float32), np.asfortranarray(x)):
        for cols in (np.arange(60), np.array([7, 3, 3, 59, 0]), np.array([], dtype=int)):
            for limit in (0, 1, 6, 288):
                got, seen = ffill_take(arr, cols, limit, present=True)
                want = ffill(arr[:, cols], limit)
                assert got.dtype == arr.dtype and got.shape == want.shape
                np.testing.assert_array_equal(got, want)
                np.testing.assert_array_equal(seen, ~np.isnan(arr[:, cols]))
                assert ffill_take(arr, cols, limit)[1] is None
