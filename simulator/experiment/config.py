"""Experiment files: the validated model, its scenarios and the notebooks' parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.layout import ReportLayout
from guardian_lib.schema import MODEL_EVERY_MINUTES, POLICY_EVERY_MINUTES
from simulator.scenario import load_scenario, read_yaml_mapping, scenario_file

__all__ = [
    "NOTEBOOKS",
    "Experiment",
    "load_experiment",
    "scenario_data",
    "write_scenarios",
    "notebook_parameters",
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
    #: Processes for the replays; None: one per (seed, policy), at most one per CPU.
    workers: Annotated[int | None, Field(ge=1, le=256)] = None


class Report(_Strict):
    """Report languages (the first is ``report.html``, others ``report.<lang>.html``),
    whether to save a PNG of each screen and whether to print ``report.pdf`` in the first
    language (both need Debian's chromium)."""

    langs: Annotated[list[str], Field(min_length=1)] = ["en"]
    screenshots: bool = True
    pdf: bool = True


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
        data = deep_merge(deep_merge(read_yaml_mapping(src), exp.overrides), extra)
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
        unknown scenario, a scenario that its overrides make invalid (names the
        experiment, the role and the scenario field), or a ``backtest.every_minutes`` that
        is not a multiple of the test scenario's tick.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: experiment file not found")
    data = read_yaml_mapping(path)
    for key, value in (overrides or {}).items():
        _set_dotted(data, key, value)
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc)) from None
    for role, (src, scenario) in scenario_data(exp, path.resolve().parent).items():
        try:
            loaded = load_scenario(scenario)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {role} scenario ({src} + overrides): {exc}") from None
        every, tick = exp.backtest.every_minutes, loaded.tick_minutes
        if role == "test" and exp.backtest.enabled and every % tick:
            raise ConfigError(
                f"{path}: backtest.every_minutes: expected a multiple of the test scenario's "
                f"{tick}-minute tick, got {every}"
            )
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
        dest = ReportLayout(out_dir).scenario(role)
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
        "scenario": str(ReportLayout(report_dir).scenario("train")),
        "test_scenario": str(ReportLayout(report_dir).scenario("test")),
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
        "backtest_workers": exp.backtest.workers,
        "langs": list(exp.report.langs),
        "screenshots": exp.report.screenshots,
        "pdf": exp.report.pdf,
    }
