"""Append-only audit trail of the autopilot in a DuckDB file.

Tables (docs/autopilot.md, "Audit"): ``decisions`` (every decision with its timestamp, a SHA-256
digest and a copy of the aggregated inputs, outputs, confidence, model, policy and
mode; blocked decisions carry the rule that blocked them), ``actions`` (each action
with status, start/finish, result and error), ``notifications`` and ``incidents``.

Rows are only ever inserted: :class:`AuditLog` has no update or delete.

A service that runs numbered cycles (``guardian operate``) calls
:meth:`AuditLog.begin_cycle` first: the ids of that cycle's decisions and incidents are
then derived from the cycle number and what they are (``<tag>C00000042-D<digest>-<n>``),
and a decision (with its actions and notices) or incident row already in the file is not
written again. A cycle cut by a crash and run again after the restart is so audited once. An incident is
written when it opens and again when it closes; the latest row per ``incident_id``
(``recorded_at``) is its current state. :func:`case_lifecycle` rebuilds each case's
life (opened → actions → stable → closed with the visit avoided, or escalated to a visit)
from the decisions and actions alone.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from guardian_lib.warehouse import WAREHOUSE_FILE

__all__ = [
    "AuditLog",
    "AUDIT_TABLES",
    "inputs_digest",
    "case_lifecycle",
    "latest_incidents",
    "append_audit",
    "tagged_decisions",
]

#: Column name → DuckDB type of each audit table.
AUDIT_TABLES: dict[str, dict[str, str]] = {
    "decisions": {
        "decision_id": "VARCHAR", "ts": "TIMESTAMPTZ", "subject": "VARCHAR",
        "action": "VARCHAR", "targets": "VARCHAR", "case_id": "VARCHAR",
        "confidence": "DOUBLE", "expected_cost": "DOUBLE", "rationale": "VARCHAR",
        "inputs": "VARCHAR", "inputs_digest": "VARCHAR", "model_version": "VARCHAR",
        "policy_version": "VARCHAR", "mode": "VARCHAR", "allowed": "BOOLEAN",
        "blocked_rule": "VARCHAR",
    },
    "actions": {
        "action_id": "VARCHAR", "decision_id": "VARCHAR", "action_type": "VARCHAR",
        "target": "VARCHAR", "status": "VARCHAR", "started_at": "TIMESTAMPTZ",
        "finished_at": "TIMESTAMPTZ", "result": "VARCHAR", "error": "VARCHAR",
    },
    "notifications": {
        "notification_id": "VARCHAR", "customer_id": "VARCHAR", "onu_id": "VARCHAR",
        "ts": "TIMESTAMPTZ", "channel": "VARCHAR", "template": "VARCHAR",
        "status": "VARCHAR", "metadata": "VARCHAR",
    },
    "incidents": {
        "incident_id": "VARCHAR", "scope_type": "VARCHAR", "scope_key": "VARCHAR",
        "start_at": "TIMESTAMPTZ", "end_at": "TIMESTAMPTZ", "severity": "VARCHAR",
        "cause": "VARCHAR", "affected_customers": "BIGINT", "opened_by": "VARCHAR",
        "recorded_at": "TIMESTAMPTZ",
    },
}  # fmt: skip
_PREFIX = {"decisions": "D", "actions": "A", "notifications": "N", "incidents": "INC"}


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


def inputs_digest(inputs: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of a decision's inputs.

    Examples
    --------
    >>> inputs_digest({"b": 1, "a": 2}) == inputs_digest({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(_json(inputs).encode()).hexdigest()


class AuditLog:
    """Append-only writer (and reader) of the audit tables.

    Parameters
    ----------
    target : path, optional
        A DuckDB file, or a run folder (its ``warehouse.duckdb``). ``None``: in memory.
    tag : str, default ""
        Prefix of the generated ids (keeps ids of several runs in one file apart).
    flush_rows : int, default 2000
        Buffered rows per table before they are written. [-]
    """

    def __init__(self, target: str | Path | None = None, tag: str = "", flush_rows: int = 2000):
        if target is None:
            path = ":memory:"
        else:
            p = Path(target)
            path = str(p / WAREHOUSE_FILE if p.is_dir() else p)
        self.path = path
        self.con = duckdb.connect(path)
        self.con.execute("SET TimeZone = 'UTC'")
        self.tag = tag
        self.flush_rows = flush_rows
        self._buf: dict[str, list[tuple]] = {t: [] for t in AUDIT_TABLES}
        self._seq: dict[str, int] = {}
        self._cycle: int | None = None  # begin_cycle: ids derived from the cycle
        self._seen: dict[str, int] = {}  # decision digests of this cycle, by occurrence
        self._present: set[str] = set()  # decision ids of this cycle already in the file
        self._skipped: set[str] = set()  # … and so not written again
        self._incidents: set[tuple[str, bool]] = set()  # (incident id, closed) in the file
        self._cycle_incidents = 0
        for name, cols in AUDIT_TABLES.items():
            ddl = ", ".join(f"{c} {t}" for c, t in cols.items())
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {name} ({ddl})")
            self._seq[name] = self.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]

    def begin_cycle(self, cycle: int) -> None:
        """Make the next rows' ids those of cycle ``cycle`` (idempotent across a re-run).

        Parameters
        ----------
        cycle : int
            The service's cycle number (the same when a cycle cut by a crash runs again).
        """
        self.flush()
        self._cycle, self._seen, self._skipped, self._cycle_incidents = int(cycle), {}, set(), 0
        prefix = f"{self.tag}C{int(cycle):08d}-"
        rows = self.con.execute(
            "SELECT decision_id FROM decisions WHERE starts_with(decision_id, ?)", [prefix]
        ).fetchall()
        self._present = {r[0] for r in rows}
        rows = self.con.execute(
            "SELECT DISTINCT incident_id, end_at IS NOT NULL FROM incidents "
            "WHERE starts_with(incident_id, ?)",
            [self.tag],
        ).fetchall()
        self._incidents = {(r[0], bool(r[1])) for r in rows}

    def _decision_id(self, decision: Any) -> str:
        if self._cycle is None:
            return self._id("decisions")
        what = _json([decision.action, str(decision.subject), [str(t) for t in decision.targets]])
        digest = hashlib.sha256(what.encode()).hexdigest()[:12]
        n = self._seen[digest] = self._seen.get(digest, 0) + 1
        return f"{self.tag}C{self._cycle:08d}-D{digest}-{n}"

    def _id(self, table: str) -> str:
        self._seq[table] += 1
        return f"{self.tag}{_PREFIX[table]}{self._seq[table]:08d}"

    def _add(self, table: str, row: tuple) -> None:
        buf = self._buf[table]
        buf.append(row)
        if len(buf) >= self.flush_rows:
            self._flush_table(table)

    # --- writers --------------------------------------------------------------------------
    def record_decision(
        self,
        decision: Any,
        inputs: dict[str, Any],
        mode: str,
        allowed: bool = True,
        blocked_rule: str | None = None,
    ) -> str:
        """Append one decision; returns its ``decision_id``.

        Parameters
        ----------
        decision : Decision
        inputs : dict
            The aggregated inputs the decision was made on (copied, and digested).
        mode : {'simulate', 'execute'}
        allowed : bool, default True
        blocked_rule : str, optional
            The safety rule that blocked it.
        """
        did = self._decision_id(decision)
        if did in self._present:  # audited by an earlier run of this cycle
            self._skipped.add(did)
            return did
        d = decision
        self._add(
            "decisions",
            (did, d.ts, d.subject, d.action, _json(list(d.targets)), d.case_id,
             float(d.confidence), None if d.expected_cost_brl is None else float(d.expected_cost_brl),
             _json({**d.rationale, "params": d.params}), _json(inputs), inputs_digest(inputs),
             d.model_version, d.policy_version, mode, bool(allowed), blocked_rule),
        )  # fmt: skip
        return did

    def record_action(self, decision_id: str, result: Any) -> str:
        """Append one action (an :class:`~guardian_lib.actions.ActionResult`)."""
        if decision_id in self._skipped:
            return ""
        aid = self._id("actions")
        r = result
        self._add(
            "actions",
            (aid, decision_id, r.action_type, r.target, r.status, r.started_at, r.finished_at,
             _json(r.result), r.error),
        )  # fmt: skip
        return aid

    def record_notification(
        self,
        customer_id: str,
        onu_id: str,
        ts: pd.Timestamp,
        template: str,
        status: str,
        channel: str = "sms",
        metadata: dict | None = None,
    ) -> str:
        """Append one customer notification."""
        if (metadata or {}).get("decision_id") in self._skipped:
            return ""
        nid = self._id("notifications")
        self._add(
            "notifications",
            (nid, customer_id, onu_id, ts, channel, template, status, _json(metadata or {})),
        )
        return nid

    def new_incident_id(self) -> str:
        """A fresh incident id (derived from the cycle after :meth:`begin_cycle`)."""
        if self._cycle is None:
            return self._id("incidents")
        self._cycle_incidents += 1
        return f"{self.tag}C{self._cycle:08d}-INC{self._cycle_incidents}"

    def record_incident(self, incident_id: str, recorded_at: pd.Timestamp, **fields: Any) -> None:
        """Append the current state of an incident (open, or closed with ``end_at``)."""
        if self._cycle is not None:
            phase = (incident_id, fields.get("end_at") is not None)
            if phase in self._incidents:  # opened (or closed) by an earlier run of the cycle
                return
            self._incidents.add(phase)
        cols = list(AUDIT_TABLES["incidents"])
        row = {c: fields.get(c) for c in cols}
        row["incident_id"], row["recorded_at"] = incident_id, recorded_at
        self._add("incidents", tuple(row[c] for c in cols))

    # --- flushing and reading -----------------------------------------------------------
    def _flush_table(self, table: str) -> None:
        rows = self._buf[table]
        if not rows:
            return
        cols = list(AUDIT_TABLES[table])
        df = pd.DataFrame.from_records(rows, columns=cols)
        for c, t in AUDIT_TABLES[table].items():
            if t == "TIMESTAMPTZ":
                df[c] = pd.to_datetime(df[c], utc=True)
        self.con.register("_audit_buf", df)
        self.con.execute(f"INSERT INTO {table} SELECT {', '.join(cols)} FROM _audit_buf")
        self.con.unregister("_audit_buf")
        self._buf[table] = []

    def flush(self) -> None:
        """Write every buffered row."""
        for t in AUDIT_TABLES:
            self._flush_table(t)

    def frame(self, table: str) -> pd.DataFrame:
        """A whole audit table as a DataFrame (after flushing)."""
        if table not in AUDIT_TABLES:
            raise KeyError(
                f"AuditLog.frame: unknown table {table!r}, expected {list(AUDIT_TABLES)}"
            )
        self.flush()
        return self.con.cursor().execute(f"SELECT * FROM {table}").df()

    def close(self) -> None:
        """Flush and close the connection."""
        self.flush()
        self.con.close()


def tagged_decisions(path: str | Path, tag: str) -> int:
    """Decisions of the audit file ``path`` whose id starts with ``tag`` (0 without the
    file). [-]"""
    p = Path(path)
    if not p.is_file():
        return 0
    con = duckdb.connect(str(p), read_only=True)
    try:
        if "decisions" not in {r[0] for r in con.execute("SHOW TABLES").fetchall()}:
            return 0
        sql = "SELECT count(*) FROM decisions WHERE starts_with(decision_id, ?)"
        return int(con.execute(sql, [tag]).fetchone()[0])
    finally:
        con.close()


def append_audit(log: AuditLog, dest: str | Path) -> bool:
    """Append every row of ``log`` (an in-memory trail) to the audit file ``dest`` in one
    transaction, unless ``dest`` already holds decisions with ``log.tag``.

    A reader of ``dest`` sees either none of the rows or all of them; a run cut short
    leaves nothing behind, so running it again writes it once.

    Returns
    -------
    bool
        False when ``dest`` already had the tag (nothing written).
    """
    if not log.tag:
        raise ValueError("append_audit: the log needs a tag (its rows are recognised by it)")
    log.flush()
    AuditLog(dest).close()  # creates the tables
    quoted = str(Path(dest)).replace("'", "''")
    con = log.con
    con.execute(f"ATTACH '{quoted}' AS dest")
    try:
        con.execute("BEGIN TRANSACTION")
        present = con.execute(
            "SELECT count(*) FROM dest.decisions WHERE starts_with(decision_id, ?)", [log.tag]
        ).fetchone()[0]
        if present:
            con.execute("ROLLBACK")
            return False
        for table, cols in AUDIT_TABLES.items():
            names = ", ".join(cols)
            con.execute(f"INSERT INTO dest.{table} SELECT {names} FROM {table}")
        con.execute("COMMIT")
        return True
    finally:
        con.execute("DETACH dest")


def latest_incidents(incidents: pd.DataFrame) -> pd.DataFrame:
    """Current state of each incident (the latest row per ``incident_id``)."""
    if len(incidents) == 0:
        return incidents
    return (
        incidents.sort_values(["incident_id", "recorded_at"])
        .groupby("incident_id", sort=True)
        .tail(1)
        .reset_index(drop=True)
    )


def case_lifecycle(decisions: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Rebuild each case's life from the audit trail.

    Parameters
    ----------
    decisions, actions : pandas.DataFrame
        The ``decisions`` and ``actions`` tables.

    Returns
    -------
    pandas.DataFrame
        One row per case: ``case_id``, ``subject``, ``opened_at``, ``closed_at``,
        ``n_reboots``, ``n_notifications``, ``visit_scheduled``, ``visit_cancelled``,
        ``blocked``, ``outcome`` (``visit_avoided``, ``visit``, ``merged_massive``
        or ``open``) and ``duration_min`` [min].
    """
    cols = [
        "case_id", "subject", "opened_at", "closed_at", "n_reboots", "n_notifications",
        "visit_scheduled", "visit_cancelled", "blocked", "outcome", "duration_min",
    ]  # fmt: skip
    if len(decisions) == 0:
        return pd.DataFrame(columns=cols)
    d = decisions.loc[decisions["case_id"].notna()]
    d = d.loc[~d["case_id"].astype(str).str.contains("INC")]
    opened = (
        d.loc[d["action"] == "open_case"]
        .groupby("case_id")
        .agg(subject=("subject", "first"), opened_at=("ts", "min"))
    )
    closes = d.loc[d["action"] == "close_case"]
    closed = closes.groupby("case_id").agg(closed_at=("ts", "max"), rationale=("rationale", "last"))
    acts = actions.merge(d[["decision_id", "case_id"]], on="decision_id", how="inner")
    done = acts.loc[acts["status"] != "blocked"]

    def count(kind: str, frame: pd.DataFrame) -> pd.Series:
        return frame.loc[frame["action_type"] == kind].groupby("case_id").size()

    out = opened.join(closed, how="left")
    out["n_reboots"] = count("reboot", done)
    out["n_notifications"] = count("notify", done)
    out["visit_scheduled"] = count("schedule_visit", done)
    out["visit_cancelled"] = count("cancel_visit", done)
    out["blocked"] = acts.loc[acts["status"] == "blocked"].groupby("case_id").size()
    for c in ("n_reboots", "n_notifications", "visit_scheduled", "visit_cancelled", "blocked"):
        out[c] = out[c].fillna(0).astype(int)

    def outcome(r) -> str:
        if pd.isna(r["closed_at"]):
            return "open"
        rat = json.loads(r["rationale"]) if isinstance(r["rationale"], str) else {}
        if rat.get("outcome"):
            return str(rat["outcome"])
        return "visit" if r["visit_scheduled"] > r["visit_cancelled"] else "visit_avoided"

    out["outcome"] = out.apply(outcome, axis=1) if len(out) else pd.Series(dtype=object)
    dur = (out["closed_at"] - out["opened_at"]).dt.total_seconds() / 60.0
    out["duration_min"] = np.where(out["closed_at"].notna(), dur, np.nan)
    return out.reset_index()[cols]
