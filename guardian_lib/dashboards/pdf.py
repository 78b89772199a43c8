"""The report as a PDF, printed by Debian's headless chromium through Playwright.

:func:`print_html` lays the report out for paper (A4 landscape): the headline on the
first page, then one section per screen — KPIs and savings, SLA and network KPIs, NOC
overview, risk queue, decisions — each starting on a new page. Figures are static
Plotly charts of a fixed width with one copy of plotly.js in the page. :func:`write_pdf`
prints that page with a header (title, run, period) and page numbers in the footer; the
browser runs with the network blocked (only ``file:`` and ``data:`` addresses load).
"""

from __future__ import annotations

import asyncio
import html
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import plotly.io as pio
from plotly.offline import get_plotlyjs

from guardian_lib.dashboards import _figures as F
from guardian_lib.dashboards._data import RunData, load_run_data
from guardian_lib.dashboards._views import (
    decision_reasons,
    operations_kpis,
    policy_table,
    risk_queue,
)
from guardian_lib.dashboards.glossary import (
    format_interval,
    format_metric,
    metric_label,
    policy_name,
)
from guardian_lib.dashboards.headline import headline_html, main_policy
from guardian_lib.dashboards.screens.customers import risk_queue_html
from guardian_lib.dashboards.screens.results import (
    HEADLINE_METRICS,
    decisions_html,
    policy_wide,
    sla_html,
)
from guardian_lib.i18n import format_datetime, label, normalize_lang

__all__ = ["print_html", "write_pdf", "PAGE_CSS"]

_FIG_WIDTH = 1000  # figure width on an A4 landscape page with 12 mm margins [px]
_RISK_ROWS = 25  # risk-queue rows printed
_DECISIONS = 20  # decisions printed

#: Stylesheet of the printed page (the cards and tables reuse the screens' CSS).
PAGE_CSS = """
@page { size: A4 landscape; margin: 16mm 12mm 14mm 12mm; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; }
section.screen { break-before: page; }
section.screen:first-of-type { break-before: auto; }
h2 { margin: 0 0 4px 0; } h3 { margin: 12px 0 6px 0; }
table.ng tr { break-inside: avoid; }
.fig { break-inside: avoid; margin: 6px 0; }
table.ng td:first-child { white-space: nowrap; }
""" + F.CSS.replace(":host", "body")


def _fig(fig) -> str:
    fig.update_layout(width=_FIG_WIDTH, height=min(fig.layout.height or 300, 300), autosize=False)
    body = pio.to_html(fig, full_html=False, include_plotlyjs=False, config={"staticPlot": True})
    return f'<div class="fig">{body}</div>'


def _section(title: str, body: str) -> str:
    return f'<section class="screen"><h2>{html.escape(title)}</h2>{body}</section>'


def _kpis(data: RunData, lang: str) -> str:
    ops = operations_kpis(data)
    cards = [(k, metric_label(k, lang), format_metric(k, v, lang), "") for k, v in ops.items()]
    out = [f"<h3>{html.escape(label('operations', lang))}</h3>", F.kpi_cards_html(cards)]
    table = policy_table(data.backtest)
    out.append(f"<h3>{html.escape(label('autopilot_kpis', lang))}</h3>")
    if table is None or not len(table):
        how = "guardian backtest --run RUN --json RUN/kpis.json"
        return "".join(out) + F.not_computed_html("kpis.json", how, lang)
    main = main_policy(data.backtest)
    rows = table.loc[table["policy"] == main].set_index("metric")
    items = [
        (
            m, metric_label(m, lang), format_metric(m, rows.at[m, "mean"], lang),
            format_interval(m, rows.at[m, "ci_lo"], rows.at[m, "ci_hi"], lang),
        )
        for m in HEADLINE_METRICS if m in rows.index
    ]  # fmt: skip
    out.append(f'<div class="caption">{html.escape(policy_name(main, lang))}</div>')
    out.append(F.kpi_cards_html(items))
    policies = list(dict.fromkeys(table["policy"]))
    wide = policy_wide(table, policies, lang)
    cols = {"metric": "text"} | dict.fromkeys(policies, "text")
    hd = {"metric": label("metric", lang)} | {p: policy_name(p, lang) for p in policies}
    out.append(F.table_html(wide, cols, hd, lang, "policy-table", label("policy_comparison", lang)))
    for m in HEADLINE_METRICS[:4]:
        if m in set(table["metric"]):
            out.append(_fig(F.policy_figure(table, m, lang)))
    return "".join(out)


def _risk(data: RunData, lang: str) -> str:
    full = risk_queue(data, limit=None)
    if full is None:
        return F.not_computed_html("ml_predictions", "guardian score --run RUN", lang)
    return risk_queue_html(full.head(_RISK_ROWS), len(full), lang)


