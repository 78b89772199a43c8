"""The fleet ``guardian operate`` watches: ONUs, their PON and box, customer and CPE.

From the site's ``subscribers`` file when there is one (the ISP's own inventory: which
CPE and street box hang on each ONU), else from the first poll: every ONU an OLT
reports, its PON taken from the SNMP index (``<olt_id>:<index without the ONU number>``),
its box unknown (the PON stands in), the customer id the ONU id, and the CPE id the
device of the ACS whose serial number is the ONU's serial (``None`` when the ACS does
not know it; such an ONU is never rebooted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.errors import ConfigError

__all__ = ["Fleet", "load_subscribers", "fleet_from_poll", "fleet_from_warehouse"]

_OPTIONAL = {"cpe_id": None, "customer_id": None, "pon_id": None, "box_id": None,
             "olt_id": None, "region": "unknown", "segment": "residential",
             "lat": 0.0, "lon": 0.0, "distance_m": float("nan"),
             # customer notices (docs/alerts.md): contact, language, display name, opt-out
             "phone": None, "lang": None, "name": None, "notices_opt_out": None}  # fmt: skip
_FLOATS = ("lat", "lon", "distance_m")


class Fleet:
    """The watched ONUs in a fixed order (the order of every tick's arrays).

    Parameters
    ----------
    table : pandas.DataFrame
        ``onu_id``, ``cpe_id``, ``customer_id``, ``pon_id``, ``box_id``, ``olt_id``,
        ``region``, ``segment``.
    """

    def __init__(self, table: pd.DataFrame) -> None:
        self.table = table.reset_index(drop=True)
        self.onu_ids = self.table["onu_id"].astype(str).to_numpy()

    def __len__(self) -> int:
        return len(self.table)

    @property
    def onus(self) -> pd.DataFrame:
        """Inventory ``onus`` (``onu_id``, ``pon_id``, ``olt_id``, ``splitter_id``, and for
        the ML scorer ``lat``, ``lon`` [deg] and ``distance_m`` [m])."""
        t = self.table
        cols = ["onu_id", "pon_id", "olt_id", "box_id", "lat", "lon", "distance_m"]
        return t[cols].rename(columns={"box_id": "splitter_id"}).reset_index(drop=True)

    @property
    def customers(self) -> pd.DataFrame:
        """Inventory ``customers`` (``customer_id``, ``onu_id``, ``cpe_id``, ``region``,
        ``segment``)."""
        return self.table[["customer_id", "onu_id", "cpe_id", "region", "segment"]].copy()

    def pon_of(self) -> dict[str, str]:
        """CPE id and ONU id → PON id."""
        t = self.table
        out = dict(zip(t["onu_id"].astype(str), t["pon_id"].astype(str), strict=True))
        for cpe, pon in zip(t["cpe_id"], t["pon_id"], strict=True):
            if isinstance(cpe, str) and cpe:
                out[cpe] = str(pon)
        return out


def _complete(df: pd.DataFrame, source: str) -> pd.DataFrame:
    if "onu_id" not in df.columns:
        raise ConfigError(f"{source}: subscribers need an 'onu_id' column; got {list(df.columns)}")
    df = df.copy()
    df["onu_id"] = df["onu_id"].astype(str)
    dup = df["onu_id"][df["onu_id"].duplicated()].unique().tolist()
    if dup:
        raise ConfigError(f"{source}: onu_id appears more than once: {dup[:5]}")
    for col, default in _OPTIONAL.items():
        if col not in df.columns:
            df[col] = default
    for col in _FLOATS:
        try:
            df[col] = pd.to_numeric(df[col]).astype(float)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: column {col!r} must be numeric: {exc}") from None
    df["lat"] = df["lat"].fillna(0.0)
    df["lon"] = df["lon"].fillna(0.0)
    df["olt_id"] = df["olt_id"].fillna("unknown")
    df["pon_id"] = df["pon_id"].fillna(df["olt_id"].astype(str) + ":pon")
    df["box_id"] = df["box_id"].fillna(df["pon_id"])
    df["customer_id"] = df["customer_id"].fillna(df["onu_id"])
    df["cpe_id"] = pd.Series(
        [c if isinstance(c, str) and c.strip() else None for c in df["cpe_id"]],
        index=df.index, dtype=object,
    )  # fmt: skip
    return df[["onu_id", *_OPTIONAL]]


def load_subscribers(path: str | Path) -> Fleet:
    """Read a subscribers CSV or Parquet file.

    Raises
    ------
    ConfigError
        Unreadable, no ``onu_id`` column, or a duplicated ONU (names the file).
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".parquet":
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read subscribers: {exc}") from exc
    return Fleet(_complete(df, str(path)))


def fleet_from_poll(telemetry: pd.DataFrame, cpe_by_serial: dict[str, str] | None = None) -> Fleet:
    """A fleet from the first poll's rows (see the module docstring).

    Parameters
    ----------
    telemetry : pandas.DataFrame
        Poller rows (``onu_id``, ``olt_id``, ``snmp_index``, ``serial``).
    cpe_by_serial : dict, optional
        ACS serial number → device id.
    """
    t = telemetry.drop_duplicates("onu_id")
    idx = t["snmp_index"].astype(str)
    pon = t["olt_id"].astype(str) + ":" + idx.str.rsplit(".", n=1).str[0]
    serial = t["serial"].astype(object).where(t["serial"].notna(), t["onu_id"])
    cpe = [(cpe_by_serial or {}).get(str(s)) for s in serial]
    df = pd.DataFrame(
        {
            "onu_id": t["onu_id"].astype(str).to_numpy(),
            "olt_id": t["olt_id"].to_numpy(),
            "pon_id": pon.to_numpy(),
            "cpe_id": cpe,
        }  # fmt: skip
    )
    return Fleet(_complete(df, "first poll"))


def fleet_from_warehouse(con: Any, source: str = "warehouse") -> Fleet:
    """The fleet of a run's warehouse: every ONU of ``onus`` (sorted by id), its first
    customer, the OLT from ``pons`` when ``onus`` lacks it.

    An imported inventory may lack street boxes, coordinates, CPE ids, regions or
    customers: they are completed as a subscribers file is (the PON stands in for the
    box, the ONU id for the customer; an ONU without a CPE id is never rebooted).

    Parameters
    ----------
    con : duckdb connection
        From :func:`guardian_lib.warehouse.connect`.
    source : str
        Named in errors (the run folder).

    Raises
    ------
    ConfigError
        The warehouse has no ``onus`` table, or it is empty.
    """
    from guardian_lib.warehouse import table_names

    names = table_names(con)
    if "onus" not in names:
        raise ConfigError(f"{source}: the warehouse has no 'onus' table (import an inventory)")
    onus = con.execute("SELECT * FROM onus ORDER BY onu_id").df()
    if not len(onus):
        raise ConfigError(f"{source}: the warehouse's 'onus' table is empty")
    df = onus.rename(columns={"splitter_id": "box_id"}).drop(
        columns=[c for c in ("region", "segment", "cpe_id", "customer_id") if c in onus]
    )
    if "pons" in names and {"pon_id", "olt_id"} <= set(
        con.execute("SELECT * FROM pons LIMIT 0").df()
    ):
        pons = con.execute("SELECT pon_id, olt_id AS pon_olt FROM pons").df()
        df = df.merge(pons.drop_duplicates("pon_id"), on="pon_id", how="left")
        df["olt_id"] = (
            df["olt_id"].fillna(df.pop("pon_olt")) if "olt_id" in df else df.pop("pon_olt")
        )
    if "customers" in names:
        cust = con.execute("SELECT * FROM customers ORDER BY customer_id").df()
        keep = [c for c in ("customer_id", "onu_id", "cpe_id", "region", "segment") if c in cust]
        cust = cust[keep].drop_duplicates("onu_id")  # one customer per ONU (the first by id)
        df = df.merge(cust, on="onu_id", how="left")
    return Fleet(_complete(df, source))


def cpe_by_serial(nbi: Any) -> dict[str, str]:
    """ACS serial number → device id, from the NBI's device list."""
    docs = nbi.devices(projection=["_id", "_deviceId._SerialNumber"])
    out = {}
    for d in docs:
        serial = (d.get("_deviceId") or {}).get("_SerialNumber")
        if serial and d.get("_id"):
            out[str(serial)] = str(d["_id"])
    return out
