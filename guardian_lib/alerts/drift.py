"""Model drift as an alert source: PSI of the live features against the training sample.

:class:`DriftMonitor` keeps a bounded, seeded sample of the feature rows the scorer
computed in the last cycles and, every ``every_cycles`` cycles (and at the first one after
a start), computes the population stability index of each model feature against the
reference sample kept at training (:func:`guardian_lib.models.drift.drift_report`). The
result is one ``health`` observation with ``level: model`` that a rule can test
(the shipped ``ModelDrift``: ``psi_max > 0.25``); between two computations the last one
is repeated, so that ``for:`` counts cycles and the alert does not flap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from guardian_lib.models.drift import PSI_ALERT, drift_report

__all__ = ["DriftMonitor"]


class DriftMonitor:
    """PSI of live features against a reference, as alert observations.

    Parameters
    ----------
    reference : pandas.DataFrame
        Feature rows of the training sample (``reference_features.parquet``).
    columns : sequence of str
        The model's feature columns.
    every_cycles : int, default 12
        Cycles between two computations (one hour at 5-minute polling). [-]
    max_rows : int, default 5000
        Live rows kept (a seeded sample spread over the cycles). [-]
    model_version : str
    seed : int, default 0
        Seed of the sampling. [-]
    """

    def __init__(
        self,
        reference: pd.DataFrame,
        columns: Sequence[str],
        every_cycles: int = 12,
        max_rows: int = 5000,
        model_version: str = "unknown",
        seed: int = 0,
    ) -> None:
        if every_cycles < 1:
            raise ValueError(f"every_cycles must be >= 1, got {every_cycles}")
        missing = [c for c in columns if c not in reference.columns]
        if missing:
            raise ValueError(f"the drift reference lacks the model's features {missing[:5]}")
        self.columns = list(columns)
        self.reference = reference[self.columns].reset_index(drop=True)
        self.every_cycles = int(every_cycles)
        self.max_rows = int(max_rows)
        self.model_version = model_version
        self.rng = np.random.default_rng(seed)
        self._chunks: list[pd.DataFrame] = []
        self._cycles = 0
        self.last: dict[str, Any] | None = None
        #: The last per-feature report (``feature``, ``psi``, ``drifted``).
        self.report: pd.DataFrame | None = None

    def add(self, features: pd.DataFrame | None) -> None:
        """Keep a sample of one cycle's feature rows (None: the scorer computed none)."""
        if features is None or not len(features):
            return
        per_cycle = max(1, self.max_rows // self.every_cycles)
        have = [c for c in self.columns if c in features.columns]
        take = features[have]
        if len(take) > per_cycle:
            take = take.iloc[np.sort(self.rng.choice(len(take), per_cycle, replace=False))]
        self._chunks.append(take.reset_index(drop=True))
        while len(self._chunks) > self.every_cycles:
            self._chunks.pop(0)

    def observe(self) -> list[dict[str, Any]]:
        """This cycle's observations: ``[]`` before any feature row, else one ``level:
        model`` dict with ``psi_max`` [-], ``feature`` (the most drifted), ``drifted_features``
        (PSI over 0.2), ``rows`` and ``model_version``."""
        self._cycles += 1
        due = self.last is None or (self._cycles - 1) % self.every_cycles == 0
        if due and self._chunks:
            current = pd.concat(self._chunks, ignore_index=True)
            cols = [c for c in self.columns if c in current.columns]
            rep = drift_report(self.reference, current, columns=cols)
            self.report = rep
            top = rep.iloc[0] if len(rep) else None
            self.last = {
                "level": "model",
                "model_version": self.model_version,
                "psi_max": round(float(top["psi"]), 4) if top is not None else 0.0,
                "feature": str(top["feature"]) if top is not None else "",
                "drifted_features": int((rep["psi"] > PSI_ALERT).sum()),
                "rows": len(current),
            }
        return [dict(self.last)] if self.last is not None else []
