"""Replay a run's history through the alerting rules (for tuning them).

Observations are rebuilt from a run folder (:class:`~guardian_lib.layout.RunLayout`):

* ``incidents`` — the audit trail's incidents (``audit.duckdb``, else the warehouse),
  open from ``start_at`` to ``end_at``, with the OLT / PON / box / region they cover;
* ``events`` — SILVER events on ONUs, in the evaluation step they happened;
* ``health`` — per PON the share of its ONUs (in the inventory) offline in SILVER
  telemetry, per OLT ``olt_reachable`` (0 when none of its ONUs answers), and ``level:
  autopilot`` with ``breaker_tripped`` when the audit shows decisions blocked by the
  circuit breaker. The telemetry is read as ``guardian decide`` reads it
  (:class:`~guardian_lib.history.HistoryTelemetrySource`, on the SILVER grid),
  with the missed-poll rule ``guardian operate`` applies
  (:class:`~guardian_lib.loop.missed.MissedPolls`): an ONU without a row keeps its
  previous reading for ``missed_poll_grace_steps`` steps, past that it counts offline
  (without the ACS evidence operate weighs for a silent OLT: SILVER holds none); a step
  without any row repeats the previous step's readings;
* ``predictions`` — GOLD ``ml_predictions`` (``risk_24h``) joined with the customer.

Every evaluation step goes through :class:`~guardian_lib.alerts.rules.RuleEngine` and
:class:`~guardian_lib.alerts.dispatch.Dispatcher`; customer notices are planned from the
audit's actions as ``guardian operate`` sends them (the autopilot's ``notify`` to an
incident's members, verified reboots, visits held by an outage) and the incidents' ends.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from guardian_lib.alerts.action_notices import (
    IncidentLookup,
    MemberLookup,
    notices_for_outcome,
    outcomes_from_audit,
)
from guardian_lib.alerts.config import AlertingConfig, load_alerting
from guardian_lib.alerts.dispatch import Dispatcher
from guardian_lib.alerts.notices import NoticePlanner
from guardian_lib.alerts.rules import RuleEngine
from guardian_lib.alerts.silences import SilenceStore
from guardian_lib.audit import latest_incidents
from guardian_lib.errors import WarehouseError
from guardian_lib.history import HistoryTelemetrySource, silver_grid_s, silver_range
from guardian_lib.layout import RunLayout
from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS
from guardian_lib.warehouse import connect, silver_files

__all__ = ["RunHistory", "load_history", "replay_run"]

_BREAKER_RULE = "circuit_breaker"
#: Incident scope → the inventory column (of ``RunHistory.onus``) it covers.
_SCOPE_COLS = {"olt": "olt", "bng": "olt", "pon": "pon", "box": "box"}


class RunHistory:
    """What a run holds, as frames (inventory labels, incidents, events, health, …)."""

    def __init__(self, onus: pd.DataFrame, customers: pd.DataFrame, incidents: pd.DataFrame,
                 events: pd.DataFrame, health: pd.DataFrame, predictions: pd.DataFrame,
                 actions: pd.DataFrame, breaker: pd.Series,
                 decisions: pd.DataFrame | None = None) -> None:  # fmt: skip
        self.onus, self.customers, self.incidents = onus, customers, incidents
        self.events, self.health, self.predictions = events, health, predictions
        self.actions, self.breaker = actions, breaker
        self.decisions = decisions if decisions is not None else pd.DataFrame()


def _audit_tables(layout: RunLayout) -> dict[str, pd.DataFrame]:
    for path in (layout.audit, layout.warehouse):
        if not path.exists():
            continue
        con = duckdb.connect(str(path), read_only=True)
        try:
            names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
            if "incidents" in names:
                con.execute("SET TimeZone = 'UTC'")
                return {
                    t: con.execute(f"SELECT * FROM {t}").df()
                    for t in ("incidents", "actions", "decisions")
                    if t in names
                }
        finally:
            con.close()
    return {}


def _scope_labels(stype: str, key: str, onus: pd.DataFrame) -> dict[str, str]:
    col = _SCOPE_COLS.get(stype)
    out: dict[str, str] = {}
    if col is None:
        return out
    beneath = onus.loc[onus[col] == key]
    out[col] = key
    for c in ("olt", "pon", "box", "region"):
        vals = beneath[c].dropna().unique() if len(beneath) else []
        if c not in out and len(vals) == 1:
            out[c] = str(vals[0])
    return out


def _pon_health(con: Any, onus: pd.DataFrame, grace_steps: int) -> pd.DataFrame:
    """Per SILVER grid step and PON, the share of the PON's ONUs offline. [-]

    The steps of :class:`HistoryTelemetrySource` (``online`` only): the missed-poll rule
    applied, an ONU not read past its grace counted offline, a step without any row
    repeating the previous one. The denominator is the PON's ONUs in the inventory.

    Returns
    -------
    pandas.DataFrame
        ``ts`` (UTC), ``pon``, ``olt``, ``offline_share``, by time then PON.
    """
    cols = ["ts", "pon", "olt", "offline_share"]
    span = silver_range(con)
    if span is None or not len(onus):
        return pd.DataFrame(columns=cols)
    lo, hi = span
    pons, code = np.unique(onus["pon"].astype(str).to_numpy(), return_inverse=True)
    size = np.bincount(code, minlength=len(pons))
    olt_of = onus.assign(pon=onus["pon"].astype(str)).drop_duplicates("pon").set_index("pon")
    src = HistoryTelemetrySource(con, onus["onu"].to_numpy(), lo, hi, silver_grid_s(con, lo, hi),
                                 grace_steps, measures=("online",), events=False)  # fmt: skip
    stamps, shares = [], []
    for tick in src:
        stamps.append(tick.ts)
        shares.append(np.bincount(code, weights=~tick.online, minlength=len(pons)) / size)
    return pd.DataFrame({
        "ts": pd.DatetimeIndex(stamps).repeat(len(pons)),
        "pon": np.tile(pons, len(stamps)),
        "olt": np.tile(olt_of.loc[pons, "olt"].to_numpy(), len(stamps)),
        "offline_share": np.concatenate(shares) if shares else np.empty(0),
    })  # fmt: skip


def load_history(run: str | Path, grace_steps: int = MISSED_POLL_GRACE_STEPS) -> RunHistory:
    """Read a run folder's inventory, audit, events, telemetry health and predictions.

    Parameters
    ----------
    run : path
        A simulated (and ingested) run folder.
    grace_steps : int, default :data:`~guardian_lib.loop.missed.MISSED_POLL_GRACE_STEPS`
        Steps an ONU without a telemetry row keeps its previous reading (the site file's
        ``missed_poll_grace_steps``). [-]

    Raises
    ------
    WarehouseError
        The run has no warehouse (not simulated / ingested).
    ValueError
        ``grace_steps`` < 0.
    """
    layout = RunLayout(run)
    if not layout.warehouse.exists():
        raise WarehouseError(f"{layout.warehouse}: missing (run `guardian ingest --run {run}`)")
    if grace_steps < 0:
        raise ValueError(f"missed_poll_grace_steps: expected >= 0, got {grace_steps}")
    con = connect(run)  # the lake views: ``telemetry`` over the committed SILVER files
    try:
        onus = con.execute(
            "SELECT o.onu_id AS onu, o.serial, o.pon_id AS pon, p.olt_id AS olt, "
            "o.splitter_id AS box, l.region, c.customer_id AS customer, c.segment, c.cpe_id "
            "FROM onus o JOIN pons p USING (pon_id) JOIN olts l ON l.olt_id = p.olt_id "
            "LEFT JOIN customers c ON c.onu_id = o.onu_id ORDER BY o.onu_id"
        ).df()
        customers = onus.dropna(subset=["customer"]).reset_index(drop=True)
        # the committed SILVER files (replaced ones stay on disk for a while)
        silver_ev = [str(f) for f in silver_files(run, "events", con)]
        events = pd.DataFrame(columns=["ts", "entity_id", "type"])
        if silver_ev:
            events = con.execute(
                "SELECT ts, entity_id, type FROM read_parquet(?, union_by_name=true) "
                "WHERE entity_type = 'onu'",
                [silver_ev],
            ).df()
        health = _pon_health(con, onus, grace_steps)
    finally:
        con.close()
    serial_to_onu = dict(zip(onus["serial"], onus["onu"], strict=True))
    # An event names its ONU by id or by serial (what the OLT reports).
    events["onu"] = events["entity_id"].where(events["entity_id"].isin(onus["onu"]))
    events["onu"] = events["onu"].fillna(events["entity_id"].map(serial_to_onu))
    events = events.dropna(subset=["onu"]).merge(onus, on="onu", how="left")

    audit = _audit_tables(layout)
    inc = latest_incidents(audit.get("incidents", pd.DataFrame()))
    if len(inc):
        beneath = []
        for r in inc.itertuples():
            labels = _scope_labels(str(r.scope_type), str(r.scope_key), onus)
            col = _SCOPE_COLS.get(str(r.scope_type))
            n = int((customers[col] == r.scope_key).sum()) if col else 0
            beneath.append((labels, n))
        inc = inc.assign(labels=[b[0] for b in beneath], customers_beneath=[b[1] for b in beneath])
    decisions = audit.get("decisions", pd.DataFrame(columns=["ts", "blocked_rule"]))
    breaker = decisions.loc[decisions["blocked_rule"] == _BREAKER_RULE, "ts"]
    preds = pd.DataFrame(columns=["ts", "onu", "risk_24h"])
    if any(layout.predictions.glob("*.parquet")):
        p = pd.read_parquet(layout.predictions, columns=["ts", "onu_id", "risk_24h"])
        preds = p.rename(columns={"onu_id": "onu"}).merge(customers, on="onu", how="inner")
    return RunHistory(onus, customers, inc, events, health, preds,
                      audit.get("actions", pd.DataFrame()), breaker, decisions)  # fmt: skip


def _object_strings(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its string columns as object arrays (the same values, missing as NaN)."""
    strings = [c for c in df.columns if pd.api.types.is_string_dtype(df[c].dtype)]
    return df.astype(dict.fromkeys(strings, object)) if strings else df


