"""The six screens as Panel layouts, for the live app and the static report.

``live=True`` wires widgets to Python callbacks (served by ``guardian dashboard``);
``live=False`` builds the same screen for a static HTML file: filters run in the browser
(``jscallback``) over the rows embedded in the page, and the customer dossier shows the
customers at the top of the risk queue.
"""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd
import panel as pn

from guardian_lib.dashboards import _figures as F
from guardian_lib.dashboards._data import RunData
from guardian_lib.dashboards._views import (
    customer_dossier,
    decision_reasons,
    operations_kpis,
    policy_table,
    reason_frequency,
    risk_queue,
)
from guardian_lib.dashboards.glossary import (
    METRICS,
    action_name,
    format_interval,
    format_metric,
    metric_header,
    metric_label,
    policy_name,
    rationale_text,
    value_name,
)
from guardian_lib.dashboards.headline import headline_html, main_policy
from guardian_lib.i18n import format_datetime, format_number, label

__all__ = [
    "SCREENS",
    "noc_overview",
    "risk_queue_screen",
    "dossier_screen",
    "kpis_screen",
    "explainability_screen",
    "optical_screen",
    "build_layout",
]

_HOW_SCORE = "guardian train … && guardian score --run RUN"
_HOW_BACKTEST = "guardian backtest --run RUN --json RUN/kpis.json"
_HOW_AUTOPILOT = "guardian decide --run RUN (history replayed), or a backtest's or operate's audit"
_STATIC_ROWS = 300  # risk-queue rows embedded in a static report
_DOSSIERS = 5  # customers with a dossier in a static report


def _html(text: str, **kw: Any) -> pn.pane.HTML:
    return pn.pane.HTML(text, stylesheets=[F.CSS], sizing_mode="stretch_width", **kw)


def _plot(fig) -> pn.pane.Plotly:
    return pn.pane.Plotly(fig, sizing_mode="stretch_width", config={"displaylogo": False})


def _missing(what: str, how: str, lang: str) -> pn.pane.HTML:
    return _html(F.not_computed_html(what, how, lang))


def _notes_html(data: RunData, lang: str) -> str:
    """What the run lacks and how the screens make do (an operator's partial export)."""
    items = "".join(f"<li>{html.escape(label(k, lang))}</li>" for k in data.notes)
    title = html.escape(label("data_notes", lang))
    return f'<div class="missing" data-testid="data-notes"><b>{title}</b><ul>{items}</ul></div>'


