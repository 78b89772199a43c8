"""The six screens as Panel layouts, for the live app and the static report.

One module per domain: :mod:`.network` (NOC overview, optical matrix), :mod:`.customers`
(risk queue, dossier) and :mod:`.results` (KPIs, SLA, explainability); :mod:`._parts`
holds what they share.

``live=True`` wires widgets to Python callbacks (served by ``guardian dashboard``);
``live=False`` builds the same screen for a static HTML file: filters run in the browser
(``jscallback``) over the rows embedded in the page, and the customer dossier shows the
customers at the top of the risk queue.
"""

from __future__ import annotations

import html

import panel as pn

from guardian_lib.dashboards._data import RunData
from guardian_lib.dashboards._figures import dashboard_template
from guardian_lib.dashboards.headline import headline_html
from guardian_lib.dashboards.screens._parts import html_pane
from guardian_lib.dashboards.screens.customers import dossier_screen, risk_queue_screen
from guardian_lib.dashboards.screens.network import noc_overview, optical_screen
from guardian_lib.dashboards.screens.results import explainability_screen, kpis_screen
from guardian_lib.i18n import format_datetime, label

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
    header = html_pane(
        f"<h2 style='margin:4px 0'>{html.escape(label('app_title', lang))} — "
        f"{html.escape(data.name)}</h2>"
        f'<div class="caption">{html.escape(label("period", lang))}: {html.escape(period)}</div>'
    )
    with dashboard_template():
        screens = [s(data, lang, live) for s in SCREENS]
    tabs = pn.Tabs(*screens, dynamic=live, sizing_mode="stretch_width")
    return pn.Column(
        header, html_pane(headline_html(data, lang)), tabs, sizing_mode="stretch_width"
    )
