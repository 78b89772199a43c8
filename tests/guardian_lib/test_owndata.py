"""Own data: a warehouse built only from an operator's exports (`guardian ingest --source`).

The export is made here by hand from the tiny simulated run, the way an operator's
systems would write it: Portuguese column names, `;` delimiters, centi-dBm, local time,
vendor alarm names, Brazilian date formats. Then every kind of bad input, idempotence,
atomicity, SQLite and a real PostgreSQL server, and the commands downstream.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.owndata import import_source, load_source_mapping
from guardian_lib.owndata.tables import CPE_STATE_COLUMNS, SERVICE_ORDER_COLUMNS
from guardian_lib.schema import EVENT_TYPES, INVENTORY_COLUMNS
from guardian_lib.warehouse import connect, run_summary

ZONE = "America/Sao_Paulo"
MAPPING = """\
timezone: America/Sao_Paulo
source: acme_isp
tables:
  olts: {file: olts.csv, columns: {olt_id: olt, vendor: fabricante, region: regiao, city: cidade}}
  pons: {file: pons.csv, columns: {pon_id: pon, olt_id: olt, slot: placa, port: porta}}
  onus:
    file: inventario_onus.csv
    csv_delimiter: ";"
    columns: {onu_id: serial, serial: serial, pon_id: pon, vendor: fabricante,
              distance_m: {column: distancia_km, scale: 1000}}
  customers: {file: clientes.csv, columns: {customer_id: cliente, onu_id: serial, plan: plano,
              segment: segmento, region: regiao}}
  telemetry:
    file: "telemetria_*.csv"
    columns:
      ts: {column: coleta, format: "%d/%m/%Y %H:%M"}
      onu_id: serial
      rx_dbm: {column: rx_centi_dbm, scale: 0.01}
      online: {column: estado, true_values: [UP]}
  events:
    file: alarmes.csv
    columns: {ts: {column: quando, format: "%d/%m/%Y %H:%M:%S"}, entity_id: equipamento,
              type: alarme}
    values: {type: {"PERDA DE SINAL": LOS, "dying gasp": DYING_GASP, "PORTA ABERTA": ~}}
    defaults: {entity_type: onu, severity: major}
  contacts:
    file: atendimentos.csv
    columns: {ts: {column: data, format: "%d/%m/%Y %H:%M"}, customer_id: cliente,
              channel: canal, reason: motivo}
  tickets:
    file: ordens_servico.csv
    columns:
      ticket_id: os
      customer_id: cliente
      onu_id: serial_onu
      opened_at: {column: abertura, format: "%d/%m/%Y %H:%M"}
      closed_at: {column: fechamento, format: "%d/%m/%Y %H:%M"}
      closure_code: codigo_baixa
      notes: obs_tecnico
      cost_brl: custo
  cpe_state:
    file: acs_export.parquet
    columns: {ts: coletado_em, cpe_id: dispositivo, software_version: firmware,
              uptime_s: {column: uptime_min, scale: 60}, ppp_up: {column: ppp, true_values: [Up]}}
