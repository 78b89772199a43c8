"""Training and evaluation labels built from an operator's closed tickets (a label map).

An operator has no ground truth: what it knows about past faults is what its technicians
wrote when they closed a service order (a closure code such as "ROMPIMENTO DE FIBRA" and
free-text notes). A *label map* (:mod:`guardian_lib.label_map`) gives, for each cause
class, regular expressions searched in those fields, ignoring case and accents.

Definitions
-----------
ticket class
    The one class whose patterns match a closed ticket's fields. A ticket that no
    pattern matches is *unlabelled*; one that several classes match (e.g. closure code
    "SEM DEFEITO" but notes "trocada ONU") is *contradictory*; one that only an
    ``ignore`` pattern matches (a cancellation) is *ignored*. None of them is guessed:
    they are counted in a :class:`TicketLabelReport` with examples, and left out.
fault interval
    For a ticket of a cause class (not NO_FAULT): from the first symptom of the ticket's
    ONU before it was opened (the start of the last run of symptomatic rows, gaps under an
    hour, within ``lookback_hours``) or the customer's first contact in that window,
    whichever is earlier, until the ticket was closed. A MASSIVE_OUTAGE or EXTERNAL_NETWORK
    ticket covers every ONU of the ticket ONU's PON when ``massive_scope: pon`` (one
    customer's ticket stands for the street's outage).
event interval
    Optionally (``events:`` in the map), an ONU event type stands for a class: a dying
    gasp means the premises lost power. The interval runs from the event to the end of
    the symptomatic episode that follows it (gaps under an hour, at most
    ``lookback_hours``). Ticket intervals of higher precedence win where both apply.

These intervals play the part of the ground-truth fault table in :func:`guardian_lib.labels.build_labels`,
so the labels have the same columns and the models train on them unchanged. The one
difference: a symptomatic row that no ticket explains is *unlabelled* here (``symptomatic``
False, ``cause`` None), not UNKNOWN, since most faults never get a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.errors import WarehouseError
from guardian_lib.features import symptomatic
from guardian_lib.label_map import LabelMap, classify_tickets
from guardian_lib.labels import MASSIVE_CLASSES, NOT_SERVICE_AFFECTING_KINDS, build_labels
from guardian_lib.schema import US_PER_S

__all__ = [
    "TicketLabelReport",
    "ticket_faults",
    "event_faults",
    "build_ticket_labels",
    "count_tickets",
    "load_ticket_inputs",
]

_GAP_US = 3600 * US_PER_S  # symptomatic rows less than an hour apart are one episode
_EXAMPLES = 5


@dataclass
class TicketLabelReport:
    """What the label map made of a run's tickets.

    ``counts`` has one entry per status (``labelled``, ``no_fault``, ``unlabelled``,
    ``contradictory``, ``ignored``, ``open``, ``no_onu``); ``per_class`` counts the
    labelled tickets by class; ``examples`` keeps a few tickets of each status that was
    not labelled, so the operator can extend the map.
    """

    counts: dict[str, int] = field(default_factory=dict)
    per_class: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: int = 0
    event_faults: dict[str, int] = field(default_factory=dict)
    reboots: dict[str, int] = field(default_factory=dict)
    labelled_rows: int = 0
    unlabelled_symptomatic_rows: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON, MLflow)."""
        return {
            "counts": self.counts,
            "per_class": self.per_class,
            "examples": self.examples,
            "faults": self.faults,
            "event_faults": self.event_faults,
            "reboots": self.reboots,
            "labelled_rows": self.labelled_rows,
            "unlabelled_symptomatic_rows": self.unlabelled_symptomatic_rows,
        }

    def summary(self) -> str:
        """One line for the console."""
        c = self.counts
        return (
            f"tickets: {c.get('labelled', 0)} labelled {self.per_class}, "
            f"{c.get('no_fault', 0)} no fault, {c.get('unlabelled', 0)} unlabelled, "
            f"{c.get('contradictory', 0)} contradictory, {c.get('ignored', 0)} ignored, "
            f"{c.get('open', 0)} open, {c.get('no_onu', 0)} without ONU"
        )


def _us(values: Any) -> np.ndarray:
    return pd.to_datetime(values, utc=True).to_numpy("datetime64[us]").astype(np.int64)


