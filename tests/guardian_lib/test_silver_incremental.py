"""Incremental SILVER (guardian_lib.silver) equals the full rebuild, and readers of the
warehouse never see an error or a half-written state while cycles write it."""

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from guardian_lib import _silver_merge, silver, silver_files
from guardian_lib.ingest import RAW_TELEMETRY_SCHEMA, _file_dates, ingest_run
from guardian_lib.silver import update_silver
from guardian_lib.warehouse import connect, raw_dir, silver_dir
from guardian_lib.warehouse import silver_files as listed_files

T0 = pd.Timestamp("2026-03-02T23:30:00Z")  # the day changes during the test
ONUS = [f"ONU{i:03d}" for i in range(40)]
CYCLES = 16  # of the concurrent-reader test


def _write_raw(run: Path, rows: pd.DataFrame, name: str) -> Path:
    """One RAW file as the poller writes it (date folder = arrival date)."""
    day = rows["received_at"].iloc[0].strftime("%Y-%m-%d")
    out = raw_dir(run, "telemetry") / f"date={day}" / f"{name}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(rows, schema=RAW_TELEMETRY_SCHEMA), out)
    return out


def _poll(rng: np.random.Generator, ts: pd.Timestamp, received: pd.Timestamp) -> pd.DataFrame:
    n = len(ONUS)
    rx = rng.normal(-20, 2, n)
    rx[rng.random(n) < 0.1] = -80.0  # a vendor sentinel → NULL in SILVER
    jitter = pd.to_timedelta(rng.integers(-20, 20, n), unit="s")  # off the grid
    return pd.DataFrame({
        "ts": ts + jitter, "onu_id": ONUS, "rx_dbm": rx, "tx_dbm": rng.normal(2, 0.3, n),
        "olt_rx_dbm": rng.normal(-24, 1, n), "snr_db": rng.normal(30, 2, n),
        "ber": rng.uniform(0, 1e-9, n), "crc_errors": rng.integers(0, 5, n),
        "latency_ms": rng.uniform(1, 5, n), "loss_pct": np.zeros(n), "online": True,
        "uptime_s": rng.integers(0, 10**6, n), "source": "snmp",
        "received_at": received + pd.to_timedelta(np.arange(n), unit="ms"),
    })  # fmt: skip


def _write_events(
    run: Path,
    rng: np.random.Generator,
    ts: pd.Timestamp,
    name: str,
    received: pd.Timestamp,
    n: int = 6,
) -> Path:
    """One RAW events file; entities and types from a small set, so keys repeat."""
    frame = pd.DataFrame({
        "ts": [ts] * n, "entity_id": rng.choice(ONUS[:5], n), "entity_type": "onu",
        "type": rng.choice(["LOS", "LOW_RX"], n), "severity": "minor", "source": "snmp",
        "payload": rng.choice(["{}", '{"x": 1}'], n),
        "received_at": received + pd.to_timedelta(np.arange(n), unit="ms"),
    })  # fmt: skip
    out = raw_dir(run, "events") / f"date={received:%Y-%m-%d}" / f"{name}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out)
    return out


def _silver(run: Path) -> tuple[pd.DataFrame, ...]:
    con = connect(run)
    try:
        df = con.execute("SELECT * FROM telemetry ORDER BY ts, onu_id").df()
        quality = con.execute("SELECT * FROM silver_quality ORDER BY date").df()
        events = pd.DataFrame()
        if "events" in {r[0] for r in con.execute("SHOW TABLES").fetchall()}:
            events = con.execute(
                "SELECT * FROM events ORDER BY ts, entity_id, type, payload, received_at"
            ).df()
    finally:
        con.close()
    return df.reset_index(drop=True), quality, events.reset_index(drop=True)


def _assert_same_as_full(run: Path, tmp_path: Path) -> None:
    full = tmp_path / "full"
    shutil.rmtree(full, ignore_errors=True)
    shutil.copytree(run / "lake" / "raw", full / "lake" / "raw")
    ingest_run(full, grid_minutes=5)
    inc_rows, inc_q, inc_ev = _silver(run)
    full_rows, full_q, full_ev = _silver(full)
    pd.testing.assert_frame_equal(inc_rows, full_rows)
    pd.testing.assert_frame_equal(inc_q, full_q)
    pd.testing.assert_frame_equal(inc_ev, full_ev)


