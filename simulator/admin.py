"""What an OLT's operator configured: which ONUs are authorized, which ONUs and PON ports
are administratively shut.

The physical network (topology, optics, faults) does not change when an operator types a
command; what changes is whether the OLT lets an ONU range and carry traffic. An ONU that
is not authorized (still in the OLT's autofind list), disabled, or on a disabled PON port
is offline with :data:`~simulator.telemetry.DOWN_ADMIN` as its down cause: no LOS or dying
gasp is logged for it, and when it is enabled again it comes back with a LINK_UP.

By default every ONU is authorized and enabled, so a scenario without operator commands
runs exactly as before (same random draws, byte-identical output).

>>> import numpy as np
>>> admin = AdminState(np.array(["P1", "P1", "P2"]))
>>> admin.unprovision([0])
>>> admin.set_pon_enabled("P2", False)
>>> admin.down_mask().tolist()
[True, False, True]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["AdminState"]


class AdminState:
    """Administrative state of every ONU and PON port of a simulated network.

    Parameters
    ----------
    onu_pon_ids : array_like of str
        PON id of each ONU, aligned with ``topology.onus``.

    Attributes
    ----------
    provisioned : ndarray of bool
        The ONU is authorized on its OLT (False: it waits in the autofind list).
    onu_enabled : ndarray of bool
        The ONU is not deactivated by the operator.
    disabled_pons : set of str
        PON ports shut by the operator.
    version : int
        Incremented on every change (lets agents notice a change between ticks). [-]
    """

    def __init__(self, onu_pon_ids: Iterable[str]) -> None:
        self.onu_pon = np.asarray(list(onu_pon_ids), dtype=object)
        n = len(self.onu_pon)
        self.provisioned = np.ones(n, dtype=bool)
        self.onu_enabled = np.ones(n, dtype=bool)
        self.disabled_pons: set[str] = set()
        self.version = 0

    def down_mask(self) -> np.ndarray:
        """ONUs the OLT keeps offline for an administrative reason."""
        down = ~self.provisioned | ~self.onu_enabled
        if self.disabled_pons:
            down = down | np.isin(self.onu_pon, list(self.disabled_pons))
        return down

    def any_down(self) -> bool:
        """Whether any ONU is administratively down (fast path for the tick)."""
        return bool(self.disabled_pons) or not (self.provisioned.all() and self.onu_enabled.all())

    def unprovision(self, rows: Iterable[int]) -> None:
        """Remove ONUs from their OLT's configuration (they show up in autofind)."""
        self.provisioned[list(rows)] = False
        self.version += 1

    def provision(self, row: int) -> None:
        """Authorize one ONU (it ranges at the next tick unless disabled)."""
        self.provisioned[row] = True
        self.onu_enabled[row] = True
        self.version += 1

    def set_onu_enabled(self, row: int, enabled: bool) -> None:
        """Activate or deactivate one ONU."""
        self.onu_enabled[row] = bool(enabled)
        self.version += 1

    def set_pon_enabled(self, pon_id: str, enabled: bool) -> None:
        """Open or shut one PON port (its ONUs go offline while it is shut)."""
        if enabled:
            self.disabled_pons.discard(pon_id)
        else:
            self.disabled_pons.add(pon_id)
        self.version += 1
