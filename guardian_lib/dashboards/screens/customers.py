"""Customer screens: the risk queue (filters live or in the browser) and the dossier."""

from __future__ import annotations

import html
import json

import pandas as pd
import panel as pn

from guardian_lib.dashboards import _figures as F
from guardian_lib.dashboards._data import RunData
from guardian_lib.dashboards._views import (
    customer_dossier,
    risk_queue,
)
from guardian_lib.dashboards.glossary import (
    action_name,
    rationale_text,
    value_name,
)
from guardian_lib.dashboards.screens._parts import (
    HOW_AUTOPILOT,
    HOW_SCORE,
    html_pane,
    missing_pane,
    plot_pane,
    readable_decisions,
)
from guardian_lib.i18n import format_datetime, format_number, label

__all__ = ["risk_queue_screen", "dossier_screen", "risk_queue_html"]

_STATIC_ROWS = 300  # risk-queue rows embedded in a static report
_DOSSIERS = 5  # customers with a dossier in a static report


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


def risk_queue_html(df: pd.DataFrame, total: int, lang: str) -> str:
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
        return pn.Column(missing_pane("ml_predictions", HOW_SCORE, lang), name=name)
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
            return risk_queue_html(df, n, lang)

        table = html_pane(pn.bind(render, region, plan, vip, rec))
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
        table = html_pane(risk_queue_html(top.head(50), total, lang))
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
        html_pane(f'<div class="caption">{html.escape(when)}</div>'),
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
    parts: list[pn.viewable.Viewable] = [html_pane(F.kpi_cards_html(facts))]
    parts.append(plot_pane(F.telemetry_figure(d["telemetry"], lang)))
    if len(d["events"]):
        parts.append(plot_pane(F.events_figure(d["events"], lang)))
    else:
        parts.append(html_pane(f"<p>{html.escape(label('events_timeline', lang))}: 0</p>"))
    heads = {c: label(c, lang) for c in ("feature", "value", "contribution", "model")}
    if data.predictions is None:
        parts.append(missing_pane("ml_predictions (SHAP)", HOW_SCORE, lang))
    else:
        cols = {"feature": "text", "value": "num2", "contribution": "num2", "model": "text"}
        parts.append(
            html_pane(
                F.table_html(d["reasons"], cols, heads, lang, caption=label("shap_reasons", lang))
            )
        )
    if d["decisions"] is None:
        parts.append(missing_pane("decisions / actions", HOW_AUTOPILOT, lang))
    else:
        cols = {"ts": "dt", "action": "text", "confidence": "num2", "rationale": "text"}
        hd = {c: label(c, lang) for c in ("action", "confidence", "rationale")}
        hd["ts"] = label("time", lang)
        dec = readable_decisions(d["decisions"], lang)
        parts.append(html_pane(F.table_html(dec, cols, hd, lang, caption=label("decisions", lang))))
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
        parts.append(
            html_pane(F.table_html(acts, acols, ahd, lang, caption=label("actions", lang)))
        )
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
        html_pane(
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
