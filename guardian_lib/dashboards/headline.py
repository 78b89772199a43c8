"""The headline of a run for a manager: what happened and what the autopilot is worth.

:func:`headline` collects, from one :class:`~guardian_lib.dashboards.RunData`, the period,
customers and massive incidents of the run and, from the backtest's ``kpis.json``, the
visits avoided and R$ saved per month against reactive operation, the change in MTTR and
in availability, and the safety record. When ``kpis.json`` carries the paired
per-month figures with their 95 % intervals (``visits_avoided_per_month``,
``saved_brl_per_month``, ``mttr_change_hours``) they are used as they are; otherwise the
figures are the difference of the policies' means, shown without an interval.
:func:`headline_html` renders them as the first section of the report.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import pandas as pd

from guardian_lib.dashboards._data import RunData
from guardian_lib.dashboards.glossary import format_estimate, metric_label, policy_name
from guardian_lib.i18n import format_date, format_number, label

__all__ = ["HeadlineItem", "headline", "headline_html", "main_policy"]

_MONTH_DAYS = 30.0  # a month in the per-month figures [d]


@dataclass(frozen=True)
class HeadlineItem:
    """One headline figure: glossary key, estimate and its 95 % interval (may be NaN)."""

    key: str
    value: float
    lo: float = float("nan")
    hi: float = float("nan")

    def texts(self, lang: str = "en") -> tuple[str, str]:
        """The value and its 95 % interval as shown (``""`` without an interval).

        A month's saving is an estimate whose interval spans thousands of reais: whole
        reais. A count and its interval share their decimals.
        """
        whole = self.key == "saved_brl_per_month"
        return format_estimate(self.key, self.value, self.lo, self.hi, lang, whole_reais=whole)


def _incidents(inc: pd.DataFrame | None) -> HeadlineItem:
    """Massive incidents of the audit: distinct ids, per replication when there are several.

    The audit holds one row each time an incident is recorded (opened, closed), and a
    backtest's audit holds every replication, its ids prefixed by the replication's tag
    (``AUT<seed>-INC…``): counting rows would double and sum them.
    """
    if inc is None or "incident_id" not in inc.columns:
        return HeadlineItem("incidents", float("nan"))
    ids = inc["incident_id"].dropna().astype(str).drop_duplicates()
    tags = ids.str.extract(r"^(.*?)INC", expand=False).fillna("")
    reps = max(int(tags.nunique()), 1)
    key = "incidents_per_replication" if reps > 1 else "incidents"
    return HeadlineItem(key, len(ids) / reps)


def main_policy(backtest: dict[str, Any] | None) -> str | None:
    """The policy the report speaks for: ``autopilot`` when present, else the last one."""
    if not backtest or not backtest.get("policies"):
        return None
    names = list(backtest["policies"])
    return next((p for p in names if "autopilot" in p.lower()), names[-1])


def _stat(block: dict[str, Any], key: str) -> tuple[float, float, float]:
    v = block.get(key)
    if isinstance(v, dict) and "mean" in v:
        ci = v.get("ci95") or [None, None]
        f = [float("nan") if x is None else float(x) for x in (v["mean"], *ci[:2])]
        return f[0], f[1], f[2]
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v), float("nan"), float("nan")
    return float("nan"), float("nan"), float("nan")


def _span_days(data: RunData) -> float:
    """Length of the run's data, first to last reading [d] (NaN when unknown)."""
    if data.start is not None and data.end is not None and data.end > data.start:
        return (data.end - data.start).total_seconds() / 86400.0
    return float("nan")


def _days(data: RunData) -> float:
    """Days the backtest replayed (its ``settings.days``), else the run's span [d]."""
    settings = (data.backtest or {}).get("settings") or {}
    days = settings.get("days")
    if isinstance(days, (int, float)) and days > 0:
        return float(days)
    return _span_days(data)


