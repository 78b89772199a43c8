"""Intervals for KPIs over replications that respect each quantity's range.

A backtest gives one value of each KPI per replication (seed). With a handful of
replications a Student-t interval of a count or a share can cross 0 or 1 — a
cancellation rate "33 % (−116 % – 183 %)" is not something to show a manager. Here
every interval is a **percentile bootstrap over replications**: the replications are
resampled with replacement, the statistic recomputed on each resample, and the 2.5 %
and 97.5 % quantiles taken. The statistic of a resample is a mean (or a ratio of
sums) of values inside the quantity's range, so the interval stays inside it too: a
count or a cost never below 0, a share within [0, 1]. Differences against the reactive
operation are *paired*: the same resampled seeds are used for both policies (common
random numbers), so the seed-to-seed variation of the fault load cancels.

With ``n`` replications the bootstrap cannot see more than ``n`` distinct values: with
fewer than 5 the intervals are too narrow to trust (the backtest reports its seeds).
Everything is deterministic for a given ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "KPI_RANGES",
    "bootstrap_ci",
    "paired_ratio_ci",
    "summarise_runs",
    "paired_vs_baseline",
    "gap_share",
]

#: Range of each KPI (lower, upper); KPIs not listed are unbounded (e.g. net savings).
KPI_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(
        (
            "visits",
            "visits_avoided",
            "savings_brl",
            "total_cost_brl",
            "sla_credits_brl",
            "mttr_hours",
            "impact_hours",
            "mttd_minutes",
            "reboots",
            "visit_cancellations",
            "wasted_visits",
            "calls",
            "notifications",
            "cases",
            "episodes",
            "decisions",
            "safety_violations",
            "contacts_per_sub_year",
        ),
        (0.0, np.inf),
    ),  # fmt: skip
    **dict.fromkeys(
        (
            "detected_before_call_share",
            "sla_availability",
            "reboot_success_rate",
            "visit_cancellation_rate",
            "false_action_rate",
            "massive_precision",
            "massive_recall",
            "individual_precision",
            "individual_recall",
            "no_fault_found_share",
        ),
        (0.0, 1.0),
    ),  # fmt: skip
}


def _finite(values: Sequence[float | None]) -> np.ndarray:
    x = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    return x


def bootstrap_ci(
    values: Sequence[float | None],
    stat: Callable[[np.ndarray], float] | None = None,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> tuple[float, list[float]]:
    """Statistic of the replications and its percentile-bootstrap interval.

    Parameters
    ----------
    values : sequence of float
        One value per replication; None / NaN are left out (a KPI undefined in that
        replication, e.g. a rate without any event).
    stat : callable, optional
        Statistic of an array of values (default the mean).
    level : float, default 0.95
        Coverage of the interval. [-]
    n_boot : int, default 2000
        Bootstrap resamples. [-]
    seed : int, default 0
        Seed of the resampling (deterministic output).
    bounds : (float, float)
        Range of the quantity; the estimate and the bounds are clipped to it (a guard:
        a mean of values within the range already lies within it).

    Returns
    -------
    (estimate, [low, high])
        NaN when no replication has a value; ``[m, m]`` with a single one.

    Examples
    --------
    >>> m, (lo, hi) = bootstrap_ci([0, 0, 1, 0, 2], bounds=(0, np.inf))
    >>> lo >= 0 and lo <= m <= hi
    True
    """
    if not 0 < level < 1:
        raise ValueError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    stat = stat or (lambda a: float(np.mean(a)))
    x = _finite(values)
    x = x[np.isfinite(x)]
    lo_b, hi_b = bounds
    if len(x) == 0:
        return float("nan"), [float("nan"), float("nan")]
    m = float(np.clip(stat(x), lo_b, hi_b))
    if len(x) == 1:
        return m, [m, m]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    boots = np.array([stat(x[i]) for i in idx], dtype=float)
    a = (1 - level) / 2
    lo, hi = np.nanquantile(boots, [a, 1 - a])
    return m, [float(np.clip(lo, lo_b, hi_b)), float(np.clip(hi, lo_b, hi_b))]


def paired_ratio_ci(
    num: Sequence[float],
    den: Sequence[float],
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, list[float]]:
    """Ratio of sums ``Σ num / Σ den`` over paired replications, with its interval.

    Used for the MTTR ratio (policy / reactive) and the share of visits a policy
    orders relative to the reactive operation. Pairs where either side is missing are
    left out; resamples whose denominator is 0 are dropped. The ratio of non-negative
    sums is never negative.

    Returns
    -------
    (ratio, [low, high])
    """
    a, b = _finite(num), _finite(den)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) == 0 or b.sum() == 0:
        return float("nan"), [float("nan"), float("nan")]
    r = float(a.sum() / b.sum())
    if len(a) == 1:
        return r, [r, r]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(n_boot, len(a)))
    sb = b[idx].sum(axis=1)
    sa = a[idx].sum(axis=1)
    boots = np.where(sb > 0, sa / np.where(sb > 0, sb, 1.0), np.nan)
    q = (1 - level) / 2
    lo, hi = np.nanquantile(boots, [q, 1 - q])
    return r, [float(lo), float(hi)]


def summarise_runs(runs: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Estimate and 95 % interval of every numeric KPI of one policy's replications.

    Parameters
    ----------
    runs : list of dict
        One KPI dict per replication (same keys).
    seed : int, default 0

    Returns
    -------
    dict
        ``{kpi: {"mean", "ci95"}}``; ``sla_availability_by_region`` per region.
    """
    out: dict[str, Any] = {}
    keys = [k for k, v in runs[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    for key in keys:
        bounds = KPI_RANGES.get(key, (-np.inf, np.inf))
        vals = [r.get(key) for r in runs]
        m, ci = bootstrap_ci(vals, bounds=bounds, seed=seed)
        out[key] = {"mean": m, "ci95": ci}
    regions = runs[0].get("sla_availability_by_region", {})
    out["sla_availability_by_region"] = {}
    for reg in regions:
        m, ci = bootstrap_ci(
            [r["sla_availability_by_region"].get(reg) for r in runs], bounds=(0.0, 1.0), seed=seed
        )
        out["sla_availability_by_region"][reg] = {"mean": m, "ci95": ci}
    return out


def paired_vs_baseline(
    runs: list[dict[str, Any]], base: list[dict[str, Any]], days: float, seed: int = 0
) -> dict[str, Any]:
    """Headline differences of a policy against the baseline (reactive), paired by seed.

    Parameters
    ----------
    runs, base : list of dict
        KPI dicts of the policy and of the baseline, replication by replication.
    days : float
        Simulated days per replication (to express per month). [d]
    seed : int, default 0

    Returns
    -------
    dict
        ``{name: {"mean", "ci95"}}`` for ``visits_avoided_vs_reactive_pct`` (100 × (1 −
        Σ visits / Σ reactive visits), at most 100) [%], ``visits_avoided_per_month``,
        ``cost_saving_vs_reactive_brl`` and ``saved_brl_per_month`` (reactive total cost
        minus the policy's; negative = costs more) [R$], ``mttr_ratio_vs_reactive``
        (Σ MTTR / Σ reactive MTTR; below 1 = faster) [-] and ``mttr_change_hours`` [h].
        Where every replication reports ``deferred_repairs`` (faults only a visit ends,
        left unrepaired at the end: a simulator's truth), also
        ``visits_with_deferred_avoided_vs_reactive_pct``: the same share over visits plus
        deferred repairs, the visits each week owes [%] — a policy that leaves repairs for
        after the window does not avoid those visits.
    """
    if len(runs) != len(base):
        raise ValueError(
            f"paired_vs_baseline: {len(runs)} replications of the policy but {len(base)} "
            "of the baseline (pairs need the same seeds)"
        )
    month = 30.0 / days

    def avoided_pct(counts: list[float], counts_b: list[float]) -> dict[str, Any]:
        # 100 × (1 − Σ counts / Σ baseline counts); the ratio's interval turned over.
        share, (lo, hi) = paired_ratio_ci(counts, counts_b, seed=seed)
        return {"mean": 100 * (1 - share), "ci95": [100 * (1 - hi), 100 * (1 - lo)]}

    v = [r["visits"] for r in runs]
    vb = [b["visits"] for b in base]
    out: dict[str, Any] = {"visits_avoided_vs_reactive_pct": avoided_pct(v, vb)}
    if all("deferred_repairs" in r for r in (*runs, *base)):
        out["visits_with_deferred_avoided_vs_reactive_pct"] = avoided_pct(
            [r["visits"] + r["deferred_repairs"] for r in runs],
            [b["visits"] + b["deferred_repairs"] for b in base],
        )
    dv = [(b - x) * month for x, b in zip(v, vb, strict=True)]
    m, ci = bootstrap_ci(dv, seed=seed)
    out["visits_avoided_per_month"] = {"mean": m, "ci95": ci}
    saving = [b["total_cost_brl"] - r["total_cost_brl"] for r, b in zip(runs, base, strict=True)]
    m, ci = bootstrap_ci(saving, seed=seed)
    out["cost_saving_vs_reactive_brl"] = {"mean": m, "ci95": ci}
    m, ci = bootstrap_ci([s * month for s in saving], seed=seed)
    out["saved_brl_per_month"] = {"mean": m, "ci95": ci}
    mt = [r["mttr_hours"] for r in runs]
    mb = [b["mttr_hours"] for b in base]
    m, ci = paired_ratio_ci(mt, mb, seed=seed)
    out["mttr_ratio_vs_reactive"] = {"mean": m, "ci95": ci}
    dm = [
        a - b if np.isfinite(a) and np.isfinite(b) else np.nan for a, b in zip(mt, mb, strict=True)
    ]
    m, ci = bootstrap_ci(dm, seed=seed)
    out["mttr_change_hours"] = {"mean": m, "ci95": ci}
    return out


def gap_share(
    policy: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, list[float]]:
    """Share of the gap between a weak and a strong policy that ``policy`` closes.

    ``(Σ low − Σ policy) / (Σ low − Σ high)`` over paired replications of a cost
    (lower is better): 0 = as costly as ``low`` (e.g. the rules), 1 = as cheap as
    ``high`` (the oracle). NaN when the oracle is not cheaper than the rules (no gap).

    Returns
    -------
    (share, [low, high])
    """
    p, lo_, hi_ = _finite(policy), _finite(low), _finite(high)

    def share(ix: np.ndarray) -> float:
        gap = lo_[ix].sum() - hi_[ix].sum()
        return float((lo_[ix].sum() - p[ix].sum()) / gap) if gap > 0 else np.nan

    idx0 = np.arange(len(p))
    s = share(idx0)
    if not np.isfinite(s) or len(p) < 2:
        return s, [s, s]
    rng = np.random.default_rng(seed)
    boots = np.array([share(rng.integers(0, len(p), len(p))) for _ in range(n_boot)])
    q = np.nanquantile(boots, [0.025, 0.975])
    return s, [float(q[0]), float(q[1])]