"""


def _local(ts: pd.Series, fmt: str) -> pd.Series:
    return ts.dt.tz_convert(ZONE).dt.strftime(fmt)


def make_export(run: Path, out: Path, hours: int = 6) -> dict:
    """An operator's export of the first ``hours`` of ``run``; returns what it holds."""
    out.mkdir(parents=True)
    inv = {t: pd.read_parquet(run / "inventory" / f"{t}.parquet") for t in INVENTORY_COLUMNS}
    olts = inv["olts"].rename(columns={"olt_id": "olt", "vendor": "fabricante"})
    olts.assign(regiao=olts["region"], cidade=olts["city"])[
        ["olt", "fabricante", "regiao", "cidade"]
    ].to_csv(out / "olts.csv", index=False)
    inv["pons"].rename(
        columns={"pon_id": "pon", "olt_id": "olt", "slot": "placa", "port": "porta"}
    )[["pon", "olt", "placa", "porta"]].to_csv(out / "pons.csv", index=False)
    onus = inv["onus"]
    pd.DataFrame(
        {
            "serial": onus["onu_id"],
            "pon": onus["pon_id"],
            "fabricante": onus["vendor"],
            "distancia_km": onus["distance_m"] / 1000,
        }  # fmt: skip
    ).to_csv(out / "inventario_onus.csv", index=False, sep=";")
    cust = inv["customers"]
    pd.DataFrame(
        {
            "cliente": cust["customer_id"],
            "serial": cust["onu_id"],
            "plano": cust["plan"],
            "segmento": cust["segment"],
            "regiao": cust["region"],
        }  # fmt: skip
    ).to_csv(out / "clientes.csv", index=False)
    tel = pd.concat(
        pd.read_parquet(f) for f in sorted(glob.glob(str(run / "lake/raw/telemetry/*/*.parquet")))
    )
    start = tel["ts"].min()
    tel = tel[tel["ts"] < start + pd.Timedelta(hours=hours)]
    # The export keeps whole minutes (its format has no seconds).
    tel = tel.assign(ts=tel["ts"].dt.floor("min")).drop_duplicates(["onu_id", "ts"], keep="last")
    t = pd.DataFrame(
        {
            "coleta": _local(tel["ts"], "%d/%m/%Y %H:%M"),
            "serial": tel["onu_id"].astype(str),
            "rx_centi_dbm": (tel["rx_dbm"] * 100).round().astype("Int64"),
            "estado": np.where(tel["online"], "UP", "DOWN"),
        }  # fmt: skip
    )
    half = len(t) // 2
    t.iloc[:half].to_csv(out / "telemetria_1.csv", index=False)
    t.iloc[half:].to_csv(out / "telemetria_2.csv", index=False)
    ids = onus["onu_id"].astype(str).tolist()
    ts0 = start.floor("h")
    alarms = pd.DataFrame(
        {
            "quando": _local(
                pd.Series([ts0 + pd.Timedelta(minutes=m) for m in (10, 20, 30, 40)]),
                "%d/%m/%Y %H:%M:%S",
            ),
            "equipamento": ids[:4],
            "alarme": ["PERDA DE SINAL", "Dying Gasp ", "PORTA ABERTA", "LOW_RX"],
        }  # fmt: skip
    )
    alarms.to_csv(out / "alarmes.csv", index=False)
    customers = cust["customer_id"].astype(str).tolist()
    pd.DataFrame(
        {
            "data": _local(pd.Series([ts0 + pd.Timedelta(minutes=50)] * 2), "%d/%m/%Y %H:%M"),
            "cliente": customers[:2],
            "canal": ["telefone", "app"],
            "motivo": ["sem internet", ""],
        }  # fmt: skip
    ).to_csv(out / "atendimentos.csv", index=False)
    tickets = pd.DataFrame(
        {
            "os": ["OS-1", "OS-2", "OS-3"],
            "cliente": [customers[0], "", customers[2]],
            "serial_onu": ["", ids[1], ""],
            "abertura": ["05/01/2026 08:00", "05/01/2026 09:30", "05/01/2026 10:00"],
            "fechamento": ["05/01/2026 15:00", "", "05/01/2026 12:00"],
            "codigo_baixa": ["ROMPIMENTO DE FIBRA", "", "SEM DEFEITO CONSTATADO"],
            "obs_tecnico": ["fibra rompida na rua", "", "cliente ok"],
            "custo": ["150", "", "150.5"],
        }  # fmt: skip
    )
    tickets.to_csv(out / "ordens_servico.csv", index=False)
    pd.DataFrame(
        {
            "coletado_em": pd.to_datetime(["2026-01-05T10:00:00Z", "2026-01-05T10:00:00Z"]),
            "dispositivo": ["CPE-1", "CPE-2"],
            "firmware": ["V1", "V2"],
            "uptime_min": [10, 20],
            "ppp": ["Up", "Down"],
        }  # fmt: skip
    ).to_parquet(out / "acs_export.parquet")
    (out / "mapping.yaml").write_text(MAPPING)
    return {"telemetry": tel, "onus": onus, "customers": customers, "ids": ids, "ts0": ts0}


@pytest.fixture(scope="module")
def export_template(tiny_run, tmp_path_factory) -> tuple[Path, dict]:
    src = tmp_path_factory.mktemp("export") / "src"
    return src, make_export(tiny_run, src)


@pytest.fixture(scope="module")
def imported(export_template, tmp_path_factory) -> tuple[Path, Path, dict]:
    """The export imported once into a new warehouse (read-only for the tests)."""
    src, facts = export_template
    wh = tmp_path_factory.mktemp("own") / "W"
    import_source(wh, src / "mapping.yaml")
    return wh, src, facts


