"""The feedback loop: retrain on the newest labels, register a challenger, promote if better.

``guardian train --since DATE`` (:func:`retrain`) trains on an operator's run from DATE up
to the latest ``holdout_days`` with labels from its closed tickets, the label map's events
and — given the autopilot's audit trail — the reboots that fixed the customer
(:mod:`guardian_lib.labels_feedback`). The new bundle is registered under the alias
``challenger``. Champion and challenger are then evaluated on the held-out latest days
against the same labels; the challenger becomes champion only if its
``promotion_metric`` is higher. Both figures and the decision are logged as one MLflow run
(``promotion``), so every change of champion can be traced to the numbers that caused it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.schema import MODEL_EVERY_MINUTES

__all__ = ["PROMOTION_METRICS", "CHALLENGER_ALIAS", "retrain"]

#: Metrics a challenger may be judged on (higher is better).
PROMOTION_METRICS = ("macro_f1", "massive_f1", "risk_24h_pr_auc")
#: Registry alias of a freshly retrained bundle before it wins.
CHALLENGER_ALIAS = "challenger"


def _silent(_msg: str) -> None:
    return None


def _data_end(run: Path | str) -> pd.Timestamp:
    from guardian_lib.features._store import telemetry_span_us
    from guardian_lib.warehouse import connect

    con = connect(run)
    try:
        _, hi = telemetry_span_us(con)
    finally:
        con.close()
    return pd.Timestamp(hi, unit="us", tz="UTC")


def retrain(
    run: Path | str,
    since: str,
    label_map: Path | str,
    holdout_days: float = 7.0,
    promotion_metric: str = "macro_f1",
    audit: Path | str | None = None,
    every_minutes: int = MODEL_EVERY_MINUTES,
    n_estimators: int = 300,
    seed: int = 0,
    champion_alias: str = "champion",
    log: Callable[[str], None] = _silent,
    box_fault_rate: float = 0.3,
    onu_failure_rate: float = 0.06,
) -> dict[str, Any]:
    """Train a challenger on the rows since ``since`` and promote it if it beats the champion.

    Parameters
    ----------
    run : path
        An operator's ingested run with imported tickets.
    since : str
        First time (UTC) of the training rows.
    label_map : path
        The label map YAML.
    holdout_days : float, default 7
        The latest days of the run, kept out of training and used to compare. [d]
    promotion_metric : str, default 'macro_f1'
        One of :data:`PROMOTION_METRICS`; the challenger must be strictly higher.
    audit : path, optional
        The autopilot's audit DuckDB file (reboot outcomes become labels).
    every_minutes : int
        Spacing of the rows. [min]
    n_estimators : int, default 300
    seed : int, default 0
    champion_alias : str, default 'champion'
    log : callable, optional
    box_fault_rate, onu_failure_rate : float, default 0.3, 0.06
        As in :func:`~guardian_lib.models.workflow.train`. [1/year]

    Returns
    -------
    dict
        ``challenger`` and ``champion`` (model versions; champion None when there was
        none), ``challenger_metrics`` / ``champion_metrics`` (the held-out figures),
        ``promoted`` (bool), ``holdout_start``.

    Raises
    ------
    ValueError
        An unknown ``promotion_metric``, or no training rows between ``since`` and the
        hold-out.
    """
    if promotion_metric not in PROMOTION_METRICS:
        raise ValueError(
            f"promotion_metric={promotion_metric!r}: expected one of {list(PROMOTION_METRICS)}"
        )
    from mlflow import MlflowClient

    from guardian_lib.models.registry import (
        MODEL_NAME,
        ModelRegistryError,
        configure_mlflow,
        load_bundle,
    )
    from guardian_lib.models.training import evaluate_bundle, ticket_labelled_frame
    from guardian_lib.models.workflow import summary_metrics, train

    holdout_start = (_data_end(run) - pd.Timedelta(days=holdout_days)).floor("h")
    if pd.Timestamp(since, tz="UTC") >= holdout_start:
        raise ValueError(
            f"--since {since}: no training rows before the hold-out, which starts at "
            f"{holdout_start} (the latest {holdout_days:g} days); choose an earlier date or "
            "fewer --holdout-days"
        )
    try:
        champion = load_bundle(champion_alias)
    except ModelRegistryError:
        champion = None
    challenger_version = train(
        [run], every_minutes=every_minutes, n_estimators=n_estimators, seed=seed,
        alias=CHALLENGER_ALIAS, log=log, labels="tickets", label_map=label_map,
        until=str(holdout_start), since=since, audit=audit,
        box_fault_rate=box_fault_rate, onu_failure_rate=onu_failure_rate,
    )  # fmt: skip
    challenger = load_bundle(CHALLENGER_ALIAS)
    log(f"held-out comparison from {holdout_start} …")
    features, labels, _ = ticket_labelled_frame(
        run, label_map, every_minutes, since=holdout_start, audit=audit
    )
    figures = {"challenger": summary_metrics(evaluate_bundle(challenger, features, labels))}
    if champion is not None:
        figures["champion"] = summary_metrics(evaluate_bundle(champion, features, labels))
    new = figures["challenger"].get(promotion_metric, float("nan"))
    old = figures.get("champion", {}).get(promotion_metric, float("nan"))
    # A NaN figure (nothing to measure in the hold-out) never wins; no champion: promote.
    promoted = champion is None or (new == new and (old != old or new > old))
    mlflow = configure_mlflow()
    with mlflow.start_run(run_name="promotion"):
        mlflow.log_params({
            "challenger": challenger_version,
            "champion": champion.model_version if champion is not None else "none",
            "promotion_metric": promotion_metric, "holdout_start": str(holdout_start),
            "since": since, "promoted": promoted, "run": str(run),
        })  # fmt: skip
        mlflow.log_metrics({
            f"{who}_{k}": v for who, m in figures.items() for k, v in m.items() if v == v
        })  # fmt: skip
    if promoted:
        MlflowClient().set_registered_model_alias(
            MODEL_NAME, champion_alias, challenger_version.rsplit("/", 1)[1]
        )
    log(
        f"{promotion_metric} on the hold-out: challenger {new:.3f}, champion "
        f"{old:.3f} → {'promoted' if promoted else 'champion kept'}"
    )
    return {
        "challenger": challenger_version,
        "champion": champion.model_version if champion is not None else None,
        "challenger_metrics": figures["challenger"],
        "champion_metrics": figures.get("champion"),
        "promoted": promoted,
        "holdout_start": str(holdout_start),
    }
