"""The notebooks: committed clean, and all six run in order with tiny parameters.

``guardian run`` executes them through papermill (the same path as ``make demo``) on the
``tiny`` scenario for one day, with model training and the backtest switched off (their
library functions are tested in tests/guardian_lib/test_models_pipeline.py and
test_dashboards_browser.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from simulator.experiment import NOTEBOOKS

REPO = Path(__file__).resolve().parent.parent
NB_DIR = REPO / "notebooks"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_is_clean(name):
    nb = nbformat.read(NB_DIR / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    for cell in code:
        assert cell.get("outputs") == [], f"{name}: a cell has outputs (strip them)"
        assert cell.get("execution_count") is None, f"{name}: a cell has an execution count"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and code[0] is tagged[0], f"{name}: first code cell is the parameters"
    assert sum(len(c.source.splitlines()) for c in code) < 120, f"{name}: too much logic"


def test_notebooks_do_not_hold_library_logic():
    import re

    for name in NOTEBOOKS:
        nb = nbformat.read(NB_DIR / name, as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        assert not re.search(r"^\s*(async\s+)?(def|class)\s", code, re.M), (
            f"{name} defines functions"
        )
        assert "lambda" not in code, f"{name} defines functions"


def test_notebooks_explain_each_step():
    """Analysts' markdown: a markdown cell before the parameters and before each step."""
    for name in NOTEBOOKS:
        nb = nbformat.read(NB_DIR / name, as_version=4)
        cells = nb.cells
        for i, c in enumerate(cells):
            if c.cell_type == "code" and "import " not in c.source.split("\n", 1)[0]:
                assert i > 0 and cells[i - 1].cell_type == "markdown", (name, i, c.source[:60])


@pytest.fixture(scope="module")
def tiny_pipeline(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("pipeline")
    # The project's own store under a temporary data directory (not a user's tracking
    # URI, whose artifacts MLflow would put in ./mlruns of the repository).
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"GUARDIAN_DATA_DIR": str(tmp / "data"), "MLFLOW_DISABLE_TELEMETRY": "true"}
    sets = [
        "scenario=tiny", "days=1", "models.enabled=false", "backtest.enabled=false",
        "report.langs=[pt-BR]", "report.screenshots=false",
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "guardian_lib.cli", "run", "experiments/baseline.yaml",
           "--reports-dir", str(tmp / "reports"), "--data-dir", str(tmp / "runs")]  # fmt: skip
    for s in sets:
        cmd += ["--set", s]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"guardian run failed:\n{proc.stderr[-5000:]}"
    folders = list((tmp / "reports" / "baseline").iterdir())
    assert len(folders) == 1
    reports = proc.stdout.split()
    assert reports == [str(folders[0] / "report.html")]
    return folders[0]


# One test reads the one pipeline run: under pytest-xdist every worker that ran a test
# of this module would run the whole pipeline again for its copy of the module fixture.
def test_every_notebook_ran_and_the_pipeline_wrote_report_manifest_and_mlflow_run(
    tiny_pipeline,
):
    for name in NOTEBOOKS:
        nb = nbformat.read(tiny_pipeline / "notebooks" / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), f"{name}: not every cell ran"
        errors = [o for c in code for o in c.outputs if o.output_type == "error"]
        assert not errors, (name, errors)
        injected = [c for c in code if "injected-parameters" in c.metadata.get("tags", [])]
        assert injected, f"{name}: papermill injected no parameters"

    manifest = json.loads((tiny_pipeline / "pipeline.json").read_text())
    assert manifest["status"] == "succeeded"
    assert [n["notebook"] for n in manifest["notebooks"]] == list(NOTEBOOKS)
    assert manifest["reports"] == ["report.html"]
    html = (tiny_pipeline / "report.html").read_text()
    assert '<html lang="pt-BR">' in html
    from pypdf import PdfReader  # notebook 06 also printed the report

    pages = [
        " ".join(p.extract_text().split()) for p in PdfReader(tiny_pipeline / "report.pdf").pages
    ]
    assert len(pages) >= 2 and "Resumo" in pages[0] and f"1 / {len(pages)}" in pages[0]
    assert (tiny_pipeline / "scenario.train.yaml").is_file()

    from mlflow import MlflowClient

    store = tiny_pipeline.parents[2] / "data" / "mlflow"
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["models.enabled"] == "False"
    assert "duration_s.01_simulate" in run.data.metrics
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"report.html", "notebooks", "pipeline.json"} <= arts
    # Beside the database, not in the directory the command ran from.
    assert list((store / "artifacts").rglob("pipeline.json"))