@pytest.fixture
def src(export_template, tmp_path) -> Path:
    """A private copy of the export (tests may break it)."""
    dest = tmp_path / "src"
    shutil.copytree(export_template[0], dest)
    return dest


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with the SHA-256 of its content."""
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".ingest.lock"
    }


# --- the full import ------------------------------------------------------------------


def test_every_table_lands_where_the_warehouse_reads_it(imported):
    wh, _, facts = imported
    assert not (wh / "run.json").exists() and not (wh / "ops" / "faults_truth.parquet").exists()
    con = connect(wh)
    try:
        for table, cols in INVENTORY_COLUMNS.items():
            if table == "splitters":  # not in this export: not imported
                continue
            df = con.execute(f"SELECT * FROM {table}").df()
            assert list(df.columns)[: len(cols)] == list(cols)
        onus = con.execute("SELECT * FROM onus ORDER BY onu_id").df()
        assert len(onus) == len(facts["onus"]) and onus["lat"].isna().all()
        assert (onus["olt_id"] == facts["onus"].sort_values("onu_id")["olt_id"].to_numpy()).all()
        assert np.allclose(
            onus["distance_m"], facts["onus"].sort_values("onu_id")["distance_m"], atol=1e-6
        )
        # Telemetry: centi-dBm → dBm, São Paulo local time → UTC, both files of the glob.
        tel = facts["telemetry"]
        row = tel[tel["rx_dbm"].notna()].iloc[7]
        got = con.execute(
            "SELECT rx_dbm, online, source FROM telemetry_raw WHERE onu_id = ? AND ts = ?",
            [str(row["onu_id"]), row["ts"].to_pydatetime()],
        ).fetchall()
        assert len(got) == 1 and got[0][1:] == (bool(row["online"]), "acme_isp")
        assert got[0][0] == pytest.approx(round(row["rx_dbm"], 2), abs=1e-9)
        assert con.execute("SELECT count(*) FROM telemetry_raw").fetchone()[0] == len(tel)
        # Events: vendor names mapped, one dropped on purpose (mapped to null).
        ev = con.execute(
            "SELECT type, entity_type, severity, payload FROM events ORDER BY ts"
        ).fetchall()
        assert [e[0] for e in ev] == [
            "LOS",
            "DYING_GASP",
            "LOW_RX",
            "CUSTOMER_CALL",
            "CUSTOMER_CALL",
        ]
        assert ev[0][1:] == ("onu", "major", "{}")
        calls = [json.loads(e[3]) for e in ev if e[0] == "CUSTOMER_CALL"]
        assert {c["channel"] for c in calls} == {"telefone", "app"}
        assert (
            con.execute(
                "SELECT count(*) FROM events WHERE type = 'CUSTOMER_CALL' AND entity_type = 'customer'"
            ).fetchone()[0]
            == 2
        )
        assert set(EVENT_TYPES) >= set(con.execute("SELECT type FROM events").df()["type"])
        # Tickets: the simulator's service_orders columns plus onu_id, closure_code, notes.
        so = con.execute("SELECT * FROM service_orders ORDER BY os_id").df()
        assert tuple(so.columns) == SERVICE_ORDER_COLUMNS
        assert so["status"].tolist() == ["completed", "open", "completed"]
        assert so["outcome"].isna().all()
        assert so.loc[1, "customer_id"] == facts["customers"][1]  # from its ONU
        assert so.loc[0, "onu_id"] == facts["ids"][0]  # from its customer
        assert so.loc[0, "closed_at"] == pd.Timestamp("2026-01-05T18:00:00Z")  # 15:00 in SP
        assert so.loc[2, "closure_code"] == "SEM DEFEITO CONSTATADO"
        assert so["cost_brl"].tolist()[::2] == [150.0, 150.5]
        cpe = con.execute("SELECT * FROM cpe_state ORDER BY cpe_id").df()
        assert tuple(cpe.columns) == tuple(CPE_STATE_COLUMNS)
        assert cpe["uptime_s"].tolist() == [600, 1200] and cpe["ppp_up"].tolist() == [True, False]
    finally:
        con.close()
    manifest = json.loads((wh / "source.json").read_text())
    assert set(manifest["tables"]) == {
        "olts", "pons", "onus", "customers", "telemetry", "events", "contacts", "tickets",
        "cpe_state",
    }  # fmt: skip
    assert run_summary(wh)["faults_by_class"] == {}


def test_importing_twice_stores_once_and_a_corrected_mapping_replaces(imported, tmp_path):
    wh0, src, _ = imported
    wh = tmp_path / "W"
    shutil.copytree(wh0, wh)
    before = _tree(wh / "lake" / "raw")
    counts = run_summary(wh)["row_counts"]
    again = import_source(wh, src / "mapping.yaml")
    assert {t.status for t in again.tables.values()} == {"already present", "unchanged"}
    assert again.ingest.dates_rebuilt == 0
    assert _tree(wh / "lake" / "raw") == before
    assert run_summary(wh)["row_counts"] == counts
    # Same data, corrected mapping (LOW_RX alarms now dropped): the events file is replaced.
    fixed = tmp_path / "mapping.yaml"
    fixed.write_text(MAPPING.replace('"PORTA ABERTA": ~}', '"PORTA ABERTA": ~, LOW_RX: ~}'))
    res = import_source(wh, fixed, source_dir=src)
    assert res.tables["events"].status == "added"
    assert len(list((wh / "lake/raw/events").rglob("own-events-*.parquet"))) == 1
    con = connect(wh)
    assert con.execute("SELECT count(*) FROM events WHERE type = 'LOW_RX'").fetchone()[0] == 0
    con.close()


def test_a_simulated_run_is_refused(tiny_run, src):
    with pytest.raises(IngestError, match=r"holds a simulated run \(run.json\); --source builds"):
        import_source(tiny_run, src / "mapping.yaml")


# --- bad input: one exact message each, nothing written --------------------------------


def _edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def _bad_onus_number(src: Path) -> None:
    lines = (src / "inventario_onus.csv").read_text().splitlines()
    cells = lines[3].split(";")
    cells[-1] = "2,9km"
    lines[3] = ";".join(cells)
    (src / "inventario_onus.csv").write_text("\n".join(lines) + "\n")


BAD_INPUTS = {
    "missing column": (
        lambda s: _edit(s / "mapping.yaml", "vendor: fabricante,\n", "vendor: marca,\n"),
        IngestError,
        r"inventario_onus.csv: missing column(s) ['vendor <- marca']; the file has "
        r"['serial', 'pon', 'fabricante', 'distancia_km']",
    ),
    "bad number": (
        _bad_onus_number,
        IngestError,
        "inventario_onus.csv: row 3 (line 4): column 'distancia_km': expected a number, "
        "got '2,9km'",
    ),
    "bad timestamp": (
        lambda s: _edit(s / "ordens_servico.csv", "05/01/2026 09:30", "31/02/2026 09:30"),
        IngestError,
        "ordens_servico.csv: row 2 (line 3): column 'abertura': expected a timestamp in "
        "'%d/%m/%Y %H:%M', got '31/02/2026 09:30'",
    ),
    "unknown table key": (
        lambda s: _edit(s / "mapping.yaml", "  tickets:\n", "  ordens:\n"),
        ConfigError,
        "mapping.yaml: tables.ordens: not a table that can be imported; expected one of "
        "['olts', 'pons', 'splitters', 'onus', 'customers', 'telemetry', 'events', "
        "'contacts', 'tickets', 'cpe_state']",
    ),
    "unknown column": (
        lambda s: _edit(s / "mapping.yaml", "notes: obs_tecnico", "nota: obs_tecnico"),
        ConfigError,
        "mapping.yaml: tables.tickets.columns.nota: not a column of tickets; expected one of",
    ),
    "duplicate key": (
        lambda s: _edit(s / "ordens_servico.csv", "OS-3", "OS-1"),
        IngestError,
        "ordens_servico.csv: row 3 (line 4): column 'os': duplicate key 'OS-1' (first at "
        "{src}/ordens_servico.csv: row 1 (line 2)); ticket_id must be unique in tickets",
    ),
    "event type not mapped": (
        lambda s: _edit(s / "mapping.yaml", '"PORTA ABERTA": ~', '"PORTA FECHADA": ~'),
        IngestError,
        "alarmes.csv: row 3 (line 4): column 'alarme': expected one of ['LOS', 'DYING_GASP', "
        "'LINK_UP', 'PPPOE_DOWN', 'PPPOE_UP', 'DHCP_FAIL', 'HIGH_BER', 'LOW_RX', 'REBOOT', "
        "'BOOT', 'CUSTOMER_CALL', 'OLT_ALARM', 'ACS_SEEN', 'ACS_PPP_DOWN', 'ACS_PPP_UP'] or a "
        "value mapped to one under "
        "values.type, "
        "got 'PORTA ABERTA'",
    ),
    "ticket of nobody": (
        lambda s: (s / "ordens_servico.csv").write_text(
            re.sub(r"OS-2,,[^,]*,", "OS-2,,,", (s / "ordens_servico.csv").read_text())
        ),
        IngestError,
        "ordens_servico.csv: row 2 (line 3): column 'cliente': expected a value (or one in "
        "['cliente', 'serial_onu']), got ''",
    ),
    "blank key": (
        lambda s: _edit(s / "clientes.csv", "\nC0000003,", "\n,"),
        IngestError,
        "clientes.csv: row 3 (line 4): column 'cliente': expected a value, got ''",
    ),
    "unknown time zone": (
        lambda s: _edit(s / "mapping.yaml", "timezone: America/Sao_Paulo", "timezone: Brasilia"),
        ConfigError,
        "mapping.yaml: timezone: unknown time zone 'Brasilia'; expected an IANA name",
    ),
    "no file": (
        lambda s: (s / "alarmes.csv").unlink(),
        IngestError,
        "mapping.yaml: tables.events.file: no file matches 'alarmes.csv' in",
    ),
    "file outside the folder": (
        lambda s: _edit(s / "mapping.yaml", "file: alarmes.csv", "file: ../alarmes.csv"),
        ConfigError,
        "mapping.yaml: tables.events.file: '../alarmes.csv' must be a path inside the source "
        "folder",
    ),
    "wrong unit": (
        lambda s: _edit(s / "mapping.yaml", "{column: rx_centi_dbm, scale: 0.01}", "rx_centi_dbm"),
        IngestError,
        "telemetria_1.csv: column 'rx_centi_dbm' (mapped to rx_dbm, scale 1): 100% of values "
        "lie outside the plausible range [-50, 10]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_named_and_nothing_is_written(case, src, tmp_path):
    breaker, error, message = BAD_INPUTS[case]
    breaker(src)
    wh = tmp_path / "W"
    with pytest.raises(error) as info:
        import_source(wh, src / "mapping.yaml")
    assert message.format(src=src) in str(info.value)
    assert not wh.exists()  # parsed and validated before anything is written


def test_a_failure_after_writing_restores_the_warehouse(imported, src, tmp_path, monkeypatch):
    from guardian_lib.owndata import importer

    wh = tmp_path / "W"
    shutil.copytree(imported[0], wh)
    before = _tree(wh)
    # New inventory and new telemetry, then the SILVER rebuild fails (a full disk, …).
    _edit(src / "clientes.csv", "residential", "empresarial", count=3)
    (src / "telemetria_3.csv").write_text(
        "coleta,serial,rx_centi_dbm,estado\n06/01/2026 10:00,X1,-2000,UP\n"
    )

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(importer, "ingest_locked", broken)
    with pytest.raises(OSError, match="No space left"):
        import_source(wh, src / "mapping.yaml")
    assert _tree(wh) == before
    assert not list(wh.glob(".import-backup-*"))
    # A first import that fails leaves no folder (no half-made warehouse).
    with pytest.raises(OSError, match="No space left"):
        import_source(tmp_path / "new", src / "mapping.yaml")
    assert not (tmp_path / "new").exists()


# --- SQL sources: SQLite and a real PostgreSQL server -----------------------------------

TICKETS_SQL = """\
timezone: America/Sao_Paulo
source: erp
tables:
  tickets:
    sql: {url_env: GUARDIAN_OWN_TEST_DB_URL, query: "%s"}
    columns: {ticket_id: os, customer_id: cliente, opened_at: abertura, closed_at: fechamento,
              closure_code: codigo_baixa, notes: obs, cost_brl: custo, technician_id: tecnico}
  telemetry:
    sql: {url_env: GUARDIAN_OWN_TEST_DB_URL, query: "SELECT * FROM telemetria"}
    columns: {ts: coleta, onu_id: serial, rx_dbm: {column: rx, scale: 0.1}}
