"""What the dashboards show, read from one run's warehouse (no plotting, no Panel).

:func:`load_run_data` reads the small tables and a few aggregates of the telemetry once
into a :class:`RunData`; :mod:`~guardian_lib.dashboards._inventory` fills in what an
operator's own inventory lacks and gives each ONU its status, and the screen functions of
:mod:`~guardian_lib.dashboards._views` (:func:`risk_queue`, :func:`customer_dossier`, …)
are pure functions of that :class:`RunData`. Every table produced by a later stage (``ml_predictions``, the
audit tables, the backtest's ``kpis.json``, the global SHAP importance) is optional: when
it is absent the matching attribute is ``None`` and the screen says so. Ground truth
(the simulator's fault table) is never read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from guardian_lib.dashboards._inventory import complete_inventory, device_status
from guardian_lib.errors import WarehouseError
from guardian_lib.layout import RunLayout
from guardian_lib.schema import CLASS_COLUMNS
from guardian_lib.sla import sla_kpis
from guardian_lib.warehouse import connect, table_names

__all__ = [
    "RunData",
    "load_run_data",
    "FAILURE_EVENTS",
    "CAUSE_COLUMNS",
    "KPI_FILES",
    "SHAP_FILES",
    "AUDIT_FILES",
]

#: Event types that count as failures on the NOC overview.
FAILURE_EVENTS = ("LOS", "DYING_GASP", "PPPOE_DOWN", "DHCP_FAIL", "HIGH_BER", "LOW_RX", "OLT_ALARM")
#: ``ml_predictions`` probability column of each cause class.
CAUSE_COLUMNS = CLASS_COLUMNS
#: Where a backtest's KPI file is, relative to the run folder (:attr:`RunLayout.kpis`).
KPI_FILES = (RunLayout(".").kpis.name,)
#: Where a separate audit trail (a DuckDB file with the audit tables) is, relative to the run
#: folder, when the run's own warehouse has none (:attr:`RunLayout.audit`).
AUDIT_FILES = (RunLayout(".").audit.name,)
#: Where the global SHAP importance table (``feature``, ``mean_abs_shap``) is, relative to
#: the run folder (:attr:`RunLayout.shap_importance`).
SHAP_FILES = (RunLayout(".").shap_importance.relative_to("."),)
_AUDIT = ("decisions", "actions", "notifications", "incidents")
_RECENT_MIN = 15  # a reading older than this before the run's end counts as "no data" [min]


@dataclass
class RunData:
    """Everything the screens need from one run, loaded once.

    Attributes
    ----------
    run : Path
        The run folder.
    start, end : pandas.Timestamp or None
        First and last SILVER telemetry timestamp. [UTC]
    tables : dict of str to DataFrame
        Inventory and operations tables (``olts``, ``pons``, ``splitters``, ``onus``,
        ``customers``, ``service_orders``, ``events``) and, when present, the audit tables.
    status : DataFrame
        One row per ONU: last reading and ``status`` (online, degraded, offline, no_data).
    online_series : DataFrame
        ``ts``, ``n_online`` per telemetry tick.
    offline_24h : DataFrame
        ``onu_id``, ``offline_share`` over the last 24 h. [-]
    predictions : DataFrame or None
        ``ml_predictions`` at the latest scoring time (``None``: not scored yet).
    reasons : DataFrame or None
        Exploded SHAP reasons of every prediction that has some.
    backtest : dict or None
        The backtest's ``kpis.json``.
    shap_global : DataFrame or None
        The global importance artifact.
    sla : DataFrame or None
        SLA and network KPIs per region, OLT and PON (:func:`guardian_lib.sla.sla_kpis`).
    notes : list of str
        Label keys (:mod:`guardian_lib.i18n`) of what the run lacks and how the screens
        make do (``note_no_coordinates``…): shown on the NOC overview.
    """

    run: Path
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    tables: dict[str, pd.DataFrame]
    status: pd.DataFrame
    online_series: pd.DataFrame
    offline_24h: pd.DataFrame
    predictions: pd.DataFrame | None = None
    reasons: pd.DataFrame | None = None
    backtest: dict[str, Any] | None = None
    shap_global: pd.DataFrame | None = None
    sla: pd.DataFrame | None = None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The run folder's name."""
        return self.run.name

    def table(self, name: str) -> pd.DataFrame | None:
        """A loaded table, or ``None`` when the run does not have it."""
        return self.tables.get(name)


