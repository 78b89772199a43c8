"""``guardian alerts replay|send`` and ``guardian silences add|list|expire``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "alerts_app", "silences_app"]

alerts_app = typer.Typer(help="Alert rules: replay a run's history.", no_args_is_help=True)
silences_app = typer.Typer(help="Silences: mute alerts by label.", no_args_is_help=True)

_DB = typer.Option(help="Silence file (SQLite).")


@alerts_app.command("replay")
def replay_command(
    run: Annotated[Path, typer.Option(help="Simulated (and ingested) run folder.")],
    json_out: Annotated[Path, typer.Option("--json", help="Write the result here.")],
    rules: Annotated[
        Path | None, typer.Option(help="Alerting file (YAML); default the shipped one.")
    ] = None,
    silences: Annotated[Path | None, typer.Option(help="Silence file to honour.")] = None,
    lang: Annotated[str, typer.Option(help="Language of customer notices.")] = "pt-BR",
    site: Annotated[
        Path | None,
        typer.Option(help="A guardian operate site file: its missed_poll_grace_steps."),
    ] = None,
    missed_poll_grace_steps: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Steps an ONU without a telemetry row keeps its previous reading before it "
            "counts offline; default the site file's, else 1. [steps]",
        ),
    ] = None,
) -> None:
    """What the rules would have fired over RUN: raw, notified, and customer notices."""
    from guardian_lib.alerts.config import load_alerting
    from guardian_lib.alerts.replay import replay_run, write_json
    from guardian_lib.alerts.silences import SilenceStore
    from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS

    grace = missed_poll_grace_steps
    if grace is None and site is not None:
        from guardian_lib.operate.site import load_site

        grace = load_site(site).missed_poll_grace_steps
    store = SilenceStore(silences) if silences else None
    result = replay_run(run, load_alerting(rules), store, lang=lang,
                        missed_poll_grace_steps=MISSED_POLL_GRACE_STEPS if grace is None else grace)  # fmt: skip
    write_json(result, json_out)
    typer.echo(
        f"{result['incidents']['count']} incidents, {result['alerts_raw']['count']} alerts raw, "
        f"{result['alerts_notified']['count']} notifications "
        f"(noise reduction {result['noise_reduction']}), "
        f"{result['customer_notices']['count']} customer notices (missed polls held "
        f"≤ {result['missed_poll_grace_steps']} step(s)) → {json_out}"
    )


@silences_app.command("add")
def silences_add(
    matchers: Annotated[list[str], typer.Argument(help="name=value or name=~regex …")],
    author: Annotated[str, typer.Option(help="Who silences.")],
    comment: Annotated[str, typer.Option(help="Why.")],
    db: Annotated[Path, _DB],
    duration: Annotated[str, typer.Option(help="How long: 30m, 2h, 1d.")] = "2h",
    start: Annotated[str | None, typer.Option(help="Start (ISO time, UTC); default now.")] = None,
) -> None:
    """Add a silence."""
    import pandas as pd

    from guardian_lib.alerts.config import parse_duration_s
    from guardian_lib.alerts.silences import SilenceStore
    from guardian_lib.matchers import parse_matchers

    try:
        length = pd.Timedelta(seconds=parse_duration_s(duration))
    except ValueError as exc:
        raise typer.BadParameter(f"--duration: {exc}") from None
    t0 = pd.Timestamp(start) if start else pd.Timestamp.now(tz="UTC")
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0
    store = SilenceStore(db)
    try:
        s = store.add(parse_matchers(matchers), t0, t0 + length, author, comment)
    finally:
        store.close()
    typer.echo(f"{s.silence_id}: until {s.ends_at.isoformat()}")


@silences_app.command("list")
def silences_list(
    db: Annotated[Path, _DB],
    all_: Annotated[bool, typer.Option("--all", help="Expired ones too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List active silences (or all of them)."""
    import pandas as pd

    from guardian_lib.alerts.silences import SilenceStore

    store = SilenceStore(db)
    try:
        now = pd.Timestamp.now(tz="UTC")
        rows = store.all() if all_ else store.active(now)
    finally:
        store.close()
    out = [
        {"id": s.silence_id, "matchers": s.matchers, "starts_at": s.starts_at.isoformat(),
         "ends_at": s.ends_at.isoformat(), "author": s.created_by, "comment": s.comment}
        for s in rows
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    for r in out:
        m = ",".join(f"{k}={v}" for k, v in r["matchers"].items())
        typer.echo(
            f"{r['id']}  {m}  {r['starts_at']} → {r['ends_at']}  {r['author']}: {r['comment']}"
        )


@silences_app.command("expire")
def silences_expire(
    silence_id: Annotated[str, typer.Argument(help="Id from `guardian silences list`.")],
    db: Annotated[Path, _DB],
) -> None:
    """End a silence now."""
    import pandas as pd

    from guardian_lib.alerts.silences import SilenceStore

    store = SilenceStore(db)
    try:
        s = store.expire(silence_id, pd.Timestamp.now(tz="UTC"))
    finally:
        store.close()
    typer.echo(f"{s.silence_id}: expired at {s.ends_at.isoformat()}")


def register(app: typer.Typer) -> None:
    """Add ``alerts`` and ``silences`` to the ``guardian`` CLI."""
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(silences_app, name="silences")