def _records(df: pd.DataFrame, **extra: Any) -> list[dict[str, Any]]:
    """``df.to_dict("records")`` with ``extra`` in every row: the same Python values
    (``tolist`` boxes as ``to_dict`` does), without a boxing call per value."""
    names = list(df.columns)
    columns = [df[c].tolist() for c in names]
    return [{**dict(zip(names, row, strict=True)), **extra} for row in zip(*columns, strict=True)]


def _grid(h: RunHistory, step: pd.Timedelta) -> pd.DatetimeIndex:
    stamps = [s for s in (h.health["ts"], h.events["ts"], h.incidents.get("start_at"),
                          h.incidents.get("end_at"), h.predictions["ts"]) if s is not None]  # fmt: skip
    allts = pd.concat([pd.to_datetime(pd.Series(s), utc=True) for s in stamps]).dropna()
    if allts.empty:
        return pd.DatetimeIndex([], tz="UTC")
    return pd.date_range(allts.min().floor(step), allts.max().ceil(step) + 12 * step, freq=step)


def replay_run(
    run: str | Path,
    config: AlertingConfig | None = None,
    silences: SilenceStore | None = None,
    opted_out: tuple[str, ...] = (),
    lang: str = "pt-BR",
    eta_h: float = 4.0,
    missed_poll_grace_steps: int = MISSED_POLL_GRACE_STEPS,
) -> dict[str, Any]:
    """What the rules would have fired over a run, raw and after grouping / inhibition.

    Parameters
    ----------
    run : path
        A simulated (and ingested) run folder.
    config : AlertingConfig, optional
        Default: the shipped rule file.
    silences : SilenceStore, optional
    opted_out : tuple of str
        Customers who opted out of notices.
    lang : {'pt-BR', 'en'}
        Language of the customer notices.
    eta_h : float
        ETA announced in ``visit_cancelled`` after the incident's start (``outage_detected``
        announces the ``notify`` decision's ``until_h``, as operate does). [h]
    missed_poll_grace_steps : int, default :data:`~guardian_lib.loop.missed.MISSED_POLL_GRACE_STEPS`
        Steps an ONU without a telemetry row keeps its previous reading before it counts
        offline in the PON / OLT health (the site file's value for ``guardian operate``). [-]

    Returns
    -------
    dict
        ``incidents``, ``alerts_raw``, ``alerts_notified``, ``customer_notices`` (each
        with ``count`` and ``list``), ``muted`` and ``noise_reduction`` (raw alerts per
        firing notification), ``missed_poll_grace_steps``.
    """
    cfg = config or load_alerting()
    h = load_history(run, missed_poll_grace_steps)
    step = pd.Timedelta(seconds=cfg.evaluation_interval_s or 300.0)
    eng, disp = RuleEngine(cfg), Dispatcher(cfg, silences)
    observer = _Observations(h)
    notifications = []
    for now in _grid(h, step):
        notifications += disp.step(now, eng.evaluate(now, observer.at(now, step)))
    notices = _plan_notices(h, opted_out, lang, eta_h)
    out = _summary(run, cfg, step, h.incidents, eng, disp, notifications, notices)
    return {**out, "missed_poll_grace_steps": int(missed_poll_grace_steps)}


