"""The state of ``guardian operate`` in one SQLite file, written before anything is sent.

Tables (``<state>/operate.sqlite``, WAL journal, every write committed at once):

``journal``
    One row per action sent to the outside (a reboot through the NBI, a visit to the
    ticketing system), keyed by its idempotency key and written with status ``sending``
    *before* the call; updated to ``sent`` / ``failed`` after. A row still ``sending``
    after a crash is ``ambiguous``: it counts against the cooldowns and daily caps as if
    it had been sent, and it is never sent again.
``approvals``
    Actions proposed in ``approve`` mode: ``pending`` → ``approved`` / ``rejected``
    (``guardian decisions``, the API, the dashboard) → ``executed`` / ``failed``; who
    decided (``decided_by``) and why (``comment``) are kept with the row.
``cycles``
    One row per finished cycle (its figures as JSON).
``kv``
    Named blobs: the loop's streaming state (observer, scorer window, open cases and
    incidents), the ONU inventory, the last cycle's online map.
"""

from __future__ import annotations

import json
import pickle
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from guardian_lib.errors import GuardianError

__all__ = ["StateStore", "StateError", "STATE_FILE", "APPROVAL_STATES"]

STATE_FILE = "operate.sqlite"
#: Life of a proposed action in approve mode.
APPROVAL_STATES = ("pending", "approved", "rejected", "executed", "failed")

_DDL = (
    """CREATE TABLE IF NOT EXISTS journal (
        key TEXT PRIMARY KEY, cycle INTEGER, ts TEXT, action TEXT, target TEXT,
        pon_id TEXT, status TEXT, detail TEXT, created_at REAL, updated_at REAL)""",
    """CREATE TABLE IF NOT EXISTS approvals (
        id INTEGER PRIMARY KEY AUTOINCREMENT, created_at REAL, ts TEXT, action TEXT,
        subject TEXT, target TEXT, pon_id TEXT, decision_id TEXT, params TEXT,
        rationale TEXT, status TEXT, decided_at REAL, decided_by TEXT, result TEXT,
        comment TEXT)""",
    """CREATE TABLE IF NOT EXISTS cycles (
        cycle INTEGER PRIMARY KEY, ts TEXT, started_at REAL, finished_at REAL,
        figures TEXT)""",
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, updated_at REAL)",
)


class StateError(GuardianError):
    """The state folder cannot be used (names the file and what went wrong)."""


