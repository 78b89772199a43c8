"""Features that tell a dying laser from a degrading fibre, and a dim box from a BNG failure."""

import dataclasses

import numpy as np
import pandas as pd

from guardian_lib.features import RX_DROP_DB, compute_features
from guardian_lib.features._windows import ffill, last_valid_at


def test_last_valid_at_carries_the_last_reading_within_the_limit():
    x = np.full((10, 3), np.nan)
    x[1, 0], x[4, 0] = 1.0, 2.0
    x[2, 1] = 5.0
    rows = np.array([0, 3, 4, 7, 9])
    got = last_valid_at(x, rows, limit=5)
    assert np.isnan(got[0]).all()
    np.testing.assert_array_equal(got[:, 0], [np.nan, 1.0, 2.0, 2.0, 2.0])
    # ONU 1's reading at tick 2 is 7 ticks old at row 9: beyond the limit.
    np.testing.assert_array_equal(got[:, 1], [np.nan, 5.0, 5.0, 5.0, np.nan])
    assert np.isnan(got[:, 2]).all()
    # Against the full forward fill it agrees wherever that one reaches.
    np.testing.assert_array_equal(got, ffill(x, limit=5)[rows])
    rng = np.random.default_rng(7)
    y = rng.normal(size=(400, 30))
    y[rng.random(y.shape) < 0.7] = np.nan
    y[:, 3] = np.nan
    for rows in (np.array([399]), np.arange(0, 400, 7)):
        for limit in (1, 12, 300):
            np.testing.assert_array_equal(last_valid_at(y, rows, limit), ffill(y, limit)[rows])


def _drift_then_dark(cube, onu: int, tx_db: float, rx_db: float, start: int, dark: int):
    """Ramp the ONU's TX / RX / OLT RX down from ``start`` to ``dark``, then an LOS and silence."""
    values = {name: m.copy() for name, m in cube.values.items()}
    ramp = np.linspace(0.0, 1.0, dark - start)
    values["tx_dbm"][start:dark, onu] -= tx_db * ramp
    values["rx_dbm"][start:dark, onu] -= rx_db * ramp
    # A laser loses the uplink as much as TX; a bend hurts 1310 nm less than 1490 nm.
    values["olt_rx_dbm"][start:dark, onu] -= (tx_db + 0.6 * rx_db) * ramp
    for m in values.values():
        m[dark:, onu] = np.nan
    values["online"][dark, onu] = 0.0
    los = pd.DataFrame({"onu": [onu], "tick": [dark], "type": ["LOS"]})
    return values, los


def test_a_dying_laser_and_a_degrading_fibre_are_told_apart(cube):
    laser, fibre, hung, power = 0, 1, 2, 3
    start, dark = 200, 400
    values, los_a = _drift_then_dark(cube, laser, tx_db=6.0, rx_db=0.0, start=start, dark=dark)
    cube_a = dataclasses.replace(cube, values=values)
    values, los_b = _drift_then_dark(cube_a, fibre, tx_db=0.0, rx_db=6.0, start=start, dark=dark)
    values["online"][dark:, power] = np.nan
    values["online"][dark, power] = 0.0
    gasp = pd.DataFrame({"onu": [power], "tick": [dark], "type": ["DYING_GASP"]})
    events = cube.events[~cube.events["onu"].isin([laser, fibre, hung, power])]
    synth = dataclasses.replace(
        cube_a, values=values, events=pd.concat([events, los_a, los_b, gasp], ignore_index=True)
    )
    # Just before the ONUs go dark, and two hours later when they send nothing.
    df = compute_features(synth, np.array([dark - 1, dark + 24]))
    ids = cube.onus["onu_id"].astype(str).to_numpy()
    for when in (dark - 1, dark + 24):
        at = df[df["ts"] == synth.tick_times(np.array([when]))[0]].set_index("onu_id")
        a, b, c = at.loc[ids[laser]], at.loc[ids[fibre]], at.loc[ids[hung]]
        # The laser lost TX, not RX; the fibre lost RX, not TX; the hung CPE neither.
        assert a["tx_last_delta_7d"] < -3.0 and abs(a["rx_last_delta_7d"]) < 1.0
        assert b["rx_last_delta_7d"] < -3.0 and abs(b["tx_last_delta_7d"]) < 1.0
        assert a["olt_rx_last_delta_7d"] < b["olt_rx_last_delta_7d"] < -1.0
        assert max(abs(c["tx_last_delta_7d"]), abs(c["rx_last_delta_7d"])) < 1.0
    late = df[df["ts"] == synth.tick_times(np.array([dark + 24]))[0]].set_index("onu_id")
    assert late.loc[ids[laser], "last_down_los"] == 1.0
    assert late.loc[ids[fibre], "last_down_los"] == 1.0
    assert late.loc[ids[power], "last_down_los"] == 0.0
    assert np.isnan(late.loc[ids[hung], "last_down_los"])
    assert late.loc[ids[laser], "flaps_7d"] >= 1 and late.loc[ids[laser], "flaps_6h"] >= 1