class _Observations:
    """A run's frames, prepared once, cut into the observations of one evaluation step."""

    def __init__(self, h: RunHistory) -> None:
        self.health = h.health.assign(ts=pd.to_datetime(h.health["ts"], utc=True))
        self.olt_health = (
            self.health.groupby(["ts", "olt"], as_index=False)["offline_share"].min()
            if len(self.health)
            else pd.DataFrame(columns=["ts", "olt", "offline_share"])
        )
        self.events = _object_strings(h.events.assign(ts=pd.to_datetime(h.events["ts"], utc=True)))
        # Object columns, not pandas' Arrow-backed strings: each step's rows become dicts
        # for the rule engine, and iterating an Arrow string array one value at a time
        # cost most of a week's replay (about 0.17 s a step for 2,048 customers).
        self.predictions = _object_strings(
            h.predictions.assign(ts=pd.to_datetime(h.predictions["ts"], utc=True))
        )
        self.incidents = h.incidents
        self.region = h.onus.drop_duplicates("pon").set_index("pon")["region"].to_dict()
        self.olt_region = h.onus.drop_duplicates("olt").set_index("olt")["region"].to_dict()
        self.breaker = pd.to_datetime(h.breaker, utc=True)

    def at(self, now: pd.Timestamp, step: pd.Timedelta) -> dict[str, list[dict[str, Any]]]:
        """Observations of the step ``(now - step, now]``, by kind."""
        lo = now - step
        obs: dict[str, list[dict[str, Any]]] = {}
        if len(self.incidents):
            obs["incidents"] = self._open_incidents(now)
        ev = self.events
        obs["events"] = _records(ev.loc[(ev["ts"] > lo) & (ev["ts"] <= now)], level="onu")
        obs["health"] = self._health(lo, now)
        if len(self.predictions):
            obs["predictions"] = self._latest_predictions(now, step)
        return obs

    def _open_incidents(self, now: pd.Timestamp) -> list[dict[str, Any]]:
        inc = self.incidents
        end = pd.to_datetime(inc["end_at"], utc=True)
        start = pd.to_datetime(inc["start_at"], utc=True)
        open_ = inc.loc[(start <= now) & (end.isna() | (end > now))]
        return [
            {"scope_type": r.scope_type, "scope_key": r.scope_key, "level": "incident",
             "incident_id": r.incident_id, "cause": r.cause, **r.labels,
             "affected_customers": int(r.affected_customers)
             if pd.notna(r.affected_customers) else r.customers_beneath}
            for r in open_.itertuples()
        ]  # fmt: skip

    def _health(self, lo: pd.Timestamp, now: pd.Timestamp) -> list[dict[str, Any]]:
        """The step's last PON health, OLT reachability and a tripped circuit breaker."""
        health, olt_health, region, olt_region = (
            self.health,
            self.olt_health,
            self.region,
            self.olt_region,
        )
        hp = health.loc[(health["ts"] > lo) & (health["ts"] <= now)]
        hp = hp.loc[hp["ts"] == hp["ts"].max()] if len(hp) else hp
        ho = olt_health.loc[olt_health["ts"] == hp["ts"].max()] if len(hp) else olt_health[:0]
        out = [
            {"level": "pon", "pon": r.pon, "olt": r.olt, "region": region.get(r.pon),
             "offline_share": float(r.offline_share)} for r in hp.itertuples()
        ] + [
            {"level": "olt", "olt": r.olt, "region": olt_region.get(r.olt),
             "olt_reachable": int(r.offline_share < 1.0)} for r in ho.itertuples()
        ]  # fmt: skip
        if ((self.breaker > lo) & (self.breaker <= now)).any():
            out.append({"level": "autopilot", "breaker_tripped": 1,
                        "reason": "reboots failing verification"})  # fmt: skip
        return out

    def _latest_predictions(self, now: pd.Timestamp, step: pd.Timedelta) -> list[dict[str, Any]]:
        """Each ONU's latest prediction of the last hour (or step, if longer)."""
        pr = self.predictions
        window = pr.loc[(pr["ts"] > now - max(step, pd.Timedelta(hours=1))) & (pr["ts"] <= now)]
        latest = window.sort_values("ts").groupby("onu").tail(1)
        return _records(latest, level="customer")