def _df(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()


def _read_backtest(run: Path, kpis_path: Path | None) -> tuple[dict | None, str]:
    for path in [kpis_path or RunLayout(run).kpis]:
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON: {exc}") from exc
            if not isinstance(data, dict) or not isinstance(data.get("policies"), dict):
                raise ValueError(
                    f"{path}: expected an object with a 'policies' mapping "
                    '({"policies": {"<policy>": {"<metric>": {"mean": x, "ci95": [lo, hi]}}}})'
                )
            return data, str(path)
    return None, ""


def _read_shap(run: Path) -> tuple[pd.DataFrame | None, str]:
    path = RunLayout(run).shap_importance
    if not path.is_file():
        return None, ""
    df = pd.read_csv(path)
    missing = {"feature", "mean_abs_shap"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return df.sort_values("mean_abs_shap", ascending=False).reset_index(drop=True), str(path)


def _reason_items(cell: Any) -> list[Any]:
    """The reasons of one ``top_reasons`` cell: JSON text or an already decoded list."""
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError:
            return []
    if isinstance(cell, np.ndarray):
        cell = cell.tolist()
    return cell if isinstance(cell, list) else []


def _explode_reasons(preds: pd.DataFrame) -> pd.DataFrame:
    """One row per reason of every prediction.

    ``top_reasons`` holds a JSON list in one of two formats: SHAP reasons of the models
    (``{"feature", "value", "contribution", "model"}`` objects) or plain sentences of the
    rule scorer (``["rx_dbm low", …]``). A sentence becomes a row whose ``feature`` is the
    sentence and whose ``value``, ``contribution`` and ``model`` are missing.
    """
    cols = ["ts", "onu_id", "feature", "value", "contribution", "model"]
    rows: list[tuple] = []
    for ts, onu, cell in preds[["ts", "onu_id", "top_reasons"]].itertuples(index=False):
        for it in _reason_items(cell):
            if isinstance(it, dict):
                rows.append(
                    (ts, onu, it.get("feature"), it.get("value"), it.get("contribution"),
                     it.get("model"))
                )  # fmt: skip
            elif isinstance(it, str) and it.strip():
                rows.append((ts, onu, it, None, None, None))
    return pd.DataFrame.from_records(rows, columns=cols)


def _read_audit(run: Path, audit_path: Path | None) -> tuple[dict[str, pd.DataFrame], str]:
    for path in [audit_path or RunLayout(run).audit]:
        if path is not None and path.is_file():
            try:
                con = duckdb.connect(str(path), read_only=True)
            except duckdb.Error as exc:  # not a DuckDB file, or locked by a writer
                msg = " ".join(str(exc).split())
                raise WarehouseError(f"{path}: cannot open as an audit database ({msg})") from None
            try:
                names = table_names(con)
                return {t: _df(con, f"SELECT * FROM {t}") for t in _AUDIT if t in names}, str(path)
            finally:
                con.close()
    if audit_path is not None:
        raise FileNotFoundError(f"{audit_path}: audit file not found")
    return {}, ""


def _read_telemetry(
    con: duckdb.DuckDBPyConnection, names: set[str], onus: pd.DataFrame | None
) -> tuple[pd.Timestamp | None, pd.Timestamp | None, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Time range, each ONU's last reading, ONUs online per tick, offline share over 24 h."""
    start = end = None
    status = pd.DataFrame(columns=["onu_id", "ts", "online", "rx_dbm", "tx_dbm", "olt_rx_dbm"])
    series = pd.DataFrame(columns=["ts", "n_online"])
    off24 = pd.DataFrame(columns=["onu_id", "offline_share"])
    if "telemetry" in names:
        start, end = con.execute("SELECT min(ts), max(ts) FROM telemetry").fetchone()
    if end is not None:
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        status = _df(
            con,
            "SELECT onu_id, max(ts) AS ts, arg_max(online, ts) AS online, "
            "arg_max(rx_dbm, ts) AS rx_dbm, arg_max(tx_dbm, ts) AS tx_dbm, "
            "arg_max(olt_rx_dbm, ts) AS olt_rx_dbm FROM telemetry "
            f"WHERE ts >= ?::TIMESTAMPTZ - INTERVAL {_RECENT_MIN} MINUTE GROUP BY onu_id",
            [end],
        )
        series = _df(
            con,
            "SELECT ts, count(*) FILTER (WHERE online) AS n_online FROM telemetry "
            "GROUP BY ts ORDER BY ts",
        )
        n_ticks = con.execute(
            "SELECT count(DISTINCT ts) FROM telemetry WHERE ts > ?::TIMESTAMPTZ - INTERVAL 24 HOUR",
            [end],
        ).fetchone()[0]
        off24 = _df(
            con,
            "SELECT onu_id, count(*) FILTER (WHERE online) AS online_ticks FROM telemetry "
            "WHERE ts > ?::TIMESTAMPTZ - INTERVAL 24 HOUR GROUP BY onu_id",
            [end],
        )
        ids = (onus if onus is not None else pd.DataFrame(columns=["onu_id"]))[["onu_id"]]
        off24 = ids.merge(off24, on="onu_id", how="left").fillna({"online_ticks": 0})
        off24["offline_share"] = 1.0 - off24["online_ticks"] / max(int(n_ticks), 1)
        off24 = off24[["onu_id", "offline_share"]]
    return start, end, status, series, off24


def _read_predictions(
    con: duckdb.DuckDBPyConnection, names: set[str]
) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The latest predictions of the newest model, and every top reason ever given."""
    predictions = reasons = None
    if "ml_predictions" in names:
        predictions = _df(
            con,
            "WITH p AS (SELECT * FROM ml_predictions WHERE ts = "
            "(SELECT max(ts) FROM ml_predictions)) "
            "SELECT * FROM p WHERE model_version = (SELECT max(model_version) FROM p)",
        )
        hits = _df(
            con,
            "SELECT ts, onu_id, top_reasons FROM ml_predictions "
            "WHERE top_reasons IS NOT NULL AND top_reasons <> '[]'",
        )
        reasons = _explode_reasons(hits)
    return predictions, reasons


def _add_audit(run: Path, tables: dict[str, pd.DataFrame], audit_path: Path | str | None) -> str:
    """Add the audit tables from ``audit_path`` or the run's trail unless the warehouse has
    them; return where they came from ('' when nowhere)."""
    audit_src = "warehouse" if any(t in tables for t in _AUDIT) else ""
    if audit_path is not None or not audit_src:
        extra, audit_src = _read_audit(run, Path(audit_path) if audit_path else None)
        tables.update(extra)
    return audit_src


def load_run_data(
    run: Path | str,
    kpis_path: Path | str | None = None,
    audit_path: Path | str | None = None,
) -> RunData:
    """Load what the dashboards show for ``run``.

    Parameters
    ----------
    run : path
        Run folder with an ingested warehouse.
    kpis_path : path, optional
        A backtest ``kpis.json``; default: the run's (:attr:`RunLayout.kpis`).
    audit_path : path, optional
        A DuckDB file holding the audit tables; default: the run's warehouse, else the
        run's ``audit.duckdb`` (:attr:`RunLayout.audit`).

    Returns
    -------
    RunData

    Raises
    ------
    WarehouseError
        The run has no warehouse.
    ValueError
        ``kpis.json`` or the SHAP table is malformed (the message names the file).
    """
    run = Path(run).resolve()
    con = connect(run)
    try:
        names = table_names(con)
        tables: dict[str, pd.DataFrame] = {}
        for t in ("olts", "pons", "splitters", "onus", "customers", "service_orders", *_AUDIT):
            if t in names:
                tables[t] = _df(con, f"SELECT * FROM {t}")
        if "events" in names:
            tables["events"] = _df(con, "SELECT * FROM events ORDER BY ts, entity_id, type")
        notes = complete_inventory(tables)
        start, end, status, series, off24 = _read_telemetry(con, names, tables.get("onus"))
        status = device_status(tables.get("onus"), status)
        has_network = {"telemetry", "onus", "pons", "olts"} <= names
        sla = sla_kpis(con) if has_network else None
        predictions, reasons = _read_predictions(con, names)
    finally:
        con.close()
    audit_src = _add_audit(run, tables, audit_path)
    backtest, kpi_src = _read_backtest(run, Path(kpis_path) if kpis_path else None)
    shap, shap_src = _read_shap(run)
    return RunData(
        run=run,
        start=start,
        end=end,
        tables=tables,
        status=status,
        online_series=series,
        offline_24h=off24,
        predictions=predictions,
        reasons=reasons,
        backtest=backtest,
        shap_global=shap,
        sla=sla,
        sources={"kpis": kpi_src, "shap": shap_src, "audit": audit_src},
        notes=notes,
    )
