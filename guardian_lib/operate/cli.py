"""``guardian operate`` and ``guardian decisions`` (registered through ``guardian.commands``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "operate_command", "decisions_app"]

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


def register(app: typer.Typer) -> None:
    """Add ``operate`` and ``decisions`` to the ``guardian`` CLI."""
    app.command("operate")(operate_command)
    app.add_typer(decisions_app, name="decisions")
