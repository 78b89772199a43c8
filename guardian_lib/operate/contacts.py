"""Customer contacts for ``guardian operate``: a drop folder the helpdesk or CRM writes to.

A customer who calls (or opens a ticket, chats…) while their ONU is dark is evidence the
autopilot weighs (the observer's ``contacted_since_down``; ``guardian decide`` and the
backtest read the same ``CUSTOMER_CALL`` events). Live, they come from files the
helpdesk, the CRM or a small export job drops in a folder (``contacts:`` in the site
file), or that ``guardian api``'s ``POST /contacts`` writes there, read at the start of
every cycle:

* ``*.csv`` with a header line, or ``*.jsonl`` (one JSON object a line), with the
  columns of the ``contacts`` table of a source mapping (docs/ingest.md): ``ts``
  (ISO 8601; the site's ``contacts.timezone`` when it has no offset) and ``customer_id``
  required, ``channel``, ``reason`` and ``contact_id`` (the CRM's own id) optional; other
  columns are ignored. Write each file under a name starting with ``.`` or ending in
  ``.part`` and rename it when complete: such names are never read.
* A contact names its customer; its ONU comes from the fleet (the subscribers file's
  ``customer_id``). A customer the fleet does not list is reported (``unknown_customers``),
  never guessed.
* Contacts are de-duplicated (on ``contact_id``, else customer, time, channel and reason),
  also across files and restarts.
* A contact reaches the cycle's tick as a ``CUSTOMER_CALL`` event at its own time: a late
  one (dated before the previous cycle) counts from the polling step it belongs to, as in
  ``guardian decide``, while it is younger than ``max_age_h``; older ones are reported
  (``stale``). One dated after the cycle (clocks differ) waits for the cycle that reaches
  its time, ``max_future_min`` at most.
* Every accepted contact is also appended to the warehouse's RAW events (source
  ``contacts``), so ``guardian decide`` on the same warehouse sees what operate saw.
* A file read is moved to ``<folder>/done/``. A file with any bad row — or too large, not
  a regular file, of another kind — is moved whole to ``<folder>/rejected/`` with
  ``<name>.error.txt`` beside it, naming the file, the line and the field; nothing of it
  is used and the loop goes on. Nothing dropped is ever deleted.

The files are treated as hostile: size-limited before reading, symbolic links refused,
every value checked (length, control characters, a real ISO 8601 time).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
from pydantic import Field, field_validator

from guardian_lib.errors import GuardianError
from guardian_lib.loop.tick import EventRow
from guardian_lib.operate.metrics import log_json
from guardian_lib.safe_yaml import StrictModel

__all__ = [
    "ContactSettings", "ContactIntake", "ContactFileError", "read_contact_file",
    "contact_intake", "contact_outcomes",
]  # fmt: skip

#: Columns a contact file must have, and those it may have.
REQUIRED = ("ts", "customer_id")
OPTIONAL = ("channel", "reason", "contact_id")
_MAX_ID = 128  # characters of an id [-]
_MAX_TEXT = 500  # characters of a channel or reason [-]
_MAX_ROWS = 200_000  # rows of one file [-]
_MAX_ERRORS = 20  # errors listed per rejected file [-]
_KEEP_SEEN_H = 7 * 24  # how long past max_age a contact's key is remembered [h]
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ContactFileError(GuardianError):
    """A contact file that cannot be used (names the file, the line and the field)."""


class ContactSettings(StrictModel):
    """``contacts:`` of the site file: the drop folder of the helpdesk's contacts."""

    folder: str = Field("contacts", description="Drop folder (relative to the site file).")
    timezone: str = Field("UTC", description="Zone of times written without an offset.")
    max_age_h: float = Field(
        24.0, gt=0, le=24 * 14, description="Older contacts are reported, not used. [h]"
    )
    max_future_min: float = Field(
        15.0, ge=0, le=24 * 60, description="A later time is a bad row (clock error). [min]"
    )
    max_file_bytes: int = Field(
        10_000_000, ge=1_000, le=1_000_000_000, description="Larger files are rejected. [B]"
    )
    max_files_per_cycle: int = Field(100, ge=1, le=10_000, description="The rest next cycle.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v


@dataclass(frozen=True)
class Contact:
    """One checked contact (``ts``: an aware UTC datetime)."""

    ts: datetime
    customer_id: str
    channel: str | None
    reason: str | None
    contact_id: str | None

    @property
    def key(self) -> str:
        """The de-duplication key."""
        if self.contact_id:
            return f"id:{self.contact_id}"
        return f"c:{self.customer_id}|{self.ts.isoformat()}|{self.channel}|{self.reason}"


def _text(value: Any, field: str, limit: int, required: bool) -> str | None:
    """A checked string cell (None when blank and allowed); ValueError says why not."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValueError(f"{field}: a value is required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"{field}: expected text, got {type(value).__name__}")
    s = str(value).strip()
    if len(s) > limit:
        raise ValueError(f"{field}: longer than {limit} characters")
    if _CONTROL.search(s):
        raise ValueError(f"{field}: control characters are not allowed")
    return s


def _time(value: Any, zone: ZoneInfo) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("ts: an ISO 8601 time is required (e.g. 2026-03-01T14:05:00-03:00)")
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"ts: {value.strip()[:40]!r} is not an ISO 8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=zone)
    return t.astimezone(UTC)


def _records(name: str, text: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, record) pairs of a CSV or JSONL text; ContactFileError for its shape."""
    out: list[tuple[int, dict[str, Any]]] = []
    if name.lower().endswith(".jsonl"):
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                raise ContactFileError(f"{name}:{i}: not a JSON object: {exc}") from None
            if not isinstance(rec, dict):
                raise ContactFileError(
                    f"{name}:{i}: expected a JSON object, got {type(rec).__name__}"
                )
            out.append((i, rec))
            if len(out) > _MAX_ROWS:
                raise ContactFileError(f"{name}: more than {_MAX_ROWS} rows; split the file")
        return out
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey="\0extra")
    try:
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ContactFileError(
                f"{name}:1: header: missing column(s) {missing}; expected {list(REQUIRED)} "
                f"and optionally {list(OPTIONAL)}"
            )
        dup = sorted({c for c in header if header.count(c) > 1})
        if dup:
            raise ContactFileError(f"{name}:1: header: repeated column(s) {dup}")
        for rec in reader:
            if "\0extra" in rec:
                raise ContactFileError(f"{name}:{reader.line_num}: more fields than the header")
            out.append((reader.line_num, rec))
            if len(out) > _MAX_ROWS:
                raise ContactFileError(f"{name}: more than {_MAX_ROWS} rows; split the file")
    except csv.Error as exc:
        raise ContactFileError(f"{name}:{reader.line_num}: not a valid CSV line: {exc}") from None
    return out