def _decisions(data: RunData, lang: str) -> str:
    dec = decision_reasons(data, limit=_DECISIONS)
    if dec is None:
        return F.not_computed_html("decisions", "an audit trail (AuditLog)", lang)
    return decisions_html(dec, lang, "decisions")


def print_html(data: RunData, lang: str = "en") -> str:
    """The report as one HTML page laid out for printing (see the module docstring)."""
    lang = normalize_lang(lang)
    period = f"{format_datetime(data.start, lang)} → {format_datetime(data.end, lang)}"
    head = (
        f"<h2>{html.escape(label('app_title', lang))} — {html.escape(data.name)}</h2>"
        f'<div class="caption">{html.escape(label("period", lang))}: {html.escape(period)}</div>'
    )
    noc = _fig(F.online_figure(data, lang)) + _fig(F.failure_rate_figure(data, lang))
    sections = [
        f'<section class="screen">{head}{headline_html(data, lang)}</section>',
        _section(label("kpis_savings", lang), _kpis(data, lang)),
        _section(label("sla_network", lang), sla_html(data, lang, title=False)),
        _section(label("noc_overview", lang), noc),
        _section(label("risk_queue", lang), _risk(data, lang)),
        _section(label("explainability", lang), _decisions(data, lang)),
    ]
    title = html.escape(f"{label('app_title', lang)} — {data.name}")
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{PAGE_CSS}</style><script>{get_plotlyjs()}</script></head>"
        f"<body>{''.join(sections)}</body></html>"
    )


def _print(page_file: Path, out: Path, header: str, timeout_s: float) -> None:
    from playwright.sync_api import sync_playwright

    from guardian_lib.dashboards.screenshots import Capture, launch_chromium, watch_page

    cap = Capture()
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            watch_page(page, cap)
            page.goto(page_file.as_uri(), timeout=timeout_s * 1000)
            n = page.locator(".fig").count()
            page.wait_for_function(
                f"document.querySelectorAll('.fig .main-svg').length >= {n}",
                timeout=timeout_s * 1000,
            )
            small = "font-size:8px;width:100%;margin:0 12mm;color:#5f6368;"
            page.pdf(
                path=str(out),
                format="A4",
                landscape=True,
                print_background=True,
                display_header_footer=True,
                header_template=f'<div style="{small}">{html.escape(header)}</div>',
                footer_template=(
                    f'<div style="{small}text-align:right">'
                    '<span class="pageNumber"></span> / <span class="totalPages"></span></div>'
                ),
                margin={"top": "16mm", "bottom": "14mm", "left": "12mm", "right": "12mm"},
            )
        finally:
            browser.close()
    if cap.console_errors:
        raise RuntimeError(f"write_pdf: the page reported errors: {cap.console_errors[:3]}")


def write_pdf(
    run: Path | str | RunData,
    path: Path | str,
    lang: str = "en",
    kpis: Path | str | None = None,
    audit: Path | str | None = None,
    timeout_s: float = 120.0,
) -> Path:
    """Print the report of ``run`` to a PDF file (A4 landscape, header, page numbers).

    Parameters
    ----------
    run : path or RunData
        Run folder with an ingested warehouse (or its already loaded data).
    path : path
        PDF file to write (its folder is created).
    lang : {'en', 'pt-BR'}, default 'en'
    kpis, audit : path, optional
        As in :func:`~guardian_lib.dashboards.write_report`.
    timeout_s : float, default 120
        Time allowed for the page to load and draw its figures. [s]

    Returns
    -------
    Path
        ``path``, resolved.

    Raises
    ------
    BrowserMissingError
        Debian's chromium is not installed.
    """
    lang = normalize_lang(lang)
    data = run if isinstance(run, RunData) else load_run_data(run, kpis_path=kpis, audit_path=audit)
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    period = f"{format_datetime(data.start, lang)} → {format_datetime(data.end, lang)}"
    header = f"{label('app_title', lang)} — {data.name} — {period}"
    tmp = out.with_name(f".{out.stem}.tmp.pdf")
    with tempfile.TemporaryDirectory(prefix="guardian-pdf-") as d:
        page_file = Path(d) / "report.html"
        page_file.write_text(print_html(data, lang), encoding="utf-8")
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop here: Playwright's sync API can run in this thread
            _print(page_file, tmp, header, timeout_s)
        else:  # inside a running loop (a Jupyter kernel): use a thread without one
            with ThreadPoolExecutor(max_workers=1) as pool:
                pool.submit(_print, page_file, tmp, header, timeout_s).result()
    tmp.replace(out)
    return out
