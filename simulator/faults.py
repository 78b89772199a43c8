"""The fault catalogue: when faults start, whom they hit and what they do to the fleet.

Fault start times are drawn up front (a Poisson process per kind, thickened during
storms), so that the sequence of faults is the same whatever policy later acts on the
network (common random numbers for backtests). How long a fault lasts may depend on
what happens: kinds that only a visit or a reboot can fix stay until someone fixes them.

Effects are additive counters on :class:`Effects`, so overlapping faults on the same ONU
compose and unwind correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from guardian_lib.schema import CAUSE_CLASSES
from simulator.scenario import Duration, Faults, FaultSpec, Scenario, Spread
from simulator.topology import Topology

__all__ = [
    "FAULT_KINDS",
    "CAUSE_CLASSES",
    "Fault",
    "Effects",
    "Storm",
    "draw_storms",
    "draw_faults",
    "sample_lognormal",
]

#: Cause class of each fault kind, and how it ends: 'timer' (a crew, the utility or the
#: customer fixes it after a sampled duration), 'visit' (only a technician fixes it),
#: 'timer_or_visit'.
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
}


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
    median = spec.median_h if isinstance(spec, Duration) else spec.median
    return median * np.exp(spec.sigma * rng.standard_normal(size))


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
    rx_step_db: np.ndarray = field(init=False)
    degr_rate: np.ndarray = field(init=False)
    degr_c: np.ndarray = field(init=False)
    txd_rate: np.ndarray = field(init=False)
    txd_c: np.ndarray = field(init=False)
    txd_cap_db: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name in ("los_n", "power_n", "pppoe_n", "hang_n", "leak_n", "wifi_n", "symptom_n"):
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
        if kind in ("feeder_cut", "olt_board_failure") or (
            kind == "box_fault" and fault.params.get("los", True)
        ):
            np.add.at(self.los_n, idx, sign)
        elif kind == "box_fault":
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
        if fault.params.get("dead", False):
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


def draw_storms(scenario: Scenario, n_regions: int, rng: np.random.Generator) -> list[Storm]:
    """Storms per region: Poisson in time, log-normal durations."""
    w = scenario.weather
    horizon = scenario.horizon_s
    storms = []
    for region in range(n_regions):
        n = rng.poisson(w.storms_per_year_per_region * horizon / (365 * 86400))
        starts = np.sort(rng.uniform(0, horizon, n))
        durs = sample_lognormal(rng, w.duration, n) * 3600
        storms += [Storm(region, float(s), float(s + d)) for s, d in zip(starts, durs, strict=True)]
    return storms


def _poisson_starts(
    rng: np.random.Generator, rate_per_year: float, n_units: int, t0: float, t1: float
) -> tuple[np.ndarray, np.ndarray]:
    """Start times and unit indices of a homogeneous Poisson process over units."""
    n = rng.poisson(rate_per_year * n_units * (t1 - t0) / (365 * 86400))
    return rng.uniform(t0, t1, n), rng.integers(0, max(n_units, 1), n)


# One drawn fault before numbering: kind, start [s], ONU indices, scope type, scope key,
# duration [s] (None: until fixed) and kind-specific parameters.
_RawFault = tuple[str, float, np.ndarray, str, str, "float | None", dict]


def _duration(spec: FaultSpec, r: np.random.Generator) -> float | None:
    """One duration of ``spec`` [s], or None when the fault lasts until fixed."""
    return float(sample_lognormal(r, spec.duration)) * 3600 if spec.duration else None


def _starts_with_storms(
    r: np.random.Generator,
    spec: FaultSpec,
    unit_region: np.ndarray,
    mult: float,
    storms: list[Storm],
    horizon: float,
) -> list[tuple[float, int]]:
    """Start times [s] and unit indices: the base rate plus each storm's extra rate."""
    starts, units = _poisson_starts(r, spec.rate_per_year, len(unit_region), 0, horizon)
    out = list(zip(starts.tolist(), units.tolist(), strict=True))
    for storm in storms:
        members = np.flatnonzero(unit_region == storm.region)
        if len(members) == 0 or mult <= 1:
            continue
        s, u = _poisson_starts(
            r, spec.rate_per_year * (mult - 1), len(members), storm.start_s, storm.end_s
        )
        out += list(zip(s.tolist(), members[u].tolist(), strict=True))
    return out


