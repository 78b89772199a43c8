"""Point 7: data handling — units, removed RAW files, staging, corrupt RAW, concurrent
ingests, sparse dates, and ``simulate --overwrite`` on a folder that is not a run."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_runner import run_guardian

import guardian_lib.ingest as ingest_mod
from guardian_lib.errors import IngestError
from guardian_lib.ingest import (
    LOCK_FILE,
    ColumnMapping,
    ColumnSpec,
    ingest_run,
    ingest_user_telemetry,
)
from guardian_lib.warehouse import connect, run_summary, silver_dir
from simulator.output import simulate_to_dir
from simulator.scenario import load_scenario


def _csv(path: Path, rows: list[tuple[str, str, float]]) -> Path:
    path.write_text("ts,onu_id,rx\n" + "".join(f"{t},{o},{v}\n" for t, o, v in rows))
    return path


def _mapping(scale: float = 1.0) -> ColumnMapping:
    return ColumnMapping(
        columns={"ts": "ts", "onu_id": "onu_id", "rx_dbm": ColumnSpec(column="rx", scale=scale)}
    )


def _silver_rows(run: Path) -> dict[str, int]:
    con = connect(run)
    try:
        got = con.execute(
            "SELECT strftime(ts, '%Y-%m-%d'), count(*) FROM telemetry GROUP BY 1 ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return dict(got)


def test_centi_dbm_with_scale_1_is_refused_naming_file_column_and_scale(tmp_path):
    f = _csv(
        tmp_path / "centi.csv",
        [("2026-01-01T00:00:00Z", "A", -2150), ("2026-01-01T00:05:00Z", "A", -2210)],
    )
    with pytest.raises(IngestError) as err:
        ingest_user_telemetry(tmp_path / "run", f, _mapping(1.0))
    msg = str(err.value)
    assert str(f) in msg and "'rx'" in msg and "rx_dbm" in msg and "scale: 0.01" in msg
    assert not list((tmp_path / "run").rglob("*.parquet"))  # nothing written
    # The suggested scale works and keeps RX (online rows have a value).
    ingest_user_telemetry(tmp_path / "run", f, _mapping(0.01))
    ingest_run(tmp_path / "run")
    con = connect(tmp_path / "run")
    rx = con.execute("SELECT min(rx_dbm), max(rx_dbm), bool_and(online) FROM telemetry").fetchone()
    assert rx == pytest.approx((-22.1, -21.5, True))


def test_removed_user_raw_file_leaves_silver(tmp_path):
    run = tmp_path / "run"
    a = _csv(
        tmp_path / "a.csv", [("2026-01-01T00:00:00Z", "A", -20), ("2026-01-02T00:00:00Z", "A", -20)]
    )
    b = _csv(tmp_path / "b.csv", [("2026-01-02T00:05:00Z", "B", -21)])
    for f in (a, b):
        ingest_user_telemetry(run, f, _mapping())
    ingest_run(run)
    assert _silver_rows(run) == {"2026-01-01": 1, "2026-01-02": 2}
    raw_a = next(
        p for p in run.rglob("user-*.parquet") if "A" in pq.read_table(p)["onu_id"].to_pylist()
    )
    raw_a.unlink()
    summary = ingest_run(run)
    assert _silver_rows(run) == {"2026-01-02": 1}  # date only A fed is dropped, shared one rebuilt
    assert summary.dates_rebuilt == 2
    assert not (silver_dir(run, "telemetry") / "date=2026-01-01").exists()


def test_two_rows_five_years_apart_write_two_partitions(tmp_path):
    run = tmp_path / "run"
    f = _csv(
        tmp_path / "sparse.csv",
        [("2021-01-01T12:00:00Z", "A", -20), ("2026-01-01T12:00:00Z", "A", -20)],
    )
    ingest_user_telemetry(run, f, _mapping())
    summary = ingest_run(run)
    parts = sorted(
        {p.parent.name for p in silver_dir(run, "telemetry").glob("date=*/data*.parquet")}
    )
    assert parts == ["date=2021-01-01", "date=2026-01-01"]
    assert summary.dates_rebuilt == 2


def test_staging_folders_are_cleaned_on_start_and_after_failure(tmp_path, monkeypatch):
    run = tmp_path / "run"
    ingest_user_telemetry(
        run, _csv(tmp_path / "a.csv", [("2026-01-01T00:00:00Z", "A", -20)]), _mapping()
    )
    stale = run / "lake" / "silver" / ".staging-424242" / "telemetry"
    stale.mkdir(parents=True)
    (stale / "junk.parquet").write_bytes(b"x")
    ingest_run(run)
    assert not list((run / "lake" / "silver").glob(".staging-*"))

    ingest_user_telemetry(
        run, _csv(tmp_path / "b.csv", [("2026-01-03T00:00:00Z", "B", -20)]), _mapping()
    )

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest_mod, "_build_silver_date", boom)
    with pytest.raises(RuntimeError):
        ingest_run(run)
    assert not list((run / "lake" / "silver").glob(".staging-*"))
    assert _silver_rows(run) == {"2026-01-01": 1}  # the earlier SILVER is intact


def test_corrupt_raw_file_after_ingest_is_named_and_skipped(tmp_path):
    run = tmp_path / "run"
    for name, onu in (("a.csv", "A"), ("b.csv", "B")):
        ingest_user_telemetry(
            run, _csv(tmp_path / name, [("2026-01-01T00:00:00Z", onu, -20)]), _mapping()
        )
    ingest_run(run)
    victim = sorted(run.rglob("user-*.parquet"))[0]
    victim.write_bytes(b"PAR1 this is not parquet")
    con = connect(run)
    assert con.execute("SELECT count(*) FROM telemetry_raw").fetchone()[0] == 1
    con.close()
    summary = run_summary(run)
    assert summary["unreadable_files"] == [str(victim.relative_to(run))]
    res = run_guardian("info", "--run", str(run), check=False)  # in-process: same error path
    assert res.returncode == 0, res.stderr
    assert f"warning: {victim}: unreadable RAW file" in res.stderr
    assert "Traceback" not in res.stderr


def test_second_ingest_waits_then_fails_with_one_line(tmp_path):
    run = tmp_path / "run"
    ingest_user_telemetry(
        run, _csv(tmp_path / "a.csv", [("2026-01-01T00:00:00Z", "A", -20)]), _mapping()
    )
    fd = os.open(run / LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # another ingest holds the run
        with pytest.raises(IngestError, match="another ingest .* is running"):
            ingest_run(run, lock_wait_s=0.2)
        # in-process: flock locks of two open files conflict within one process too
        res = run_guardian("ingest", "--run", str(run), "--lock-wait", "0.2", check=False)
        assert res.returncode == 2
        assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1
        assert "another ingest" in res.stderr
    finally:
        os.close(fd)
    assert ingest_run(run, lock_wait_s=0.2).silver_telemetry_rows == 1  # released: runs


def test_simulate_overwrite_refuses_a_folder_that_is_not_a_run(tmp_path):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(FileExistsError, match="not a simulated run"):
        simulate_to_dir(load_scenario("tiny", days=0.05), precious, overwrite=True)
    res = run_guardian("simulate", "--scenario", "tiny", "--days", "0.05", "--out", str(precious),
                       "--overwrite", check=False)  # fmt: skip
    assert res.returncode == 2 and "no run.json" in res.stderr and res.stderr.count("\n") == 1
    assert (precious / "cat.jpg").read_bytes() == b"meow"
    # A real run is still replaced.
    run = tmp_path / "run"
    simulate_to_dir(load_scenario("tiny", days=0.05), run)
    simulate_to_dir(load_scenario("tiny", days=0.05), run, overwrite=True, seed=9)
    assert (run / "run.json").is_file()
