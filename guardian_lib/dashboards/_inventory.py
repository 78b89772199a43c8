"""What an operator's own inventory may lack, filled in, and each ONU's status.

Used by :func:`~guardian_lib.dashboards._data.load_run_data`: an import of ONUs and
telemetry only still gets OLTs, PONs and customers for the screens
(:func:`complete_inventory`), and every ONU a status from its last recent reading
(:func:`device_status`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from guardian_lib.schema import RX_CRITICAL_DBM, RX_OVERLOAD_DBM

__all__ = ["UNKNOWN", "DEGRADED_RX_DBM", "OVERLOAD_RX_DBM", "complete_inventory", "device_status"]

#: ONU RX below this is degraded (:data:`guardian_lib.schema.RX_CRITICAL_DBM`). [dBm]
DEGRADED_RX_DBM = RX_CRITICAL_DBM
#: ONU RX above this is overloaded (:data:`guardian_lib.schema.RX_OVERLOAD_DBM`). [dBm]
OVERLOAD_RX_DBM = RX_OVERLOAD_DBM
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
