"""The outbox: every message to send is a SQLite row before anything is sent.

``state`` keeps named JSON states of the pipeline (rule timers, aggregation groups).
``messages`` holds one row per (idempotency key): receiver, JSON payload, status
(``pending`` → ``delivered`` or, after ``max_attempts``, ``dead``), the number of attempts
and when the next one is due. ``attempts`` records every try with its result. A restart
opens the same file and sends what is still pending; a delivered message is never sent
again, and enqueueing the same key twice is a no-op. A receiver that fails is backed off
(doubling) while the others keep delivering.

Delivery is at least once: a crash between the receiver accepting a message and the
``delivered`` commit resends it, which is why every message carries its idempotency key
(webhooks get it as a header; e-mails as ``Message-ID``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

__all__ = ["Receiver", "Outbox", "OutboxMessage", "DeliveryReport"]


class Receiver(Protocol):
    """Something that delivers one payload or raises."""

    def send(self, key: str, payload: dict[str, Any]) -> str:
        """Deliver; return a short result (e.g. an HTTP status). Raise on failure."""
        ...


@dataclass(frozen=True)
class OutboxMessage:
    """One queued message."""

    key: str
    receiver: str
    payload: dict[str, Any]
    status: str
    attempts: int


@dataclass
class DeliveryReport:
    """What one :meth:`Outbox.deliver` pass did."""

    delivered: int = 0
    failed: int = 0
    dead: int = 0
    skipped_no_receiver: int = 0


class Outbox:
    """A SQLite outbox.

    Parameters
    ----------
    path : path
        The SQLite file (created with its folder).
    max_attempts : int, default 8
        Tries before a message is marked ``dead``. [-]
    backoff_s : float, default 30
        Wait after the first failure, doubling each time, capped at 1 h. [s]
    clock : callable, optional
        Returns the current UTC time (tests inject one).
    """

    def __init__(
        self,
        path: str | Path,
        max_attempts: int = 8,
        backoff_s: float = 30.0,
        clock: Callable[[], pd.Timestamp] | None = None,
    ) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(path)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.clock = clock or (lambda: pd.Timestamp.now(tz="UTC"))
        self.con = sqlite3.connect(str(path))
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(
            """
            CREATE TABLE IF NOT EXISTS messages (
              key TEXT PRIMARY KEY, receiver TEXT NOT NULL, payload TEXT NOT NULL,
              created_at TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
              next_attempt_at TEXT NOT NULL, delivered_at TEXT, last_error TEXT);
            CREATE TABLE IF NOT EXISTS attempts (
              key TEXT NOT NULL, receiver TEXT NOT NULL, ts TEXT NOT NULL, ok INTEGER NOT NULL,
              result TEXT, error TEXT);
            CREATE TABLE IF NOT EXISTS state (
              name TEXT PRIMARY KEY, value TEXT NOT NULL, saved_at TEXT NOT NULL);
            """
        )
        self.con.commit()

    def enqueue(
        self,
        key: str,
        receiver: str,
        payload: Mapping[str, Any],
        not_before: pd.Timestamp | None = None,
    ) -> bool:
        """Queue a message; False if that key is already queued (or was delivered).

        ``not_before`` (UTC) holds it until then (a customer notice past quiet hours).
        """
        t = self.clock()
        now = t.isoformat()
        due = now if not_before is None else max(t, pd.Timestamp(not_before)).isoformat()
        cur = self.con.execute(
            "INSERT OR IGNORE INTO messages VALUES (?, ?, ?, ?, 'pending', 0, ?, NULL, NULL)",
            (key, receiver, json.dumps(payload, sort_keys=True, default=str), now, due),
        )
        self.con.commit()
        return cur.rowcount == 1

    def put_state(self, values: Mapping[str, Any]) -> None:
        """Save named JSON states (the pipeline's rule timers and groups) in one commit."""
        t = self.clock().isoformat()
        with self.con:
            self.con.executemany(
                "INSERT OR REPLACE INTO state VALUES (?, ?, ?)",
                [(k, json.dumps(v, sort_keys=True, default=str), t) for k, v in values.items()],
            )

    def get_state(self, name: str) -> Any:
        """A state saved by :meth:`put_state` (None if never saved)."""
        row = self.con.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
        return None if row is None else json.loads(row[0])

    def has(self, key: str) -> bool:
        """Whether a message with that key was ever queued (any status)."""
        return (
            self.con.execute("SELECT 1 FROM messages WHERE key = ?", (key,)).fetchone() is not None
        )

    def payloads(self, key_like: str) -> list[dict[str, Any]]:
        """Payloads of the messages whose key matches the SQL ``LIKE`` pattern, oldest first."""
        rows = self.con.execute(
            "SELECT payload FROM messages WHERE key LIKE ? ORDER BY created_at, key", (key_like,)
        ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def messages(self, status: str | None = None) -> list[OutboxMessage]:
        """Queued messages (optionally of one status), oldest first."""
        sql = "SELECT key, receiver, payload, status, attempts FROM messages"
        rows = self.con.execute(
            sql + (" WHERE status = ?" if status else "") + " ORDER BY created_at, key",
            (status,) if status else (),
        ).fetchall()
        return [OutboxMessage(k, r, json.loads(p), s, a) for k, r, p, s, a in rows]

    def rows(self, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        """Queued messages with their bookkeeping (``created_at``, ``attempts``,
        ``next_attempt_at``, ``delivered_at``, ``last_error``), newest first."""
        sql = "SELECT * FROM messages" + (" WHERE status = ?" if status else "")
        sql += " ORDER BY created_at DESC, key" + (f" LIMIT {int(limit)}" if limit else "")
        cur = self.con.execute(sql, (status,) if status else ())
        cols = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            row = dict(zip(cols, r, strict=True))
            row["payload"] = json.loads(row["payload"])
            out.append(row)
        return out

    def attempts(self) -> list[dict[str, Any]]:
        """Every delivery attempt recorded."""
        cur = self.con.execute("SELECT key, receiver, ts, ok, result, error FROM attempts")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def deliver(
        self, receivers: Mapping[str, Receiver], limit: int | None = None
    ) -> DeliveryReport:
        """Try every due pending message once (each commit is its own transaction).

        Parameters
        ----------
        receivers : mapping
            Receiver name → :class:`Receiver`. Messages for a name not given stay pending.
        limit : int, optional
            At most this many tries in this pass.
        """
        rep = DeliveryReport()
        now = self.clock()
        due = self.con.execute(
            "SELECT key, receiver, payload, attempts FROM messages WHERE status = 'pending' "
            "AND next_attempt_at <= ? ORDER BY created_at, key",
            (now.isoformat(),),
        ).fetchall()
        tried = 0
        for key, name, payload, attempts in due:
            rx = receivers.get(name)
            if rx is None:
                rep.skipped_no_receiver += 1
                continue
            if limit is not None and tried >= limit:
                break
            tried += 1
            try:
                result = str(rx.send(key, json.loads(payload)))
            except Exception as exc:  # noqa: BLE001 - any receiver failure is recorded, not fatal
                n = attempts + 1
                err = f"{type(exc).__name__}: {exc}"[:500]
                dead = n >= self.max_attempts
                wait = min(self.backoff_s * 2 ** (n - 1), 3600.0)
                nxt = (now + pd.Timedelta(seconds=wait)).isoformat()
                with self.con:
                    self.con.execute(
                        "UPDATE messages SET attempts = ?, status = ?, next_attempt_at = ?, "
                        "last_error = ? WHERE key = ?",
                        (n, "dead" if dead else "pending", nxt, err, key),
                    )
                    self.con.execute(
                        "INSERT INTO attempts VALUES (?, ?, ?, 0, NULL, ?)",
                        (key, name, self.clock().isoformat(), err),
                    )
                rep.dead += dead
                rep.failed += not dead
                continue
            with self.con:
                t = self.clock().isoformat()
                self.con.execute(
                    "UPDATE messages SET attempts = attempts + 1, status = 'delivered', "
                    "delivered_at = ?, last_error = NULL WHERE key = ?",
                    (t, key),
                )
                self.con.execute(
                    "INSERT INTO attempts VALUES (?, ?, ?, 1, ?, NULL)", (key, name, t, result)
                )
            rep.delivered += 1
        return rep

    def forget(self, before: pd.Timestamp, receivers: set[str] | None = None) -> int:
        """Delete finished (delivered or dead) messages created before ``before`` (UTC),
        and every message of a receiver not in ``receivers`` (when given), with their
        attempts; returns how many messages went. Keeps the file bounded. [-]"""
        with self.con:
            cur = self.con.execute(
                "DELETE FROM messages WHERE status != 'pending' AND created_at < ?",
                (pd.Timestamp(before).isoformat(),),
            )
            n = cur.rowcount
            if receivers is not None:
                marks = ",".join("?" * len(receivers))
                n += self.con.execute(
                    f"DELETE FROM messages WHERE receiver NOT IN ({marks})", sorted(receivers)
                ).rowcount
            self.con.execute("DELETE FROM attempts WHERE key NOT IN (SELECT key FROM messages)")
        return n

    def pending(self) -> int:
        """Messages waiting for delivery. [-]"""
        return self.con.execute(
            "SELECT count(*) FROM messages WHERE status = 'pending'"
        ).fetchone()[0]

    def close(self) -> None:
        """Close the file."""
        self.con.close()
