"""``guardian operate``: poll → warehouse → score → decide → safety → act → audit, forever.

One :class:`Operator` per site. Every ``polling_interval_s`` a cycle:

1. polls every OLT of the inventory over SNMP (an OLT that does not answer is flagged,
   the cycle goes on with the others);
2. appends the rows to the warehouse's RAW lake (new atomically written files) and
   merges them into SILVER (``guardian_lib.silver.update_silver``: only the new files);
   SNMP traps accepted since the last cycle (``site.traps``) join the cycle's events,
   and a trap starts the next cycle at once instead of at the next interval; customer
   contacts the helpdesk dropped (``site.contacts``, :mod:`.contacts`) join them too;
3. feeds the observer and the scorer (the MLflow model the site's alias points to, the
   rule scorer when none is registered) and runs :meth:`Autopilot.step`: decide, check
   the safety limits, act, audit;
4. commits the cycle and the streaming state to the state store.

Modes: ``simulate`` decides and audits, sends nothing; ``execute`` sends; ``approve``
queues each proposed device or field action (``guardian decisions approve ID``) and sends
approved ones at the start of the next cycle.

Restart safety: every action is journalled *before* it is sent under an idempotency key
(the ACS receives the same key); on start the safety guard's cooldowns and caps are
rebuilt from the journal, and the observer, scorer window, open cases and incidents from
the last committed cycle. SIGTERM (or SIGINT) ends the current cycle, then the process
exits 0.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.actions.dispatcher import Dispatcher
from guardian_lib.audit import AuditLog
from guardian_lib.decision import Autopilot, SafetyGuard
from guardian_lib.decision.expected_cost import make_autopilot
from guardian_lib.decision.maintenance import (
    load_maintenance,
)
from guardian_lib.decision.observe import registered_loss
from guardian_lib.loop import ClosedLoop, EventRow, Tick
from guardian_lib.loop.missed import MissedPolls
from guardian_lib.operate.accounting import (
    ApprovalDispatcher,
    CountingDispatcher,
    OperateSummary,
    safety_violations,
)
from guardian_lib.operate.adapters import (
    ActionContext,
    JournalledDevices,
    NbiCpeState,
    SnmpTelemetrySource,
)
from guardian_lib.operate.alerting import (
    alert_pipeline,
    alerts_cycle,
    customer_notifier,
    drift_monitor,
)
from guardian_lib.operate.approvals import ApprovedActions
from guardian_lib.operate.components import (
    field_service,
    load_model,
    model_scorer,
    nbi_client,
    restore_guard,
)
from guardian_lib.operate.contacts import contact_intake, contact_outcomes
from guardian_lib.operate.field import WebhookFieldService
from guardian_lib.operate.fleet import Fleet, cpe_by_serial, fleet_from_poll, load_subscribers
from guardian_lib.operate.metrics import OperateMetrics, log_json
from guardian_lib.operate.ppp import PppRecord
from guardian_lib.operate.schedule import report_scheduler, reports_cycle
from guardian_lib.operate.silent import SilentOlts
from guardian_lib.operate.site import SiteConfig
from guardian_lib.operate.state import StateStore
from guardian_lib.operate.steps import OPERATE_TELEMETRY_SCHEMA, silver_grid_seconds, stamp_poll
from guardian_lib.operate.traps import OperateTraps

__all__ = [
    "Operator", "OperateSummary", "MODES", "KILL_SWITCH_FILENAME", "safety_violations",
]  # fmt: skip

log = logging.getLogger("guardian_lib.operate")
MODES = ("simulate", "approve", "execute")
#: Kill-switch file in the state folder, used unless the site sets ``kill_switch_file``.
KILL_SWITCH_FILENAME = "KILL_SWITCH"


class Operator(ApprovedActions):
    """The long-running service of one site.

    Parameters
    ----------
    site : SiteConfig
    state_dir : path
    mode : {'simulate', 'approve', 'execute'}
    metrics : OperateMetrics, optional
    environ : mapping, optional
        Where SNMP credentials are looked up first.
    """

    def __init__(
        self,
        site: SiteConfig,
        state_dir: str | Path,
        mode: str = "simulate",
        metrics: OperateMetrics | None = None,
        environ: Any = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"operate: mode must be one of {MODES}, got {mode!r}")
        from guardian_lib.snmp.inventory import load_inventory

        self.site = site
        self.mode = mode
        self.state_dir = Path(state_dir)
        self.store = StateStore(self.state_dir)
        self.metrics = metrics or OperateMetrics()
        self.summary = OperateSummary(mode=mode)
        self.summary.ambiguous_after_restart = self.store.mark_ambiguous()
        self.settings = site.autopilot_settings(mode)
        if self.settings.kill_switch_file is None:
            # `touch <state_dir>/KILL_SWITCH` stops every automatic action at the next decision.
            self.settings = self.settings.model_copy(
                update={"kill_switch_file": self.state_dir / KILL_SWITCH_FILENAME}
            )
        if self.settings.maintenance_file is None and site.alerts is not None:
            # The alerting file's maintenance windows mute alerts and block actions alike.
            self.settings = self.settings.model_copy(
                update={"maintenance_file": site.resolve(site.alerts)}
            )
        elif self.settings.maintenance_file is not None:
            # Refuse a bad file at start, not at the first cycle (the guard reads it then).
            load_maintenance(site.resolve(str(self.settings.maintenance_file)))
            self.settings = self.settings.model_copy(
                update={"maintenance_file": site.resolve(str(self.settings.maintenance_file))}
            )
        self.warehouse = site.resolve(site.warehouse)
        self.inventory = load_inventory(site.resolve(site.inventory))
        self.source = SnmpTelemetrySource(self.inventory, environ)
        self.context = ActionContext(site_id=site.site_id)
        self.nbi = nbi_client(site)
        self.devices = JournalledDevices(self.nbi, self.store, self.context)
        self.cpe_state = NbiCpeState(self.nbi, site.nbi.inform_interval_s) if self.nbi else None
        self.silent: SilentOlts | None = None  # silent OLTs and the ACS's evidence (_build)
        self.ppp: PppRecord | None = None  # the ACS's PPPoE view, as recorded (_build)
        self.wall = time.time  # the wall clock the ACS's Inform times are compared with [s]
        self.field = field_service(site, self.store, self.context)
        self.alerts = alert_pipeline(site, self.state_dir)
        self.notifier = customer_notifier(self.alerts, self._decision_time)
        self.reports = self._report_scheduler()
        self.audit = AuditLog(self.state_dir / "audit.duckdb", tag=f"{site.site_id}-")
        self.stop_event = threading.Event()
        self.traps = OperateTraps(site.traps, self.inventory, environ) if site.traps else None
        self.contacts = contact_intake(site, self.store, self.warehouse)  # helpdesk contacts
        self.fleet: Fleet | None = None
        self.missed = MissedPolls(0, site.missed_poll_grace_steps)  # sized by _build
        self.autopilot: Autopilot | None = None
        self.kill_signalled = False  # SIGUSR1 received (kill switch on until the process ends)
        self.loop: ClosedLoop | None = None
        self.silver: Any = None  # this cycle's SILVER update (guardian_lib.silver.SilverUpdate)
        #: Failed cycles (in total) after which :meth:`run` gives up and re-raises. [-]
        self.max_failed_cycles = 100
        #: Polling interval in the network's time (the clock's speed times the wall one),
        #: whole seconds: SILVER's grid, on which the cycles are timed. [s]
        self.tick_s = float(silver_grid_seconds(site))
        self._last_ts: pd.Timestamp | None = self.store.get("last_ts")
        self.cycle = self.store.last_cycle()
        self.summary.first_cycle = self.cycle + 1
        self._bundle = load_model(site.model_alias)
        self.drift = drift_monitor(self.alerts, self._bundle, self.site.model_alias)

    # --- construction ---------------------------------------------------------------------
    def _decision_time(self) -> pd.Timestamp:
        """The cycle's time (customer notices are dated with it)."""
        return pd.Timestamp(self.context.ts) if self.context.ts else pd.Timestamp.now(tz="UTC")

    def _report_scheduler(self) -> Any:
        """The scheduled reports (None without a ``schedule:`` section)."""
        return report_scheduler(self.site, self.state_dir, self.alerts)

    def _reports_cycle(self, ts: pd.Timestamp, wait: bool = True) -> list[dict[str, Any]] | None:
        """Build and e-mail the reports whose period has come (None without a schedule);
        ``wait=False`` builds them in the scheduler's worker thread."""
        return reports_cycle(self.reports, ts, wait=wait)

    def _alerts_cycle(self, ts: pd.Timestamp, known: pd.DataFrame, events: pd.DataFrame,
                      blocks: dict[str, int]) -> dict[str, Any] | None:  # fmt: skip
        """Evaluate the alert rules on this cycle and deliver (None without an alerting file);
        ``known``: ``onu_id``, ``online`` of the ONUs as the cycle's tick has them."""
        if self.alerts is None:
            return None
        return alerts_cycle(
            self.alerts, ts, self.fleet.table, known, events, self.autopilot.incidents, blocks,
            notifier=self.notifier, drift=self.drift,
            features=getattr(self.loop.scorer, "last_features", None),
        )  # fmt: skip

    def _build(self, fleet: Fleet) -> None:
        """The closed loop (observer, scorer, autopilot) for ``fleet``, restored from the
        last committed cycle; the safety guard also learns every journalled reboot."""
        self.fleet = fleet
        self.context.pon_of = fleet.pon_of()
        t = fleet.table
        self._cpe_of = {o: c for o, c in zip(t["onu_id"], t["cpe_id"], strict=True) if c}
        self.devices.known = set(self._cpe_of.values())
        tick_s = self.tick_s
        scorer = self._model_scorer()
        scorer, policy = make_autopilot(
            scorer, settings=self.settings, costs=self.site.cost_model()
        )
        self.summary.model_version = str(getattr(scorer, "model_version", "rules"))
        self.metrics.model.labels(self.summary.model_version).set(1)
        dispatcher: Dispatcher = Dispatcher(
            "simulate" if self.mode == "simulate" else "execute",
            devices=self.devices, field_ops=self.field, notifier=self.notifier,
        )  # fmt: skip
        self.real_dispatcher = CountingDispatcher(dispatcher, self.metrics, self.summary)
        if self.mode == "approve":
            self.approval_dispatcher = ApprovalDispatcher(self.store, self.context, dispatcher)
            outer: Dispatcher = CountingDispatcher(
                self.approval_dispatcher, self.metrics, self.summary
            )
        else:
            outer = self.real_dispatcher
        self.autopilot = Autopilot(policy, scorer, settings=self.settings, dispatcher=outer,
                                   audit=self.audit, guard=SafetyGuard(self.settings))  # fmt: skip
        if hasattr(self.notifier, "bind"):
            self.notifier.bind(fleet.table, self.autopilot)
            # verified reboots and visits held by an outage → customer notices
            self.autopilot.listeners.append(self.notifier.action_outcome)
        self.loop = ClosedLoop(fleet.onus, fleet.customers, self.autopilot, every=1,
                               tick_s=tick_s, field=self.field)  # fmt: skip
        self.missed = MissedPolls(len(fleet.onu_ids), self.site.missed_poll_grace_steps)
        self.missed.load_state_dict(self.store.get("missed_polls"))
        olt_of = {o: v for o, v in zip(t["onu_id"], t["olt_id"], strict=True) if v != "unknown"}
        wait = {"wait_max_s": self.site.nbi.silent_wait_max_s} if self.site.nbi else {}
        self.silent = SilentOlts(fleet.onu_ids, olt_of, self._cpe_of, self.site.polling_interval_s,
                                 pon_of=self.context.pon_of, **wait)  # fmt: skip
        self.silent.load_state_dict(self.store.get("silent_olts"))
        self.ppp = PppRecord(fleet.onu_ids, self._cpe_of)
        self.ppp.resume(self.store, self.warehouse)
        saved = self.store.get("loop")
        committed = 0
        if saved is not None and list(saved["onu_ids"]) == list(fleet.onu_ids):
            self.loop.load_state_dict(saved["loop"])
            committed = self.store.last_cycle()
        self._restore_guard(self.autopilot.guard, committed)
        if self.kill_signalled:
            self.autopilot.guard.engage_kill_switch()

    def _model_scorer(self) -> Any:
        """The registered model as an unbound scorer (:func:`model_scorer`), or None."""
        if self._bundle is None:
            return None
        return model_scorer(self._bundle, self.tick_s)

    def _restore_guard(self, guard: SafetyGuard, committed: int) -> None:
        """The journal's reboots after cycle ``committed`` count in ``guard`` (:func:`.restore_guard`)."""
        restore_guard(guard, self.store, committed)

    def _fleet(self, telemetry: pd.DataFrame) -> Fleet:
        saved = self.store.get("fleet")
        if saved is not None:
            return Fleet(saved)
        if self.site.subscribers:
            fleet = load_subscribers(self.site.resolve(self.site.subscribers))
        else:
            serials = {}
            if self.nbi is not None:
                try:
                    serials = cpe_by_serial(self.nbi)
                except Exception as exc:  # noqa: BLE001 - the ACS may be down: no reboots then
                    log_json("fleet", warning=f"ACS device list unavailable: {exc}")
            fleet = fleet_from_poll(telemetry, serials)
        self.store.put("fleet", fleet.table)
        log_json("fleet", onus=len(fleet), with_cpe=int(fleet.table["cpe_id"].notna().sum()))
        return fleet

    # --- one cycle --------------------------------------------------------------------------
    def run_cycle(self) -> dict[str, Any]:
        """Poll, store, score, decide, act, audit and commit one cycle.

        Returns
        -------
        dict
            The cycle's figures (also logged as one JSON line).
        """
        t0 = time.perf_counter()
        started = time.time()
        self.cycle += 1
        report, clock = self.source.poll(), self.site.clock
        polled_s, tel = self.wall(), report.telemetry
        if clock is not None:  # a scaled clock (the twin): the network's time at the poll's end
            ts = clock.at(polled_s)
        else:
            ts = pd.Timestamp(tel["ts"].min()) if len(tel) else pd.Timestamp.now(tz="UTC")
        ts = self._on_grid(ts)
        # stored and fed on the cycle's step (ts), the clock's time (steps.py)
        stamped = stamp_poll(report, ts, clock, self._last_ts)
        tel = stamped.telemetry
        self.context.cycle, self.context.ts = self.cycle, ts.isoformat()
        # a cycle cut by a crash runs again under its number: audited once (ids from it)
        self.audit.begin_cycle(self.cycle)
        failed = [r.olt_id for r in report.failed]
        self.silver = None
        raw_files = self._store_rows(stamped)
        if self.autopilot is None:
            self._build(self._fleet(tel))
        answered = [r.olt_id for r in report.results if r.complete]
        self.silent.observe(answered, failed, polled_s, tel)
        blocked0 = dict(self.autopilot.guard.blocked)
        counts0 = dict(self.autopilot.counts)
        if self.mode == "approve":
            self._run_approved(ts)
        in_fleet = tel["onu_id"].isin(set(self.fleet.onu_ids))
        # ONUs the OLTs report that the fleet does not list (new installs, wrong serials)
        unknown = int(tel.loc[~in_fleet, "onu_id"].nunique())
        known = tel[in_fleet].drop_duplicates("onu_id", keep="last").copy()
        known["online"] = known["online"].fillna(False).astype(bool)
        # OLTs report no packet loss: an ONU that is registered has service
        known["loss_pct"] = registered_loss(
            known["online"].to_numpy(), known["loss_pct"].to_numpy()
        )
        # A CPE whose PPPoE session is down (hung, misconfigured) leaves its customer
        # without service although the ONU is registered: the ACS tells.
        cpe_down = self._ppp_down(ts, known)
        events = stamped.events
        rows = [
            EventRow(pd.Timestamp(r.ts), str(r.entity_id), str(r.entity_type), str(r.type),
                     str(r.severity), str(r.payload or "{}"))
            for r in events.itertuples(index=False)
        ]  # fmt: skip

        def store_traps(r: Any) -> list[Path]:  # their times already on the clock
            return self._store_rows(stamp_poll(r, ts, None, self._last_ts))

        trap_rows = self.traps.rows(store_traps, clock) if self.traps is not None else []
        rows += [EventRow(r["ts"], r["entity_id"], r["entity_type"], r["type"], r["severity"],
                          r["payload"]) for r in trap_rows]  # fmt: skip
        contacts = self.contacts and self.contacts.cycle(ts, self._last_ts, self.fleet.table)
        rows += contacts[0] if contacts else []
        tick = self._cycle_tick(ts, known, rows)
        # The alerts see what the decisions see: the missed-poll rule's view of every ONU
        # of the fleet (held within the grace, offline past it), not this poll's rows.
        seen = pd.DataFrame({"onu_id": self.fleet.onu_ids, "online": tick.online.copy()})
        self._fill_gap(tick)
        decisions = self.loop.feed(tick)
        self._last_ts = tick.ts
        self.audit.flush()
        preds = len(self.fleet)  # the scorer scores the whole fleet every cycle
        blocks = {k: v - blocked0.get(k, 0) for k, v in self.autopilot.guard.blocked.items()}
        blocks = {k: v for k, v in blocks.items() if v}
        by_action = {k: v - counts0.get(k, 0) for k, v in self.autopilot.counts.items()}
        by_action = {k: v for k, v in by_action.items() if v}
        figures = {
            "cycle": self.cycle, "ts": ts.isoformat(), "mode": self.mode,
            "rows_polled": int(len(tel)), "onus_known": int(len(known)),
            "onus_unknown": unknown,
            "cpe_sessions_down": cpe_down,
            "acs_error": self.cpe_state.last_error if self.cpe_state else None, "olts": len(report.results),
            "olts_failed": failed, "raw_files": len(raw_files), "predictions": preds,
            "silver_update": self.silver.mode if self.silver else None,
            "silver_s": self.silver.seconds if self.silver else None,
            "decisions": len(decisions), "decisions_by_action": by_action,
            "safety_blocks": blocks, "open_cases": len(self.autopilot.cases),
            "open_incidents": len(self.autopilot.incidents),
            "duration_s": round(time.perf_counter() - t0, 3),
            "trap_events": len(trap_rows), "onus_seen_by_acs_only": self.missed.known_up_last,
        }  # fmt: skip
        if contacts:
            figures["contacts"] = contacts[1]
        alerts = self._alerts_cycle(ts, seen, events, blocks)
        if alerts is not None:
            figures["alerts"] = alerts
        self.store.record_cycle(self.cycle, ts.isoformat(), started, figures, self._blobs())
        self._account(figures, report, blocks, by_action)
        log_json("cycle", **figures)
        # after the commit: a slow or failing report never delays or fails the cycle
        self._reports_cycle(ts, wait=False)  # built beside the loop: the cycle is not delayed
        return figures

    def _on_grid(self, ts: pd.Timestamp) -> pd.Timestamp:
        """The cycle time on the polling grid, one step after the last cycle at least (the
        scorer's window holds one slot per polling interval)."""
        g = self.tick_s
        snapped = pd.Timestamp(round(ts.value / 1e9 / g) * g, unit="s", tz="UTC")
        if self._last_ts is not None and snapped <= self._last_ts:
            snapped = self._last_ts + pd.Timedelta(seconds=g)
        return snapped

    def _fill_gap(self, tick: Tick) -> None:
        """Cycles that did not run (late, or the service was down): the scorer's window
        gets the current readings for each missed slot; beyond its length it restarts
        empty."""
        scorer = self.loop.scorer
        if self._last_ts is None or scorer is None or not hasattr(scorer, "update"):
            return
        missed = int(round((tick.ts - self._last_ts).total_seconds() / self.tick_s)) - 1
        if missed <= 0:
            return
        window = getattr(getattr(scorer, "cube", None), "window_ticks", missed + 1)
        if missed >= window:
            fresh = self._model_scorer().bind(self.fleet.onus, int(self.tick_s))
            self.loop.consumers[self.loop.consumers.index(scorer)] = fresh
            self.loop.scorer = self.autopilot.scorer = fresh
            return
        for k in range(missed, 0, -1):
            ts = tick.ts - pd.Timedelta(seconds=k * self.tick_s)
            scorer.update(Tick(ts, tick.values))

    def _cycle_tick(self, ts: pd.Timestamp, known: pd.DataFrame, events: list[EventRow]) -> Tick:
        """The cycle's tick: an ONU without a row, also one of an OLT that did not answer,
        follows the missed-poll rule (:meth:`MissedPolls.step
        <guardian_lib.loop.missed.MissedPolls.step>`, the site's ``missed_poll_grace_steps``;
        no row at all repeats the last cycle), as in ``guardian decide``; past the grace an
        ONU of a silent OLT whose CPE the ACS still hears is online, its readings unknown
        (:mod:`guardian_lib.operate.silent`)."""
        tick = Tick.from_frame(ts, known, self.fleet.onu_ids, events)
        read = np.isin(self.fleet.onu_ids, known["onu_id"].astype(str).to_numpy())
        tick = self.missed.tick(tick, read, self.silent.mask(events, self.cpe_state, self.wall()))
        self._record_acs_seen(ts)
        self.silent.log(self.missed.known_up_last)
        return tick

    def _record_acs_seen(self, ts: pd.Timestamp) -> None:
        """Append the ONUs this cycle kept online on the ACS's evidence to RAW events
        (``ACS_SEEN``, :func:`~guardian_lib.history.acs_seen_events`): ``guardian
        decide`` replays them as operate saw them. SILVER merges them with the next
        cycle's files (or the next ``guardian ingest``)."""
        up = self.missed.known_up_mask
        if up is None or not up.any():
            return
        from guardian_lib.history import acs_seen_events
        from guardian_lib.snmp.poller import append_raw_events

        frame = acs_seen_events(ts, self.fleet.onu_ids[up], self.silent.olt_of,
                                pd.Timestamp.now(tz="UTC"))  # fmt: skip
        append_raw_events(self.warehouse, frame, "acs-seen")

    def _ppp_down(self, ts: pd.Timestamp, known: pd.DataFrame) -> int:
        """Loss 100 % in ``known`` (in place) for the registered ONUs whose CPE's PPPoE
        session the ACS reports down; the changes of that view are appended to RAW events
        (``ACS_PPP_DOWN`` / ``ACS_PPP_UP``, :mod:`guardian_lib.operate.ppp`) so that
        ``guardian decide`` replays it. Returns those ONUs' count. [-]"""
        mask = self.ppp.mask(self.cpe_state.ppp_up() if self.cpe_state is not None else {})
        self.ppp.record(ts, mask, self.store, self.warehouse)
        down = known["online"] & known["onu_id"].isin(set(self.fleet.onu_ids[mask]))
        known.loc[down, "loss_pct"] = 100.0
        return int(down.sum())

    def _store_rows(self, report: Any) -> list[Path]:
        """Append the cycle's rows (:func:`~guardian_lib.operate.steps.stamp_poll`) to RAW
        and merge them into SILVER on the site's grid."""
        from guardian_lib.silver import update_silver
        from guardian_lib.snmp.poller import write_to_warehouse

        files = write_to_warehouse(report, self.warehouse, OPERATE_TELEMETRY_SCHEMA)
        if files:
            # only the new files are merged (the full rebuild when an old one changed)
            self.silver = update_silver(self.warehouse, grid_s=silver_grid_seconds(self.site))
        return files

    def _blobs(self) -> dict[str, Any]:
        return {
            "loop": {"onu_ids": list(self.fleet.onu_ids), "loop": self.loop.state_dict()},
            "last_ts": self._last_ts,
            "missed_polls": self.missed.state_dict(),
            "silent_olts": self.silent.state_dict(),
            **({"contacts": self.contacts.state_dict()} if self.contacts else {}),
        }

    def _account(self, figures: dict, report: Any, blocks: dict, by_action: dict) -> None:
        s, m = self.summary, self.metrics
        s.ticks += 1
        s.rows_polled += figures["rows_polled"]
        s.predictions += figures["predictions"]
        s.decisions += figures["decisions"]
        s.olts_failed += len(figures["olts_failed"])
        for k, v in by_action.items():
            s.decisions_by_action[k] = s.decisions_by_action.get(k, 0) + v
            m.decisions.labels(k).inc(v)
        for k, v in blocks.items():
            s.safety_blocks_by_rule[k] = s.safety_blocks_by_rule.get(k, 0) + v
            s.safety_blocks += v
            m.safety_blocks.labels(k).inc(v)
        s.duplicates_suppressed = self.devices.suppressed
        for k, v in contact_outcomes(figures.get("contacts")).items():  # site.contacts
            s.contacts[k] = s.contacts.get(k, 0) + v
            m.contacts.labels(k).inc(v)
        m.cycle_duration.observe(figures["duration_s"])
        m.rows_polled.inc(figures["rows_polled"])
        m.olts_failed.set(len(figures["olts_failed"]))
        m.onus_seen_by_acs_only.set(figures["onus_seen_by_acs_only"])
        m.cycles.inc()
        m.last_success.set(time.time())

    # --- the service ----------------------------------------------------------------------------
    def run(self, for_ticks: int | None = None) -> OperateSummary:
        """Run cycles every polling interval until ``for_ticks`` or a stop signal."""
        t_start = time.perf_counter()
        interval = float(self.site.polling_interval_s)
        try:
            while not self.stop_event.is_set():
                t0 = time.monotonic()
                try:
                    self.run_cycle()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # noqa: BLE001 - a service logs and tries again
                    # Nothing is lost: actions are journalled before they are sent and the
                    # state of the last committed cycle stays; the next cycle polls anew.
                    self.summary.cycles_failed += 1
                    self.metrics.cycles_failed.inc()
                    log_json("cycle_failed", cycle=self.cycle, error=f"{type(exc).__name__}: {exc}")
                    if self.summary.cycles_failed >= self.max_failed_cycles:
                        raise
                if self.traps is not None:
                    self.traps.last_cycle_end = time.monotonic()
                if for_ticks is not None and self.summary.ticks >= for_ticks:
                    break
                wait = interval - (time.monotonic() - t0)
                if wait > 0 and self.traps is not None:
                    self.traps.sleep(wait, self.stop_event)  # a trap starts the next cycle
                elif wait > 0:
                    self.stop_event.wait(wait)
        finally:
            self.summary.safety_violations = safety_violations(self.store, self.settings)
            self.summary.wall_s = round(time.perf_counter() - t_start, 3)
        return self.summary

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT finish the current cycle, then :meth:`run` returns; SIGUSR1
        turns the kill switch on (every later automatic action is blocked and audited)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())
        signal.signal(signal.SIGUSR1, lambda *_: self.engage_kill_switch())

    def engage_kill_switch(self) -> None:
        """Block every automatic action from now on (also before the first cycle)."""
        self.kill_signalled = True
        if self.autopilot is not None:
            self.autopilot.guard.engage_kill_switch()

    def close(self) -> None:
        """Close the audit, the state, the clients and the metrics endpoint."""
        self.audit.close()
        self.source.close()
        if self.traps is not None:
            self.traps.close()
        if self.nbi is not None:
            self.nbi.close()
        if isinstance(self.field, WebhookFieldService):
            self.field.close()
        self.metrics.close()
        if self.alerts is not None:
            self.alerts.close()
        if self.reports is not None:
            self.reports.close()
        self.store.close()
