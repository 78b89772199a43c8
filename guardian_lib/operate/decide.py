"""``guardian decide``: what the autopilot would have decided on a run's history.

The loop of ``guardian operate`` (:class:`~guardian_lib.loop.ClosedLoop` with the
:class:`~guardian_lib.decision.Autopilot`, the same scorer and policy) replayed over the
warehouse's SILVER telemetry and events (:mod:`guardian_lib.history`), in
``simulate`` mode: every decision goes through the safety guard and is audited, no action
leaves the process. Works on a warehouse built from an operator's exports alone.

Before the first decision the loop observes ``warmup_h`` of history (baselines, recent
calls, the scorer's window) without deciding. The operator's imported tickets open at
each decision are shown to the policy as open service orders.

The audit rows go to the run's audit trail (:attr:`RunLayout.audit
<guardian_lib.layout.RunLayout.audit>`, read by ``guardian report``) in one transaction
at the end, under a tag derived from what was replayed (window, grid, cadence, scorer,
settings, the SILVER files and tickets, the version): replaying the same thing again is
recognised and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib import __version__
from guardian_lib.errors import ConfigError, WarehouseError
from guardian_lib.layout import RunLayout
from guardian_lib.schema import POLICY_EVERY_MINUTES

__all__ = ["DecideSummary", "decide_run", "RULES", "parse_time"]

#: ``--models`` value for the rule scorer (no registered model needed).
RULES = "rules"
_TICKETS_HINT = (
    "register one with `guardian train --run {run} --labels tickets --label-map "
    "labels.yaml` (or use --models rules)"
)


@dataclass
class DecideSummary:
    """Figures of one ``guardian decide`` replay (``--json``).

    Attributes
    ----------
    start, end : str
        First and last decision step (ISO, UTC).
    tick_s : int
        The SILVER grid the loop steps on. [s]
    onus : int
        ONUs of the fleet. [-]
    ticks, warmup_ticks, gap_ticks : int
        Steps replayed with decisions, observed before them, and steps without any
        reading (previous readings repeated). [-]
    missed_poll_grace_steps : int
        Steps an ONU without a row keeps its previous reading (the rule of ``guardian
        operate``, :mod:`guardian_lib.loop.missed`). [-]
    held_readings : int
        Readings of ONUs without a row in a step that repeat their previous one (a
        missed poll, ``missed_poll_grace_steps`` steps at most). [-]
    decisions, decisions_by_action : int, dict
        Decisions of the policy (bookkeeping included), by action. [-]
    incidents_opened : int
        Massive incidents opened. [-]
    visits_ordered : int
        Visits the autopilot ordered (allowed ``schedule_visit`` targets). [-]
    visits_held : int
        Service orders held or cancelled (``hold_visits``, ``cancel_visit`` targets). [-]
    reboots : int
        Reboots allowed by the safety guard (simulated, none sent). [-]
    actions_failed : int
        Device actions on an ONU whose CPE the inventory does not name (operate could not
        send them either). [-]
    blocked_by_rule : dict
        Actions the safety guard blocked, by rule. [-]
    wall_s, replay_s : float
        Wall-clock time of the whole command, and of the replay alone (the steps, without
        loading the model and the inventory). [s]
    simulated_h_per_s : float
        Hours replayed with decisions per second of ``replay_s`` (which also holds the
        cheaper warm-up steps). [h/s]
    audit : str
        The audit file; ``already_audited`` when the same replay was found there (nothing
        written again).
    other_decisions_in_window : int
        Decisions of other replays (or runs) in that file over the same window: the report
        shows them all, keep replays apart with ``--audit FILE``. [-]
    """

    run: str = ""
    start: str = ""
    end: str = ""
    tick_s: int = 0
    every_minutes: float = 0
    model_version: str = ""
    onus: int = 0
    ticks: int = 0
    warmup_ticks: int = 0
    gap_ticks: int = 0
    missed_poll_grace_steps: int = 0
    held_readings: int = 0
    telemetry_rows: int = 0
    events: int = 0
    events_unmapped: int = 0
    open_orders_known: int = 0
    decisions: int = 0
    decisions_by_action: dict[str, int] = field(default_factory=dict)
    incidents_opened: int = 0
    visits_ordered: int = 0
    visits_held: int = 0
    reboots: int = 0
    notifications: int = 0
    actions_failed: int = 0
    blocked_by_rule: dict[str, int] = field(default_factory=dict)
    open_cases_at_end: int = 0
    audit: str = ""
    tag: str = ""
    already_audited: bool = False
    other_decisions_in_window: int = 0
    wall_s: float = 0.0
    replay_s: float = 0.0
    simulated_h_per_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-ready)."""
        return asdict(self)