def _first_symptom_us(ts: np.ndarray, sym: np.ndarray, opened: int, lookback: int) -> int | None:
    """Start of the last symptomatic episode at or before ``opened`` (within ``lookback``)."""
    window = (ts <= opened) & (ts >= opened - lookback) & sym
    hits = np.sort(ts[window])
    if not len(hits):
        return None
    k = len(hits) - 1
    while k > 0 and hits[k] - hits[k - 1] < _GAP_US:
        k -= 1
    return int(hits[k])


def ticket_faults(
    classified: pd.DataFrame,
    features: pd.DataFrame,
    label_map: LabelMap,
    contacts: pd.DataFrame | None = None,
    onus: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Fault intervals of the labelled tickets, in the ground-truth fault table's columns.

    Parameters
    ----------
    classified : pandas.DataFrame
        From :func:`classify_tickets`, with ``onu_id``, ``opened_at`` and ``closed_at``.
    features : pandas.DataFrame
        ``ts``, ``onu_id`` and the columns :func:`guardian_lib.features.symptomatic` reads.
    label_map : LabelMap
    contacts : pandas.DataFrame, optional
        ``ts`` and ``onu_id`` of customer contacts (calls, chats).
    onus : pandas.DataFrame, optional
        Inventory (``onu_id``, ``pon_id``), for ``massive_scope: pon``.

    Returns
    -------
    pandas.DataFrame
        ``fault_id`` (the ticket), ``kind`` ('ticket'), ``cause_class``, ``start_at``,
        ``impact_start_at`` (= ``start_at``: a ticket says when the customer was hurt,
        not when the fault began), ``end_at`` and ``affected_onus``.
    """
    lab = classified[(classified["status"] == "labelled") & classified["onu_id"].notna()]
    f_onu = features["onu_id"].astype(str).to_numpy()
    f_ts = _us(features["ts"])
    f_sym = symptomatic(features)
    by_onu = pd.Series(np.arange(len(features))).groupby(f_onu).indices
    c_by_onu: dict[str, np.ndarray] = {}
    if contacts is not None and len(contacts):
        c = contacts.dropna(subset=["onu_id"])
        c_ts = _us(c["ts"])
        for o, idx in (
            pd.Series(np.arange(len(c))).groupby(c["onu_id"].astype(str).to_numpy()).indices.items()
        ):
            c_by_onu[o] = c_ts[idx]
    pon_members: dict[str, list[str]] = {}
    pon_of: dict[str, str] = {}
    if onus is not None and label_map.massive_scope == "pon" and "pon_id" in onus:
        inv = onus.dropna(subset=["pon_id"])
        for pon, g in inv.groupby("pon_id"):
            pon_members[str(pon)] = g["onu_id"].astype(str).tolist()
        pon_of = dict(zip(inv["onu_id"].astype(str), inv["pon_id"].astype(str), strict=True))
    lookback = int(label_map.lookback_hours * 3600 * US_PER_S)
    rows = []
    for t in lab.itertuples(index=False):
        onu = str(t.onu_id)
        opened = int(_us([t.opened_at])[0])
        closed = int(_us([t.closed_at])[0])
        starts = [opened]
        idx = by_onu.get(onu)
        if idx is not None:
            s = _first_symptom_us(f_ts[idx], f_sym[idx], opened, lookback)
            if s is not None:
                starts.append(s)
        ct = c_by_onu.get(onu)
        if ct is not None:
            before = ct[(ct <= opened) & (ct >= opened - lookback)]
            if len(before):
                starts.append(int(before.min()))
        affected = [onu]
        if t.label in MASSIVE_CLASSES and onu in pon_of:
            affected = pon_members[pon_of[onu]]
        start = min(starts)
        rows.append((str(t.os_id), t.label, start, max(closed, start), affected))
    out = pd.DataFrame(rows, columns=["fault_id", "cause_class", "s", "e", "affected_onus"])
    out.insert(1, "kind", "ticket")
    ts = pd.to_datetime(out.pop("s"), unit="us", utc=True)
    out["start_at"] = ts
    out["impact_start_at"] = ts
    out["end_at"] = pd.to_datetime(out.pop("e"), unit="us", utc=True)
    return out[["fault_id", "kind", "cause_class", "start_at", "impact_start_at", "end_at",
                "affected_onus"]]  # fmt: skip


def event_faults(events: pd.DataFrame, features: pd.DataFrame, label_map: LabelMap) -> pd.DataFrame:
    """Fault intervals of the ONU events the label map names, in the ground-truth fault table's columns.

    Parameters
    ----------
    events : pandas.DataFrame
        ``ts``, ``entity_id`` (the ONU) and ``type``.
    features : pandas.DataFrame
        ``ts``, ``onu_id`` and the columns :func:`guardian_lib.features.symptomatic` reads.
    label_map : LabelMap

    Returns
    -------
    pandas.DataFrame
        As :func:`ticket_faults`; ``kind`` is ``'event'`` or ``'not_service_affecting'``.
    """
    cols = ["fault_id", "kind", "cause_class", "start_at", "impact_start_at", "end_at",
            "affected_onus"]  # fmt: skip
    ev = events[events["type"].isin(list(label_map.events))]
    if not len(ev):
        return pd.DataFrame(columns=cols)
    f_onu = features["onu_id"].astype(str).to_numpy()
    f_ts = _us(features["ts"])
    f_sym = symptomatic(features)
    by_onu = pd.Series(np.arange(len(features))).groupby(f_onu).indices
    cap = int(label_map.lookback_hours * 3600 * US_PER_S)
    e_ts = _us(ev["ts"])
    rows = []
    for k, (onu, typ) in enumerate(zip(ev["entity_id"].astype(str), ev["type"], strict=True)):
        start = int(e_ts[k])
        end = start + 1
        idx = by_onu.get(onu)
        if idx is not None:
            # The symptomatic episode that follows the event, gaps under an hour.
            t, s = f_ts[idx], f_sym[idx]
            after = np.sort(t[(t >= start) & (t <= start + cap) & s])
            if len(after):
                stop = 1
                while stop < len(after) and after[stop] - after[stop - 1] < _GAP_US:
                    stop += 1
                end = int(after[stop - 1]) + 1
        rule = label_map.events[typ]
        kind = "event" if rule.service_affecting else NOT_SERVICE_AFFECTING_KINDS[-1]
        rows.append((f"{typ}@{onu}@{start}", kind, rule.cause, start, end, [onu]))
    out = pd.DataFrame(rows, columns=["fault_id", "kind", "cause_class", "s", "e", "affected_onus"])
    ts = pd.to_datetime(out.pop("s"), unit="us", utc=True)
    out["start_at"] = ts
    out["impact_start_at"] = ts
    out["end_at"] = pd.to_datetime(out.pop("e"), unit="us", utc=True)
    return out[cols]


def _examples(frame: pd.DataFrame) -> list[dict[str, Any]]:
    cols = [c for c in ("os_id", "closure_code", "notes", "matched") if c in frame]
    return [
        {k: (None if pd.isna(v) else str(v)) for k, v in r.items()}
        for r in frame[cols].head(_EXAMPLES).to_dict("records")
    ]


def count_tickets(
    tickets: pd.DataFrame,
    label_map: LabelMap,
    customers: pd.DataFrame | None = None,
    observed_until: pd.Timestamp | None = None,
    counted_from: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, TicketLabelReport]:
    """The tickets classified by the label map, and the report's ticket counts.

    What :func:`build_ticket_labels` reports about the tickets themselves (counts by
    status and by class, examples); the fault intervals and row counts need the
    features and are added there.

    Parameters
    ----------
    tickets, label_map, customers, observed_until, counted_from
        As for :func:`build_ticket_labels`.

    Returns
    -------
    (classified, report)
        Every ticket closed by ``observed_until`` (or not closed) with its status and
        label; the report with ``counts``, ``per_class`` and ``examples`` set.
    """
    t = tickets.copy()
    if "onu_id" not in t:
        t["onu_id"] = None
    if customers is not None and "customer_id" in t:
        onu_of = dict(zip(customers["customer_id"].astype(str), customers["onu_id"], strict=True))
        missing = t["onu_id"].isna()
        t.loc[missing, "onu_id"] = t.loc[missing, "customer_id"].astype(str).map(onu_of)
    if observed_until is not None:
        cut = pd.Timestamp(observed_until)
        closed_at = pd.to_datetime(t["closed_at"], utc=True)
        keep = closed_at.isna() | (closed_at <= cut)
        # The parsed column: a tickets table whose closed_at is all empty reads as floats
        # (NaN), and NaT cannot be written into a float column.
        t = t[keep].assign(closed_at=closed_at[keep])
    classified = classify_tickets(t.reset_index(drop=True), label_map)
    since = None if counted_from is None else _utc(counted_from)
    counted = classified
    if since is not None:
        closed_at = pd.to_datetime(classified["closed_at"], utc=True)
        counted = classified[(closed_at.isna() | (closed_at >= since)).to_numpy()]
    report = TicketLabelReport()
    no_onu = (counted["status"] == "labelled") & counted["onu_id"].isna()
    report.counts = {
        s: int((counted["status"] == s).sum())
        for s in ("labelled", "no_fault", "unlabelled", "contradictory", "ignored", "open")
    }
    report.counts["no_onu"] = int(no_onu.sum())
    lab = counted[counted["status"] == "labelled"]
    report.per_class = {str(k): int(v) for k, v in lab["label"].value_counts().sort_index().items()}
    for s in ("unlabelled", "contradictory"):
        report.examples[s] = _examples(counted[counted["status"] == s])
    return classified, report


def build_ticket_labels(
    features: pd.DataFrame,
    tickets: pd.DataFrame,
    label_map: LabelMap,
    contacts: pd.DataFrame | None = None,
    onus: pd.DataFrame | None = None,
    customers: pd.DataFrame | None = None,
    observed_until: pd.Timestamp | None = None,
    events: pd.DataFrame | None = None,
    reboots: pd.DataFrame | None = None,
    counted_from: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, TicketLabelReport]:
    """Labels aligned with ``features`` rows, from closed tickets.

    Parameters
    ----------
    features : pandas.DataFrame
    tickets : pandas.DataFrame
        ``os_id``, ``customer_id`` and/or ``onu_id``, ``opened_at``, ``closed_at``,
        ``closure_code``, ``notes``.
    label_map : LabelMap
    contacts, onus : pandas.DataFrame, optional
        See :func:`ticket_faults`.
    customers : pandas.DataFrame, optional
        Inventory (``customer_id``, ``onu_id``): the ONU of a ticket that names only the
        customer.
    observed_until : pandas.Timestamp, optional
        Only tickets closed by then count (a training cut-off); risk labels whose horizon
        passes it are NaN.
    events : pandas.DataFrame, optional
        ONU events (``ts``, ``entity_id``, ``type``) for the map's ``events:`` rules.
    reboots : pandas.DataFrame, optional
        The autopilot's executed reboots (``ts``, ``onu_id``): those that fixed the
        customer become CUSTOMER_PREMISES intervals
        (:func:`guardian_lib.labels_feedback.reboot_faults`).
    counted_from : pandas.Timestamp, optional
        The report covers only this period (e.g. the held-out rows of an evaluation): the
        tickets that can label a row at or after it (closed then or later, or not closed),
        the faults ending then or later and the feature rows from then on. The labels are
        built from every ticket either way (a fault that began before may still label a
        later row). ``reboots`` counts are over the whole run.

    Returns
    -------
    (pandas.DataFrame, TicketLabelReport)
        The labels in :func:`guardian_lib.labels.build_labels`'s columns, and the report.
    """
    classified, report = count_tickets(tickets, label_map, customers, observed_until, counted_from)
    since = None if counted_from is None else _utc(counted_from)
    faults = ticket_faults(classified, features, label_map, contacts=contacts, onus=onus)
    report.faults = int(_ending_from(faults, since).sum())
    if events is not None and label_map.events:
        if observed_until is not None:
            events = events[pd.to_datetime(events["ts"], utc=True) <= pd.Timestamp(observed_until)]
        from_events = event_faults(events, features, label_map)
        report.event_faults = {
            str(k): int(v)
            for k, v in from_events.loc[_ending_from(from_events, since), "fault_id"]
            .str.split("@")
            .str[0]
            .value_counts()
            .sort_index()
            .items()
        }
        faults = pd.concat([faults, from_events], ignore_index=True) if len(from_events) else faults
    if reboots is not None and len(reboots):
        from guardian_lib.labels_feedback import reboot_faults

        if observed_until is not None:
            reboots = reboots[
                pd.to_datetime(reboots["ts"], utc=True) <= pd.Timestamp(observed_until)
            ]
        from_reboots, report.reboots = reboot_faults(reboots, features)
        faults = (
            pd.concat([faults, from_reboots], ignore_index=True) if len(from_reboots) else faults
        )
    labels = build_labels(features, faults, observed_until=observed_until)
    # A symptom no ticket explains is unknown to the operator, not a fault of unknown cause.
    unexplained = labels["symptomatic"].to_numpy() & (labels["cause"] == "UNKNOWN").to_numpy()
    labels.loc[unexplained, "symptomatic"] = False
    labels.loc[unexplained, "cause"] = None
    labels.loc[unexplained, "massive"] = np.nan
    rows = (
        np.ones(len(labels), dtype=bool)
        if since is None
        else _us(features["ts"]) >= _us([since])[0]
    )
    report.labelled_rows = int((labels["symptomatic"].to_numpy(dtype=bool) & rows).sum())
    report.unlabelled_symptomatic_rows = int((unexplained & rows).sum())
    return labels, report


def _utc(value: pd.Timestamp | str) -> pd.Timestamp:
    """A timestamp in UTC; naive values are taken as UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _ending_from(faults: pd.DataFrame, since: pd.Timestamp | None) -> np.ndarray:
    """Faults (``end_at``) that last until ``since`` or later (all without ``since``)."""
    if since is None:
        return np.ones(len(faults), dtype=bool)
    return (pd.to_datetime(faults["end_at"], utc=True) >= since).to_numpy()


def load_ticket_inputs(run: Path | str) -> dict[str, pd.DataFrame | None]:
    """The tickets, contacts and inventory of an ingested run.

    Returns
    -------
    dict
        ``tickets`` (``service_orders`` with ``closure_code`` and ``notes``),
        ``contacts`` (``ts``, ``onu_id`` of CUSTOMER_CALL events; None without events),
        ``onus`` and ``customers`` (None when not imported), ``events`` (``ts``,
        ``entity_id``, ``type`` of ONU events; None without events).

    Raises
    ------
    WarehouseError
        No ``service_orders`` table, or one without ``closure_code`` / ``notes`` (a
        simulated run: its tickets have outcomes, not closure codes; export it with
        ``guardian simulate --export operator`` and ingest the export).
    """
    from guardian_lib.warehouse import connect

    con = connect(run)
    try:
        tables = {
            r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if "service_orders" not in tables:
            raise WarehouseError(
                f"{run}: no service_orders table: labels from tickets need imported tickets "
                "(tables.tickets in the ingest mapping)"
            )
        tickets = con.execute("SELECT * FROM service_orders").df()
        lacking = [c for c in ("closure_code", "notes") if c not in tickets]
        if lacking:
            raise WarehouseError(
                f"{run}: service_orders has no {' / '.join(lacking)} column: labels from "
                "tickets need the closure code and the technician's notes"
            )
        onus = con.execute("SELECT * FROM onus").df() if "onus" in tables else None
        customers = con.execute("SELECT * FROM customers").df() if "customers" in tables else None
        contacts = None
        onu_events = None
        if "events" in tables:
            onu_events = con.execute(
                "SELECT ts, entity_id, type FROM events WHERE entity_type = 'onu'"
            ).df()
        if "events" in tables and customers is not None:
            calls = con.execute(
                "SELECT ts, entity_id AS customer_id FROM events WHERE type = 'CUSTOMER_CALL'"
            ).df()
            onu_of = dict(
                zip(customers["customer_id"].astype(str), customers["onu_id"], strict=True)
            )
            calls["onu_id"] = calls["customer_id"].astype(str).map(onu_of)
            contacts = calls[["ts", "onu_id"]]
    finally:
        con.close()
    return {
        "tickets": tickets,
        "contacts": contacts,
        "onus": onus,
        "customers": customers,
        "events": onu_events,
    }
