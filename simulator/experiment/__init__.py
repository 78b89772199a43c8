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

from simulator.experiment.config import (
    NOTEBOOKS,
    Experiment,
    deep_merge,
    load_experiment,
    notebook_parameters,
    scenario_data,
    write_scenarios,
)
from simulator.experiment.run import (
    PipelineError,
    PipelineResult,
    kpis_json,
    run_backtest,
    run_experiment,
)
from simulator.experiment.tracking import MLFLOW_EXPERIMENT

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
