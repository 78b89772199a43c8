"""``guardian dashboard`` and ``guardian report``: registered through ``guardian.commands``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from guardian_lib.dashboards.formats import REPORT_FORMATS, report_writer

__all__ = ["register", "dashboard_command", "report_command"]

_Lang = Annotated[str, typer.Option(help="Language of the labels: en or pt-BR.")]
_Kpis = Annotated[Path | None, typer.Option(help="A backtest kpis.json (default: RUN/kpis.json).")]
_Audit = Annotated[
    Path | None, typer.Option(help="DuckDB file with the audit tables (default: RUN's).")
]


def _normalized_lang(lang: str) -> str:
    """``--lang`` as the labels know it (``en`` / ``pt-BR``), or a usage error naming it."""
    from guardian_lib.i18n import normalize_lang

    try:
        return normalize_lang(lang)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--lang") from None


def dashboard_command(
    run: Annotated[Path | None, typer.Option(help="Run folder with an ingested warehouse.")] = None,
    site: Annotated[
        Path | None,
        typer.Option(help="Site file of guardian operate: serve the live console behind a login."),
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="guardian operate's state folder (with --site).")
    ] = None,
    users: Annotated[
        Path | None, typer.Option(help="Users file (JSON, mode 0600; with --site).")
    ] = None,
    cookie_secure: Annotated[
        bool, typer.Option(help="Session cookie only over HTTPS (with --site, behind TLS).")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port to serve on.")] = 5006,
    lang: _Lang = "en",
    address: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    kpis: _Kpis = None,
    audit: _Audit = None,
    show: Annotated[bool, typer.Option(help="Open a browser tab.")] = False,
) -> None:
    """Serve the live dashboard of a run (NOC overview, risk queue, dossier, KPIs, …).

    With ``--site`` it serves the operator console of ``guardian api`` instead: the live state
    of ``guardian operate`` behind a login (``/login``, ``/console``), the same app and users
    as the API — one dashboard for a site, not a second one.
    """
    if (run is None) == (site is None):
        raise typer.BadParameter("give exactly one of --run RUN or --site SITE.yaml")
    if site is not None:
        if users is None:
            raise typer.BadParameter("--site needs --users (the API's users file)")
        from guardian_lib.api.cli import api_command

        api_command(users=users, site=site, state=state, host=address, port=port,
                    cookie_secure=cookie_secure)  # fmt: skip
        return
    if state is not None or users is not None:
        raise typer.BadParameter("--state and --users go with --site")
    from guardian_lib.dashboards.app import serve

    lang = _normalized_lang(lang)
    typer.echo(f"serving {run} on http://{address}:{port}/ (Ctrl-C to stop)", err=True)
    serve(run, port=port, lang=lang, address=address, kpis=kpis, audit=audit, show=show)


def report_command(
    run: Annotated[Path, typer.Option(help="Run folder with an ingested warehouse.")],
    out: Annotated[Path, typer.Option(help="File to write.")],
    format_: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="html (offline dashboard), pdf (printed by headless chromium) or xlsx; "
            "default the --out file's extension (.html, .pdf, .xlsx), else html.",
        ),
    ] = None,
    lang: _Lang = "en",
    kpis: _Kpis = None,
    audit: _Audit = None,
) -> None:
    """Write the report of a run: offline HTML, PDF or Excel (headline first)."""
    lang = _normalized_lang(lang)
    suffix = out.suffix.lower().lstrip(".")
    suffix = "html" if suffix == "htm" else suffix
    fmt = format_ if format_ is not None else suffix if suffix in REPORT_FORMATS else "html"
    fmt = fmt.strip().lower()
    if fmt not in REPORT_FORMATS:
        raise typer.BadParameter(
            f"expected one of {sorted(REPORT_FORMATS)}, got {format_!r}", param_hint="--format"
        )
    if suffix in REPORT_FORMATS and suffix != fmt:
        # An HTML page named report.pdf opens nowhere: say so rather than write it.
        raise typer.BadParameter(
            f"--out {out} names a .{suffix} file but the format is {fmt}: give --format "
            f"{suffix}, or an --out file ending in .{fmt}",
            param_hint="--format",
        )
    write = report_writer(fmt)
    typer.echo(str(write(run, out, lang=lang, kpis=kpis, audit=audit)))


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` and ``report`` to the ``guardian`` CLI."""
    app.command("dashboard")(dashboard_command)
    app.command("report")(report_command)
