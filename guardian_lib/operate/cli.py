"""``guardian operate``, ``decide`` and ``decisions`` (registered through ``guardian.commands``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from guardian_lib.schema import POLICY_EVERY_MINUTES

__all__ = ["register", "operate_command", "decide_command", "decisions_app", "schedule_app"]

decisions_app = typer.Typer(
    help="Actions proposed in approve mode: list, approve, reject.", no_args_is_help=True
)


def operate_command(
    site: Annotated[Path, typer.Option(help="Site file (YAML): inventory, NBI, safety …")],
    state: Annotated[Path, typer.Option(help="State folder (journal, approvals, audit).")],
    mode: Annotated[
        str, typer.Option(help="simulate (send nothing), approve (queue) or execute.")
    ] = "simulate",
    for_ticks: Annotated[
        int | None, typer.Option(help="Stop after N cycles (default: run until SIGTERM).")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the run's summary here at exit.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus metrics on this TCP port.")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Bind address of the metrics endpoint.")
    ] = "127.0.0.1",
) -> None:
    """Poll the OLTs, store, score, decide and act every polling interval (a service)."""
    from guardian_lib.operate.metrics import OperateMetrics, json_logger, log_json
    from guardian_lib.operate.service import MODES, Operator
    from guardian_lib.operate.site import load_site

    if mode not in MODES:
        raise typer.BadParameter(f"--mode: expected one of {MODES}, got {mode!r}")
    if for_ticks is not None and for_ticks < 1:
        raise typer.BadParameter(f"--for-ticks: expected >= 1, got {for_ticks}")
    json_logger()
    cfg = load_site(site)
    metrics = OperateMetrics(metrics_port, metrics_host)
    op = Operator(cfg, state, mode=mode, metrics=metrics)
    op.install_signal_handlers()
    log_json("start", site=str(site), state=str(state), mode=mode, pid=os.getpid(),
             first_cycle=op.cycle + 1, metrics_port=metrics_port)  # fmt: skip
    try:
        summary = op.run(for_ticks)
    finally:
        op.close()
    if json_out is not None:
        tmp = json_out.with_name(f".{json_out.name}.part")
        tmp.write_text(json.dumps(summary.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, json_out)
    log_json("stop", **{k: v for k, v in summary.to_dict().items() if not isinstance(v, dict)})


def decide_command(
    run: Annotated[Path, typer.Option(help="Run folder with an ingested warehouse.")],
    start: Annotated[
        str | None, typer.Option(help="First decision time (ISO 8601, UTC; default: the first).")
    ] = None,
    end: Annotated[
        str | None, typer.Option(help="Last decision time (ISO 8601, UTC; default: the last).")
    ] = None,
    every_minutes: Annotated[
        float,
        typer.Option(
            help="Time between two decisions, a multiple of the grid (1.5 on a 90 s grid). [min]"
        ),
    ] = POLICY_EVERY_MINUTES,
    models: Annotated[
        str | None,
        typer.Option(
            help="'rules' (the rule scorer) or a registry alias (champion, challenger …); "
            "default the site's model_alias, else champion."
        ),
    ] = None,
    site: Annotated[
        Path | None,
        typer.Option(help="A guardian operate site file: safety limits, maintenance, alias."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the summary here.")] = None,
    audit: Annotated[
        Path | None, typer.Option(help="Audit DuckDB file to write (default: RUN/audit.duckdb).")
    ] = None,
    warmup_hours: Annotated[
        float, typer.Option(min=0, help="History observed before --start, no decision. [h]")
    ] = 24.0,
    missed_poll_grace_steps: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Steps an ONU without a reading keeps its last one (wins over the site "
            "file's missed_poll_grace_steps; default: the site's, else 1).",
        ),
    ] = None,
) -> None:
    """Replay a run's history through the autopilot in simulate mode: what it would have
    decided (audited; `guardian report --run RUN` shows the decisions)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from guardian_lib.operate.decide import decide_run, parse_time

    err = Console(stderr=True)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("replaying", total=None)
        s = decide_run(
            run, parse_time(start, "--start"), parse_time(end, "--end"),
            every_minutes=every_minutes, models=models, site=site, audit_path=audit,
            warmup_h=warmup_hours, missed_poll_grace_steps=missed_poll_grace_steps,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )  # fmt: skip
    if json_out is not None:
        tmp = json_out.with_name(f".{json_out.name}.part")
        tmp.write_text(json.dumps(s.to_dict(), indent=2), encoding="utf-8")
        os.replace(tmp, json_out)
    console = Console()
    t = Table(
        title=f"decisions {s.start} → {s.end} ({s.model_version}, every {s.every_minutes} min)"
    )
    t.add_column("what")
    t.add_column("count", justify="right")
    rows = [(f"decision: {k}", v) for k, v in s.decisions_by_action.items()]
    rows += [("decisions", s.decisions), ("incidents opened", s.incidents_opened),
             ("visits ordered", s.visits_ordered), ("visits held", s.visits_held),
             ("reboots (simulated)", s.reboots), ("notifications", s.notifications),
             ("device actions without a CPE id (failed)", s.actions_failed)]  # fmt: skip
    rows += [(f"blocked: {k}", v) for k, v in s.blocked_by_rule.items()]
    for name, v in rows:
        t.add_row(name, f"{v:,}")
    console.print(t)
    state = "already in the audit (nothing written)" if s.already_audited else "written"
    console.print(
        f"{s.onus:,} ONUs, {s.ticks:,} steps of {s.tick_s} s ({s.warmup_ticks:,} warm-up, "
        f"{s.gap_ticks:,} without readings, {s.held_readings:,} missed readings held "
        f"≤ {s.missed_poll_grace_steps} step(s)); {s.simulated_h_per_s:g} h/s ({s.wall_s:g} s in all); audit {s.audit} "
        f"{escape('[' + s.tag + ']')} {state}",
        soft_wrap=True,
    )
    if s.other_decisions_in_window:
        console.print(
            f"note: {s.audit} also holds {s.other_decisions_in_window:,} decisions of other "
            "replays in this window; the report shows them all (use --audit FILE to keep "
            "replays apart)",
            soft_wrap=True,
        )