"""
QUERY = (
    "SELECT os, cliente, abertura, fechamento, codigo_baixa, obs, custo, tecnico FROM ordens "
    "ORDER BY os"
)


def _sql_rows() -> tuple[list[tuple], list[tuple]]:
    tickets = [
        ("OS-1", "C1", "2026-01-05 08:00:00", "2026-01-05 15:00:00", "TROCA DE ONU", "onu queimada", 150, 7),
        ("OS-2", "C2", "2026-01-05 09:30:00", None, None, None, None, None),
    ]  # fmt: skip
    telemetry = [("2026-01-05 10:00:00", "ONU1", -215), ("2026-01-05 10:05:00", "ONU1", -218)]
    return tickets, telemetry


def _check_sql_import(wh: Path) -> None:
    con = connect(wh)
    try:
        so = con.execute("SELECT * FROM service_orders ORDER BY os_id").df()
        assert so["os_id"].tolist() == ["OS-1", "OS-2"]
        assert so.loc[0, "opened_at"] == pd.Timestamp("2026-01-05T11:00:00Z")  # local → UTC
        assert so["status"].tolist() == ["completed", "open"]
        assert so.loc[0, "cost_brl"] == 150.0 and np.isnan(so.loc[1, "cost_brl"])
        tech = so["technician_id"]  # an integer column with a NULL: "7", not "7.0"
        assert tech.iloc[0] == "7" and pd.isna(tech.iloc[1])
        rx = con.execute("SELECT rx_dbm FROM telemetry ORDER BY ts").df()["rx_dbm"].tolist()
        assert rx == [-21.5, -21.8]
    finally:
        con.close()


@pytest.fixture
def sqlite_db(tmp_path, monkeypatch) -> Path:
    db = tmp_path / "erp.sqlite"
    tickets, telemetry = _sql_rows()
    with sqlite3.connect(db) as con:
        con.execute(
            "CREATE TABLE ordens (os TEXT, cliente TEXT, abertura TEXT, fechamento TEXT, "
            "codigo_baixa TEXT, obs TEXT, custo REAL, tecnico INTEGER)"
        )
        con.executemany("INSERT INTO ordens VALUES (?, ?, ?, ?, ?, ?, ?, ?)", tickets)
        con.execute("CREATE TABLE telemetria (coleta TEXT, serial TEXT, rx INTEGER)")
        con.executemany("INSERT INTO telemetria VALUES (?, ?, ?)", telemetry)
    monkeypatch.setenv("GUARDIAN_OWN_TEST_DB_URL", f"sqlite:///{db}")
    return db


def test_sqlite_source(sqlite_db, tmp_path):
    m = tmp_path / "mapping.yaml"
    m.write_text(TICKETS_SQL % QUERY)
    wh = tmp_path / "W"
    res = import_source(wh, m)
    assert res.tables["tickets"].rows == 2 and res.tables["telemetry"].rows == 2
    _check_sql_import(wh)
    again = import_source(wh, m)
    assert {t.status for t in again.tables.values()} == {"already present", "unchanged"}
    # A query error, and a bad value named by query, row and column.
    m.write_text(TICKETS_SQL % "SELECT * FROM nada")
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W2", m)
    assert str(info.value) == (
        f"{m}: tables.tickets.sql: query failed (OperationalError): no such table: nada"
    )
    with sqlite3.connect(sqlite_db) as con:
        con.execute("UPDATE ordens SET fechamento = 'ontem' WHERE os = 'OS-2'")
    m.write_text(TICKETS_SQL % QUERY)
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W2", m)
    assert str(info.value) == (
        f"{m}: tables.tickets.sql query: row 2: column 'fechamento': expected a timestamp "
        "in ISO 8601, such as '2026-06-05 10:00' or '2026-06-05T10:00:00-03:00' (another "
        "layout needs the column's format, e.g. '%d/%m/%Y %H:%M'), got 'ontem'"
    )
    assert not (tmp_path / "W2").exists()


def test_sql_url_comes_from_a_guardian_own_variable(tmp_path, monkeypatch):
    m = tmp_path / "mapping.yaml"
    m.write_text(TICKETS_SQL.replace("GUARDIAN_OWN_TEST_DB_URL", "HOME") % QUERY)
    with pytest.raises(ConfigError, match=r"tables.tickets.sql.url_env: String should match"):
        load_source_mapping(m)
    m.write_text(TICKETS_SQL % QUERY)
    monkeypatch.delenv("GUARDIAN_OWN_TEST_DB_URL", raising=False)
    with pytest.raises(IngestError, match=r"environment variable GUARDIAN_OWN_TEST_DB_URL is not"):
        import_source(tmp_path / "W", m)
    monkeypatch.setenv("GUARDIAN_OWN_TEST_DB_URL", "nosuchdb://u:topsecret@h/db")
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W", m)
    assert "is not a usable URL" in str(info.value) and "topsecret" not in str(info.value)


def test_postgresql_source(postgres_url, tmp_path, monkeypatch):
    import sqlalchemy

    tickets, telemetry = _sql_rows()
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as con:
        con.exec_driver_sql("DROP TABLE IF EXISTS ordens, telemetria")
        con.exec_driver_sql(
            "CREATE TABLE ordens (os TEXT PRIMARY KEY, cliente TEXT, abertura TIMESTAMP, "
            "fechamento TIMESTAMP, codigo_baixa TEXT, obs TEXT, custo NUMERIC(10, 2), tecnico INTEGER)"
        )
        con.exec_driver_sql("INSERT INTO ordens VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", tickets)
        con.exec_driver_sql("CREATE TABLE telemetria (coleta TIMESTAMP, serial TEXT, rx INTEGER)")
        con.exec_driver_sql("INSERT INTO telemetria VALUES (%s, %s, %s)", telemetry)
    engine.dispose()
    monkeypatch.setenv("GUARDIAN_OWN_TEST_DB_URL", postgres_url)
    m = tmp_path / "mapping.yaml"
    m.write_text(TICKETS_SQL % QUERY)
    wh = tmp_path / "W"
    import_source(wh, m)
    _check_sql_import(wh)
    # SQL errors are one line naming the query; the password never appears.
    m.write_text(TICKETS_SQL % "SELECT os FROM nada")
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W2", m)
    assert str(info.value) == (
        f'{m}: tables.tickets.sql: query failed (UndefinedTable): relation "nada" does not exist'
    )
    # The query runs read-only: it cannot change the operator's database.
    m.write_text(TICKETS_SQL % "DELETE FROM ordens RETURNING os")
    with pytest.raises(
        IngestError, match=r"query failed \(ReadOnlySqlTransaction\): cannot execute"
    ):
        import_source(tmp_path / "W2", m)
    password = re.search(r"://[^:]+:([^@]+)@", postgres_url).group(1)
    monkeypatch.setenv(
        "GUARDIAN_OWN_TEST_DB_URL", postgres_url.replace(password, "wrong-" + password)
    )
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W2", m)
    assert "password authentication failed" in str(info.value)
    assert password not in str(info.value)
    assert not (tmp_path / "W2").exists()


# --- downstream: features, report, dashboard, evaluate on own data only -----------------


def _only(src: Path, tables: tuple[str, ...]) -> None:
    """Keep only ``tables`` in the export's mapping."""
    blocks = re.split(r"(?m)^(?=  \w+:)", MAPPING.split("tables:\n", 1)[1])
    keep = [b for b in blocks if b.strip() and b.split(":", 1)[0].strip() in tables]
    (src / "mapping.yaml").write_text(
        MAPPING.split("tables:\n", 1)[0] + "tables:\n" + "".join(keep)
    )


