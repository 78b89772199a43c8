"""Enough to train on? Checks that ``guardian train`` runs before it fits or registers.

Two checks, both raising :class:`InsufficientTrainingData` (a
:class:`~guardian_lib.errors.ConfigError`: exit code 2, one line naming what is missing):

* :func:`check_spans` — before any feature is computed: the last ``H`` hours of a run
  are unlabelled for ``risk_H`` (what follows the data is unknown), so at least one run,
  cut to ``--since`` / ``--until``, must be longer than the longest risk horizon. A
  1-day run used to fail only after its features were built (~18 s).
* :func:`check_labels` — on the labelled rows: a model that learnt from one ticket would
  replace a champion that learnt from hundreds. The cause classifier needs at least
  :data:`MIN_CAUSE_CLASSES` classes each seen on at least :data:`MIN_ONUS_PER_CLASS`
  ONUs, and every hazard interval of the risk model at least
  :data:`MIN_POSITIVE_ONUS_PER_INTERVAL` ONUs with a first impact in it. ONUs, not rows,
  are counted: one ticket labels dozens of rows of one ONU (a massive ticket every ONU
  of its PON, but one class).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.errors import ConfigError

__all__ = [
    "MIN_CAUSE_CLASSES",
    "MIN_ONUS_PER_CLASS",
    "MIN_POSITIVE_ONUS_PER_INTERVAL",
    "InsufficientTrainingData",
    "check_spans",
    "check_labels",
    "run_spans",
]

#: Cause classes the classifier must see (on :data:`MIN_ONUS_PER_CLASS` ONUs each). [-]
MIN_CAUSE_CLASSES = 2
#: ONUs a cause class must be labelled on to count towards :data:`MIN_CAUSE_CLASSES`. [-]
MIN_ONUS_PER_CLASS = 3
#: ONUs with a first impact in each hazard interval ((0, 2], (2, 6], (6, 24] h). [-]
MIN_POSITIVE_ONUS_PER_INTERVAL = 3


class InsufficientTrainingData(ConfigError):
    """The runs or labels are too few to train a model worth registering."""


def _utc(value: str | pd.Timestamp | None) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def check_spans(
    spans: dict[str, tuple[pd.Timestamp, pd.Timestamp]],
    horizons_h: Sequence[int],
    since: str | pd.Timestamp | None = None,
    until: str | pd.Timestamp | None = None,
) -> None:
    """Refuse runs too short to label the longest risk horizon, before any work.

    Parameters
    ----------
    spans : dict
        ``{run: (first reading, last reading)}`` (UTC timestamps).
    horizons_h : sequence of int
        The risk horizons, increasing. [h]
    since, until : str or Timestamp, optional
        The training window (UTC); each run's span is cut to it.

    Raises
    ------
    InsufficientTrainingData
        No run spans more than ``max(horizons_h)`` hours within the window; the message
        names each run's span.
    """
    longest = int(max(horizons_h))
    lo_cut, hi_cut = _utc(since), _utc(until)
    described = []
    for run, (lo, hi) in spans.items():
        lo = max(lo, lo_cut) if lo_cut is not None else lo
        hi = min(hi, hi_cut) if hi_cut is not None else hi
        hours = max((hi - lo) / pd.Timedelta(hours=1), 0.0)
        if hours > longest:
            return
        described.append(f"{run}: {hours:.1f} h ({lo:%Y-%m-%d %H:%M} – {hi:%Y-%m-%d %H:%M} UTC)")
    window = "".join(
        [f" from --since {lo_cut}" if lo_cut is not None else "",
         f" up to --until {hi_cut}" if hi_cut is not None else ""]
    )  # fmt: skip
    lo_h = int(sorted(horizons_h)[-2]) if len(horizons_h) > 1 else 0
    raise InsufficientTrainingData(
        f"HazardRiskModel: no labelled row for the interval ({lo_h}, {longest}] h: the last "
        f"{longest} h of a run are not labelled, so training needs runs longer than {longest} h"
        f"{window}; got {'; '.join(described)}. Train on a longer run (or more runs)"
    )


def check_labels(
    features: pd.DataFrame, labels: pd.DataFrame, horizons_h: Sequence[int]
) -> dict[str, dict[str, int]]:
    """Refuse to train on too few labelled faults; count what there is.

    Parameters
    ----------
    features : DataFrame
        With ``onu_id``.
    labels : DataFrame
        From :func:`~guardian_lib.labels.build_labels` or the ticket labels: ``symptomatic``,
        ``cause`` and ``risk_<H>h`` for each horizon.
    horizons_h : sequence of int
        The risk horizons, increasing. [h]

    Returns
    -------
    dict
        ``{"cause_onus": {class: ONUs}, "risk_onus": {"(lo, hi] h": ONUs}}``.

    Raises
    ------
    InsufficientTrainingData
        Fewer than :data:`MIN_CAUSE_CLASSES` classes labelled on
        :data:`MIN_ONUS_PER_CLASS` ONUs each, or a hazard interval with a first impact on
        fewer than :data:`MIN_POSITIVE_ONUS_PER_INTERVAL` ONUs. The message names the
        counts, the minimum and what to do.
    """
    from guardian_lib.models.hazard import interval_labels

    onu = features["onu_id"].astype(str).to_numpy()
    cause = labels["cause"].to_numpy(dtype=object)
    sym = labels["symptomatic"].to_numpy(dtype=bool) & pd.notna(cause)
    by_class = pd.Series(onu[sym]).groupby(cause[sym].astype(str)).nunique()
    cause_onus = {str(k): int(v) for k, v in by_class.sort_index().items()}
    Y = labels.loc[:, [f"risk_{h}h" for h in horizons_h]].to_numpy(dtype=float)
    risk_onus = {}
    for k, (rows, y) in enumerate(interval_labels(Y)):
        lo = 0 if k == 0 else int(horizons_h[k - 1])
        risk_onus[f"({lo}, {int(horizons_h[k])}] h"] = int(len(np.unique(onu[rows[y == 1]])))
    problems = []
    enough = [c for c, n in cause_onus.items() if n >= MIN_ONUS_PER_CLASS]
    if len(enough) < MIN_CAUSE_CLASSES:
        problems.append(
            f"cause classes labelled on ≥ {MIN_ONUS_PER_CLASS} ONUs: {len(enough)} "
            f"(ONUs per class {cause_onus or '{}'}), at least {MIN_CAUSE_CLASSES} needed"
        )
    short = {k: n for k, n in risk_onus.items() if n < MIN_POSITIVE_ONUS_PER_INTERVAL}
    if short:
        problems.append(
            f"ONUs with a first impact in each risk interval: {risk_onus}, at least "
            f"{MIN_POSITIVE_ONUS_PER_INTERVAL} needed in each (short: {', '.join(short)})"
        )
    if problems:
        raise InsufficientTrainingData(
            "too few labelled faults to train on, nothing registered: "
            + "; ".join(problems)
            + ". Train on more history (an earlier --since, a later --until, more runs) or "
            "label more tickets (see the label map report above)"
        )
    return {"cause_onus": cause_onus, "risk_onus": risk_onus}


def run_spans(runs: Sequence[Path | str]) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """``{run: (first, last SILVER reading)}`` read from each warehouse (UTC)."""
    from guardian_lib.features._store import telemetry_span_us
    from guardian_lib.warehouse import connect

    out = {}
    for run in runs:
        con = connect(run)
        try:
            lo, hi = telemetry_span_us(con)
        finally:
            con.close()
        out[str(run)] = (
            pd.Timestamp(lo, unit="us", tz="UTC"),
            pd.Timestamp(hi, unit="us", tz="UTC"),
        )
    return out
