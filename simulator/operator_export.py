"""A simulated run written as an operator would have it (``guardian simulate --export operator``).

An ISP's systems do not speak the warehouse's schema: the inventory has Portuguese column
names, the management system exports telemetry in its own units (centi-dBm, seconds) and
local time with ``;`` as delimiter, alarms carry vendor names, the call centre keeps
contacts and the field service keeps service orders whose closure codes and notes are
typed by technicians — some missing, some wrong, abbreviated. This module writes such an
export from a simulated run, plus the ``mapping.yaml`` that imports it and the
``labels.yaml`` that turns its tickets into labels. No ground truth is written: the
tickets' codes are *derived* from it (what the technician found) with noise, the way an
operator's history is an imperfect record of what happened.

Files (all CSV, UTF-8)::

    inventario_olts.csv  inventario_pons.csv  inventario_caixas.csv  inventario_onus.csv
    clientes.csv         telemetria_YYYY-MM-DD.csv (';', local time, centi-dBm, seconds)
    alarmes.csv          atendimentos.csv     ordens_servico.csv
    mapping.yaml         labels.yaml          export.json (row counts, seed)

``ordens_servico.csv`` holds the customers' service orders and the NOC's incident tickets
for massive outages (``origem = NOC``, one per affected PON, naming one ONU of the PON);
the NOC misses some outages.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from guardian_lib.layout import RunLayout
from simulator.faults import FAULT_KINDS
from simulator.operator_vocab import (
    ALARM_NAMES,
    CANCEL_CODES,
    CHANNELS,
    CLOSED_AS,
    CLOSURE_CODES,
    ENTITY_NAMES,
    LABEL_MAP_YAML,
    NOTES,
    REASON_NAMES,
    SEVERITY_NAMES,
    TS_FORMAT,
    TZ,
)

__all__ = ["EXPORT_KINDS", "ExportNoise", "export_operator", "operator_mapping", "check_export_dir"]

#: What ``guardian simulate --export KIND DIR`` can write.
EXPORT_KINDS = ("operator",)
_MASSIVE = ("MASSIVE_OUTAGE", "EXTERNAL_NETWORK")


@dataclass(frozen=True)
class ExportNoise:
    """How imperfect the operator's records are (shares of tickets). [-]

    Attributes
    ----------
    code_missing : float
        Closed tickets without a closure code.
    code_wrong : float
        Closed tickets whose code names something the technician did not find.
    notes_missing : float
        Tickets without notes.
    noc_misses : float
        Massive outages the NOC never opened an incident for.
    onu_missing : float
        Customer tickets without the ONU's serial (only the customer code).
    """

    code_missing: float = 0.08
    code_wrong: float = 0.05
    notes_missing: float = 0.3
    noc_misses: float = 0.15
    onu_missing: float = 0.1


def check_export_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an existing ``out_dir`` unless ``overwrite`` and it is an export (``export.json``).

    Raises
    ------
    FileExistsError
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists: choose another export folder or pass --overwrite")
    if out_dir.exists() and not (out_dir / "export.json").is_file():
        raise FileExistsError(
            f"{out_dir} exists and is not an operator export (no export.json): refusing to "
            "overwrite it"
        )


def _local(ts: pd.Series) -> pd.Series:
    """UTC timestamps as the operator's systems print them (local time); '' when missing."""
    t = pd.to_datetime(ts, utc=True)
    return t.dt.tz_convert(TZ).dt.strftime(TS_FORMAT).fillna("")


def _write_csv(frame: pd.DataFrame, path: Path, sep: str = ",") -> int:
    frame.to_csv(path, index=False, sep=sep)
    return len(frame)


