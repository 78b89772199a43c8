"""Score a run with the registered models and write ``ml_predictions``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.features import feature_frame
from guardian_lib.layout import RunLayout
from guardian_lib.schema import CLASS_COLUMNS, MODEL_EVERY_MINUTES

__all__ = ["predictions_dir", "score_run", "score_partitions", "write_predictions"]

#: Rows explained by default (symptomatic rows, and other rows), as ``ModelBundle.predict``. [-]
MAX_EXPLAINED = 20_000


def predictions_dir(run: Path | str) -> Path:
    """GOLD folder of ``ml_predictions`` (one Parquet file per model version)."""
    return RunLayout(run).predictions


def score_run(
    run: Path | str,
    bundle,
    every_minutes: int = MODEL_EVERY_MINUTES,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    explain: bool = True,
    client=None,
) -> Path:
    """Compute features, predict and write ``ml_predictions`` for a run.

    The file is written under a temporary name and moved in place only when complete,
    so scoring never leaves partial predictions. Re-scoring with the same model version
    replaces that version's file.

    Parameters
    ----------
    run : path
    bundle : ModelBundle
    every_minutes : int, default 15
        Spacing of scoring times. [min]
    start, end : optional
        Range of scoring times (UTC); default: the whole run.
    explain : bool, default True
        Attach top SHAP reasons (see :meth:`ModelBundle.predict`).
    client : distributed.Client, optional
        Score on Dask (:func:`score_partitions`, whole run only); the file is the same.

    Returns
    -------
    Path
        The Parquet file written.
    """
    if client is not None:
        if start is not None or end is not None:
            raise ValueError("scoring on Dask covers the whole run: give no start / end")
        preds = score_partitions(run, bundle, client, every_minutes=every_minutes, explain=explain)
    else:
        features = feature_frame(run, start=start, end=end, every_minutes=every_minutes)
        preds = bundle.predict(features, explain=explain)
    return write_predictions(run, preds, bundle.model_version)


def write_predictions(run: Path | str, preds: pd.DataFrame, model_version: str) -> Path:
    """Write a model version's ``ml_predictions`` file (atomically); returns its path."""
    out_dir = predictions_dir(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / (model_version.replace("/", "_v") + ".parquet")
    tmp = out_dir / f".{dest.name}.tmp-{os.getpid()}"
    preds.to_parquet(tmp, index=False)
    os.replace(tmp, dest)
    return dest


def _explain_candidates(preds: pd.DataFrame, cap: int) -> np.ndarray:
    """Rows ``ModelBundle.predict(explain=True)`` would explain, in row order.

    Symptomatic rows (their class probabilities are set): the first ``cap``; the other
    rows at ``risk_24h ≥ 0.2`` or ``anomaly_score ≥ 0.99``: the ``cap`` of highest risk
    (ties in row order). Applied to a partition it gives a superset of the partition's
    rows in the run's selection; applied to the run it gives that selection.
    """
    sym = preds[next(iter(CLASS_COLUMNS.values()))].notna().to_numpy()
    score = np.maximum(preds["risk_24h"].to_numpy(float), 0.0)
    hot = ~sym & ((score >= 0.2) | (preds["anomaly_score"].to_numpy(float) >= 0.99))
    idx = np.flatnonzero(hot)
    idx = idx[np.argsort(-score[idx], kind="stable")][: max(0, cap)]
    return np.union1d(np.flatnonzero(sym)[:cap], idx)


def _score_partition(
    run: str, day, onu_ids, every_minutes: int, span, bundle, explain: bool, cap: int
):
    from guardian_lib.features._distributed import partition_features

    features = partition_features(run, day, onu_ids, every_minutes, span)
    if not len(features):
        return None
    preds = bundle.predict(features, explain=False)
    if not explain:
        return preds, None
    return preds, features.iloc[_explain_candidates(preds, cap)].reset_index(drop=True)


def _reasons(bundle, features: pd.DataFrame, cap: int) -> pd.DataFrame:
    # Every row here is in the run's selection (≤ cap of each kind): all get explained.
    out = bundle.predict(features, explain=True, max_explained=cap)
    return out.loc[:, ["ts", "onu_id", "top_reasons"]]


def score_partitions(
    run: Path | str,
    bundle,
    client,
    every_minutes: int = MODEL_EVERY_MINUTES,
    explain: bool = False,
    max_explained: int = MAX_EXPLAINED,
    on_submit: Callable[[list], None] | None = None,
) -> pd.DataFrame:
    """Predictions of a whole run on Dask, one task per (date, OLT group) partition.

    Features and predictions are computed on the worker (the bundle is sent once to
    every worker); only the predictions come back, with, when ``explain``, the feature
    rows that may need a reason (at most ``2 × max_explained`` per partition). The rows
    the single-process call would explain are then chosen over the whole run and
    explained in a second round of tasks, so the result equals
    ``bundle.predict(feature_frame(run), explain=explain, max_explained=max_explained)``
    (reasons included).

    Returns
    -------
    pandas.DataFrame
        ``ml_predictions`` rows ordered by ``ts`` then ``onu_id``.
    """
    from guardian_lib.features._distributed import feature_tasks, map_partitions

    days, groups, span = feature_tasks(run)
    [shared] = client.scatter([bundle], broadcast=True)
    results = map_partitions(client, _score_partition, run, days, groups, every_minutes, span,
                             shared, explain, max_explained, on_submit=on_submit)  # fmt: skip
    parts = [p for p in results if p is not None]
    if not parts:
        raise ValueError(f"{run}: no feature rows to score")
    out = pd.concat([p[0] for p in parts], ignore_index=True)
    out = out.sort_values(["ts", "onu_id"], kind="stable").reset_index(drop=True)
    if not explain:
        return out
    keys = ["ts", "onu_id"]
    chosen = out.iloc[_explain_candidates(out, max_explained)].loc[:, keys]
    candidates = pd.concat([p[1] for p in parts], ignore_index=True)
    rows = candidates.merge(chosen, on=keys, how="inner")
    rows = rows.sort_values(keys, kind="stable").reset_index(drop=True)
    chunk = max(1, -(-len(rows) // max(1, 2 * len(client.scheduler_info()["workers"]))))
    explained = client.gather(
        [
            client.submit(_reasons, shared, rows.iloc[i : i + chunk], max_explained, pure=False)
            for i in range(0, len(rows), chunk)
        ]
    )
    out["top_reasons"] = "[]"
    if explained:
        reasons = pd.concat(explained, ignore_index=True)
        at = out.reset_index().merge(reasons, on=keys, suffixes=("", "_x"))
        out.loc[at["index"].to_numpy(), "top_reasons"] = at["top_reasons_x"].to_numpy()
    return out
