"""SHAP explanations of the LightGBM models (TreeSHAP as LightGBM computes it)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

__all__ = ["shap_values", "top_reasons", "global_importance"]


def shap_values(booster, X: pd.DataFrame, class_index: np.ndarray | None = None) -> np.ndarray:
    """Per-feature SHAP contributions, shape (n_samples, n_features).

    Parameters
    ----------
    booster : lightgbm.LGBMClassifier (fitted)
    X : pandas.DataFrame
        Rows to explain, columns in the booster's order.
    class_index : ndarray of int, optional
        For multiclass models: the class whose contributions to return for each row.

    Returns
    -------
    ndarray
        Contributions in raw-score (log-odds) units; the bias column is dropped. [-]
    """
    contrib = booster.predict(X, pred_contrib=True, num_threads=0)
    if isinstance(contrib, list):  # some versions return one array per class
        contrib = np.hstack(contrib)
    n_feat = X.shape[1]
    k = contrib.shape[1] // (n_feat + 1)
    if k > 1:
        contrib = contrib.reshape(len(X), k, n_feat + 1)
        idx = np.zeros(len(X), dtype=int) if class_index is None else np.asarray(class_index)
        contrib = contrib[np.arange(len(X)), idx]
    return np.asarray(contrib)[:, :n_feat]


def top_reasons(values: np.ndarray, X: pd.DataFrame, model: str, k: int = 3) -> list[str]:
    """JSON list of the ``k`` largest contributions of each row.

    Each item is ``{"feature", "value", "contribution", "model"}``.
    """
    order = np.argsort(-np.abs(values), axis=1)[:, :k]
    cols = np.asarray(X.columns)
    xv = X.to_numpy()
    out = []
    for i in range(len(values)):
        items = []
        for j in order[i]:
            val = xv[i, j]
            items.append(
                {
                    "feature": str(cols[j]),
                    "value": None if np.isnan(val) else round(float(val), 4),
                    "contribution": round(float(values[i, j]), 4),
                    "model": model,
                }
            )
        out.append(json.dumps(items))
    return out


def global_importance(values: np.ndarray, columns) -> pd.DataFrame:
    """Mean |SHAP| per feature, largest first (the global importance artifact)."""
    imp = np.abs(values).mean(axis=0)
    return (
        pd.DataFrame({"feature": list(columns), "mean_abs_shap": imp})
        .sort_values("mean_abs_shap", ascending=False)
        .reset_index(drop=True)
    )
