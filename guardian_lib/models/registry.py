"""MLflow tracking and registry for the model bundle (local SQLite by default).

Tracking URI: ``MLFLOW_TRACKING_URI`` when set, else ``sqlite:///<abs>/data/mlflow/mlflow.db``
with artifacts under ``data/mlflow/artifacts`` (``GUARDIAN_DATA_DIR`` moves ``data/``).
Telemetry is disabled and nothing goes to the network.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from guardian_lib.errors import GuardianError

__all__ = [
    "MODEL_NAME",
    "ModelRegistryError",
    "data_dir",
    "tracking_uri",
    "configure_mlflow",
    "register_bundle",
    "load_bundle",
    "alias_version",
    "load_reference_features",
    "list_models",
]

MODEL_NAME = "network-guardian"


class ModelRegistryError(GuardianError):
    """The registry has no such model, version or alias."""


def data_dir() -> Path:
    """Absolute ``data/`` folder (``GUARDIAN_DATA_DIR`` overrides ``./data``)."""
    return Path(os.environ.get("GUARDIAN_DATA_DIR", "data")).resolve()


#: The tracking URI :func:`configure_mlflow` last gave MLflow. ``mlflow.set_tracking_uri``
#: copies it into ``MLFLOW_TRACKING_URI`` (for child processes), where it must not then
#: pass for the user's own setting: it would pin a process to the first data directory
#: and send artifacts to ``./mlruns`` of the working directory.
_uri_set_here: str | None = None


def _user_tracking_uri() -> str | None:
    """``MLFLOW_TRACKING_URI`` when the user set it (not a copy of ours), else None."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    return env if env and env != _uri_set_here else None


def tracking_uri() -> str:
    """The MLflow tracking URI in force: the user's ``MLFLOW_TRACKING_URI``, else the
    SQLite store ``mlflow/mlflow.db`` of :func:`data_dir`."""
    user = _user_tracking_uri()
    if user:
        return user
    root = data_dir() / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def configure_mlflow(experiment: str = "network-guardian"):
    """Point MLflow at the tracking store and select (or create) ``experiment``.

    Without a user's ``MLFLOW_TRACKING_URI`` a new experiment keeps its artifacts (the
    models, reference samples) under ``mlflow/artifacts`` of :func:`data_dir`, beside
    its database, whatever the working directory.
    """
    global _uri_set_here
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    ours = _user_tracking_uri() is None
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    if ours:
        _uri_set_here = uri
    if mlflow.get_experiment_by_name(experiment) is None:
        artifacts = None
        if uri.startswith("sqlite:///") and ours:
            artifacts = (data_dir() / "mlflow" / "artifacts").as_uri()
        mlflow.create_experiment(experiment, artifact_location=artifacts)
    mlflow.set_experiment(experiment)
    return mlflow


def register_bundle(
    bundle,
    params: dict[str, Any],
    metrics: dict[str, float],
    artifacts: dict[str, Any] | None = None,
    alias: str = "champion",
    name: str = MODEL_NAME,
) -> str:
    """Log a bundle as an MLflow run, register it and point ``alias`` at it.

    Parameters
    ----------
    bundle : ModelBundle
    params, metrics : dict
        Logged on the run (metrics must be numbers; NaN are skipped).
    artifacts : dict, optional
        ``{"file name": object}``: DataFrames are written as CSV, dicts as JSON,
        matplotlib-free plotly figures as HTML, ``bytes`` as is.
    alias : str, default 'champion'

    Returns
    -------
    str
        The model version, ``"<name>/<version>"`` (also stored in ``bundle.model_version``).
    """
    mlflow = configure_mlflow()
    from mlflow import MlflowClient

    with mlflow.start_run(run_name="train") as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics(
            {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v}
        )
        for fname, obj in (artifacts or {}).items():
            path = Path(tmp) / fname
            if hasattr(obj, "to_csv"):
                obj.to_csv(path, index=False)
            elif hasattr(obj, "write_html"):
                obj.write_html(str(path), include_plotlyjs=True)
            elif isinstance(obj, bytes):
                path.write_bytes(obj)
            else:
                path.write_text(json.dumps(obj, indent=2, default=str))
            mlflow.log_artifact(str(path))
        client = MlflowClient()
        info = mlflow.sklearn.log_model(
            bundle,
            name="bundle",
            pip_requirements=["scikit-learn", "lightgbm", "pandas", "numpy"],
            serialization_format="pickle",
        )
        mv = mlflow.register_model(info.model_uri, name)
        client.set_registered_model_alias(name, alias, mv.version)
        version = f"{name}/{mv.version}"
        client.set_tag(run.info.run_id, "model_version", version)
    bundle.model_version = version
    return version


def load_bundle(alias: str = "champion", name: str = MODEL_NAME):
    """Load the bundle the alias points to; its ``model_version`` is set.

    Raises
    ------
    ModelRegistryError
        No such registered model or alias (train first: ``guardian train``).
    """
    mlflow = configure_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise ModelRegistryError(
            f"no model {name!r} with alias {alias!r} in {tracking_uri()} "
            f"(train one with `guardian train --run …`): {exc.message.splitlines()[0]}"
        ) from None
    bundle = mlflow.sklearn.load_model(f"models:/{name}/{mv.version}")
    bundle.model_version = f"{name}/{mv.version}"
    return bundle


def alias_version(alias: str = "champion", name: str = MODEL_NAME) -> str | None:
    """The version ``"<name>/<version>"`` the alias points to, None when it points nowhere."""
    configure_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        mv = MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return f"{name}/{mv.version}"


def load_reference_features(alias: str = "champion", name: str = MODEL_NAME):
    """The training sample the alias's version kept (``reference_features.parquet``),
    the reference of drift (PSI) checks.

    Raises
    ------
    ModelRegistryError
        No such model or alias, or the version has no reference sample (trained by an
        older release).
    """
    import pandas as pd

    configure_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        mv = client.get_model_version_by_alias(name, alias)
        path = client.download_artifacts(mv.run_id, "reference_features.parquet")
    except (MlflowException, OSError) as exc:
        raise ModelRegistryError(
            f"no drift reference for model {name!r} alias {alias!r} in {tracking_uri()}: "
            f"{str(exc).splitlines()[0][:200]}"
        ) from None
    return pd.read_parquet(path)


def list_models(name: str = MODEL_NAME) -> list[dict[str, Any]]:
    """Registered versions with their aliases, newest first."""
    configure_mlflow()
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        aliases = client.get_registered_model(name).aliases or {}
    except MlflowException:
        return []
    by_version: dict[int, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(int(version), []).append(alias)
    out = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        out.append(
            {
                "name": mv.name,
                "version": int(mv.version),
                "aliases": sorted(by_version.get(int(mv.version), [])),
                "run_id": mv.run_id,
                "created": mv.creation_timestamp,
            }
        )
    return sorted(out, key=lambda r: -r["version"])