def test_incremental_silver_equals_the_full_rebuild_cycle_after_cycle(tmp_path):
    rng = np.random.default_rng(7)
    run = tmp_path / "run"
    tick = pd.Timedelta(minutes=5)
    modes = []
    for k in range(10):
        ts = T0 + k * tick
        _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k:03d}")
        extra = []
        if k == 4:  # a late row for an earlier tick (newer: it replaces the SILVER row)
            late = _poll(rng, T0 + tick, ts + pd.Timedelta(seconds=40)).iloc[:3]
            extra.append(late)
        if k == 6:  # a duplicate of an already stored row, received earlier: it loses
            dup = _poll(rng, T0 + 5 * tick, T0 + 5 * tick).iloc[5:8]
            extra.append(dup)
        if k == 8:  # late again for the tick whose file k == 4 rewrote (a new file now)
            extra.append(_poll(rng, T0 + tick, ts + pd.Timedelta(seconds=50)).iloc[1:4])
        for j, rows in enumerate(extra):
            _write_raw(run, rows, f"extra-{k:03d}-{j}")
        if k % 2 == 0:  # events; some repeat an earlier key, received earlier or later
            _write_events(run, rng, T0 + (k % 4) * tick, f"ev-{k:03d}",
                          ts + pd.Timedelta(seconds=rng.integers(-900, 900)))  # fmt: skip
        if k in (2, 8):  # an event without a time, twice: one SILVER row (the first received)
            _write_events(run, rng, pd.NaT, f"ev-nat-{k:03d}", T0 + pd.Timedelta(minutes=60 - k),
                          n=1)  # fmt: skip
        modes.append(update_silver(run, grid_minutes=5).mode)
        if k in (0, 4, 6, 9):
            _assert_same_as_full(run, tmp_path)
    assert modes[0] == "full" and set(modes[1:]) == {"incremental"}
    assert len(listed_files(run, "events")) > 1, "new events are appended as parts"
    summary = ingest_run(run, grid_minutes=5)  # nothing left for the full ingest to do
    assert summary.dates_rebuilt == 0
    parts = list(silver_dir(run, "telemetry").glob("date=*/part-*.parquet"))
    assert parts, "the incremental update appends part files"
    # A removed RAW file: back to the full rebuild, still equal to it.
    next(raw_dir(run, "telemetry").glob("date=*/snmp-002.parquet")).unlink()
    ts = T0 + 10 * tick
    _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), "snmp-010")
    upd = update_silver(run, grid_minutes=5)
    assert upd.mode == "full" and "snmp-002" in upd.reason
    _assert_same_as_full(run, tmp_path)
    # ... and the next cycle is incremental again.
    ts = T0 + 11 * tick
    _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), "snmp-011")
    assert update_silver(run, grid_minutes=5).mode == "incremental"
    _assert_same_as_full(run, tmp_path)
    # An events-only cycle is incremental; a removed events file falls back to the full.
    _write_events(run, rng, T0, "ev-late", T0 - pd.Timedelta(minutes=1))
    upd = update_silver(run, grid_minutes=5)
    assert (upd.mode, upd.new_files) == ("incremental", 1) and upd.events_added > 0
    _assert_same_as_full(run, tmp_path)
    next(raw_dir(run, "events").glob("date=*/ev-002.parquet")).unlink()
    upd = update_silver(run, grid_minutes=5)
    assert upd.mode == "full" and "ev-002" in upd.reason
    _assert_same_as_full(run, tmp_path)