def test_a_dim_box_is_an_optical_cluster_even_during_a_bng_failure(cube):
    from guardian_lib.features._compute import group_index
    from guardian_lib.models.cause import neighbour_cluster_kind

    box = group_index(cube.onus, "box")
    sizes = np.bincount(box)
    dim = np.flatnonzero(box == int(np.argmax(sizes)))
    assert len(dim) >= 4
    values = {name: m.copy() for name, m in cube.values.items()}
    values["rx_dbm"][300:, dim] -= 2 * RX_DROP_DB  # the box's splitter loses light
    df = compute_features(dataclasses.replace(cube, values=values), np.array([330]))
    inside = np.isin(np.arange(cube.n_onus), dim)
    assert (df.loc[inside, "rx_delta_7d"] <= -RX_DROP_DB).all()
    np.testing.assert_allclose(df.loc[inside, "box_share_rx_drop"], 1.0)
    assert not (df.loc[~inside, "rx_delta_7d"] <= -RX_DROP_DB).any()
    assert (df.loc[~inside, "box_share_rx_drop"] == 0).all()
    # Meanwhile every session fails upstream: the dim box stays an optical (massive)
    # cluster, the other ONUs are a no-PPPoE (external) one.
    bng = df.assign(online=1.0, pppoe_down=1.0, pon_share_pppoe_down=1.0)
    kind = neighbour_cluster_kind(bng)
    assert (kind[inside] == 1).all() and (kind[~inside] == 2).all()
    # Without the share columns (a model pickled before them) the rule is as before.
    old = bng.drop(columns=["box_share_rx_drop", "pon_share_rx_drop"])
    assert (neighbour_cluster_kind(old) == 2).all()


def test_a_box_that_just_came_back_stays_massive_during_a_bng_failure():
    from guardian_lib.models.cause import neighbour_cluster_kind

    # Online without PPPoE on a PON where every session fails upstream; rows 0-1 are in a
    # box whose ONUs all logged an LOS in the last hour, row 2 only has its own LOS.
    rows = pd.DataFrame(
        {
            "online": [1.0, 1.0, 1.0, 1.0],
            "pppoe_down": [1.0, 1.0, 1.0, 1.0],
            "los_1h": [1.0, 2.0, 1.0, 0.0],
            "box_los_share_1h": [1.0, 0.9, 0.0, 1.0],
            "pon_los_share_1h": [0.1, 0.1, 0.0, 0.1],
            "box_share_offline": [0.0] * 4,
            "pon_share_offline": [0.0] * 4,
            "box_size": [8.0] * 4,
            "pon_size": [64.0] * 4,
            "pon_share_pppoe_down": [1.0] * 4,
        }
    )
    assert neighbour_cluster_kind(rows).tolist() == [1, 1, 2, 2]
    # A box of two whose other ONU logged an LOS this hour too is a box outage (row 0);
    # a box of one has no neighbour to share it with.
    assert neighbour_cluster_kind(rows.assign(box_size=2.0)).tolist() == [1, 2, 2, 2]
    assert neighbour_cluster_kind(rows.assign(box_size=1.0)).tolist() == [2, 2, 2, 2]


def test_last_event_at_takes_the_latest_event_in_the_window():
    from guardian_lib.features._windows import last_event_at

    onu = np.array([0, 0, 1, 1, 2])
    tick = np.array([2, 6, 3, 3, 1])
    value = np.array([1.0, 0.0, 0.0, 1.0, 0.0])  # ONU 1: two events at tick 3, 1 wins
    got = last_event_at(onu, tick, value, 4, np.array([1, 4, 6, 9]), limit=5)
    np.testing.assert_array_equal(got[:, 0], [np.nan, 1.0, 0.0, 0.0])
    np.testing.assert_array_equal(got[:, 1], [np.nan, 1.0, 1.0, np.nan])  # 9 - 3 > 5
    np.testing.assert_array_equal(got[:, 2], [0.0, 0.0, 0.0, np.nan])
    assert np.isnan(got[:, 3]).all()


def test_a_row_does_not_depend_on_the_other_rows_computed_with_it(cube):
    # Hourly ticks: the tiny run's 576 ticks span 24 days, longer than the 7-day windows.
    hourly = dataclasses.replace(cube, tick_s=3600)
    values = {name: m.copy() for name, m in hourly.values.items()}
    # ONU 0 goes dark (with sparse reports) across the start of row 400's week.
    for m in values.values():
        m[215:260, 0] = np.nan
    values["online"][[215, 240], 0] = 0.0
    dark = dataclasses.replace(hourly, values=values)
    alone = compute_features(dark, np.array([400]))
    batch = compute_features(dark, np.array([100, 400]))
    pd.testing.assert_frame_equal(alone, batch.iloc[len(alone) :].reset_index(drop=True))