def parse_time(value: str | None, option: str) -> pd.Timestamp | None:
    """An ISO 8601 time as UTC (a naive time is UTC); None stays None.

    Raises
    ------
    ConfigError
        Not a time (names the option).
    """
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(f"{option}: expected an ISO 8601 time, got {value!r}") from None
    if ts is pd.NaT:
        raise ConfigError(f"{option}: expected an ISO 8601 time, got {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _window(con: Any, run: Path, start: pd.Timestamp | None, end: pd.Timestamp | None):
    """First and last decision step on the SILVER grid, the grid [s] and the first reading."""
    from guardian_lib.history import silver_grid_s, silver_range

    span = silver_range(con)
    if span is None:
        raise WarehouseError(f"{run}: no SILVER telemetry (import some with `guardian ingest`)")
    lo, hi = span
    if start is not None and end is not None and end < start:
        raise ConfigError(f"--end {end} is before --start {start}")
    s, e = start or lo, end or hi
    if e < s:  # only one bound given, and outside the run: name it, not a default
        given = f"--start {start}" if start is not None else f"--end {end}"
        raise WarehouseError(f"{run}: no SILVER telemetry for {given} (the run holds {lo} to {hi})")
    if e < lo or s > hi:
        raise WarehouseError(
            f"{run}: no SILVER telemetry between {s} and {e} (the run holds {lo} to {hi})"
        )
    s, e = max(s, lo), min(e, hi)
    grid = silver_grid_s(con, lo, hi)
    lo_s = lo.value // 10**9
    first = lo_s + -(-(s.value // 10**9 - lo_s) // grid) * grid  # on the grid, not before s
    last = lo_s + ((e.value // 10**9 - lo_s) // grid) * grid
    if last < first:
        raise WarehouseError(f"{run}: no SILVER telemetry step between {s} and {e}")
    ts = [pd.Timestamp(x, unit="s", tz="UTC") for x in (first, last)]
    return ts[0], ts[1], grid, lo


def _scorer(models: str, run: Path, tick_s: int) -> tuple[Any, str]:
    """The unbound scorer of ``--models`` (None: the rule scorer) and its version."""
    if models == RULES:
        return None, RULES
    from guardian_lib.models.registry import ModelRegistryError, load_bundle
    from guardian_lib.operate.components import model_scorer

    try:
        bundle = load_bundle(models)
    except ModelRegistryError as exc:
        first = str(exc).split(" (train one")[0]
        raise ModelRegistryError(
            f"--models {models}: {first}; {_TICKETS_HINT.format(run=run)}"
        ) from None
    return model_scorer(bundle, tick_s), str(bundle.model_version)


def _settings(site: Path | None) -> tuple[Any, str | None, str, int, Any]:
    """Safety settings (simulate mode), the site's model alias, its id, its
    ``missed_poll_grace_steps`` and its cost model (None: the defaults)."""
    from guardian_lib.decision.settings import AutopilotSettings
    from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS

    if site is None:
        st = AutopilotSettings(autopilot_mode="simulate")
        return st, None, "decide", MISSED_POLL_GRACE_STEPS, None
    from guardian_lib.decision.maintenance import load_maintenance
    from guardian_lib.operate.site import load_site

    cfg = load_site(site)
    # Today's kill switch is not history: the replay shows what the limits allow.
    st = cfg.autopilot_settings("simulate").model_copy(update={"kill_switch_file": None})
    maint = st.maintenance_file or cfg.alerts
    if maint is not None:
        path = cfg.resolve(str(maint))
        load_maintenance(path)  # a bad file is refused now, not at the first decision
        st = st.model_copy(update={"maintenance_file": path})
    return st, cfg.model_alias, cfg.site_id, cfg.missed_poll_grace_steps, cfg.cost_model()


def _data_version(con: Any, run: Path) -> list[str]:
    """What identifies the replayed data: the committed SILVER files (an import that
    changes them commits new ones) and the tickets file's size and time."""
    from guardian_lib.warehouse import silver_files

    names = [p.name for kind in ("telemetry", "events") for p in silver_files(run, kind, con)]
    orders = RunLayout(run).ops("service_orders")
    if orders.is_file():
        st = orders.stat()
        names.append(f"service_orders:{st.st_size}:{st.st_mtime_ns}")
    return names


def _tag(site_id: str, key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
    return f"{site_id}-DEC{digest[:10]}-"


def decide_run(
    run: Path | str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    every_minutes: float = POLICY_EVERY_MINUTES,
    models: str | None = None,
    site: Path | str | None = None,
    audit_path: Path | str | None = None,
    warmup_h: float = 24.0,
    progress: Callable[[int, int], None] | None = None,
    missed_poll_grace_steps: int | None = None,
) -> DecideSummary:
    """Replay ``run``'s history through the autopilot in simulate mode; audit the decisions.

    Parameters
    ----------
    run : path
        Run folder with an ingested warehouse (``guardian ingest``).
    start, end : pandas.Timestamp, optional
        Window of the decisions (UTC); default the whole SILVER telemetry.
    every_minutes : float, default 15
        Time between two decisions; a multiple of the SILVER grid (1.5 on a 90 s grid
        decides every step, as ``guardian operate`` does). [min]
    models : str, optional
        ``rules`` (the rule scorer) or a registry alias (``champion`` …); default the
        site's ``model_alias``, else ``champion``.
    site : path, optional
        A ``guardian operate`` site file: its safety limits, maintenance windows, model
        alias and site id.
    audit_path : path, optional
        Audit DuckDB file; default the run's (:attr:`RunLayout.audit`).
    warmup_h : float, default 24
        History observed before ``start`` without deciding. [h]
    progress : callable, optional
        ``progress(done, total)`` after each step.
    missed_poll_grace_steps : int, optional
        Steps an ONU without a row keeps its previous reading; default the site's, else
        :data:`~guardian_lib.loop.missed.MISSED_POLL_GRACE_STEPS`. [-]

    Raises
    ------
    WarehouseError
        No such run, no warehouse, no telemetry in the window.
    ModelRegistryError
        No model under the alias (the message says how to register one).
    ConfigError
        Bad window, cadence or site file.
    """
    from guardian_lib.audit import AuditLog, append_audit, tagged_decisions
    from guardian_lib.decision import Autopilot, SafetyGuard
    from guardian_lib.decision.expected_cost import make_autopilot
    from guardian_lib.history import HistoryTelemetrySource, read_orders
    from guardian_lib.loop import ClosedLoop
    from guardian_lib.operate.adapters import DryRunDispatcher
    from guardian_lib.operate.fleet import fleet_from_warehouse
    from guardian_lib.warehouse import connect

    t0 = time.perf_counter()
    run = Path(run)
    if not run.is_dir():
        raise WarehouseError(f"{run}: no such run folder (make one with `guardian ingest`)")
    every_s = float(every_minutes) * 60
    if not every_s >= 1 or every_s != int(every_s):
        raise ConfigError(
            f"--every-minutes: expected a whole number of seconds >= 1, got {every_minutes} min"
        )
    # a whole number of minutes stays an int: the replay's tag is the same as before
    every_minutes = int(every_minutes) if every_s % 60 == 0 else every_s / 60
    if warmup_h < 0:
        raise ConfigError(f"--warmup-hours: expected >= 0, got {warmup_h}")
    settings, site_alias, site_id, grace, costs = _settings(
        Path(site) if site is not None else None
    )
    if missed_poll_grace_steps is not None:
        if missed_poll_grace_steps < 0:
            raise ConfigError(
                f"missed_poll_grace_steps: expected >= 0, got {missed_poll_grace_steps}"
            )
        grace = int(missed_poll_grace_steps)
    models = models or site_alias or "champion"
    audit_file = Path(audit_path) if audit_path is not None else RunLayout(run).audit
    con = connect(run)
    try:
        first, last, grid, lo = _window(con, run, start, end)
        if int(every_s) % grid:
            raise ConfigError(
                f"--every-minutes {every_minutes}: must be a multiple of the run's "
                f"{grid // 60 if grid % 60 == 0 else grid / 60:g}-minute grid ({grid} s)"
            )
        fleet = fleet_from_warehouse(con, str(run))
        scorer, version = _scorer(models, run, grid)
        key = {
            "start": first, "end": last, "grid": grid, "every": every_minutes,
            "model": version, "warmup_h": warmup_h, "onus": len(fleet),
            "settings": settings.model_dump(mode="json"), "data": _data_version(con, run),
            "code": __version__, "missed_poll_grace_steps": grace,
        }  # fmt: skip
        if costs is not None and costs != type(costs)():
            key["costs"] = costs.model_dump(mode="json")  # only when set: old tags stand
        tag = _tag(site_id, key)
        out = DecideSummary(
            run=str(run), start=first.isoformat(), end=last.isoformat(), tick_s=grid,
            every_minutes=every_minutes, model_version=version, onus=len(fleet),
            audit=str(audit_file), tag=tag, missed_poll_grace_steps=grace,
        )  # fmt: skip
        if tagged_decisions(audit_file, tag):
            out.already_audited = True
            _count_from_audit(out, audit_file, tag)
            out.other_decisions_in_window = _others(audit_file, tag, first, last)
            out.wall_s = round(time.perf_counter() - t0, 3)
            return out
        step = pd.Timedelta(seconds=grid)
        warm0 = first - ((first - max(first - pd.Timedelta(hours=warmup_h), lo)) // step) * step
        scorer, policy = make_autopilot(scorer, settings=settings, costs=costs)
        audit = AuditLog(None, tag=tag)
        known = {c for c in fleet.table["cpe_id"] if isinstance(c, str) and c}
        autopilot = Autopilot(policy, scorer, settings=settings,
                              dispatcher=DryRunDispatcher(known), audit=audit,
                              guard=SafetyGuard(settings))  # fmt: skip
        orders = read_orders(con, fleet.customers)
        every = int(every_s) // grid
        loop = ClosedLoop(fleet.onus, fleet.customers, autopilot, every=every, tick_s=grid,
                          field=orders)  # fmt: skip
        source = HistoryTelemetrySource(con, fleet.onu_ids, warm0, last, grid, grace)
        total = source.n_steps
        t_replay = time.perf_counter()
        for i, tick in enumerate(source):
            if tick.ts < first:  # warm-up: observe only (the loop's consumers, no decision)
                for consumer in loop.consumers:
                    consumer.update(tick)
                out.warmup_ticks += 1
            else:
                if orders is not None:
                    orders.now = tick.ts
                loop.feed(tick)
                out.ticks += 1
            if progress is not None:
                progress(i + 1, total)
        out.replay_s = round(time.perf_counter() - t_replay, 3)
        out.gap_ticks, out.telemetry_rows = source.gap_ticks, source.rows
        out.held_readings = source.held
        out.events, out.events_unmapped = source.events, source.events_unmapped
        out.open_orders_known = len(orders) if orders is not None else 0
        out.open_cases_at_end = len(autopilot.cases)
    finally:
        con.close()
    _count(out, audit.frame("decisions"), audit.frame("actions"))
    if not append_audit(audit, audit_file):  # written meanwhile by the same replay
        out.already_audited = True
    audit.close()
    out.other_decisions_in_window = _others(audit_file, tag, first, last)
    out.wall_s = round(time.perf_counter() - t0, 3)
    hours = out.ticks * grid / 3600
    out.simulated_h_per_s = round(hours / out.replay_s, 2) if out.replay_s > 0 else 0.0
    return out


def _count(out: DecideSummary, decisions: pd.DataFrame, actions: pd.DataFrame) -> None:
    """The summary's counts from the replay's audit rows."""
    out.decisions = len(decisions)
    by = decisions["action"].value_counts().sort_index()
    out.decisions_by_action = {str(k): int(v) for k, v in by.items()}
    out.incidents_opened = int((decisions["action"] == "open_incident").sum())
    ok = actions[actions["status"] == "simulated"]
    out.actions_failed = int((actions["status"] == "failed").sum())
    kind = ok["action_type"].to_numpy(dtype=object)
    out.visits_ordered = int(np.sum(kind == "schedule_visit"))
    out.visits_held = int(np.isin(kind, ["hold_visits", "cancel_visit"]).sum())
    out.reboots = int(np.sum(kind == "reboot"))
    out.notifications = int(np.sum(kind == "notify"))
    blocked = decisions.loc[~decisions["allowed"].astype(bool), "blocked_rule"]
    out.blocked_by_rule = {str(k): int(v) for k, v in blocked.value_counts().sort_index().items()}


def _others(path: Path, tag: str, first: pd.Timestamp, last: pd.Timestamp) -> int:
    """Decisions in the audit file ``path`` over ``[first, last]`` not tagged ``tag``. [-]"""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        sql = (
            "SELECT count(*) FROM decisions WHERE NOT starts_with(decision_id, ?) "
            "AND ts BETWEEN ? AND ?"
        )
        return int(con.execute(sql, [tag, first, last]).fetchone()[0])
    finally:
        con.close()


def _count_from_audit(out: DecideSummary, path: Path, tag: str) -> None:
    """:func:`_count` over the rows an earlier identical replay wrote to ``path``."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        dec = con.execute("SELECT * FROM decisions WHERE starts_with(decision_id, ?)", [tag]).df()
        act = con.execute("SELECT * FROM actions WHERE starts_with(action_id, ?)", [tag]).df()
    finally:
        con.close()
    _count(out, dec, act)
