"""The fault catalogue: when faults start, whom they hit and what they do to the fleet.

Fault start times are drawn up front (a Poisson process per kind, thickened during
storms), so that the sequence of faults is the same whatever policy later acts on the
network (common random numbers for backtests). How long a fault lasts may depend on
what happens: kinds that only a visit or a reboot can fix stay until someone fixes them.

What a fault is and does (:class:`Fault`, :class:`Storm`, :class:`Effects`, the kinds)
lives in :mod:`simulator.fault_model`; it is re-exported here.
"""

from __future__ import annotations

import numpy as np

from simulator.fault_model import (
    CAUSE_CLASSES,
    DRAWN_KINDS,
    FAULT_KINDS,
    Effects,
    Fault,
    Storm,
    sample_lognormal,
)
from simulator.scenario import Faults, FaultSpec, Scenario
from simulator.topology import Topology

__all__ = [
    "FAULT_KINDS",
    "DRAWN_KINDS",
    "CAUSE_CLASSES",
    "Fault",
    "Effects",
    "Storm",
    "draw_storms",
    "draw_faults",
    "sample_lognormal",
]


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
        # On a box of one ONU it is that customer's drop fault (FAULT_KINDS); the kind
        # follows from the topology, the draws are the same (its duration is drawn and,
        # unless a crew comes for such a box, dropped: only a visit ends it).
        kind = "box_drop_fault" if len(onus) == 1 else "box_fault"
        dur = _duration(f.box_fault, r)
        if kind == "box_drop_fault" and not f.lone_box_crew:
            dur = None
        faults.append((kind, start, onus, "box", box_ids[box], dur, params))
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
        # Drawn only when the scenario has power-supply failures (other draws unchanged).
        if f.hardware_power_supply_share > 0 and r.random() < f.hardware_power_supply_share:
            params.update(dead=True, drift_s=0.0, power_supply=True)
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
        Spawned into one stream per drawn fault kind (:data:`DRAWN_KINDS`), so that
        changing one kind's rate does not reshuffle the others.

    Returns
    -------
    list of Fault
    """
    streams = dict(zip([*DRAWN_KINDS, "symptom"], rng.spawn(len(DRAWN_KINDS) + 1), strict=True))
    faults = [
        *_fibre_faults(scenario, topo, storms, streams),
        *_board_faults(scenario, topo, streams),
        *_power_faults(scenario, topo, storms, streams),
        *_upstream_faults(scenario, topo, streams),
        *_customer_faults(scenario, topo, streams),
        *_symptom_faults(scenario, topo, streams),
    ]
    return _number_faults(faults)
