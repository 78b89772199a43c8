"""What a fault is and what it does: the kinds, one occurrence, storms, the fleet's effects.

:mod:`simulator.faults` draws when faults start and whom they hit; this module holds the
things it draws (:class:`Fault`, :class:`Storm`) and :class:`Effects`, the per-ONU
counters through which active faults change the readings. Effects are additive, so
overlapping faults on the same ONU compose and unwind correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from guardian_lib.schema import CAUSE_CLASSES
from simulator.scenario import Duration, Spread

__all__ = [
    "FAULT_KINDS",
    "DRAWN_KINDS",
    "CAUSE_CLASSES",
    "Fault",
    "Effects",
    "Storm",
    "lognormal_at",
    "sample_lognormal",
]


#: Cause class of each fault kind, its scope, and how it ends: 'timer' (a crew, the
#: utility or the customer fixes it after a sampled duration), 'visit' (only a technician
#: fixes it), 'timer_or_visit' (whichever comes first; a visit at the premises fixes it).
FAULT_KINDS: dict[str, dict] = {
    "feeder_cut": {"class": "MASSIVE_OUTAGE", "scope": "pon", "ends": "timer"},
    "box_fault": {"class": "MASSIVE_OUTAGE", "scope": "box", "ends": "timer"},
    "olt_board_failure": {"class": "MASSIVE_OUTAGE", "scope": "board", "ends": "timer"},
    "power_outage": {"class": "MASSIVE_OUTAGE", "scope": "geo", "ends": "timer"},
    "upstream_failure": {"class": "EXTERNAL_NETWORK", "scope": "bng", "ends": "timer"},
    "cpe_hang": {"class": "CUSTOMER_PREMISES", "scope": "customer", "ends": "timer_or_visit"},
    "wifi_interference": {
        "class": "CUSTOMER_PREMISES",
        "scope": "customer",
        "ends": "timer_or_visit",
    },
    "customer_power_off": {"class": "CUSTOMER_PREMISES", "scope": "customer", "ends": "timer"},
    "hardware_failure": {"class": "EQUIPMENT_FAIL", "scope": "onu", "ends": "visit"},
    "fibre_degradation": {"class": "INTERMITTENT", "scope": "onu", "ends": "visit"},
    # A box fault on a street box that serves a single ONU (drawn as a box_fault, same
    # rate and draws). DESIGN calls an outage massive when two or more ONUs of one box or
    # PON go down together; this one darkens one customer and is, for the ISP, a fault of
    # that customer's drop (the drop's port or connector in the box): INTERMITTENT, the
    # class of the passive drop path (dirty connector, bend, degrading drop), whose fix
    # is a visit — not EQUIPMENT_FAIL, nothing at the premises is replaced. Only the
    # technician sent to the dark ONU finds and fixes it: the NOC sees one dark ONU, as
    # for a dead ONU, and no crew is dispatched for it (a crew comes to a box fault
    # because two or more customers of the box went dark). ``Faults.lone_box_crew``
    # restores a crew on the box fault's own clock (then whichever comes first).
    "box_drop_fault": {
        "class": "INTERMITTENT",
        "scope": "box",
        "ends": "visit",
        "drawn_as": "box_fault",
    },
}
#: Kinds with a rate and a random stream of their own (in this order: the streams are
#: spawned in it); a kind with ``drawn_as`` is what one of them becomes on some units.
DRAWN_KINDS: tuple[str, ...] = tuple(k for k, v in FAULT_KINDS.items() if "drawn_as" not in v)


def sample_lognormal(
    rng: np.random.Generator, spec: Duration | Spread, size: int | None = None
) -> np.ndarray:
    """Draw from a log-normal given by median and p90 (hours for a Duration).

    Parameters
    ----------
    rng : numpy.random.Generator
    spec : Duration or Spread
    size : int, optional

    Returns
    -------
    ndarray or float
        Samples in the unit of ``spec`` (hours for :class:`Duration`).
    """
    return lognormal_at(spec, rng.standard_normal(size))


def lognormal_at(spec: Duration | Spread, z: float | np.ndarray) -> np.ndarray:
    """The log-normal of ``spec`` at the standard normal value(s) ``z``.

    :func:`sample_lognormal` draws ``z`` itself; callers that keep their own keyed
    draws (common random numbers, see :class:`simulator.operations.Operations`) pass them.

    Parameters
    ----------
    spec : Duration or Spread
    z : float or ndarray
        Standard normal value(s). [-]

    Returns
    -------
    ndarray or float
        ``median * exp(sigma * z)`` in the unit of ``spec`` (hours for :class:`Duration`).
    """
    median = spec.median_h if isinstance(spec, Duration) else spec.median
    return median * np.exp(spec.sigma * z)


@dataclass
class Fault:
    """One fault occurrence (a row of ``faults_truth``)."""

    fault_id: str
    kind: str
    start_s: float
    onus: np.ndarray
    scope_type: str
    scope_key: str
    duration_s: float | None
    params: dict = field(default_factory=dict)
    end_s: float | None = None
    impact_start_s: float | None = None
    fixed_by: str | None = None
    #: Rows of ``onus`` the fault hurts, when it hurts only some of them (a box's RX
    #: step takes below the impact level only the ONUs with the least margin); ``None``:
    #: all of them.
    hurt_onus: np.ndarray | None = None

    @property
    def cause_class(self) -> str:
        """The fault's cause class (one of :data:`CAUSE_CLASSES`)."""
        return FAULT_KINDS.get(self.kind, {}).get("class", "UNKNOWN")

    @property
    def fixable_by_reboot(self) -> bool:
        """Whether a remote CPE reboot can clear it."""
        return self.kind == "cpe_hang"

    @property
    def fixable_by_visit(self) -> bool:
        """Whether a technician at the customer's premises can clear it."""
        return FAULT_KINDS.get(self.kind, {}).get("ends") in ("visit", "timer_or_visit")

    @property
    def needs_visit(self) -> bool:
        """Whether only a technician ends it: nothing else (timer, reboot) ever does.

        A drifting laser, a degrading fibre, and a fault of a one-ONU street box that no
        crew comes for (``box_drop_fault`` without ``Faults.lone_box_crew``).
        """
        return FAULT_KINDS.get(self.kind, {}).get("ends") == "visit" and self.duration_s is None

    @property
    def recorded(self) -> bool:
        """Whether the fault belongs in ``faults_truth``.

        Unexplained symptoms do not, nor a Wi-Fi recurrence that never happened because a
        visit fixed the episode before it.
        """
        return self.kind in FAULT_KINDS and not self.params.get("skipped", False)


