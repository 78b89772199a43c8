"""Silences: label matchers with an author, a comment and an expiry, kept in SQLite.

Matchers are those of :mod:`guardian_lib.matchers` (``~regex`` or an exact value). A
silence mutes every alert whose labels match all its matchers while
``starts_at <= now < ends_at``. Expiring a silence sets ``ends_at`` to now (rows are never
deleted, so the history of who silenced what stays readable).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from guardian_lib.errors import ConfigError
from guardian_lib.matchers import labels_match

__all__ = ["Silence", "SilenceStore"]


def _utc(ts: object) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass(frozen=True)
class Silence:
    """One silence (times in UTC)."""

    silence_id: str
    matchers: dict[str, str]
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp
    created_by: str
    comment: str

    def active(self, now: pd.Timestamp) -> bool:
        """In force at ``now``."""
        return self.starts_at <= now < self.ends_at

    def mutes(self, labels: Mapping[str, str], now: pd.Timestamp) -> bool:
        """Active and matching ``labels``."""
        return self.active(now) and labels_match(labels, self.matchers)


class SilenceStore:
    """Silences in a SQLite file (``None``: in memory).

    Parameters
    ----------
    path : path, optional
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = ":memory:" if path is None else str(path)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.path)
        self.con.execute(
            "CREATE TABLE IF NOT EXISTS silences (silence_id TEXT PRIMARY KEY, matchers TEXT "
            "NOT NULL, starts_at TEXT NOT NULL, ends_at TEXT NOT NULL, created_by TEXT NOT "
            "NULL, comment TEXT NOT NULL)"
        )
        self.con.commit()
        self._cache: list[Silence] | None = None

    def add(
        self,
        matchers: Mapping[str, str],
        starts_at: pd.Timestamp,
        ends_at: pd.Timestamp,
        created_by: str,
        comment: str,
    ) -> Silence:
        """Store a new silence.

        Raises
        ------
        ConfigError
            No matcher, empty author or comment, or ``ends_at <= starts_at``.
        """
        if not matchers:
            raise ConfigError("a silence needs at least one matcher")
        if not created_by.strip() or not comment.strip():
            raise ConfigError("a silence needs an author (--author) and a comment (--comment)")
        starts_at, ends_at = _utc(starts_at), _utc(ends_at)
        if ends_at <= starts_at:
            raise ConfigError(f"silence ends ({ends_at}) before it starts ({starts_at})")
        s = Silence(uuid.uuid4().hex[:12], dict(matchers), starts_at, ends_at, created_by, comment)
        self.con.execute(
            "INSERT INTO silences VALUES (?, ?, ?, ?, ?, ?)",
            (s.silence_id, json.dumps(s.matchers, sort_keys=True), starts_at.isoformat(),
             ends_at.isoformat(), created_by, comment),
        )  # fmt: skip
        self.con.commit()
        self._cache = None
        return s

    def expire(self, silence_id: str, now: pd.Timestamp) -> Silence:
        """End a silence now.

        Raises
        ------
        ConfigError
            No silence has that id.
        """
        if not any(s.silence_id == silence_id for s in self.all()):
            raise ConfigError(f"no silence with id {silence_id!r}")
        self.con.execute(
            "UPDATE silences SET ends_at = min(ends_at, ?) WHERE silence_id = ?",
            (_utc(now).isoformat(), silence_id),
        )
        self.con.commit()
        self._cache = None
        return next(s for s in self.all() if s.silence_id == silence_id)

    def all(self) -> list[Silence]:
        """Every silence, oldest start first."""
        if self._cache is None:
            rows = self.con.execute(
                "SELECT * FROM silences ORDER BY starts_at, silence_id"
            ).fetchall()
            self._cache = [
                Silence(r[0], json.loads(r[1]), pd.Timestamp(r[2]), pd.Timestamp(r[3]), r[4], r[5])
                for r in rows
            ]
        return self._cache

    def reload(self) -> None:
        """Forget the cached rows (another process, e.g. the CLI, may have changed the file)."""
        self._cache = None

    def active(self, now: pd.Timestamp) -> list[Silence]:
        """The silences in force at ``now``."""
        return [s for s in self.all() if s.active(now)]

    def close(self) -> None:
        """Close the file."""
        self.con.close()
