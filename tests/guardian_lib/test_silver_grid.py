"""SILVER's time grid on an operator's own lake: whole seconds, inferred from the
telemetry when no simulated run says it, one grid per warehouse, and ``guardian
decide``'s replay on it (30 s, 90 s and 15-minute networks, skipped slots)."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.silver_grid import check_grid, nice_step

T0 = pd.Timestamp("2026-03-02T08:00:00", tz="UTC")
MAPPING = {
    "tables": {
        "onus": {"file": "onus.csv", "columns": {"onu_id": "onu", "pon_id": "pon"}},
        "telemetry": {
            "file": "tel.csv",
            "columns": {
                "ts": "coleta", "onu_id": "onu", "rx_dbm": "rx",
                "online": {"column": "estado", "true_values": ["UP"]},
            },
        },
    }
}  # fmt: skip


def _export(folder, spacing_s: int, hours: float = 3.0, n_onus: int = 24, seed: int = 0,
            dead: str | None = "ONU07"):  # fmt: skip
    """An operator's export polled every ``spacing_s``: each ONU at its own phase (up to a
    third of a step) with ±2 s jitter; ``dead`` goes offline halfway."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    onus = [f"ONU{k:02d}" for k in range(n_onus)]
    pd.DataFrame({"onu": onus, "pon": [f"PON{k % 2}" for k in range(n_onus)]}).to_csv(
        folder / "onus.csv", index=False
    )
    n = int(hours * 3600 / spacing_s)
    rows = []
    for onu in onus:
        phase = rng.uniform(0, spacing_s / 3)
        t = T0 + pd.to_timedelta(np.arange(n) * spacing_s + phase + rng.uniform(-2, 2, n), "s")
        up = np.where((onu == dead) & (np.arange(n) >= n // 2), "DOWN", "UP")
        rows.append(pd.DataFrame({"coleta": t.round("s").strftime("%Y-%m-%d %H:%M:%S"),
                                  "onu": onu, "rx": -20.0, "estado": up}))  # fmt: skip
    tel = pd.concat(rows, ignore_index=True)
    tel.to_csv(folder / "tel.csv", index=False)
    (folder / "mapping.yaml").write_text(yaml.safe_dump(MAPPING))
    return len(tel)


def _silver(run) -> pd.DataFrame:
    from guardian_lib.warehouse import connect

    con = connect(run)
    try:
        return con.execute("SELECT epoch(ts)::BIGINT AS t, onu_id FROM telemetry").df()
    finally:
        con.close()


def _silver_files(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((run / "lake" / "silver").rglob("*.parquet"))}


# --- the grid itself ---------------------------------------------------------------------


@pytest.mark.parametrize("grid", [1, 30, 90, 300, 900, 3600, 86400])
def test_grids_that_divide_a_day_are_accepted(grid):
    assert check_grid(grid) == grid


def test_other_grids_are_refused_with_the_nearest_ones():
    with pytest.raises(IngestError, match=r"--grid-seconds: a grid of 420 s does not divide a "
                       r"day \(86400 s\).*400 s or 432 s"):  # fmt: skip
        check_grid(420, "--grid-seconds")
    for bad in (0, -30, 1.5, "x"):
        with pytest.raises(IngestError, match="--grid-seconds"):
            check_grid(bad, "--grid-seconds")


def test_a_measured_spacing_rounds_to_a_sensible_step():
    assert [nice_step(s) for s in (0.4, 29.2, 31.9, 88.0, 293.7, 880, 5500)] == [
        1, 30, 30, 90, 300, 900, 5400,
    ]  # fmt: skip
    # From an hour on, only steps that divide a day (before: 5 h → 18,000 s, refused).
    assert [nice_step(h * 3600) for h in (1, 5, 7, 11, 23, 30)] == [
        3600, 14400, 21600, 43200, 86400, 86400,
    ]  # fmt: skip
    assert all(86_400 % nice_step(s) == 0 for s in np.linspace(3600, 200_000, 97))


def test_a_sites_grid_is_its_polling_interval_in_seconds():
    """Before: whole minutes (90 s → 2 min, 30 s → 1 min)."""
    from guardian_lib.operate.site import SiteConfig
    from guardian_lib.operate.steps import silver_grid_seconds

    def site(interval, speed=None):
        clock = None if speed is None else SimpleNamespace(speed=speed)
        return SimpleNamespace(polling_interval_s=interval, clock=clock)

    assert silver_grid_seconds(site(90)) == 90
    assert silver_grid_seconds(site(30)) == 30
    assert silver_grid_seconds(site(0.5, speed=600)) == 300  # the twin's scaled clock
    with pytest.raises(ConfigError, match=r"polling_interval_s \(420 s\): a grid of 420 s"):
        silver_grid_seconds(site(420))
    with pytest.raises(ValueError, match="polling_interval_s"):
        SiteConfig(inventory="olts.yaml", warehouse="w", polling_interval_s=420)
    assert SiteConfig(inventory="olts.yaml", warehouse="w", polling_interval_s=90)


# --- own data: ingest and replay ----------------------------------------------------------


@pytest.mark.parametrize("spacing", [30, 90])
def test_a_30_s_or_90_s_network_keeps_every_poll_and_replays_on_its_grid(tmp_path, spacing):
    """Before: no run.json meant a 5-minute grid, 30 s polls kept 1 in 10."""
    from guardian_lib.operate.decide import decide_run
    from guardian_lib.owndata import import_source

    n_raw = _export(tmp_path / "export", spacing)
    run = tmp_path / "w"
    result = import_source(run, tmp_path / "export" / "mapping.yaml")
    assert result.ingest.grid_s == spacing
    assert result.ingest.grid_source.startswith(f"inferred: median spacing {spacing}")
    silver = _silver(run)
    assert len(silver) == n_raw and (silver["t"] % spacing == 0).all()
    assert silver.groupby("t")["onu_id"].nunique().eq(24).all()  # every step holds the fleet
    s = decide_run(run, models="rules", warmup_h=0.5, audit_path=tmp_path / "a.duckdb")
    assert s.tick_s == spacing and s.gap_ticks == 0 and s.held_readings == 0
    assert s.ticks == 3 * 3600 // spacing  # every step of the export
    assert s.incidents_opened == 0  # no phantom outage from half-empty steps
    con = duckdb.connect(str(tmp_path / "a.duckdb"), read_only=True)
    cases = con.execute("SELECT DISTINCT subject FROM decisions WHERE action = 'open_case'")
    assert [r[0] for r in cases.fetchall()] == ["ONU07"]
    con.close()


def test_a_15_minute_lake_gets_its_grid_and_one_warehouse_keeps_one(tmp_path):
    """Before: a 5-minute grid, each ONU missing from two steps in three."""
    from guardian_lib.history import HistoryTelemetrySource, silver_grid_s
    from guardian_lib.ingest import ingest_run
    from guardian_lib.owndata import import_source
    from guardian_lib.silver import update_silver
    from guardian_lib.warehouse import connect

    n_raw = _export(tmp_path / "export", 900, hours=12, dead=None)
    run = tmp_path / "w"
    assert import_source(run, tmp_path / "export" / "mapping.yaml").ingest.grid_s == 900
    con = connect(run)
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM telemetry").fetchone()
    lo, hi = pd.Timestamp(lo), pd.Timestamp(hi)
    assert silver_grid_s(con, lo, hi) == 900
    src = HistoryTelemetrySource(con, np.array([f"ONU{k:02d}" for k in range(24)]), lo, hi, 900)
    ticks = list(src)
    con.close()
    assert len(ticks) == 48 and src.held == 0 and src.gap_ticks == 0
    assert all(t.online.all() for t in ticks)
    # Another grid is refused, both named, nothing changed ...
    before = _silver_files(run)
    with pytest.raises(IngestError, match=r"SILVER is on a 900 s grid and this ingest's grid is "
                       r"300 s \(asked for\).*--grid-seconds 300"):  # fmt: skip
        ingest_run(run, grid_s=300)
    with pytest.raises(IngestError, match=r"SILVER is on a 900 s grid.* 60 s grid"):
        update_silver(run, grid_s=60)
    assert _silver_files(run) == before
    # ... unless asked to re-snap: every row is still there, on the new grid
    summary = ingest_run(run, grid_s=300, regrid=True)
    assert (summary.grid_s, summary.regridded_from) == (300, 900)
    silver = _silver(run)
    assert len(silver) == n_raw and (silver["t"] % 300 == 0).all()
    assert ingest_run(run).grid_source == "recorded in the warehouse"
    assert ingest_run(run, grid_minutes=5).dates_rebuilt == 0  # the older argument


def test_the_ingest_command_says_which_grid_and_refuses_a_bad_one(tmp_path, capsys):
    from guardian_lib.cli import main

    _export(tmp_path / "export", 90, hours=1)
    exp = tmp_path / "export"
    args = ["ingest", "--run", str(tmp_path / "w"), "--source", str(exp)]
    with pytest.raises(SystemExit) as exc:
        main([*args, "--grid-seconds", "420"])
    out = capsys.readouterr()
    assert exc.value.code != 0 and "a grid of 420 s does not divide a day" in out.err + out.out
    assert not (tmp_path / "w" / "warehouse.duckdb").exists()
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0
    out = capsys.readouterr()
    assert "grid 90 s (inferred: median spacing 90 s" in " ".join((out.out + out.err).split())


def test_a_simulated_run_keeps_its_tick(tiny_run, tmp_path):
    from guardian_lib.ingest import ingest_run

    run = tmp_path / "tiny"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("warehouse*", "silver", ".*"))
    s = ingest_run(run)
    assert (s.grid_s, s.grid_source, s.regridded_from) == (300, "run.json tick_minutes", None)


# --- skipped slots ------------------------------------------------------------------------


def test_a_20_minute_hole_replays_as_operate_ran_it(operator_export, tmp_path):
    """Operate stopped for 20 minutes: SILVER has four steps without a row. The replay
    repeats the last readings over them (no fleet outage) and decides the same actions
    on the same subjects as over the complete export."""
    from guardian_lib.operate.decide import decide_run
    from guardian_lib.owndata import import_source

    start, end = pd.Timestamp("2026-01-06T00:00Z"), pd.Timestamp("2026-01-06T08:00Z")
    decided = {}
    for name in ("full", "hole"):
        src = tmp_path / name
        shutil.copytree(operator_export[1], src)
        if name == "hole":  # local time (UTC-3): 03:00-03:15 UTC
            f = src / "telemetria_2026-01-06.csv"
            tel = pd.read_csv(f, sep=";", dtype=str)
            t = pd.to_datetime(tel["coleta"], format="%d/%m/%Y %H:%M:%S")
            cut = (t >= "2026-01-05 23:57:30") & (t < "2026-01-06 00:17:30")
            assert cut.sum() > 200
            tel[~cut].to_csv(f, sep=";", index=False)
        import_source(tmp_path / f"w{name}", src / "mapping.yaml", source_dir=src)
        audit = tmp_path / f"{name}.duckdb"
        s = decide_run(tmp_path / f"w{name}", start, end, models="rules", warmup_h=2,
                       audit_path=audit)  # fmt: skip
        con = duckdb.connect(str(audit), read_only=True)
        rows = con.execute("SELECT action, subject FROM decisions").fetchall()
        con.close()
        decided[name] = (s, sorted(rows))
    (full, full_rows), (hole, hole_rows) = decided["full"], decided["hole"]
    assert hole.gap_ticks == 4 and full.gap_ticks == 0
    assert hole.incidents_opened == full.incidents_opened
    assert hole.decisions_by_action == full.decisions_by_action
    assert hole_rows == full_rows


def test_a_warehouse_from_before_the_record_is_resnapped_once(tmp_path, tiny_run):
    """No ``_silver_grid`` table: SILVER is on the grid the ingest used then (5 minutes
    without run.json); a 15-minute lake is re-snapped, a simulated run is left alone."""
    from guardian_lib.ingest import ingest_run, ingest_user_telemetry
    from guardian_lib.silver_grid import GRID_TABLE
    from guardian_lib.warehouse import warehouse_path

    def forget_grid(run):
        con = duckdb.connect(str(warehouse_path(run)))
        con.execute(f"DROP TABLE {GRID_TABLE}")
        con.close()

    _export(tmp_path / "export", 900, hours=6, dead=None)
    tel = pd.read_csv(tmp_path / "export" / "tel.csv")
    tel = tel.rename(columns={"coleta": "ts", "onu": "onu_id", "rx": "rx_dbm"})
    tel["online"] = tel.pop("estado").eq("UP")
    tel.to_csv(tmp_path / "tel.csv", index=False)
    run = tmp_path / "w"
    ingest_user_telemetry(run, tmp_path / "tel.csv")
    assert ingest_run(run, grid_s=300).grid_s == 300  # what the old default made of it
    forget_grid(run)
    s = ingest_run(run)
    assert (s.grid_s, s.regridded_from, s.dates_rebuilt) == (900, 300, 1)
    assert (_silver(run)["t"] % 900 == 0).all()
    assert ingest_run(run).dates_rebuilt == 0  # recorded now

    sim = tmp_path / "tiny"
    shutil.copytree(tiny_run, sim)
    forget_grid(sim)
    before = _silver_files(sim)
    s = ingest_run(sim)
    assert (s.grid_s, s.regridded_from, s.dates_rebuilt) == (300, None, 0)
    assert _silver_files(sim) == before
