"""Benchmark: own-data import rows/s from CSV, Parquet and PostgreSQL (not part of the tests).

One synthetic operator export — ``--onus`` ONUs polled every 5 min for ``--hours``
hours: telemetry in an operator's units and names (``coleta`` in local time, a
``%d/%m/%Y %H:%M`` text in the CSV, centi-dBm integers), plus one ticket per ONU — is
written as CSV files, as Parquet files and as PostgreSQL tables (a throw-away server
started as the tests start it, on 127.0.0.1). Each source is imported with
``guardian_lib.owndata.import_source`` into a fresh warehouse; printed per source:

* ``parse_rows_per_s``: rows read, parsed, converted and validated (nothing written);
* ``import_rows_per_s``: the whole import (parse, RAW/ops files, SILVER rebuild,
  warehouse tables), i.e. what ``guardian ingest --source`` takes.

Usage::

    .venv/bin/python benchmarks/bench_ingest_sources.py [--onus 2000] [--hours 24] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
ZONE = "America/Sao_Paulo"

MAPPING = """\
timezone: America/Sao_Paulo
source: bench
tables:
  onus: {SRC_ONUS, columns: {onu_id: serial, pon_id: pon}}
  telemetry:
    SRC_TEL
    columns:
      ts: {column: coleta, TS_FORMAT}
      onu_id: serial
      rx_dbm: {column: rx_centi_dbm, scale: 0.01}
      olt_rx_dbm: {column: olt_rx_centi_dbm, scale: 0.01}
      online: {column: estado, true_values: [UP]}
  tickets:
    SRC_TICKETS
    columns: {ticket_id: os, onu_id: serial_onu, opened_at: abertura, closed_at: fechamento,
              closure_code: codigo_baixa}
"""


def make_frames(n_onus: int, hours: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """The export as frames: ONUs, telemetry (one row per ONU and 5 min), tickets."""
    rng = np.random.default_rng(seed)
    serial = np.array([f"ZTEG{i:08X}" for i in range(n_onus)])
    onus = pd.DataFrame({"serial": serial, "pon": [f"OLT-1/1/{i // 64}" for i in range(n_onus)]})
    ticks = pd.date_range("2026-01-05", periods=hours * 12, freq="5min")  # local, naive
    n = len(ticks) * n_onus
    tel = pd.DataFrame(
        {
            "coleta": np.repeat(ticks.to_numpy(), n_onus),
            "serial": np.tile(serial, len(ticks)),
            "rx_centi_dbm": rng.normal(-2100, 150, n).round().astype(np.int64),
            "olt_rx_centi_dbm": rng.normal(-2400, 150, n).round().astype(np.int64),
            "estado": np.where(rng.random(n) < 0.99, "UP", "DOWN"),
        }
    )
    opened = pd.Timestamp("2026-01-05 08:00") + pd.to_timedelta(
        rng.integers(0, hours * 60, n_onus), "min"
    )
    tickets = pd.DataFrame(
        {
            "os": [f"OS-{i}" for i in range(n_onus)],
            "serial_onu": serial,
            "abertura": opened,
            "fechamento": opened + pd.Timedelta(hours=4),
            "codigo_baixa": rng.choice(["TROCA DE ONU", "SEM DEFEITO CONSTATADO"], n_onus),
        }
    )
    return {"onus": onus, "telemetry": tel, "tickets": tickets}


def write_files(frames: dict[str, pd.DataFrame], out: Path, kind: str) -> Path:
    """CSV (timestamps as Brazilian text) or Parquet files, and the mapping."""
    out.mkdir(parents=True)
    fmt = ""
    for name, df in frames.items():
        if kind == "csv":
            df = df.copy()
            for col in df.columns:
                if pd.api.types.is_datetime64_any_dtype(df[col]):
                    df[col] = df[col].dt.strftime("%d/%m/%Y %H:%M")
            df.to_csv(out / f"{name}.csv", index=False)
            fmt = 'format: "%d/%m/%Y %H:%M"'
        else:
            df.to_parquet(out / f"{name}.parquet", index=False)
    text = MAPPING.replace("{SRC_ONUS", "{file: onus." + kind)
    text = text.replace("SRC_TEL", f"file: telemetry.{kind}").replace(
        "SRC_TICKETS", f"file: tickets.{kind}"
    )
    text = text.replace(", TS_FORMAT}", (", " + fmt + "}") if fmt else "}")
    (out / "mapping.yaml").write_text(text)
    return out / "mapping.yaml"


def write_postgres(frames: dict[str, pd.DataFrame], url: str, out: Path) -> Path:
    """The export as PostgreSQL tables (COPY), and a mapping with SQL sources."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    types = {"int64": "BIGINT", "datetime64[ns]": "TIMESTAMP", "datetime64[us]": "TIMESTAMP"}
    with psycopg.connect(plain) as con, con.cursor() as cur:
        for name, df in frames.items():
            cols = ", ".join(f"{c} {types.get(str(df[c].dtype), 'TEXT')}" for c in df.columns)
            cur.execute(f"DROP TABLE IF EXISTS {name}")
            cur.execute(f"CREATE TABLE {name} ({cols})")
            with cur.copy(f"COPY {name} FROM STDIN") as copy:
                for row in df.itertuples(index=False):
                    copy.write_row(row)
        cur.execute("ANALYZE")
    out.mkdir(parents=True)
    text = MAPPING
    for key, table in (("{SRC_ONUS", "onus"), ("SRC_TEL", "telemetry"), ("SRC_TICKETS", "tickets")):
        sql = f"sql: {{url_env: GUARDIAN_OWN_BENCH_URL, query: 'SELECT * FROM {table}'}}"
        text = text.replace(key, "{" + sql if key.startswith("{") else sql)
    text = text.replace(", TS_FORMAT}", "}")
    (out / "mapping.yaml").write_text(text)
    return out / "mapping.yaml"


