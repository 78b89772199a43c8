"""The live dashboard: every screen served by a Panel (Bokeh) server on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import panel as pn

from guardian_lib.dashboards._data import load_run_data
from guardian_lib.dashboards._plotly_guard import plotly_guard_uri
from guardian_lib.dashboards.screens import build_layout
from guardian_lib.i18n import label, normalize_lang

__all__ = ["build_app", "serve"]


def build_app(
    run: Path | str,
    lang: str = "en",
    kpis: Path | str | None = None,
    audit: Path | str | None = None,
) -> pn.viewable.Viewable:
    """The interactive layout of ``run`` (what ``guardian dashboard`` serves).

    Parameters
    ----------
    run : path
        Run folder with an ingested warehouse.
    lang : {'en', 'pt-BR'}, default 'en'
    kpis : path, optional
        The backtest's ``kpis.json`` (default: looked for in the run folder).
    audit : path, optional
        A DuckDB file with the audit tables (default: the run's own, or RUN/audit.duckdb).
    """
    data = load_run_data(run, kpis_path=kpis, audit_path=audit)
    return build_layout(data, normalize_lang(lang), live=True)


def serve(
    run: Path | str,
    port: int = 5006,
    lang: str = "en",
    address: str = "127.0.0.1",
    kpis: Path | str | None = None,
    audit: Path | str | None = None,
    show: bool = False,
    threaded: bool = False,
) -> Any:
    """Serve the dashboard of ``run`` at ``http://<address>:<port>/``.

    The run is loaded once; each browser session gets its own widgets. JavaScript and
    stylesheets come from the server itself, so the page needs no internet access.

    Parameters
    ----------
    run : path
    port : int, default 5006
        TCP port (0: any free port). [-]
    lang : {'en', 'pt-BR'}, default 'en'
    address : str, default '127.0.0.1'
    kpis, audit : path, optional
        See :func:`build_app`.
    show : bool, default False
        Open a browser tab.
    threaded : bool, default False
        Serve from a background thread and return the server (tests); otherwise block.
    """
    lang = normalize_lang(lang)
    data = load_run_data(run, kpis_path=kpis, audit_path=audit)
    pn.extension("plotly")
    # One layout is built before the server listens: a run the screens cannot draw fails
    # here, on the command line, rather than in the first browser. It also sets up
    # Panel's (1.9) per-class stylesheet state outside any session: served from a thread
    # of a process that had drawn nothing, the first session asked cdn.holoviz.org for
    # some stylesheets (loading, list panel, select, theme), unreachable from an offline
    # NOC, whenever a screen was opened.
    build_layout(data, lang, live=True)

    def session() -> pn.viewable.Viewable:
        # This session's page loads the Plotly guard after plotly.min.js (a race in
        # Panel's Plotly view, see guardian_lib.dashboards._plotly_guard); set per
        # session, it leaves the process's other pages (a static report) as they are.
        pn.config.js_files = {**pn.config.js_files, "guardian_plotly_guard": plotly_guard_uri()}
        return build_layout(data, lang, live=True)

    return pn.serve(
        {"/": session},
        port=port,
        address=address,
        show=show,
        threaded=threaded,
        title=f"{label('app_title', lang)} — {data.name}",
        websocket_origin=[f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"],
        start=True,
    )
