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
        pipeline.json            what ran, with which parameters, how long (wall and CPU), and the outcome

It logs one MLflow parent run (parameters, per-notebook durations, the notebooks and the
report as artifacts) to the project's tracking store. A failing notebook stops the run:
the error names the notebook, the cell and the exception, and everything produced so far
is kept. The notebooks call library functions in their own process:
:func:`guardian_lib.models.workflow.train_and_evaluate` and :func:`run_backtest`.
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "NOTEBOOKS": ".config",
        "MLFLOW_EXPERIMENT": ".tracking",
        "Experiment": ".config",
        "PipelineError": ".run",
        "PipelineResult": ".run",
        "load_experiment": ".config",
        "scenario_data": ".config",
        "write_scenarios": ".config",
        "notebook_parameters": ".config",
        "run_experiment": ".run",
        "run_backtest": ".run",
        "kpis_json": ".run",
        "deep_merge": ".config",
    },
)