def _inventory(run: Path, out: Path) -> dict[str, int]:
    inv = run / "inventory"
    olts = pd.read_parquet(inv / "olts.parquet")
    pons = pd.read_parquet(inv / "pons.parquet")
    spl = pd.read_parquet(inv / "splitters.parquet")
    onus = pd.read_parquet(inv / "onus.parquet")
    cust = pd.read_parquet(inv / "customers.parquet")
    rows = {}
    rows["olts"] = _write_csv(
        olts.rename(columns={"olt_id": "id_olt", "vendor": "fabricante", "model": "modelo",
                             "region": "regional", "city": "cidade", "pop_id": "pop",
                             "lat": "latitude", "lon": "longitude", "mgmt_address": "ip_gerencia"}),
        out / "inventario_olts.csv",
    )  # fmt: skip
    rows["pons"] = _write_csv(
        pons[["pon_id", "olt_id", "slot", "port", "if_index", "technology"]].rename(
            columns={"pon_id": "id_pon", "olt_id": "id_olt", "port": "porta",
                     "technology": "tecnologia"}),
        out / "inventario_pons.csv",
    )  # fmt: skip
    rows["splitters"] = _write_csv(
        spl.rename(columns={"splitter_id": "id_caixa", "pon_id": "id_pon", "parent_id": "caixa_pai",
                            "level": "nivel", "ratio": "razao", "lat": "latitude",
                            "lon": "longitude"}),
        out / "inventario_caixas.csv",
    )  # fmt: skip
    rows["onus"] = _write_csv(
        onus.drop(columns=["onu_id"]).rename(
            columns={"pon_id": "id_pon", "olt_id": "id_olt", "splitter_id": "id_caixa",
                     "onu_index": "indice", "vendor": "fabricante", "model": "modelo",
                     "distance_m": "distancia_m", "lat": "latitude", "lon": "longitude"}),
        out / "inventario_onus.csv",
    )  # fmt: skip
    c = pd.DataFrame(
        {
            "codigo_cliente": cust["customer_id"], "serial_onu": cust["onu_id"],
            "id_cpe": cust["cpe_id"], "firmware_cpe": cust["firmware"], "plano": cust["plan"],
            "segmento": cust["segment"], "sla": cust["sla_tier"], "regional": cust["region"],
            "cidade": cust["city"], "latitude": cust["lat"], "longitude": cust["lon"],
            "data_ativacao": pd.to_datetime(cust["created_at"], utc=True).dt.strftime("%Y-%m-%d"),
        }
    )  # fmt: skip
    rows["customers"] = _write_csv(c, out / "clientes.csv")
    return rows


def _centi(col: pa.ChunkedArray) -> pa.Array:
    """dBm → centi-dBm integers, missing (null or NaN) as null."""
    x = col.to_numpy(zero_copy_only=False).astype(float)
    ok = np.isfinite(x)
    return pa.array(np.round(np.where(ok, x, 0.0) * 100).astype(np.int64), mask=~ok)


def _telemetry(run: Path, out: Path) -> int:
    rows = 0
    for day_dir in sorted(RunLayout(run).raw("telemetry").glob("date=*")):
        table = pq.read_table(day_dir)
        ts = table["ts"].cast(pa.timestamp("s", tz="UTC"), safe=False)
        ts = ts.cast(pa.timestamp("s", tz=TZ))
        latency = table["latency_ms"].to_numpy(zero_copy_only=False).astype(float)
        out_t = pa.table(
            {
                "coleta": pc.strftime(ts, format=TS_FORMAT),
                "serial": table["onu_id"].cast(pa.string()),
                "rx_centi_dbm": _centi(table["rx_dbm"]),
                "tx_centi_dbm": _centi(table["tx_dbm"]),
                "olt_rx_centi_dbm": _centi(table["olt_rx_dbm"]),
                "snr_db": table["snr_db"],
                "ber": table["ber"],
                "crc_erros": table["crc_errors"],
                # The management system reports round-trip time in seconds.
                "latencia_s": pa.array(np.round(latency / 1000.0, 4), mask=~np.isfinite(latency)),
                "perda_pct": table["loss_pct"],
                "status": pc.if_else(table["online"], "ONLINE", "OFFLINE"),
                "uptime_s": table["uptime_s"],
            }
        )
        day = day_dir.name.split("=", 1)[1]
        pacsv.write_csv(out_t, out / f"telemetria_{day}.csv", pacsv.WriteOptions(delimiter=";"))
        rows += out_t.num_rows
    return rows


def _raw_events(run: Path) -> pd.DataFrame:
    files = sorted(RunLayout(run).raw("events").glob("date=*/*.parquet"))
    if not files:
        return pd.DataFrame(columns=["ts", "entity_id", "entity_type", "type", "severity",
                                     "payload"])  # fmt: skip
    ev = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return ev.sort_values(["ts", "entity_id", "type"], kind="stable").reset_index(drop=True)


