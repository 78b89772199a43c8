"""``guardian ingest --run W --source DIR``: a warehouse from an operator's own tables.

:func:`import_source` reads every table of a source mapping
(:mod:`guardian_lib.owndata.config`), parses and validates all of them (nothing is
written until every table is good), then, holding the run's ingest lock, writes them
where the warehouse reads them and rebuilds SILVER and the warehouse
(:func:`guardian_lib.ingest.ingest_locked`):

* telemetry, events and contacts are added to RAW as
  ``lake/raw/<kind>/date=<today>/own-<table>-<data digest>-<mapping digest>.parquet``: the
  same data imported twice is stored once; the same data imported with a corrected
  mapping replaces what the old mapping made of it;
* inventory tables, tickets and CPE state replace the run's previous copy
  (``inventory/<table>.parquet``, ``ops/service_orders.parquet``,
  ``ops/cpe_state.parquet``): an export of them is a snapshot.

If anything fails after the first write (the SILVER rebuild, a full disk), every file
written is removed and every file replaced is put back: a failed import leaves the run
as it was. ``source.json`` records what each import brought.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib.errors import IngestError
from guardian_lib.ingest import IngestSummary, ingest_locked, run_lock
from guardian_lib.layout import RunLayout
from guardian_lib.mapping import ColumnMapping, map_frame
from guardian_lib.owndata.config import SourceMapping, TableSource, load_source_mapping
from guardian_lib.owndata.read import Piece, read_pieces
from guardian_lib.owndata.tables import INVENTORY_TABLES, TABLES, convert, finish

__all__ = ["ImportSummary", "TableImport", "import_source", "APPEND_TABLES"]

#: Tables added to RAW (append-only, deduplicated by content); the others are replaced.
APPEND_TABLES = {"telemetry": "telemetry", "events": "events", "contacts": "events"}
#: Where a replaced (snapshot) table lands, relative to the run.
_SNAPSHOT_OPS = {"tickets": "service_orders", "cpe_state": "cpe_state"}


@dataclass(frozen=True)
class TableImport:
    """What one table of an import did.

    Attributes
    ----------
    rows : int
        Rows read and kept (after rows dropped on purpose by ``values:``).
    status : str
        ``added``, ``already present``, ``replaced`` or ``unchanged``.
    destination : str
        Where the rows landed, relative to the run.
    """

    rows: int
    status: str
    destination: str


@dataclass(frozen=True)
class ImportSummary:
    """What :func:`import_source` did: each table's import and the warehouse rebuild."""

    run: Path
    tables: dict[str, TableImport]
    ingest: IngestSummary


@dataclass
class _Prepared:
    """A table parsed and validated, ready to be written."""

    name: str
    table: pa.Table
    digest: str  # of the data and the mapping of this table
    data_digest: str
    map_digest: str
    rows: int = 0