def test_compaction_of_a_closed_date_and_of_many_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(silver, "MAX_PARTS", 4)
    rng = np.random.default_rng(17)
    run = tmp_path / "run"
    tick = pd.Timedelta(minutes=5)
    compacted = []
    for k in range(21):  # 23:30 → 01:10: 2026-03-02 closes at 01:00 (CLOSE_AFTER_S = 1 h)
        ts = T0 + k * tick
        _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k:03d}")
        if k == 13:  # a late row for the day before, just after midnight
            _write_raw(run, _poll(rng, T0, ts + pd.Timedelta(seconds=40)).iloc[:4], "late")
        _write_events(run, rng, ts, f"ev-{k:03d}", ts + pd.Timedelta(seconds=5))
        upd = update_silver(run, grid_minutes=5)
        compacted += [(k, d) for d in upd.compacted]
        for kind in ("telemetry", "events"):
            files = listed_files(run, kind)
            assert all(f.exists() for f in files)
            assert sum(f.name.startswith("part-") for f in files) <= 4 + 1
        if k in (13, 18):
            _assert_same_as_full(run, tmp_path)
    assert (18, "2026-03-02") in compacted, compacted  # the first update after 01:00
    assert any(d == "2026-03-03" for _k, d in compacted) and any(
        d == "events" for _k, d in compacted
    )
    day = [f for f in listed_files(run, "telemetry") if f.parent.name == "date=2026-03-02"]
    assert len(day) == 1 and day[0].name.startswith("data-")
    # Replaced files wait on disk for readers of the previous warehouse, then go.
    on_disk = set(silver_dir(run, "telemetry").glob("date=*/*.parquet"))
    assert on_disk > set(listed_files(run, "telemetry"))
    monkeypatch.setattr(silver_files, "RETIRE_GRACE_S", 0.0)
    ts = T0 + 21 * tick
    _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), "snmp-021")
    update_silver(run, grid_minutes=5)
    assert set(silver_dir(run, "telemetry").glob("date=*/*.parquet")) == set(
        listed_files(run, "telemetry")
    )
    _assert_same_as_full(run, tmp_path)


def test_only_files_whose_ts_statistics_allow_a_new_timestamp_are_read(tmp_path):
    """The shortcut of the collision check: a SILVER file is skipped only when its row
    groups' ts statistics rule out every new timestamp (and NULL)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    t0 = int(T0.value // 1000)  # [epoch µs]
    step = 300 * 10**6
    path = tmp_path / "part.parquet"
    con.execute(
        f"COPY (SELECT make_timestamptz({t0} + i * {step}::BIGINT) AS ts, i FROM range(4) t(i)) "
        f"TO '{path}' (FORMAT parquet, ROW_GROUP_SIZE 2)"
    )  # row groups: t0..t0+step, t0+2step..t0+3step
    assert _silver_merge.may_hold(path, [t0 + step], False)
    assert _silver_merge.may_hold(path, [t0 - step, t0 + 3 * step], False)
    assert not _silver_merge.may_hold(path, [t0 - step, t0 + 4 * step], False)
    assert not _silver_merge.may_hold(path, [], True)  # no NULL ts in the file
    nulls = tmp_path / "nulls.parquet"
    con.execute(f"COPY (SELECT NULL::TIMESTAMPTZ AS ts, 1 AS i) TO '{nulls}' (FORMAT parquet)")
    assert _silver_merge.may_hold(nulls, [], True)
    assert not _silver_merge.may_hold(nulls, [t0], False)
    # Rewritten under the same name (a new file renamed over it): its new statistics count.
    con.execute(
        f"COPY (SELECT make_timestamptz({t0 + 9 * step}) AS ts, 1 AS i) TO '{tmp_path}/new' "
        "(FORMAT parquet)"
    )
    (tmp_path / "new").replace(path)
    assert _silver_merge.may_hold(path, [t0 + 9 * step], False)
    assert not _silver_merge.may_hold(path, [t0 + step], False)
    # A file without ts statistics (or unreadable) is always read.
    bare = tmp_path / "bare.parquet"
    pq.write_table(pa.table({"ts": pa.array([1], pa.int64())}), bare, write_statistics=False)
    assert _silver_merge.may_hold(bare, [t0], False)
    assert _silver_merge.may_hold(tmp_path / "missing.parquet", [t0], False)


@pytest.mark.parametrize("unit", ["ms", "us", "ns"])
def test_the_dates_a_raw_file_feeds_from_its_statistics_are_those_read(tmp_path, monkeypatch, unit):
    """file_dates takes a RAW file's dates from its ts statistics only when they cannot
    be wrong; the answers equal reading the file (_silver_sql.raw_file_dates)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cases = {
        "noon": [T0 - pd.Timedelta(hours=11, minutes=30)] * 3,
        "snaps_into_the_next_day": [T0 + pd.Timedelta(minutes=28)],  # 23:58 → 00:00
        "stays": [T0 + pd.Timedelta(minutes=27, seconds=29)],  # 23:57:29 → 23:55
        "two_days": [T0, T0 + pd.Timedelta(hours=1)],
        "no_time": [pd.NaT, pd.NaT],
        "some_time": [pd.NaT, T0],
    }
    for name, stamps in cases.items():
        path = tmp_path / f"{name}.parquet"
        ts = pa.array(pd.DatetimeIndex(stamps).as_unit(unit), pa.timestamp(unit, tz="UTC"))
        pq.write_table(pa.table({"ts": ts, "onu_id": ["x"] * len(stamps)}), path)
        for grid_s in (300, 3600):
            got = _silver_merge.file_dates(con, path, grid_s)
            assert got == _file_dates(con, path, grid_s), (name, grid_s)
    assert _silver_merge.file_dates(con, tmp_path / "two_days.parquet", 300) == [
        "2026-03-02", "2026-03-03"]  # fmt: skip
    # One poll far from midnight, or no time at all: the statistics answer, nothing is read.
    monkeypatch.setattr(_silver_merge, "_file_dates", None)
    assert _silver_merge.file_dates(con, tmp_path / "noon.parquet", 300) == ["2026-03-02"]
    assert _silver_merge.file_dates(con, tmp_path / "no_time.parquet", 300) == []


