"""Dark ONUs with a dying gasp as case rows, for the expected-cost tests."""

from __future__ import annotations

import numpy as np

from guardian_lib.decision._base import Rows
from guardian_lib.decision._types import CLASS_COLUMNS
from guardian_lib.decision.costs import CostModel

__all__ = ["HOURS", "ML", "NO_CALL_AHEAD", "RULE", "rows"]

#: The rule scorer's probabilities of a lone dark ONU with a dying gasp (premises 0.85,
#: equipment 0.02), and an equipment-heavy ML-like row (capped at 0.05 of the
#: individual causes on a dying gasp).
RULE = {"p_massive_outage": 0.0, "p_customer_premises": 0.85, "p_equipment_fail": 0.02,
        "p_external_network": 0.0, "p_intermittent": 0.0, "p_unknown": 0.13}  # fmt: skip
ML = {"p_massive_outage": 0.0, "p_customer_premises": 0.04, "p_equipment_fail": 0.94,
      "p_external_network": 0.0, "p_intermittent": 0.0, "p_unknown": 0.02}  # fmt: skip
HOURS = np.arange(0.25, 400.0, 0.25)


def rows(probs: dict, hours: np.ndarray, contacted: bool, notified: bool = True,
         down_type: str = "DYING_GASP") -> Rows:  # fmt: skip
    """One dark ONU per elapsed time in ``hours``."""
    n = len(hours)
    cols = {"online": np.zeros(n, bool), "outage": np.ones(n, bool),
            "down_type": np.array([down_type] * n, dtype=object),
            "impacted_min": hours * 60.0, "notified": np.full(n, notified),
            "impacted": np.ones(n, bool), "risk_24h": np.zeros(n),
            "contacted_since_down": np.full(n, contacted)}  # fmt: skip
    cols.update({c: np.full(n, probs[c]) for c in CLASS_COLUMNS})
    return Rows(np.arange(n).astype(str), cols)


#: The cost model without a call-ahead before a dying-gasp visit (none reached, free).
NO_CALL_AHEAD = CostModel(call_ahead_reach_prob=0.0, call_ahead_cost_brl=0.0)
