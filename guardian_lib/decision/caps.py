"""Evidence that caps a scorer's class shares on some rows (the expected-cost policy's).

* :func:`cap_fixable_on_dying_gasp` — a dying gasp rules fibre and a dead laser out: of
  the individual causes only a failed ONU power supply needs a visit;
* :func:`explain_by_light_drop` — light down on a degraded ONU: a link fault, not Wi-Fi
  nor an unexplained blip.

Both move probability between classes and keep each row's sum
(:func:`~guardian_lib.decision.expected_cost.case_costs` applies them).
"""

from __future__ import annotations

import numpy as np

from guardian_lib.decision._types import CLASS_COLUMNS

__all__ = ["DRIFT_DB", "cap_fixable_on_dying_gasp", "explain_by_light_drop"]


def cap_fixable_on_dying_gasp(q: np.ndarray, dying_gasp: np.ndarray, share: float) -> np.ndarray:
    """Cap the visit-fixable share of the individual causes of dying-gasp outages.

    A dying gasp is the ONU announcing that it lost power. Fibre faults and dead lasers
    show as LOS, so of the individual causes of such an outage only a failed ONU power
    supply needs a visit; the customer's own power returns by itself. Whatever the scorer
    says (an ML bundle may give a lone dark ONU an equipment probability on a layout it
    was not trained on), the equipment and intermittent probabilities of these rows are
    scaled down to at most ``share`` of the individual causes and the excess moves to the
    customer premises. A scorer already below the cap (the rule scorer: 0.02 of 0.87) is
    left as it is; massive, external and unknown are never touched.

    Parameters
    ----------
    q : ndarray, shape (n, len(CLASS_COLUMNS))
        Class probabilities in :data:`CLASS_COLUMNS` order. [-]
    dying_gasp : ndarray of bool, shape (n,)
        Rows offline with a dying gasp as the down cause.
    share : float
        :attr:`CostModel.dying_gasp_fixable_share`. [-]

    Returns
    -------
    ndarray
        A copy of ``q`` with the capped rows changed (each row's sum is kept). [-]
    """
    return _cap_share(
        q, dying_gasp, ("equipment_fail", "intermittent"), ("customer_premises",), share
    )


#: A drop of the ONU's received or transmitted light below its baseline that shows a
#: drifting link (fibre degrading, laser drifting), as the case lifecycle's
#: ``keep_drop_db``. [dB]
DRIFT_DB = 1.5


def explain_by_light_drop(q: np.ndarray, light_down: np.ndarray, share: float) -> np.ndarray:
    """Cap the premises and unknown shares of degraded rows whose light is down.

    Wi-Fi interference and unexplained blips (packet loss, latency) do not lower the
    optical level; a degrading fibre or a drifting laser does, and degrades service
    (bit errors) before the link goes dark. On these rows the customer-premises and
    unknown probabilities are scaled down to at most ``share`` of the individual
    causes and the excess moves to equipment and intermittent, in their proportion
    (to intermittent when both are 0). The scorer's estimate would otherwise keep
    a short-blip share alive on a link whose errors come and go (each new episode
    restarts the time update), and the visit the link needs anyway waits for it.
    Massive and external are never touched.

    Parameters
    ----------
    q : ndarray, shape (n, len(CLASS_COLUMNS))
        Class probabilities in :data:`CLASS_COLUMNS` order. [-]
    light_down : ndarray of bool, shape (n,)
        Rows online with degraded service and the light ``DRIFT_DB`` or more down.
    share : float
        :attr:`CostModel.light_drop_other_share`. [-]

    Returns
    -------
    ndarray
        A copy of ``q`` with the capped rows changed (each row's sum is kept). [-]
    """
    return _cap_share(
        q, light_down, ("customer_premises", "unknown"), ("equipment_fail", "intermittent"), share
    )


def _cap_share(
    q: np.ndarray,
    rows: np.ndarray,
    capped: tuple[str, str],
    receivers: tuple[str] | tuple[str, str],
    share: float,
) -> np.ndarray:
    """Cap two classes at ``share`` of a group of classes on some rows (row sums kept).

    On ``rows`` where the ``capped`` classes together exceed ``share`` of the group
    (``capped`` and ``receivers``), they are scaled down to it and the excess moves to
    the ``receivers``: to the one, or to the two in their proportion (to the second when
    both are 0). The shared arithmetic of :func:`cap_fixable_on_dying_gasp` and
    :func:`explain_by_light_drop`.
    """
    names = [c.removeprefix("p_") for c in CLASS_COLUMNS]
    ja, jb = (names.index(k) for k in capped)
    jr = [names.index(k) for k in receivers]
    q = np.array(q, dtype=float, copy=True)
    held = q[:, ja] + q[:, jb]
    given = q[:, jr[0]] if len(jr) == 1 else q[:, jr[0]] + q[:, jr[1]]
    cap = share * (held + given)
    over = np.asarray(rows, dtype=bool) & (held > cap)
    scale = np.where(over, cap / np.maximum(held, 1e-12), 1.0)
    excess = np.where(over, held - cap, 0.0)
    if len(jr) == 1:
        q[:, jr[0]] += excess
    else:
        w_first = np.where(given > 0, q[:, jr[0]] / np.maximum(given, 1e-12), 0.0)
        q[:, jr[0]] += excess * w_first
        q[:, jr[1]] += excess * (1.0 - w_first)
    q[:, ja] *= scale
    q[:, jb] *= scale
    return q
