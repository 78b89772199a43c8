"""Plotly figures and HTML fragments of the dashboard screens (pure: data in, figure out).

Maps draw customers on a plain background (no tile server: reports open offline).
"""

from __future__ import annotations

import contextlib
import html
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import plotly.io as pio

from guardian_lib.dashboards._data import FAILURE_EVENTS, RunData
from guardian_lib.dashboards._inventory import DEGRADED_RX_DBM
from guardian_lib.dashboards.glossary import cause_name, severity_name
from guardian_lib.i18n import (
    LABELS,
    format_datetime,
    format_number,
    format_pct,
    label,
    normalize_lang,
)

__all__ = [
    "STATUS_COLORS",
    "CSS",
    "MAX_SERIES_POINTS",
    "dashboard_template",
    "downsample_min",
    "kpi_cards_html",
    "table_html",
    "not_computed_html",
    "localize_time_axis",
    "online_figure",
    "incidents_figure",
    "offline_heatmap",
    "offline_treemap",
    "customer_map",
    "failure_rate_figure",
    "telemetry_figure",
    "events_figure",
    "bar_figure",
    "optical_matrix",
    "policy_figure",
    "sla_region_figure",
]

STATUS_COLORS = {
    "online": "#2e9e44",
    "degraded": "#f0a202",
    "offline": "#d7263d",
    "no_data": "#9aa0a6",
}
_TEMPLATE = "plotly_white"
LABELS_EN_KEYS = frozenset(LABELS["en"])
# RX colours on [-30, -8] dBm: red below -27 (critical), amber -27…-25, green above -25.
_RX_SCALE = [
    [0.0, "#b2182b"], [0.136, "#d6604d"], [0.137, "#f4a582"], [0.227, "#fddbc7"],
    [0.228, "#d9f0d3"], [0.45, "#7fbf7b"], [1.0, "#1b7837"],
]  # fmt: skip
_H = 360

#: Stylesheet of the HTML fragments (Panel renders panes in shadow DOM: pass it to each).
CSS = """
:host { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; }
.kpi { border: 1px solid #dde1e6; border-radius: 8px; padding: 10px 14px; min-width: 150px;
       background: #fafbfc; }
.kpi-label { font-size: 12px; color: #5f6368; }
.kpi-value { font-size: 22px; font-weight: 600; color: #202124; }
.kpi-ci { font-size: 11px; color: #80868b; }
table.ng { border-collapse: collapse; font-size: 13px; width: 100%; }
table.ng th { text-align: left; background: #f1f3f4; padding: 4px 8px; position: sticky; top: 0; }
table.ng td { padding: 3px 8px; border-top: 1px solid #eceff1; vertical-align: top; }
table.ng td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.ng tr.hot td { background: #fde8e8; }
.caption { font-size: 12px; color: #5f6368; margin: 4px 0; }
.missing { border: 1px dashed #b0b6bd; border-radius: 8px; padding: 14px; color: #5f6368;
           background: #f8f9fa; }
.missing b { color: #3c4043; }
pre.json { font-size: 11px; white-space: pre-wrap; margin: 0; }
"""


def _fmt_cell(v: Any, kind: str, lang: str) -> str:
    if kind == "pct":
        return format_pct(v, lang)
    if kind == "pct3":
        return format_pct(v, lang, 3)
    if kind == "num":
        return format_number(v, lang)
    if kind == "num2":
        return format_number(v, lang, 2)
    if kind == "prob":
        return format_number(v, lang, 3)
    if kind == "dt":
        return format_datetime(v, lang)
    if kind == "json":
        try:
            text = json.dumps(json.loads(v), ensure_ascii=False, indent=1, sort_keys=True)
        except (TypeError, ValueError):
            text = "" if v is None else str(v)
        return f'<pre class="json">{html.escape(text)}</pre>'
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return html.escape(str(v))


def table_rows_html(df: pd.DataFrame, columns: dict[str, str], lang: str) -> list[str]:
    """One ``<tr>`` per row.

    ``columns`` maps each column to its kind: text, num, num2, prob, pct, dt or json.
    """
    out = []
    numeric = {"num", "num2", "prob", "pct", "pct3"}
    for rec in df.to_dict("records"):
        cells = "".join(
            f'<td class="num">{_fmt_cell(rec.get(c), k, lang)}</td>'
            if k in numeric
            else f"<td>{_fmt_cell(rec.get(c), k, lang)}</td>"
            for c, k in columns.items()
        )
        out.append(f"<tr>{cells}</tr>")
    return out


