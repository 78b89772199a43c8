import shutil
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.ingest import ingest_run, ingest_user_telemetry, load_column_mapping
from guardian_lib.warehouse import connect, run_summary


@pytest.fixture
def run(tiny_run, tmp_path) -> Path:
    """A private copy of the ingested tiny run (tests may change it)."""
    dest = tmp_path / "run"
    shutil.copytree(tiny_run, dest)
    return dest


def counts(run: Path) -> dict:
    return run_summary(run)["row_counts"]


def test_silver_is_deduplicated_cleaned_and_on_the_grid(run):
    con = connect(run)
    dup = con.execute(
        "SELECT count(*) FROM (SELECT onu_id, ts FROM telemetry GROUP BY ALL HAVING count(*) > 1)"
    ).fetchone()[0]
    assert dup == 0
    off_grid = con.execute("SELECT count(*) FROM telemetry WHERE epoch(ts) % 300 != 0").fetchone()[
        0
    ]
    assert off_grid == 0
    bad = con.execute(
        "SELECT count(*) FROM telemetry WHERE rx_dbm NOT BETWEEN -50 AND 10 "
        "OR olt_rx_dbm NOT BETWEEN -50 AND 10"
    ).fetchone()[0]
    assert bad == 0
    raw_dups = con.execute(
        "SELECT count(*) - count(DISTINCT (onu_id, ts)) FROM telemetry_raw"
    ).fetchone()[0]
    assert raw_dups > 0
    sentinels = con.execute(
        "SELECT count(*) FROM telemetry_raw WHERE rx_dbm > 1000 OR olt_rx_dbm > 1000 "
        "OR rx_dbm = -80 OR olt_rx_dbm = -80"
    ).fetchone()[0]
    quality = run_summary(run)["data_quality"]
    assert sentinels > 0 and quality["sentinels_removed"] >= sentinels
    assert quality["late_rows"] > 0
    con.close()


def test_ingest_is_idempotent(run):
    before = counts(run)
    summary = ingest_run(run)
    assert summary.dates_rebuilt == 0
    assert counts(run) == before


def test_a_bad_raw_file_leaves_the_warehouse_as_it_was(run):
    before = counts(run)
    silver_before = sorted((run / "lake" / "silver").rglob("*.parquet"))
    mtimes = [p.stat().st_mtime_ns for p in silver_before]
    bad = run / "lake" / "raw" / "telemetry" / "date=2026-01-06" / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(IngestError, match="broken.parquet"):
        ingest_run(run)
    assert counts(run) == before
    assert [p.stat().st_mtime_ns for p in silver_before] == mtimes
    bad.unlink()
    # A RAW file without a required column is refused the same way.
    pd.DataFrame({"ts": pd.to_datetime(["2026-01-05T00:00:00Z"]), "onu_id": ["X"]}).to_parquet(
        bad.with_name("thin.parquet")
    )
    with pytest.raises(IngestError, match=r"thin.parquet: missing column\(s\) \['received_at'"):
        ingest_run(run)
    assert counts(run) == before


def test_user_csv_with_mapping_and_late_rows(run, tmp_path):
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text(
        "source: nms_export\n"
        "columns:\n"
        "  ts: {column: when, timezone: America/Sao_Paulo}\n"
        "  onu_id: serial\n"
        "  rx_dbm: {column: rx_centi_dbm, scale: 0.01}\n"
        "  online: {column: status, true_values: [UP]}\n"
    )
    csv = tmp_path / "export.csv"
    onu = connect(run).execute("SELECT onu_id FROM onus LIMIT 1").fetchone()[0]
    # 2026-01-05 21:00 in São Paulo is 2026-01-06 00:00 UTC (a date already in SILVER).
    csv.write_text(f"when,serial,rx_centi_dbm,status\n2026-01-05 21:00:00,{onu},-2150,UP\n")
    mapping = load_column_mapping(mapping_file)
    rep = ingest_user_telemetry(run, csv, mapping)
    assert rep.rows_added == 1 and rep.status == "added"
    assert ingest_user_telemetry(run, csv, mapping).status == "already present"
    summary = ingest_run(run)
    assert summary.dates_rebuilt >= 1
    con = connect(run)
    row = con.execute(
        "SELECT rx_dbm, source, online FROM telemetry WHERE onu_id = ? "
        "AND ts = TIMESTAMPTZ '2026-01-06 00:00:00+00'",
        [onu],
    ).fetchone()
    assert row == (-21.5, "nms_export", True)  # the newest received row wins
    con.close()


