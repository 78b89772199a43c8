"""Customer notices: Jinja2 templates (pt-BR, en) committed under ``templates/notices/``.

Templates: ``outage_detected`` (with ETA), ``outage_resolved``, ``visit_cancelled``
(the outage explains the problem), ``equipment_rebooted`` and ``problem_detected`` (an
individual problem the autopilot is handling, with ETA). :class:`NoticePlanner`
decides who gets what:

* **one notice per customer per incident**: an opening notice (``outage_detected`` or
  ``visit_cancelled``, whichever comes first) and, only if an opening notice was sent, one
  ``outage_resolved``; a second request with the same key is dropped;
* **opt-out**: customers in ``opted_out`` get nothing (counted);
* **quiet hours** (customer's local time, default 22:00–07:00 America/Sao_Paulo): the
  notice is kept but ``send_at`` moves to the end of the quiet period.

Dates are shown in the customer's time zone and language (``dd/mm/aaaa HH:MM`` in pt-BR).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from guardian_lib.i18n import normalize_lang

__all__ = ["NOTICE_TEMPLATES", "Notice", "NoticePlanner", "notice_kind", "render_notice"]

#: The notice templates shipped (one file per language).
NOTICE_TEMPLATES = ("outage_detected", "outage_resolved", "visit_cancelled", "equipment_rebooted",
                    "problem_detected")  # fmt: skip
_OPENING = ("outage_detected", "visit_cancelled", "problem_detected")
_TEMPLATES = Path(__file__).with_name("templates") / "notices"


def notice_kind(template: str) -> str:
    """The per-incident slot a template fills: ``open`` (one opening notice per customer
    per incident, whichever comes first), ``resolved``, ``rebooted``, or the template."""
    if template in _OPENING:
        return "open"
    return {"outage_resolved": "resolved", "equipment_rebooted": "rebooted"}.get(template, template)


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text SMS / WhatsApp / e-mail bodies
        keep_trailing_newline=False,
    )


def _local(ts: Any, lang: str, tz: str) -> str:
    t = pd.Timestamp(ts)
    t = (t.tz_localize("UTC") if t.tzinfo is None else t).tz_convert(tz)
    return t.strftime("%d/%m/%Y %H:%M" if lang == "pt-BR" else "%Y-%m-%d %H:%M")


def render_notice(template: str, lang: str, tz: str = "America/Sao_Paulo", **ctx: Any) -> str:
    """The text of one notice; timestamps in ``ctx`` are shown in ``tz`` and ``lang``.

    Raises
    ------
    ValueError
        Unknown template or language; jinja2.UndefinedError when a field is missing.
    """
    if template not in NOTICE_TEMPLATES:
        raise ValueError(f"unknown notice template {template!r}, expected {NOTICE_TEMPLATES}")
    lang = normalize_lang(lang)
    shown = {
        k: _local(v, lang, tz) if isinstance(v, pd.Timestamp) else ("" if v is None else v)
        for k, v in ctx.items()
    }
    return _env().get_template(f"{lang}/{template}.txt.j2").render(**shown).strip()


@dataclass(frozen=True)
class Notice:
    """One planned customer notice."""

    customer_id: str
    incident_id: str
    template: str
    lang: str
    requested_at: pd.Timestamp
    send_at: pd.Timestamp
    text: str

    @property
    def deferred(self) -> bool:
        """Moved past quiet hours."""
        return self.send_at > self.requested_at

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "customer_id": self.customer_id, "incident_id": self.incident_id,
            "template": self.template, "lang": self.lang,
            "requested_at": self.requested_at.isoformat(), "send_at": self.send_at.isoformat(),
            "deferred": self.deferred, "text": self.text,
        }  # fmt: skip


@dataclass
class NoticePlanner:
    """Plans notices with the per-incident limit, opt-outs and quiet hours.

    Parameters
    ----------
    opted_out : iterable of str
        Customers who asked for no notices.
    quiet_start_h, quiet_end_h : int
        Quiet period in local hours [h] (start > end wraps past midnight).
    tz : str
        Customers' time zone.
    """

    opted_out: Iterable[str] = ()
    quiet_start_h: int = 22
    quiet_end_h: int = 7
    tz: str = "America/Sao_Paulo"
    notices: list[Notice] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=lambda: {"opted_out": 0, "duplicate": 0})

    def __post_init__(self) -> None:
        self.opted_out = frozenset(self.opted_out)
        self._keys: set[tuple[str, str, str]] = set()

    def _quiet(self, t: pd.Timestamp) -> bool:
        h = t.hour
        a, b = self.quiet_start_h, self.quiet_end_h
        return (a <= h or h < b) if a > b else (a <= h < b)

    def send_time(self, at: pd.Timestamp) -> pd.Timestamp:
        """``at`` (UTC), or the end of the quiet period it falls in."""
        return self._send_at(at)

    def _send_at(self, at: pd.Timestamp) -> pd.Timestamp:
        local = at.tz_convert(self.tz)
        if not self._quiet(local):
            return at
        end = local.normalize() + pd.Timedelta(hours=self.quiet_end_h)
        if end <= local:
            end += pd.Timedelta(days=1)
        return end.tz_convert("UTC")

    def request(
        self, customer_id: str, incident_id: str, template: str, at: pd.Timestamp, lang: str,
        **ctx: Any,
    ) -> Notice | None:  # fmt: skip
        """Plan one notice; None when opted out or over the per-incident limit."""
        if customer_id in self.opted_out:
            self.skipped["opted_out"] += 1
            return None
        key = (customer_id, incident_id, notice_kind(template))
        if key in self._keys or (
            template == "outage_resolved" and (customer_id, incident_id, "open") not in self._keys
        ):
            self.skipped["duplicate"] += 1
            return None
        self._keys.add(key)
        at = pd.Timestamp(at)
        at = at.tz_localize("UTC") if at.tzinfo is None else at.tz_convert("UTC")
        text = render_notice(template, lang, self.tz, incident_id=incident_id, **ctx)
        n = Notice(customer_id, incident_id, template, normalize_lang(lang), at,
                   self._send_at(at), text)  # fmt: skip
        self.notices.append(n)
        return n