def table_header_html(columns: dict[str, str], headers: dict[str, str]) -> str:
    """The ``<thead>`` of a table (``headers`` maps column → visible header)."""
    return (
        "<thead><tr>"
        + "".join(f"<th>{html.escape(headers[c])}</th>" for c in columns)
        + ("</tr></thead>")
    )


def table_html(
    df: pd.DataFrame,
    columns: dict[str, str],
    headers: dict[str, str],
    lang: str,
    testid: str = "",
    caption: str = "",
) -> str:
    """An HTML table of ``df`` (see :func:`table_rows_html` for ``columns``)."""
    if df is None or not len(df):
        cap = html.escape(caption + ": " if caption else "")
        return f'<div class="caption">{cap}{html.escape(label("none", lang))}</div>'
    body = "".join(table_rows_html(df, columns, lang))
    cap = f'<div class="caption">{html.escape(caption)}</div>' if caption else ""
    tid = f' data-testid="{testid}"' if testid else ""
    head = table_header_html(columns, headers)
    return f'{cap}<table class="ng"{tid}>{head}<tbody>{body}</tbody></table>'


def kpi_cards_html(items: list[tuple[str, str, str, str]]) -> str:
    """KPI cards: ``(key, label, value, note)`` each; ``data-kpi=key`` marks the card."""
    cards = []
    for key, text, value, note in items:
        ci = f'<div class="kpi-ci">{html.escape(note)}</div>' if note else ""
        cards.append(
            f'<div class="kpi" data-kpi="{html.escape(key)}"><div class="kpi-label">'
            f'{html.escape(text)}</div><div class="kpi-value">{html.escape(value)}</div>{ci}</div>'
        )
    return '<div class="kpis">' + "".join(cards) + "</div>"


def not_computed_html(what: str, how: str, lang: str) -> str:
    """The panel shown instead of a figure whose input the run does not have yet."""
    title = html.escape(label("not_computed", lang))
    hint = html.escape(label("not_computed_hint", lang, what=what, how=how))
    return f'<div class="missing" data-testid="not-computed"><b>{title}</b><br>{hint}</div>'


@contextlib.contextmanager
def dashboard_template() -> Iterator[None]:
    """Figures made inside get the dashboards' Plotly template as the default one.

    The same figures, faster: Plotly applies its default template without validating it
    again, where a template named in each figure is validated each time (about 40 % of
    the time of building every screen). The previous default is restored on exit.
    """
    previous = pio.templates.default
    pio.templates.default = _TEMPLATE
    try:
        yield
    finally:
        pio.templates.default = previous


def _layout(fig: go.Figure, title: str, height: int = _H) -> go.Figure:
    # Inside dashboard_template() the figure has the template already (the default).
    tpl = {} if pio.templates.default == _TEMPLATE else {"template": _TEMPLATE}
    fig.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=50, b=40), **tpl)
    return fig


def localize_time_axis(fig: go.Figure, lang: str) -> go.Figure:
    """Time axes as dd/mm/aaaa in pt-BR (Plotly's default ticks are English)."""
    if normalize_lang(lang) == "pt-BR":
        fig.update_xaxes(tickformat="%H:%M<br>%d/%m/%Y")
    return fig


#: Points of a time series that a screen-wide chart can show (about one per pixel). [-]
MAX_SERIES_POINTS = 1500


def downsample_min(s: pd.DataFrame, x: str, y: str, n: int = MAX_SERIES_POINTS) -> pd.DataFrame:
    """At most about ``n`` rows of ``s`` (sorted by ``x``): each bucket keeps its lowest ``y``.

    The minimum, not the mean, so a dip (an outage) stays visible after down-sampling.
    """
    if len(s) <= n:
        return s
    s = s.sort_values(x).reset_index(drop=True)
    bucket = s.index // int(np.ceil(len(s) / n))
    return s.loc[s.groupby(bucket)[y].idxmin()].reset_index(drop=True)