def _summary(
    run: str | Path,
    cfg: AlertingConfig,
    step: pd.Timedelta,
    inc: pd.DataFrame,
    eng: RuleEngine,
    disp: Dispatcher,
    notifications: list,
    notices: NoticePlanner,
) -> dict[str, Any]:
    """The result of :func:`replay_run` (see its Returns)."""
    firing_notes = [n for n in notifications if n.status == "firing"]
    raw = eng.fired
    return {
        "run": str(run),
        "rules": str(cfg.path) if cfg.path else "default",
        "evaluation_interval_s": step.total_seconds(),
        "incidents": {
            "count": len(inc),
            "list": [
                {
                    "incident_id": r.incident_id,
                    "scope_type": r.scope_type,
                    "scope_key": r.scope_key,
                    "start_at": str(r.start_at),
                    "end_at": str(r.end_at),
                    "cause": r.cause,
                    "customers_beneath": int(r.customers_beneath),
                }
                for r in inc.itertuples()
            ],
        },  # fmt: skip
        "alerts_raw": {
            "count": len(raw),
            "by_rule": dict(sorted(Counter(a.labels["alertname"] for a in raw).items())),
            "list": [a.to_dict() for a in raw],
        },
        "alerts_notified": {
            "count": len(notifications),
            "firing": len(firing_notes),
            "resolved": len(notifications) - len(firing_notes),
            "by_receiver": dict(sorted(Counter(n.receiver for n in notifications).items())),
            "list": [n.to_dict() for n in notifications],
        },
        "muted": dict(disp.muted),
        "noise_reduction": round(len(raw) / len(firing_notes), 3) if firing_notes else None,
        "customer_notices": {
            "count": len(notices.notices),
            "by_template": dict(sorted(Counter(n.template for n in notices.notices).items())),
            "deferred_quiet_hours": sum(n.deferred for n in notices.notices),
            "skipped": dict(notices.skipped),
            "list": [n.to_dict() for n in notices.notices],
        },
    }


