"""Where the MLflow store and its artifacts live (``guardian_lib.models.registry``)."""

import os

import pytest

from guardian_lib.models import registry


@pytest.fixture
def mlflow_state(monkeypatch):
    """MLflow's tracking URI and this module's record of it, put back afterwards."""
    import mlflow

    before = mlflow.get_tracking_uri()
    monkeypatch.setattr(registry, "_uri_set_here", None, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield mlflow
    mlflow.end_run()
    mlflow.set_tracking_uri(before)


def test_artifacts_stay_beside_the_database_whatever_the_working_directory(
    tmp_path, monkeypatch, mlflow_state
):
    mlflow = mlflow_state
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GUARDIAN_DATA_DIR", str(tmp_path / "a"))
    registry.configure_mlflow("paths")
    with mlflow.start_run():
        mlflow.log_text("hello", "note.txt")
    assert list((tmp_path / "a" / "mlflow" / "artifacts").rglob("note.txt"))
    assert not (elsewhere / "mlruns").exists()
    # MLflow copied the URI into MLFLOW_TRACKING_URI; another data directory in the same
    # process (a notebook, a test) still gets its own store.
    assert mlflow.get_tracking_uri() == os.environ["MLFLOW_TRACKING_URI"]
    monkeypatch.setenv("GUARDIAN_DATA_DIR", str(tmp_path / "b"))
    assert registry.tracking_uri() == f"sqlite:///{tmp_path / 'b' / 'mlflow' / 'mlflow.db'}"


def test_a_users_tracking_uri_wins(tmp_path, monkeypatch, mlflow_state):
    monkeypatch.chdir(tmp_path)
    own = f"sqlite:///{tmp_path / 'own.db'}"
    monkeypatch.setenv("GUARDIAN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", own)
    assert registry.tracking_uri() == own
    assert not (tmp_path / "data" / "mlflow").exists()
