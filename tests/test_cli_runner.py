"""tests/cli_runner.py: ``guardian`` in the test process, as a process would behave."""

from __future__ import annotations

import os
import warnings

import cli_runner


def test_exit_codes_output_and_the_environment_put_back(tmp_path):
    before = dict(os.environ)
    res = cli_runner.run_guardian("--help")
    assert res.returncode == 0 and "--debug" in res.stdout
    res = cli_runner.run_guardian(
        "backtest", "--run", str(tmp_path), env={"CLI_RUNNER_PROBE": "1"}, check=False
    )
    assert res.returncode == 2 and res.stderr.startswith("error: ") and "run.json" in res.stderr
    assert dict(os.environ) == before


def test_warnings_reach_stderr_as_in_a_process(monkeypatch):
    def warn_and_exit(argv):
        warnings.warn("a user-visible warning", UserWarning, stacklevel=1)
        warnings.warn("hidden outside __main__", DeprecationWarning, stacklevel=1)
        raise SystemExit(3)

    monkeypatch.setattr("guardian_lib.cli.main", warn_and_exit)
    res = cli_runner.run_guardian("anything", check=False)
    assert res.returncode == 3
    assert "UserWarning: a user-visible warning" in res.stderr
    assert "hidden outside __main__" not in res.stderr


def test_mlflow_tracking_uri_and_experiment_put_back(tmp_path):
    import mlflow
    from mlflow.tracking import fluent

    before = (dict(os.environ), mlflow.get_tracking_uri(), fluent._active_experiment_id)
    env = {"GUARDIAN_DATA_DIR": str(tmp_path / "data"), "MLFLOW_TRACKING_URI": None}
    res = cli_runner.run_guardian("models", "list", env=env, check=False)
    assert (tmp_path / "data" / "mlflow" / "mlflow.db").exists(), res.stderr  # it did set them
    assert (dict(os.environ), mlflow.get_tracking_uri(), fluent._active_experiment_id) == before


def test_calling_main_again_registers_each_command_group_once():
    from guardian_lib.cli import app

    cli_runner.run_guardian("--help")
    names = [g.name for g in app.registered_groups] + [c.name for c in app.registered_commands]
    cli_runner.run_guardian("--help")
    again = [g.name for g in app.registered_groups] + [c.name for c in app.registered_commands]
    assert again == names and len(set(names)) == len(names)
