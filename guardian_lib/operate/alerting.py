"""The alerting side of ``guardian operate``: the alert pipeline of the site's alerting
file, the customer notifier, the model-drift monitor, and one cycle of them.

Kept out of :mod:`~guardian_lib.operate.service` so that the service reads as the loop it
is; the :class:`~guardian_lib.operate.service.Operator` holds what these functions build
(``alerts``, ``notifier``, ``drift``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.operate.adapters import AuditNotifier
from guardian_lib.operate.metrics import log_json
from guardian_lib.operate.site import SiteConfig

__all__ = [
    "alert_pipeline", "load_pipeline", "customer_notifier", "drift_monitor", "alerts_cycle",
]  # fmt: skip


def load_pipeline(
    path: Path, state_dir: Path, clock: Callable[[], pd.Timestamp] | None = None
) -> Any:
    """The :class:`~guardian_lib.alerts.pipeline.AlertPipeline` of an alerting file, its
    outbox and silences in ``state_dir``; ``clock``: the network's time (default the wall
    clock) for due deliveries and quiet hours.

    Raises
    ------
    guardian_lib.errors.ConfigError
        A bad alerting file (named with the field).
    """
    from guardian_lib.alerts.config import load_alerting
    from guardian_lib.alerts.pipeline import AlertPipeline

    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    return AlertPipeline(load_alerting(path), state_dir, clock=clock)


def alert_pipeline(site: SiteConfig, state_dir: Path) -> Any:
    """The pipeline of the site's alerting file (None without one); its outbox keeps the
    network's time when the site has a clock."""
    if site.alerts is None:
        return None
    clock = site.clock.now if site.clock is not None else None
    return load_pipeline(site.resolve(site.alerts), state_dir, clock=clock)


def customer_notifier(pipeline: Any, decision_time: Callable[[], pd.Timestamp]) -> Any:
    """Customer notices sent through the alert outbox when the alerting file has a
    ``customer_notices:`` section, else an :class:`AuditNotifier` (audit trail only)."""
    cn = pipeline.config.customer_notices if pipeline is not None else None
    if cn is None:
        return AuditNotifier()
    from guardian_lib.alerts.customers import CustomerNotifier

    rx = pipeline.config.receiver(cn.receiver)
    channel = next(c for c in ("sms", "whatsapp", "webhook") if getattr(rx, c) is not None)
    return CustomerNotifier(cn, pipeline.outbox, decision_time, channel=channel)


def drift_monitor(pipeline: Any, bundle: Any, alias: str | None) -> Any:
    """PSI of the live features against the model's training sample, an alert source
    (None without an alerting file, a registered model or its reference sample)."""
    if pipeline is None or bundle is None or not alias:
        return None
    from guardian_lib.alerts.drift import DriftMonitor
    from guardian_lib.models.registry import load_reference_features

    try:
        reference = load_reference_features(alias)
        monitor = DriftMonitor(
            reference, bundle.feature_columns,
            every_cycles=pipeline.config.drift_every_cycles, model_version=bundle.model_version,
        )  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - no reference: the model runs, unmonitored
        log_json("drift", monitored=False, reason=str(exc).splitlines()[0][:300])
        return None
    log_json("drift", monitored=True, every_cycles=monitor.every_cycles)
    return monitor


def alerts_cycle(
    pipeline: Any,
    ts: pd.Timestamp,
    fleet: pd.DataFrame,
    known: pd.DataFrame,
    events: pd.DataFrame,
    incidents: Mapping[str, Mapping[str, Any]],
    blocks: Mapping[str, int],
    notifier: Any = None,
    drift: Any = None,
    features: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Evaluate the alert rules on one cycle, queue the resolution notices of closed
    incidents, deliver; returns the cycle's ``alerts`` figures.

    Parameters
    ----------
    pipeline : AlertPipeline
    ts : pandas.Timestamp
        Cycle time (UTC).
    fleet, known, events, incidents, blocks
        As :func:`guardian_lib.alerts.live.cycle_observations`.
    notifier : CustomerNotifier or AuditNotifier, optional
    drift : DriftMonitor, optional
    features : pandas.DataFrame, optional
        The feature rows the model scored this cycle (for ``drift``).
    """
    from guardian_lib.alerts.live import cycle_observations

    obs = cycle_observations(fleet, known, events, incidents, blocks)
    if drift is not None:
        drift.add(features)
        obs["health"] += drift.observe()
    resolved = 0
    if hasattr(notifier, "incidents_closed"):
        resolved = notifier.incidents_closed(set(incidents))
    out: dict[str, Any] = pipeline.cycle(ts, obs).to_dict()
    if hasattr(notifier, "counts"):
        out["notices"] = {**notifier.counts, "resolved_queued": resolved,
                          "by_template": dict(sorted(notifier.by_template.items()))}  # fmt: skip
    return out