@dataclass
class Effects:
    """Per-ONU effect counters that active faults add to and remove from.

    ``rx_offset_db(t) = degr_rate · t − degr_c + rx_step_db`` lets several linear
    degradations that started at different times be summed without per-fault state
    in the tick loop; TX drift works the same way.
    """

    n: int
    los_n: np.ndarray = field(init=False)
    power_n: np.ndarray = field(init=False)
    pppoe_n: np.ndarray = field(init=False)
    hang_n: np.ndarray = field(init=False)
    leak_n: np.ndarray = field(init=False)
    wifi_n: np.ndarray = field(init=False)
    symptom_n: np.ndarray = field(init=False)
    psu_n: np.ndarray = field(init=False)
    rx_step_db: np.ndarray = field(init=False)
    degr_rate: np.ndarray = field(init=False)
    degr_c: np.ndarray = field(init=False)
    txd_rate: np.ndarray = field(init=False)
    txd_c: np.ndarray = field(init=False)
    txd_cap_db: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name in ("los_n", "power_n", "pppoe_n", "hang_n", "leak_n", "wifi_n", "symptom_n",
                     "psu_n"):  # fmt: skip
            setattr(self, name, np.zeros(self.n, dtype=np.int16))
        for name in ("rx_step_db", "degr_rate", "degr_c", "txd_rate", "txd_c", "txd_cap_db"):
            setattr(self, name, np.zeros(self.n, dtype=np.float64))

    def rx_offset_db(self, now_s: float) -> np.ndarray:
        """Extra downstream loss of each ONU at ``now_s``, capped at 20 dB. [dB]"""
        return np.minimum(self.degr_rate * now_s - self.degr_c, 20.0) + self.rx_step_db

    def tx_drift_db(self, now_s: float) -> np.ndarray:
        """Loss of ONU laser power at ``now_s``. [dB]"""
        return np.minimum(self.txd_rate * now_s - self.txd_c, self.txd_cap_db)

    def apply(self, fault: Fault, now_s: float, sign: int = 1) -> None:
        """Add (``sign=1``) or remove (``sign=-1``) a fault's effect."""
        idx = fault.onus
        kind = fault.kind
        box = kind in ("box_fault", "box_drop_fault")
        if kind in ("feeder_cut", "olt_board_failure") or (box and fault.params.get("los", True)):
            np.add.at(self.los_n, idx, sign)
        elif box:
            np.add.at(self.rx_step_db, idx, sign * fault.params["step_db"])
        elif kind in ("power_outage", "customer_power_off"):
            np.add.at(self.power_n, idx, sign)
        elif kind == "upstream_failure":
            np.add.at(self.pppoe_n, idx, sign)
        elif kind == "cpe_hang":
            # Before it hangs, a leaking CPE only slows down (see hang_cpe).
            leaking = fault.params.get("precursor_s", 0.0) > 0 and not fault.params.get("hung")
            np.add.at(self.leak_n if leaking else self.hang_n, idx, sign)
        elif kind == "wifi_interference":
            np.add.at(self.wifi_n, idx, sign)
        elif kind == "symptom":
            np.add.at(self.symptom_n, idx, sign)
        elif kind == "fibre_degradation":
            rate = fault.params["db_per_s"]
            np.add.at(self.degr_rate, idx, sign * rate)
            np.add.at(self.degr_c, idx, sign * rate * fault.start_s)
        elif kind == "hardware_failure":
            self._apply_hardware(fault, sign)
        else:  # pragma: no cover - guarded by FAULT_KINDS
            raise ValueError(f"unknown fault kind {kind!r}")

    def _apply_hardware(self, fault: Fault, sign: int) -> None:
        idx = fault.onus
        drift_s = fault.params.get("drift_s", 0.0)
        if drift_s > 0:
            rate = fault.params["drift_db"] / drift_s
            np.add.at(self.txd_rate, idx, sign * rate)
            np.add.at(self.txd_c, idx, sign * rate * fault.start_s)
            np.add.at(self.txd_cap_db, idx, sign * fault.params["drift_db"])
        if fault.params.get("power_supply", False):
            # A failed power supply: the ONU loses power (a dying gasp), not its light.
            np.add.at(self.power_n, idx, sign)
            np.add.at(self.psu_n, idx, sign)
        elif fault.params.get("dead", False):
            np.add.at(self.los_n, idx, sign)

    def hang_cpe(self, fault: Fault) -> None:
        """End the leak phase of a CPE hang: the CPE stops forwarding."""
        np.add.at(self.leak_n, fault.onus, -1)
        fault.params["hung"] = True
        np.add.at(self.hang_n, fault.onus, 1)

    def kill_hardware(self, fault: Fault) -> None:
        """End the drift phase of a hardware failure: the ONU goes dark."""
        fault.params["dead"] = True
        np.add.at(self.los_n, fault.onus, 1)


@dataclass
class Storm:
    """A storm over one region. [s] since scenario start."""

    region: int
    start_s: float
    end_s: float