def noc_overview(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """Devices online / offline, incidents, heatmaps, map and failure rate."""
    st = data.status["status"].value_counts()
    cards = [
        (s, label(s, lang), format_number(int(st.get(s, 0)), lang), "") for s in F.STATUS_COLORS
    ]
    cards.insert(0, ("devices", label("devices", lang), format_number(len(data.status), lang), ""))
    last = label("last_reading", lang) + ": " + format_datetime(data.end, lang)
    inc = data.table("incidents")
    if inc is None:
        incidents: pn.viewable.Viewable = _missing("incidents", _HOW_AUTOPILOT, lang)
    elif not len(inc):
        incidents = _html(f"<p>{html.escape(label('active_incidents', lang))}: 0</p>")
    else:
        incidents = _plot(F.incidents_figure(inc, data.end, lang))
    return pn.Column(
        _html(F.kpi_cards_html(cards) + f'<div class="caption">{html.escape(last)}</div>'),
        *([_html(_notes_html(data, lang))] if data.notes else []),
        pn.Row(_plot(F.online_figure(data, lang)), _plot(F.failure_rate_figure(data, lang))),
        incidents,
        pn.Row(_plot(F.offline_heatmap(data, lang)), _plot(F.customer_map(data, lang))),
        _plot(F.offline_treemap(data, lang)),
        sizing_mode="stretch_width",
        name=label("noc_overview", lang),
    )


_RQ_COLS = {
    "customer_id": "text", "region": "text", "plan": "text", "segment": "text",
    "contacts_30d": "num", "risk_2h": "prob", "risk_6h": "prob", "risk_24h": "prob",
    "anomaly_score": "prob", "probable_cause": "text",
}  # fmt: skip


def _rq_headers(lang: str) -> dict[str, str]:
    keys = {"customer_id": "customer", "contacts_30d": "recurrence", "anomaly_score": "anomaly"}
    return {c: label(keys.get(c, c), lang) for c in _RQ_COLS}


def _rq_frame(df: pd.DataFrame, lang: str) -> pd.DataFrame:
    return df.assign(
        probable_cause=df["probable_cause"].map(lambda c: label(c, lang)),
        segment=df["segment"].map(lambda v: value_name(v, lang)),
    )


def _rq_html(df: pd.DataFrame, total: int, lang: str) -> str:
    cap = label(
        "rows_shown", lang, n=format_number(len(df), lang), total=format_number(total, lang)
    )
    body = F.table_html(_rq_frame(df, lang), _RQ_COLS, _rq_headers(lang), lang, "risk-queue")
    return f'<div class="caption" data-testid="risk-count">{html.escape(cap)}</div>{body}'


def risk_queue_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """Top customers by ``risk_2h`` with filters (region, plan, VIP, recurrence)."""
    full = risk_queue(data, limit=None)
    name = label("risk_queue", lang)
    if full is None:
        return pn.Column(_missing("ml_predictions", _HOW_SCORE, lang), name=name)
    all_ = label("all", lang)
    cust = data.table("customers")
    region = pn.widgets.Select(
        label=label("region", lang), options=[all_, *sorted(cust["region"].unique())]
    )
    plan = pn.widgets.Select(
        label=label("plan", lang), options=[all_, *sorted(cust["plan"].unique())]
    )
    vip = pn.widgets.Checkbox(label=label("vip_only", lang))
    rec = pn.widgets.Checkbox(label=label("recurrent_only", lang))
    when = label("scored_at", lang) + ": " + format_datetime(data.predictions["ts"].max(), lang)
    total = len(full)
    if not live and total > _STATIC_ROWS:
        when += " — " + label("static_filter_note", lang, n=format_number(_STATIC_ROWS, lang))
    if live:

        def render(r: str, p: str, v: bool, c: bool) -> str:
            df = risk_queue(
                data, region=None if r == all_ else r, plan=None if p == all_ else p,
                vip_only=v, recurrent_only=c, limit=50,
            )  # fmt: skip
            n = len(
                risk_queue(data, None if r == all_ else r, None if p == all_ else p, v, c, None)
            )
            return _rq_html(df, n, lang)

        table = _html(pn.bind(render, region, plan, vip, rec))
    else:
        top = full.head(_STATIC_ROWS)
        rows = F.table_rows_html(_rq_frame(top, lang), _RQ_COLS, lang)
        payload = [
            {
                "r": r.region,
                "p": r.plan,
                "v": str(r.segment).lower() == "vip",
                "c": int(r.contacts_30d),
                "h": h,
            }
            for r, h in zip(top.itertuples(), rows, strict=True)
        ]
        head = F.table_header_html(_RQ_COLS, _rq_headers(lang))
        table = _html(_rq_html(top.head(50), total, lang))
        code = f"""
const rows = {json.dumps(payload)};
const ALL = {json.dumps(all_)};
const kept = rows.filter(x => (region.value === ALL || x.r === region.value)
  && (plan.value === ALL || x.p === plan.value) && (!vip.value || x.v)
  && (!rec.value || x.c >= 2));
const shown = kept.slice(0, 50);
const fmt = new Intl.NumberFormat({json.dumps("pt-BR" if lang == "pt-BR" else "en-US")});
const cap = {json.dumps(label("rows_shown", lang))}.replace("{{n}}", fmt.format(shown.length))
  .replace("{{total}}", fmt.format(kept.length));
const page = '<div class="caption" data-testid="risk-count">' + cap + '</div>'
  + '<table class="ng" data-testid="risk-queue">' + {json.dumps(head)} + '<tbody>'
  + shown.map(x => x.h).join('') + '</tbody></table>';
// Panel's HTML model carries escaped markup (it decodes it before rendering).
target.text = page.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
  .replace(/"/g, '&quot;');
"""
        args = {"region": region, "plan": plan, "vip": vip, "rec": rec, "target": table}
        for w in (region, plan, vip, rec):
            w.jscallback(args=args, value=code)
    return pn.Column(
        _html(f'<div class="caption">{html.escape(when)}</div>'),
        pn.Row(region, plan, vip, rec),
        table,
        sizing_mode="stretch_width",
        name=label("risk_queue", lang),
    )


def _dossier_view(data: RunData, customer_id: str, lang: str) -> pn.viewable.Viewable:
    d = customer_dossier(data, customer_id)
    c = d["customer"]
    facts = [
        ("customer", label("customer", lang), str(c["customer_id"]), str(c.get("onu_id", ""))),
        ("region", label("region", lang), str(c.get("region", "")), str(c.get("city", ""))),
        ("plan", label("plan", lang), str(c.get("plan", "")), value_name(c.get("segment"), lang)),
    ]
    parts: list[pn.viewable.Viewable] = [_html(F.kpi_cards_html(facts))]
    parts.append(_plot(F.telemetry_figure(d["telemetry"], lang)))
    if len(d["events"]):
        parts.append(_plot(F.events_figure(d["events"], lang)))
    else:
        parts.append(_html(f"<p>{html.escape(label('events_timeline', lang))}: 0</p>"))
    heads = {c: label(c, lang) for c in ("feature", "value", "contribution", "model")}
    if data.predictions is None:
        parts.append(_missing("ml_predictions (SHAP)", _HOW_SCORE, lang))
    else:
        cols = {"feature": "text", "value": "num2", "contribution": "num2", "model": "text"}
        parts.append(
            _html(
                F.table_html(d["reasons"], cols, heads, lang, caption=label("shap_reasons", lang))
            )
        )
    if d["decisions"] is None:
        parts.append(_missing("decisions / actions", _HOW_AUTOPILOT, lang))
    else:
        cols = {"ts": "dt", "action": "text", "confidence": "num2", "rationale": "text"}
        hd = {c: label(c, lang) for c in ("action", "confidence", "rationale")}
        hd["ts"] = label("time", lang)
        dec = _readable_decisions(d["decisions"], lang)
        parts.append(_html(F.table_html(dec, cols, hd, lang, caption=label("decisions", lang))))
        acols = {
            "started_at": "dt",
            "action_type": "text",
            "target": "text",
            "status": "text",
            "result": "text",
        }
        ahd = {c: label(c, lang) for c in ("status", "result", "target")}
        ahd |= {"started_at": label("time", lang), "action_type": label("action", lang)}
        acts = d["actions"].assign(
            action_type=d["actions"]["action_type"].map(lambda a: action_name(a, lang)),
            status=d["actions"]["status"].map(lambda v: value_name(v, lang)),
            result=d["actions"]["result"].map(lambda r: rationale_text(r, lang)),
        )
        parts.append(_html(F.table_html(acts, acols, ahd, lang, caption=label("actions", lang))))
    so_cols = {
        "os_id": "text",
        "opened_at": "dt",
        "reason": "text",
        "status": "text",
        "outcome": "text",
    }
    orders = d["service_orders"].copy()
    for c in ("reason", "status", "outcome"):
        if c in orders:
            orders[c] = orders[c].map(lambda v: value_name(v, lang))
    parts.append(
        _html(
            F.table_html(
                orders, so_cols, {k: label(k, lang) for k in so_cols}, lang,
                caption=label("service_orders", lang),
            )
        )
    )  # fmt: skip
    return pn.Column(*parts, sizing_mode="stretch_width")


def _dossier_customers(data: RunData, n: int) -> list[str]:
    rq = risk_queue(data, limit=n)
    if rq is not None and len(rq):
        return list(rq["customer_id"])
    so = data.table("service_orders")
    ev = data.table("events")
    ranked: list[str] = []
    if ev is not None and len(ev):
        ranked += list(ev.loc[ev["type"] == "CUSTOMER_CALL", "entity_id"].value_counts().index)
    if so is not None and len(so):
        ranked += list(so["customer_id"].value_counts().index)
    ranked += list(data.table("customers")["customer_id"])
    return list(dict.fromkeys(ranked))[:n]


def dossier_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """One customer: recent telemetry, events, decisions with reasons, actions and orders."""
    name = label("customer_dossier", lang)
    if live:
        first = _dossier_customers(data, 20)
        rest = sorted(set(data.table("customers")["customer_id"]) - set(first))
        pick = pn.widgets.Select(label=label("choose_customer", lang), options=first + rest)
        return pn.Column(
            pick, pn.bind(_dossier_view, data, pick, lang), sizing_mode="stretch_width", name=name
        )
    tabs = [(cid, _dossier_view(data, cid, lang)) for cid in _dossier_customers(data, _DOSSIERS)]
    return pn.Column(pn.Tabs(*tabs, dynamic=False), sizing_mode="stretch_width", name=name)


def _decisions_html(dec: pd.DataFrame, lang: str, testid: str = "") -> str:
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
    return F.table_html(_readable_decisions(dec, lang), cols, hd, lang, testid, caption)


def _readable_decisions(dec: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Decisions with the action's name and the rationale as a sentence in ``lang``."""
    out = dec.copy()
    if "action" in out:
        out["action"] = out["action"].map(lambda a: action_name(a, lang))
    if "rationale" in out:
        out["rationale"] = out["rationale"].map(lambda r: rationale_text(r, lang))
    return out


def _metric_name(metric: str, lang: str) -> str:
    return metric_label(metric, lang) if metric in METRICS else metric.replace("_", " ")


def _metric_text(metric: str, value: Any, lang: str) -> str:
    if metric in METRICS:
        return format_metric(metric, value, lang)
    return format_metric("visits_avoided_per_month", value, lang)  # a plain number


def _policy_wide(table: pd.DataFrame, policies: list[str], lang: str) -> pd.DataFrame:
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
_HEADLINE = (
    "visits_avoided", "savings_brl", "cost_saving_vs_reactive_brl", "mttr_hours",
    "sla_availability", "false_action_rate",
)  # fmt: skip


def kpis_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """Operations figures, the autopilot's KPIs and the backtest's policy comparison."""
    ops = operations_kpis(data)
    cards = [(k, metric_label(k, lang), format_metric(k, v, lang), "") for k, v in ops.items()]
    parts: list[pn.viewable.Viewable] = [
        _html(f"<h3>{html.escape(label('operations', lang))}</h3>" + F.kpi_cards_html(cards))
    ]
    table = policy_table(data.backtest)
    parts.append(_html(f"<h3>{html.escape(label('autopilot_kpis', lang))}</h3>"))
    if table is None or not len(table):
        parts.append(_missing("kpis.json", _HOW_BACKTEST, lang))
    else:
        policies = list(dict.fromkeys(table["policy"]))
        main = main_policy(data.backtest)
        rows = table.loc[table["policy"] == main].set_index("metric")
        items = []
        for m in _HEADLINE:
            if m in rows.index:
                r = rows.loc[m]
                note = format_interval(m, r["ci_lo"], r["ci_hi"], lang)
                items.append((m, metric_label(m, lang), _metric_text(m, r["mean"], lang), note))
        cap = html.escape(policy_name(main, lang))
        parts.append(_html(f'<div class="caption">{cap}</div>' + F.kpi_cards_html(items)))
        wide = _policy_wide(table, policies, lang)
        cols = {"metric": "text"} | dict.fromkeys(policies, "text")
        hd = {"metric": label("metric", lang)} | {p: policy_name(p, lang) for p in policies}
        plots = [
            _plot(F.policy_figure(table, m, lang)) for m in _HEADLINE if m in set(table["metric"])
        ]
        parts.append(pn.GridBox(*plots, ncols=2, sizing_mode="stretch_width"))
        by_region = data.backtest["policies"][main].get("sla_availability_by_region")
        if isinstance(by_region, dict) and by_region:
            means = {r: v.get("mean") if isinstance(v, dict) else v for r, v in by_region.items()}
            parts.append(_plot(F.sla_region_figure(means, lang)))
        parts.append(
            _html(
                F.table_html(wide, cols, hd, lang, "policy-table", label("policy_comparison", lang))
            )
        )
    parts.append(_html(sla_html(data, lang)))
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
            _plot(
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
        parts.append(_plot(F.bar_figure(freq, "n", "feature", title, lang, True, labels=ax)))
    if data.shap_global is None and freq is None:
        parts.append(_missing("SHAP (global importance / top_reasons)", _HOW_SCORE, lang))
    dec = decision_reasons(data)
    if dec is None:
        parts.append(_missing("decisions", _HOW_AUTOPILOT, lang))
    else:
        parts.append(_html(_decisions_html(dec, lang)))
    return pn.Column(*parts, sizing_mode="stretch_width", name=label("explainability", lang))


def optical_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """RX / TX matrix per PON and device health (firmware, reboots, PPPoE / DHCP errors)."""
    parts: list[pn.viewable.Viewable] = [
        _plot(F.optical_matrix(data, "rx_dbm", lang)),
        _plot(F.optical_matrix(data, "tx_dbm", lang)),
    ]
    cust = data.table("customers")
    if cust is not None and "firmware" in cust:
        fw = cust.groupby(["cpe_model", "firmware"], as_index=False).size()
        parts.append(
            _plot(
                F.bar_figure(
                    fw,
                    "firmware",
                    "size",
                    label("firmware", lang),
                    lang,
                    color="cpe_model",
                    labels={"size": label("count", lang), "firmware": "firmware"},
                )
            )
        )
    ev = data.table("events")
    if ev is not None:
        reb = ev.loc[ev["type"].isin(["REBOOT", "BOOT"])].groupby("entity_id").size()
        reb = reb[reb >= 2].sort_values(ascending=False).head(20).rename("n").reset_index()
        reb["entity_id"] = reb["entity_id"].astype(str)
        hd = {"entity_id": "ONU / CPE", "n": label("count", lang)}
        if len(reb):
            cols = {"entity_id": "text", "n": "num"}
            parts.append(
                _html(
                    F.table_html(
                        reb, cols, hd, lang, "frequent-reboots", label("frequent_reboots", lang)
                    )
                )
            )
        else:
            parts.append(_html(f"<p>{html.escape(label('frequent_reboots', lang))}: 0</p>"))
        err = ev.loc[ev["type"].isin(["PPPOE_DOWN", "DHCP_FAIL"])]
        err = (
            err.assign(day=err["ts"].dt.floor("D")).groupby(["day", "type"], as_index=False).size()
        )
        ax = {
            "size": label("count", lang),
            "day": label("time", lang),
            "type": label("event_type", lang),
        }
        title = label("session_errors", lang)
        fig = F.bar_figure(err, "day", "size", title, lang, color="type", labels=ax)
        parts.append(_plot(F.localize_time_axis(fig, lang)))
    return pn.Column(*parts, sizing_mode="stretch_width", name=label("optical_matrix", lang))


#: Screen builders in display order.
SCREENS = (
    noc_overview,
    risk_queue_screen,
    dossier_screen,
    kpis_screen,
    explainability_screen,
    optical_screen,
)


def build_layout(data: RunData, lang: str, live: bool) -> pn.viewable.Viewable:
    """All screens as tabs under a header naming the run and its period."""
    period = f"{format_datetime(data.start, lang)} → {format_datetime(data.end, lang)}"
    header = _html(
        f"<h2 style='margin:4px 0'>{html.escape(label('app_title', lang))} — "
        f"{html.escape(data.name)}</h2>"
        f'<div class="caption">{html.escape(label("period", lang))}: {html.escape(period)}</div>'
    )
    tabs = pn.Tabs(
        *[s(data, lang, live) for s in SCREENS], dynamic=live, sizing_mode="stretch_width"
    )
    return pn.Column(header, _html(headline_html(data, lang)), tabs, sizing_mode="stretch_width")
