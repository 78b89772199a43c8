"""``guardian backtest``: registered through the ``guardian.commands`` entry point."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer

from guardian_lib.schema import POLICY_EVERY_MINUTES

__all__ = ["register", "backtest_command", "headline", "kpi_table", "load_scorer"]

_SHOWN = (
    "visits", "visits_avoided_vs_reactive_pct", "visits_avoided_per_month", "visits_avoided",
    "net_savings_brl", "cost_saving_vs_reactive_brl", "saved_brl_per_month", "mttr_hours",
    "mttr_ratio_vs_reactive", "rules_oracle_gap_share", "impact_hours", "mttd_minutes",
    "sla_availability", "reboots", "reboot_success_rate", "visit_cancellations",
    "false_action_rate", "no_fault_found_share", "calls", "contacts_per_sub_year",
    "safety_violations",
)  # fmt: skip


def headline(result: dict, policy: str = "autopilot") -> str | None:
    """One line for a manager: visits avoided and R$ saved per month, MTTR change.

    Each with its 95 % interval (paired against ``reactive`` over the seeds); None when
    the result has no ``policy`` or no ``reactive`` run.
    """
    m = result.get("policies", {}).get(policy, {})
    keys = ("visits_avoided_per_month", "saved_brl_per_month", "mttr_change_hours")
    if not all(k in m for k in keys):
        return None

    def part(k: str) -> str:
        v = m[k]
        return f"{_fmt(v['mean'])} [{_fmt(v['ci95'][0])}, {_fmt(v['ci95'][1])}]"

    return (
        f"{policy} vs reactive: visits avoided per month {part(keys[0])}, "
        f"R$ saved per month {part(keys[1])}, MTTR change {part(keys[2])} h"
    )


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:,.3f}" if abs(x) < 10 else f"{x:,.0f}"


def kpi_table(result: dict) -> list[list[str]]:
    """Rows ``[metric, policy1, policy2, …]`` of mean [lo, hi] strings, header first."""
    pols = list(result["policies"])
    rows = [["metric", *pols]]
    for m in _SHOWN:
        row = [m]
        for p in pols:
            v = result["policies"][p].get(m)
            row.append("" if v is None else f"{_fmt(v['mean'])} [{_fmt(v['ci95'][0])}, "
                       f"{_fmt(v['ci95'][1])}]")  # fmt: skip
        rows.append(row)
    return rows


def backtest_command(
    run: Annotated[
        Path, typer.Option(help="Simulated run folder (its run.json holds the scenario).")
    ],
    policies: Annotated[
        str, typer.Option(help="Comma-separated: reactive, rules, autopilot, oracle.")
    ] = "reactive,rules,autopilot,oracle",
    seeds: Annotated[int, typer.Option(help="Number of seeds (the run's seed, +1, …).")] = 5,
    every_minutes: Annotated[
        int, typer.Option(help="Policy call interval, a multiple of the run's tick. [min]")
    ] = POLICY_EVERY_MINUTES,
    days: Annotated[float | None, typer.Option(help="Override the scenario's days.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the KPIs here.")] = None,
    audit: Annotated[
        Path | None,
        typer.Option(
            help="Keep the autopilot's audit trail (decisions, actions, notifications, "
            "incidents) in this DuckDB file, e.g. RUN/audit.duckdb, where the dashboards "
            "look for it. It must not exist yet."
        ),
    ] = None,
    scorer: Annotated[
        str | None,
        typer.Option(
            help="Scorer of the autopilot as 'module:attr' (a callable scorer(snapshot), "
            "or a class built with no arguments); default the RuleScorer."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes for the (seed, policy) replays; default one per replay, at "
            "most one per CPU. The KPIs do not depend on it."
        ),
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(
            help="Use the registered ML models with this alias (e.g. 'champion') as the "
            "autopilot's scorer, fed tick by tick with observable data only."
        ),
    ] = None,
) -> None:
    """Closed-loop backtest of decision policies on the run's scenario (common random numbers)."""
    from rich.console import Console
    from rich.table import Table

    from simulator.backtest import POLICIES
    from simulator.experiment import run_backtest

    names = [p.strip() for p in policies.split(",") if p.strip()]
    bad = [p for p in names if p not in POLICIES]
    if bad:
        raise typer.BadParameter(f"--policies: unknown {bad}, expected some of {list(POLICIES)}")
    if seeds < 1:
        raise typer.BadParameter(f"--seeds must be >= 1, got {seeds}")
    if workers is not None and workers < 1:
        raise typer.BadParameter(f"--workers must be >= 1, got {workers}")
    if audit is not None and audit.exists():
        raise typer.BadParameter(f"--audit {audit}: file exists (the trail is append-only)")
    console = Console(stderr=True)

    def progress(pol: str, seed: int, k: dict) -> None:
        console.print(
            f"  {pol:<9} seed {seed}: visits {k['visits']}, MTTR {k['mttr_hours']:.2f} h, "
            f"net savings R$ {k['net_savings_brl']:,.0f}"
        )

    result = run_backtest(
        run, names, seeds, json_out, every_minutes=every_minutes, days=days, audit=audit,
        scorer=_models_scorer(models) if models else (load_scorer(scorer) if scorer else None),
        progress=progress, workers=workers,
    )["kpis"]  # fmt: skip
    line = headline(result)
    if line:
        Console().print(line)
    rows = kpi_table(result)
    scenario = result["settings"]["scenario"]
    table = Table(title=f"backtest {scenario}: mean [95 % CI] over {seeds} seed(s)")
    for h in rows[0]:
        table.add_column(h, justify="left" if h == "metric" else "right")
    for r in rows[1:]:
        table.add_row(*r)
    Console().print(table)


def _models_scorer(alias: str):
    """The registered bundle behind ``alias`` as an unbound :class:`ModelScorer`."""
    from guardian_lib.models.online import ModelScorer
    from guardian_lib.models.registry import load_bundle

    return ModelScorer(load_bundle(alias))


def load_scorer(spec: str):
    """Resolve ``'package.module:attr'`` to a scorer (classes are instantiated)."""
    import importlib
    import inspect

    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise typer.BadParameter(f"--scorer: expected 'module:attr', got {spec!r}")
    try:
        obj = getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise typer.BadParameter(f"--scorer {spec!r}: {exc}") from exc
    obj = obj() if inspect.isclass(obj) else obj
    if not callable(obj):
        raise typer.BadParameter(f"--scorer {spec!r}: {type(obj).__name__} is not callable")
    return obj


def register(app: typer.Typer) -> None:
    """Add ``guardian backtest`` to the CLI."""
    app.command("backtest")(backtest_command)
