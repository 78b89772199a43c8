"""SHAP explanations of the LightGBM models (TreeSHAP as LightGBM computes it)."""

from __future__ import annotations

import json
import re
import weakref

import numpy as np
import pandas as pd

__all__ = ["SHAP_THREADS", "shap_values", "class_boosters", "top_reasons", "global_importance"]

#: LightGBM threads of a SHAP computation: one. Each row's contributions are computed on
#: their own (the values do not depend on it); ``0`` (every core) competed with the other
#: processes of a run (the backtest's workers, a second notebook) for no CPU saved. [-]
SHAP_THREADS = 1
# Per-class boosters of each multiclass model, built on first use (see class_boosters).
_CLASS_BOOSTERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def class_boosters(booster) -> list:
    """One single-output booster per class of a multiclass LightGBM model.

    A multiclass model grows one tree per class at each iteration, and LightGBM sums
    each class's contributions over that class's trees only, in order. A booster made
    of one class's trees therefore gives the same contributions, bit for bit, for a
    fraction (1 / n_classes) of the work. The boosters are built once per model.

    Parameters
    ----------
    booster : lightgbm.LGBMClassifier or lightgbm.Booster (fitted, multiclass)

    Returns
    -------
    list of lightgbm.Booster
        In class order (``booster.classes_``).
    """
    import lightgbm as lgb

    core = getattr(booster, "booster_", booster)
    cached = _CLASS_BOOSTERS.get(core)
    if cached is not None and cached[0] == core.num_trees():
        return cached[1]
    text = core.model_to_string()
    k = core.num_model_per_iteration()
    start, end = text.index("\nTree=0\n") + 1, text.index("\nend of trees")
    trees = re.split(r"(?m)^(?=Tree=\d+$)", text[start:end])[1:]
    # Header of a one-output model: no objective (contributions are raw scores) and no
    # tree sizes (they index the trees of the full model).
    head = re.sub(r"(?m)^num_class=\d+$", "num_class=1", text[:start])
    head = re.sub(r"(?m)^num_tree_per_iteration=\d+$", "num_tree_per_iteration=1", head)
    head = re.sub(r"(?m)^(objective|tree_sizes)=.*\n", "", head)
    out = []
    for c in range(k):
        mine = [re.sub(r"^Tree=\d+", f"Tree={i}", t, count=1) for i, t in enumerate(trees[c::k])]
        out.append(lgb.Booster(model_str=head + "".join(mine) + text[end:]))
    _CLASS_BOOSTERS[core] = (core.num_trees(), out)
    return out


def shap_values(booster, X: pd.DataFrame, class_index: np.ndarray | None = None) -> np.ndarray:
    """Per-feature SHAP contributions, shape (n_samples, n_features).

    Parameters
    ----------
    booster : lightgbm.LGBMClassifier (fitted)
    X : pandas.DataFrame
        Rows to explain, columns in the booster's order.
    class_index : ndarray of int, optional
        For multiclass models: the class whose contributions to return for each row.
        Each row is then explained with that class's trees only
        (:func:`class_boosters`); the values are those of the whole model.

    Returns
    -------
    ndarray
        Contributions in raw-score (log-odds) units; the bias column is dropped. [-]
    """
    n_feat = X.shape[1]
    core = getattr(booster, "booster_", booster)
    if class_index is not None and core.num_model_per_iteration() > 1:
        arr = np.asarray(X, dtype=np.float64)
        cls = np.asarray(class_index)
        boosters = class_boosters(booster)
        if len(cls) != len(arr) or (len(cls) and not 0 <= cls.min() <= cls.max() < len(boosters)):
            raise ValueError(
                f"shap_values: class_index must give one class in [0, {len(boosters)}) per "
                f"row of X ({len(arr)} rows), got {len(cls)} values in "
                f"[{cls.min(initial=0)}, {cls.max(initial=0)}]"
            )
        out = np.empty((len(arr), n_feat))
        for c, one in enumerate(boosters):
            rows = np.flatnonzero(cls == c)
            if len(rows):
                contrib = one.predict(arr[rows], pred_contrib=True, num_threads=SHAP_THREADS)
                out[rows] = contrib[:, :n_feat]
        return out
    contrib = booster.predict(X, pred_contrib=True, num_threads=SHAP_THREADS)
    if isinstance(contrib, list):  # some versions return one array per class
        contrib = np.hstack(contrib)
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
