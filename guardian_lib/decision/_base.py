"""Parts shared by the policies: case lifecycle, massive incidents, candidate selection."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from guardian_lib._numeric import nan_to_num
from guardian_lib.decision._columns import FrameColumns, Rows, _seconds_from
from guardian_lib.decision._types import (
    PREDICTION_COLUMNS,
    Decision,
    Snapshot,
    _sanitized,
    sanitize_predictions,
)
from guardian_lib.decision.neighbours import OutageEvidence, _rx_step
from guardian_lib.decision.visits import VISIT_CASE_COLUMNS

__all__ = [
    "PolicyBase",
    "CASE_COLUMNS",
    "OPTIONAL_CASE_COLUMNS",
    "INCIDENT_COLUMNS",
    "Rows",
    "sanitize_predictions",
]

#: Columns of ``Snapshot.cases`` (index ``onu_id``).
CASE_COLUMNS = (
    "case_id",
    "opened_at",
    "reboots",
    "last_reboot_at",
    "visit_os_id",
    "notified",
    "last_wifi_change_at",
)
#: Case columns a snapshot may lack (older saved states, hand-made snapshots), with
#: their value then. ``power_off_said_at``: when the customer said on a call-ahead that
#: their power was off, ``call_unanswered_at`` when a call-ahead did not reach them
#: (:mod:`~guardian_lib.decision.call_ahead`; None: never); what became of the case's last
#: visit (:data:`~guardian_lib.decision.visits.VISIT_CASE_COLUMNS`).
OPTIONAL_CASE_COLUMNS = {"wifi_changes": 0, "power_off_said_at": None, "call_unanswered_at": None,
                         **VISIT_CASE_COLUMNS}  # fmt: skip
#: Columns of ``Snapshot.incidents``.
INCIDENT_COLUMNS = ("incident_id", "scope_type", "scope_key", "start_at", "cause", "members")
#: Column of the fleet / status table that names each incident scope (a BNG failure is
#: seen per OLT).
SCOPE_COLUMNS = {"box": "box_id", "pon": "pon_id", "olt": "olt_id", "bng": "olt_id"}
#: Open incidents on these scopes hold a reboot of an ONU beneath them (the engine's rule,
#: applied again to approved actions by ``guardian operate``).
REBOOT_HOLD_SCOPES = ("box", "pon", "olt")


@dataclass
class PolicyBase:
    """Lifecycle and incident logic common to the rule and expected-cost policies.

    Parameters
    ----------
    massive_threshold : float, default 0.8
        ``p_massive_outage`` (or ``p_external_network``) above which an ONU counts
        toward a massive incident on the scorer's word. [-]
    min_neighbours : int, default 3
        Other ONUs of the scope that must be affected too (with the scorer's word). [-]
    outage_evidence : OutageEvidence, optional
        Topology evidence that opens an incident whatever the scorer says: ONUs of one
        box / PON / OLT that went dark one after another within minutes, as a share
        of the scope's ONUs and a minimum count (defaults of
        :class:`~guardian_lib.decision.neighbours.OutageEvidence`).
    stable_minutes : float, default 30
        A case closes after the ONU has been back and stable this long. [min]
    risk_threshold : float, default 0.5
        ``risk_24h`` above which a healthy-looking ONU gets a proactive case (where
        :meth:`proactive_grounds` allows it). [-]
    close_risk : float, default 0.25
        A case closes only once ``risk_24h`` is back below this (hysteresis: a drifting
        laser whose risk hovers around ``risk_threshold`` keeps its case). [-]
    keep_drop_db : float, default 1.5
        An ONU whose RX or TX is this far below its baseline keeps its case. [dB]
    min_case_minutes : float, default 30
        A case is not closed as resolved before it has been open this long. [min]
    join_window_min : float, default 60
        An ONU joins a massive incident only if its problem started within this time
        of the incident's start. [min]
    incident_grace_min : float, default 30
        An incident ends once no member has come back for this long (and few are
        still down). [min]
    residual_share : float, default 0.25
        Share of members that may still be down when the incident ends; they become
        individual cases. [-]
    """

    massive_threshold: float = 0.8
    min_neighbours: int = 3
    stable_minutes: float = 30.0
    risk_threshold: float = 0.5
    close_risk: float = 0.25
    keep_drop_db: float = 1.5
    min_case_minutes: float = 30.0
    join_window_min: float = 60.0
    incident_grace_min: float = 30.0
    residual_share: float = 0.25
    outage_evidence: OutageEvidence = field(default_factory=OutageEvidence)
    name: str = "base"
    version: str = "0"

    # --- helpers --------------------------------------------------------------------------
    def _d(self, snap: Snapshot, subject: str, action: str, **kw) -> Decision:
        mv = snap._cache.get("model_version")
        if mv is None:
            mv = "none"
            if snap.predictions is not None and len(snap.predictions):
                mv = str(snap.predictions["model_version"].iat[0])
            snap._cache["model_version"] = mv
        return Decision(
            ts=snap.ts,
            subject=subject,
            action=action,
            model_version=mv,
            policy_version=f"{self.name}-{self.version}",
            **kw,
        )

    def common_decisions(self, snap: Snapshot) -> tuple[list[Decision], Rows, set]:
        """What every policy does first: incidents, then the case lifecycle.

        Returns
        -------
        decisions : list of Decision
            Incident and lifecycle decisions.
        active : Rows
            The open cases still needing an action (``active.index``: their ONU ids).
        with_order : set of str
            ONUs that already have an open service order.
        """
        df = self.frame(snap)
        out, covered = self.incident_decisions(snap, df)
        lifecycle, active = self.case_decisions(snap, df, covered)
        orders = snap.service_orders
        with_order = set(orders["onu_id"]) if len(orders) else set()
        return out + lifecycle, active, with_order

    def frame(self, snap: Snapshot) -> Rows:
        """Status, predictions and neighbour evidence of the ONUs worth a look.

        Rows: ONUs impacted, at risk, under a street box whose neighbours lost RX, with an
        open case or recently back; everything else is healthy and skipped.

        Returns
        -------
        Rows
            One row per ONU worth a look (``rows.index``: the ONU ids, in status order):
            the columns of ``snap.status``, the sanitized predictions, the neighbour
            evidence (:meth:`Snapshot.neighbours <guardian_lib.decision.Snapshot.neighbours>`),
            the topology evidence of a shared outage (:meth:`Snapshot.outages
            <guardian_lib.decision.Snapshot.outages>`) and ``outage_eligible``, in this
            order (a later column of the same name wins).
        """
        st = snap.status
        preds = snap.predictions
        if preds is None:
            raise ValueError(f"{self.name}.decide: snapshot.predictions is None (run a scorer)")
        missing = [c for c in PREDICTION_COLUMNS if c not in preds.columns]
        if missing:
            raise KeyError(f"predictions lack column(s) {missing}: expected {PREDICTION_COLUMNS}")
        pcols = snap.prediction_columns()
        if not self._aligned(snap, pcols):
            preds = preds.set_index("onu_id").reindex(st.index).reset_index()
            pcols = FrameColumns(preds)
        nb = snap.neighbours()
        eligible = self._eligible(snap)
        outages = snap.outages(self.outage_evidence, eligible)
        skip = ("ts", "onu_id")  # never read (a tz-aware "ts" costs ms to convert)
        # Only rows a decision can be about: an anomaly score alone decides nothing (and
        # the ML models give most of the fleet a small one, which made every round slow).
        interest = (
            np.asarray(snap.column("impacted"), dtype=bool)
            | (nan_to_num(np.asarray(pcols["risk_24h"], dtype=float)) > self.risk_threshold)
            | (np.asarray(nb["box_rxdrop_share"], dtype=float) > 0)
            | (snap.column("stable_min") < 4 * self.stable_minutes)
            | self._has_case(snap)
            | pd.notna(outages["outage_scope_type"])
        )
        rows = np.flatnonzero(interest)
        # The columns of status, predictions, neighbours and outages, in this order (a
        # later one of the same name wins).
        cols: dict = {c: snap.column(c)[rows] for c in st.columns if c not in skip}
        pred = {c: pcols.rows(c, rows) for c in preds.columns if c not in skip}
        cols.update(_sanitized(pred))
        for part in (nb, outages):
            cols.update({c: v[rows] for c, v in part.items() if c not in skip})
        cols["outage_eligible"] = np.ones(len(rows), bool) if eligible is None else eligible[rows]
        return Rows(snap.onu_ids()[rows], cols)

    @staticmethod
    def _aligned(snap: Snapshot, pcols: FrameColumns) -> bool:
        """Whether the predictions' rows are the status' ONUs in the status' order."""
        ids = pcols.frame["onu_id"].array
        fleet = snap.status.index.array
        if len(ids) != len(fleet):
            return False
        same_kind = type(ids) is type(fleet) and ids.dtype == fleet.dtype
        if same_kind and not fleet.isna().any() and ids.equals(fleet):
            return True  # the same ids, compared without converting them to objects
        return bool(np.array_equal(pcols["onu_id"], snap.onu_ids()))

    @staticmethod
    def _has_case(snap: Snapshot) -> np.ndarray:
        """Rows of ``snap.status`` with an open case. [bool]"""
        has = np.zeros(len(snap.status), dtype=bool)
        open_ids = snap.case_columns()["onu_id"]
        if len(open_ids):
            pos = snap.rows_of(open_ids)
            has[pos[pos >= 0]] = True
        return has

    def _eligible(self, snap: Snapshot) -> np.ndarray | None:
        """ONUs that may count toward a shared outage: all but those whose open case was
        opened more than ``join_window_min`` after their problem began — a member still
        down when its incident ended, judged on its own since (without this, the
        residual members of a large outage would make a new incident at once)."""
        # The cases' arrays (the frame of ``snap.cases`` is not needed: its columns).
        case_col = snap.case_columns()
        if not len(case_col["onu_id"]) or "opened_at" not in case_col:
            return None
        pos = snap.rows_of(case_col["onu_id"])
        keep = pos >= 0
        opened = case_col["opened_at"][keep]
        lag_min = (
            _seconds_from(snap.ts, opened) / 60.0
            + np.asarray(snap.column("impacted_min"), dtype=float)[pos[keep]]
        )
        eligible = np.ones(len(snap.status), dtype=bool)
        eligible[pos[keep][nan_to_num(lag_min, nan=0.0) > self.join_window_min]] = False
        return eligible

    def reboot_holds(self, snap: Snapshot, active: Rows) -> tuple[np.ndarray, np.ndarray]:
        """Why a reboot of each case's CPE would be refused now, and for how long.

        The standing blocks of the safety layer a policy can predict: the device's own
        reboot history (``snap.reboot_holds``: ``reboot_cooldown``,
        ``max_reboots_per_day`` — a case reopened for a CPE rebooted in an earlier case
        knows it this way) and an open incident on the ONU's box, PON or OLT
        (``active_outage``). A policy waits instead of asking for a reboot it would only
        see blocked; the guard still checks every reboot it does ask for.

        Returns
        -------
        rule : ndarray of object
            The rule per row of ``active`` (``None`` where a reboot would pass them).
        wait_min : ndarray of float
            Time until it lifts (``inf`` while an outage is open). [min]
        """
        n = len(active)
        rule = np.full(n, None, dtype=object)
        wait_min = np.zeros(n)
        if n == 0:
            return rule, wait_min
        inc = snap.incidents
        if len(inc) and "scope_type" in inc:
            scopes = set(zip(inc["scope_type"], inc["scope_key"].astype(str), strict=True))
            held = np.zeros(n, dtype=bool)
            for scope in REBOOT_HOLD_SCOPES:
                if (col := SCOPE_COLUMNS[scope]) in active:
                    keys = np.asarray(active[col], dtype=object)
                    held |= np.array([(scope, str(k)) in scopes for k in keys], dtype=bool)
            rule[held], wait_min[held] = "active_outage", np.inf
        holds = snap.reboot_holds
        if len(holds) and "cpe_id" in active:
            pos = _positions(holds.index.to_numpy(dtype=object), active["cpe_id"])
            dev = (pos >= 0) & pd.isna(rule)
            until = holds["until"].to_numpy(dtype=object)[pos[dev]]
            rule[dev] = holds["rule"].to_numpy(dtype=object)[pos[dev]]
            wait_min[dev] = np.maximum(_seconds_from(snap.ts, until) / 60, 0.0)
        return rule, wait_min

    # --- massive incidents ------------------------------------------------------------------
    def incident_down(self, snap: Snapshot) -> tuple[np.ndarray, np.ndarray]:
        """Which ONUs still count as down for their incident, and since when they are back.

        Observed: no service or degraded service, or light still lost (an RX-step
        incident). A policy that knows more (the oracle) can tell a member's own problem
        from the incident's.

        Returns
        -------
        down : ndarray of bool
            Per row of ``snap.status``.
        stable_min : ndarray of float
            Per row of ``snap.status``: how long the ONU has been back. [min]
        """
        down = np.asarray(snap.column("impacted"), dtype=bool) | _rx_step(snap.read)
        return down, np.asarray(snap.column("stable_min"), dtype=float)

    def incident_decisions(self, snap: Snapshot, df: Rows) -> tuple[list[Decision], set]:
        """Open, grow and close massive incidents; hold visits and notify their members.

        An incident opens where the topology shows a shared outage — ONUs of one box,
        PON or OLT that failed together, enough of them by share and count
        (:func:`~guardian_lib.decision.neighbours.coincident_outages` with
        ``outage_evidence``), whatever the scorer predicts for each — or where the
        scorer calls affected ONUs massive (``massive_threshold``, ``min_neighbours``).
        An incident has *members*: the ONUs its cause took down. They are the scope's
        impacted ONUs whose problem started within ``join_window_min`` of the incident's
        start; an ONU of the scope that fails later, or was already down long before,
        is not a member (it keeps or gets its own case). The incident ends when its
        cause ends: no member has come back for ``incident_grace_min`` and at most
        ``residual_share`` of the members are still down. Members still down then
        become individual cases at once (their visits are no longer held).

        Returns
        -------
        decisions : list of Decision
        covered : set of str
            Members of the incidents still open after this round.
        """
        out: list[Decision] = []
        impacted = np.asarray(df["impacted"], dtype=bool)
        affected = impacted | (df["box_rxdrop_share"] > 0)
        p_m = df["p_massive_outage"] + df["p_external_network"]
        # Two ways into an incident: the topology says so (ONUs of one scope failed
        # together, whatever their per-row prediction), or the scorer calls the ONU
        # massive with neighbours affected (e.g. an RX step under a box, no outage yet).
        outage_type = np.asarray(df["outage_scope_type"], dtype=object)
        by_topology = pd.notna(outage_type)
        # An ONU judged on its own (still down after its incident ended) does not
        # start a new incident on the scorer's word either.
        by_scorer = (
            affected
            & (p_m > self.massive_threshold)
            & (df["n_nb_off"] >= self.min_neighbours)
            & np.asarray(df["outage_eligible"], dtype=bool)
        )
        massive = by_topology | by_scorer
        if not massive.any() and len(snap.incidents) == 0:
            return out, set()
        inc = snap.incidents if len(snap.incidents) else pd.DataFrame(columns=INCIDENT_COLUMNS)
        if "members" not in inc.columns:
            inc = inc.assign(members=[()] * len(inc))
        orders = snap.service_orders
        order_by_onu = (
            dict(zip(orders["onu_id"], orders["os_id"], strict=True)) if len(orders) else {}
        )
        covered: set[str] = set()
        released: set[str] = set()  # members still down when their incident ended
        open_scopes: dict[tuple, str] = {}
        # 1. Close the incidents whose cause has ended; keep the others' members.
        if len(inc):
            down_all, stable_all = self.incident_down(snap)
        for r in inc.itertuples():
            pos = snap.rows_of(r.members)
            members = [m for m, p in zip(r.members, pos, strict=True) if p >= 0]
            pos = pos[pos >= 0]
            down = down_all[pos]
            back_min = stable_all[pos][~down]
            last_back = float(back_min.min()) if len(back_min) else np.inf
            allowed_down = int(np.floor(self.residual_share * len(members)))
            ended = len(members) == 0 or (
                down.sum() <= allowed_down
                and (~down).any()
                and last_back >= self.incident_grace_min
            )
            key = f"{r.scope_type}:{r.scope_key}"
            if ended:
                still = tuple(str(m) for m, d in zip(members, down, strict=True) if d)
                released.update(still)
                out.append(
                    self._d(snap, key, "close_incident", targets=(r.incident_id,),
                            case_id=r.incident_id,
                            rationale={"rule": "cause ended: members back and stable",
                                       "members": len(members), "still_down": len(still),
                                       "last_back_min": round(min(last_back, 1e6), 1)},
                            params={"incident_id": r.incident_id, "still_down": still})
                )  # fmt: skip
            else:
                covered.update(str(m) for m in members)
                open_scopes[(r.scope_type, r.scope_key)] = r.incident_id
        # 2. Open incidents for new massive scopes; let fitting ONUs join open ones.
        # When each failure began as the outage evidence times it (an ONU degraded
        # before the outage took it down: when it went dark; an RX step: when RX fell).
        onset_min = np.asarray(df["outage_onset_min"], dtype=float)
        # The topology's scope where it has one, else the scorer's neighbour scope.
        stypes = np.where(by_topology, outage_type, np.asarray(df["scope_type"], dtype=object))
        skeys = np.where(by_topology, np.asarray(df["outage_scope_key"], dtype=object),
                         np.asarray(df["scope_key"], dtype=object))  # fmt: skip
        # One group per scope, in sorted order; rows without a scope belong to none.
        groups = sorted(
            {(t, k) for t, k in zip(stypes[massive], skeys[massive], strict=True)
             if not (pd.isna(t) or pd.isna(k))}
        )  # fmt: skip
        ids_all = df.index
        share_all = np.asarray(df["outage_share"], dtype=float)
        hurt = set(ids_all[impacted])  # only members who feel it (an RX step leaves service up)
        for stype, skey in groups:
            g = np.flatnonzero(massive & (stypes == stype) & (skeys == skey))
            in_scope = (df[SCOPE_COLUMNS[stype]] == skey) & (impacted | by_topology)
            start_min = float(np.median(onset_min[g]))
            iid = open_scopes.get((stype, skey))
            if iid is not None:
                age_min = (
                    snap.ts - pd.Timestamp(inc.loc[inc["incident_id"] == iid, "start_at"].iat[0])
                ).total_seconds() / 60
                start_min = max(age_min, 0.0)
            fits = in_scope & (np.abs(onset_min - start_min) <= self.join_window_min)
            ids = tuple(str(i) for i in ids_all[fits] if str(i) not in covered | released)
            if not ids:
                continue
            covered.update(ids)
            p_mean = float(np.mean(p_m[g]))
            topo = by_topology[g]
            # Topology evidence: the share of the scope that failed together.
            share = float(share_all[g][topo].max()) if topo.any() else 0.0
            conf = max(p_mean, share)
            key = f"{stype}:{skey}"
            params = {"scope_type": stype, "scope_key": skey}
            if iid is None:
                cls = "EXTERNAL_NETWORK" if stype == "bng" else "MASSIVE_OUTAGE"
                rule = "massive probability above threshold with many neighbours affected"
                evidence = {}
                if topo.any():
                    rule = "ONUs of the scope failed together (topology evidence)"
                    evidence = {
                        "failed_together": int(df["outage_n"][g][topo].max()),
                        "share_of_scope": round(share, 3),
                        "max_gap_min": self.outage_evidence.coincidence_min,
                    }
                rationale = {
                    "rule": rule,
                    **evidence,
                    "n_affected": len(ids),
                    "mean_p_massive": round(p_mean, 3),
                    "top_reasons": json.loads(df["top_reasons"][g[0]]),
                }
                out.append(
                    self._d(snap, key, "open_incident", targets=ids, confidence=conf,
                            rationale=rationale, params={**params, "cause": cls})
                )  # fmt: skip
                open_scopes[(stype, skey)] = "new"
            else:
                out.append(
                    self._d(snap, key, "join_incident", targets=ids, confidence=conf,
                            case_id=iid,
                            rationale={"rule": "down within the incident's window in its scope",
                                       "window_min": self.join_window_min},
                            params={**params, "incident_id": iid})
                )  # fmt: skip
            held = tuple(order_by_onu[i] for i in ids if i in order_by_onu)
            if held:
                # visit_onus: whose visit each order is (audited: the customer notices of
                # operate and of the replay name the customer from it)
                onus = {order_by_onu[i]: i for i in ids if i in order_by_onu}
                out.append(
                    self._d(snap, key, "hold_visits", targets=held, confidence=conf,
                            rationale={"rule": "visits of a massive outage's members are held"},
                            params={**params, "visit_onus": onus})
                )  # fmt: skip
            to_notify = [i for i in ids if i in hurt]
            if to_notify:  # the cases' frame is read (built) only here
                cases = snap.cases
                to_notify = [i for i in to_notify
                             if i not in cases.index or not cases.at[i, "notified"]]  # fmt: skip
            if to_notify:
                out.append(
                    self._d(snap, key, "notify", targets=tuple(to_notify), confidence=conf,
                            rationale={"rule": "tell customers of a massive outage"},
                            params={"template": "massive_outage", "until_h": 12.0})
                )  # fmt: skip
        return out, covered

    # --- individual cases -------------------------------------------------------------------
    def proactive_grounds(self, rows: Rows) -> np.ndarray:
        """Which healthy-looking rows above ``risk_threshold`` open a case on their risk.

        All of them here; a policy that can act before the customer is hurt only on
        some risks overrides this (the expected-cost policy:
        :func:`~guardian_lib.decision.proactive.proactive_grounds`).

        Parameters
        ----------
        rows : Rows
            Rows of :meth:`frame`, not impacted, ``risk_24h`` above ``risk_threshold``.

        Returns
        -------
        ndarray of bool
        """
        return np.ones(len(rows), dtype=bool)

    def case_decisions(self, snap: Snapshot, df: Rows, covered: set) -> tuple[list[Decision], Rows]:
        """Open cases for new problems, close cases back and stable.

        Returns
        -------
        decisions : list of Decision
        active : Rows
            Rows of ``df`` for the individual cases still open after this round, with
            the case columns (:data:`CASE_COLUMNS`, :data:`OPTIONAL_CASE_COLUMNS`)
            added: ``reboots`` and ``wifi_changes`` as int, ``notified`` as bool, the
            others as object arrays (new cases have ``case_id`` None).
        """
        out: list[Decision] = []
        ids = df.index
        case_col = snap.case_columns()
        if len(case_col["onu_id"]):
            pos = _positions(case_col["onu_id"], ids)
        else:
            case_col = {c: np.zeros(0, dtype=object) for c in CASE_COLUMNS}
            pos = np.full(len(ids), -1, dtype=np.intp)
        has_case = pos >= 0
        is_cov = (
            np.fromiter((i in covered for i in ids), dtype=bool, count=len(ids))
            if covered
            else np.zeros(len(ids), dtype=bool)
        )
        impacted = np.asarray(df["impacted"], dtype=bool)
        risk = np.asarray(df["risk_24h"], dtype=float)
        stable_min = np.asarray(df["stable_min"], dtype=float)
        at_risk = ~impacted & (risk > self.risk_threshold)
        if at_risk.any():
            at_risk[at_risk] = self.proactive_grounds(df.take(np.flatnonzero(at_risk)))
        problem = impacted | at_risk
        new = problem & ~has_case & ~is_cov
        anomaly = np.asarray(df["anomaly_score"], dtype=float)
        reasons = np.asarray(df["top_reasons"], dtype=object)
        impacted_min = df["impacted_min"]
        for i in np.flatnonzero(new):
            out.append(
                self._d(snap, str(ids[i]), "open_case", targets=(str(ids[i]),),
                        confidence=float(anomaly[i]),
                        rationale={"top_reasons": json.loads(reasons[i]),
                                   "impacted_min": round(float(impacted_min[i]), 1)})
            )  # fmt: skip
        # Close: back and stable, or now part of a massive incident.
        order_status = snap.order_status()
        n_cases = len(case_col["case_id"])
        for c, default in OPTIONAL_CASE_COLUMNS.items():
            if c not in case_col:
                case_col = {**case_col, c: np.full(n_cases, default, dtype=object)}
        # Age of each open case (inf without one).
        age_min = np.full(len(ids), np.inf)
        if has_case.any():
            # -(opened - ts): the same value as (ts - opened), negation is exact
            age = -_seconds_from(snap.ts, case_col["opened_at"][pos[has_case]]) / 60.0
            age_min[has_case] = np.where(np.isnan(age), np.inf, age)
        drifting = (np.asarray(df["rx_drop_db"], dtype=float) >= self.keep_drop_db) | (
            np.asarray(df["tx_drop_db"], dtype=float) >= self.keep_drop_db
        )
        stable = (
            ~impacted
            & (stable_min >= self.stable_minutes)
            & (risk <= self.close_risk)
            & ~drifting
            & (age_min >= self.min_case_minutes)
        )
        close = has_case & (stable | is_cov)
        for i in np.flatnonzero(close):
            case_id, os_id = case_col["case_id"][pos[i]], case_col["visit_os_id"][pos[i]]
            why = "merged into massive incident" if is_cov[i] else "back and stable"
            if isinstance(os_id, str) and order_status.get(os_id) == "scheduled":
                out.append(
                    self._d(snap, str(ids[i]), "cancel_visit", targets=(os_id,),
                            case_id=case_id, rationale={"rule": f"case {why}"})
                )  # fmt: skip
            out.append(
                self._d(snap, str(ids[i]), "close_case", targets=(str(ids[i]),), case_id=case_id,
                        rationale={"rule": why, "stable_min": float(min(stable_min[i], 1e6))})
            )  # fmt: skip
        rows = np.concatenate([np.flatnonzero(has_case & ~close), np.flatnonzero(new)])
        p = pos[rows]
        defaults = {"case_id": None, "opened_at": pd.NaT, "reboots": 0,
                    "last_reboot_at": pd.NaT, "visit_os_id": None, "notified": False,
                    "last_wifi_change_at": pd.NaT, **OPTIONAL_CASE_COLUMNS}  # fmt: skip
        extra = {}
        for c in (*CASE_COLUMNS, *OPTIONAL_CASE_COLUMNS):
            vals = np.empty(len(rows), dtype=object)
            vals[:] = [case_col[c][j] if j >= 0 else defaults[c] for j in p]
            extra[c] = vals
        extra["reboots"] = np.array([0 if v is None or pd.isna(v) else int(v)
                                     for v in extra["reboots"]], dtype=int)  # fmt: skip
        for c in ("wifi_changes", "visits_completed"):
            extra[c] = np.array([0 if v is None or pd.isna(v) else int(v)
                                 for v in extra[c]], dtype=int)  # fmt: skip
        extra["notified"] = np.array([bool(v) if v is not None and not pd.isna(v) else False
                                      for v in extra["notified"]], dtype=bool)  # fmt: skip
        return out, df.take(rows).with_columns(**extra)


def _positions(keys: np.ndarray, values) -> np.ndarray:
    """Position of each of ``values`` in ``keys`` (−1 where absent; the last of equal
    keys), by a hash lookup: a handful of cases or devices per round."""
    at = {k: i for i, k in enumerate(keys)}
    return np.fromiter((at.get(v, -1) for v in values), dtype=np.intp, count=len(values))