def test_user_file_errors_name_file_row_and_column(run, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,onu_id,rx_dbm\n2026-01-05T00:00:00Z,A,-20.1\n2026-01-05T00:05:00Z,A,abc\n")
    with pytest.raises(
        IngestError,
        match=r"bad.csv: row 2 \(line 3\): column 'rx_dbm': expected a number, got 'abc'",
    ):
        ingest_user_telemetry(run, csv)
    csv.write_text("ts,onu_id,rx_dbm\nyesterday,A,-20.1\n")
    with pytest.raises(IngestError, match=r"row 1 \(line 2\): column 'ts': expected a timestamp"):
        ingest_user_telemetry(run, csv)
    csv.write_text("ts,serial,rx_dbm\n2026-01-05T00:00:00Z,A,-20.1\n")
    with pytest.raises(IngestError, match=r"missing column\(s\) \['onu_id <- onu_id'\]"):
        ingest_user_telemetry(run, csv)
    # Nothing was written to RAW by the failed attempts.
    assert not list((run / "lake" / "raw" / "telemetry").glob("date=*/user-*.parquet"))


def test_online_words_that_match_no_true_value_are_refused_not_read_as_offline(run, tmp_path):
    # 'UP'/'DOWN' mapped with true_values [ONLINE] used to import every row as offline: the
    # whole fleet down, although the rows carry optical levels.
    mapping_file = tmp_path / "map.yaml"
    mapping_file.write_text(
        "columns:\n  ts: when\n  onu_id: serial\n"
        "  rx_dbm: {column: rx_centi_dbm, scale: 0.01}\n"
        "  online: {column: status, true_values: [ONLINE]}\n"
    )
    mapping = load_column_mapping(mapping_file)
    csv = tmp_path / "export.csv"
    rows = [f"2026-01-05 0{i}:00:00,ONU{i},-2150,UP" for i in range(3)]
    csv.write_text("when,serial,rx_centi_dbm,status\n" + "\n".join(rows + [
        "2026-01-05 04:00:00,ONU4,,DOWN"]) + "\n")  # fmt: skip
    with pytest.raises(
        IngestError,
        match=r"export.csv: column 'status' \(mapped to online\): no value is one of "
        r"true_values \['ONLINE'\] \(the column holds 'DOWN', 'UP'\).*75% of them",
    ):
        ingest_user_telemetry(run, csv, mapping)
    assert not list((run / "lake" / "raw" / "telemetry").glob("date=*/user-*.parquet"))
    # An export of offline rows without light (an outage) is still read as it is.
    csv.write_text("when,serial,rx_centi_dbm,status\n2026-01-05 04:00:00,ONU4,,LOS\n")
    assert ingest_user_telemetry(run, csv, mapping).rows_added == 1
    # With the right word, the same file imports online rows.
    mapping_file.write_text(mapping_file.read_text().replace("[ONLINE]", "[ONLINE, UP]"))
    csv.write_text("when,serial,rx_centi_dbm,status\n" + "\n".join(rows) + "\n")
    assert ingest_user_telemetry(run, csv, load_column_mapping(mapping_file)).rows_added == 3


def test_mapping_errors(tmp_path):
    f = tmp_path / "m.yaml"
    f.write_text("columns: {ts: a, onu_id: b, rx_power: c}\n")
    with pytest.raises(ConfigError, match="columns.rx_power: not a telemetry column"):
        load_column_mapping(f)
    f.write_text("columns: {ts: a, rx_dbm: c}\n")
    with pytest.raises(ConfigError, match="columns.onu_id: required"):
        load_column_mapping(f)
    f.write_text("columns: {ts: a, onu_id: b, rx_dbm: {column: c, scael: 2}}\n")
    with pytest.raises(ConfigError, match="scael"):
        load_column_mapping(f)


def test_missing_warehouse_and_missing_inventory_column(tmp_path, tiny_run):
    from guardian_lib.errors import WarehouseError

    with pytest.raises(WarehouseError, match="guardian ingest"):
        connect(tmp_path)
    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    onus = pd.read_parquet(run / "inventory" / "onus.parquet").drop(columns=["pon_id"])
    onus.to_parquet(run / "inventory" / "onus.parquet")
    with pytest.raises(IngestError, match=r"onus.parquet: missing column\(s\) \['pon_id'\]"):
        ingest_run(run)


def test_warehouse_tables_match_simulation(run):
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    n_onus = con.execute("SELECT count(*) FROM onus").fetchone()[0]
    n_cust = con.execute("SELECT count(DISTINCT customer_id) FROM customers").fetchone()[0]
    assert n_onus == n_cust == 64
    con.close()