def _events_and_contacts(ev: pd.DataFrame, out: Path, rng: np.random.Generator) -> dict[str, int]:
    alarms = ev[ev["type"] != "CUSTOMER_CALL"]
    a = pd.DataFrame(
        {
            "data_hora": _local(alarms["ts"]),
            "equipamento": alarms["entity_id"],
            "tipo_equipamento": alarms["entity_type"].map(ENTITY_NAMES).fillna("OUTRO"),
            "alarme": alarms["type"].map(ALARM_NAMES),
            "severidade": alarms["severity"].map(SEVERITY_NAMES).fillna("INFORMATIVO"),
            "detalhes": alarms["payload"],
        }
    )
    calls = ev[ev["type"] == "CUSTOMER_CALL"].reset_index(drop=True)
    reasons = [json.loads(p or "{}").get("reason", "other") for p in calls["payload"]]
    channels = list(CHANNELS)
    c = pd.DataFrame(
        {
            "protocolo": [f"AT{i + 1:08d}" for i in range(len(calls))],
            "data_hora": _local(calls["ts"]),
            "codigo_cliente": calls["entity_id"],
            "canal": rng.choice(channels, size=len(calls), p=list(CHANNELS.values())),
            "motivo": [REASON_NAMES.get(r, "OUTROS") for r in reasons],
        }
    )
    return {
        "events": _write_csv(a, out / "alarmes.csv"),
        "contacts": _write_csv(c, out / "atendimentos.csv"),
    }


def _pick(rng: np.random.Generator, options: list[str]) -> str:
    return str(options[int(rng.integers(len(options)))])


def _found_kind(order: Any, onu: str | None, truth: pd.DataFrame) -> str:
    """What the technician found at a completed visit: a fault kind or 'no_fault'."""
    outcome = str(order.outcome)
    if outcome == "customer_absent":
        return "customer_power_off"
    if outcome == "no_fault_found" or onu is None:
        return "no_fault"
    hits = truth[truth["affected_onus"].map(lambda a: onu in a)]
    closed = pd.Timestamp(order.closed_at)
    if outcome.startswith("fixed_"):
        cls = outcome.removeprefix("fixed_").upper()
        fixed = hits[(hits["fixed_by"] == "visit") & (hits["cause_class"] == cls)]
        near = fixed[(fixed["end_at"] - closed).abs() <= pd.Timedelta(seconds=1)]
        if len(near):
            return str(near["kind"].iloc[0])
        return next(k for k, v in FAULT_KINDS.items() if v["class"] == cls)
    if outcome == "massive_outage":
        active = hits[hits["cause_class"].isin(_MASSIVE) & (hits["start_at"] <= closed)
                      & ((hits["end_at"] > closed) | hits["end_at"].isna())]  # fmt: skip
        return str(active["kind"].iloc[0]) if len(active) else "feeder_cut"
    return "no_fault"


def _code_and_notes(found: str, rng: np.random.Generator, noise: ExportNoise) -> tuple[str, str]:
    found = CLOSED_AS.get(found, found)
    code = _pick(rng, CLOSURE_CODES[found])
    u = rng.random()
    if u < noise.code_missing:
        code = ""
    elif u < noise.code_missing + noise.code_wrong:
        code = _pick(rng, CLOSURE_CODES[_pick(rng, [k for k in CLOSURE_CODES if k != found])])
    notes = "" if rng.random() < noise.notes_missing else _pick(rng, NOTES[found])
    return code, notes


