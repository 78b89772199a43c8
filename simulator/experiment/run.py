"""Running an experiment: the notebooks in order, the report folder, the closed-loop backtest."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from guardian_lib._json import dumps_strict
from guardian_lib.errors import ConfigError
from guardian_lib.layout import ReportLayout, RunLayout
from guardian_lib.models.registry import data_dir
from guardian_lib.notebooks import NotebookError, NotebookRun, run_notebooks
from guardian_lib.schema import POLICY_EVERY_MINUTES
from simulator.experiment.config import (
    NOTEBOOKS,
    load_experiment,
    notebook_parameters,
    write_scenarios,
)
from simulator.experiment.tracking import ParentRun

__all__ = ["PipelineError", "PipelineResult", "run_experiment", "run_backtest", "kpis_json"]


class PipelineError(NotebookError):
    """A notebook of an experiment failed (see :class:`~guardian_lib.notebooks.NotebookError`).

    Attributes
    ----------
    report_dir : Path
        Where what was produced before the failure is kept.
    """

    def __init__(self, cause: NotebookError, report_dir: Path) -> None:
        super().__init__(
            f"{cause}; report folder {report_dir}",
            cause.notebook,
            cause.cell_index,
            cause.executed,
            cause.runs,
        )
        self.report_dir = report_dir


class PipelineResult(BaseModel):
    """What :func:`run_experiment` produced."""

    experiment: str
    report_dir: Path
    reports: list[Path]
    notebooks: list[Path]
    mlflow_run_id: str | None
    durations_s: dict[str, float]


def kpis_json(result: dict[str, Any]) -> str:
    """A backtest result as strict JSON (NaN and infinities written as ``null``)."""
    return dumps_strict(result, indent=2, default=str)


def _fresh_file(path: Path) -> Path:
    """``path`` with any earlier DuckDB file (and its WAL) removed and its folder made."""
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def run_backtest(
    run: Path | str,
    policies: list[str],
    replications: int,
    out_json: Path | str | None,
    every_minutes: int = POLICY_EVERY_MINUTES,
    days: float | None = None,
    audit: Path | str | None = None,
    scorer: Callable | None = None,
    progress: Callable[[str, int, dict], None] | None = None,
    workers: int | None = None,
) -> dict[str, Any]:
    """Compare policies in the closed loop on a run's scenario and write ``kpis.json``.

    Parameters
    ----------
    run : path
        The run whose scenario is replayed.
    policies : list of str
        e.g. ``["reactive", "rules", "autopilot"]``.
    replications : int
        Seeds to replay (the run's seed, +1, …). [-]
    out_json : path or None
        Where ``kpis.json`` is written (None: not written) (``{"policies": {p: {metric: {"mean", "ci95"}}}}``).
    every_minutes : int
        Policy call interval. [min]
    days : float, optional
        Replay only this many days of the scenario. [d]
    audit : path, optional
        Keep the autopilot's audit trail here, e.g. ``<run>/audit.duckdb`` where the
        dashboards look for it. A trail left by an earlier replay is replaced.
    scorer : callable, optional
        The autopilot's scorer (default the :class:`~guardian_lib.decision.RuleScorer`).
    progress : callable, optional
        ``progress(policy, seed, kpis)`` after each replay.
    workers : int, optional
        Processes that run the (seed, policy) replays [-]; default one per replay, at most
        one per CPU (:func:`simulator.backtest.run_backtest`; the KPIs do not depend on it).

    Returns
    -------
    dict
        ``{"status": "ok", "kpis": {...}, "kpis_path": str}``; ``kpis`` as written (strict
        JSON: NaN and infinities are ``None``).
    """
    from simulator.backtest import run_backtest as backtest
    from simulator.backtest import scenario_of_run

    sc = scenario_of_run(run)
    if days is not None:
        sc = sc.with_overrides(days=days)
    if audit is not None:
        audit = _fresh_file(Path(audit))
    result = backtest(
        sc, list(policies), [sc.seed + i for i in range(replications)], every_minutes,
        scorer=scorer, progress=progress, audit_path=audit, workers=workers,
    )  # fmt: skip
    text = kpis_json(result)
    if out_json is not None:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(text)
    return {"status": "ok", "kpis": json.loads(text), "kpis_path": str(out_json or "")}


def _new_report_dir(reports_root: Path, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = reports_root / name / stamp
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{stamp}-{i}"), i + 1
    path.mkdir(parents=True)
    return path.resolve()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _finish(
    out: ReportLayout,
    manifest: dict[str, Any],
    runs: list[NotebookRun],
    failed: bool,
    tracking: ParentRun | None,
    test_run: RunLayout,
) -> None:
    """Write ``pipeline.json``, copy the test run's KPIs, close the MLflow parent run."""
    manifest["notebooks"] = [r.as_dict() for r in runs]
    manifest["status"] = "failed" if failed else "succeeded"
    manifest["finished_at"] = _now()
    manifest["reports"] = [p.name for p in out.reports()]
    manifest["mlflow_run_id"] = tracking.run_id if tracking else None
    out.manifest.write_text(json.dumps(manifest, indent=2, default=str))
    if not failed and test_run.kpis.is_file():
        shutil.copy2(test_run.kpis, out.kpis)
    if tracking is not None:
        tracking.finish(out.root, {r.notebook: r.duration_s for r in runs}, failed)


def run_experiment(
    path: Path | str,
    reports_root: Path | str = "reports",
    data_root: Path | str | None = None,
    notebooks_dir: Path | str = "notebooks",
    overrides: dict[str, Any] | None = None,
    log_mlflow: bool = True,
    log: Any = None,
) -> PipelineResult:
    """Run the experiment's notebooks in order and write its report folder.

    Parameters
    ----------
    path : path
        ``experiments/<name>.yaml``.
    reports_root : path, default 'reports'
    data_root : path, optional
        Where the simulated runs go; default ``$GUARDIAN_DATA_DIR/runs`` or ``data/runs``.
    notebooks_dir : path, default 'notebooks'
    overrides : dict, optional
        Dotted experiment keys to replace (see :func:`load_experiment`).
    log_mlflow : bool, default True
        Log the MLflow parent run.
    log : callable, optional
        ``log(message)`` for progress lines (default: silent).

    Raises
    ------
    ConfigError
        The experiment file or a scenario is invalid, or a notebook is missing.
    PipelineError
        A notebook failed (its error and cell are in the message; outputs are kept).
    """
    exp = load_experiment(path, overrides)
    nb_dir = Path(notebooks_dir).resolve()
    missing = [n for n in NOTEBOOKS if not (nb_dir / n).is_file()]
    if missing:  # fail before creating the report folder
        raise ConfigError(f"{nb_dir}: notebook(s) not found: {missing}")
    out = ReportLayout(_new_report_dir(Path(reports_root), exp.name))
    shutil.copy2(path, out.experiment)
    write_scenarios(exp, Path(path).resolve().parent, out.root)
    params = notebook_parameters(exp, Path(data_root or data_dir() / "runs"), out.root)
    manifest = {"experiment": exp.model_dump(), "parameters": params, "started_at": _now(),
                "notebooks": [], "status": "running"}  # fmt: skip
    tracking = ParentRun.start(exp, out.root) if log_mlflow else None
    error: PipelineError | None = None
    runs: list[NotebookRun] = []
    failed = True  # until the notebooks have run (an interrupt also counts as a failure)
    try:
        try:
            runs = run_notebooks(NOTEBOOKS, nb_dir, out.notebooks, params, Path.cwd(), log=log)
        except NotebookError as exc:
            error, runs = PipelineError(exc, out.root), exc.runs
            manifest["error"] = str(error)
        failed = error is not None
    finally:
        _finish(out, manifest, runs, failed, tracking, RunLayout(params["test_run"]))
    if error is not None:
        raise error
    return PipelineResult(
        experiment=exp.name,
        report_dir=out.root,
        reports=out.reports(),
        notebooks=sorted(out.notebooks.glob("*.ipynb")),
        mlflow_run_id=tracking.run_id if tracking else None,
        durations_s={r.notebook: r.duration_s for r in runs},
    )
