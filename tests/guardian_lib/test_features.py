import dataclasses

import numpy as np
import pandas as pd
import pytest

from guardian_lib.features import (
    FEATURE_COLUMNS,
    compute_features,
    feature_frame,
    materialize_features,
)
from guardian_lib.features._windows import event_counts, window_mean, window_slope, window_sum
from guardian_lib.warehouse import connect


def test_window_paths_agree(rng):
    x = rng.normal(size=(300, 7))
    x[rng.random(x.shape) < 0.1] = np.nan
    few = np.array([5, 150, 299])
    many = np.arange(300)
    for w in (1, 12, 50):
        s_few, c_few = window_sum(x, w, few)
        s_all, c_all = window_sum(x, w, many)
        np.testing.assert_allclose(s_few, s_all[few], atol=1e-9)
        np.testing.assert_array_equal(c_few, c_all[few])
        np.testing.assert_allclose(
            window_slope(x, w, few), window_slope(x, w, many)[few], atol=1e-7
        )
    # Direct check of a slope: a clean ramp of 0.5 per tick.
    ramp = np.tile(np.arange(100.0)[:, None] * 0.5, (1, 2))
    assert window_slope(ramp, 12, np.array([50]))[0] == pytest.approx([0.5, 0.5])
    assert np.isnan(window_mean(np.full((5, 1), np.nan), 3, np.array([4]))[0, 0])


def test_event_counts_are_causal_and_windowed():
    onu = np.array([0, 0, 1, 0])
    tick = np.array([2, 5, 5, 9])
    counts = event_counts(onu, tick, 2, np.array([1, 2, 5, 8, 9]), w=4)
    assert counts[:, 0].tolist() == [0, 1, 2, 1, 1]
    assert counts[:, 1].tolist() == [0, 0, 1, 1, 0]


def test_features_have_expected_shape_and_names(cube):
    rows = np.array([10, 100, 500])
    df = compute_features(cube, rows)
    assert list(df.columns) == ["ts", "onu_id", *FEATURE_COLUMNS]
    assert len(df) == 3 * cube.n_onus
    healthy = df[df["online"] == 1]
    assert healthy["rx_dbm"].between(-30, -10).all()
    assert (df["pon_size"] > df["box_size"]).all()


def test_no_leakage_changing_the_future_never_changes_the_past(cube):
    k = 300
    before = compute_features(cube, np.array([k]))
    future = {name: m.copy() for name, m in cube.values.items()}
    rng = np.random.default_rng(0)
    for m in future.values():
        m[k + 1 :] = rng.normal(size=m[k + 1 :].shape) * 50
    extra = pd.DataFrame({"onu": [0, 1, 2], "tick": [k + 1, k + 5, k + 50], "type": ["LOS"] * 3})
    changed = dataclasses.replace(
        cube, values=future, events=pd.concat([cube.events, extra], ignore_index=True)
    )
    after = compute_features(changed, np.array([k]))
    pd.testing.assert_frame_equal(before, after)


def test_an_offline_onu_that_stops_reporting_stays_offline(cube):
    # ONU 0 goes offline at tick 100 and then reports only now and then (an offline
    # ONU sends nothing; the OLT's status rows are sparse).
    values = {name: m.copy() for name, m in cube.values.items()}
    for m in values.values():
        m[100:, 0] = np.nan
    values["online"][100, 0] = 0.0
    values["online"][130, 0] = 0.0
    off = dataclasses.replace(cube, values=values)
    onu0 = cube.onus["onu_id"].astype(str).iloc[0]
    df = compute_features(off, np.array([110, 125, 160]))
    df = df[df["onu_id"] == onu0]
    assert (df["online"] == 0).all()
    # Offline since tick 100 (counted), the gaps notwithstanding. [min]
    np.testing.assert_allclose(df["offline_for_min"], [55.0, 130.0, 305.0])


def test_incremental_equals_full_recompute(tiny_run, tmp_path):
    full = feature_frame(tiny_run, every_minutes=15)
    day2 = full["ts"] >= pd.Timestamp("2026-01-06", tz="UTC")
    inc = feature_frame(tiny_run, start="2026-01-06", every_minutes=15)
    a = full[day2].reset_index(drop=True)
    assert len(a) == len(inc) > 0
    pd.testing.assert_frame_equal(a, inc, check_exact=False, rtol=1e-5, atol=1e-5)


def test_materialize_is_incremental(tiny_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    first = materialize_features(run, every_minutes=30)
    assert first["dates_computed"] >= 2 and first["dates_unchanged"] == 0
    second = materialize_features(run, every_minutes=30)
    assert second["dates_computed"] == 0 and second["rows"] == first["rows"]
    con = connect(run)
    n = con.execute("SELECT count(*) FROM features_timeseries").fetchone()[0]
    con.close()
    assert n == first["rows"]


def test_neighbour_features_see_a_feeder_cut(tmp_path, only_fault):
    from guardian_lib.ingest import ingest_run
    from simulator.output import simulate_to_dir

    run = simulate_to_dir(only_fault("feeder_cut", 300.0, days=0.5), tmp_path / "cut", seed=3)
    ingest_run(run)
    df = feature_frame(run, every_minutes=5)
    off = df[(df["online"] == 0) & (df["offline_for_min"] >= 10)]
    assert len(off) > 0
    assert off["pon_share_offline"].median() > 0.8
    assert (df["box_share_offline"] <= 1).all() and (df["box_share_offline"] >= 0).all()


def test_missing_warehouse_tables_give_clear_errors(tmp_path):
    from guardian_lib.errors import WarehouseError

    with pytest.raises(WarehouseError, match="guardian ingest"):
        feature_frame(tmp_path)


def test_rolling_cube_matches_batch(cube):
    from guardian_lib.features import RollingCube
    from guardian_lib.features._online import BUFFER_DTYPE

    window = 200  # 1.25 × window < ticks appended: the buffer shifts at least once
    rc = RollingCube(cube.onus, tick_s=cube.tick_s, window_ticks=window)
    ev = cube.events
    last = 500
    for k in range(last + 1):
        rc.update(cube.tick(k))
    online = rc.latest_features()
    # The batch computation over the same window of history, from the readings as the
    # RollingCube holds them (float32; against float64 readings see test_features_online).
    trimmed = type(cube)(
        onus=cube.onus,
        t0_us=cube.t0_us + (last + 1 - window) * cube.tick_s * 1_000_000,
        tick_s=cube.tick_s,
        values={
            m: v[last + 1 - window : last + 1].astype(BUFFER_DTYPE) for m, v in cube.values.items()
        },
        events=ev.assign(tick=ev["tick"] - (last + 1 - window)).query(
            "tick >= 0 and tick < @window"
        ),
        olt_alarms=cube.olt_alarms.iloc[0:0],
        orders=cube.orders.iloc[0:0],
    )
    batch = compute_features(trimmed, np.array([window - 1]))
    pd.testing.assert_frame_equal(online, batch, check_exact=False, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="expected the tick"):
        rc.update(cube.tick(last))