def _tickets(run: Path, out: Path, rng: np.random.Generator, noise: ExportNoise) -> dict[str, int]:
    orders = pd.read_parquet(run / "ops" / "service_orders.parquet")
    truth = pd.read_parquet(run / "ops" / "faults_truth.parquet")
    truth["affected_onus"] = truth["affected_onus"].map(lambda a: set(map(str, a)))
    cust = pd.read_parquet(run / "inventory" / "customers.parquet")
    onus = pd.read_parquet(run / "inventory" / "onus.parquet")
    onu_of = dict(zip(cust["customer_id"].astype(str), cust["onu_id"].astype(str), strict=True))
    recs = []
    for o in orders.itertuples(index=False):
        onu = onu_of.get(str(o.customer_id))
        closed = pd.notna(o.closed_at)
        if o.status == "completed":
            code, notes = _code_and_notes(_found_kind(o, onu, truth), rng, noise)
            situacao = "CONCLUIDA"
        elif o.status == "cancelled":
            code = CANCEL_CODES.get(str(o.outcome), CANCEL_CODES["other"])
            notes = "" if rng.random() < 0.7 else "cliente informou que a conexao voltou"
            situacao = "CANCELADA"
        else:
            code, notes, situacao = "", "", "ABERTA"
        recs.append({
            "os": o.os_id, "origem": "CALL CENTER" if o.opened_by == "call_center" else "AUTOMATICA",
            "codigo_cliente": o.customer_id,
            "serial_onu": "" if rng.random() < noise.onu_missing else onu,
            "regional": o.region, "motivo_abertura": REASON_NAMES.get(str(o.reason), "OUTROS"),
            "abertura": o.opened_at, "agendamento": o.scheduled_for,
            "fechamento": o.closed_at if closed else pd.NaT, "tecnico": o.technician_id,
            "situacao": situacao, "codigo_baixa": code, "obs_tecnico": notes,
            "custo_rs": o.cost_brl,
        })  # fmt: skip
    # The NOC's incidents: one per massive outage and affected PON, naming one of its ONUs.
    pon_of = dict(zip(onus["onu_id"].astype(str), onus["pon_id"].astype(str), strict=True))
    massive = truth[truth["cause_class"].isin(_MASSIVE)].sort_values("start_at", kind="stable")
    n_inc = 0
    for f in massive.itertuples(index=False):
        if rng.random() < noise.noc_misses:
            continue
        by_pon: dict[str, str] = {}
        for onu in sorted(f.affected_onus):
            by_pon.setdefault(pon_of.get(onu, ""), onu)
        for pon, onu in sorted(by_pon.items()):
            n_inc += 1
            opened = f.start_at + pd.Timedelta(minutes=float(rng.uniform(5, 30)))
            closed = (
                pd.NaT if pd.isna(f.end_at)
                else f.end_at + pd.Timedelta(minutes=float(rng.uniform(0, 60)))
            )  # fmt: skip
            code, notes = _code_and_notes(f.kind, rng, noise)
            recs.append({
                "os": f"INC{n_inc:06d}", "origem": "NOC", "codigo_cliente": "",
                "serial_onu": onu, "regional": "", "motivo_abertura": f"MASSIVA {pon}",
                "abertura": opened, "agendamento": pd.NaT, "fechamento": closed,
                "tecnico": "", "situacao": "CONCLUIDA" if pd.notna(closed) else "ABERTA",
                "codigo_baixa": code if pd.notna(closed) else "", "obs_tecnico": notes,
                "custo_rs": 0.0,
            })  # fmt: skip
    t = pd.DataFrame(recs)
    if len(t):
        t = t.sort_values("abertura", kind="stable").reset_index(drop=True)
        for col in ("abertura", "agendamento", "fechamento"):
            t[col] = _local(t[col])
    else:
        t = pd.DataFrame(columns=["os", "origem", "codigo_cliente", "serial_onu", "regional",
                                  "motivo_abertura", "abertura", "agendamento", "fechamento",
                                  "tecnico", "situacao", "codigo_baixa", "obs_tecnico",
                                  "custo_rs"])  # fmt: skip
    return {"tickets": _write_csv(t, out / "ordens_servico.csv"), "noc_incidents": n_inc}


def operator_mapping(source: str = "operadora_simulada") -> dict[str, Any]:
    """The ``mapping.yaml`` of an export (the own-data contract's format)."""
    ts = {"format": TS_FORMAT}
    return {
        "timezone": TZ,
        "source": source,
        "tables": {
            "olts": {"file": "inventario_olts.csv", "columns": {
                "olt_id": "id_olt", "vendor": "fabricante", "model": "modelo",
                "region": "regional", "city": "cidade", "pop_id": "pop", "lat": "latitude",
                "lon": "longitude", "mgmt_address": "ip_gerencia"}},
            "pons": {"file": "inventario_pons.csv", "columns": {
                "pon_id": "id_pon", "olt_id": "id_olt", "slot": "slot", "port": "porta",
                "if_index": "if_index", "technology": "tecnologia"}},
            "splitters": {"file": "inventario_caixas.csv", "columns": {
                "splitter_id": "id_caixa", "pon_id": "id_pon", "parent_id": "caixa_pai",
                "level": "nivel", "ratio": "razao", "lat": "latitude", "lon": "longitude"}},
            "onus": {"file": "inventario_onus.csv", "columns": {
                "onu_id": "serial", "serial": "serial", "pon_id": "id_pon", "olt_id": "id_olt",
                "splitter_id": "id_caixa", "onu_index": "indice", "vendor": "fabricante",
                "model": "modelo", "distance_m": "distancia_m", "lat": "latitude",
                "lon": "longitude"}},
            "customers": {"file": "clientes.csv", "columns": {
                "customer_id": "codigo_cliente", "onu_id": "serial_onu", "cpe_id": "id_cpe",
                "plan": "plano", "segment": "segmento", "sla_tier": "sla", "region": "regional",
                "city": "cidade", "lat": "latitude", "lon": "longitude",
                "created_at": {"column": "data_ativacao", "format": "%Y-%m-%d"}}},
            "telemetry": {"file": "telemetria_*.csv", "csv_delimiter": ";", "columns": {
                "ts": {"column": "coleta", **ts}, "onu_id": "serial",
                "rx_dbm": {"column": "rx_centi_dbm", "scale": 0.01},
                "tx_dbm": {"column": "tx_centi_dbm", "scale": 0.01},
                "olt_rx_dbm": {"column": "olt_rx_centi_dbm", "scale": 0.01},
                "snr_db": "snr_db", "ber": "ber", "crc_errors": "crc_erros",
                "latency_ms": {"column": "latencia_s", "scale": 1000.0},
                "loss_pct": "perda_pct",
                "online": {"column": "status", "true_values": ["ONLINE"]},
                "uptime_s": "uptime_s"}},
            "events": {"file": "alarmes.csv", "columns": {
                "ts": {"column": "data_hora", **ts}, "entity_id": "equipamento",
                "entity_type": "tipo_equipamento", "type": "alarme", "severity": "severidade",
                "payload": "detalhes"},
                "values": {
                    "type": {v: k for k, v in ALARM_NAMES.items()},
                    "severity": {v: k for k, v in SEVERITY_NAMES.items()},
                    "entity_type": {v: k for k, v in ENTITY_NAMES.items()}}},
            "contacts": {"file": "atendimentos.csv", "columns": {
                "ts": {"column": "data_hora", **ts}, "customer_id": "codigo_cliente",
                "channel": "canal", "reason": "motivo"}},
            "tickets": {"file": "ordens_servico.csv", "columns": {
                "ticket_id": "os", "customer_id": "codigo_cliente", "onu_id": "serial_onu",
                "opened_at": {"column": "abertura", **ts},
                "closed_at": {"column": "fechamento", **ts},
                "closure_code": "codigo_baixa", "notes": "obs_tecnico"}},
        },
    }  # fmt: skip


