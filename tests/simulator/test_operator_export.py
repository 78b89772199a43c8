"""``guardian simulate --export operator DIR``: a run as an operator's exports (issue 16, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from cli_runner import run_guardian

from guardian_lib.label_map import classify_tickets, load_label_map
from simulator.operator_export import ExportNoise, export_operator
from simulator.operator_vocab import TS_FORMAT, TZ


@pytest.fixture(scope="module")
def run(operator_export) -> Path:
    return operator_export[0]


@pytest.fixture(scope="module")
def export(operator_export) -> Path:
    return operator_export[1]


def _utc(values: pd.Series) -> pd.Series:
    t = pd.to_datetime(values, format=TS_FORMAT, errors="coerce")
    return t.dt.tz_localize(TZ).dt.tz_convert("UTC")


def test_export_has_the_operators_tables_and_no_ground_truth(export):
    names = sorted(p.name for p in export.iterdir())
    for f in ("inventario_olts.csv", "inventario_pons.csv", "inventario_caixas.csv",
              "inventario_onus.csv", "clientes.csv", "alarmes.csv", "atendimentos.csv",
              "ordens_servico.csv", "mapping.yaml", "labels.yaml", "export.json"):  # fmt: skip
        assert f in names, f
    assert any(n.startswith("telemetria_") for n in names)
    assert not any(n.endswith(".parquet") for n in names)
    for p in export.glob("*.csv"):
        header = p.read_text().splitlines()[0].lower()
        for word in ("truth", "cause_class", "fault", "outcome", "fixed_by", "kind"):
            assert word not in header, (p.name, word)
    alarms = pd.read_csv(export / "alarmes.csv")
    assert "CUSTOMER_CALL" not in set(alarms["alarme"]) and "LOS" not in set(alarms["alarme"])
    assert "PERDA DE SINAL (LOS)" in set(alarms["alarme"])


def test_telemetry_is_in_the_vendors_units_and_local_time(run, export):
    raw = pq.read_table(run / "lake" / "raw" / "telemetry").to_pandas()
    raw["onu_id"] = raw["onu_id"].astype(str)
    day = sorted(export.glob("telemetria_*.csv"))[0]
    assert day.read_text().splitlines()[0].startswith('"coleta";"serial";"rx_centi_dbm"')
    tel = pd.read_csv(day, sep=";").head(500)
    ts = _utc(tel["coleta"])
    merged = tel.assign(ts=ts).merge(
        raw.assign(ts=raw["ts"].dt.floor("s")), left_on=["ts", "serial"], right_on=["ts", "onu_id"]
    )
    assert len(merged) >= 450  # duplicates aside, every row is found at ts − 3 h local
    ok = merged["rx_dbm"].notna()
    np.testing.assert_allclose(
        merged.loc[ok, "rx_centi_dbm"] / 100, merged.loc[ok, "rx_dbm"], atol=0.006
    )
    np.testing.assert_allclose(merged["latencia_s"] * 1000, merged["latency_ms"], atol=0.06)
    assert set(merged["status"]) <= {"ONLINE", "OFFLINE"}
    assert (merged["status"].eq("ONLINE") == merged["online"]).all()
    # Local time is UTC−3 (no daylight saving time in São Paulo since 2019).
    first = pd.to_datetime(tel["coleta"].iloc[0], format=TS_FORMAT)
    assert (ts.iloc[0].tz_localize(None) - first) == pd.Timedelta(hours=3)


def _agreement(run: Path, export: Path) -> tuple[float, int, pd.DataFrame]:
    """Share of customer tickets the label map reads as what the technician found."""
    t = pd.read_csv(export / "ordens_servico.csv", dtype=str, keep_default_na=False)
    tickets = pd.DataFrame({
        "os_id": t["os"], "onu_id": t["serial_onu"].replace("", None),
        "closed_at": _utc(t["fechamento"]), "closure_code": t["codigo_baixa"].replace("", None),
        "notes": t["obs_tecnico"].replace("", None), "situacao": t["situacao"],
    })  # fmt: skip
    c = classify_tickets(tickets, load_label_map(export / "labels.yaml"))
    orders = pd.read_parquet(run / "ops" / "service_orders.parquet").set_index("os_id")
    classes = pd.read_parquet(run / "ops" / "faults_truth.parquet")["cause_class"].unique()
    expected = {"fixed_" + k.lower(): k for k in classes} | {
        "no_fault_found": "NO_FAULT", "customer_absent": "CUSTOMER_PREMISES",
    }  # fmt: skip
    done = c[c["os_id"].isin(orders.index) & (c["situacao"] == "CONCLUIDA")]
    want = orders.loc[done["os_id"], "outcome"].map(expected).to_numpy()
    return float(np.mean(done["label"].to_numpy() == want)), len(done), c


def test_tickets_carry_portuguese_codes_that_the_label_map_reads(run, export):
    t = pd.read_csv(export / "ordens_servico.csv", dtype=str, keep_default_na=False)
    orders = pd.read_parquet(run / "ops" / "service_orders.parquet")
    assert (t["origem"] != "NOC").sum() == len(orders)
    assert (t["origem"] == "NOC").sum() > 0
    agree, n, c = _agreement(run, export)
    assert n >= 20
    assert agree >= 0.8  # the technicians' records mostly say what they found
    closed = c[c["closed_at"].notna()]
    assert (closed["status"] == "ignored").sum() == (t["situacao"] == "CANCELADA").sum()
    noc = closed[closed["os_id"].str.startswith("INC")]
    assert noc["label"].isin(["MASSIVE_OUTAGE", "EXTERNAL_NETWORK"]).mean() > 0.7


def test_noisier_records_are_reported_not_guessed(run, tmp_path):
    sloppy = ExportNoise(code_missing=0.3, code_wrong=0.4, notes_missing=0.5)

    out = tmp_path / "sloppy"
    export_operator(run, out, noise=sloppy)
    agree, n, c = _agreement(run, out)
    assert agree < 0.8
    status = c["status"].value_counts()
    assert status.get("unlabelled", 0) > 0 and status.get("contradictory", 0) > 0
    t = pd.read_csv(out / "ordens_servico.csv", dtype=str, keep_default_na=False)
    assert (t.loc[t["situacao"] == "CONCLUIDA", "codigo_baixa"] == "").mean() > 0.15


def test_export_is_deterministic_with_the_seed_and_refuses_foreign_folders(run, export, tmp_path):
    again = tmp_path / "again"
    export_operator(run, again)
    for name in ("ordens_servico.csv", "atendimentos.csv", "mapping.yaml"):
        assert (again / name).read_bytes() == (export / name).read_bytes(), name
    other = tmp_path / "other"
    export_operator(run, other, seed=99)
    assert (other / "ordens_servico.csv").read_bytes() != (
        export / "ordens_servico.csv"
    ).read_bytes()
    assert json.loads((other / "export.json").read_text())["seed"] == 99
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not an operator export"):
        export_operator(run, foreign, overwrite=True)
    assert (foreign / "notes.txt").read_text() == "keep me"
    with pytest.raises(FileExistsError, match="exists"):
        export_operator(run, again)


def test_an_export_without_telemetry_has_the_same_other_files(run, export, tmp_path):
    lean = tmp_path / "lean"
    rows = export_operator(run, lean, telemetry=False)
    assert "telemetry" not in rows and not list(lean.glob("telemetria_*"))
    assert list(export.glob("telemetria_*"))
    for f in sorted(export.iterdir()):
        if f.name.startswith("telemetria_") or f.name in ("mapping.yaml", "export.json"):
            continue
        assert (lean / f.name).read_bytes() == f.read_bytes(), f.name
    full = yaml.safe_load((export / "mapping.yaml").read_text())
    del full["tables"]["telemetry"]
    assert yaml.safe_load((lean / "mapping.yaml").read_text()) == full


def test_mapping_follows_the_contract(export):
    m = yaml.safe_load((export / "mapping.yaml").read_text())
    assert m["timezone"] == "America/Sao_Paulo"
    assert set(m["tables"]) == {"olts", "pons", "splitters", "onus", "customers", "telemetry",
                                "events", "contacts", "tickets"}  # fmt: skip
    tel = m["tables"]["telemetry"]
    assert tel["csv_delimiter"] == ";" and tel["columns"]["rx_dbm"]["scale"] == 0.01
    for table in m["tables"].values():
        for f in export.glob(table["file"]):
            header = pd.read_csv(f, sep=table.get("csv_delimiter", ","), nrows=0).columns
            for spec in table["columns"].values():
                col = spec if isinstance(spec, str) else spec["column"]
                assert col in header, (f.name, col)
    assert m["tables"]["events"]["values"]["type"]["PERDA DE SINAL (LOS)"] == "LOS"


def test_cli_writes_run_and_export_and_refuses_an_unknown_kind(tmp_path):
    # In-process: the command is tested here; tests/test_cli.py runs the console script.
    res = run_guardian("simulate", "--scenario", "tiny", "--days", "0.25", "--out",
                       str(tmp_path / "r"), "--export", "operator", str(tmp_path / "x"),
                       check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "r" / "ops" / "faults_truth.parquet").exists()
    assert (tmp_path / "x" / "labels.yaml").exists()
    assert not list((tmp_path / "x").glob("*truth*"))
    bad = run_guardian("simulate", "--scenario", "tiny", "--out", str(tmp_path / "r2"),
                       "--export", "warehouse", str(tmp_path / "y"), check=False)  # fmt: skip
    assert bad.returncode == 2 and "expected one of operator" in bad.stderr
    assert not (tmp_path / "r2").exists()