def _fibre_faults(
    scenario: Scenario, topo: Topology, storms: list[Storm], streams: dict
) -> list[_RawFault]:
    """Feeder cuts (per PON) and box faults (per second-stage splitter)."""
    f = scenario.faults
    horizon = scenario.horizon_s
    pon_ids = topo.pons["pon_id"].to_numpy()
    box_ids = topo.splitters.loc[topo.splitters["level"] == 2, "splitter_id"].to_numpy()
    olt_region = np.zeros(len(topo.olts), dtype=np.int64)
    olt_region[topo.onu_olt] = topo.onu_region
    pon_region = olt_region[topo.pon_olt]
    box_region = pon_region[topo.box_pon]
    mult = scenario.weather.fibre_cut_multiplier
    faults: list[_RawFault] = []
    r = streams["feeder_cut"]
    for start, pon in _starts_with_storms(r, f.feeder_cut, pon_region, mult, storms, horizon):
        onus = np.flatnonzero(topo.onu_pon == pon)
        dur = _duration(f.feeder_cut, r)
        faults.append(("feeder_cut", start, onus, "pon", pon_ids[pon], dur, {}))
    r = streams["box_fault"]
    for start, box in _starts_with_storms(r, f.box_fault, box_region, mult, storms, horizon):
        onus = np.flatnonzero(topo.onu_box == box)
        los = bool(r.random() < f.box_fault_los_share)
        params = {"los": los, "step_db": 0.0 if los else float(r.uniform(4.0, 9.0))}
        faults.append(
            ("box_fault", start, onus, "box", box_ids[box], _duration(f.box_fault, r), params)
        )
    return faults


def _board_faults(scenario: Scenario, topo: Topology, streams: dict) -> list[_RawFault]:
    """OLT board failures (every ONU of the board)."""
    f = scenario.faults
    r = streams["olt_board_failure"]
    olt_ids = topo.olts["olt_id"].to_numpy()
    boards_per_olt = scenario.topology.boards_per_olt
    starts, boards = _poisson_starts(
        r, f.olt_board_failure.rate_per_year, topo.n_boards, 0, scenario.horizon_s
    )
    faults: list[_RawFault] = []
    for start, board in zip(starts.tolist(), boards.tolist(), strict=True):
        onus = np.flatnonzero(topo.onu_board == board)
        key = f"{olt_ids[board // boards_per_olt]}/{board % boards_per_olt + 1}"
        dur = _duration(f.olt_board_failure, r)
        faults.append(("olt_board_failure", start, onus, "board", key, dur, {}))
    return faults


def _power_faults(
    scenario: Scenario, topo: Topology, storms: list[Storm], streams: dict
) -> list[_RawFault]:
    """Power outages: every ONU of a region within a random radius of a random ONU."""
    f = scenario.faults
    r = streams["power_outage"]
    region_units = np.arange(len(topo.regions))
    mult = scenario.weather.power_outage_multiplier
    faults: list[_RawFault] = []
    for start, region in _starts_with_storms(
        r, f.power_outage, region_units, mult, storms, scenario.horizon_s
    ):
        members = np.flatnonzero(topo.onu_region == region)
        if len(members) == 0:
            continue
        centre = topo.onu_xy_km[members[r.integers(len(members))]]
        radius = f.power_outage_radius_km * float(r.uniform(0.4, 1.0))
        d = np.hypot(*(topo.onu_xy_km[members] - centre).T)
        onus = members[d <= radius]
        key = f"{topo.regions[region]}@{centre[0]:.2f},{centre[1]:.2f}km r={radius:.2f}"
        faults.append(("power_outage", start, onus, "geo", key, _duration(f.power_outage, r), {}))
    return faults


def _upstream_faults(scenario: Scenario, topo: Topology, streams: dict) -> list[_RawFault]:
    """Upstream (BNG) failures: a share of a region's OLTs."""
    f = scenario.faults
    r = streams["upstream_failure"]
    olt_ids = topo.olts["olt_id"].to_numpy()
    starts, regions = _poisson_starts(
        r, f.upstream_failure.rate_per_year, len(topo.regions), 0, scenario.horizon_s
    )
    faults: list[_RawFault] = []
    for start, region in zip(starts.tolist(), regions.tolist(), strict=True):
        olts = np.unique(topo.onu_olt[topo.onu_region == region])
        k = max(1, int(round(f.upstream_share * len(olts))))
        chosen = np.sort(r.choice(olts, size=k, replace=False))
        onus = np.flatnonzero(np.isin(topo.onu_olt, chosen))
        key = f"BNG-{topo.regions[region]}:" + ",".join(olt_ids[chosen])
        dur = _duration(f.upstream_failure, r)
        faults.append(("upstream_failure", start, onus, "bng", key, dur, {}))
    return faults


def _customer_params(
    kind: str, spec: FaultSpec, f: Faults, r: np.random.Generator
) -> tuple[float | None, dict]:
    """Duration [s] and parameters of one per-customer fault (draws in a fixed order)."""
    params: dict = {}
    dur = _duration(spec, r)
    if kind == "cpe_hang":
        dur = float(sample_lognormal(r, f.cpe_self_reboot)) * 3600
        leaks = bool(r.random() < f.cpe_hang_precursor_share)
        params["precursor_s"] = (
            float(sample_lognormal(r, f.cpe_hang_precursor)) * 3600 if leaks else 0.0
        )
    elif kind == "fibre_degradation":
        params["db_per_s"] = float(sample_lognormal(r, f.degradation_db_per_day)) / 86400
    elif kind == "hardware_failure":
        sudden = bool(r.random() < f.hardware_sudden_share)
        params["dead"] = sudden
        params["drift_s"] = 0.0 if sudden else float(sample_lognormal(r, f.hardware_drift)) * 3600
        params["drift_db"] = float(r.uniform(4.0, 8.0))
    return dur, params