def test_a_bng_failure_shorter_than_the_row_spacing_is_still_an_upstream_cluster(cube):
    from guardian_lib.features._compute import group_index
    from guardian_lib.models.cause import neighbour_cluster_kind

    pon = group_index(cube.onus, "pon")
    hit = np.flatnonzero(pon == int(np.argmax(np.bincount(pon))))
    assert len(hit) >= 5
    # Every session of the PON dropped at tick 300 and came back before the next row
    # (tick 306, 30 min later on 5-min ticks): only the PPPoE-down events are left. One
    # ONU elsewhere logs a PPPoE-down of its own (a CPE) at the same time.
    alone = int(np.flatnonzero(pon != pon[hit[0]])[0])
    events = cube.events[cube.events["type"] != "PPPOE_DOWN"]
    burst = pd.DataFrame({"onu": [*hit.tolist(), alone], "tick": 300, "type": "PPPOE_DOWN"})
    synth = dataclasses.replace(cube, events=pd.concat([events, burst], ignore_index=True))
    per_h = round(3600 / cube.tick_s)
    df = compute_features(synth, np.array([306, 300 + per_h]))
    first, later = df.iloc[: cube.n_onus], df.iloc[cube.n_onus :]
    inside = np.isin(np.arange(cube.n_onus), hit)
    np.testing.assert_allclose(first.loc[inside, "pon_pppoe_down_share_1h"], 1.0)
    assert (first.loc[~inside, "pon_pppoe_down_share_1h"] < 0.5).all()
    assert first.loc[inside, "pppoe_down_1h"].eq(1).all()
    # The sessions are back: the rule sees the burst, not a session down now.
    rows = first.assign(online=1.0, pppoe_down=0.0, pon_share_pppoe_down=0.0)
    kind = neighbour_cluster_kind(rows)
    assert (kind[inside] == 2).all()
    assert kind[alone] == 0
    # An hour on, the events have left the window: no cluster any more.
    assert (later["pon_pppoe_down_share_1h"] == 0).all()
    assert (neighbour_cluster_kind(later.assign(online=1.0, pppoe_down=0.0)) == 0).all()
    # A model pickled before the columns existed: the rule is as before.
    assert (neighbour_cluster_kind(rows.drop(columns=["pon_pppoe_down_share_1h"])) == 0).all()


def test_neighbours_count_as_down_together_only_within_15_minutes():
    from guardian_lib.features._compute import _share_down_together

    # A box of four (ONUs 0-3) and a box of two (4-5); two rows.
    group = np.array([0, 0, 0, 0, 1, 1])
    nan = np.nan
    down_tick = np.array(
        [
            # ONUs 0 and 1 went down at once, 2 a day before (a customer's own power
            # cut), 3 is online; 4 and 5 together, but 5 has no down event recorded.
            [100.0, 102.0, -188.0, nan, 50.0, nan],
            # Later: ONU 2's down time is no longer known, ONU 1 came back.
            [100.0, 102.0, nan, nan, 50.0, 50.0],
        ]
    )
    offline = np.array(
        [[1, 1, 1, 0, 1, 1], [1, 0, 1, 0, 1, 1]],
        dtype=bool,
    )
    got = _share_down_together(down_tick, offline, group, tol=3)
    np.testing.assert_allclose(got[0], [1 / 3, 1 / 3, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(got[1], [0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    # 2 ticks apart is not together with a tolerance of 1.
    assert (_share_down_together(down_tick, offline, group, tol=1)[0, :2] == 0).all()
    # A group of one has no neighbours.
    assert (_share_down_together(down_tick[:, :1], offline[:, :1], group[:1], 3) == 0).all()


def test_a_power_cut_shorter_than_the_row_spacing_is_still_an_optical_cluster(cube):
    from guardian_lib.features._compute import group_index
    from guardian_lib.models.cause import neighbour_cluster_kind

    box = group_index(cube.onus, "box")
    hit = np.flatnonzero(box == int(np.argmax(np.bincount(box))))
    assert len(hit) >= 4
    # The box's power failed at tick 300 and came back before the next row: every ONU
    # is online again, only the dying gasps are left; one ONU elsewhere gasps alone.
    alone = int(np.flatnonzero(box != box[hit[0]])[0])
    events = cube.events[cube.events["type"] != "DYING_GASP"]
    burst = pd.DataFrame({"onu": [*hit.tolist(), alone], "tick": 300, "type": "DYING_GASP"})
    synth = dataclasses.replace(cube, events=pd.concat([events, burst], ignore_index=True))
    df = compute_features(synth, np.array([306]))
    inside = np.isin(np.arange(cube.n_onus), hit)
    np.testing.assert_allclose(df.loc[inside, "box_gasp_share_1h"], 1.0)
    assert df.loc[alone, "box_gasp_share_1h"] == 0.0
    kind = neighbour_cluster_kind(df.assign(online=1.0, pppoe_down=0.0))
    assert (kind[inside] == 1).all() and kind[alone] == 0
