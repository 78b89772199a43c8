"""One scripted fault on one ONU, for closed-loop tests that need a known fault at a known time."""

from __future__ import annotations

import numpy as np

from simulator.faults import Fault

__all__ = ["HOUR", "inject"]

HOUR = 3600.0


def inject(sim, fault_id: str, kind: str, row: int, start_h: float, duration_h=None, **params):
    """Add ``kind`` on ONU ``row`` at ``start_h`` [h] for ``duration_h`` [h] (None: until
    fixed) to a simulation (:meth:`simulator.engine.Simulation.add_fault`)."""
    scope = "customer" if kind == "wifi_interference" else "onu"
    fault = Fault(fault_id=fault_id, kind=kind, start_s=start_h * HOUR,
                  onus=np.array([row], dtype=np.int64), scope_type=scope,
                  scope_key=str(sim.onu_ids[row]),
                  duration_s=None if duration_h is None else duration_h * HOUR, params=params)  # fmt: skip
    return sim.add_fault(fault)