def test_the_kept_duckdb_instance_holds_no_warehouse_between_updates(tmp_path):
    """Each update attaches the warehouse to the process's DuckDB instance and detaches it
    again, also when the update fails; a later update starts where it left off."""
    from guardian_lib.warehouse import _process_cursor, attached

    def databases() -> set[str]:
        cur = _process_cursor()
        try:
            sql = "SELECT database_name FROM duckdb_databases()"
            return {r[0] for r in cur.execute(sql).fetchall()}
        finally:
            cur.close()

    rng = np.random.default_rng(23)
    run = tmp_path / "run"
    before = databases()
    for k in range(3):
        ts = T0 + k * pd.Timedelta(minutes=5)
        _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k}")
        update_silver(run, grid_minutes=5)
        assert databases() == before
    with pytest.raises(duckdb.Error), attached(run / "warehouse.duckdb") as con:
        con.execute("SELECT * FROM no_such_table")
    assert databases() == before
    assert len(_silver(run)[0]) == 3 * len(ONUS)


def test_the_late_row_replaces_the_older_one_in_place(tmp_path):
    rng = np.random.default_rng(3)
    run = tmp_path / "run"
    tick = pd.Timedelta(minutes=5)
    for k in range(3):
        ts = T0 + k * tick
        _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k}")
        update_silver(run, grid_minutes=5)
    late = _poll(rng, T0, T0 + pd.Timedelta(hours=2)).iloc[:2].assign(rx_dbm=-11.5)
    _write_raw(run, late, "late")
    upd = update_silver(run, grid_minutes=5)
    assert (upd.mode, upd.rows_added, upd.rows_replaced, upd.files_rewritten) == (
        "incremental", 0, 2, 1)  # fmt: skip
    rows, quality, _ev = _silver(run)
    got = rows[(rows["ts"] == T0) & rows["onu_id"].isin(ONUS[:2])]
    assert list(got["rx_dbm"]) == [-11.5, -11.5] and got["late"].all()
    assert int(quality["duplicates_removed"].sum()) == 2


def test_a_bad_new_raw_file_is_named_and_changes_nothing(tmp_path):
    rng = np.random.default_rng(5)
    run = tmp_path / "run"
    _write_raw(run, _poll(rng, T0, T0 + pd.Timedelta(seconds=30)), "snmp-0")
    update_silver(run, grid_minutes=5)
    before = _silver(run)[0]
    bad = raw_dir(run, "telemetry") / "date=2026-03-02" / "broken.parquet"
    bad.write_bytes(b"PAR1 not parquet")
    with pytest.raises(Exception, match="broken.parquet"):
        update_silver(run, grid_minutes=5)
    pd.testing.assert_frame_equal(_silver(run)[0], before)