def _wifi_recurrences(
    first: _RawFault, spec: FaultSpec, f: Faults, r: np.random.Generator, horizon: float
) -> list[_RawFault]:
    """Episodes of Wi-Fi interference that follow ``first`` (each ``follows`` the one before)."""
    # The engine skips a recurrence whose predecessor was fixed by a visit.
    kind, start, onus, scope, key, dur, params = first
    faults: list[_RawFault] = []
    prev, t = params, start + dur
    while t < horizon and r.random() < f.wifi_recurrence_prob:
        t += float(sample_lognormal(r, f.wifi_recurrence_gap)) * 3600
        if t >= horizon:
            break
        nxt = {"follows": prev}
        d = float(sample_lognormal(r, spec.duration)) * 3600
        faults.append((kind, t, np.array([onus[0]]), scope, key, d, nxt))
        prev, t = nxt, t + d
    return faults


def _customer_faults(scenario: Scenario, topo: Topology, streams: dict) -> list[_RawFault]:
    """Faults of one customer each (CPE, Wi-Fi, power off, hardware, drop fibre)."""
    f = scenario.faults
    horizon = scenario.horizon_s
    onu_ids = topo.onus["onu_id"].to_numpy()
    per_customer = {
        "cpe_hang": f.cpe_hang,
        "wifi_interference": f.wifi_interference,
        "customer_power_off": f.customer_power_off,
        "hardware_failure": f.hardware_failure,
        "fibre_degradation": f.fibre_degradation,
    }
    faults: list[_RawFault] = []
    for kind, spec in per_customer.items():
        r = streams[kind]
        starts, units = _poisson_starts(r, spec.rate_per_year, topo.n_onus, 0, horizon)
        scope = FAULT_KINDS[kind]["scope"]
        for start, u in zip(starts.tolist(), units.tolist(), strict=True):
            dur, params = _customer_params(kind, spec, f, r)
            key = onu_ids[u] if scope == "onu" else f"customer:{onu_ids[u]}"
            faults.append((kind, start, np.array([u]), scope, key, dur, params))
            if kind == "wifi_interference" and dur is not None:
                faults += _wifi_recurrences(faults[-1], spec, f, r, horizon)
    return faults


def _symptom_faults(scenario: Scenario, topo: Topology, streams: dict) -> list[_RawFault]:
    """Symptoms that no fault explains (UNKNOWN): short loss / latency episodes."""
    r = streams["symptom"]
    onu_ids = topo.onus["onu_id"].to_numpy()
    rate = scenario.data_quality.unexplained_symptoms_per_year
    starts, units = _poisson_starts(r, rate, topo.n_onus, 0, scenario.horizon_s)
    faults: list[_RawFault] = []
    for start, u in zip(starts.tolist(), units.tolist(), strict=True):
        dur = float(r.uniform(0.25, 1.5)) * 3600
        faults.append(("symptom", start, np.array([u]), "onu", onu_ids[u], dur, {}))
    return faults


def _number_faults(faults: list[_RawFault]) -> list[Fault]:
    """Sort by start time, number them and turn ``follows`` into the fault id it follows."""
    faults.sort(key=lambda x: (x[1], x[0]))
    out: list[Fault] = []
    by_params: dict[int, Fault] = {}
    for i, (kind, start, onus, scope, key, dur, params) in enumerate(faults):
        out.append(
            Fault(
                fault_id=f"F{i + 1:07d}",
                kind=kind,
                start_s=start,
                onus=np.asarray(onus, dtype=np.int64),
                scope_type=scope,
                scope_key=str(key),
                duration_s=dur,
                params=params,
            )
        )
        by_params[id(params)] = out[-1]
    for fault in out:
        if "follows" in fault.params:
            fault.params["follows"] = by_params[id(fault.params["follows"])].fault_id
    return out


def draw_faults(
    scenario: Scenario, topo: Topology, storms: list[Storm], rng: np.random.Generator
) -> list[Fault]:
    """Draw every fault of the scenario (sorted by start time).

    Parameters
    ----------
    scenario : Scenario
    topo : Topology
    storms : list of Storm
        Storms multiply fibre-cut, box and power-outage rates in their region.
    rng : numpy.random.Generator
        Spawned into one stream per fault kind, so that changing one kind's rate does
        not reshuffle the others.

    Returns
    -------
    list of Fault
    """
    streams = dict(zip([*FAULT_KINDS, "symptom"], rng.spawn(len(FAULT_KINDS) + 1), strict=True))
    faults = [
        *_fibre_faults(scenario, topo, storms, streams),
        *_board_faults(scenario, topo, streams),
        *_power_faults(scenario, topo, storms, streams),
        *_upstream_faults(scenario, topo, streams),
        *_customer_faults(scenario, topo, streams),
        *_symptom_faults(scenario, topo, streams),
    ]
    return _number_faults(faults)