def online_figure(data: RunData, lang: str) -> go.Figure:
    """ONUs online per telemetry tick (down-sampled to :data:`MAX_SERIES_POINTS`, keeping dips)."""
    s = downsample_min(data.online_series, "ts", "n_online")
    fig = go.Figure(
        go.Scatter(x=s["ts"], y=s["n_online"], mode="lines", name=label("online", lang))
    )
    fig.update_yaxes(title=label("onus", lang), rangemode="tozero")
    return localize_time_axis(_layout(fig, label("online_over_time", lang)), lang)


def incidents_figure(incidents: pd.DataFrame, end: pd.Timestamp | None, lang: str) -> go.Figure:
    """Massive incidents on a timeline (latest state of each incident; open ones run to ``end``)."""
    inc = incidents.sort_values("recorded_at") if "recorded_at" in incidents else incidents
    inc = inc.groupby("incident_id", as_index=False).last()
    inc["start_at"] = pd.to_datetime(inc["start_at"], utc=True)
    inc["end_at"] = pd.to_datetime(inc["end_at"], utc=True).fillna(end or inc["start_at"].max())
    inc["scope"] = inc["scope_type"].astype(str) + ":" + inc["scope_key"].astype(str)
    inc["cause"] = inc["cause"].map(lambda c: cause_name(c, lang))
    if "severity" in inc:
        inc["severity"] = inc["severity"].map(lambda s: severity_name(s, lang))
    fig = px.timeline(
        inc, x_start="start_at", x_end="end_at", y="scope", color="cause",
        hover_data=["incident_id", "severity", "affected_customers"],
        labels={"cause": label("probable_cause", lang), "scope": label("region", lang)},
    )  # fmt: skip
    height = max(_H, 40 + 22 * len(inc))
    return localize_time_axis(_layout(fig, label("active_incidents", lang), height=height), lang)


def _offline_by_pon(data: RunData) -> pd.DataFrame:
    onus = data.table("onus")
    df = onus.merge(data.offline_24h, on="onu_id", how="left").fillna({"offline_share": 0.0})
    return df


def offline_heatmap(data: RunData, lang: str) -> go.Figure:
    """Offline share over the last 24 h: OLTs in rows, PON ports (slot/port) in columns."""
    df = _offline_by_pon(data).merge(
        data.table("pons")[["pon_id", "slot", "port"]], on="pon_id", how="left"
    )
    # A PON whose inventory has no slot/port (an operator's own export) is shown by its id.
    known = df["slot"].notna() & df["port"].notna()
    slot_port = (
        df["slot"].astype("Int64").astype(str) + "/" + df["port"].astype("Int64").astype(str)
    )
    df["pon"] = slot_port.where(known, df["pon_id"].astype(str))
    df["olt_id"] = df["olt_id"].fillna("–")
    g = df.groupby(["olt_id", "pon"], as_index=False)["offline_share"].mean()
    m = g.pivot(index="olt_id", columns="pon", values="offline_share")

    def pon_order(p: str) -> tuple:
        parts = p.split("/")
        return (0, *map(int, parts)) if all(x.isdigit() for x in parts) else (1, p)

    m = m[sorted(m.columns, key=pon_order)]
    fig = go.Figure(
        go.Heatmap(
            z=m.to_numpy(), x=list(m.columns), y=list(m.index), zmin=0, zmax=1,
            colorscale="Reds", colorbar=dict(title=label("offline_share", lang)),
        )
    )  # fmt: skip
    fig.update_xaxes(title=label("pon", lang), type="category")
    fig.update_yaxes(title=label("olt", lang), type="category")
    return _layout(fig, label("offline_heatmap", lang), height=max(260, 120 + 40 * len(m)))


def offline_treemap(data: RunData, lang: str) -> go.Figure:
    """Region → OLT → PON, sized by ONUs and coloured by offline share."""
    df = _offline_by_pon(data).merge(data.table("olts")[["olt_id", "region"]], on="olt_id")
    g = df.groupby(["region", "olt_id", "pon_id"], as_index=False).agg(
        onus=("onu_id", "size"), offline_share=("offline_share", "mean")
    )
    fig = px.treemap(
        g, path=["region", "olt_id", "pon_id"], values="onus",
        color="offline_share", color_continuous_scale="Reds", range_color=(0, 1),
        labels={"offline_share": label("offline_share", lang), "onus": label("onus", lang)},
    )  # fmt: skip
    return _layout(fig, label("offline_tree", lang), height=420)


