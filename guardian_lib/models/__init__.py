"""Models: anomaly score, cause classifier, calibrated risk, rule baselines (docs/models.md).

Estimators follow scikit-learn's contract (parameters stored in ``__init__``, fitted
attributes end in ``_``). :class:`ModelBundle` groups them for scoring; the registry
keeps bundles in MLflow with the ``champion`` alias that scoring loads.

Names are imported on first use (PEP 562), so that the ``guardian`` CLI starts without
loading scikit-learn and LightGBM.
"""

from guardian_lib._lazy import lazy_exports

_EXPORTS = {
    "AnomalyScorer": "guardian_lib.models.anomaly",
    "CauseClassifier": "guardian_lib.models.cause",
    "neighbour_massive_rule": "guardian_lib.models.cause",
    "RiskModel": "guardian_lib.models.risk",
    "HazardRiskModel": "guardian_lib.models.hazard",
    "TemporalAnomalyScorer": "guardian_lib.models.temporal",
    "ModelBundle": "guardian_lib.models.bundle",
    "ANOMALY_COLUMNS": "guardian_lib.models.bundle",
    "CLASS_COLUMNS": "guardian_lib.models.bundle",
    "CAUSE_LAYOUT_COLUMNS": "guardian_lib.models.bundle",
    "PREDICTION_COLUMNS": "guardian_lib.models.bundle",
    "OnlineScorer": "guardian_lib.models.online",
    "ModelScorer": "guardian_lib.models.online",
    "psi": "guardian_lib.models.drift",
    "drift_report": "guardian_lib.models.drift",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
