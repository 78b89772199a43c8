"""What a case opened on risk alone is about (the expected-cost policy's proactive cases).

Before the customer is hurt the expected-cost policy weighs waiting against one proactive
action (:func:`~guardian_lib.decision.expected_cost.case_costs`): a reboot of a *leaking*
CPE, or a visit to a *drifting* link that a technician can fix. Which one, and whether
either, depends on what the risk is about:

* the scorer's cause probabilities where it gives them (the rule scorer does on every
  row it calls at risk);
* where it leaves the cause open (the ML models do on rows without a symptom: their cause
  probabilities are NaN, ``p_unknown`` 1 once sanitized), it says nothing about it, and
  the precursors the telemetry shows decide: latency above its baseline with failed DHCP
  renewals (a leak), or the light :data:`~guardian_lib.decision.caps.DRIFT_DB` or more
  below its baseline (a drift).

A risk that is about neither — no cause named, no precursor seen — leaves the policy
nothing to do but wait until the customer is hurt, and it would then open a case on the
symptom in the same round anyway: :func:`proactive_grounds` says which rows have
something to act on, and only those open a case on risk alone
(:meth:`ExpectedCostPolicy.proactive_grounds
<guardian_lib.decision.ExpectedCostPolicy.proactive_grounds>`).
"""

from __future__ import annotations

import numpy as np

from guardian_lib.decision._types import CLASS_COLUMNS
from guardian_lib.decision.caps import DRIFT_DB

__all__ = [
    "LEAK_DHCP_FAILS_6H",
    "LEAK_LATENCY_MS",
    "SILENT_KNOWN",
    "proactive_grounds",
    "risk_grounds",
]

#: Failed DHCP renewals in 6 h from which a healthy-looking CPE counts as leaking. [-]
LEAK_DHCP_FAILS_6H = 0.8
#: Latency above the ONU's baseline from which a CPE with failed renewals leaks. [ms]
LEAK_LATENCY_MS = 12.0
#: Below this share of named (not ``unknown``) causes the scorer leaves the cause open. [-]
SILENT_KNOWN = 0.05

_NAMES = [c.removeprefix("p_") for c in CLASS_COLUMNS]


def _col(rows, name: str, n: int, fill: float = np.nan) -> np.ndarray:
    if name in rows:
        return np.asarray(rows[name], dtype=float)
    return np.full(n, fill)


def risk_grounds(rows) -> tuple[np.ndarray, np.ndarray]:
    """Premises share and visit-fixable share of what each row's risk is about.

    Parameters
    ----------
    rows : Rows or mapping of str to array
        The sanitized class probabilities (:data:`CLASS_COLUMNS`, summing to 1); optional
        ``dhcp_fails_6h`` [-], ``latency_excess_ms`` [ms], ``rx_drop_db`` and
        ``tx_drop_db`` [dB] (absent: nothing seen).

    Returns
    -------
    premises : ndarray of float
        Share of the named individual causes at the customer's premises; where the
        scorer leaves the cause open, 1 on a seen leak and 0 elsewhere. [-]
    fixable : ndarray of float
        Share a visit fixes (equipment, intermittent, premises) of the named causes;
        where the scorer leaves the cause open, 1 on a seen drift and 0 elsewhere. [-]

    Examples
    --------
    >>> import numpy as np
    >>> silent = {c: np.array([0.0, 0.0]) for c in CLASS_COLUMNS}
    >>> silent["p_unknown"] = np.array([1.0, 1.0])
    >>> risk_grounds({**silent, "rx_drop_db": np.array([0.2, 2.0])})[1].tolist()
    [0.0, 1.0]
    """
    q0 = np.column_stack([np.asarray(rows[c], dtype=float) for c in CLASS_COLUMNS])
    n = len(q0)
    known = np.maximum(1.0 - q0[:, _NAMES.index("unknown")], 1e-9)
    jp = _NAMES.index("customer_premises")
    premises = q0[:, jp] / known
    fixable = np.clip(
        (q0[:, _NAMES.index("equipment_fail")] + q0[:, _NAMES.index("intermittent")]
         + q0[:, jp]) / known, 0.0, 1.0,
    )  # fmt: skip
    silent = known < SILENT_KNOWN
    leak_seen = (_col(rows, "dhcp_fails_6h", n) >= LEAK_DHCP_FAILS_6H) & (
        _col(rows, "latency_excess_ms", n) > LEAK_LATENCY_MS
    )
    drift_seen = (_col(rows, "rx_drop_db", n) >= DRIFT_DB) | (
        _col(rows, "tx_drop_db", n) >= DRIFT_DB
    )
    premises = np.where(silent, leak_seen.astype(float), premises)
    fixable = np.where(silent, drift_seen.astype(float), fixable)
    return premises, fixable


def proactive_grounds(rows) -> np.ndarray:
    """Rows whose risk a proactive action could answer: a leak or a fixable drift.

    A leak (an online CPE whose risk is about its premises) can be rebooted, a drift with
    a share a visit fixes can get a proactive visit; on any other row the expected-cost
    comparison of :func:`~guardian_lib.decision.expected_cost.case_costs` can only wait
    (its visit costs the visit plus everything it does not fix).

    Parameters
    ----------
    rows : Rows or mapping of str to array
        As :func:`risk_grounds`, with ``online`` (bool).

    Returns
    -------
    ndarray of bool
    """
    premises, fixable = risk_grounds(rows)
    online = np.asarray(rows["online"], dtype=bool)
    return (online & (premises >= 0.5)) | (fixable > 0)
