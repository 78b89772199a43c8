"""What the dashboards show, read from one run's warehouse (no plotting, no Panel).

:func:`load_run_data` reads the small tables and a few aggregates of the telemetry once;
the screen functions (:func:`risk_queue`, :func:`customer_dossier`, …) are pure functions
of that :class:`RunData`. Every table produced by a later stage (``ml_predictions``, the
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

from guardian_lib.errors import WarehouseError
from guardian_lib.layout import RunLayout
from guardian_lib.schema import CLASS_COLUMNS, RX_CRITICAL_DBM, RX_OVERLOAD_DBM
from guardian_lib.sla import sla_kpis
from guardian_lib.warehouse import connect, table_names

__all__ = [
    "RunData",
    "load_run_data",
    "DEGRADED_RX_DBM",
    "OVERLOAD_RX_DBM",
    "FAILURE_EVENTS",
    "CAUSE_COLUMNS",
    "KPI_FILES",
    "SHAP_FILES",
    "AUDIT_FILES",
    "operations_kpis",
    "device_status",
    "risk_queue",
    "complete_inventory",
    "UNKNOWN",
    "customer_dossier",
    "reason_frequency",
    "decision_reasons",
    "policy_table",
    "customer_telemetry",
]

#: ONU RX below this is degraded (:data:`guardian_lib.schema.RX_CRITICAL_DBM`). [dBm]
DEGRADED_RX_DBM = RX_CRITICAL_DBM
#: ONU RX above this is overloaded (:data:`guardian_lib.schema.RX_OVERLOAD_DBM`). [dBm]
OVERLOAD_RX_DBM = RX_OVERLOAD_DBM
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


#: Shown for a name or category the inventory does not give (region, plan, segment…).
UNKNOWN = "–"


def complete_inventory(tables: dict[str, pd.DataFrame]) -> list[str]:
    """Fill in what an operator's own inventory may lack, in place; say what was done.

    Without ``olts``, ``pons`` or ``customers`` (an import of ONUs and telemetry only)
    the screens still need them: OLTs and PONs are taken from the ONUs' ``olt_id`` /
    ``pon_id``, and each ONU becomes a customer named by it. Blank regions, plans and
    segments become :data:`UNKNOWN`.

    Returns
    -------
    list of str
        Label keys of the notes to show (``note_no_olts``, ``note_no_coordinates``…).
    """
    notes: list[str] = []
    onus = tables.get("onus")
    if onus is None:
        return notes
    if "olt_id" not in onus or onus["olt_id"].isna().all():
        pons = tables.get("pons")
        olt_of = pons.set_index("pon_id")["olt_id"] if pons is not None else None
        onus["olt_id"] = (
            onus["pon_id"].map(olt_of)
            if olt_of is not None
            else onus["pon_id"].astype(str).str.rsplit("/", n=2).str[0]
        )
    if "pons" not in tables:
        tables["pons"] = (
            onus[["pon_id", "olt_id"]].drop_duplicates("pon_id").assign(slot=np.nan, port=np.nan)
        )
        notes.append("note_no_pons")
    if "olts" not in tables:
        ids = pd.concat([onus["olt_id"], tables["pons"]["olt_id"]]).dropna().unique()
        tables["olts"] = pd.DataFrame({"olt_id": ids, "region": UNKNOWN, "city": UNKNOWN})
        notes.append("note_no_olts")
    if "customers" not in tables:
        olts = tables["olts"].set_index("olt_id")
        tables["customers"] = pd.DataFrame(
            {
                "customer_id": onus["onu_id"].astype(str),
                "onu_id": onus["onu_id"].astype(str),
                "plan": UNKNOWN,
                "segment": UNKNOWN,
                "sla_tier": UNKNOWN,
                "region": onus["olt_id"].map(olts["region"]).to_numpy(),
                "lat": pd.to_numeric(onus.get("lat"), errors="coerce"),
                "lon": pd.to_numeric(onus.get("lon"), errors="coerce"),
            }
        )
        notes.append("note_no_customers")
    for table, cols in (("olts", ("region", "city")),
                        ("customers", ("region", "city", "plan", "segment", "sla_tier"))):  # fmt: skip
        df = tables[table]
        for col in cols:
            df[col] = df[col].fillna(UNKNOWN) if col in df else UNKNOWN
    cust = tables["customers"]
    for col in ("lat", "lon"):
        if col not in cust:
            cust[col] = np.nan
    if not (cust["lat"].notna() & cust["lon"].notna()).any():
        notes.append("note_no_coordinates")
    if "events" not in tables:
        notes.append("note_no_events")
    if "service_orders" not in tables:
        notes.append("note_no_service_orders")
    return notes


def device_status(onus: pd.DataFrame | None, last: pd.DataFrame) -> pd.DataFrame:
    """Status of every ONU from its last recent reading.

    Parameters
    ----------
    onus : DataFrame or None
        The inventory (every ONU gets a row, ``no_data`` when it has no recent reading).
    last : DataFrame
        ``onu_id``, ``online``, ``rx_dbm`` [dBm], … of the last reading.

    Returns
    -------
    DataFrame
        ``last`` joined to the inventory with ``status`` in
        {``online``, ``degraded``, ``offline``, ``no_data``}.
    """
    inv = onus if onus is not None else pd.DataFrame({"onu_id": last["onu_id"]})
    df = inv.merge(last, on="onu_id", how="left")
    rx = pd.to_numeric(df["rx_dbm"], errors="coerce")
    online = df["online"].astype("boolean")
    status = np.where(online.isna(), "no_data", np.where(online.fillna(False), "online", "offline"))
    bad_rx = (rx < DEGRADED_RX_DBM) | (rx > OVERLOAD_RX_DBM)
    status = np.where((status == "online") & bad_rx.fillna(False).to_numpy(), "degraded", status)
    df["status"] = status
    return df


def operations_kpis(data: RunData) -> dict[str, float]:
    """Operational figures of the run (what every ISP can count without the autopilot).

    Returns
    -------
    dict
        ``customers``, ``onus``, ``calls`` (``CUSTOMER_CALL`` events), ``visits``
        (completed service orders), ``visits_no_fault_found``, ``service_orders_total``
        and ``visit_cost_brl`` (sum of the service orders' ``cost_brl``) [R$].
    """
    so = data.table("service_orders")
    ev = data.table("events")
    so = so if so is not None else pd.DataFrame(columns=["status", "outcome", "cost_brl"])
    calls = int((ev["type"] == "CUSTOMER_CALL").sum()) if ev is not None else 0
    cust = data.table("customers")
    onus = data.table("onus")
    return {
        "customers": len(cust) if cust is not None else 0,
        "onus": len(onus) if onus is not None else 0,
        "calls": calls,
        "visits": int((so["status"] == "completed").sum()),
        "visits_no_fault_found": int((so["outcome"] == "no_fault_found").sum()),
        "service_orders_total": len(so),
        "visit_cost_brl": float(pd.to_numeric(so["cost_brl"], errors="coerce").fillna(0).sum()),
    }


def _contacts_30d(data: RunData) -> pd.Series:
    """Calls + service orders per customer in the 30 days before the run's end."""
    end = data.end or pd.Timestamp.now(tz="UTC")
    since = end - pd.Timedelta(days=30)
    parts = []
    ev = data.table("events")
    if ev is not None and len(ev):
        calls = ev.loc[(ev["type"] == "CUSTOMER_CALL") & (ev["ts"] >= since), "entity_id"]
        parts.append(calls)
    so = data.table("service_orders")
    if so is not None and len(so):
        parts.append(so.loc[pd.to_datetime(so["opened_at"], utc=True) >= since, "customer_id"])
    if not parts:
        return pd.Series(dtype="int64")
    return pd.concat(parts, ignore_index=True).value_counts()


def risk_queue(
    data: RunData,
    region: str | None = None,
    plan: str | None = None,
    vip_only: bool = False,
    recurrent_only: bool = False,
    limit: int | None = 50,
) -> pd.DataFrame | None:
    """Customers ranked by ``risk_2h`` at the latest scoring time, filtered.

    Parameters
    ----------
    data : RunData
    region, plan : str, optional
        Keep one region / plan (``None``: all).
    vip_only : bool, default False
        Keep VIP customers only.
    recurrent_only : bool, default False
        Keep customers with 2 or more contacts (calls + service orders) in 30 days.
    limit : int or None, default 50
        Rows returned (``None``: all).

    Returns
    -------
    DataFrame or None
        ``customer_id``, ``onu_id``, ``region``, ``plan``, ``segment``, ``contacts_30d``,
        ``risk_2h``, ``risk_6h``, ``risk_24h`` [-], ``anomaly_score`` [-],
        ``probable_cause``; ``None`` when the run has no predictions.
    """
    preds = data.predictions
    cust = data.table("customers")
    if preds is None or cust is None:
        return None
    cols = ["customer_id", "onu_id", "region", "plan", "segment"]
    df = cust[cols].merge(preds, on="onu_id", how="inner")
    contacts = _contacts_30d(data)
    df["contacts_30d"] = df["customer_id"].map(contacts).fillna(0).astype(int)
    present = [c for c in CAUSE_COLUMNS.values() if c in df.columns]
    if present:
        names = {v: k for k, v in CAUSE_COLUMNS.items()}
        df["probable_cause"] = df[present].fillna(0).idxmax(axis=1).map(names)
    else:
        df["probable_cause"] = "UNKNOWN"
    if region:
        df = df.loc[df["region"] == region]
    if plan:
        df = df.loc[df["plan"] == plan]
    if vip_only:
        df = df.loc[df["segment"].str.lower() == "vip"]
    if recurrent_only:
        df = df.loc[df["contacts_30d"] >= 2]
    df = df.sort_values(["risk_2h", "risk_24h", "customer_id"], ascending=[False, False, True])
    keep = cols + ["contacts_30d", "risk_2h", "risk_6h", "risk_24h", "anomaly_score"]
    df = df[keep + ["probable_cause"]].reset_index(drop=True)
    return df if limit is None else df.head(limit)


def customer_telemetry(run: Path | str, onu_id: str, end: pd.Timestamp, hours: int = 48):
    """SILVER telemetry of one ONU over the ``hours`` before ``end``. [UTC, h]"""
    con = connect(run)
    try:
        return _df(
            con,
            "SELECT ts, online, rx_dbm, tx_dbm, olt_rx_dbm, latency_ms, loss_pct FROM telemetry "
            f"WHERE onu_id = ? AND ts > ?::TIMESTAMPTZ - INTERVAL {int(hours)} HOUR ORDER BY ts",
            [onu_id, end],
        )
    finally:
        con.close()


def _mentions(targets: Any, keys: set[str]) -> bool:
    try:
        items = json.loads(targets) if isinstance(targets, str) else list(targets or [])
    except json.JSONDecodeError:
        return False
    return any(str(t) in keys for t in items)


def customer_dossier(data: RunData, customer_id: str, hours: int = 48) -> dict[str, Any]:
    """Everything about one customer: inventory, telemetry, events, decisions, actions.

    Parameters
    ----------
    data : RunData
    customer_id : str
    hours : int, default 48
        Telemetry window before the run's end. [h]

    Returns
    -------
    dict
        ``customer`` (dict), ``telemetry``, ``events``, ``service_orders``, ``reasons``
        (DataFrames) and ``decisions`` / ``actions`` (DataFrames, or ``None`` when the
        run has no audit tables).

    Raises
    ------
    KeyError
        ``customer_id`` is not in ``customers``.
    """
    cust = data.table("customers")
    if cust is None or customer_id not in set(cust["customer_id"]):
        raise KeyError(f"customers: no customer_id {customer_id!r} in run {data.run}")
    row = cust.loc[cust["customer_id"] == customer_id].iloc[0].to_dict()
    onu = str(row["onu_id"])
    keys = {customer_id, onu, str(row.get("cpe_id", ""))}
    tel = (
        customer_telemetry(data.run, onu, data.end, hours)
        if data.end is not None
        else pd.DataFrame(columns=["ts", "online", "rx_dbm", "tx_dbm", "latency_ms"])
    )
    ev = data.table("events")
    events = ev.loc[ev["entity_id"].isin(keys)] if ev is not None else pd.DataFrame()
    so = data.table("service_orders")
    orders = so.loc[so["customer_id"] == customer_id] if so is not None else pd.DataFrame()
    decisions = actions = None
    dec = data.table("decisions")
    if dec is not None:
        mask = dec["subject"].astype(str).isin(keys)
        if "targets" in dec:
            mask |= dec["targets"].map(lambda t: _mentions(t, keys))
        decisions = dec.loc[mask].sort_values("ts")
    act = data.table("actions")
    if act is not None:
        ids = set(decisions["decision_id"]) if decisions is not None else set()
        actions = act.loc[act["decision_id"].isin(ids) | act["target"].astype(str).isin(keys)]
    reasons = pd.DataFrame(columns=["ts", "feature", "value", "contribution", "model"])
    if data.reasons is not None and len(data.reasons):
        mine = data.reasons.loc[data.reasons["onu_id"] == onu]
        if len(mine):
            reasons = mine.loc[mine["ts"] == mine["ts"].max()]
    return {
        "customer": row,
        "telemetry": tel,
        "events": events.reset_index(drop=True),
        "service_orders": orders.reset_index(drop=True),
        "decisions": decisions,
        "actions": actions,
        "reasons": reasons.reset_index(drop=True),
    }


def reason_frequency(data: RunData, top: int = 15) -> pd.DataFrame | None:
    """How often each feature is a top SHAP reason, and its mean |contribution|.

    Returns
    -------
    DataFrame or None
        ``feature``, ``n``, ``mean_abs_contribution`` [-], most frequent first;
        ``None`` without predictions or reasons.
    """
    r = data.reasons
    if r is None or not len(r):
        return None
    g = r.assign(abs_c=r["contribution"].abs()).groupby("feature")
    out = g.agg(n=("onu_id", "size"), mean_abs_contribution=("abs_c", "mean")).reset_index()
    return out.sort_values(["n", "feature"], ascending=[False, True]).head(top)


def decision_reasons(data: RunData, limit: int = 20) -> pd.DataFrame | None:
    """The latest decisions with their rationale (JSON text), newest first (``None``: no audit)."""
    dec = data.table("decisions")
    if dec is None:
        return None
    cols = [c for c in ("ts", "subject", "action", "confidence", "rationale") if c in dec]
    return dec.sort_values("ts", ascending=False)[cols].head(limit).reset_index(drop=True)


def policy_table(backtest: dict[str, Any] | None) -> pd.DataFrame | None:
    """The backtest's ``{"policies": {p: {metric: {"mean", "ci95"}}}}`` as a long table.

    Returns
    -------
    DataFrame or None
        ``policy``, ``metric``, ``mean``, ``ci_lo``, ``ci_hi``; scalar metrics (not
        dicts with ``mean``) are kept with empty intervals.
    """
    if not backtest:
        return None
    rows = []
    for policy, metrics in backtest.get("policies", {}).items():
        for metric, v in (metrics or {}).items():
            if isinstance(v, dict) and "mean" in v:
                ci = v.get("ci95") or [np.nan, np.nan]
                rows.append((policy, metric, v["mean"], ci[0], ci[1]))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                rows.append((policy, metric, v, np.nan, np.nan))
    return pd.DataFrame.from_records(rows, columns=["policy", "metric", "mean", "ci_lo", "ci_hi"])
