"""Sharing one SQLite store file between ACS processes (``guardian acs serve --workers``).

:class:`SharedStoreMixin` gives :class:`~acs_emulator.cwmp.store.DeviceStore` its
``shared=True`` behaviour: every commit appends the ids it wrote to the ``changes``
table (:meth:`SharedStoreMixin._log_changes`, inside the commit's transaction), and
:meth:`SharedStoreMixin.sync` applies what sibling processes committed since the
last call. :class:`Sealer` seals a task's secret values for the siblings.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from typing import Any

__all__ = ["NEWER_DEVICE_WINS", "Sealer", "SharedStoreMixin"]

log = logging.getLogger("acs_emulator.cwmp.store")

#: A device row written by several processes: the document of the later Inform wins
#: (a process may commit an older session's document after a sibling committed the
#: CPE's next one; the loser reloads the row at its next sync).
NEWER_DEVICE_WINS = (
    "INSERT INTO devices (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET "
    "doc = excluded.doc WHERE coalesce(json_extract(excluded.doc, '$._lastInform'), '') "
    ">= coalesce(json_extract(devices.doc, '$._lastInform'), '')"
)


class SharedStoreMixin:
    """Change log and :meth:`sync` of a store shared by several processes.

    Expects the attributes and methods of :class:`~acs_emulator.cwmp.store.DeviceStore`
    (``_db``, ``_lock``, ``_pending``, the document dicts, ``flush``, ...).
    """

    # Set by DeviceStore.__init__ (declared for readers and type checkers).
    shared: bool
    _db: Any
    _lock: Any
    _seen: int
    _data_version: int
    _writer: str
    _flushes: int
    _stale: set[str]
    _pending: dict[tuple[str, str], Any]
    devices: dict[str, dict[str, Any]]
    tasks: dict[str, dict[str, Any]]
    faults: dict[str, dict[str, Any]]
    admin: dict[str, dict[str, dict[str, Any]]]
    _device_tasks: dict[str, dict[str, dict[str, Any]]]
    on_admin_change: Any
    CHANGE_LOG_KEEP_S: float

    def sync(self) -> int:
        """Apply the changes other processes committed since the last call.

        Tasks, faults and admin rows are reloaded at once, devices marked for a lazy
        reload; a row this process has queued but not yet written keeps its newer
        local version. Returns how many changes were applied. Does nothing unless
        ``shared``.
        """
        if not self.shared:
            return 0
        with self._lock:
            # Changes only when another connection committed: most calls stop here.
            version = self._db.execute("PRAGMA data_version").fetchone()[0]
            if version == self._data_version:
                return 0
            self._data_version = version
            rows = self._db.execute(
                "SELECT seq, writer, tbl, id FROM changes WHERE seq > ? ORDER BY seq",
                (self._seen,),
            ).fetchall()
            low = (
                self._db.execute("SELECT min(seq) FROM changes").fetchone()[0]
                if rows and rows[0][0] > self._seen + 1
                else None
            )
        if not rows:
            return 0
        if low is not None and low > self._seen + 1 and self._seen:
            # The log was pruned past our position: start again from the file.
            log.warning("store: change log pruned past this process's position; reloading")
            self.flush()
            self._load_all()
            return len(rows)
        tables = self._tables()
        applied = 0
        admin_changed: set[str] = set()
        for seq, writer, table, row_id in rows:
            self._seen = seq
            if writer == self._writer or (table, row_id) in self._pending:
                continue
            applied += 1
            if table == "devices":
                self._stale.add(row_id)
                continue
            target = tables.get(table)
            if target is None:
                continue
            self._reload_row(table, target, row_id)
            if table in self.admin:
                admin_changed.add(table)
        if admin_changed and self.on_admin_change is not None:
            for c in sorted(admin_changed):
                self.on_admin_change(c)
        return applied

    def _reload_row(self, table: str, target: dict[str, Any], row_id: str) -> None:
        with self._lock:
            row = self._db.execute(f"SELECT doc FROM {table} WHERE id = ?", (row_id,)).fetchone()
        if table == "tasks":
            self._forget(self.tasks.get(row_id))
        if row is None:
            target.pop(row_id, None)
            return
        doc = self._decode(table, row[0])
        target[row_id] = doc
        if table == "tasks":
            self._device_tasks.setdefault(doc["device"], {})[row_id] = doc
            if doc.get("_secretsRedacted") and f"{doc['device']}:task_{row_id}" not in self.faults:
                # Its secrets could not be opened here: never send it with blanks.
                self.fault_task(
                    doc,
                    "store.secret_lost",
                    "the secret values of this task could not be read by this ACS process; "
                    "delete it and queue it again",
                    {},
                )

    def _fresh_devices(self) -> None:
        """Reload every device another process changed (before a query)."""
        for device_id in list(self._stale):
            self._fresh_device(device_id)

    def _fresh_device(self, device_id: str) -> None:
        self._stale.discard(device_id)
        self._reload_row("devices", self.devices, device_id)

    def _log_changes(self, pending: dict[tuple[str, str], Any]) -> None:
        """Append the written ids to the change log (inside the flush transaction)."""
        now = time.time()
        self._db.executemany(
            "INSERT INTO changes (writer, tbl, id, at) VALUES (?, ?, ?, ?)",
            [(self._writer, table, row_id, now) for table, row_id in pending],
        )
        self._flushes += 1
        if self._flushes % 200 == 0:
            self._db.execute("DELETE FROM changes WHERE at < ?", (now - self.CHANGE_LOG_KEEP_S,))


class Sealer:
    """AES-GCM sealing of a task's secret values for sibling processes (key in memory)."""

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(key)

    def seal(self, values: Any) -> str:
        nonce = os.urandom(12)
        data = json.dumps(values, separators=(",", ":")).encode()
        return base64.b64encode(nonce + self._aead.encrypt(nonce, data, b"task")).decode()

    def open(self, sealed: Any) -> Any:
        """The sealed values, or ``None`` if they cannot be opened (another key)."""
        from cryptography.exceptions import InvalidTag

        try:
            raw = base64.b64decode(str(sealed))
            return json.loads(self._aead.decrypt(raw[:12], raw[12:], b"task"))
        except (InvalidTag, ValueError):
            return None
