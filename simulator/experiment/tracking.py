"""The MLflow parent run of ``guardian run``: parameters, durations, results, artifacts.

Logged to the project's tracking store (:func:`guardian_lib.models.registry.configure_mlflow`:
local SQLite under ``data/mlflow`` unless ``MLFLOW_TRACKING_URI`` says otherwise). While
the notebooks run, ``GUARDIAN_MLFLOW_PARENT_RUN_ID`` holds the parent run's id.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from guardian_lib.layout import ReportLayout

if TYPE_CHECKING:  # pragma: no cover
    from simulator.experiment.config import Experiment

__all__ = ["MLFLOW_EXPERIMENT", "PARENT_RUN_ENV", "ParentRun", "result_metrics"]

#: MLflow experiment holding the pipeline's parent runs.
MLFLOW_EXPERIMENT = "network-guardian-pipeline"
#: Environment variable holding the parent run's id while the notebooks run.
PARENT_RUN_ENV = "GUARDIAN_MLFLOW_PARENT_RUN_ID"


def _flat(prefix: str, obj: Any, out: dict[str, str]) -> dict[str, str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = json.dumps(obj) if isinstance(obj, list) else str(obj)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def result_metrics(report_dir: Path) -> dict[str, float]:
    """Numbers worth comparing across pipeline runs: evaluation metrics and policy KPIs."""
    out: dict[str, float] = {}
    ev = ReportLayout(report_dir).evaluation
    if ev.is_file():
        for k, v in json.loads(ev.read_text()).items():
            if _finite(v):
                out[f"eval.{k}"] = float(v)
    kp = ReportLayout(report_dir).kpis
    if kp.is_file():
        for pol, metrics in json.loads(kp.read_text()).get("policies", {}).items():
            for m, v in (metrics or {}).items():
                if isinstance(v, dict) and _finite(v.get("mean")):
                    out[f"kpi.{pol}.{m}"] = float(v["mean"])
    return out


@dataclass
class ParentRun:
    """An open MLflow parent run of one experiment run."""

    mlflow: Any
    run_id: str

    @classmethod
    def start(cls, exp: Experiment, report_dir: Path) -> ParentRun:
        """Open the parent run and log the experiment's parameters and tags."""
        from guardian_lib.models.registry import configure_mlflow

        mlflow = configure_mlflow(MLFLOW_EXPERIMENT)
        run_id = mlflow.start_run(run_name=f"{exp.name} {report_dir.name}").info.run_id
        os.environ[PARENT_RUN_ENV] = run_id
        mlflow.log_params(_flat("", exp.model_dump(), {}))
        mlflow.set_tags({"guardian.experiment": exp.name, "guardian.report_dir": str(report_dir)})
        return cls(mlflow, run_id)

    def finish(self, report_dir: Path, durations_s: dict[str, float], failed: bool) -> None:
        """Log durations [s], result metrics and the report folder; close the run."""
        for name, sec in durations_s.items():
            self.mlflow.log_metric(f"duration_s.{Path(name).stem}", sec)
        self.mlflow.log_metrics(result_metrics(report_dir))
        self.mlflow.log_artifacts(str(report_dir))
        self.mlflow.end_run(status="FAILED" if failed else "FINISHED")
        os.environ.pop(PARENT_RUN_ENV, None)