_READER = textwrap.dedent(
    """
    import sys, time
    from guardian_lib.warehouse import connect
    run, n_onus, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    import os
    reads = 0
    while not os.path.exists(stop) or reads < 5:
        con = connect(run)
        try:
            time.sleep(0.3 * (reads % 2))  # a slow reader: cycles commit meanwhile
            n, bad_ticks, dups = con.execute(
                "SELECT count(*), count(*) FILTER (WHERE c != ?), "
                "coalesce(sum(c) - sum(d), 0) FROM (SELECT ts, count(*) c, "
                "count(DISTINCT onu_id) d FROM telemetry GROUP BY ts)", [n_onus]).fetchone()
            q = con.execute("SELECT coalesce(sum(rows_silver), 0) FROM silver_quality").fetchone()
        finally:
            con.close()
        assert bad_ticks == 0 and dups == 0, (bad_ticks, dups)
        reads += 1
    print(reads)
    """
)


def test_a_reader_process_never_sees_an_error_or_half_a_cycle(tmp_path, monkeypatch):
    # Compactions (every 3 parts, and 2026-03-02 closing at 00:10) and full rebuilds run
    # while the reader reads.
    monkeypatch.setattr(silver, "MAX_PARTS", 3)
    monkeypatch.setattr(silver, "CLOSE_AFTER_S", 600)
    rng = np.random.default_rng(11)
    run = tmp_path / "run"
    tick = pd.Timedelta(minutes=5)
    _write_raw(run, _poll(rng, T0, T0 + pd.Timedelta(seconds=30)), "snmp-000")
    update_silver(run, grid_minutes=5)
    stop = tmp_path / "stop"
    reader = subprocess.Popen(
        [sys.executable, "-c", _READER, str(run), str(len(ONUS)), str(stop)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for k in range(1, CYCLES + 1):
            ts = T0 + k * tick
            _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k:03d}")
            if k % 6 == 0:  # late rows rewrite an earlier part while the reader reads
                late = _poll(rng, ts - 2 * tick, ts + pd.Timedelta(seconds=50))
                _write_raw(run, late, f"late-{k:03d}")
            if k in (9, 14):  # an old RAW file rewritten: the full rebuild of its date
                old = next(raw_dir(run, "telemetry").glob(f"date=*/snmp-{k - 5:03d}.parquet"))
                pq.write_table(pq.read_table(old), old)
                assert update_silver(run, grid_minutes=5).mode == "full"
            else:
                assert update_silver(run, grid_minutes=5).mode == "incremental"
            assert reader.poll() is None, reader.stderr.read()
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out.strip()) >= 5
    assert len([f for f in listed_files(run, "telemetry") if "2026-03-02" in str(f)]) == 1
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    assert con.execute("SELECT sum(rows_silver) FROM silver_quality").fetchone()[0] == (
        CYCLES + 1
    ) * len(ONUS)
    con.close()


def test_a_part_left_by_an_update_killed_before_its_commit_is_removed(tmp_path):
    rng = np.random.default_rng(13)
    run = tmp_path / "run"
    tick = pd.Timedelta(minutes=5)
    for k in range(3):
        ts = T0 + k * tick
        _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k}")
        update_silver(run, grid_minutes=5)
    part = sorted(silver_dir(run, "telemetry").glob("date=*/part-*.parquet"))[-1]
    shutil.copy(part, part.with_name("part-0-999999.parquet"))  # written, never committed
    ts = T0 + 3 * tick
    _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), "snmp-3")
    assert update_silver(run, grid_minutes=5).mode == "incremental"
    assert not part.with_name("part-0-999999.parquet").exists()
    _assert_same_as_full(run, tmp_path)


