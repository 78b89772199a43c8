"""``guardian run``: experiment files, scenario overrides validated at load, failures, MLflow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

import simulator.experiment as pipeline
from guardian_lib.errors import ConfigError
from guardian_lib.models.workflow import fetch_shap_importance
from guardian_lib.notebooks import NotebookError, run_notebooks
from simulator.experiment import (
    NOTEBOOKS,
    PipelineError,
    load_experiment,
    notebook_parameters,
    run_experiment,
    write_scenarios,
)

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"


@pytest.mark.parametrize("name", ["baseline", "storm_season", "vendor_mix"])
def test_shipped_experiments_are_valid_and_name_shipped_scenarios(name, tmp_path):
    exp = load_experiment(EXPERIMENTS / f"{name}.yaml")
    assert exp.name == name
    assert exp.seeds.train != exp.seeds.test  # evaluated on a run the models did not see
    train, test = write_scenarios(exp, EXPERIMENTS, tmp_path)
    for path in (train, test):
        data = yaml.safe_load(path.read_text())
        assert data["name"] == exp.scenario and "topology" in data


def test_overrides_reach_the_scenario_files(tmp_path):
    storm = load_experiment(EXPERIMENTS / "storm_season.yaml")
    train, test = write_scenarios(storm, EXPERIMENTS, tmp_path)
    for path in (train, test):
        assert yaml.safe_load(path.read_text())["weather"]["storms_per_year_per_region"] == 40
    mix = load_experiment(EXPERIMENTS / "vendor_mix.yaml", {"days": 2})
    train, test = write_scenarios(mix, EXPERIMENTS, tmp_path)
    tr, te = yaml.safe_load(train.read_text()), yaml.safe_load(test.read_text())
    assert te["topology"]["vendor_mix"]["zte"] == 0.5 and tr["topology"]["vendor_mix"]["zte"] == 0.3
    assert tr["topology"]["regions"] == te["topology"]["regions"]  # deep merge keeps the rest
    assert tr["days"] == te["days"] == 2


def test_errors_name_the_file_and_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nscenario: tiny\nmodels: {n_estimators: many}\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: models.n_estimators: .*'many'"):
        load_experiment(bad)
    bad.write_text("name: x\nscenario: tiny\nunknown_key: 1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown_key: Extra inputs"):
        load_experiment(bad)
    with pytest.raises(ConfigError, match="experiment file not found"):
        load_experiment(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="scenario 'atlantis' not found.*'tiny'"):
        load_experiment(EXPERIMENTS / "baseline.yaml", {"scenario": "atlantis"})


def test_scenarios_and_policies_are_validated_when_the_experiment_loads():
    with pytest.raises(ConfigError, match=r"baseline.yaml: train scenario .*small.yaml.*days"):
        load_experiment(EXPERIMENTS / "baseline.yaml", {"overrides": {"days": -1}})
    with pytest.raises(ConfigError, match=r"test scenario .*topology.regions"):
        load_experiment(
            EXPERIMENTS / "baseline.yaml", {"test_overrides": {"topology": {"regions": "x"}}}
        )
    with pytest.raises(ConfigError, match=r"policies: .*unknown policies \['psychic'\]"):
        load_experiment(EXPERIMENTS / "baseline.yaml", {"policies": ["rules", "psychic"]})


def test_a_backtest_interval_off_the_tick_is_refused_when_the_experiment_loads():
    # It used to load and run every 5 min (7 / 5 rounded) while kpis.json said 7.
    with pytest.raises(ConfigError, match=r"backtest.every_minutes: .*5-minute tick, got 7"):
        load_experiment(EXPERIMENTS / "baseline.yaml", {"backtest.every_minutes": 7})
    assert load_experiment(EXPERIMENTS / "baseline.yaml", {"backtest.every_minutes": 10})
    # Without a backtest the interval is not used.
    load_experiment(
        EXPERIMENTS / "baseline.yaml", {"backtest.every_minutes": 7, "backtest.enabled": False}
    )


def test_parameters_point_at_absolute_run_folders(tmp_path):
    exp = load_experiment(EXPERIMENTS / "baseline.yaml")
    params = notebook_parameters(exp, Path("data/runs"), tmp_path)
    assert Path(params["train_run"]).is_absolute()
    assert params["train_run"].endswith("baseline/train-seed7")
    assert params["test_run"].endswith("baseline/test-seed8")
    assert params["policies"] == ["reactive", "rules", "autopilot", "oracle"]
    # The demo's headline rests on >= 5 replications x 7 days; workers: one per CPU.
    assert params["backtest_replications"] >= 5 and params["backtest_days"] == 7
    assert params["backtest_workers"] is None
    with pytest.raises(ConfigError, match="backtest.workers"):
        load_experiment(EXPERIMENTS / "baseline.yaml", {"backtest.workers": 0})


def _failing_notebooks(tmp_path: Path) -> Path:
    """The real notebooks, except that 01 fails in its second code cell."""
    nb_dir = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", nb_dir)
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    params = nbformat.v4.new_code_cell("train_run = ''")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell("open(train_run + '/marker.txt', 'w').write('produced')"),
        nbformat.v4.new_code_cell("raise RuntimeError('storm took the fibre')"),
    ]
    nbformat.write(nb, nb_dir / NOTEBOOKS[0])
    return nb_dir


@pytest.fixture
def restore_mlflow():
    """run_experiment points MLflow (process-global) at a temporary store: point it back."""
    import mlflow

    before = mlflow.get_tracking_uri()
    yield
    mlflow.end_run()
    mlflow.set_tracking_uri(before)


def test_a_failing_notebook_stops_the_run_and_keeps_what_was_produced(
    tmp_path, monkeypatch, restore_mlflow
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    data_root = tmp_path / "runs"
    (data_root / "baseline" / "train-seed7").mkdir(parents=True)
    with pytest.raises(PipelineError) as info:
        run_experiment(
            EXPERIMENTS / "baseline.yaml",
            reports_root=tmp_path / "reports",
            data_root=data_root,
            notebooks_dir=_failing_notebooks(tmp_path),
        )
    err = info.value
    msg = str(err)
    assert err.notebook == "01_simulate.ipynb" and err.cell_index is not None
    assert "01_simulate.ipynb failed in cell" in msg
    assert "RuntimeError: storm took the fibre" in msg
    assert "raise RuntimeError('storm took the fibre')" in msg  # the failing cell's source
    assert (data_root / "baseline" / "train-seed7" / "marker.txt").read_text() == "produced"
    kept = err.report_dir / "notebooks" / "01_simulate.ipynb"
    outputs = [o for c in nbformat.read(kept, as_version=4).cells for o in c.get("outputs", [])]
    assert any(o.get("ename") == "RuntimeError" for o in outputs)
    assert not (err.report_dir / "notebooks" / "02_data_quality.ipynb").exists()
    manifest = json.loads((err.report_dir / "pipeline.json").read_text())
    assert manifest["status"] == "failed" and manifest["notebooks"][0]["status"] == "failed"

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.params["name"] == "baseline" and run.data.params["scenario"] == "small"
    arts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"notebooks", "pipeline.json", "experiment.yaml"} <= arts


def test_missing_notebooks_are_reported(tmp_path):
    with pytest.raises(ConfigError, match="notebook\\(s\\) not found"):
        run_experiment(
            EXPERIMENTS / "baseline.yaml",
            reports_root=tmp_path,
            notebooks_dir=tmp_path,
            log_mlflow=False,
        )


def test_shap_importance_says_why_it_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    text = fetch_shap_importance(tmp_path, model="no-such-model")
    assert text.startswith("unavailable: no-such-model@champion")


def test_notebook_kernels_talk_over_unix_sockets_not_tcp(tmp_path, capfd):
    """The kernel listens on no TCP port (no warning about unencrypted TCP on the run's
    terminal); a runtime folder too long for a socket's path falls back to TCP."""
    src = tmp_path / "src"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    nb.cells = [nbformat.v4.new_code_cell(
        "from ipykernel.kernelapp import IPKernelApp\n"
        "open('transport.txt', 'w').write(IPKernelApp.instance().transport)"
    )]  # fmt: skip
    nbformat.write(nb, src / "t.ipynb")
    run_notebooks(["t.ipynb"], src, tmp_path / "out", {}, cwd=tmp_path)
    assert (tmp_path / "transport.txt").read_text() == "ipc"
    assert "TCP without encryption" not in capfd.readouterr().err

    from guardian_lib import notebooks

    assert notebooks._kernel_manager_class() is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / ("x" * 60)))
        assert notebooks._kernel_manager_class() is None


