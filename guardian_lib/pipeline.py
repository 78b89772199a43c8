"""``guardian run experiments/<name>.yaml``: the notebooks in order, through papermill.

An experiment file names a scenario, seeds, models and policies (see
``docs/reports.md``). :func:`run_experiment` runs ``notebooks/01_simulate.ipynb`` …
``06_report.ipynb`` with parameters derived from it and writes::

    reports/<experiment>/<timestamp>/
        notebooks/NN_*.ipynb     executed notebooks (outputs included)
        report.html              the self-contained offline report (+ report.<lang>.html)
        pipeline.json            what ran, with which parameters, how long, and the outcome

It logs one MLflow parent run (parameters, per-notebook durations, the notebooks and the
report as artifacts) to the local SQLite store under ``data/mlflow`` unless
``MLFLOW_TRACKING_URI`` says otherwise. A failing notebook stops the run: the error names
the notebook, the cell and the exception, and everything produced so far is kept (the
failing notebook is saved with its error output).

The library never imports the simulator: notebook 01 does, and the model and backtest
steps call the ``guardian`` CLI through :func:`train_and_evaluate` and
:func:`run_backtest`, which report "not available" while those commands are missing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from math import inf
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guardian_lib.errors import ConfigError, GuardianError, validation_message

__all__ = [
    "NOTEBOOKS",
    "Experiment",
    "PipelineError",
    "PipelineResult",
    "load_experiment",
    "resolve_scenario",
    "write_scenarios",
    "notebook_parameters",
    "run_experiment",
    "train_and_evaluate",
    "run_backtest",
    "guardian_command_available",
    "configure_mlflow",
    "fetch_shap_importance",
    "MLFLOW_EXPERIMENT",
]

#: The notebooks, in the order the pipeline runs them.
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
    """Seeds of the simulated runs: one to train on, one (unseen) to evaluate on."""

    train: int = 7
    test: int = 8


class Models(_Strict):
    """Model training settings (passed to ``guardian train``)."""

    enabled: bool = True
    n_estimators: Annotated[int, Field(ge=1, le=5000)] = 200
    every_minutes: Annotated[int, Field(ge=5, le=1440)] = 15


class Backtest(_Strict):
    """Closed-loop backtest settings (passed to ``guardian backtest``)."""

    enabled: bool = True
    replications: Annotated[int, Field(ge=1, le=100)] = 3
    every_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
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


class PipelineError(GuardianError):
    """A notebook failed; the message names the notebook, the cell and the error.

    Attributes
    ----------
    notebook : str
    cell_index : int or None
    report_dir : Path
        Where what was produced before the failure is kept.
    """

    def __init__(
        self, message: str, notebook: str, cell_index: int | None, report_dir: Path
    ) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell_index = cell_index
        self.report_dir = report_dir


class PipelineResult(BaseModel):
    """What :func:`run_experiment` produced."""

    experiment: str
    report_dir: Path
    reports: list[Path]
    notebooks: list[Path]
    mlflow_run_id: str | None
    durations_s: dict[str, float]


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {key}={value!r}: {p!r} is not a mapping")
    node[parts[-1]] = value


def load_experiment(path: Path | str, overrides: dict[str, Any] | None = None) -> Experiment:
    """Read and validate an experiment file.

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
        Missing file, bad YAML or an invalid field (names the file and the field path).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = (
            _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        )
    return out


def resolve_scenario(name: str, experiments_dir: Path) -> Path:
    """The scenario file an experiment names: a path, or ``<experiments>/scenarios/<name>.yaml``.

    Raises
    ------
    ConfigError
        No such file (the message lists the shipped scenarios).
    """
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path.resolve()
    shipped = experiments_dir / "scenarios"
    candidate = shipped / f"{name}.yaml"
    if candidate.is_file():
        return candidate.resolve()
    names = sorted(p.stem for p in shipped.glob("*.yaml"))
    raise ConfigError(f"scenario {name!r} not found: expected a YAML file or one of {names}")