def test_a_warehouse_from_before_the_file_listing_is_upgraded_by_the_fallback(tmp_path):
    rng = np.random.default_rng(19)
    run = tmp_path / "run"
    tick = pd.Timedelta(minutes=5)
    for k in range(2):
        ts = T0 + k * tick
        _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), f"snmp-{k}")
        _write_events(run, rng, ts, f"ev-{k}", ts + pd.Timedelta(seconds=5))
        update_silver(run, grid_minutes=5)
    con = duckdb.connect(str(run / "warehouse.duckdb"))
    for table in ("_silver_files", "_silver_retired", "_raw_event_files"):
        con.execute(f"DROP TABLE {table}")  # as an older version wrote it
    con.close()
    before = _silver(run)  # readers fall back to the files on disk
    ts = T0 + 2 * tick
    _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), "snmp-2")
    upd = update_silver(run, grid_minutes=5)
    assert upd.mode == "full" and "bookkeeping" in upd.reason
    assert len(_silver(run)[0]) == len(before[0]) + len(ONUS)
    _assert_same_as_full(run, tmp_path)
    ts = T0 + 3 * tick
    _write_raw(run, _poll(rng, ts, ts + pd.Timedelta(seconds=30)), "snmp-3")
    assert update_silver(run, grid_minutes=5).mode == "incremental"
    _assert_same_as_full(run, tmp_path)


def _write_contacts(run: Path, rows: list[tuple], name: str, received: pd.Timestamp) -> None:
    """One RAW events file of customer contacts: (ts, customer, payload) rows."""
    frame = pd.DataFrame({
        "ts": [r[0] for r in rows], "entity_id": [r[1] for r in rows],
        "entity_type": "customer", "type": "CUSTOMER_CALL", "severity": "info",
        "source": "contacts", "payload": [r[2] for r in rows],
        "received_at": received + pd.to_timedelta(np.arange(len(rows)), unit="ms"),
    })  # fmt: skip
    out = raw_dir(run, "events") / f"date={received:%Y-%m-%d}" / f"{name}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out)


def test_a_contact_fed_live_and_imported_again_is_one_call(tmp_path):
    """operate writes a contact with its ONU and CRM id; the CRM's export imported later
    has channel and reason only: SILVER keeps one call (the first received), in the
    incremental merge and in the full rebuild alike. Other events keep their payloads."""
    run = tmp_path / "run"
    rng = np.random.default_rng(3)
    t = T0 + pd.Timedelta(minutes=2)
    _write_raw(run, _poll(rng, T0, T0 + pd.Timedelta(seconds=30)), "snmp-0")
    live = '{"channel": "phone", "reason": "slow", "contact_id": "TK-1", "onu_id": "ONU001"}'
    _write_contacts(run, [(t, "C-1", live)], "contacts-live", T0 + pd.Timedelta(minutes=3))
    assert update_silver(run, grid_minutes=5).mode == "full"
    export = [
        (t, "C-1", '{"reason": "slow", "channel": "phone"}'),  # the same call
        (t, "C-1", '{"channel": "phone", "reason": "no_internet"}'),  # another reason
        (t, "C-2", '{"channel": "phone", "reason": "slow"}'),  # another customer
        (t, "C-3", "not json"),  # kept as it is
        (t, "C-3", "[1]"),
    ]
    _write_contacts(run, export, "own-contacts", T0 + pd.Timedelta(hours=1))
    _write_events(run, rng, t, "ev-0", T0 + pd.Timedelta(hours=1))
    assert update_silver(run, grid_minutes=5).mode == "incremental"
    _assert_same_as_full(run, tmp_path)
    events = _silver(run)[2]
    calls = events[events["type"] == "CUSTOMER_CALL"]
    c1 = calls[calls["entity_id"] == "C-1"]
    assert sorted(c1["payload"]) == sorted([live, '{"channel": "phone", "reason": "no_internet"}'])
    assert len(calls) == 5
    # the rule is the contacts' own: other events still differ by their whole payload
    con = duckdb.connect()
    raw = con.execute(
        f"SELECT count(DISTINCT (entity_id, type, ts, payload)) FROM read_parquet("
        f"'{raw_dir(run, 'events')}/*/ev-0.parquet')"
    ).fetchone()[0]
    assert (events["type"] != "CUSTOMER_CALL").sum() == raw