def test_the_notebook_runner_runs_in_the_given_directory_and_names_the_failing_cell(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name, body in (("a.ipynb", "open('made-by-a.txt', 'w').write(str(x))"),
                       ("b.ipynb", "1 / x")):  # fmt: skip
        nb = nbformat.v4.new_notebook()
        nb.metadata = {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        }
        params = nbformat.v4.new_code_cell("x = 1")
        params.metadata["tags"] = ["parameters"]
        nb.cells = [params, nbformat.v4.new_code_cell(body)]
        nbformat.write(nb, src / name)
    work = tmp_path / "work"
    work.mkdir()
    runs = run_notebooks(["a.ipynb"], src, tmp_path / "out", {"x": 5, "y": 1}, cwd=work)
    assert (work / "made-by-a.txt").read_text() == "5"
    assert [(r.notebook, r.status, r.parameters) for r in runs] == [
        ("a.ipynb", "succeeded", {"x": 5})
    ]
    with pytest.raises(NotebookError) as info:
        run_notebooks(["a.ipynb", "b.ipynb"], src, tmp_path / "out", {"x": 0}, cwd=work)
    err = info.value
    assert err.notebook == "b.ipynb" and err.cell_index is not None
    assert "ZeroDivisionError" in str(err) and "1 / x" in str(err)
    assert [r.status for r in err.runs] == ["succeeded", "failed"]
    assert err.executed == tmp_path / "out" / "b.ipynb" and err.executed.is_file()


def test_public_names_exist():
    for name in pipeline.__all__:
        assert hasattr(pipeline, name), name


def test_guardian_run_is_registered_by_the_simulator_not_the_library():
    from importlib.metadata import entry_points

    import typer

    from guardian_lib.dashboards.cli import register as register_dashboards
    from simulator.experiment.cli import register as register_run

    eps = {ep.name: ep.value for ep in entry_points(group="guardian.commands")}
    assert eps["experiment"] == "simulator.experiment.cli:register"
    for register, expected in ((register_dashboards, {"dashboard", "report"}),
                               (register_run, {"run"})):  # fmt: skip
        app = typer.Typer()
        register(app)
        assert {c.name for c in app.registered_commands} == expected


def test_the_notebook_runner_counts_the_cpu_of_the_kernel_and_of_its_children(tmp_path):
    """``cpu_s`` includes a process the kernel started (as a backtest's workers are)."""
    src = tmp_path / "src"
    src.mkdir()
    burn = (
        "import subprocess, sys\n"
        "code = 'import time\\nwhile time.process_time() < 2.0: pass\\n"
        "print(time.process_time())'\n"
        "child_cpu_s = float(subprocess.run([sys.executable, '-c', code], check=True,\n"
        "                    capture_output=True, text=True).stdout)\n"
        "open('child_cpu_s.txt', 'w').write(str(child_cpu_s))"
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    }
    nb.cells = [nbformat.v4.new_code_cell(burn)]
    nbformat.write(nb, src / "burn.ipynb")
    (record,) = run_notebooks(["burn.ipynb"], src, tmp_path / "out", {}, cwd=tmp_path)
    child_cpu_s = float((tmp_path / "child_cpu_s.txt").read_text())
    assert child_cpu_s >= 2.0
    assert record.cpu_s >= child_cpu_s
    assert record.as_dict()["cpu_s"] == record.cpu_s