def write_scenarios(exp: Experiment, experiments_dir: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write the train and test scenario files of ``exp`` (with its overrides) to ``out_dir``.

    The scenario YAML is read as plain data (the library does not import the simulator,
    which validates it when notebook 01 loads it). ``days`` and ``overrides`` apply to
    both; ``test_overrides`` to the test scenario only.

    Returns
    -------
    (Path, Path)
        ``scenario.train.yaml`` and ``scenario.test.yaml``.
    """
    paths = []
    for role, name, extra in (
        ("train", exp.scenario, {}),
        ("test", exp.test_scenario or exp.scenario, exp.test_overrides),
    ):
        src = resolve_scenario(name, experiments_dir)
        data = yaml.safe_load(src.read_text(encoding="utf-8")) or {}
        data = _deep_merge(_deep_merge(data, exp.overrides), extra)
        if exp.days is not None:
            data["days"] = exp.days
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


def configure_mlflow(experiment: str = MLFLOW_EXPERIMENT):
    """Point MLflow at the project's tracking store and select ``experiment``.

    The one MLflow configuration of the project (see
    :func:`guardian_lib.models.registry.configure_mlflow`): ``MLFLOW_TRACKING_URI`` wins,
    else local SQLite at an absolute path under ``data/mlflow``; telemetry off.
    """
    from guardian_lib.models.registry import configure_mlflow as _configure

    return _configure(experiment)


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


def _declared(nb_path: Path) -> set[str]:
    import papermill as pm

    return set(pm.inspect_notebook(str(nb_path)))


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

    Returns
    -------
    PipelineResult

    Raises
    ------
    ConfigError
        The experiment file is invalid or a notebook is missing.
    PipelineError
        A notebook failed (its error and cell are in the message; outputs are kept).
    """
    say = log or (lambda _msg: None)
    exp = load_experiment(path, overrides)
    nb_dir = Path(notebooks_dir).resolve()
    missing = [n for n in NOTEBOOKS if not (nb_dir / n).is_file()]
    if missing:
        raise ConfigError(f"{nb_dir}: notebook(s) not found: {missing}")
    exp_dir = Path(path).resolve().parent
    for name in (exp.scenario, exp.test_scenario or exp.scenario):
        resolve_scenario(name, exp_dir)  # fail before creating the report folder
    if data_root is None:
        data_root = Path(os.environ.get("GUARDIAN_DATA_DIR", "data")) / "runs"
    report_dir = _new_report_dir(Path(reports_root), exp.name)
    out_nb = report_dir / "notebooks"
    out_nb.mkdir()
    shutil.copy2(path, report_dir / "experiment.yaml")
    write_scenarios(exp, exp_dir, report_dir)
    params = notebook_parameters(exp, Path(data_root), report_dir)
    manifest: dict[str, Any] = {
        "experiment": exp.model_dump(),
        "parameters": params,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "notebooks": [],
        "status": "running",
    }
    mlflow = configure_mlflow() if log_mlflow else None
    run_id = None
    if mlflow is not None:
        active = mlflow.start_run(run_name=f"{exp.name} {report_dir.name}")
        run_id = active.info.run_id
        os.environ["GUARDIAN_MLFLOW_PARENT_RUN_ID"] = run_id
        mlflow.log_params(_flat("", exp.model_dump(), {}))
        mlflow.set_tags({"guardian.experiment": exp.name, "guardian.report_dir": str(report_dir)})
    durations: dict[str, float] = {}
    error: PipelineError | None = None
    failed = True  # until the notebooks have run (an interrupt also counts as a failure)
    try:
        error = _run_notebooks(nb_dir, out_nb, params, manifest, durations, report_dir, say)
        failed = error is not None
    finally:
        reports = sorted(report_dir.glob("report*.html"))
        manifest["status"] = "failed" if failed else "succeeded"
        manifest["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        manifest["reports"] = [p.name for p in reports]
        manifest["mlflow_run_id"] = run_id
        (report_dir / "pipeline.json").write_text(json.dumps(manifest, indent=2, default=str))
        kpis = Path(params["test_run"]) / "kpis.json"
        if not failed and kpis.is_file():
            shutil.copy2(kpis, report_dir / "kpis.json")
        if mlflow is not None:
            for name, sec in durations.items():
                mlflow.log_metric(f"duration_s.{Path(name).stem}", sec)
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
        notebooks=sorted(out_nb.glob("*.ipynb")),
        mlflow_run_id=run_id,
        durations_s=durations,
    )


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != inf


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


def _run_notebooks(
    nb_dir: Path,
    out_nb: Path,
    params: dict[str, Any],
    manifest: dict[str, Any],
    durations: dict[str, float],
    report_dir: Path,
    say: Any,
) -> PipelineError | None:
    import papermill as pm

    for name in NOTEBOOKS:
        src, dst = nb_dir / name, out_nb / name
        mine = {k: v for k, v in params.items() if k in _declared(src)}
        say(f"running {name} …")
        t0 = time.perf_counter()
        entry: dict[str, Any] = {"notebook": name, "parameters": mine}
        try:
            pm.execute_notebook(
                str(src), str(dst), parameters=mine, kernel_name="python3",
                cwd=str(Path.cwd()), progress_bar=False, log_output=False,
            )  # fmt: skip
        except pm.PapermillExecutionError as exc:
            durations[name] = round(time.perf_counter() - t0, 2)
            source = (exc.source or "").strip()
            msg = (
                f"notebook {name} failed in cell {exc.cell_index} (execution count "
                f"{exc.exec_count}): {exc.ename}: {exc.evalue}\n--- cell source ---\n{source}\n"
                f"--- executed notebook (with the error) kept at {dst}; report folder "
                f"{report_dir}"
            )
            entry |= {"status": "failed", "duration_s": durations[name], "error": msg}
            manifest["notebooks"].append(entry)
            manifest["error"] = msg
            return PipelineError(msg, name, exc.cell_index, report_dir)
        durations[name] = round(time.perf_counter() - t0, 2)
        entry |= {"status": "succeeded", "duration_s": durations[name]}
        manifest["notebooks"].append(entry)
        say(f"  {name} done in {durations[name]:.1f} s")
    return None


# --- adapters to the model and backtest commands (issues 4 and 5) --------------------------


def _guardian(*args: str) -> list[str]:
    return [sys.executable, "-m", "guardian_lib.cli", *args]


def guardian_command_available(name: str) -> bool:
    """Whether ``guardian <name>`` exists in this installation (asks the CLI itself)."""
    proc = subprocess.run(_guardian(name, "--help"), capture_output=True, text=True)
    return proc.returncode == 0


def _call(args: list[str], what: str) -> str:
    proc = subprocess.run(_guardian(*args), capture_output=True, text=True)
    if proc.returncode != 0:
        raise GuardianError(
            f"`guardian {' '.join(args)}` ({what}) failed with exit code {proc.returncode}:\n"
            f"{proc.stderr.strip()[-4000:]}"
        )
    return proc.stdout


def train_and_evaluate(
    train_run: Path | str,
    test_run: Path | str,
    out_dir: Path | str,
    n_estimators: int = 200,
    every_minutes: int = 15,
    seed: int = 0,
) -> dict[str, Any]:
    """Train on ``train_run``, then score and evaluate on ``test_run``.

    Calls ``guardian train``, ``guardian score`` and ``guardian evaluate``.

    Parameters
    ----------
    train_run, test_run : path
    out_dir : path
        Where ``evaluation.json`` is written.
    n_estimators : int, default 200
    every_minutes : int, default 15
        Spacing of training and scoring rows. [min]
    seed : int, default 0

    Returns
    -------
    dict
        ``{"status": "ok", "metrics": {...}, "metrics_path": str}``, or
        ``{"status": "not_available", "reason": ...}`` when the model commands are not
        installed yet.
    """
    for cmd in ("train", "score", "evaluate"):
        if not guardian_command_available(cmd):
            return {"status": "not_available", "reason": f"`guardian {cmd}` is not installed"}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    every = str(every_minutes)
    _call(["train", "--run", str(train_run), "--n-estimators", str(n_estimators),
           "--every-minutes", every, "--seed", str(seed)], "training")  # fmt: skip
    _call(["score", "--run", str(test_run), "--every-minutes", every], "scoring")
    metrics_path = out / "evaluation.json"
    _call(["evaluate", "--run", str(test_run), "--json", str(metrics_path),
           "--every-minutes", every], "evaluation")  # fmt: skip
    metrics = json.loads(metrics_path.read_text())
    shap = fetch_shap_importance(test_run)
    return {"status": "ok", "metrics": metrics, "metrics_path": str(metrics_path), "shap": shap}


def fetch_shap_importance(
    run: Path | str, model: str = "network-guardian", alias: str = "champion"
) -> str:
    """Copy the registered model's global SHAP importance into ``<run>/models/``.

    ``guardian train`` logs ``shap_global_importance.csv`` with the model it registers;
    the dashboards read it from the run folder.

    Returns
    -------
    str
        The file written, or ``"unavailable: <reason>"`` (no such model, alias or artifact).
    """
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    dest = Path(run) / "models"
    try:
        client = MlflowClient(configure_mlflow().get_tracking_uri())
        mv = client.get_model_version_by_alias(model, alias)
        dest.mkdir(parents=True, exist_ok=True)
        path = client.download_artifacts(mv.run_id, "shap_global_importance.csv", str(dest))
    except Exception as exc:  # noqa: BLE001 (reported to the caller, with the model and alias)
        return f"unavailable: {model}@{alias}: {type(exc).__name__}: {exc}"
    return str(path)


def run_backtest(
    run: Path | str,
    policies: list[str],
    replications: int,
    out_json: Path | str,
    every_minutes: int = 15,
    days: float | None = None,
    audit: Path | str | None = None,
) -> dict[str, Any]:
    """Compare policies in the closed loop (``guardian backtest --run … --json …``).

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
    every_minutes : int, default 15
        Policy call interval. [min]
    days : float, optional
        Replay only this many days of the scenario. [d]
    audit : path, optional
        Keep the autopilot's audit trail here (``guardian backtest --audit``), e.g.
        ``<run>/audit.duckdb`` where the dashboards look for it. A trail left by an
        earlier replay of the same run is replaced.

    Returns
    -------
    dict
        ``{"status": "ok", "kpis": {...}, "kpis_path": str}`` or
        ``{"status": "not_available", "reason": ...}``.
    """
    if not guardian_command_available("backtest"):
        return {"status": "not_available", "reason": "`guardian backtest` is not installed"}
    args = ["backtest", "--run", str(run), "--json", str(out_json), "--policies",
            ",".join(policies), "--seeds", str(replications), "--every-minutes",
            str(every_minutes)]  # fmt: skip
    if days is not None:
        args += ["--days", str(days)]
    if audit is not None:
        Path(audit).unlink(missing_ok=True)
        args += ["--audit", str(audit)]
    _call(args, "backtest")
    kpis = json.loads(Path(out_json).read_text())
    return {"status": "ok", "kpis": kpis, "kpis_path": str(out_json)}
