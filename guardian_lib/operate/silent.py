"""A silent OLT is an outage only on evidence: the CPEs' own TR-069 Informs tell.

An OLT that stops answering SNMP has either lost power or its uplink (its customers have
no service) or only its management path (an out-of-band management network down, a hung
SNMP agent, an ACL change: its customers are fine). Polling alone cannot tell them apart;
the ACS can. A CPE reaches the ACS through its ONU and OLT, so a CPE whose Inform the ACS
received *after* its OLT went silent (GenieACS ``_lastInform``) has a working path: its
ONU has service.

:class:`SilentOlts` turns that into a mask of ONUs known to be up, which
:class:`~guardian_lib.loop.missed.MissedPolls` (the one missed-poll rule) applies past
the grace: such an ONU is "online, readings unknown" instead of "not read". For the ONUs
of an OLT that is silent in this cycle:

* **evidence** — the CPE informed after the silence began (the end of the first poll
  the OLT did not answer; an Inform between the OLT's last answer and that poll may
  predate a power cut, so it proves nothing) and has not missed its next Inform;
* **pending** — the CPE last informed before the silence, has not missed its next
  Inform, its PON is not dark, and at least one other CPE of the same OLT has evidence:
  the OLT carries traffic, this CPE simply has not reached its periodic Inform yet;
* **waiting** — pending as above, while *no* CPE of the OLT has evidence yet (below);
* anything else follows the missed-poll rule (offline past the grace): a CPE that
  *missed* its Inform (below) or is overdue (no Inform for :data:`OVERDUE_FACTOR` × its
  interval + :data:`OVERDUE_POLLS` polling intervals), every CPE of a *dark* PON
  (below), a CPE the ACS does not know or that reports no usable time, a CPE whose
  PPPoE session the ACS reports down (it reaches the ACS, its customer has no
  service: as for a read ONU, that is an impacted customer), and an ONU whose customer
  contacted the helpdesk since the silence began.

**Waiting for evidence.** An OLT none of whose CPEs informed since the silence began is
either dead or has simply not reached any CPE's periodic Inform yet (16 CPEs informing
hourly leave the first poll past the grace without an Inform in 29 % of silences). The
absence of Informs that were not yet due proves nothing, so its not-overdue CPEs wait,
held online, until the evidence decides: an Inform after the silence (the OLT carries
traffic: evidence, pending as above), or misses — the OLT is *dark as a whole* when
:data:`PON_MISSES` of its CPEs (all, if fewer) are :data:`MISS_LATE_S` late with an
Inform due after the silence and after the OLT's last Inform, as a PON's misses (a power
cut, a lost uplink; without the polling interval's margin: nobody of the OLT has been
heard, and ending the wait early costs no more than the rule before it, which counted
them offline at the grace), and a PON of it when its own misses make it dark. The wait also ends, and the rule is the
missed-poll rule again, for all the OLT's CPEs when the silence is :data:`WAIT_MAX_S`
old or the site's ``nbi.silent_wait_max_s`` (long intervals: evidence would come too
late; at most :data:`WAIT_MAX_LIMIT_S`), and when the ACS has heard nobody
since the silence began (an ACS alone with this OLT, or a stale NBI: no miss can come);
for a PON when one of its customers contacted the helpdesk since the silence (a call
is what an outage's customers do first; its own ONU is offline in any case). The cost:
a real power loss is seen at the first poll past the second late Inform, on average
:data:`PON_MISSES` / (N + 1) intervals plus :data:`MISS_LATE_S` after the silence on an
OLT of N CPEs, at most the wait's limit, instead of at the grace.

**Missed Informs, dark PONs.** A CPE's next periodic Inform is due at most one interval
after its last one (a CPE that informs on a fixed schedule, or from its last session,
or also for another reason, is never due later). A CPE has *missed* it when the ACS has
not heard from it :data:`MISS_LATE_S` (a late Inform: four failed sessions in a row at
TR-069's default retry backoff, 5–10 + 10–20 + 20–40 + 40–80 s) plus :data:`MISS_POLLS`
polling interval (the NBI is read once a cycle) after that, while the ACS heard some
other CPE later than :data:`MISS_LATE_S` after it (an ACS that takes no sessions, or an
NBI that serves stale documents, makes nobody miss: the overdue rule alone applies). A
CPE that missed is no evidence whatever its PON does: alone, it is an individual problem.
A PON of a silent OLT is *dark* when :data:`PON_MISSES` of its CPEs (all of them if it
has fewer) missed an Inform due after the silence began and after the last Inform the
ACS received from any CPE of the PON: the PON stopped carrying traffic (a cut feeder,
a failed splitter or port), and the OLT's other PONs no longer hold its CPEs. One miss
is not enough (a slow session, a CPE switched off by its customer); two independent
misses on a PON of which nobody was heard since are a PON fault, and the second comes
on average :data:`PON_MISSES` / (n + 1) intervals after the cut on a PON of n CPEs.
Nothing is remembered: a PON whose CPE informs again is no longer dark. So another
CPE's Inform holds a CPE at most until its own next Inform is missed, and a PON at most
until its second miss, however many CPEs of the OLT keep informing.

An NBI that is down gives no evidence: the rule is today's. Times are the ACS's and this
host's wall clocks (both NTP-synchronised in production): an Inform stamped more than
:data:`MAX_FUTURE_S` ahead of this host's clock, a time that is not an ISO 8601 string
with a zone, and an interval outside [:data:`MIN_INTERVAL_S`, :data:`MAX_INTERVAL_S`]
are read as no evidence (a hostile or broken NBI cannot crash the cycle; it can at
worst delay an OLT incident by one overdue period, as any CPE that keeps informing).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np

__all__ = [
    "INTERVAL_PATHS", "MAX_FUTURE_S", "MAX_INTERVAL_S", "MIN_INTERVAL_S", "MISS_LATE_S",
    "MISS_POLLS", "OVERDUE_FACTOR", "OVERDUE_POLLS", "PON_MISSES", "SilentOlts",
    "WAIT_MAX_LIMIT_S", "WAIT_MAX_S", "inform_interval_s", "inform_time_s",
]  # fmt: skip

#: Where TR-181 and TR-098 CPEs report their periodic Inform interval.
INTERVAL_PATHS = (
    "Device.ManagementServer.PeriodicInformInterval",
    "InternetGatewayDevice.ManagementServer.PeriodicInformInterval",
)
#: A CPE is overdue after this many intervals (a late Inform, a slow ACS session) … [-]
OVERDUE_FACTOR = 1.5
#: … plus this many polling intervals (the NBI is read once a cycle). [-]
OVERDUE_POLLS = 2
#: An Inform is missed when this much later than due (a late Inform) … [s]
MISS_LATE_S = 150.0
#: … plus this many polling intervals (the NBI is read once a cycle). [-]
MISS_POLLS = 1
#: Missed Informs that make a PON dark (all its CPEs' if it has fewer). [-]
PON_MISSES = 2
#: An OLT none of whose CPEs informed since its silence is held at most this long, unless
#: the site sets ``nbi.silent_wait_max_s``. [s]
WAIT_MAX_S = 1800.0
#: The longest wait a site may set: a dead OLT held longer would go unseen for hours. [s]
WAIT_MAX_LIMIT_S = 6 * 3600.0
#: An Inform stamped further ahead of this host's clock is no evidence. [s]
MAX_FUTURE_S = 5.0
#: Periodic Inform intervals accepted (shorter or longer: no evidence). [s]
MIN_INTERVAL_S, MAX_INTERVAL_S = 0.5, 7 * 86400.0
_MAX_TIME_CHARS = 40


def inform_time_s(value: Any) -> float | None:
    """An ACS ``_lastInform`` as POSIX seconds, or None when it is not a usable time.

    Parameters
    ----------
    value : Any
        What the NBI returned: GenieACS sends an ISO 8601 string with a zone
        (``2026-01-05T10:00:00.123Z``). Anything else (a number, NaN, a naive time, a
        long or malformed string) is None.

    Returns
    -------
    float or None
        Seconds since the epoch. [s]

    Examples
    --------
    >>> inform_time_s("1970-01-01T00:01:00.500Z")
    60.5
    >>> inform_time_s("1970-01-01T00:01:00"), inform_time_s(float("nan"))
    (None, None)
    """
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_TIME_CHARS:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return None
    if t.tzinfo is None:
        return None
    s = t.timestamp()
    return s if math.isfinite(s) else None


def inform_interval_s(value: Any, default: float | None = None) -> float | None:
    """A CPE's periodic Inform interval, or ``default`` when it reports none.

    Parameters
    ----------
    value : Any
        ``PeriodicInformInterval`` as the NBI returned it (a number or a numeric
        string; None: not reported).
    default : float, optional
        The site's assumption for CPEs that do not report one. [s]

    Returns
    -------
    float or None
        Within [:data:`MIN_INTERVAL_S`, :data:`MAX_INTERVAL_S`], else None (a value
        that is reported but unusable is no evidence, not the default). [s]
    """
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return v if math.isfinite(v) and MIN_INTERVAL_S <= v <= MAX_INTERVAL_S else None


def _last_heard(informs: Mapping[str, tuple[float | None, float | None]], now_s: float) -> float:
    """The last usable Inform the ACS received from any CPE (−inf: none). [s]"""
    times = [t for t, _ in informs.values() if t is not None and t <= now_s + MAX_FUTURE_S]
    return max(times, default=-math.inf)


class SilentOlts:
    """Which ONUs of silent OLTs the ACS shows up (see the module docstring).

    Parameters
    ----------
    onu_ids : array of str
        The fleet, in tick order.
    olt_of : mapping of str → str
        ONU id → OLT id (a later poll's rows update it).
    cpe_of : mapping of str → str
        ONU id → CPE (ACS device) id.
    poll_s : float
        Polling interval in wall-clock seconds (the ACS's clock). [s]
    pon_of : mapping of str → str, optional
        ONU id → PON id (the inventory's); an ONU without one counts on a PON that
        spans its whole OLT.
    wait_max_s : float, default :data:`WAIT_MAX_S`
        How long an OLT none of whose CPEs informed since its silence is held at most
        (the site's ``nbi.silent_wait_max_s``). [s]

    Attributes
    ----------
    since : dict of str → float
        Silent OLT → wall time its silence began (end of its first unanswered poll). [s]
    evidence, pending, waiting, missed : int
        ONUs of the last :meth:`known_up` in each class (pending: on another CPE's
        evidence; waiting: pending while no CPE of the OLT has evidence; missed: whose
        CPE missed its Inform). [-]
    dark, dark_olts : list of str
        Dark PONs, and OLTs without evidence dark as a whole, of the last :meth:`known_up`.
    """

    def __init__(self, onu_ids: Iterable[str], olt_of: Mapping[str, str],
                 cpe_of: Mapping[str, str], poll_s: float,
                 pon_of: Mapping[str, str] | None = None,
                 wait_max_s: float = WAIT_MAX_S) -> None:  # fmt: skip
        if not 0 < wait_max_s <= WAIT_MAX_LIMIT_S:
            raise ValueError(
                f"silent_wait_max_s: expected 0 < s <= {WAIT_MAX_LIMIT_S:g}, got {wait_max_s}"
            )
        self.wait_max_s = float(wait_max_s)
        self.onu_ids = np.asarray(list(onu_ids), dtype=object)
        self.olt_of = {str(k): str(v) for k, v in olt_of.items() if v is not None}
        self.cpe_of = dict(cpe_of)
        self.pon_of = {str(k): str(v) for k, v in (pon_of or {}).items() if v is not None}
        self.poll_s = float(poll_s)
        self.since: dict[str, float] = {}
        self.contacted: set[str] = set()
        self.evidence = self.pending = self.waiting = self.missed = 0
        self.dark: list[str] = []
        self.dark_olts: list[str] = []

    def observe(self, answered: Iterable[str], failed: Iterable[str], now_s: float,
                rows: Any = None) -> None:  # fmt: skip
        """Fold in one poll: OLTs that answered end their silence, those that did not
        start one at ``now_s`` (the end of the poll) unless already silent.

        Parameters
        ----------
        answered, failed : iterable of str
            OLT ids whose poll was complete / was not.
        now_s : float
            Wall time at the end of the poll. [s]
        rows : pandas.DataFrame, optional
            The poll's telemetry (``onu_id``, ``olt_id``): which OLT reports each ONU.
        """
        answered = {str(o) for o in answered}
        for olt in answered:
            self.since.pop(olt, None)
        self.contacted = {o for o in self.contacted if self.olt_of.get(o) not in answered}
        for olt in failed:
            self.since.setdefault(str(olt), float(now_s))
        if rows is not None and len(rows) and "olt_id" in rows:  # a source may not say
            self.olt_of.update(zip(rows["onu_id"].astype(str), rows["olt_id"].astype(str),
                                   strict=True))  # fmt: skip

    def contacts(self, onu_ids: Iterable[str | None]) -> None:
        """ONUs whose customer contacted the helpdesk this cycle: no evidence for them
        while their OLT stays silent."""
        silent = self.since
        self.contacted.update(o for o in onu_ids if o and self.olt_of.get(o) in silent)

    def known_up(self, informs: Mapping[str, tuple[float | None, float | None]],
                 now_s: float, ppp: Mapping[str, bool] | None = None) -> np.ndarray | None:  # fmt: skip
        """The mask of ONUs of silent OLTs with evidence or pending (None: no OLT silent).

        Parameters
        ----------
        informs : mapping of str → (float or None, float or None)
            CPE id → (last Inform [s, POSIX], periodic interval [s]), from
            :attr:`~guardian_lib.operate.adapters.NbiCpeState.informs`; empty when the NBI
            is down (no evidence).
        now_s : float
            This host's wall time. [s]
        ppp : mapping of str → bool, optional
            CPE id → PPPoE session up; a CPE reported down is no evidence.
        """
        ppp = ppp or {}
        self.evidence = self.pending = self.waiting = self.missed = 0
        self.dark, self.dark_olts = [], []
        if not self.since:
            return None
        heard = _last_heard(informs, now_s)
        slack = MISS_LATE_S + MISS_POLLS * self.poll_s
        n = len(self.onu_ids)
        ev, pend, miss = (np.zeros(n, dtype=bool) for _ in range(3))
        olt, pon = np.empty(n, dtype=object), np.empty(n, dtype=object)
        last_of: dict[tuple[str, str], float] = {}  # PON or OLT → its CPEs' last Inform [s]
        cpes: dict[tuple[str, str], int] = {}  # PON or OLT → its CPEs with a usable Inform
        missed_due: dict[tuple[str, str], list[float]] = {}  # → due times of missed Informs
        for i, onu in enumerate(self.onu_ids):
            o = self.olt_of.get(onu)
            start = self.since.get(o) if o is not None else None
            if start is None:
                continue
            p = pon[i] = self.pon_of.get(onu, o)
            cpe = self.cpe_of.get(onu) or ""
            last, interval = informs.get(cpe, (None, None))
            if last is None or interval is None or last > now_s + MAX_FUTURE_S:
                continue
            due = last + interval
            late = now_s - due > MISS_LATE_S and heard - due > MISS_LATE_S
            missed = late and now_s - due > slack
            for g, gone in ((("pon", p), missed), (("olt", o), late)):
                last_of[g] = max(last_of.get(g, last), last)
                cpes[g] = cpes.get(g, 0) + 1
                if gone and due > start:
                    missed_due.setdefault(g, []).append(due)
            if missed:
                miss[i] = True  # it missed its Inform: no evidence, whatever its PON does
                continue
            if onu in self.contacted or ppp.get(cpe) is False:
                continue  # a call; or it reaches the ACS, its customer's session is down
            if now_s - last > OVERDUE_FACTOR * interval + OVERDUE_POLLS * self.poll_s:
                continue  # overdue: the CPE went silent too
            olt[i] = o
            ev[i] = last > start
            pend[i] = not ev[i]
        dark = {
            g for g, dues in missed_due.items()
            if sum(d > last_of[g] for d in dues) >= min(PON_MISSES, cpes[g])
        }  # fmt: skip
        self.dark = sorted(p for kind, p in dark if kind == "pon")
        lit = np.array([p not in self.dark for p in pon], dtype=bool)
        ev &= lit
        alive = set(olt[ev])
        called = {self.pon_of.get(c, self.olt_of.get(c)) for c in self.contacted}
        waits = {
            o for o, start in self.since.items()
            if o not in alive and ("olt", o) not in dark and heard > start
            and now_s - start <= self.wait_max_s
        }  # fmt: skip
        self.dark_olts = sorted(o for kind, o in dark if kind == "olt" and o not in alive)
        held = [o in alive or (o in waits and q not in called)
                for o, q in zip(olt, pon, strict=True)]  # fmt: skip
        pend &= lit & np.array(held, dtype=bool)
        wait = pend & np.array([o not in alive for o in olt], dtype=bool)
        self.evidence, self.pending = int(ev.sum()), int((pend & ~wait).sum())
        self.waiting, self.missed = int(wait.sum()), int(miss.sum())
        return ev | pend

    def mask(self, events: Iterable[Any], cpe_state: Any, now_s: float) -> np.ndarray | None:
        """:meth:`contacts` of the cycle's ``CUSTOMER_CALL`` events, then :meth:`known_up`
        with ``cpe_state``'s Inform times (``NbiCpeState``; None: no NBI, no evidence)."""
        self.contacts(e.onu_id() for e in events if e.type == "CUSTOMER_CALL")
        if cpe_state is None:
            return self.known_up({}, now_s)
        return self.known_up(cpe_state.informs, now_s, cpe_state.ppp)

    def log(self, seen: int) -> None:
        """One ``silent_olts`` JSON line while an OLT is silent; ``seen``: ONUs the
        missed-poll rule kept online on this evidence (past their grace). [-]"""
        if self.since:
            from guardian_lib.operate.metrics import log_json

            log_json("silent_olts", olts=sorted(self.since), informed_since=self.evidence,
                     pending=self.pending, waiting=self.waiting, missed=self.missed,
                     dark_pons=self.dark, dark_olts=self.dark_olts,
                     onus_seen_by_acs_only=int(seen))  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """What a restart needs: when each silence began, who called since."""
        return {"since": dict(self.since), "contacted": sorted(self.contacted)}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore :meth:`state_dict` (nothing to restore: no OLT silent)."""
        if state:
            self.since = {str(k): float(v) for k, v in state.get("since", {}).items()}
            self.contacted = set(state.get("contacted", ()))