def _report_text(wh: Path, out: Path) -> str:
    from guardian_lib.dashboards._compress import expand_scripts
    from guardian_lib.dashboards.report import write_report

    write_report(wh, out)
    return expand_scripts(out.read_text())


def test_features_report_and_dashboard_run_on_onus_and_telemetry_alone(src, tmp_path):
    from guardian_lib.dashboards._data import load_run_data
    from guardian_lib.dashboards.screens import build_layout
    from guardian_lib.errors import WarehouseError
    from guardian_lib.features import materialize_features
    from guardian_lib.models.training import load_truth

    _only(src, ("onus", "telemetry"))
    wh = tmp_path / "W"
    import_source(wh, src / "mapping.yaml")
    con = connect(wh)
    assert {"events", "customers", "service_orders", "olts"}.isdisjoint(
        {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    )
    con.close()
    res = materialize_features(wh)
    assert res["rows"] > 0
    feats = pd.read_parquet(next((wh / "lake/gold/features").rglob("data.parquet")))
    assert feats["onu_id"].nunique() == 64 and feats["rx_mean_1h"].notna().any()
    assert (feats["calls_24h"] == 0).all()  # no contacts imported: no calls, not an error
    data = load_run_data(wh)
    assert data.notes == [
        "note_no_pons", "note_no_olts", "note_no_customers", "note_no_coordinates",
        "note_no_events", "note_no_service_orders",
    ]  # fmt: skip
    build_layout(data, "pt-BR", live=True)  # every screen of the live dashboard
    page = _report_text(wh, tmp_path / "report.html")
    for note in ("no coordinates: map hidden", "no customer table: one customer per ONU",
                 "no PON table", "no events (alarms, calls)"):  # fmt: skip
        assert note in page
    with pytest.raises(WarehouseError, match="no faults_truth table: training and evaluation"):
        load_truth(wh)


def test_report_of_a_full_import_says_only_what_is_missing(imported, tmp_path):
    page = _report_text(imported[0], tmp_path / "report.html")
    assert "no coordinates: map hidden" in page
    assert "no customer table" not in page and "no events" not in page


def test_guardian_ingest_source_command(src, tmp_path):
    # In-process: the command is tested here; tests/test_cli.py runs the console script.
    from cli_runner import run_guardian

    wh = tmp_path / "W"
    _only(src, ("onus", "customers", "tickets"))
    ok = run_guardian("ingest", "--run", str(wh), "--source", str(src), check=False)
    assert ok.returncode == 0, ok.stderr
    assert "added tickets: 3 rows → ops/service_orders.parquet" in ok.stderr
    _edit(src / "ordens_servico.csv", "OS-3", "OS-1")
    bad = run_guardian("ingest", "--run", str(wh), "--source", str(src), check=False)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "duplicate key 'OS-1'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_decimal_comma(src, tmp_path):
    _only(src, ("onus",))
    _edit(src / "mapping.yaml", 'csv_delimiter: ";"', 'csv_delimiter: ";"\n    decimal: ","')
    onus = pd.read_csv(src / "inventario_onus.csv", sep=";")
    onus["distancia_km"] = ["1.234,5", "2,9"] + ["0,5"] * (len(onus) - 2)
    onus.to_csv(src / "inventario_onus.csv", sep=";", index=False)
    wh = tmp_path / "W"
    import_source(wh, src / "mapping.yaml")
    got = pd.read_parquet(wh / "inventory" / "onus.parquet")["distance_m"].tolist()
    assert got[:3] == [1_234_500.0, 2_900.0, 500.0]


def test_a_file_saved_by_excel_on_windows_reads_with_its_encoding(src, tmp_path):
    """Brazilian ERP and Excel exports are often cp1252: refused with a hint in UTF-8,
    read with ``csv_encoding: cp1252`` (accents intact); an unknown codec is a config
    error naming the field."""
    _only(src, ("onus", "customers", "tickets"))
    tickets = pd.read_csv(src / "ordens_servico.csv", dtype=str, keep_default_na=False)
    tickets.loc[0, "obs_tecnico"] = "conexão rompida; ONU trocada às 10h"
    tickets.to_csv(src / "ordens_servico.csv", index=False, encoding="cp1252")
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W1", src / "mapping.yaml")
    assert str(info.value) == (
        f"{src}/ordens_servico.csv: cannot read file as utf-8: it holds byte 0xe3, which is "
        "not valid utf-8 (set csv_encoding, e.g. cp1252 for a file saved by Excel on Windows)"
    )
    assert not (tmp_path / "W1").exists()
    _edit(
        src / "mapping.yaml",
        "file: ordens_servico.csv",
        "file: ordens_servico.csv\n    csv_encoding: cp1252",
    )
    import_source(tmp_path / "W2", src / "mapping.yaml")
    orders = pd.read_parquet(tmp_path / "W2" / "ops" / "service_orders.parquet")
    assert "conexão rompida; ONU trocada às 10h" in orders["notes"].tolist()
    _edit(src / "mapping.yaml", "csv_encoding: cp1252", "csv_encoding: cp9999")
    with pytest.raises(
        ConfigError, match=r"tables\.tickets\.csv_encoding.*unknown text encoding 'cp9999'"
    ):
        load_source_mapping(src / "mapping.yaml")


def test_an_excel_workbook_imports_as_its_csv_with_typed_cells(src, tmp_path):
    """An ERP's .xlsx export: date cells are times (the format is for text cells), number
    cells are numbers (the decimal comma is for text cells), an id typed as a number keeps
    its digits; the sheet is chosen by name and bad cells are named by sheet row."""
    import datetime as dt

    _only(src, ("onus", "customers", "tickets"))
    wh_csv = tmp_path / "CSV"
    import_source(wh_csv, src / "mapping.yaml")
    expected = pd.read_parquet(wh_csv / "ops" / "service_orders.parquet")
    sheet = pd.read_csv(src / "ordens_servico.csv", dtype=str, keep_default_na=False)
    sheet = sheet.astype(object)
    # Excel keeps a typed date and a typed number where the user typed them.
    sheet.loc[0, "abertura"] = dt.datetime(2026, 1, 5, 8, 0)
    sheet.loc[2, "custo"] = 150.5
    with pd.ExcelWriter(src / "ordens.xlsx", engine="openpyxl") as book:
        pd.DataFrame({"a": [1]}).to_excel(book, sheet_name="Resumo", index=False)
        sheet.to_excel(book, sheet_name="OS", index=False)
    _edit(src / "mapping.yaml", "file: ordens_servico.csv", "file: ordens.xlsx\n    sheet: OS")
    _edit(src / "mapping.yaml", "cost_brl: custo", 'cost_brl: custo\n    decimal: ","')
    import_source(tmp_path / "XLSX", src / "mapping.yaml")
    got = pd.read_parquet(tmp_path / "XLSX" / "ops" / "service_orders.parquet")
    cols = ["os_id", "opened_at", "closed_at", "cost_brl", "notes", "customer_id", "onu_id"]
    pd.testing.assert_frame_equal(got[cols], expected[cols])

    _edit(src / "mapping.yaml", "sheet: OS", "sheet: Plan1")
    with pytest.raises(
        IngestError, match=r"ordens\.xlsx: no sheet 'Plan1'; the workbook has \['Resumo', 'OS'\]"
    ):
        import_source(tmp_path / "W3", src / "mapping.yaml")
    _edit(src / "mapping.yaml", "sheet: Plan1", "sheet: 1")
    sheet.loc[1, "custo"] = "cento e vinte"
    with pd.ExcelWriter(src / "ordens.xlsx", engine="openpyxl") as book:
        pd.DataFrame({"a": [1]}).to_excel(book, sheet_name="Resumo", index=False)
        sheet.to_excel(book, sheet_name="OS", index=False)
    with pytest.raises(IngestError) as info:
        import_source(tmp_path / "W4", src / "mapping.yaml")
    assert str(info.value) == (
        f"{src}/ordens.xlsx (sheet 1): row 2 (sheet row 3): column 'custo': expected a "
        "number, got 'cento e vinte'"
    )


def test_a_file_that_is_no_workbook_or_hides_an_entity_bomb_is_refused(tmp_path):
    """Renamed, damaged or hostile .xlsx files get one named error, never a traceback;
    the workbook's XML goes through defusedxml (its entity declarations are refused:
    EntitiesForbidden, not a billion laughs)."""
    import zipfile

    from guardian_lib.user_files import read_user_file

    good = tmp_path / "good.xlsx"
    pd.DataFrame({"a": ["x"]}).to_excel(good, sheet_name="S", index=False)
    bomb = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(good) as src_zip, zipfile.ZipFile(bomb, "w") as out:
        for item in src_zip.infolist():
            data = src_zip.read(item)
            if item.filename == "xl/worksheets/sheet1.xml":
                entities = "".join(
                    f'<!ENTITY e{i} "{f"&e{i - 1};" * 10 if i else "lol"}">' for i in range(9)
                )
                data = data.replace(
                    b"<worksheet", f"<!DOCTYPE w [{entities}]><worksheet".encode(), 1
                )
            out.writestr(item, data)
    renamed = tmp_path / "renamed.xlsx"
    renamed.write_text("os;abertura\nOS-1;05/06/2026\n")
    no_book = tmp_path / "nobook.xlsx"
    with zipfile.ZipFile(no_book, "w") as z:
        z.writestr("hello.txt", "x")
    for path in (bomb, renamed, no_book):
        with pytest.raises(IngestError, match=rf"{path.name}: not a readable Excel workbook"):
            read_user_file(path)
    assert read_user_file(good, sheet="S")["a"].tolist() == ["x"]


def test_a_workbook_that_inflates_beyond_the_limit_is_refused_before_parsing(tmp_path, monkeypatch):
    """An .xlsx is a zip: its uncompressed size is checked before openpyxl reads it (a few
    MB can inflate to many GB). The limit is lowered here to keep the test small."""
    from guardian_lib import user_files

    book = tmp_path / "big.xlsx"
    pd.DataFrame({"a": ["x" * 200] * 500}).to_excel(book, index=False)  # ~100 KB inflated
    assert user_files.read_user_file(book)["a"].size == 500
    monkeypatch.setattr(user_files, "MAX_XLSX_UNCOMPRESSED_BYTES", 50_000)
    with pytest.raises(
        IngestError,
        match=r"big\.xlsx: the workbook holds [0-9,]+ bytes uncompressed, above the importer's limit of 50,000; export",
    ):
        user_files.read_user_file(book)
