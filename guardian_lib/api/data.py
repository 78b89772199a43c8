"""What the API reads from a run folder, without ever holding a lock ``guardian operate`` needs.

DuckDB allows one writing process per file, and a reader's connection, even read-only,
keeps a writer out while it is open. So the API never opens ``warehouse.duckdb`` or
operate's ``audit.duckdb`` in place: when one changes it copies it (with its WAL) into a
private temporary folder, reads the small tables it needs from the copy into memory and
deletes the copy. The Parquet lake (predictions, events) is read through an in-memory
DuckDB connection. Nothing the API does can make a writer fail or wait.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from guardian_lib.errors import WarehouseError
from guardian_lib.layout import RunLayout
from guardian_lib.warehouse import silver_files

__all__ = ["WarehouseReader", "WarehouseBusy", "INVENTORY_TABLES", "RISK_WINDOWS"]

#: Inventory tables copied into memory (``service_orders`` too when the run has them).
INVENTORY_TABLES = ("olts", "pons", "onus", "customers")
#: Prediction horizons of ``GET /risk?window=`` and their columns.
RISK_WINDOWS = {"2h": "risk_2h", "6h": "risk_6h", "24h": "risk_24h"}
#: Columns every inventory frame has (None where the source lacks them).
_MIN_COLUMNS: dict[str, tuple[str, ...]] = {
    "olts": ("olt_id", "region"),
    "pons": ("pon_id", "olt_id", "region"),
    "onus": ("onu_id", "pon_id", "olt_id", "region"),
    "customers": ("customer_id", "onu_id", "cpe_id", "region"),
}


class WarehouseBusy(WarehouseError):
    """A writer held the warehouse file through every retry (answered as 503)."""


def _sql_str(path: Path) -> str:
    return "'" + str(path.resolve()).replace("'", "''") + "'"


class WarehouseReader:
    """Cached, lock-free reads of one run folder.

    Parameters
    ----------
    run : path
        Run folder with ``warehouse.duckdb`` and its lake.
    lock_retries : int, default 20
        Attempts to open the file read-only while a writer holds it. [-]
    lock_wait_s : float, default 0.05
        Pause between two attempts. [s]
    """

    def __init__(
        self,
        run: str | Path,
        subscribers: str | Path | None = None,
        lock_retries: int = 20,
        lock_wait_s: float = 0.05,
    ) -> None:
        self.layout = RunLayout(run)
        self.subscribers = Path(subscribers) if subscribers is not None else None
        self.lock_retries = lock_retries
        self.lock_wait_s = lock_wait_s
        self._lock = threading.Lock()
        self._inv_key: Any = None
        self._inv: dict[str, pd.DataFrame] = {}
        self._pred_key: Any = None
        self._latest: pd.DataFrame | None = None
        self._sorted: dict[str, tuple[Any, pd.DataFrame, Any]] = {}
        self._risk_sorted: dict[str, tuple[Any, Any]] = {}
        self._incidents: tuple[Any, pd.DataFrame] | None = None
        self._onu_region: dict[str, Any] = {}
        self._ev_files: tuple[Any, list[Path]] | None = None
        self._pon_region: dict[str, Any] = {}
        self._customer_row: dict[str, int] = {}

    # --- inventory --------------------------------------------------------------------------
    def _read_copy(self, db: Path, read: Any) -> Any:
        """``read(con)`` on a private copy of the DuckDB file ``db`` (and its WAL).

        A writer (``guardian operate``, ``guardian ingest``) must be able to open its file
        at any moment, and DuckDB refuses a writer while another process has the file
        open, even read-only. So the API never opens the file in place: it copies it and
        reads the copy (DuckDB replays a copied WAL). A copy taken in the middle of a
        checkpoint may be unreadable: retried ``lock_retries`` times, then 503.
        """
        import shutil
        import tempfile

        wal = db.with_name(db.name + ".wal")
        last: Exception | None = None
        for _ in range(max(1, self.lock_retries)):
            with tempfile.TemporaryDirectory(prefix="guardian-api-") as tmp:
                copy = Path(tmp) / db.name
                try:
                    shutil.copyfile(db, copy)
                    if wal.exists():
                        shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
                    con = duckdb.connect(str(copy), read_only=True)
                    try:
                        return read(con)
                    finally:
                        con.close()
                except (OSError, duckdb.Error) as exc:
                    last = exc
            time.sleep(self.lock_wait_s)
        raise WarehouseBusy(f"{db}: unreadable while being written, retry: {last}")

    def _file_key(self, path: Path | None) -> Any:
        if path is None or not path.exists():
            return None
        st = path.stat()
        return (st.st_mtime_ns, st.st_size)

    def _read_tables(self) -> dict[str, pd.DataFrame]:
        if not self.layout.warehouse.exists():
            return {}

        def read(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
            sql = "SELECT table_name FROM information_schema.tables"
            have = {r[0] for r in con.execute(sql).fetchall()}
            return {
                t: con.execute(f"SELECT * FROM {t}").df()
                for t in (*INVENTORY_TABLES, "service_orders")
                if t in have
            }

        return self._read_copy(self.layout.warehouse, read)

    def _from_subscribers(self) -> dict[str, pd.DataFrame]:
        """Inventory tables from a site's subscribers file (operate's warehouse has none)."""
        if self.subscribers is None or not self.subscribers.exists():
            return {}
        if self.subscribers.suffix == ".parquet":
            subs = pd.read_parquet(self.subscribers)
        else:
            subs = pd.read_csv(self.subscribers, dtype=str)
        if "onu_id" not in subs.columns:
            raise WarehouseError(f"{self.subscribers}: onu_id column missing")
        if "distance_m" in subs.columns:
            subs["distance_m"] = pd.to_numeric(subs["distance_m"], errors="coerce")
        pick = lambda cols: subs[[c for c in cols if c in subs.columns]]  # noqa: E731
        out = {"onus": pick(("onu_id", "pon_id", "olt_id", "region", "distance_m", "lat", "lon"))}
        if "customer_id" in subs.columns:
            out["customers"] = pick(("customer_id", "onu_id", "cpe_id", "region", "segment"))
        if "pon_id" in subs.columns:
            out["pons"] = pick(("pon_id", "olt_id", "region")).drop_duplicates("pon_id")
        if "olt_id" in subs.columns:
            out["olts"] = pick(("olt_id", "region")).drop_duplicates("olt_id")
        return out

    def inventory(self) -> dict[str, pd.DataFrame]:
        """``olts``, ``pons``, ``onus``, ``customers`` (and ``service_orders``) in memory.

        The warehouse's tables where it has them, else the site's subscribers file, else
        empty tables. ``onus`` and ``pons`` carry ``olt_id`` and ``region`` (the OLT's
        when the warehouse has OLTs). Re-read when either file changes.
        """
        key = (self._file_key(self.layout.warehouse), self._file_key(self.subscribers))
        with self._lock:
            if key == self._inv_key:
                return self._inv
            inv = self._from_subscribers() | self._read_tables()
            for t in INVENTORY_TABLES:
                if t not in inv:
                    inv[t] = pd.DataFrame(columns=_MIN_COLUMNS[t])
                for c in _MIN_COLUMNS[t]:
                    if c not in inv[t].columns:
                        inv[t][c] = None
            olt_region = inv["olts"].dropna(subset=["region"]).set_index("olt_id")["region"]
            pons = inv["pons"]
            pons["region"] = pons["olt_id"].map(olt_region).fillna(pons["region"])
            pon = pons.set_index("pon_id")
            onus = inv["onus"]
            onus["olt_id"] = onus["pon_id"].map(pon["olt_id"]).fillna(onus["olt_id"])
            onus["region"] = onus["pon_id"].map(pon["region"]).fillna(onus["region"])
            self._onu_region = dict(zip(onus["onu_id"], onus["region"], strict=True))
            self._pon_region = dict(zip(pons["pon_id"], pons["region"], strict=True))
            cust = inv["customers"]
            self._customer_row = dict(zip(cust["customer_id"], range(len(cust)), strict=True))
            self._inv, self._inv_key = inv, key
            return inv

    def known_regions(self) -> list[str] | None:
        """The regions of the inventory (OLTs, PONs, ONUs, customers), sorted; None when
        the inventory names no region (nothing to check a region against)."""
        inv = self.inventory()
        found = set()
        for t in INVENTORY_TABLES:
            if "region" in inv[t].columns:
                found |= {str(r) for r in inv[t]["region"].dropna().unique()}
        return sorted(found) or None

    def region_of_onu(self, onu_id: str) -> str | None:
        """Region of an ONU (its OLT's), None when unknown."""
        self.inventory()
        region = self._onu_region.get(onu_id)
        return None if region is None or pd.isna(region) else str(region)

    def region_of_pon(self, pon_id: str) -> str | None:
        """Region of a PON (its OLT's), None when unknown."""
        self.inventory()
        region = self._pon_region.get(pon_id)
        return None if region is None or pd.isna(region) else str(region)

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """One customer row, None when unknown."""
        cust = self.inventory()["customers"]
        pos = self._customer_row.get(customer_id)
        return None if pos is None else cust.iloc[pos].to_dict()

    # --- predictions and events: sorted in memory, looked up by binary search -------------
    def _sorted_frame(
        self, name: str, files: list[Path], sql: str, key_col: str
    ) -> tuple[pd.DataFrame, Any]:
        """A lake table sorted by its key, cached until its files change.

        Why in memory: a per-request Parquet scan costs ~100 ms at 50k ONUs (the key is
        not the file's sort order, so nothing can be skipped); a sorted copy answers one
        ONU's rows with two binary searches. The price is the table's size in memory.
        """
        key = tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
        with self._lock:
            hit = self._sorted.get(name)
            if hit is not None and hit[0] == key:
                return hit[1], hit[2]
        if files:
            con = duckdb.connect()
            try:
                listing = "[" + ", ".join(_sql_str(f) for f in files) + "]"
                frame = con.execute(sql.format(files=listing)).df()
            finally:
                con.close()
        else:
            frame = pd.DataFrame()
        keys = frame[key_col].to_numpy(dtype=str) if len(frame) else None
        with self._lock:
            self._sorted[name] = (key, frame, keys)
        return frame, keys

    @staticmethod
    def _rows_of(frame: pd.DataFrame, keys: Any, value: str) -> pd.DataFrame:
        if keys is None:
            return frame
        lo, hi = keys.searchsorted(value, "left"), keys.searchsorted(value, "right")
        return frame.iloc[lo:hi]

    def _predictions(self) -> tuple[pd.DataFrame, Any]:
        return self._sorted_frame(
            "predictions",
            sorted(self.layout.predictions.glob("*.parquet")),
            "SELECT * FROM read_parquet({files}, union_by_name=true) ORDER BY onu_id, ts DESC",
            "onu_id",
        )

    def latest_predictions(self) -> pd.DataFrame:
        """The newest prediction of every ONU with ``region``, ``olt_id``, ``pon_id``,
        ``customer_id`` joined (empty frame when the run has none). Cached per file set."""
        frame, _ = self._predictions()
        inv = self.inventory()
        key = (self._sorted["predictions"][0], self._inv_key)  # files' (path, mtime, size)
        with self._lock:
            if key == self._pred_key and self._latest is not None:
                return self._latest
        if frame.empty:
            latest = pd.DataFrame(
                columns=["onu_id", "ts", *RISK_WINDOWS.values(), "anomaly_score", "top_reasons"]
            )
        else:
            latest = frame.drop_duplicates("onu_id", keep="first")
        onus = inv["onus"][["onu_id", "pon_id", "olt_id", "region"]]
        cust = inv["customers"][["onu_id", "customer_id"]].drop_duplicates("onu_id")
        latest = latest.merge(onus, on="onu_id", how="left").merge(cust, on="onu_id", how="left")
        with self._lock:
            self._latest, self._pred_key = latest, key
        return latest

    def risk_queue(self, window: str) -> tuple[pd.DataFrame, Any, Any]:
        """Newest predictions sorted by the risk of ``window`` (riskiest first, then ONU id).

        Returns
        -------
        queue : DataFrame
            ``onu_id``, ``customer_id``, ``region``, ``olt_id``, ``pon_id``, ``ts``,
            ``risk``, ``anomaly_score``, ``top_reasons``.
        risk : ndarray
            The ``risk`` column (descending), for a binary search of a threshold. [-]
        region : ndarray
            The ``region`` column as strings, for a vectorized region filter.
        """
        latest = self.latest_predictions()
        col = RISK_WINDOWS[window]
        key = self._pred_key
        with self._lock:
            hit = self._risk_sorted.get(window)
            if hit is not None and hit[0] == key:
                return hit[1]
        cols = ["onu_id", "customer_id", "region", "olt_id", "pon_id", "ts", col,
                "anomaly_score", "top_reasons"]  # fmt: skip
        queue = latest[[c for c in cols if c in latest.columns]].copy()
        queue[col] = pd.to_numeric(queue[col], errors="coerce").fillna(-1.0)
        queue = queue.sort_values([col, "onu_id"], ascending=[False, True], kind="stable")
        queue = queue.rename(columns={col: "risk"}).reset_index(drop=True)
        value = (queue, queue["risk"].to_numpy(dtype=float),
                 queue["region"].astype(str).to_numpy())  # fmt: skip
        with self._lock:
            self._risk_sorted[window] = (key, value)
        return value

    def predictions_of(self, onu_id: str, limit: int) -> pd.DataFrame:
        """The newest ``limit`` predictions of one ONU, newest first."""
        frame, keys = self._predictions()
        rows = self._rows_of(frame, keys, onu_id).head(limit)
        cols = ["ts", *RISK_WINDOWS.values(), "anomaly_score", "model_version", "top_reasons"]
        return rows[[c for c in cols if c in rows.columns]]

    def events_of(self, entity_ids: list[str], limit: int) -> pd.DataFrame:
        """The newest ``limit`` SILVER events of the given entities, newest first."""
        frame, keys = self._sorted_frame(
            "events",
            self._silver_event_files(),
            "SELECT entity_id, ts, entity_type, type, severity, source, payload "
            "FROM read_parquet({files}) ORDER BY entity_id, ts DESC",
            "entity_id",
        )
        if frame.empty:
            return frame
        parts = [self._rows_of(frame, keys, e) for e in dict.fromkeys(entity_ids)]
        return pd.concat(parts).sort_values("ts", ascending=False).head(limit)

    def _silver_event_files(self) -> list[Path]:
        """The committed SILVER events files (the warehouse lists them), re-read when the
        warehouse changes: files a compaction replaced stay on disk for a while."""
        key = self._file_key(self.layout.warehouse)
        with self._lock:
            if self._ev_files is not None and self._ev_files[0] == key:
                return self._ev_files[1]
        if self.layout.warehouse.exists():
            files = self._read_copy(
                self.layout.warehouse, lambda con: silver_files(self.layout.root, "events", con)
            )
        else:
            files = silver_files(self.layout.root, "events")
        files = [f for f in files if f.exists()]
        with self._lock:
            self._ev_files = (key, files)
        return files

    # --- audit incidents ------------------------------------------------------------------------
    def open_incidents(self, audit_file: Path) -> pd.DataFrame:
        """Incidents whose latest row has no end, from an audit DuckDB file (empty if none).

        Read through a copy (:meth:`_read_copy`) when the file or its WAL changed:
        ``guardian operate`` holds its audit file for writing while it runs.

        Raises
        ------
        WarehouseBusy
            Every copy was unreadable (taken in the middle of a checkpoint); retry.
        """
        from guardian_lib.audit import latest_incidents

        if not audit_file.exists():
            return pd.DataFrame()
        wal = audit_file.with_name(audit_file.name + ".wal")
        key = (str(audit_file), self._file_key(audit_file), self._file_key(wal))
        with self._lock:
            hit = self._incidents
            if hit is not None and hit[0] == key:
                return hit[1]

        def read(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
            tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            if "incidents" not in tables:
                return pd.DataFrame()
            return con.execute("SELECT * FROM incidents").df()

        frame = self._read_copy(audit_file, read)
        if not frame.empty:
            latest = latest_incidents(frame)
            frame = latest[latest["end_at"].isna()].reset_index(drop=True)
        with self._lock:
            self._incidents = (key, frame)
        return frame