def _mapping(telemetry: bool) -> dict[str, Any]:
    """:func:`operator_mapping`, without the telemetry table unless ``telemetry``."""
    mapping = operator_mapping()
    if not telemetry:
        del mapping["tables"]["telemetry"]
    return mapping


def export_operator(
    run: Path | str,
    out_dir: Path | str,
    seed: int | None = None,
    overwrite: bool = False,
    noise: ExportNoise = ExportNoise(),
    telemetry: bool = True,
) -> dict[str, int]:
    """Write a simulated run as an operator's exports, atomically.

    Parameters
    ----------
    run : path
        A simulated run (``guardian simulate``): inventory, RAW telemetry and events,
        ``ops/service_orders.parquet`` and ``ops/faults_truth.parquet``.
    out_dir : path
        Export folder to create (written as ``<out_dir>.partial``, moved at the end).
    seed : int, optional
        Seed of the export's noise (default: the run's seed). Same run and seed, same
        files.
    overwrite : bool, default False
        Replace ``out_dir`` if it is an earlier export.
    noise : ExportNoise
        Shares of missing and wrong records.
    telemetry : bool, default True
        Write the ``telemetria_*.csv`` files. ``False`` leaves them out (and their table
        out of ``mapping.yaml``): an export of the inventory, alarms, contacts and tickets
        alone, for what needs no telemetry (ticket counts). The other files are the same
        either way: the telemetry draws no noise from the export's random stream.

    Returns
    -------
    dict
        Rows written per table (and ``noc_incidents``).
    """
    run, out_dir = Path(run), Path(out_dir)
    check_export_dir(out_dir, overwrite)
    manifest = json.loads(RunLayout(run).manifest.read_text())
    seed = int(manifest["seed"] if seed is None else seed)
    rng = np.random.default_rng([seed, 16])  # the export's own stream (issue 16)
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    rows = _inventory(run, partial)
    if telemetry:
        rows["telemetry"] = _telemetry(run, partial)
    rows |= _events_and_contacts(_raw_events(run), partial, rng)
    rows |= _tickets(run, partial, rng, noise)
    (partial / "mapping.yaml").write_text(
        "# Generated by guardian simulate --export operator: how to import this folder.\n"
        + yaml.safe_dump(_mapping(telemetry), sort_keys=False, allow_unicode=True)
    )
    (partial / "labels.yaml").write_text(LABEL_MAP_YAML)
    (partial / "export.json").write_text(
        json.dumps({"format": "network-guardian-operator-export/1", "seed": seed,
                    "scenario": manifest["scenario"]["name"], "rows": rows}, indent=2)
    )  # fmt: skip
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return rows
