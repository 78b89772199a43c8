"""Network screens: the NOC overview and the optical / device-health matrix."""

from __future__ import annotations

import html

import panel as pn

from guardian_lib.dashboards import _figures as F
from guardian_lib.dashboards._data import RunData
from guardian_lib.dashboards.screens._parts import (
    HOW_AUTOPILOT,
    html_pane,
    missing_pane,
    plot_pane,
)
from guardian_lib.i18n import format_datetime, format_number, label

__all__ = ["noc_overview", "optical_screen", "notes_html"]


def notes_html(data: RunData, lang: str) -> str:
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
        incidents: pn.viewable.Viewable = missing_pane("incidents", HOW_AUTOPILOT, lang)
    elif not len(inc):
        incidents = html_pane(f"<p>{html.escape(label('active_incidents', lang))}: 0</p>")
    else:
        incidents = plot_pane(F.incidents_figure(inc, data.end, lang))
    return pn.Column(
        html_pane(F.kpi_cards_html(cards) + f'<div class="caption">{html.escape(last)}</div>'),
        *([html_pane(notes_html(data, lang))] if data.notes else []),
        pn.Row(
            plot_pane(F.online_figure(data, lang)), plot_pane(F.failure_rate_figure(data, lang))
        ),
        incidents,
        pn.Row(plot_pane(F.offline_heatmap(data, lang)), plot_pane(F.customer_map(data, lang))),
        plot_pane(F.offline_treemap(data, lang)),
        sizing_mode="stretch_width",
        name=label("noc_overview", lang),
    )


def optical_screen(data: RunData, lang: str, live: bool = True) -> pn.viewable.Viewable:
    """RX / TX matrix per PON and device health (firmware, reboots, PPPoE / DHCP errors)."""
    parts: list[pn.viewable.Viewable] = [
        plot_pane(F.optical_matrix(data, "rx_dbm", lang)),
        plot_pane(F.optical_matrix(data, "tx_dbm", lang)),
    ]
    cust = data.table("customers")
    if cust is not None and "firmware" in cust:
        fw = cust.groupby(["cpe_model", "firmware"], as_index=False).size()
        parts.append(
            plot_pane(
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
                html_pane(
                    F.table_html(
                        reb, cols, hd, lang, "frequent-reboots", label("frequent_reboots", lang)
                    )
                )
            )
        else:
            parts.append(html_pane(f"<p>{html.escape(label('frequent_reboots', lang))}: 0</p>"))
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
        parts.append(plot_pane(F.localize_time_axis(fig, lang)))
    return pn.Column(*parts, sizing_mode="stretch_width", name=label("optical_matrix", lang))