@decisions_app.command("list")
def decisions_list(
    state: Annotated[Path, typer.Option(help="State folder of guardian operate.")],
    status: Annotated[
        str | None, typer.Option(help="pending, approved, rejected, executed or failed.")
    ] = "pending",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List proposed actions (pending by default; --status '' for all)."""
    from rich.console import Console
    from rich.table import Table

    from guardian_lib.operate.state import APPROVAL_STATES

    if status and status not in APPROVAL_STATES:
        raise typer.BadParameter(f"--status: expected one of {APPROVAL_STATES}, got {status!r}")
    store = _existing(state)
    try:
        rows = store.approvals(status or None)
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    t = Table(title=f"proposed actions ({status or 'all'})")
    cols = ("id", "ts", "action", "target", "subject", "status", "decided_by", "comment")
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if r.get(c) is None else str(r[c]) for c in cols))
    Console().print(t)


def _existing(state: Path):
    from guardian_lib.operate.state import STATE_FILE, StateError, StateStore

    if not (state / STATE_FILE).exists():
        raise StateError(f"{state}: no guardian operate state here ({STATE_FILE} missing)")
    return StateStore(state)


def _decide(state: Path, approval_id: int, verdict: str, comment: str | None) -> None:
    import getpass

    if comment is not None and len(comment) > 2000:
        raise typer.BadParameter(f"--comment: at most 2000 characters, got {len(comment)}")
    store = _existing(state)
    try:
        row = store.decide(approval_id, verdict, by=getpass.getuser(), comment=comment or None)
    finally:
        store.close()
    typer.echo(f"{approval_id}: {row['action']} {row['target']} {verdict}")


_Comment = Annotated[
    str | None, typer.Option(help="Why (kept in operate's queue beside the verdict).")
]


@decisions_app.command("approve")
def decisions_approve(
    approval_id: Annotated[int, typer.Argument(help="Id from `guardian decisions list`.")],
    state: Annotated[Path, typer.Option(help="State folder of guardian operate.")],
    comment: _Comment = None,
) -> None:
    """Approve a pending action (sent at the start of operate's next cycle)."""
    _decide(state, approval_id, "approved", comment)


@decisions_app.command("reject")
def decisions_reject(
    approval_id: Annotated[int, typer.Argument(help="Id from `guardian decisions list`.")],
    state: Annotated[Path, typer.Option(help="State folder of guardian operate.")],
    comment: _Comment = None,
) -> None:
    """Reject a pending action (never sent)."""
    _decide(state, approval_id, "rejected", comment)


schedule_app = typer.Typer(
    help="Scheduled reports and notebooks of a site file (schedule:): list them, run the due ones.",
    no_args_is_help=True,
)


def _scheduler(site: Path, state: Path):
    from guardian_lib.alerts.config import load_alerting
    from guardian_lib.alerts.receivers import build_receivers
    from guardian_lib.errors import ConfigError
    from guardian_lib.operate.schedule import ReportScheduler
    from guardian_lib.operate.site import load_site

    cfg = load_site(site)
    if not cfg.schedule:
        raise ConfigError(f"{site}: schedule: no report jobs in this site file")
    alerting = cfg.resolve(cfg.alerts)
    receivers = build_receivers(load_alerting(alerting), alerting.parent)
    return ReportScheduler(cfg.schedule, cfg.resolve(cfg.warehouse), state, receivers,
                           reports_dir=cfg.resolve(cfg.reports_dir),
                           site_id=cfg.site_id, site_dir=site.parent)  # fmt: skip


def _at(at: str | None):
    import pandas as pd

    from guardian_lib.errors import ConfigError
    from guardian_lib.operate.decide import parse_time

    if at is None:
        return pd.Timestamp.now(tz="UTC")
    try:
        return parse_time(at, "--at")
    except ConfigError:
        raise typer.BadParameter(
            f"expected an ISO 8601 time, got {at!r}", param_hint="--at"
        ) from None


_Site = Annotated[Path, typer.Option(help="Site file with a schedule: section.")]
_State = Annotated[Path, typer.Option(help="State folder of guardian operate.")]
_At = Annotated[str | None, typer.Option(help="Pretend it is this time (ISO 8601; default now).")]


@schedule_app.command("list")
def schedule_list(site: _Site, state: _State, at: _At = None,
                  as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
                  ) -> None:  # fmt: skip
    """Each job's current period, whether it was sent, the next firing, and the history."""
    sched = _scheduler(site, state)
    try:
        jobs, history = sched.status(_at(at)), sched.history()
    finally:
        sched.close()
    if as_json:
        typer.echo(json.dumps({"jobs": jobs, "history": history}, indent=2, default=str))
        return
    for j in jobs:
        typer.echo(f"{j['job']}: {j['format']} '{j['cron']}' ({j['timezone']}); period "
                   f"{j['period']}: {j['period_status'] or 'not run'}; next {j['next']}")  # fmt: skip
    for h in history:
        retry = f" next try at {h['retry_at']}" if h.get("retry_at") else ""
        typer.echo(f"  {h['job']} {h['period']} {h['status']} attempts={h['attempts']}{retry} "
                   f"{h['path'] or ''} {h['error'] or ''}".rstrip())  # fmt: skip


@schedule_app.command("run")
def schedule_run(site: _Site, state: _State, at: _At = None) -> None:
    """Build and e-mail the reports that are due now (what operate does every cycle); for
    a cron job or systemd timer when operate does not run. Safe to repeat: a period is sent
    once."""
    sched = _scheduler(site, state)
    try:
        done = sched.run_due(_at(at))
    finally:
        sched.close()
    for d in done:
        typer.echo(f"{d['job']} {d['period']}: {d['status']} {d.get('path') or d.get('error')}")
    if not done:
        typer.echo("nothing due", err=True)
    if any(d["status"] != "sent" for d in done):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``operate``, ``decide``, ``decisions`` and ``schedule`` to the ``guardian`` CLI."""
    app.command("operate")(operate_command)
    app.command("decide")(decide_command)
    app.add_typer(decisions_app, name="decisions")
    app.add_typer(schedule_app, name="schedule")