def customer_map(data: RunData, lang: str) -> go.Figure:
    """Customers on a plain lat/lon background, coloured by their ONU's status."""
    cust = data.table("customers")[["customer_id", "onu_id", "lat", "lon", "region"]]
    cust = cust.loc[cust["lat"].notna() & cust["lon"].notna()]
    if cust.empty:  # an operator's inventory without coordinates: say so, draw nothing
        fig = go.Figure()
        fig.add_annotation(
            text=label("note_no_coordinates", lang), showarrow=False, x=0.5, y=0.5,
            xref="paper", yref="paper",
        )  # fmt: skip
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, label("customer_map", lang), height=_H)
    df = cust.merge(data.status[["onu_id", "status"]], on="onu_id", how="left")
    df["status"] = df["status"].fillna("no_data")
    df["status_label"] = df["status"].map(lambda s: label(s, lang))
    cmap = {label(k, lang): v for k, v in STATUS_COLORS.items()}
    fig = px.scatter(
        df, x="lon", y="lat", color="status_label", color_discrete_map=cmap,
        hover_data=["customer_id", "onu_id", "region"], render_mode="svg",
    )  # fmt: skip
    fig.update_traces(marker=dict(size=5))
    fig.update_yaxes(title=label("latitude", lang), scaleanchor="x", scaleratio=1)
    fig.update_xaxes(title=label("longitude", lang))
    fig.update_layout(legend_title_text=label("status", lang))
    return _layout(fig, label("customer_map", lang), height=480)


def failure_rate_figure(data: RunData, lang: str) -> go.Figure:
    """Failure events per hour over the last 24 h of the run, stacked by type."""
    ev = data.table("events")
    end = data.end
    if ev is None or end is None:
        sub = pd.DataFrame(columns=["hour", "type", "n"])
    else:
        sub = ev.loc[ev["type"].isin(FAILURE_EVENTS) & (ev["ts"] > end - pd.Timedelta(hours=24))]
        sub = sub.assign(hour=sub["ts"].dt.floor("h")).groupby(["hour", "type"], as_index=False)
        sub = sub.size().rename(columns={"size": "n"})
    if not len(sub):
        fig = go.Figure()
        fig.add_annotation(text=f"{label('events_per_hour', lang)}: 0", showarrow=False)
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return _layout(fig, label("failure_rate_24h", lang))
    fig = px.bar(sub, x="hour", y="n", color="type", labels={"n": label("events_per_hour", lang)})
    fig.update_xaxes(title=label("time", lang))
    return localize_time_axis(_layout(fig, label("failure_rate_24h", lang)), lang)


