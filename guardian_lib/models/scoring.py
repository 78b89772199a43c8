"""Score a run with the registered models and write ``ml_predictions``."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from guardian_lib.features import feature_frame
from guardian_lib.layout import RunLayout
from guardian_lib.schema import MODEL_EVERY_MINUTES

__all__ = ["predictions_dir", "score_run"]


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
