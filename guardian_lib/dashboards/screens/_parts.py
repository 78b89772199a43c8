"""What every screen is built of: panes, the "not computed yet" box and its hints."""

from __future__ import annotations

from typing import Any

import pandas as pd
import panel as pn

from guardian_lib.dashboards import _figures as F
from guardian_lib.dashboards.glossary import action_name, rationale_text

__all__ = [
    "HOW_AUTOPILOT",
    "HOW_BACKTEST",
    "HOW_SCORE",
    "html_pane",
    "missing_pane",
    "plot_pane",
    "readable_decisions",
]

#: The command that fills a screen left empty (shown in its "not computed" box).
HOW_SCORE = "guardian train … && guardian score --run RUN"
HOW_BACKTEST = "guardian backtest --run RUN --json RUN/kpis.json"
HOW_AUTOPILOT = "guardian decide --run RUN (history replayed), or a backtest's or operate's audit"


def html_pane(text: str, **kw: Any) -> pn.pane.HTML:
    """Markup with the dashboards' stylesheet, as wide as the page."""
    return pn.pane.HTML(text, stylesheets=[F.CSS], sizing_mode="stretch_width", **kw)


def plot_pane(fig) -> pn.pane.Plotly:
    """A Plotly figure as wide as the page."""
    return pn.pane.Plotly(fig, sizing_mode="stretch_width", config={"displaylogo": False})


def missing_pane(what: str, how: str, lang: str) -> pn.pane.HTML:
    """The box saying ``what`` is not computed and the command ``how`` that computes it."""
    return html_pane(F.not_computed_html(what, how, lang))


def readable_decisions(dec: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Decisions with the action's name and the rationale as a sentence in ``lang``."""
    out = dec.copy()
    if "action" in out:
        out["action"] = out["action"].map(lambda a: action_name(a, lang))
    if "rationale" in out:
        out["rationale"] = out["rationale"].map(lambda r: rationale_text(r, lang))
    return out
