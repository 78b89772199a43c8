"""Customer notices that are really sent: the autopilot's ``notify`` through the outbox.

:class:`CustomerNotifier` is the notifier ``guardian operate`` gives the autopilot when the
alerting file has a ``customer_notices:`` section. ``notify(onu_id, template, until_h)``
renders the notice (:mod:`~guardian_lib.alerts.notices`: pt-BR / en templates, the
customer's language and time zone), applies the rules and writes it to the same outbox as
the alerts; the pipeline delivers it at the end of the cycle through the configured
receiver (SMS, WhatsApp: to the customer's ``phone``; webhook: the JSON as is).

* **one notice per customer per incident**: the outbox key is
  ``notice:<customer>:<incident>:<open|resolved>``, so a restart, a second decision or a
  second process never sends it twice (an enqueue of a known key is a no-op);
* ``outage_resolved`` goes, when an incident closes, only to the customers who got its
  opening notice (looked up in the outbox, so it survives restarts);
* **opt-out**: subscribers with ``notices_opt_out`` true get nothing;
* **quiet hours**: the message waits in the outbox (``not_before``) until they end.

The autopilot's templates map to notices: ``massive_outage`` → ``outage_detected`` (ETA:
``until_h`` after the decision), ``individual_problem`` → ``problem_detected``.

:meth:`CustomerNotifier.action_outcome` listens to the autopilot's action outcomes
(``Autopilot.listeners``): a verified reboot → ``equipment_rebooted`` (key
``notice:<customer>:<case>:rebooted``), a visit held or cancelled because of an outage →
``visit_cancelled`` (the incident's opening notice, like ``outage_detected``: whichever
comes first). Which outcome calls for which notice is
:func:`~guardian_lib.alerts.action_notices.notices_for_outcome`, the function the replay
plans with.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from guardian_lib.alerts.action_notices import (
    AUTOPILOT_TEMPLATES,
    notice_for_notify,
    notices_for_outcome,
)
from guardian_lib.alerts.config import CustomerNoticeSettings
from guardian_lib.alerts.notices import NoticePlanner, notice_kind, render_notice
from guardian_lib.alerts.outbox import Outbox
from guardian_lib.decision._base import SCOPE_COLUMNS
from guardian_lib.decision._types import ActionOutcome
from guardian_lib.i18n import normalize_lang

__all__ = ["AUTOPILOT_TEMPLATES", "CustomerNotifier", "notice_key"]

log = logging.getLogger("guardian_lib.alerts")

_TRUE = {"1", "true", "yes", "y", "sim", "s", "x"}


def notice_key(customer_id: str, incident_id: str, kind: str) -> str:
    """The outbox key of a notice (``kind``: ``open``, ``resolved`` or ``rebooted``, see
    :func:`~guardian_lib.alerts.notices.notice_kind`)."""
    return f"notice:{customer_id}:{incident_id}:{kind}"


def _text(v: Any) -> str | None:
    return None if v is None or (not isinstance(v, str) and pd.isna(v)) or v == "" else str(v)


class CustomerNotifier:
    """The autopilot's notifier that queues real notices in the outbox.

    Parameters
    ----------
    settings : CustomerNoticeSettings
    outbox : Outbox
        The alert pipeline's outbox (it delivers them with the alerts).
    clock : callable
        The decision time (UTC ``pandas.Timestamp``): operate's cycle time.
    channel : {'sms', 'whatsapp', 'webhook'}
        The receiver's channel (SMS and WhatsApp need the customer's ``phone``).
    """

    def __init__(
        self,
        settings: CustomerNoticeSettings,
        outbox: Outbox,
        clock: Callable[[], pd.Timestamp],
        channel: str = "webhook",
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.channel = channel
        # Quiet hours only: the per-incident limit lives in the outbox (survives restarts).
        self.planner = NoticePlanner(quiet_start_h=settings.quiet_start_h,
                                     quiet_end_h=settings.quiet_end_h, tz=settings.tz)  # fmt: skip
        self._subscribers: dict[str, dict[str, Any]] = {}
        self._incidents: Callable[[], Mapping[str, Mapping[str, Any]]] = dict
        self._cases: Callable[[], Mapping[str, Mapping[str, Any]]] = dict
        #: Counts: ``queued``, ``duplicate``, ``opted_out``, ``no_phone``, ``unknown``.
        self.counts = dict.fromkeys(("queued", "duplicate", "opted_out", "no_phone", "unknown"), 0)
        #: ``(onu_id, template, until_h)`` of every call, as :class:`AuditNotifier` keeps.
        self.sent: list[tuple[str, str, float]] = []
        #: Notices queued, by template. [-]
        self.by_template: Counter[str] = Counter()

    def bind(self, fleet: pd.DataFrame, autopilot: Any) -> None:
        """The subscribers (``onu_id``, ``customer_id``, ``region``, optional ``phone``,
        ``lang``, ``name``, ``notices_opt_out``) and the autopilot whose open incidents and
        cases name the notices."""
        rows = fleet.to_dict("records")
        self._subscribers = {str(r["onu_id"]): r for r in rows}
        self._incidents = lambda: autopilot.incidents
        self._cases = lambda: autopilot.cases

    def _member_of(self, onu_id: str, at: pd.Timestamp | None = None) -> str | None:
        """The open incident that has the ONU as a member (:data:`MemberLookup`)."""
        for iid, inc in self._incidents().items():
            if onu_id in inc.get("members", ()):
                return str(iid)
        return None

    def _needs_phone(self) -> bool:
        return self.channel in ("sms", "whatsapp")

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        """Queue the notice (True), or False when it cannot be sent (unknown template or
        ONU, no phone for an SMS / WhatsApp receiver). Opted-out customers and repeated
        notices are not failures: True, nothing queued. [h]"""
        self.sent.append((onu_id, template, float(until_h)))
        onu_id = str(onu_id)
        case = self._cases().get(onu_id)
        req = notice_for_notify(onu_id, template, until_h, self.clock(), self._member_of,
                                str(case["case_id"]) if case is not None else None)  # fmt: skip
        if req is None:
            self.counts["unknown"] += 1
            log.warning("customer notice: unknown template %r", template)
            return False
        return self._request(onu_id, req.incident_id, req.template, req.at, req.ctx)

    def action_outcome(self, outcome: ActionOutcome) -> None:
        """Listener of the autopilot (``Autopilot.listeners``): queue the notices an
        executed action calls for (:func:`notices_for_outcome`, as the replay plans)."""
        for req in notices_for_outcome(outcome, self._incident_at, self.settings.eta_h):
            self._request(req.onu_id, req.incident_id, req.template, req.at, req.ctx)

    def _incident_at(self, onu_id: str, at: pd.Timestamp) -> tuple[str, pd.Timestamp] | None:
        """The open incident that has the ONU as a member, else whose scope covers it."""
        incidents = self._incidents()
        member = self._member_of(onu_id)
        if member is not None:
            return member, pd.Timestamp(incidents[member].get("start_at", at))
        sub = self._subscribers.get(onu_id, {})
        for iid, inc in incidents.items():
            col = SCOPE_COLUMNS.get(str(inc.get("scope_type")))
            if col is not None and _text(sub.get(col)) == str(inc.get("scope_key")):
                return str(iid), pd.Timestamp(inc.get("start_at", at))
        return None

    def _request(self, onu_id: str, incident: str, template: str, now: pd.Timestamp,
                 ctx: dict[str, Any]) -> bool:  # fmt: skip
        """The rules every notice goes through: known ONU, opt-out, phone, then the queue
        (once per customer, incident and :func:`notice_kind`)."""
        sub = self._subscribers.get(onu_id)
        if sub is None:
            self.counts["unknown"] += 1
            log.warning("customer notice: unknown ONU %r (%s)", onu_id, template)
            return False
        customer = str(sub.get("customer_id") or onu_id)
        if str(sub.get("notices_opt_out") or "").strip().lower() in _TRUE:
            self.counts["opted_out"] += 1
            return True
        phone = _text(sub.get("phone"))
        if phone is None and self._needs_phone():
            self.counts["no_phone"] += 1
            return False
        ctx = {"region": _text(sub.get("region")) or "", **ctx}
        kind = notice_kind(template)
        return self._queue(customer, incident, template, kind, sub, phone, now, ctx)

    def incidents_closed(self, open_ids: set[str]) -> int:
        """Queue ``outage_resolved`` for every incident whose opening notices were sent
        and which is no longer open; returns how many were queued."""
        n = 0
        now = self.clock()
        by_customer = {str(s.get("customer_id") or o): s for o, s in self._subscribers.items()}
        for p in self.outbox.payloads("notice:%:open"):
            iid, cust = str(p["incident_id"]), str(p["customer_id"])
            if iid in open_ids or p.get("template") not in ("outage_detected", "visit_cancelled"):
                continue
            if self.outbox.has(notice_key(cust, iid, "resolved")):
                continue
            sub = by_customer.get(cust, {})
            phone = p.get("to") or _text(sub.get("phone"))
            n += self._queue(cust, iid, "outage_resolved", "resolved", sub, phone, now,
                             {"end": now}, lang=p.get("lang"))  # fmt: skip
        return n

    def _queue(self, customer, incident, template, kind, sub, phone, now, ctx, lang=None) -> bool:
        key = notice_key(customer, incident, kind)
        if self.outbox.has(key):
            self.counts["duplicate"] += 1
            return True
        lang = normalize_lang(lang or _text(sub.get("lang")) or self.settings.lang)
        name = _text(sub.get("name")) or customer
        at = pd.Timestamp(now)
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        send_at = self.planner.send_time(at)
        text = render_notice(template, lang, self.settings.tz, incident_id=incident, name=name,
                             **ctx)  # fmt: skip
        payload = {"kind": "customer_notice", "idempotencyKey": key, "to": phone,
                   "customer_id": customer, "incident_id": incident, "template": template,
                   "lang": lang, "requested_at": at.isoformat(), "send_at": send_at.isoformat(),
                   "deferred": bool(send_at > at), "text": text}  # fmt: skip
        self.outbox.enqueue(key, self.settings.receiver, payload, not_before=send_at)
        self.counts["queued"] += 1
        self.by_template[template] += 1
        return True
