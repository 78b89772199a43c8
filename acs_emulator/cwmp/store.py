"""SQLite store of devices, tasks and faults, in GenieACS's document shapes.

A device is a nested document: ``{"_id", "_deviceId", "_lastInform", "_tags", ...,
"Device": {"DeviceInfo": {"SoftwareVersion": {"_value", "_type", "_timestamp",
"_writable"}}}}`` (read and written by :mod:`acs_emulator.cwmp.documents`, whose
names are also importable from here). Documents are kept in memory (the ACS is a single asyncio process)
and written through to SQLite (WAL) on every change, so a restart finds devices,
parameters with timestamps, tags, pending tasks and faults again.

What a CPE can make the store hold is bounded (:data:`LIMITS`: name length and depth,
value size; the ACS also caps parameters per Inform), so no document is too deep to
serialise. The SQLite file is created owner-only (0600): device documents hold what
CPEs report. Secret values of queued tasks (Wi-Fi, PPPoE passwords) are kept in
memory only; a task that loses them in a restart is faulted, never sent with a blank.

Several processes (``guardian acs serve --workers N``) share one file with
``shared=True``: every commit also appends the ids it wrote to a ``changes`` log, and
:meth:`DeviceStore.sync` (called by the ACS at each new session, by the NBI before
each request and by the commit loop) loads the rows other processes changed, so a
task queued through one process reaches the CPE whichever process serves its next
Inform. Device documents are reloaded lazily (on :meth:`DeviceStore.get_device` or a
query); other rows at once. Secret values of tasks then travel sealed (AES-GCM) under
a key the processes inherit from their parent and never write down: a restart still
loses them, as with one process.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from acs_emulator.cwmp.documents import (
    LIMITS,
    StoreError,
    StoreLimits,
    check_parameter,
    delete_subtree,
    expand_query,
    get_parameter,
    now_iso,
    project,
    set_parameter,
    sort_key,
)
from acs_emulator.cwmp.query import BoundedQuery, QueryRejected, prepare_query, validate_sort
from acs_emulator.cwmp.redact import redact_task
from acs_emulator.cwmp.store_sharing import NEWER_DEVICE_WINS, Sealer, SharedStoreMixin

__all__ = [
    "ADMIN_COLLECTIONS",
    "LIMITS",
    "DeviceStore",
    "StoreError",
    "StoreLimits",
    "check_parameter",
    "now_iso",
    "expand_query",
    "project",
    "set_parameter",
    "get_parameter",
]


log = logging.getLogger(__name__)


# One encoder for every row (json.dumps builds a new one per call with these options).
# No cycle check: a document is a tree of dicts, lists and strings bounded in depth
# (LIMITS); a cyclic one would raise RecursionError, which flush handles as a bad row.
_ROW_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)

#: Collections the NBI writes by name (``PUT /<collection>/<name>``).
ADMIN_COLLECTIONS = ("presets", "provisions", "virtual_parameters", "files")


class DeviceStore(SharedStoreMixin):
    """Devices, tasks and faults: in memory, written through to SQLite.

    Parameters
    ----------
    path : str or Path, default ":memory:"
        SQLite file (created with its parent folder if missing).
    shared : bool, default False
        Other processes use the same file: log changes and :meth:`sync` theirs.
    secret_key : bytes, optional
        32-byte AES-GCM key sealing the secret values of tasks in the shared file
        (only with ``shared``; without one such tasks lose their secrets across
        processes and are faulted, never sent with a blank).
    busy_timeout_ms : int, default 10000
        How long a commit waits for another process's transaction. [ms]
    """

    #: Seconds of change log kept (a process that has not synced for longer reloads all).
    CHANGE_LOG_KEEP_S = 600.0

    def __init__(
        self,
        path: str | Path = ":memory:",
        *,
        shared: bool = False,
        secret_key: bytes | None = None,
        busy_timeout_ms: int = 10000,
    ) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            # Owner-only before SQLite opens it (its -wal/-shm files copy the mode).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self.shared = shared and self.path != ":memory:"
        self._sealer = Sealer(secret_key) if (secret_key and self.shared) else None
        self._writer = f"{os.getpid()}-{os.urandom(4).hex()}"
        self._db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for table in ("devices", "tasks", "faults", "task_keys", *ADMIN_COLLECTIONS):
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)"
            )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "writer TEXT NOT NULL, tbl TEXT NOT NULL, id TEXT NOT NULL, at REAL NOT NULL)"
        )
        self._seen = 0  # last change-log seq this process has applied
        self._data_version = -1  # SQLite's data_version at the last sync
        self._stale: set[str] = set()  # devices another process changed (lazy reload)
        self._flushes = 0
        #: Called with the collection name when another process changed an admin row.
        self.on_admin_change: Any = None
        self._load_all()
        self._pending: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._batch: dict[str, list[tuple[str, str]]] = {}
        self.write_errors = 0
        for t in list(self.tasks.values()):
            if t.get("_secretsRedacted") and f"{t['device']}:task_{t['_id']}" not in self.faults:
                self.fault_task(
                    t,
                    "store.secret_lost",
                    "the secret values of this task are not stored on disk and were lost "
                    "in a restart; delete it and queue it again",
                    {},
                )
        if self.path != ":memory:":
            for suffix in ("-wal", "-shm"):
                if os.path.exists(self.path + suffix):
                    os.chmod(self.path + suffix, 0o600)

    def _load_all(self) -> None:
        """Read every table into memory (one read transaction, with the log position)."""
        self.devices: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, dict[str, Any]] = {}
        self.task_keys: dict[str, dict[str, Any]] = {}
        #: presets, provisions, virtual_parameters and files (metadata), by name.
        self.admin: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in ADMIN_COLLECTIONS}
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for table, target in self._tables().items():
                    for row_id, doc in self._db.execute(f"SELECT id, doc FROM {table}"):
                        target[row_id] = self._decode(table, doc)
                row = self._db.execute("SELECT max(seq) FROM changes").fetchone()
            finally:
                self._db.execute("COMMIT")
        self._seen = row[0] or 0
        self._stale = set()
        self._seq = len(self.tasks)
        self._device_tasks: dict[str, dict[str, dict[str, Any]]] = {}
        for t in self.tasks.values():
            self._device_tasks.setdefault(t["device"], {})[t["_id"]] = t

    def _tables(self) -> dict[str, dict[str, dict[str, Any]]]:
        return {
            "devices": self.devices,
            "tasks": self.tasks,
            "faults": self.faults,
            "task_keys": self.task_keys,
            **self.admin,
        }

    def _decode(self, table: str, doc: str) -> dict[str, Any]:
        """A stored row as a document (a task's sealed secrets opened when we can)."""
        out = json.loads(doc)
        if table == "tasks" and "_sealed" in out:
            sealed = out.pop("_sealed")
            values = self._sealer.open(sealed) if self._sealer is not None else None
            if values is not None:
                out["parameterValues"] = values
                out.pop("_secretsRedacted", None)
        return out

    # -- persistence ---------------------------------------------------------------
    def _queue(self, table: str, row_id: str, doc: dict[str, Any] | None) -> None:
        """Queue a row write (``doc``) or delete (``None``) for the next :meth:`flush`."""
        self._pending[(table, row_id)] = doc

    def _put(self, table: str, row_id: str, doc: dict[str, Any]) -> None:
        """Serialise one queued row into the batch :meth:`flush` is writing."""
        if table in ("tasks", "task_keys"):
            redacted = redact_task(doc)  # secrets stay in memory only
            if redacted is not doc and table == "tasks" and self._sealer is not None:
                # ... or travel sealed to the sibling processes, under a key never stored.
                redacted = dict(redacted, _sealed=self._sealer.seal(doc["parameterValues"]))
            doc = redacted
        self._batch.setdefault(table, []).append((row_id, _ROW_ENCODER.encode(doc)))

    def _del(self, table: str, row_id: str) -> None:
        self._queue(table, row_id, None)

    def close(self) -> None:
        """Flush queued writes and close the SQLite connection."""
        self.flush()
        with self._lock:
            self._db.close()

    def flush(self) -> None:
        """Write every queued change in one transaction (group commit).

        A row whose document cannot be serialised is logged, counted in
        ``write_errors`` and kept in memory; the other rows are written. If SQLite
        fails, the transaction is rolled back and the rows stay queued for the next
        flush (newer changes of the same rows win).
        """
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._batch = {}
        deletes: dict[str, list[tuple[str]]] = {}
        for (table, row_id), doc in pending.items():
            if doc is None:
                deletes.setdefault(table, []).append((row_id,))
                continue
            try:
                self._put(table, row_id, doc)
            except (ValueError, TypeError, RecursionError):
                # One document that cannot be written must not stop the others
                # (nor the ACS's background loop that calls this).
                self.write_errors += 1
                log.exception("store: %s %s could not be written; kept in memory", table, row_id)
        batch, self._batch = self._batch, {}
        with self._lock:
            try:
                self._db.execute("BEGIN")
                for table, rows in batch.items():
                    self._db.executemany(
                        NEWER_DEVICE_WINS
                        if self.shared and table == "devices"
                        else f"INSERT OR REPLACE INTO {table} (id, doc) VALUES (?, ?)",
                        rows,
                    )
                for table, ids in deletes.items():
                    self._db.executemany(f"DELETE FROM {table} WHERE id = ?", ids)
                if self.shared:
                    self._log_changes(pending)
                self._db.execute("COMMIT")
            except sqlite3.Error:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self.write_errors += 1
                log.exception("store: commit of %d rows failed; will retry", len(pending))
                for key, doc in pending.items():
                    self._pending.setdefault(key, doc)

    # -- devices -------------------------------------------------------------------
    def save_device(self, doc: dict[str, Any], defer: bool = False) -> None:
        """Store (insert or replace) a device document.

        The SQLite write is queued; without ``defer`` it is committed at once (an
        NBI change), with ``defer`` by the next :meth:`flush` (the ACS's commit loop).
        """
        self.devices[doc["_id"]] = doc
        self._queue("devices", doc["_id"], doc)
        if not defer:
            self.flush()

    def save_task(self, task: dict[str, Any]) -> None:
        """Queue a changed task (e.g. marked in transfer) for the next :meth:`flush`."""
        self._queue("tasks", task["_id"], task)

    def get_device(self, device_id: str) -> dict[str, Any] | None:
        """The document of ``device_id`` or ``None``."""
        if device_id in self._stale:
            self._fresh_device(device_id)
        return self.devices.get(device_id)

    def delete_device(self, device_id: str) -> bool:
        """Delete a device with its tasks and faults; whether it existed."""
        existed = self.devices.pop(device_id, None) is not None
        self._del("devices", device_id)
        for tid in list(self._device_tasks.get(device_id, {})):
            self.delete_task(tid)
        for fid in [f for f, d in self.faults.items() if d["device"] == device_id]:
            self.delete_fault(fid)
        return existed

    def find(
        self,
        collection: str,
        query: dict[str, Any] | None = None,
        projection: list[str] | None = None,
        skip: int = 0,
        limit: int | None = None,
        sort: dict[str, int] | None = None,
        budget_s: float = 1.0,
    ) -> list[dict[str, Any]]:
        """Mongo-style query over ``devices``, ``tasks`` or ``faults``.

        ``sort`` is ``{path: 1 | -1}`` (device parameters sort by value); documents
        missing a key sort first. The query language is the bounded subset of
        :mod:`acs_emulator.cwmp.query`.

        Parameters
        ----------
        budget_s : float, default 1
            Time budget of the evaluation. [s]

        Raises
        ------
        StoreError
            If the collection is unknown, the query uses a refused operator or an
            unsafe ``$regex``, the sort is malformed, or the budget is spent.
        """
        if collection == "devices" and self._stale:
            self._fresh_devices()
        source = {
            "devices": self.devices,
            "tasks": self.tasks,
            "faults": self.faults,
            **self.admin,
        }.get(collection)
        if source is None:
            raise StoreError(
                "collection: expected devices, tasks, faults or "
                f"{', '.join(ADMIN_COLLECTIONS)}, got {collection!r}"
            )
        if not isinstance(query or {}, dict):
            raise StoreError(f"query: expected a JSON object, got {type(query).__name__}")
        if skip < 0 or (limit is not None and limit < 0):
            raise StoreError(f"skip/limit: expected non-negative integers, got {skip}/{limit}")
        try:
            q = prepare_query(query or {})
            sort = validate_sort(sort) if sort is not None else None
        except QueryRejected as exc:
            raise StoreError(str(exc)) from exc
        q = expand_query(q) if collection == "devices" else q
        pool: list[dict[str, Any]] = list(source.values())
        wanted = q.get("_id") if isinstance(q, dict) else None
        if isinstance(wanted, str):  # fast path: lookups by id
            pool = [source[wanted]] if wanted in source else []
        elif (
            isinstance(wanted, dict) and set(wanted) == {"$in"} and isinstance(wanted["$in"], list)
        ):
            pool = [
                source[i]
                for i in dict.fromkeys(x for x in wanted["$in"] if isinstance(x, str))
                if i in source
            ]
        matcher = BoundedQuery(q, time.monotonic() + budget_s)
        docs = []
        try:
            for d in pool:
                matcher.check_time()
                if matcher.match(d):
                    docs.append(d)
        except TimeoutError as exc:
            raise StoreError(f"{exc} (budget {budget_s:g} s)") from exc
        except QueryRejected as exc:
            raise StoreError(str(exc)) from exc
        except Exception as exc:  # mongoquery raises assorted errors on odd operands
            raise StoreError(
                f"query {json.dumps(query, default=str)[:200]}: unsupported ({exc})"
            ) from exc
        docs.sort(key=lambda d: (d.get("timestamp", ""), d["_id"]))
        for key, direction in reversed(list((sort or {}).items())):
            if collection == "devices" and not key.rsplit(".", 1)[-1].startswith("_"):
                key = f"{key}._value"
            docs.sort(key=lambda d, k=key: sort_key(d, k), reverse=direction < 0)
        docs = docs[skip : None if limit is None else skip + limit]
        return [project(d, projection) for d in docs]

    def set_tag(self, device_id: str, tag: str, present: bool) -> bool:
        """Add or remove a tag; whether the device exists."""
        doc = self.devices.get(device_id)
        if doc is None:
            return False
        tags = doc.setdefault("_tags", [])
        if present and tag not in tags:
            tags.append(tag)
        elif not present and tag in tags:
            tags.remove(tag)
        self.save_device(doc)
        return True

    def delete_subtree(self, device_id: str, name: str) -> None:
        """Remove an object instance (after DeleteObject) from the device document."""
        doc = self.devices.get(device_id)
        if doc is not None:
            delete_subtree(doc, name)

    # -- presets, provisions, virtual parameters, files ------------------------------
    def put_admin(self, collection: str, name: str, doc: dict[str, Any]) -> None:
        """Insert or replace a named document and commit it."""
        doc = dict(doc, _id=name)
        self.admin[collection][name] = doc
        self._queue(collection, name, doc)
        self.flush()

    def delete_admin(self, collection: str, name: str) -> bool:
        """Delete a named document (committed); whether it existed."""
        existed = self.admin[collection].pop(name, None) is not None
        self._del(collection, name)
        self.flush()
        return existed

    def record_fault(self, device_id: str, channel: str, code: str, message: str) -> str:
        """Record a fault that belongs to no task (e.g. a preset's provision)."""
        fid = f"{device_id}:{channel}"
        prev = self.faults.get(fid)
        fault = {
            "_id": fid,
            "device": device_id,
            "channel": channel,
            "code": code,
            "message": message,
            "detail": {},
            "retries": (prev["retries"] + 1) if prev else 0,
            "timestamp": now_iso(),
        }
        self.faults[fid] = fault
        self._queue("faults", fid, fault)
        return fid

    # -- tasks ---------------------------------------------------------------------
    def insert_task(self, task: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Queue a task; returns ``(task, created)``.

        A task carrying an ``idempotencyKey`` already seen (queued, done or faulted)
        is not queued again: the earlier task is returned with ``created=False``.
        """
        key = task.get("idempotencyKey")
        if key and key in self.task_keys:
            known = self.task_keys[key]
            return self.tasks.get(known["_id"], known), False
        self._seq += 1
        task = dict(task)
        task["_id"] = os.urandom(8).hex() + f"{self._seq:08x}"
        task["timestamp"] = now_iso()
        self.tasks[task["_id"]] = task
        self._device_tasks.setdefault(task["device"], {})[task["_id"]] = task
        self._queue("tasks", task["_id"], task)
        if key:
            self._remember_key(key, task, "queued")
        return task, True

    def _remember_key(self, key: str, task: dict[str, Any], status: str) -> None:
        rec = dict(task, status=status)
        self.task_keys[key] = rec
        self._queue("task_keys", key, rec)

    def pending_tasks(self, device_id: str) -> list[dict[str, Any]]:
        """Queued, not faulted tasks of a device, oldest first."""
        return [
            t
            for t in self._device_tasks.get(device_id, {}).values()
            if f"{device_id}:task_{t['_id']}" not in self.faults
        ]

    def _forget(self, task: dict[str, Any] | None) -> None:
        if task is not None:
            per = self._device_tasks.get(task["device"])
            if per is not None:
                per.pop(task["_id"], None)
                if not per:
                    del self._device_tasks[task["device"]]

    def complete_task(self, task_id: str) -> None:
        """A task finished: remove it (GenieACS keeps only pending tasks)."""
        task = self.tasks.pop(task_id, None)
        self._forget(task)
        self._del("tasks", task_id)
        if task and task.get("idempotencyKey"):
            self._remember_key(task["idempotencyKey"], task, "done")

    def fault_task(self, task: dict[str, Any], code: str, message: str, detail: Any) -> str:
        """Record a fault on a task (the task stays queued until the fault is deleted)."""
        fid = f"{task['device']}:task_{task['_id']}"
        prev = self.faults.get(fid)
        fault = {
            "_id": fid,
            "device": task["device"],
            "channel": f"task_{task['_id']}",
            "code": code,
            "message": message,
            "detail": detail,
            "retries": (prev["retries"] + 1) if prev else 0,
            "timestamp": now_iso(),
        }
        self.faults[fid] = fault
        self._queue("faults", fid, fault)
        if task.get("idempotencyKey"):
            self._remember_key(task["idempotencyKey"], task, "fault")
        return fid

    def delete_task(self, task_id: str) -> bool:
        """Delete a task and its fault; whether it existed."""
        task = self.tasks.pop(task_id, None)
        self._forget(task)
        self._del("tasks", task_id)
        if task is not None:
            self.delete_fault(f"{task['device']}:task_{task_id}", cascade=False)
            key = task.get("idempotencyKey")
            if key and self.task_keys.get(key, {}).get("status") != "done":
                self.task_keys.pop(key, None)  # cancelled by an operator: may be sent again
                self._del("task_keys", key)
        return task is not None

    def delete_fault(self, fault_id: str, cascade: bool = True) -> bool:
        """Delete a fault; a task fault also deletes its task (as GenieACS does)."""
        fault = self.faults.pop(fault_id, None)
        self._del("faults", fault_id)
        if fault is not None and cascade and fault["channel"].startswith("task_"):
            self.delete_task(fault["channel"][5:])
        return fault is not None

    def pending_count(self, device_id: str | None = None) -> int:
        """Queued tasks of one device, or of every device. [-]"""
        if device_id is None:
            return len(self.tasks)
        return len(self._device_tasks.get(device_id, {}))

    def task_status(self, task_id: str) -> str:
        """``"pending"``, ``"fault"`` or ``"done"`` (a task no longer queued is done)."""
        task = self.tasks.get(task_id)
        if task is None:
            return "done"
        return "fault" if f"{task['device']}:task_{task_id}" in self.faults else "pending"

    def iter_devices(self) -> Iterable[dict[str, Any]]:
        """All device documents."""
        self._fresh_devices()
        return list(self.devices.values())
