"""Experiments: ``guardian run experiments/<name>.yaml`` runs the notebooks in order.

An experiment file names a scenario, seeds, models and policies (see
``docs/reports.md``). :func:`load_experiment` validates it *and* the train and test
scenarios it derives (scenario file + ``overrides`` deep-merged, checked by
:class:`~simulator.scenario.Scenario`), so a typo fails before anything runs.
:func:`run_experiment` runs ``notebooks/01_simulate.ipynb`` … ``06_report.ipynb`` through
:func:`guardian_lib.notebooks.run_notebooks` and writes::

    reports/<experiment>/<timestamp>/
        notebooks/NN_*.ipynb     executed notebooks (outputs included)
        report.html              the self-contained offline report (+ report.<lang>.html)
        evaluation.json          model metrics on the test run (notebook 04)
        kpis.json                the policies' closed-loop KPIs (copied from the test run)
        pipeline.json            what ran, with which parameters, how long, and the outcome

It logs one MLflow parent run (parameters, per-notebook durations, the notebooks and the
report as artifacts) to the project's tracking store. A failing notebook stops the run:
the error names the notebook, the cell and the exception, and everything produced so far
is kept. The notebooks call library functions in their own process:
:func:`guardian_lib.models.workflow.train_and_evaluate` and :func:`run_backtest`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.layout import RunLayout
from guardian_lib.notebooks import NotebookError, run_notebooks
from guardian_lib.schema import MODEL_EVERY_MINUTES, POLICY_EVERY_MINUTES
from simulator.scenario import load_scenario, scenario_file

__all__ = [
    "NOTEBOOKS",
    "MLFLOW_EXPERIMENT",
    "Experiment",
    "PipelineError",
    "PipelineResult",
    "load_experiment",
    "scenario_data",
    "write_scenarios",
    "notebook_parameters",
    "run_experiment",
    "run_backtest",
    "kpis_json",
    "deep_merge",
]

#: The notebooks, in the order :func:`run_experiment` runs them.
NOTEBOOKS = (
    "01_simulate.ipynb",
    "02_data_quality.ipynb",
    "03_features_eda.ipynb",
    "04_train_evaluate.ipynb",
    "05_backtest.ipynb",
    "06_report.ipynb",
)
#: MLflow experiment holding the pipeline's parent runs.
MLFLOW_EXPERIMENT = "network-guardian-pipeline"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Seeds(_Strict):
    """Seeds of the simulated runs: one to train on, one (unseen) to evaluate on.

    ``seeds.train`` is also the seed of model training (notebook parameter ``train_seed``).
    """

    train: int = 7
    test: int = 8


class Models(_Strict):
    """Model training settings (:func:`guardian_lib.models.workflow.train_and_evaluate`)."""

    enabled: bool = True
    n_estimators: Annotated[int, Field(ge=1, le=5000)] = 200
    every_minutes: Annotated[int, Field(ge=5, le=1440)] = MODEL_EVERY_MINUTES


class Backtest(_Strict):
    """Closed-loop backtest settings (:func:`run_backtest`)."""

    enabled: bool = True
    replications: Annotated[int, Field(ge=1, le=100)] = 3
    every_minutes: Annotated[int, Field(ge=1, le=1440)] = POLICY_EVERY_MINUTES
    days: Annotated[float | None, Field(gt=0, le=366)] = None


class Report(_Strict):
    """Report languages (the first is ``report.html``, others ``report.<lang>.html``) and
    whether to save a PNG of each screen (needs Debian's chromium)."""

    langs: Annotated[list[str], Field(min_length=1)] = ["en"]
    screenshots: bool = True


class Experiment(_Strict):
    """A validated experiment file."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    scenario: str
    test_scenario: str | None = None
    days: Annotated[float | None, Field(gt=0, le=366)] = None
    overrides: dict[str, Any] = {}
    test_overrides: dict[str, Any] = {}
    seeds: Seeds = Seeds()
    models: Models = Models()
    policies: Annotated[list[str], Field(min_length=1)] = ["reactive", "rules", "autopilot"]
    backtest: Backtest = Backtest()
    report: Report = Report()

    @field_validator("policies")
    @classmethod
    def _known_policies(cls, v: list[str]) -> list[str]:
        from simulator.backtest import POLICIES

        bad = [p for p in v if p not in POLICIES]
        if bad:
            raise ValueError(f"unknown policies {bad}, expected some of {list(POLICIES)}")
        return v


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


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` laid over it, mappings merged key by key (inputs unchanged)."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = (
            deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}={value!r}: {p!r} is not a mapping")
    node[parts[-1]] = value


def _read_mapping(path: Path, what: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a {what} mapping, got {type(data).__name__}")
    return data


def scenario_data(exp: Experiment, experiments_dir: Path | str) -> dict[str, tuple[Path, dict]]:
    """The train and test scenarios of ``exp``: ``{role: (source file, merged mapping)}``.

    ``days`` and ``overrides`` apply to both; ``test_overrides`` to the test scenario only.
    A scenario name is looked up in ``<experiments_dir>/scenarios`` then among the shipped
    ones (:func:`simulator.scenario.scenario_file`).
    """
    local = Path(experiments_dir) / "scenarios"
    out = {}
    for role, name, extra in (
        ("train", exp.scenario, {}),
        ("test", exp.test_scenario or exp.scenario, exp.test_overrides),
    ):
        src = scenario_file(name, search=local)
        data = deep_merge(deep_merge(_read_mapping(src, "scenario"), exp.overrides), extra)
        if exp.days is not None:
            data["days"] = exp.days
        out[role] = (src, data)
    return out


def load_experiment(path: Path | str, overrides: dict[str, Any] | None = None) -> Experiment:
    """Read and validate an experiment file and the scenarios it derives.

    Parameters
    ----------
    path : path
        ``experiments/<name>.yaml``.
    overrides : dict, optional
        Dotted keys to replace after reading, e.g. ``{"scenario": "tiny", "days": 1,
        "models.enabled": False}``.

    Raises
    ------
    ConfigError
        Missing file, bad YAML, an invalid field (names the file and the field path), an
        unknown scenario, or a scenario that its overrides make invalid (names the
        experiment, the role and the scenario field).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    data = _read_mapping(path, "top-level")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None
    for role, (src, scenario) in scenario_data(exp, path.resolve().parent).items():
        try:
            load_scenario(scenario)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {role} scenario ({src} + overrides): {exc}") from None
    return exp


def write_scenarios(exp: Experiment, experiments_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write the train and test scenario files of ``exp`` (with its overrides) to ``out_dir``.

    Returns
    -------
    (Path, Path)
        ``scenario.train.yaml`` and ``scenario.test.yaml``.
    """
    paths = []
    for role, (src, data) in scenario_data(exp, experiments_dir).items():
        dest = out_dir / f"scenario.{role}.yaml"
        header = f"# {role} scenario of experiment {exp.name}: {src} + overrides\n"
        dest.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        paths.append(dest.resolve())
    return paths[0], paths[1]


def notebook_parameters(exp: Experiment, data_root: Path, report_dir: Path) -> dict[str, Any]:
    """The papermill parameters every notebook may declare (each gets those it declares).

    Parameters
    ----------
    exp : Experiment
    data_root : Path
        Folder of the simulated runs (``data/runs``).
    report_dir : Path
        The report folder of this pipeline run.
    """
    base = (data_root / exp.name).resolve()
    return {
        "experiment": exp.name,
        "scenario": str(report_dir / "scenario.train.yaml"),
        "test_scenario": str(report_dir / "scenario.test.yaml"),
        "train_seed": exp.seeds.train,
        "test_seed": exp.seeds.test,
        "train_run": str(base / f"train-seed{exp.seeds.train}"),
        "test_run": str(base / f"test-seed{exp.seeds.test}"),
        "report_dir": str(report_dir.resolve()),
        "models_enabled": exp.models.enabled,
        "n_estimators": exp.models.n_estimators,
        "every_minutes": exp.models.every_minutes,
        "policies": list(exp.policies),
        "backtest_enabled": exp.backtest.enabled,
        "backtest_replications": exp.backtest.replications,
        "backtest_every_minutes": exp.backtest.every_minutes,
        "backtest_days": exp.backtest.days,
        "langs": list(exp.report.langs),
        "screenshots": exp.report.screenshots,
    }


def _strict(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def kpis_json(result: dict[str, Any]) -> str:
    """A backtest result as strict JSON (NaN and infinities written as ``null``)."""
    return json.dumps(_strict(result), indent=2, default=str, allow_nan=False)


def run_backtest(
    run: Path | str,
    policies: list[str],
    replications: int,
    out_json: Path | str,
    every_minutes: int = POLICY_EVERY_MINUTES,
    days: float | None = None,
    audit: Path | str | None = None,
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
    out_json : path
        Where ``kpis.json`` is written (``{"policies": {p: {metric: {"mean", "ci95"}}}}``).
    every_minutes : int
        Policy call interval. [min]
    days : float, optional
        Replay only this many days of the scenario. [d]
    audit : path, optional
        Keep the autopilot's audit trail here, e.g. ``<run>/audit.duckdb`` where the
        dashboards look for it. A trail left by an earlier replay is replaced.

    Returns
    -------
    dict
        ``{"status": "ok", "kpis": {...}, "kpis_path": str}``.
    """
    from simulator.backtest import run_backtest as backtest
    from simulator.backtest import scenario_of_run

    sc = scenario_of_run(run)
    if days is not None:
        sc = sc.with_overrides(days=days)
    if audit is not None:
        audit = Path(audit)
        for stale in (audit, audit.with_name(audit.name + ".wal")):
            stale.unlink(missing_ok=True)
        audit.parent.mkdir(parents=True, exist_ok=True)
    result = backtest(
        sc, list(policies), [sc.seed + i for i in range(replications)], every_minutes,
        audit_path=audit,
    )  # fmt: skip
    out = Path(out_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(kpis_json(result))
    return {"status": "ok", "kpis": json.loads(out.read_text()), "kpis_path": str(out)}


def _flat(prefix: str, obj: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(obj) if isinstance(obj, list) else str(obj)
    return out


def _new_report_dir(reports_root: Path, name: str) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = reports_root / name / stamp
    path, i = base, 1
    while path.exists():
        path, i = base.with_name(f"{stamp}-{i}"), i + 1
    path.mkdir(parents=True)
    return path.resolve()


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _result_metrics(report_dir: Path) -> dict[str, float]:
    """Numbers worth comparing across pipeline runs: evaluation metrics and policy KPIs."""
    out: dict[str, float] = {}
    ev = report_dir / "evaluation.json"
    if ev.is_file():
        for k, v in json.loads(ev.read_text()).items():
            if _finite(v):
                out[f"eval.{k}"] = float(v)
    kp = report_dir / "kpis.json"
    if kp.is_file():
        for pol, metrics in json.loads(kp.read_text()).get("policies", {}).items():
            for m, v in (metrics or {}).items():
                if isinstance(v, dict) and _finite(v.get("mean")):
                    out[f"kpi.{pol}.{m}"] = float(v["mean"])
    return out


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
    if data_root is None:
        data_root = Path(os.environ.get("GUARDIAN_DATA_DIR", "data")) / "runs"
    report_dir = _new_report_dir(Path(reports_root), exp.name)
    shutil.copy2(path, report_dir / "experiment.yaml")
    write_scenarios(exp, Path(path).resolve().parent, report_dir)
    params = notebook_parameters(exp, Path(data_root), report_dir)
    manifest: dict[str, Any] = {
        "experiment": exp.model_dump(),
        "parameters": params,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "notebooks": [],
        "status": "running",
    }
    mlflow = None
    run_id = None
    if log_mlflow:
        from guardian_lib.models.registry import configure_mlflow

        mlflow = configure_mlflow(MLFLOW_EXPERIMENT)
        run_id = mlflow.start_run(run_name=f"{exp.name} {report_dir.name}").info.run_id
        os.environ["GUARDIAN_MLFLOW_PARENT_RUN_ID"] = run_id
        mlflow.log_params(_flat("", exp.model_dump(), {}))
        mlflow.set_tags({"guardian.experiment": exp.name, "guardian.report_dir": str(report_dir)})
    error: PipelineError | None = None
    runs = []
    failed = True  # until the notebooks have run (an interrupt also counts as a failure)
    try:
        try:
            runs = run_notebooks(
                NOTEBOOKS, nb_dir, report_dir / "notebooks", params, cwd=Path.cwd(), log=log
            )
        except NotebookError as exc:
            error, runs = PipelineError(exc, report_dir), exc.runs
            manifest["error"] = str(error)
        failed = error is not None
    finally:
        manifest["notebooks"] = [r.as_dict() for r in runs]
        reports = sorted(report_dir.glob("report*.html"))
        manifest["status"] = "failed" if failed else "succeeded"
        manifest["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        manifest["reports"] = [p.name for p in reports]
        manifest["mlflow_run_id"] = run_id
        (report_dir / "pipeline.json").write_text(json.dumps(manifest, indent=2, default=str))
        kpis = RunLayout(params["test_run"]).kpis
        if not failed and kpis.is_file():
            shutil.copy2(kpis, report_dir / "kpis.json")
        if mlflow is not None:
            for r in runs:
                mlflow.log_metric(f"duration_s.{Path(r.notebook).stem}", r.duration_s)
            mlflow.log_metrics(_result_metrics(report_dir))
            mlflow.log_artifacts(str(report_dir))
            mlflow.end_run(status="FAILED" if failed else "FINISHED")
            os.environ.pop("GUARDIAN_MLFLOW_PARENT_RUN_ID", None)
    if error is not None:
        raise error
    return PipelineResult(
        experiment=exp.name,
        report_dir=report_dir,
        reports=reports,
        notebooks=sorted((report_dir / "notebooks").glob("*.ipynb")),
        mlflow_run_id=run_id,
        durations_s={r.notebook: r.duration_s for r in runs},
    )
