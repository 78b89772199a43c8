"""Result screens: KPIs and savings, SLA, and the explainability of decisions (the
printed report reuses their tables)."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd
import panel as pn

from guardian_lib.dashboards import _figures as F
from guardian_lib.dashboards._data import RunData
from guardian_lib.dashboards._views import (
    decision_reasons,
    operations_kpis,
    policy_table,
    reason_frequency,
)
from guardian_lib.dashboards.glossary import (
    METRICS,
    format_interval,
    format_metric,
    metric_header,
    metric_label,
    policy_name,
)
from guardian_lib.dashboards.headline import main_policy
from guardian_lib.dashboards.screens._parts import (
    HOW_AUTOPILOT,
    HOW_BACKTEST,
    HOW_SCORE,
    html_pane,
    missing_pane,
    plot_pane,
    readable_decisions,
)
from guardian_lib.i18n import format_number, label

__all__ = [
    "HEADLINE_METRICS",
    "SLA_SHOWN",
    "decisions_html",
    "explainability_screen",
    "kpis_screen",
    "policy_wide",
    "sla_html",
]


def decisions_html(dec: pd.DataFrame, lang: str, testid: str = "") -> str:
    """The table of the latest decisions (:func:`decision_reasons`), readable in ``lang``:
    the explainability screen's and the printed report's."""
    cols = {
        "ts": "dt",
        "subject": "text",
        "action": "text",
        "confidence": "num2",
        "rationale": "text",
    }
    hd = {"ts": label("time", lang), "subject": label("customer", lang)}
    hd |= {c: label(c, lang) for c in ("action", "confidence", "rationale")}
    caption = label("decision_reasons", lang)
    return F.table_html(readable_decisions(dec, lang), cols, hd, lang, testid, caption)


def _metric_name(metric: str, lang: str) -> str:
    return metric_label(metric, lang) if metric in METRICS else metric.replace("_", " ")


def _metric_text(metric: str, value: Any, lang: str) -> str:
    if metric in METRICS:
        return format_metric(metric, value, lang)
    return format_metric("visits_avoided_per_month", value, lang)  # a plain number


def policy_wide(table: pd.DataFrame, policies: list[str], lang: str) -> pd.DataFrame:
    """One row per metric, one column per policy: ``mean (lo – hi)`` as text.

    Intervals are kept inside the metric's range (:func:`~.glossary.format_interval`).
    """
    rows: dict[str, dict[str, str]] = {}
    for r in table.itertuples(index=False):
        text = _metric_text(r.metric, r.mean, lang)
        if r.metric in METRICS:
            ci = format_interval(r.metric, r.ci_lo, r.ci_hi, lang)
            text += f" ({ci})" if ci else ""
        elif pd.notna(r.ci_lo) and pd.notna(r.ci_hi):
            lo, hi = _metric_text(r.metric, r.ci_lo, lang), _metric_text(r.metric, r.ci_hi, lang)
            text += f" ({lo} – {hi})"
        rows.setdefault(r.metric, {})[r.policy] = text
    out = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=policies).fillna("–")
    return out.assign(metric=[_metric_name(m, lang) for m in out.index]).reset_index(drop=True)


#: Headline metrics of the KPI screen, in order.
HEADLINE_METRICS = (
    "visits_avoided", "savings_brl", "cost_saving_vs_reactive_brl", "mttr_hours",
    "sla_availability", "false_action_rate",
)  # fmt: skip


def kpis_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """Operations figures, the autopilot's KPIs and the backtest's policy comparison."""
    ops = operations_kpis(data)
    cards = [(k, metric_label(k, lang), format_metric(k, v, lang), "") for k, v in ops.items()]
    parts: list[pn.viewable.Viewable] = [
        html_pane(f"<h3>{html.escape(label('operations', lang))}</h3>" + F.kpi_cards_html(cards))
    ]
    table = policy_table(data.backtest)
    parts.append(html_pane(f"<h3>{html.escape(label('autopilot_kpis', lang))}</h3>"))
    if table is None or not len(table):
        parts.append(missing_pane("kpis.json", HOW_BACKTEST, lang))
    else:
        policies = list(dict.fromkeys(table["policy"]))
        main = main_policy(data.backtest)
        rows = table.loc[table["policy"] == main].set_index("metric")
        items = []
        for m in HEADLINE_METRICS:
            if m in rows.index:
                r = rows.loc[m]
                note = format_interval(m, r["ci_lo"], r["ci_hi"], lang)
                items.append((m, metric_label(m, lang), _metric_text(m, r["mean"], lang), note))
        cap = html.escape(policy_name(main, lang))
        parts.append(html_pane(f'<div class="caption">{cap}</div>' + F.kpi_cards_html(items)))
        wide = policy_wide(table, policies, lang)
        cols = {"metric": "text"} | dict.fromkeys(policies, "text")
        hd = {"metric": label("metric", lang)} | {p: policy_name(p, lang) for p in policies}
        plots = [
            plot_pane(F.policy_figure(table, m, lang))
            for m in HEADLINE_METRICS
            if m in set(table["metric"])
        ]
        parts.append(pn.GridBox(*plots, ncols=2, sizing_mode="stretch_width"))
        by_region = data.backtest["policies"][main].get("sla_availability_by_region")
        if isinstance(by_region, dict) and by_region:
            means = {r: v.get("mean") if isinstance(v, dict) else v for r, v in by_region.items()}
            parts.append(plot_pane(F.sla_region_figure(means, lang)))
        parts.append(
            html_pane(
                F.table_html(wide, cols, hd, lang, "policy-table", label("policy_comparison", lang))
            )
        )
    parts.append(html_pane(sla_html(data, lang)))
    return pn.Column(*parts, sizing_mode="stretch_width", name=label("kpis_savings", lang))


#: SLA table columns and their kinds (``table_html``); labels from the glossary.
SLA_SHOWN = {
    "scope": "text", "customers": "num", "availability": "pct3", "outages": "num",
    "outage_hours": "num2", "customer_hours": "num2", "mttr_hours": "num2",
    "repeat_7d": "num", "repeat_30d": "num", "visits": "num", "no_fault_found_share": "pct",
}  # fmt: skip
_SLA_PONS = 30  # PON rows on the screen (the worst availability first; all in the Excel)


def sla_html(data: RunData, lang: str, title: bool = True) -> str:
    """SLA and network KPIs by region, OLT and PON (:func:`guardian_lib.sla.sla_kpis`)."""
    title = f"<h3>{html.escape(label('sla_network', lang))}</h3>" if title else ""
    if data.sla is None:
        return title + F.not_computed_html("telemetry / inventory", "guardian ingest RUN", lang)
    heads = {c: metric_header(c, lang) for c in SLA_SHOWN if c != "scope"}
    out = [title]
    for level in ("network", "region", "olt", "pon"):
        df = data.sla.loc[data.sla["level"] == level]
        cap = label(f"sla_level_{level}", lang)
        if level == "network":
            df = df.assign(scope=cap)
        if level == "pon" and len(df) > _SLA_PONS:
            df = df.sort_values(["availability", "scope"]).head(_SLA_PONS)
            cap += " — " + label("sla_worst", lang, n=format_number(_SLA_PONS, lang))
        hd = {"scope": label(f"sla_scope_{level}", lang)} | heads
        out.append(F.table_html(df, SLA_SHOWN, hd, lang, f"sla-{level}", cap))
    return "".join(out)


def explainability_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """Global SHAP importance and the reasons of recent decisions."""
    parts: list[pn.viewable.Viewable] = []
    if data.shap_global is not None:
        top = data.shap_global.head(20)
        parts.append(
            plot_pane(
                F.bar_figure(
                    top,
                    "mean_abs_shap",
                    "feature",
                    label("global_importance", lang),
                    lang,
                    True,
                    labels={
                        "mean_abs_shap": label("mean_abs_shap", lang),
                        "feature": label("feature", lang),
                    },
                )  # fmt: skip
            )
        )
    freq = reason_frequency(data)
    if freq is not None:
        ax = {"n": label("count", lang), "feature": label("feature", lang)}
        title = label("reason_frequency", lang)
        parts.append(plot_pane(F.bar_figure(freq, "n", "feature", title, lang, True, labels=ax)))
    if data.shap_global is None and freq is None:
        parts.append(missing_pane("SHAP (global importance / top_reasons)", HOW_SCORE, lang))
    dec = decision_reasons(data)
    if dec is None:
        parts.append(missing_pane("decisions", HOW_AUTOPILOT, lang))
    else:
        parts.append(html_pane(decisions_html(dec, lang)))
    return pn.Column(*parts, sizing_mode="stretch_width", name=label("explainability", lang))
