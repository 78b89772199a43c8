"""Score a run with the registered models and write ``ml_predictions``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from guardian_lib.features import feature_frame
from guardian_lib.layout import RunLayout
from guardian_lib.schema import MODEL_EVERY_MINUTES

__all__ = ["predictions_dir", "score_run", "score_partitions"]


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

    Returns
    -------
    Path
        The Parquet file written.
    """
    features = feature_frame(run, start=start, end=end, every_minutes=every_minutes)
    preds = bundle.predict(features, explain=explain)
    out_dir = predictions_dir(run)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / (bundle.model_version.replace("/", "_v") + ".parquet")
    tmp = out_dir / f".{dest.name}.tmp-{os.getpid()}"
    preds.to_parquet(tmp, index=False)
    os.replace(tmp, dest)
    return dest


def _score_partition(run: str, day, onu_ids, every_minutes: int, span, bundle, explain: bool):
    from guardian_lib.features._distributed import partition_features

    features = partition_features(run, day, onu_ids, every_minutes, span)
    return bundle.predict(features, explain=explain) if len(features) else None


def score_partitions(
    run: Path | str,
    bundle,
    client,
    every_minutes: int = MODEL_EVERY_MINUTES,
    explain: bool = False,
) -> pd.DataFrame:
    """Predictions of a whole run on Dask, one task per (date, OLT group) partition.

    Features and predictions are computed on the worker (the bundle is sent once to
    every worker); only the predictions come back. Without ``explain`` the rows equal
    ``bundle.predict(feature_frame(run), explain=False)``; with it, the cap on explained
    rows (``max_explained``) applies per partition instead of per run.

    Returns
    -------
    pandas.DataFrame
        ``ml_predictions`` rows ordered by ``ts`` then ``onu_id``.
    """
    from guardian_lib.features._distributed import feature_tasks

    days, groups, span = feature_tasks(run)
    [shared] = client.scatter([bundle], broadcast=True)
    futures = [
        client.submit(
            _score_partition,
            str(run),
            day,
            g,
            every_minutes,
            span,
            shared,
            explain,
            pure=False,
            retries=2,
        )  # fmt: skip
        for day in days
        for g in groups
    ]
    frames = [f for f in client.gather(futures) if f is not None]
    out = pd.concat(frames, ignore_index=True)
    return out.sort_values(["ts", "onu_id"], kind="stable").reset_index(drop=True)