@dataclass
class _Writes:
    """Files put in place and files moved aside, to undo a failed import."""

    run: Path
    backup: Path
    added: list[Path] = field(default_factory=list)
    moved: list[tuple[Path, Path]] = field(default_factory=list)  # (original, backup)

    def put(self, table: pa.Table, dest: Path) -> None:
        """Write ``table`` to ``dest`` atomically (a replaced file is kept aside first)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        try:
            pq.write_table(table, tmp, compression="zstd")
            if dest.exists():
                self.set_aside(dest)
            os.replace(tmp, dest)
            self.added.append(dest)
        finally:
            tmp.unlink(missing_ok=True)

    def set_aside(self, path: Path) -> None:
        """Move ``path`` into the backup folder (restored by :meth:`undo`)."""
        aside = self.backup / path.relative_to(self.run)
        aside.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, aside)
        self.moved.append((path, aside))

    def undo(self) -> None:
        """Remove what was written, put back what was moved aside."""
        for path in reversed(self.added):
            path.unlink(missing_ok=True)
        for original, aside in reversed(self.moved):
            original.parent.mkdir(parents=True, exist_ok=True)
            os.replace(aside, original)
        shutil.rmtree(self.backup, ignore_errors=True)

    def done(self) -> None:
        """Drop the backups."""
        shutil.rmtree(self.backup, ignore_errors=True)


def _short(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


#: Table options added after mappings were in use (2026-12-06).
_LATER_OPTIONS = ("csv_encoding", "sheet")


def _map_digest(mapping: SourceMapping, table: TableSource) -> str:
    # Without these options at their defaults: mappings written before the options keep
    # their digest (their imports stay "already present").
    fields = TableSource.model_fields
    spec = table.model_dump_json(
        exclude={k for k in _LATER_OPTIONS if getattr(table, k) == fields[k].default}
    )
    return _short(f"{mapping.timezone}|{mapping.source}|{spec}")


def _check_keys(name: str, pieces: list[tuple[Piece, pd.DataFrame]], table: TableSource) -> None:
    """Refuse a key seen twice (in one file or across the files of a glob), both rows named."""
    key = list(TABLES[name].key)
    if not key or not pieces:
        return
    keys = pd.concat(
        [df[key].assign(_piece=i, _row=df.index) for i, (_, df) in enumerate(pieces)],
        ignore_index=True,
    )
    dup = keys.duplicated(subset=key, keep="first").to_numpy()
    if not dup.any():
        return
    second = keys.iloc[int(dup.argmax())]
    same = (keys[key] == second[key]).all(axis=1).to_numpy()
    first = keys.iloc[int(same.argmax())]

    def where(row: pd.Series) -> str:
        return pieces[int(row["_piece"])][0].origin.row(int(row["_row"]))

    spec = table.spec(key[0])
    shown = second[key[0]] if len(key) == 1 else tuple(second[key])
    raise IngestError(
        f"{where(second)}: column {spec.column if spec else key[0]!r}: duplicate key "
        f"{shown!r} (first at {where(first)}); {'/'.join(key)} must be unique in {name}"
    )


def _prepare(
    name: str,
    mapping: SourceMapping,
    table: TableSource,
    base: Path,
    label: str,
    inventory: dict[str, pd.DataFrame],
) -> _Prepared:
    pieces = read_pieces(name, table, base, label)
    map_digest = _map_digest(mapping, table)
    data_digest = _short("|".join(p.digest for p in pieces))
    if name == "telemetry":
        cmap = ColumnMapping(
            columns=table.columns,
            source=mapping.source,
            csv_delimiter=table.csv_delimiter,
            csv_encoding=table.csv_encoding,
            sheet=table.sheet,
            decimal=table.decimal,
        )
        parts = [
            map_frame(p.path or Path(p.origin.label), p.frame, cmap, p.origin, mapping.timezone)
            for p in pieces
        ]
        out = pa.concat_tables(parts)
    else:
        converted = []
        for p in pieces:
            df = convert(name, p.origin, p.frame, table, mapping.timezone)
            if name in INVENTORY_TABLES and len(df) == 0:
                raise IngestError(f"{p.origin.label}: no data rows ({name} cannot be empty)")
            converted.append((p, df))
        _check_keys(name, converted, table)
        frame = pd.concat([df for _, df in converted]) if converted else pd.DataFrame()
        out = finish(name, frame, mapping.source, inventory)
        if name in INVENTORY_TABLES:
            inventory[name] = out.to_pandas()
    return _Prepared(
        name, out, f"{data_digest}-{map_digest}", data_digest, map_digest, out.num_rows
    )


def _refuse_simulated(run: Path) -> None:
    layout = RunLayout(run)
    if layout.manifest.exists():
        raise IngestError(
            f"{run}: holds a simulated run ({layout.manifest.name}); --source builds a "
            "warehouse from your own data only: choose a new --run folder"
        )


def _read_manifest(run: Path) -> dict:
    path = RunLayout(run).source_manifest
    if not path.exists():
        return {"tables": {}}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise IngestError(f"{path}: unreadable ({exc}); remove it to import again") from None
    return (
        data if isinstance(data, dict) and isinstance(data.get("tables"), dict) else {"tables": {}}
    )


def _write(run: Path, prep: _Prepared, writes: _Writes, previous: dict) -> TableImport:
    layout = RunLayout(run)
    if prep.name in APPEND_TABLES:
        raw = layout.raw(APPEND_TABLES[prep.name])
        stem = f"own-{prep.name}-{prep.data_digest}"
        existing = sorted(raw.glob(f"date=*/{stem}-*.parquet"))
        current = [p for p in existing if p.name == f"{stem}-{prep.map_digest}.parquet"]
        if current:
            return TableImport(prep.rows, "already present", str(current[0].relative_to(run)))
        for old in existing:  # the same data under an older mapping: replaced
            writes.set_aside(old)
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        dest = raw / f"date={today}" / f"{stem}-{prep.map_digest}.parquet"
        writes.put(prep.table, dest)
        return TableImport(prep.rows, "added", str(dest.relative_to(run)))
    if prep.name in INVENTORY_TABLES:
        dest = layout.inventory(prep.name)
    else:
        dest = layout.ops(_SNAPSHOT_OPS[prep.name])
    rel = str(dest.relative_to(run))
    if dest.exists() and previous.get(prep.name, {}).get("digest") == prep.digest:
        return TableImport(prep.rows, "unchanged", rel)
    status = "replaced" if dest.exists() else "added"
    writes.put(prep.table, dest)
    return TableImport(prep.rows, status, rel)


def import_source(
    run: Path | str,
    mapping_path: Path | str,
    source_dir: Path | str | None = None,
    lock_wait_s: float = 30.0,
    progress: bool = False,
    grid_s: int | None = None,
) -> ImportSummary:
    """Import every table of a source mapping into the warehouse ``run``.

    Parameters
    ----------
    run : path
        The warehouse folder: new, or one made by an earlier import (a simulated run is
        refused: its ground truth must not mix with an operator's data).
    mapping_path : path
        The source folder's ``mapping.yaml``.
    source_dir : path, optional
        Folder the mapping's ``file`` entries are relative to (default: the mapping's).
    lock_wait_s : float, default 30
        How long to wait for another ingest of the same run to finish. [s]
    progress : bool, default False
        Show a progress bar while SILVER is rebuilt.
    grid_s : int, optional
        SILVER's grid (``--grid-seconds``): re-snaps SILVER when it differs from the
        warehouse's; default the warehouse's, else inferred from the telemetry. [s]

    Returns
    -------
    ImportSummary

    Raises
    ------
    ConfigError
        The mapping is invalid (file and field named).
    IngestError
        A table cannot be read or a row is bad (file and line, or query and row, and
        column named); nothing was written.
    """
    run, mapping_path = Path(run), Path(mapping_path)
    mapping = load_source_mapping(mapping_path)
    base = Path(source_dir) if source_dir is not None else mapping_path.parent
    if not base.is_dir():
        raise IngestError(f"{base}: source folder not found")
    _refuse_simulated(run)
    # 1. Read, parse and validate every table: nothing is written before all are good.
    inventory: dict[str, pd.DataFrame] = {}
    prepared = [
        _prepare(name, mapping, mapping.tables[name], base, str(mapping_path), inventory)
        for name in TABLES
        if name in mapping.tables
    ]
    # 2. Write them and rebuild the warehouse, all or nothing.
    fresh = not run.exists()  # a failed first import leaves no folder behind
    with run_lock(run, lock_wait_s):
        _refuse_simulated(run)
        manifest = _read_manifest(run)
        writes = _Writes(run, run / f".import-backup-{os.getpid()}")
        try:
            done = {p.name: _write(run, p, writes, manifest["tables"]) for p in prepared}
            summary = ingest_locked(run, grid_s, progress=progress, regrid=grid_s is not None)
            for p in prepared:
                manifest["tables"][p.name] = {
                    "digest": p.digest,
                    "rows": p.rows,
                    "destination": done[p.name].destination,
                    "imported_at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
            manifest["source"] = mapping.source
            manifest["mapping"] = str(mapping_path.resolve())
            path = RunLayout(run).source_manifest
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
            os.replace(tmp, path)
        except BaseException:
            writes.undo()
            if fresh:
                shutil.rmtree(run, ignore_errors=True)
            raise
        writes.done()
    return ImportSummary(run, done, summary)
