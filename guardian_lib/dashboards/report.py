"""The static report: every screen in ONE HTML file that opens with the network off.

Panel's ``save(..., resources=INLINE)`` inlines the JavaScript but still links some
stylesheets, icons and fonts from ``cdn.holoviz.org``. :func:`write_report`
replaces each of those links with a ``data:`` URI of the same file from the installed
Panel package, and rewrites every other absolute ``http(s)`` address left inside the
bundled libraries (tile servers, CDN defaults of features we do not use) to the reserved,
never-resolving host ``offline.invalid``. :func:`external_references` finds what would
still reach the network; the tests require it to be empty.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path

import panel as pn
from bokeh.resources import INLINE

from guardian_lib.dashboards._compress import compress_scripts, expand_scripts
from guardian_lib.dashboards._data import RunData, load_run_data
from guardian_lib.dashboards.screens import build_layout
from guardian_lib.i18n import label, normalize_lang
from guardian_lib.sla import write_sla

__all__ = ["write_report", "make_offline", "external_references", "ALLOWED_HOSTS"]

#: Hosts that may appear in an offline report: XML namespace identifiers (never fetched)
#: and the reserved host every other address is rewritten to.
ALLOWED_HOSTS = ("www.w3.org", "offline.invalid")
_PANEL_CDN = re.compile(
    r"https?://cdn\.holoviz\.org/panel/[^/\"'\s]+/dist/([^\"'?)\s\\]+)(\?[^\"'\s)\\]*)?"
)
_URL = re.compile(r"(https?:)?//([A-Za-z0-9.-]+\.[A-Za-z]{2,})(?=[/\"'\s)\\:?#]|$)")
_CSS_URL = re.compile(r"url\(\s*([\"']?)([^\"')]+)\1\s*\)")


def _data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _inline_css(path: Path) -> str:
    """A CSS file with its relative ``url(...)`` references inlined as data URIs."""
    text = path.read_text(encoding="utf-8", errors="replace")

    def repl(m: re.Match[str]) -> str:
        ref = m.group(2).strip()
        if ref.startswith(("data:", "#")):
            return m.group(0)
        target = (path.parent / ref.split("?")[0].split("#")[0]).resolve()
        if ref.startswith(("http:", "https:", "//")) or not target.is_file():
            return "url(data:,)"
        mime = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".woff2":
            mime = "font/woff2"
        return f"url({_data_uri(target.read_bytes(), mime)})"

    return _CSS_URL.sub(repl, text)


def _local_asset(rel: str) -> str:
    dist = Path(pn.__file__).resolve().parent / "dist"
    path = dist / rel
    if not path.is_file():
        return "data:,"
    if path.suffix == ".css":
        return _data_uri(_inline_css(path).encode("utf-8"), "text/css")
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return _data_uri(path.read_bytes(), mime)


def make_offline(text: str) -> str:
    """Make a Panel-saved HTML page self-contained.

    Parameters
    ----------
    text : str
        HTML written by ``panel.save(..., resources=INLINE)``.

    Returns
    -------
    str
        The same page with Panel's CDN stylesheets, icons and fonts inlined as ``data:``
        URIs and every other absolute address rewritten to ``offline.invalid``
        (except the XML namespaces in :data:`ALLOWED_HOSTS`).
    """
    cache: dict[str, str] = {}

    def panel_asset(m: re.Match[str]) -> str:
        rel = m.group(1)
        if rel not in cache:
            cache[rel] = _local_asset(rel)
        return cache[rel]

    text = _PANEL_CDN.sub(panel_asset, text)

    def neutral(m: re.Match[str]) -> str:
        host = m.group(2).lower()
        if host in ALLOWED_HOSTS:
            return m.group(0)
        return f"{m.group(1) or 'https:'}//offline.invalid"

    return _URL.sub(neutral, text)


def external_references(text: str) -> list[str]:
    """Addresses in an HTML page that could make the browser reach the network.

    Returns every absolute ``http(s)://`` or protocol-relative address whose host is not
    in :data:`ALLOWED_HOSTS` (so, after :func:`make_offline`, an empty list). Scripts
    stored compressed (:func:`~._compress.compress_scripts`) are read inflated.
    """
    text = expand_scripts(text)
    found = []
    for m in _URL.finditer(text):
        if m.group(1) is None and not text[max(0, m.start() - 6) : m.start()].rstrip().endswith(
            ("src=", "href=", "url(", '"', "'")
        ):
            continue  # "//" inside code or comments, not an address
        if m.group(2).lower() not in ALLOWED_HOSTS:
            found.append(m.group(0))
    return sorted(set(found))


def write_report(
    run: Path | str | RunData,
    path: Path | str,
    lang: str = "en",
    kpis: Path | str | None = None,
    audit: Path | str | None = None,
    compress: bool = True,
) -> Path:
    """Write every dashboard screen of ``run`` to one self-contained, offline HTML file.

    Parameters
    ----------
    run : path or RunData
        Run folder with an ingested warehouse, or its data already loaded
        (:func:`~guardian_lib.dashboards.load_run_data`: a report in several languages,
        and the PDF, then read the run once; ``kpis`` and ``audit`` are then unused).
    path : path
        HTML file to write (its folder is created).
    lang : {'en', 'pt-BR'}, default 'en'
    kpis : path, optional
        The backtest's ``kpis.json`` (default: looked for in the run folder).
    audit : path, optional
        A DuckDB file with the audit tables (default: the run's warehouse, or
        ``audit.duckdb`` in the run folder).
    compress : bool, default True
        Store the page's scripts and data gzip-compressed, inflated by the browser when
        the page opens (:func:`~._compress.compress_scripts`; about a third of the size;
        needs a browser with ``DecompressionStream``: Chromium 80+, Firefox 113+,
        Safari 16.4+).

    Returns
    -------
    Path
        ``path``, resolved. The run's SLA table is also written to ``RUN/sla.parquet``
        and ``RUN/sla.json`` (:func:`guardian_lib.sla.write_sla`).
    """
    lang = normalize_lang(lang)
    data = run if isinstance(run, RunData) else load_run_data(run, kpis_path=kpis, audit_path=audit)
    if data.sla is not None:
        write_sla(data.run, data.sla)  # the same table as the report's, beside the run
    layout = build_layout(data, lang, live=False)
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.html")
    title = f"{label('app_title', lang)} — {data.name}"
    layout.save(str(tmp), resources=INLINE, embed=False, title=title)
    text = make_offline(tmp.read_text(encoding="utf-8"))
    text = re.sub(r'<html lang="[^"]*"\s*>', f'<html lang="{lang}">', text, count=1)
    if compress:
        text = compress_scripts(text)
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)
    return out