def headline(data: RunData) -> list[HeadlineItem]:
    """The headline figures of ``data`` in display order (see the module docstring).

    Returns
    -------
    list of HeadlineItem
        ``customers``, ``incidents`` (NaN without audit tables) and, with a backtest that
        has the main policy and ``reactive``: ``visits_avoided_per_month`` [-/month],
        ``saved_brl_per_month`` [R$/month], ``mttr_change_hours`` [h],
        ``availability_change`` [-] and ``safety_violations`` [-].
    """
    cust = data.table("customers")
    items = [
        HeadlineItem("customers", float(len(cust)) if cust is not None else float("nan")),
        _incidents(data.table("incidents")),
    ]
    pol = main_policy(data.backtest)
    if pol is None:
        return items
    policies = data.backtest["policies"]
    m = policies[pol] or {}
    base = policies.get("reactive") if pol != "reactive" else None
    month = _MONTH_DAYS / _days(data)
    for key, diff_of, own, sign, scale in (
        ("visits_avoided_per_month", "visits", "visits_avoided", -1.0, month),
        ("saved_brl_per_month", "total_cost_brl", "savings_brl", -1.0, month),
        ("mttr_change_hours", "mttr_hours", None, 1.0, 1.0),
    ):
        v, lo, hi = _stat(m, key)
        if pd.isna(v) and base is not None:
            # Difference of means (no paired interval in this kpis.json).
            v = sign * (_stat(m, diff_of)[0] - _stat(base, diff_of)[0]) * scale
            lo = hi = float("nan")
        if pd.isna(v) and own is not None:
            # The policy's own count / saving over the period, scaled to a month.
            v, lo, hi = (x * scale for x in _stat(m, own))
        if not pd.isna(v):
            items.append(HeadlineItem(key, v, lo, hi))
    if base is not None:
        a, b = _stat(m, "sla_availability")[0], _stat(base, "sla_availability")[0]
        if not (pd.isna(a) or pd.isna(b)):
            items.append(HeadlineItem("availability_change", a - b))
    v, lo, hi = _stat(m, "safety_violations")
    if not pd.isna(v):
        items.append(HeadlineItem("safety_violations", v, lo, hi))
    return items


_TEXT = {
    "title": ("Summary", "Resumo"),
    "vs": ("{policy} compared with reactive operation", "{policy} em relação à operação reativa"),
    "no_backtest": (
        "No backtest for this run yet: the savings are not computed.",
        "Ainda não há backtest desta execução: a economia não foi calculada.",
    ),
    "no_ci": ("estimate without interval", "estimativa sem intervalo"),
    "safe": ("no safety rule was broken", "nenhuma regra de segurança foi violada"),
    "unsafe": (
        "safety rules were broken: check the audit",
        "regras violadas: verifique a auditoria",
    ),
    "days": ("{n} days", "{n} dias"),
    "basis": (
        "{n} replications × {days} days each; 95 % intervals: bootstrap over the "
        "replications, paired with the reactive operation on the same faults",
        "{n} replicações × {days} dias cada; intervalos de 95 %: bootstrap sobre as "
        "replicações, pareadas com a operação reativa nas mesmas falhas",
    ),
}


def _t(key: str, lang: str, **kw: Any) -> str:
    en, pt = _TEXT[key]
    return (pt if lang == "pt-BR" else en).format(**kw)


def _basis(data: RunData, lang: str) -> str:
    """What the intervals rest on: replications × days of the backtest ("" if unknown)."""
    settings = (data.backtest or {}).get("settings") or {}
    seeds, days = settings.get("seeds"), settings.get("days")
    if not isinstance(seeds, list) or not seeds or not isinstance(days, (int, float)):
        return ""
    digits = 0 if float(days).is_integer() else 1
    return _t("basis", lang, n=len(seeds), days=format_number(float(days), lang, digits))


def headline_html(data: RunData, lang: str) -> str:
    """The headline as an HTML section (``data-testid="headline"``; cards as in the screens)."""
    from guardian_lib.dashboards._figures import kpi_cards_html

    period = f"{format_date(data.start, lang)} – {format_date(data.end, lang)}"
    # The period's own length: the backtest's days (which may be fewer) are in the caption.
    days = _span_days(data)
    cards = [
        (
            "period",
            label("period", lang),
            period,
            _t("days", lang, n=format_number(days, lang, 1)) if not pd.isna(days) else "",
        )
    ]
    for it in headline(data):
        value, note = it.texts(lang)
        if it.key in ("visits_avoided_per_month", "saved_brl_per_month", "mttr_change_hours"):
            note = note or _t("no_ci", lang)
        if it.key == "safety_violations" and not pd.isna(it.value):
            note = _t("safe" if it.value == 0 else "unsafe", lang)
        cards.append((it.key, metric_label(it.key, lang), value, note))
    pol = main_policy(data.backtest)
    sub = (
        _t("vs", lang, policy=policy_name(pol, lang))
        if pol and pol != "reactive" and "reactive" in data.backtest["policies"]
        else _t("no_backtest", lang)
        if pol is None
        else ""
    )
    basis = _basis(data, lang) if sub and pol != "reactive" else ""
    sub = f"{sub} — {basis}" if basis else sub
    caption = f'<div class="caption">{html.escape(sub)}</div>' if sub else ""
    return (
        f'<section data-testid="headline"><h3>{html.escape(_t("title", lang))}</h3>'
        f"{kpi_cards_html(cards)}{caption}</section>"
    )
