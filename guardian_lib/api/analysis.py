"""The six analysis screens of ``guardian dashboard`` behind the API's login.

``GET /console/analysis?lang=en|pt-BR`` serves the run's static report (the screens of
:func:`guardian_lib.dashboards.report.write_report`: NOC overview, risk queue, customer
dossier, KPIs and savings, explainability, optical signal) to a signed-in user, with the
same session cookie as ``/console``. Without a valid session it redirects to ``/login``.

Region scope: the screens are built over the whole network (the NOC map, the SLA of every
region, the risk queue, the backtest's KPIs) and filtering each of them per region is not
done, so they are shown only to users **without** a region scope; a user scoped to
regions gets 403 (a page saying why). Every role may read them (viewer and up).

The page is built once per language and kept in memory; it is rebuilt when the run's
warehouse, lake, ``kpis.json`` or the audit trail changed, at most every
:attr:`AnalysisScreens.min_age_s` seconds (operate writes the warehouse every cycle). The
build reads a snapshot of the run (:func:`guardian_lib.warehouse.run_snapshot`) and a copy
of the audit file, so ``guardian operate`` is never kept out of its files. The report runs
its own inline scripts (Bokeh, Plotly), so it gets its own Content-Security-Policy:
inline script allowed, but nothing may be fetched or sent (``connect-src 'none'``), no
framing.
"""

import html
import tempfile
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from guardian_lib.api.console import SECURITY_HEADERS, page_lang, session_user
from guardian_lib.layout import RunLayout

__all__ = ["ANALYSIS_PATH", "REPORT_HEADERS", "AnalysisScreens", "router"]

ANALYSIS_PATH = "/console/analysis"
#: Headers of the analysis page: its inline scripts run, nothing leaves the page.
REPORT_HEADERS = SECURITY_HEADERS | {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval' blob:; "
    "style-src 'unsafe-inline' data:; img-src data: blob:; font-src data:; "
    "connect-src 'none'; worker-src blob:; frame-ancestors 'none'; form-action 'none'; "
    "base-uri 'none'",
}
_REFUSED = {
    "en": (
        "Analysis screens",
        "The analysis screens cover every region. They are shown to users without a region "
        "scope; your user is limited to {regions}. The live console shows your regions.",
        "Back to the console",
    ),
    "pt-BR": (
        "Telas de análise",
        "As telas de análise cobrem todas as regiões. Elas são mostradas a usuários sem "
        "restrição de região; seu usuário está limitado a {regions}. O console ao vivo "
        "mostra as suas regiões.",
        "Voltar ao console",
    ),
}

router = APIRouter(include_in_schema=False)


class AnalysisScreens:
    """The static report of one run per language, built on demand and cached.

    Parameters
    ----------
    run : path
        Run folder (the warehouse the API serves).
    audit : path, optional
        The audit trail the screens read (operate's ``STATE/audit.duckdb`` in site mode);
        default: the run's own.
    min_age_s : float, default 60
        A built page is kept at least this long even if the run changed meanwhile. [s]
    """

    def __init__(self, run: Path, audit: Path | None = None, min_age_s: float = 60.0) -> None:
        self.run, self.audit, self.min_age_s = Path(run), audit, min_age_s
        self._pages: dict[str, tuple[Any, float, bytes]] = {}
        self._locks = {lang: threading.Lock() for lang in _REFUSED}
        self.builds = 0  # pages built so far (tests) [-]

    def _key(self) -> Any:
        """What the page depends on: size and mtime of the run's files that change."""
        lay = RunLayout(self.run)
        paths = [lay.warehouse, lay.warehouse.with_name(lay.warehouse.name + ".wal"),
                 self.run / "kpis.json", self.audit or self.run / "audit.duckdb"]  # fmt: skip
        key = []
        for p in paths:
            st = p.stat() if p.exists() else None
            key.append((st.st_mtime_ns, st.st_size) if st else None)
        lake = self.run / "lake"
        if lake.is_dir():  # new Parquet files (predictions, a new day) change the page
            key.append(max((d.stat().st_mtime_ns for d in lake.rglob("*") if d.is_dir()),
                           default=0))  # fmt: skip
        return tuple(key)

    def page(self, lang: str) -> bytes:
        """The report in ``lang`` (built now if missing or stale)."""
        with self._locks[lang]:
            key, cached = self._key(), self._pages.get(lang)
            fresh = cached is not None and (
                cached[0] == key or time.monotonic() - cached[1] < self.min_age_s
            )
            if fresh:
                return cached[2]
            body = self._build(lang)
            self._pages[lang] = (key, time.monotonic(), body)
            self.builds += 1
            return body

    def _build(self, lang: str) -> bytes:
        from guardian_lib.dashboards.report import write_report
        from guardian_lib.warehouse import private_copy, run_snapshot

        with (
            run_snapshot(self.run) as run,
            private_copy(self.audit) if self.audit is not None else nullcontext() as audit,
            tempfile.TemporaryDirectory(prefix="guardian-analysis-") as tmp,
        ):
            out = write_report(run, Path(tmp) / "analysis.html", lang=lang, audit=audit)
            return out.read_bytes()


def _refused(lang: str, regions: tuple[str, ...]) -> HTMLResponse:
    title, text, back = _REFUSED[lang]
    e = html.escape
    body = (
        f'<!doctype html><html lang="{e(lang)}"><head><meta charset="utf-8">'
        f'<title>{e(title)}</title><link rel="stylesheet" href="/console/app.css"></head>'
        f'<body><main><section><h2>{e(title)}</h2><p data-testid="analysis-refused">'
        f"{e(text.format(regions=', '.join(regions)))}</p>"
        f'<p><a href="/console?lang={quote(lang)}">{e(back)}</a></p></section></main>'
        "</body></html>"
    )
    return HTMLResponse(body, status_code=403, headers=SECURITY_HEADERS)


@router.get(ANALYSIS_PATH)
def analysis(request: Request) -> Response:
    """The analysis screens (a redirect to the login without a valid session)."""
    lang = page_lang(request)
    found = session_user(request)
    if found is None:
        return RedirectResponse(f"/login?lang={quote(lang)}", status_code=303)
    user = found[0]
    if not user.can("read"):
        return RedirectResponse(f"/login?lang={quote(lang)}", status_code=303)
    if user.regions:  # the screens are not filtered per region: whole-network users only
        return _refused(lang, tuple(user.regions))
    screens: AnalysisScreens = request.app.state.analysis
    return HTMLResponse(screens.page(lang), headers=REPORT_HEADERS)