class StateStore:
    """Restart-safe state of one ``guardian operate`` deployment.

    Parameters
    ----------
    folder : path
        The ``--state`` folder (created if missing).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.path = self.folder / STATE_FILE
            self.con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute("PRAGMA synchronous=FULL")
            for ddl in _DDL:
                self.con.execute(ddl)
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"{self.folder}: cannot open the operate state: {exc}") from exc
        self.con.row_factory = sqlite3.Row

    def _migrate(self) -> None:
        """Add the columns newer versions need to a state file made by an older one."""
        have = {r[1] for r in self.con.execute("PRAGMA table_info(approvals)")}
        if "comment" not in have:  # state files before decision comments were kept
            self.con.execute("ALTER TABLE approvals ADD COLUMN comment TEXT")

    def close(self) -> None:
        """Close the database."""
        self.con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error)."""
        self.con.execute("BEGIN IMMEDIATE")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # --- journal of sent actions -----------------------------------------------------------
    def journal_begin(
        self, key: str, *, cycle: int, ts: str, action: str, target: str, pon_id: str | None
    ) -> bool:
        """Record an action about to be sent; False if ``key`` is already journalled.

        Returns
        -------
        bool
            True: go ahead and send. False: this key was sent (or attempted) before.
        """
        now = time.time()
        cur = self.con.execute(
            "INSERT OR IGNORE INTO journal VALUES (?, ?, ?, ?, ?, ?, 'sending', NULL, ?, ?)",
            (key, cycle, ts, action, target, pon_id, now, now),
        )
        return cur.rowcount == 1

    def journal_end(self, key: str, status: str, detail: str | None = None) -> None:
        """Mark a journalled action ``sent`` or ``failed``."""
        self.con.execute(
            "UPDATE journal SET status = ?, detail = ?, updated_at = ? WHERE key = ?",
            (status, detail, time.time(), key),
        )

    def mark_ambiguous(self) -> int:
        """After a restart: actions left ``sending`` become ``ambiguous``. [-]"""
        cur = self.con.execute(
            "UPDATE journal SET status = 'ambiguous', updated_at = ? WHERE status = 'sending'",
            (time.time(),),
        )
        return cur.rowcount

    def journal(self, action: str | None = None) -> list[dict[str, Any]]:
        """Journalled actions (oldest first), optionally of one action type."""
        sql = "SELECT * FROM journal"
        args: tuple = ()
        if action:
            sql += " WHERE action = ?"
            args = (action,)
        return [dict(r) for r in self.con.execute(sql + " ORDER BY created_at, key", args)]

    # --- approvals --------------------------------------------------------------------------
    def propose(self, **row: Any) -> int:
        """Queue an action for approval; returns its id."""
        cur = self.con.execute(
            "INSERT INTO approvals (created_at, ts, action, subject, target, pon_id, decision_id,"
            " params, rationale, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            (
                time.time(), row["ts"], row["action"], row["subject"], row["target"],
                row.get("pon_id"), row.get("decision_id"), json.dumps(row.get("params", {}),
                default=str), json.dumps(row.get("rationale", {}), default=str),
            ),
        )  # fmt: skip
        return int(cur.lastrowid)

    def approvals(self, status: str | None = None) -> list[dict[str, Any]]:
        """Proposed actions (oldest first), optionally in one state."""
        sql, args = "SELECT * FROM approvals", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        return [dict(r) for r in self.con.execute(sql + " ORDER BY id", args)]

    def decide(
        self, approval_id: int, verdict: str, by: str, comment: str | None = None
    ) -> dict[str, Any]:
        """Approve or reject a pending action, with who decided and why.

        Parameters
        ----------
        approval_id : int
        verdict : {'approved', 'rejected'}
        by : str
            Who decided (a login, ``api:<user>``).
        comment : str, optional
            Why; kept in the queue with the verdict.

        Raises
        ------
        StateError
            No such id, or it is not pending (names its current state).
        """
        if verdict not in ("approved", "rejected"):
            raise StateError(f"decision verdict must be approved or rejected, got {verdict!r}")
        with self.transaction() as con:
            row = con.execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
            if row is None:
                raise StateError(f"{self.path}: no proposed action with id {approval_id}")
            if row["status"] != "pending":
                raise StateError(
                    f"{self.path}: action {approval_id} is {row['status']}, not pending"
                )
            con.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, comment = ? "
                "WHERE id = ?",
                (verdict, time.time(), by, comment, approval_id),
            )
        return dict(row) | {"status": verdict, "decided_by": by, "comment": comment}

    def finish_approval(self, approval_id: int, status: str, result: Any) -> None:
        """Record the outcome of an approved action (``executed`` or ``failed``)."""
        self.con.execute(
            "UPDATE approvals SET status = ?, result = ? WHERE id = ?",
            (status, json.dumps(result, default=str), approval_id),
        )

    # --- cycles and blobs -------------------------------------------------------------------
    def last_cycle(self) -> int:
        """Number of the last finished cycle (0 if none). [-]"""
        row = self.con.execute("SELECT max(cycle) FROM cycles").fetchone()
        return int(row[0] or 0)

    def record_cycle(
        self, cycle: int, ts: str, started_at: float, figures: dict[str, Any], blobs: dict
    ) -> None:
        """Commit a finished cycle and the state blobs in one transaction."""
        with self.transaction() as con:
            for k, v in blobs.items():
                con.execute(
                    "INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
                    (k, pickle.dumps(v, protocol=pickle.HIGHEST_PROTOCOL), time.time()),
                )
            con.execute(
                "INSERT OR REPLACE INTO cycles VALUES (?, ?, ?, ?, ?)",
                (cycle, ts, started_at, time.time(), json.dumps(figures, default=str)),
            )

    def cycles(self) -> list[dict[str, Any]]:
        """Finished cycles with their figures."""
        out = []
        for r in self.con.execute("SELECT * FROM cycles ORDER BY cycle"):
            d = dict(r)
            d["figures"] = json.loads(d["figures"])
            out.append(d)
        return out

    def put(self, key: str, value: Any) -> None:
        """Store one blob (pickled; the state folder is the operator's own)."""
        self.con.execute(
            "INSERT OR REPLACE INTO kv VALUES (?, ?, ?)",
            (key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), time.time()),
        )

    def get(self, key: str, default: Any = None) -> Any:
        """A stored blob, or ``default``."""
        row = self.con.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return pickle.loads(row[0])  # noqa: S301 - our own state file
        except Exception as exc:  # noqa: BLE001 - a corrupt blob must name itself
            raise StateError(f"{self.path}: state blob {key!r} is unreadable: {exc}") from exc