def telemetry_figure(tel: pd.DataFrame, lang: str) -> go.Figure:
    """RX / TX and latency of one ONU (two stacked panels)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for col in ("rx_dbm", "tx_dbm"):
        fig.add_trace(
            go.Scatter(x=tel["ts"], y=tel[col], mode="lines", name=label(col, lang)), row=1, col=1
        )
    fig.add_trace(
        go.Scatter(x=tel["ts"], y=tel["latency_ms"], mode="lines", name=label("latency_ms", lang)),
        row=2,
        col=1,
    )
    fig.add_hline(y=DEGRADED_RX_DBM, line_dash="dot", line_color="#d7263d", row=1, col=1)
    return localize_time_axis(_layout(fig, label("telemetry_recent", lang), height=420), lang)


def events_figure(events: pd.DataFrame, lang: str) -> go.Figure:
    """Events of one customer as points on a timeline, one row per type."""
    df = events if len(events) else pd.DataFrame(columns=["ts", "type", "severity"])
    fig = px.scatter(df, x="ts", y="type", color="severity", render_mode="svg")
    fig.update_traces(marker=dict(size=10, symbol="diamond"))
    fig.update_yaxes(title=label("event_type", lang), type="category")
    fig.update_xaxes(title=label("time", lang))
    return localize_time_axis(_layout(fig, label("events_timeline", lang), height=300), lang)


def bar_figure(
    df: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    lang: str,
    horizontal: bool = False,
    color: str | None = None,
    labels: dict[str, str] | None = None,
) -> go.Figure:
    """A plain bar chart (horizontal: ``y`` holds the categories)."""
    if not len(df):
        return _layout(go.Figure(), title)
    fig = px.bar(
        df, x=x, y=y, orientation="h" if horizontal else "v", color=color, labels=labels or {}
    )
    if horizontal:
        fig.update_yaxes(autorange="reversed", type="category")
    return _layout(fig, title, height=max(_H, 60 + 24 * len(df)) if horizontal else _H)


def optical_matrix(data: RunData, column: str, lang: str, max_pons: int = 80) -> go.Figure:
    """Last reading of ``column`` (``rx_dbm`` or ``tx_dbm``) per PON × ONU index.

    Degraded ONUs (RX below :data:`DEGRADED_RX_DBM`) are circled. At most ``max_pons``
    PONs are drawn, those with the weakest ONU first.
    """
    st = data.status.dropna(subset=["pon_id"]) if "pon_id" in data.status else data.status
    worst = st.groupby("pon_id")["rx_dbm"].min().sort_values(na_position="first")
    pons = sorted(worst.index[:max_pons])
    st = st.loc[st["pon_id"].isin(pons)]
    m = st.pivot_table(index="pon_id", columns="onu_index", values=column, aggfunc="last")
    m = m.reindex(index=pons)
    if column == "rx_dbm":
        zmin, zmax, scale = -30.0, -8.0, _RX_SCALE
    else:
        zmin, zmax, scale = float(np.nanmin(m.to_numpy(), initial=0.0)), None, "Viridis"
        zmin = min(zmin, 0.5)
        zmax = max(float(np.nanmax(m.to_numpy(), initial=5.0)), zmin + 1)
    fig = go.Figure(
        go.Heatmap(
            z=m.to_numpy(), x=[str(c) for c in m.columns], y=list(m.index), zmin=zmin,
            zmax=zmax, colorscale=scale, colorbar=dict(title=label(column, lang)),
            hovertemplate="%{y} #%{x}: %{z:.2f} dBm<extra></extra>",
        )
    )  # fmt: skip
    bad = st.loc[st["status"] == "degraded"]
    if len(bad):
        fig.add_trace(
            go.Scatter(
                x=bad["onu_index"].astype(str), y=bad["pon_id"], mode="markers",
                marker=dict(symbol="circle-open", size=12, color="black", line=dict(width=2)),
                name=label("degraded_onus", lang), text=bad["onu_id"],
            )
        )  # fmt: skip
    fig.update_xaxes(title=label("onu_index", lang), type="category")
    fig.update_yaxes(title=label("pon", lang), type="category")
    title = label("optical_matrix_title", lang, threshold=format_number(DEGRADED_RX_DBM, lang))
    if column != "rx_dbm":
        title = label(column, lang)
    return _layout(fig, title, height=max(300, 100 + 16 * len(m)))


def policy_figure(table: pd.DataFrame, metric: str, lang: str) -> go.Figure:
    """One metric of every policy with its 95% confidence interval (kept in the metric's range)."""
    from guardian_lib.dashboards.glossary import METRICS, clip_interval, metric_label, policy_name

    df = table.loc[table["metric"] == metric].copy()
    if metric in METRICS:
        bounds = [
            clip_interval(metric, lo, hi) for lo, hi in zip(df["ci_lo"], df["ci_hi"], strict=True)
        ]
        df["ci_lo"] = [b[0] for b in bounds]
        df["ci_hi"] = [b[1] for b in bounds]
    err_hi = (df["ci_hi"] - df["mean"]).fillna(0).clip(lower=0)
    err_lo = (df["mean"] - df["ci_lo"]).fillna(0).clip(lower=0)
    fig = go.Figure(
        go.Bar(
            x=[policy_name(p, lang) for p in df["policy"]], y=df["mean"],
            error_y=dict(type="data", array=err_hi, arrayminus=err_lo, visible=True),
        )
    )  # fmt: skip
    title = metric_label(metric, lang) if metric in METRICS else metric.replace("_", " ")
    fig.update_xaxes(title=label("policy", lang))
    return _layout(fig, title, height=300)


def sla_region_figure(by_region: dict[str, float], lang: str) -> go.Figure:
    """SLA availability per region (a share in [0, 1])."""
    df = pd.DataFrame({"region": list(by_region), "sla": list(by_region.values())})
    fig = px.bar(
        df, x="region", y="sla", range_y=(max(0.0, df["sla"].min() - 0.01), 1.0),
        labels={"region": label("region", lang), "sla": label("sla_availability", lang)},
    )  # fmt: skip
    fig.update_yaxes(tickformat=".2%")
    return _layout(fig, label("sla_by_region", lang), height=300)