def _members(decisions: pd.DataFrame) -> dict[str, dict[str, pd.Timestamp]]:
    """Each incident's members from the audit (``open_incident`` and ``join_incident``
    decisions: their targets), with when each became a member, by incident id."""
    out: dict[str, dict[str, pd.Timestamp]] = {}
    if not len(decisions) or "action" not in decisions.columns:
        return out
    rows = decisions.loc[decisions["action"].isin(("open_incident", "join_incident"))]
    for r in rows.itertuples():
        if r.case_id is None or pd.isna(r.case_id):
            continue
        targets = json.loads(r.targets) if isinstance(r.targets, str) else list(r.targets)
        at = pd.Timestamp(r.ts)
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        joined = out.setdefault(str(r.case_id), {})
        for t in targets:
            joined[str(t)] = min(joined.get(str(t), at), at)
    return out


def _incident_lookups(h: RunHistory) -> tuple[IncidentLookup, MemberLookup]:
    """``incident_of(onu, at)`` and ``member_of(onu, at)`` over a run's incidents, as
    ``guardian operate``'s notifier looks them up: the incident open at ``at`` that has
    the ONU as a member (the audit's ``open_incident`` / ``join_incident`` targets), else
    (``incident_of`` only) the latest open one whose scope (OLT, PON, box) holds it."""
    inc = h.incidents
    if not len(inc):
        return (lambda onu, at: None), (lambda onu, at: None)
    inc = inc.assign(start_ts=pd.to_datetime(inc["start_at"], utc=True),
                     end_ts=pd.to_datetime(inc["end_at"], utc=True)).sort_values("start_ts")  # fmt: skip
    place = h.onus.set_index("onu")[["olt", "pon", "box"]].astype(str).to_dict("index")
    members = _members(h.decisions)
    spans = {str(r.incident_id): (r.start_ts, r.end_ts) for r in inc.itertuples()}

    def member_of(onu: str, at: pd.Timestamp) -> str | None:
        found = None
        for iid, joined in members.items():
            start, end = spans.get(iid, (None, None))
            if start is None or at < start or (pd.notna(end) and at > end):
                continue
            since = joined.get(onu)
            if since is not None and since <= at:
                found = iid
        return found

    def incident_of(onu: str, at: pd.Timestamp) -> tuple[str, pd.Timestamp] | None:
        iid = member_of(onu, at)
        if iid is not None:
            return iid, spans[iid][0]
        where = place.get(onu)
        if where is None:
            return None
        found = None
        for r in inc.itertuples():
            col = _SCOPE_COLS.get(str(r.scope_type))
            if (col is not None and where[col] == str(r.scope_key) and r.start_ts <= at
                    and (pd.isna(r.end_ts) or at <= r.end_ts)):  # fmt: skip
                found = (str(r.incident_id), r.start_ts)
        return found

    return incident_of, member_of


