"""``guardian twin --alerting FILE``: ``guardian operate``'s alerting on the twin's cycles.

:class:`TwinAlerting` runs the pipeline of :mod:`guardian_lib.operate.alerting` — rules,
grouping, inhibition, silences, maintenance windows, the outbox and the receivers of the
same alerting file ``operate`` reads — on every decision cycle of the twin, with the
observations operate builds (:func:`~guardian_lib.alerts.live.cycle_observations`: PON
offline shares, OLT reachability, the ONU events since the last cycle, the autopilot's
open incidents, circuit-breaker blocks). Time is the simulation's: ``for:`` durations,
group timers, retries and quiet hours follow it.

With a ``customer_notices:`` section, the autopilot's notices go out for real too: its
``notify`` reaches both the simulated customers (who then call less) and the
:class:`~guardian_lib.alerts.customers.CustomerNotifier`, which also hears verified
reboots and visits held by an outage (``Autopilot.listeners``). The simulated customers
have no phone number: give notices a webhook receiver (SMS / WhatsApp ones count
``no_phone``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.loop.tick import EVENT_COLUMNS

__all__ = ["TeeNotifier", "TwinAlerting", "twin_fleet"]

#: Cycle figures summed over a run.
_SUMMED = ("alerts", "notifications", "queued", "delivered", "delivery_failed", "dead")


def twin_fleet(topology: Any) -> pd.DataFrame:
    """The fleet table of a simulated network, as ``operate`` reads it from a subscribers
    file (``onu_id``, ``customer_id``, ``cpe_id``, ``pon_id``, ``box_id``, ``olt_id``,
    ``region``, ``segment``; no ``phone``)."""
    onus = topology.onus[["onu_id", "pon_id", "olt_id", "splitter_id"]]
    cust = topology.customers[["onu_id", "customer_id", "cpe_id", "region", "segment"]]
    fleet = onus.rename(columns={"splitter_id": "box_id"}).merge(cust, on="onu_id", how="left")
    for c in ("phone", "lang", "name", "notices_opt_out"):
        fleet[c] = None
    return fleet.reset_index(drop=True)


class TeeNotifier:
    """The twin's notifier with real notices: the simulated customers are told (they
    call less) and the customer notifier queues the message.

    Parameters
    ----------
    simulated : Notifier
        :class:`simulator.adapters.SimNotifier`.
    real : CustomerNotifier
    """

    def __init__(self, simulated: Any, real: Any) -> None:
        self.simulated, self.real = simulated, real

    def notify(self, onu_id: str, template: str, until_h: float) -> bool:
        """Both; the simulated customers' answer (what the simulation's KPIs follow): a
        message the receiver cannot take (no phone) is counted in the notifier's
        ``counts``, not as a failed action. [h]"""
        told = bool(self.simulated.notify(onu_id, template, until_h))
        self.real.notify(onu_id, template, until_h)
        return told


class TwinAlerting:
    """The alert pipeline fed by a :class:`~acs_emulator.twin.runner.Twin`'s cycles.

    Parameters
    ----------
    twin : Twin
        Built, not yet run (it registers as a tick sink of the simulation after the
        twin's telemetry source, so it sees each cycle's decisions).
    path : path
        The alerting file (the one ``guardian operate`` reads).
    state_dir : path
        Folder of the outbox and silences (created).

    Attributes
    ----------
    totals : dict
        Summed cycle figures (``cycles``, ``alerts``, ``notifications``, ``queued``,
        ``delivered``, ``delivery_failed``, ``dead``). [-]
    """

    def __init__(self, twin: Any, path: str | Path, state_dir: str | Path) -> None:
        from guardian_lib.operate.alerting import customer_notifier, load_pipeline
        from simulator.adapters import SimClock

        self.twin = twin
        clock = SimClock(twin.sim).now
        self.pipeline = load_pipeline(Path(path), Path(state_dir), clock=clock)
        self.fleet = twin_fleet(twin.sim.topology)
        self.notifier = customer_notifier(self.pipeline, clock)
        if hasattr(self.notifier, "bind"):
            self.notifier.bind(self.fleet, twin.autopilot)
            twin.autopilot.listeners.append(self.notifier.action_outcome)
            twin.dispatcher.notifier = TeeNotifier(twin.dispatcher.notifier, self.notifier)
        self._events: list[tuple] = []
        self._blocked = dict(twin.autopilot.guard.blocked)
        self.totals: dict[str, int] = dict.fromkeys(("cycles", *_SUMMED), 0)
        twin.sim.sinks.append(self)

    def on_tick(self, sim: Any, state: Any, events: list[Any]) -> None:
        """Tick sink: after a tick the autopilot decided on, one alerting cycle."""
        tick, loop = self.twin.source.last, self.twin.loop
        if tick is None:
            return
        self._events.extend(tuple(e) for e in tick.events)
        if (loop.ticks - 1) % loop.every != 0:
            return  # no decision this tick: the events wait for the next cycle
        self.cycle(tick)

    def cycle(self, tick: Any) -> dict[str, Any]:
        """Evaluate the rules on ``tick`` (with the events since the last cycle), queue
        the notices of closed incidents, deliver; returns the cycle's figures."""
        from guardian_lib.operate.alerting import alerts_cycle

        ap = self.twin.autopilot
        polled = pd.DataFrame({"onu_id": self.twin.loop.onu_ids.astype(str),
                               "online": tick.values["online"].astype(bool)})  # fmt: skip
        events = pd.DataFrame(self._events, columns=list(EVENT_COLUMNS))
        self._events = []
        blocks = {k: v - self._blocked.get(k, 0) for k, v in ap.guard.blocked.items()}
        self._blocked = dict(ap.guard.blocked)
        ts = pd.Timestamp(tick.ts)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        figures = alerts_cycle(self.pipeline, ts, self.fleet, polled, events, ap.incidents,
                               {k: v for k, v in blocks.items() if v},
                               notifier=self.notifier)  # fmt: skip
        self.totals["cycles"] += 1
        for k in _SUMMED:
            self.totals[k] += int(figures.get(k, 0))
        return figures

    def summary(self) -> dict[str, Any]:
        """The run's figures: ``totals``, customer ``notices`` (by template, skipped)
        and what the outbox holds (``<status>:<receiver>`` counts: ``delivered``,
        ``pending``, ``dead``)."""
        out: dict[str, Any] = dict(self.totals)
        n = self.notifier
        if hasattr(n, "by_template"):
            out["notices"] = {"by_template": dict(sorted(n.by_template.items())), **n.counts}
        rows = Counter(f"{m.status}:{m.receiver}" for m in self.pipeline.outbox.messages())
        out["outbox"] = dict(sorted(rows.items()))
        return out

    def close(self) -> None:
        """Close the outbox, the silences and the receivers' clients."""
        self.pipeline.close()