def read_contact_file(
    name: str, data: bytes, zone: ZoneInfo, latest: pd.Timestamp
) -> list[Contact]:
    """The contacts of one file's bytes, every row checked.

    Parameters
    ----------
    name : str
        The file's name (errors name it).
    data : bytes
        UTF-8 (a byte-order mark is allowed).
    zone : ZoneInfo
        Of times without an offset.
    latest : pandas.Timestamp
        The latest time a contact may have (the cycle plus ``max_future_min``).

    Raises
    ------
    ContactFileError
        Listing every bad row (``name:line: field: problem``, the first 20).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ContactFileError(f"{name}: not UTF-8 text (byte {exc.start})") from None
    if "\x00" in text:
        raise ContactFileError(f"{name}: contains NUL bytes: not a text file")
    contacts, errors = [], []
    for line, rec in _records(name, text):
        try:
            ts = _time(rec.get("ts"), zone)
            if ts > latest:
                raise ValueError(f"ts: {ts.isoformat()} is later than {latest.isoformat()}")
            contacts.append(
                Contact(ts, str(_text(rec.get("customer_id"), "customer_id", _MAX_ID, True)),
                        _text(rec.get("channel"), "channel", _MAX_TEXT, False),
                        _text(rec.get("reason"), "reason", _MAX_TEXT, False),
                        _text(rec.get("contact_id"), "contact_id", _MAX_ID, False))
            )  # fmt: skip
        except ValueError as exc:
            errors.append(f"{name}:{line}: {exc}")
    if errors:
        more = f"\n… and {len(errors) - _MAX_ERRORS} more" if len(errors) > _MAX_ERRORS else ""
        raise ContactFileError("\n".join(errors[:_MAX_ERRORS]) + more)
    return contacts


def _aside(path: Path, dest_dir: Path) -> Path:
    """Move ``path`` into ``dest_dir`` under its name (a suffix when taken); never deletes."""
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / path.name
    if dest.exists() or dest.is_symlink():
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S")
        dest = dest_dir / f"{path.stem}-{stamp}-{uuid.uuid4().hex[:6]}{path.suffix}"
    os.replace(path, dest)
    return dest


class ContactIntake:
    """Reads the contacts drop folder each cycle (see the module's description).

    Parameters
    ----------
    settings : ContactSettings
    folder : path
        The resolved drop folder (created when missing).
    store : StateStore
        Keeps the keys seen and the contacts not yet due (blob ``contacts``).
    warehouse : path or None
        Run folder whose RAW events receive the accepted contacts (None: not written).
    grid_s : int, default 300
        SILVER's grid, for the merge after a write. [s]
    """

    def __init__(
        self,
        settings: ContactSettings,
        folder: str | Path,
        store: Any,
        warehouse: str | Path | None = None,
        grid_s: int = 300,
    ) -> None:
        self.settings = settings
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.zone = ZoneInfo(settings.timezone)
        self.store = store
        self.warehouse = None if warehouse is None else Path(warehouse)
        self.grid_s = int(grid_s)
        saved = store.get("contacts") or {}
        self.seen: dict[str, float] = dict(saved.get("seen", {}))  # key → contact time [s]
        self.pending: list[Contact] = list(saved.get("pending", []))
        self._fleet_map: tuple[pd.DataFrame, dict[str, str]] | None = None

    def state_dict(self) -> dict[str, Any]:
        """What a restart needs: the keys seen and the contacts not yet due."""
        return {"seen": dict(self.seen), "pending": list(self.pending)}

    # --- files ----------------------------------------------------------------------------
    def _files(self) -> list[os.DirEntry]:
        """The files to read this cycle, oldest first (at most ``max_files_per_cycle``)."""
        entries = []
        with os.scandir(self.folder) as it:
            for e in it:
                if e.name.startswith(".") or e.name.endswith((".part", ".tmp")):
                    continue  # being written
                try:
                    if e.is_dir(follow_symlinks=False):
                        continue  # done/, rejected/, the operator's own
                    entries.append((e.stat(follow_symlinks=False).st_mtime, e.name, e))
                except OSError:  # gone meanwhile
                    continue
        entries.sort(key=lambda x: (x[0], x[1]))
        return [e for _, _, e in entries[: self.settings.max_files_per_cycle]]

    def _read(self, entry: os.DirEntry, latest: pd.Timestamp) -> list[Contact]:
        name = entry.name
        if entry.is_symlink():
            raise ContactFileError(f"{name}: a symbolic link: refused (drop the file itself)")
        if not name.lower().endswith((".csv", ".jsonl")):
            raise ContactFileError(f"{name}: not a .csv or .jsonl file")
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(entry.path, flags)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ContactFileError(f"{name}: not a regular file")
            limit = self.settings.max_file_bytes
            if st.st_size > limit:
                raise ContactFileError(f"{name}: {st.st_size} bytes, more than {limit}")
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise ContactFileError(f"{name}: more than {limit} bytes")
        return read_contact_file(name, data, self.zone, latest)

    def _reject(self, entry: os.DirEntry, error: str) -> str:
        path = Path(entry.path)
        try:
            dest = _aside(path, self.folder / "rejected")
            note = dest.with_name(dest.name + ".error.txt")
            note.write_text(error + "\n", encoding="utf-8")
        except OSError as exc:  # cannot move it: read again (and refused) next cycle
            log_json("contacts", file=entry.name, error=error[:2000], move_failed=str(exc))
            return entry.name
        log_json("contacts", file=entry.name, rejected=str(dest), error=error[:2000])
        return entry.name

    # --- a cycle --------------------------------------------------------------------------
    def cycle(
        self, ts: pd.Timestamp, prev_ts: pd.Timestamp | None, fleet_table: pd.DataFrame
    ) -> tuple[list[EventRow], dict[str, Any]]:
        """Read new files, and the contacts due at cycle time ``ts`` as tick events.

        Parameters
        ----------
        ts : pandas.Timestamp
            The cycle's time (UTC).
        prev_ts : pandas.Timestamp or None
            The previous cycle's time (contacts dated at or before it are late).
        fleet_table : pandas.DataFrame
            The fleet (``onu_id``, ``customer_id``).

        Returns
        -------
        events : list of EventRow
            ``CUSTOMER_CALL`` on the customer, payload with its ``onu_id``.
        figures : dict
            ``files``, ``rejected`` (names), ``new``, ``duplicates``, ``fed``, ``late``,
            ``stale``, ``unknown_customers``, ``pending``.
        """
        s = self.settings
        latest = ts + pd.Timedelta(minutes=s.max_future_min)
        fig: dict[str, Any] = {"files": 0, "rejected": [], "new": 0, "duplicates": 0}
        onu_of = self._onu_of(fleet_table)
        fresh: list[Contact] = []
        read: list[os.DirEntry] = []
        keys: set[str] = set()
        for entry in self._files():
            try:
                contacts = self._read(entry, latest)
            except (ContactFileError, OSError) as exc:
                fig["rejected"].append(self._reject(entry, str(exc)))
                continue
            read.append(entry)
            for c in contacts:
                if c.key in self.seen or c.key in keys:
                    fig["duplicates"] += 1
                    continue
                keys.add(c.key)
                fresh.append(c)
        fig["files"], fig["new"] = len(read), len(fresh)
        if fresh:
            self._to_warehouse(fresh, onu_of)  # may fail: nothing is recorded, files stay
            self.seen.update({c.key: c.ts.timestamp() for c in fresh})
            self.pending.extend(fresh)
        if read or fresh:
            # what was read is kept before its files move: a crash between the two reads
            # them again and finds every contact seen
            self.store.put("contacts", self.state_dict())
        for entry in read:
            try:
                _aside(Path(entry.path), self.folder / "done")
            except OSError as exc:
                log_json("contacts", file=entry.name, move_failed=str(exc))
        events = self._due(ts, prev_ts, onu_of, fig)
        self._prune(ts)
        if fig["rejected"] or fig["unknown_customers"] or fig["stale"]:
            log_json("contacts", **{k: v for k, v in fig.items() if k != "unknown_ids"})
        fig.pop("unknown_ids", None)
        return events, fig

    def _onu_of(self, fleet_table: pd.DataFrame) -> dict[str, str]:
        """Customer → ONU of the fleet (its first ONU), built once per fleet table."""
        if self._fleet_map is not None and self._fleet_map[0] is fleet_table:
            return self._fleet_map[1]
        out: dict[str, str] = {}
        if "customer_id" in fleet_table:
            t = fleet_table.dropna(subset=["customer_id"]).drop_duplicates("customer_id")
            cust = t["customer_id"].astype(str).to_numpy(dtype=object).tolist()
            onus = t["onu_id"].astype(str).to_numpy(dtype=object).tolist()
            out = dict(zip(cust, onus, strict=True))
        self._fleet_map = (fleet_table, out)
        return out

    def _due(
        self, ts: pd.Timestamp, prev_ts: pd.Timestamp | None, onu_of: dict[str, str], fig: dict
    ) -> list[EventRow]:
        """Pending contacts dated at or before ``ts`` as events (stale ones reported)."""
        oldest = ts - pd.Timedelta(hours=self.settings.max_age_h)
        due = [c for c in self.pending if c.ts <= ts]
        self.pending = [c for c in self.pending if c.ts > ts]
        events, unknown = [], []
        fig.update(fed=0, late=0, stale=0, unknown_customers=0, pending=len(self.pending))
        for c in sorted(due, key=lambda c: (c.ts, c.customer_id)):
            if c.ts < oldest:
                fig["stale"] += 1
                continue
            onu = onu_of.get(c.customer_id)
            if onu is None:
                unknown.append(c.customer_id)
                continue
            fig["fed"] += 1
            fig["late"] += int(prev_ts is not None and c.ts <= prev_ts)
            events.append(EventRow(pd.Timestamp(c.ts), c.customer_id, "customer", "CUSTOMER_CALL", "info",
                                   json.dumps(self._payload(c, onu), ensure_ascii=False)))  # fmt: skip
        fig["unknown_customers"] = len(unknown)
        if unknown:
            fig["unknown_ids"] = sorted(set(unknown))[:10]
            log_json("contacts", unknown_customers=len(unknown), examples=fig["unknown_ids"])
        return events

    @staticmethod
    def _payload(c: Contact, onu: str | None) -> dict[str, Any]:
        p: dict[str, Any] = {"channel": c.channel, "reason": c.reason}
        if c.contact_id:
            p["contact_id"] = c.contact_id
        if onu is not None:
            p["onu_id"] = onu
        return p

    def _prune(self, ts: pd.Timestamp) -> None:
        keep_s = ts.value / 1e9 - (self.settings.max_age_h + _KEEP_SEEN_H) * 3600
        if self.seen and min(self.seen.values()) < keep_s:
            self.seen = {k: v for k, v in self.seen.items() if v >= keep_s}

    def _to_warehouse(self, contacts: list[Contact], onu_of: dict[str, str]) -> None:
        """Append the contacts to RAW events and merge them into SILVER."""
        if self.warehouse is None:
            return
        from guardian_lib.silver import update_silver
        from guardian_lib.snmp.poller import append_raw_events

        now = pd.Timestamp.now(tz="UTC")
        frame = pd.DataFrame({
            "ts": pd.to_datetime([c.ts for c in contacts], utc=True),
            "entity_id": [c.customer_id for c in contacts],
            "entity_type": "customer", "type": "CUSTOMER_CALL", "severity": "info",
            "source": "contacts",
            "payload": [json.dumps(self._payload(c, onu_of.get(c.customer_id)),
                                   ensure_ascii=False) for c in contacts],
            "received_at": now,
        })  # fmt: skip
        append_raw_events(self.warehouse, frame, "contacts")
        update_silver(self.warehouse, grid_s=self.grid_s)


def contact_outcomes(figures: dict[str, Any] | None) -> dict[str, int]:
    """A cycle's contact figures as counts by outcome (``fed``, ``late``, ``duplicates``,
    ``stale``, ``unknown_customers``, ``files_rejected``); empty without an intake."""
    if not figures:
        return {}
    out = {k: int(figures[k]) for k in ("fed", "late", "duplicates", "stale", "unknown_customers")}
    out["files_rejected"] = len(figures["rejected"])
    return out


def contact_intake(site: Any, store: Any, warehouse: Path | None) -> ContactIntake | None:
    """The site's contact intake (None without a ``contacts:`` section)."""
    if site.contacts is None:
        return None
    from guardian_lib.operate.steps import silver_grid_seconds

    grid = silver_grid_seconds(site)  # the network's polling interval (a clock scales it)
    return ContactIntake(site.contacts, site.resolve(site.contacts.folder), store, warehouse, grid)