#: Notices that open an incident for a customer and call for ``outage_resolved``.
_RESOLVED_AFTER = ("outage_detected", "visit_cancelled")
#: At one instant, the order of the policy's step: visits held as an incident opens,
#: the members notified, then the cases merged into it; an incident's end last.
_ORDER = {"hold_visits": 0, "notify": 1}


def _plan_notices(h: RunHistory, opted_out, lang: str, eta_h: float) -> NoticePlanner:
    """The notices of a run, as ``guardian operate`` sends them: those the audited actions
    call for (:func:`notices_for_outcome`, the rule operate sends with: the autopilot's
    ``notify`` to an outage's members, verified reboots, visits held by an outage), in
    time order (at one instant in the order of the policy's step, so the first opening
    notice is the one operate sent), then ``outage_resolved`` when an incident ends to
    each customer asked an opening notice of it."""
    planner = NoticePlanner(opted_out=opted_out)
    cust = h.customers.set_index("customer")
    onu_of: dict[str, str] = {}
    for c, r in cust.iterrows():
        for k in (c, r["onu"], r["cpe_id"], r["serial"]):
            if isinstance(k, str):
                onu_of[k] = str(r["onu"])
    customer_of = dict(zip(h.customers["onu"], h.customers["customer"], strict=True))
    region_of = dict(zip(h.customers["onu"], h.customers["region"].fillna(""), strict=True))
    # (at, order at that instant, customer, incident, template, template fields)
    wanted: list[tuple[pd.Timestamp, int, str, str, str, dict[str, Any]]] = []
    incident_of, member_of = _incident_lookups(h)
    for o in outcomes_from_audit(h.actions, h.decisions):
        o = replace(o, subject=onu_of.get(o.subject, o.subject),
                    target=onu_of.get(o.target, o.target) if o.action == "notify" else o.target)  # fmt: skip
        for req in notices_for_outcome(o, incident_of, eta_h, member_of):
            c = customer_of.get(req.onu_id)
            if c is not None:
                order = _ORDER.get(o.action, 2)
                ctx = {"region": str(region_of.get(req.onu_id, "")), **req.ctx}
                wanted.append((req.at, order, c, req.incident_id, req.template, ctx))
    opened = {(w[3], w[2]) for w in wanted if w[4] in _RESOLVED_AFTER}
    for r in h.incidents.itertuples() if len(h.incidents) else ():
        if pd.isna(r.end_at):
            continue
        end = pd.Timestamp(r.end_at)
        told = sorted(c for iid, c in opened if iid == str(r.incident_id))
        wanted += [(end, 3, c, str(r.incident_id), "outage_resolved", {"end": end}) for c in told]
    for at, _, c, iid, template, ctx in sorted(wanted, key=lambda w: (pd.Timestamp(w[0]), w[1])):
        planner.request(c, iid, template, at, lang, name=c, **ctx)
    return planner


def write_json(result: dict[str, Any], path: Path) -> None:
    """Write a replay result atomically."""
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    tmp.replace(path)