def time_source(mapping: Path, tmp: Path, repeat: int, rows: int) -> dict:
    """Best of ``repeat`` parse-only and whole-import times for one source."""
    from guardian_lib.owndata import importer, load_source_mapping
    from guardian_lib.owndata.tables import TABLES

    parse, full = [], []
    for k in range(repeat):
        m = load_source_mapping(mapping)
        t0 = time.perf_counter()
        inventory: dict = {}
        for name in TABLES:
            if name in m.tables:
                importer._prepare(name, m, m.tables[name], mapping.parent, str(mapping), inventory)
        parse.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        importer.import_source(tmp / f"W{k}", mapping)
        full.append(time.perf_counter() - t0)
    return {
        "rows": rows,
        "parse_s": round(min(parse), 3),
        "import_s": round(min(full), 3),
        "parse_rows_per_s": round(rows / min(parse)),
        "import_rows_per_s": round(rows / min(full)),
    }


def main() -> None:
    import os

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--onus", type=int, default=2000)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    frames = make_frames(args.onus, args.hours)
    rows = sum(len(df) for df in frames.values())
    results = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for kind in ("csv", "parquet"):
            mapping = write_files(frames, tmp / kind, kind)
            results[kind] = time_source(mapping, tmp / f"wh-{kind}", args.repeat, rows)
            print(kind, json.dumps(results[kind]), flush=True)
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import postgres_server  # the server the tests start

        with postgres_server() as url:
            mapping = write_postgres(frames, url, tmp / "postgresql")
            os.environ["GUARDIAN_OWN_BENCH_URL"] = url
            results["postgresql"] = time_source(mapping, tmp / "wh-pg", args.repeat, rows)
            print("postgresql", json.dumps(results["postgresql"]), flush=True)
    print(json.dumps({"onus": args.onus, "hours": args.hours, "rows": rows, **results}, indent=2))


if __name__ == "__main__":
    main()
