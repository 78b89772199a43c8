"""Where CPE agents take their live values from.

A *state source* gives, per device id, the values a real CPE would measure (optical
RX, uptime, PPPoE state, online) and takes the effect of a reboot. Agents run
standalone with :class:`StaticStateSource` (plausible values from a seed) and inside
the closed loop with :class:`SimulationStateSource`, an adapter over the
simulator's ``Simulation`` (duck-typed: ``topology.customers``, ``state`` arrays
aligned with ``topology.onus`` and ``reboot_cpe(onu_id)``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DeviceIdentity",
    "StateSource",
    "StaticStateSource",
    "SimulationStateSource",
    "make_identities",
]


@dataclass(frozen=True)
class DeviceIdentity:
    """Who a CPE says it is in its Inform ``DeviceId``."""

    oui: str
    product_class: str
    serial: str
    manufacturer: str = "Guardian"
    firmware: str = "V1.0.0"
    wifi_channel: int = 6

    @property
    def device_id(self) -> str:
        """GenieACS-style id ``OUI-ProductClass-SerialNumber``."""
        from acs_emulator.cwmp.server import device_id_of

        return device_id_of(self.oui, self.product_class, self.serial)


@runtime_checkable
class StateSource(Protocol):
    """Live values of CPEs, by device id.

    ``values(device_id)`` returns a dict with (at least) ``rx_dbm`` [dBm, NaN when no
    light], ``online`` [bool], ``uptime_s`` [s], ``pppoe_up`` [bool]; ``reboot``
    applies a reboot's effect (the device is down for a while; a hang may clear).
    """

    def values(self, device_id: str) -> dict[str, Any]:
        """Current values of ``device_id``."""
        ...

    def reboot(self, device_id: str) -> None:
        """Apply the effect of a reboot of ``device_id``."""
        ...


def make_identities(
    count: int, *, oui: str = "00259E", product_class: str = "HG8245Q2", seed: int = 0
) -> list[DeviceIdentity]:
    """``count`` distinct identities with serials derived from ``seed``.

    Examples
    --------
    >>> make_identities(1, seed=1)[0].device_id.startswith("00259E-HG8245Q2-")
    True
    """
    rng = np.random.default_rng(seed)
    base = int(rng.integers(0x10000000, 0x7FFFFFFF))
    return [
        DeviceIdentity(
            oui, product_class, f"GDN{base + i:08X}", wifi_channel=int(rng.choice([1, 6, 11]))
        )
        for i in range(count)
    ]


class StaticStateSource:
    """Plausible, slowly varying values from a seed (no simulator needed).

    Parameters
    ----------
    seed : int, default 0
        Seed of the per-device baseline RX and uptime.
    clock : callable, default time.monotonic
        Clock for uptime. [s]
    """

    def __init__(self, seed: int = 0, clock: Any = time.monotonic) -> None:
        self.seed = seed
        self.clock = clock
        self._base: dict[str, tuple[float, float]] = {}
        self.reboots: dict[str, int] = {}

    def _baseline(self, device_id: str) -> tuple[float, float]:
        if device_id not in self._base:
            digest = sum(device_id.encode()) * 7919 + len(device_id)
            rng = np.random.default_rng([self.seed, digest])
            rx_dbm = float(rng.uniform(-24.0, -16.0))
            boot = self.clock() - float(rng.integers(3_600, 30 * 86_400))
            self._base[device_id] = (rx_dbm, boot)
        return self._base[device_id]

    def values(self, device_id: str) -> dict[str, Any]:
        """Baseline RX with ±0.2 dB ripple, uptime since the last (re)boot, PPPoE up."""
        rx_dbm, boot = self._baseline(device_id)
        now = self.clock()
        ripple = 0.2 * math.sin(now / 60.0 + sum(device_id.encode()) % 7)
        return {
            "rx_dbm": round(rx_dbm + ripple, 3),
            "online": True,
            "uptime_s": int(now - boot),
            "pppoe_up": True,
            "hung": False,
        }

    def reboot(self, device_id: str) -> None:
        """Restart the uptime clock of ``device_id``."""
        rx_dbm, _ = self._baseline(device_id)
        self._base[device_id] = (rx_dbm, self.clock())
        self.reboots[device_id] = self.reboots.get(device_id, 0) + 1


class SimulationStateSource:
    """Adapter giving agents the values of a running ``simulator.engine.Simulation``.

    Parameters
    ----------
    sim : object
        Needs ``topology.customers`` (columns ``cpe_id``, ``onu_id``, ``cpe_oui``,
        ``cpe_product_class``, ``cpe_serial``, optional ``firmware``,
        ``wifi_channel``), ``topology.onus`` (column ``onu_id``), ``state`` with
        arrays ``rx_dbm``, ``online``, ``uptime_s``, ``pppoe_up``, ``cpe_hung`` aligned
        with ``topology.onus`` rows, and ``reboot_cpe(onu_id)``.
    """

    def __init__(self, sim: Any) -> None:
        self.sim = sim
        customers = sim.topology.customers
        onu_row = {o: i for i, o in enumerate(sim.topology.onus["onu_id"].tolist())}
        self._row: dict[str, int] = {}
        self._onu: dict[str, str] = {}
        from acs_emulator.cwmp.server import device_id_of

        for r in customers[
            ["cpe_id", "onu_id", "cpe_oui", "cpe_product_class", "cpe_serial"]
        ].itertuples(index=False):
            ours = device_id_of(str(r.cpe_oui), str(r.cpe_product_class), str(r.cpe_serial))
            for key in {str(r.cpe_id), ours}:
                self._row[key] = onu_row[r.onu_id]
                self._onu[key] = str(r.onu_id)

    def identities(self, count: int | None = None) -> list[DeviceIdentity]:
        """Identities of the simulated CPEs (the first ``count``, or all)."""
        c = self.sim.topology.customers
        rows = c if count is None else c.head(count)
        out = []
        for r in rows.itertuples(index=False):
            out.append(
                DeviceIdentity(
                    str(r.cpe_oui),
                    str(r.cpe_product_class),
                    str(r.cpe_serial),
                    firmware=str(getattr(r, "firmware", "V1.0.0")),
                    wifi_channel=int(getattr(r, "wifi_channel", 6)),
                )
            )
        return out

    def values(self, device_id: str) -> dict[str, Any]:
        """Values of the ONU behind ``device_id`` at the simulation's current tick."""
        i = self._row[device_id]
        st = self.sim.state
        if st is None:  # before the first tick: up, no reading yet
            return {
                "rx_dbm": float("nan"),
                "online": True,
                "uptime_s": 0,
                "pppoe_up": True,
                "hung": False,
            }
        return {
            "rx_dbm": float(st.rx_dbm[i]),
            "online": bool(st.online[i]),
            "uptime_s": int(st.uptime_s[i]),
            "pppoe_up": bool(st.pppoe_up[i]),
            "hung": bool(st.cpe_hung[i]),
        }

    def reboot(self, device_id: str) -> None:
        """Forward the reboot to the simulator (``sim.reboot_cpe(onu_id, by="acs")``)."""
        self.sim.reboot_cpe(self._onu[device_id], by="acs")
