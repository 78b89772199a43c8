"""Sharded simulation: the fleet cut into regions, run as Dask tasks, one output.

The unit of sharding is the **region** (a technicians' crew area, a BNG's reach): field
crews are shared by every OLT of a region, so splitting a region's OLTs over processes
would change what the model means (who waits for which technician). Regions are
independent once the network-wide draws are made, so:

1. the network (inventory), storms and every fault (feeder cuts, boxes, boards, power
   outages, BNG / upstream failures, customers' faults) are drawn **once** for the
   whole fleet, from the scenario seed, exactly as :class:`~simulator.engine.Simulation`
   draws them;
2. each region runs as its own :class:`~simulator.engine.Simulation` with its own
   random streams (tick noise, calls, operations, data quality, action outcomes),
   spawned from the scenario seed with :class:`numpy.random.SeedSequence` under a
   spawn key that names the region — never from a stream another region also reads;
3. region *r* writes ``sim-part-{r:04d}.parquet`` in each ``date=`` folder of the same
   hive layout; service orders are numbered after the merge, by (opening time, region,
   order within the region).

So the files of ``--shards N`` are the same, row for row, for any N and any order in
which the shards run: a shard is only a bucket of regions. They are *not* the files of
the unsharded engine (one stream for the whole fleet, which couples every ONU's
draws); inventory and fault start times are the same, the per-tick draws differ.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.engine import SimParts, Simulation
from simulator.faults import Fault, Storm, draw_faults, draw_storms
from simulator.output import (
    RunWriter,
    check_out_dir,
    faults_truth_frame,
    service_orders_frame,
    write_run_tables,
)
from simulator.scenario import Scenario
from simulator.topology import Topology, build_topology

__all__ = [
    "STREAMS_LAYOUT",
    "RegionPart",
    "fleet_draws",
    "region_streams",
    "region_parts",
    "assign_shards",
    "simulate_regions",
    "simulate_sharded",
]

#: Spawn-key namespace of the per-region streams (distinct from the engine's 0..6).
_REGION_SPAWN_KEY = 0x5EED
#: Written in ``run.json`` so that readers know which engine's numbers they hold.
STREAMS_LAYOUT = "per-region/1"
_ONU_ARRAYS = (
    "onu_pon", "onu_box", "onu_olt", "onu_region", "onu_board",
    "base_rx_dbm", "base_tx_dbm", "base_olt_rx_dbm", "onu_xy_km", "onu_vendor",
)  # fmt: skip


@dataclass
class RegionPart:
    """What one region needs to run on its own (picklable: shipped to a Dask worker).

    Attributes
    ----------
    region : int
        Index in ``scenario.topology.regions``; also the part-file number.
    topology : Topology
        The region's ONUs (per-ONU arrays cut to them; OLT / PON / box tables and
        indices stay the fleet's).
    storms : list of Storm
    faults : list of Fault
        Copies of the region's faults, ``onus`` re-indexed to the region's rows.
    """

    region: int
    topology: Topology
    storms: list[Storm]
    faults: list[Fault]

    @property
    def n_onus(self) -> int:
        """ONUs of the region. [-]"""
        return self.topology.n_onus


def fleet_draws(scenario: Scenario) -> tuple[Topology, list[Storm], list[Fault]]:
    """The network, storms and faults of the whole fleet, drawn once.

    Uses the same streams as :class:`~simulator.engine.Simulation` (children 0 and 1 of
    the scenario seed), so the inventory and fault list equal the unsharded engine's.
    """
    r_topo, r_faults = np.random.default_rng(scenario.seed).spawn(7)[:2]
    topology = build_topology(scenario, r_topo)
    storms = draw_storms(scenario, len(topology.regions), r_faults)
    faults = draw_faults(scenario, topology, storms, r_faults)
    return topology, storms, faults


def region_streams(seed: int, region: int) -> tuple[np.random.Generator, ...]:
    """The five streams of one region (tick, calls, operations, data quality, actions).

    Depend only on ``seed`` and ``region``: not on how many shards there are, nor on
    which one runs the region, nor when.
    """
    root = np.random.SeedSequence(seed, spawn_key=(_REGION_SPAWN_KEY, region))
    return tuple(np.random.default_rng(s) for s in root.spawn(5))


def _sub_topology(topo: Topology, rows: np.ndarray) -> Topology:
    cut = {name: getattr(topo, name)[rows] for name in _ONU_ARRAYS}
    return dataclasses.replace(
        topo,
        onus=topo.onus.iloc[rows].reset_index(drop=True),
        customers=topo.customers.iloc[rows].reset_index(drop=True),
        **cut,
    )


def region_parts(topology: Topology, storms: list[Storm], faults: list[Fault]) -> list[RegionPart]:
    """Cut the fleet into regions (regions without ONUs are left out).

    Every fault scope (PON, box, board, power-outage area, BNG) lies inside one region;
    a fault that hits no ONU goes with the first region so that it is still recorded.

    Raises
    ------
    ValueError
        A fault's ONUs span two regions (the model has no such scope).
    """
    n_regions = len(topology.regions)
    local = np.empty(topology.n_onus, dtype=np.int64)
    rows_of = []
    for r in range(n_regions):
        rows = np.flatnonzero(topology.onu_region == r)
        local[rows] = np.arange(len(rows))
        rows_of.append(rows)
    present = [r for r in range(n_regions) if len(rows_of[r])]
    by_region: dict[int, list[Fault]] = {r: [] for r in present}
    for fault in faults:
        regions = np.unique(topology.onu_region[fault.onus])
        if len(regions) > 1:
            raise ValueError(f"fault {fault.fault_id} ({fault.kind}) spans regions {regions}")
        r = int(regions[0]) if len(regions) else present[0]
        by_region[r].append(
            dataclasses.replace(fault, onus=local[fault.onus], params=dict(fault.params))
        )
    return [
        RegionPart(r, _sub_topology(topology, rows_of[r]), storms, by_region[r]) for r in present
    ]


def assign_shards(sizes: Sequence[int], n_shards: int) -> list[list[int]]:
    """Deal regions to shards, largest first to the lightest shard (deterministic).

    Parameters
    ----------
    sizes : sequence of int
        ONUs of each region (the work). [-]
    n_shards : int

    Returns
    -------
    list of list of int
        Positions in ``sizes``, per shard.

    Raises
    ------
    ValueError
        ``n_shards`` is below 1 or above the number of regions.
    """
    if n_shards < 1 or n_shards > len(sizes):
        raise ValueError(
            f"--shards {n_shards}: must be between 1 and the scenario's {len(sizes)} "
            "region(s) with ONUs (a region is the unit of sharding)"
        )
    load = [0] * n_shards
    shards: list[list[int]] = [[] for _ in range(n_shards)]
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        k = min(range(n_shards), key=lambda k: (load[k], k))
        shards[k].append(i)
        load[k] += sizes[i]
    return [sorted(s) for s in shards]


def _simulate_region(scenario: Scenario, part: RegionPart, out_dir: Path) -> dict:
    writer = RunWriter(out_dir, part=part.region)
    # The simulation writes into its faults (end, who fixed it, skipped recurrences): run
    # on fresh copies so that a retried task (same process, threaded workers) starts clean.
    faults = [dataclasses.replace(f, params=dict(f.params)) for f in part.faults]
    parts = SimParts(part.topology, part.storms, faults, region_streams(scenario.seed, part.region))
    sim = Simulation(scenario, sinks=[writer], parts=parts)
    sim.run()
    writer.close_files()
    orders = service_orders_frame(sim)
    orders["_region"] = part.region
    orders["_seq"] = np.arange(len(orders))
    return {
        "telemetry": writer.rows["telemetry"],
        "events": writer.rows["events"],
        "calls": int(sim.ops.calls),
        "orders": orders,
        "truth": faults_truth_frame(sim),
    }


def simulate_regions(scenario: Scenario, parts: list[RegionPart], out_dir: str) -> list[dict]:
    """Run regions one after the other (one Dask task = one shard = this call).

    Writing is idempotent (each region owns its part files), so a task that a
    scheduler retries after a lost worker writes the same files again.
    """
    return [_simulate_region(scenario, part, Path(out_dir)) for part in parts]


def _merge(results: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    orders = pd.concat([r["orders"] for r in results], ignore_index=True)
    orders = orders.sort_values(["opened_at", "_region", "_seq"], kind="stable")
    orders = orders.drop(columns=["_region", "_seq"]).reset_index(drop=True)
    orders["os_id"] = [f"OS{i + 1:07d}" for i in range(len(orders))]
    truth = pd.concat([r["truth"] for r in results], ignore_index=True)
    truth = truth.sort_values("fault_id", kind="stable").reset_index(drop=True)
    counts = {k: sum(int(r[k]) for r in results) for k in ("telemetry", "events", "calls")}
    return orders, truth, counts


def simulate_sharded(
    scenario: Scenario,
    out_dir: Path,
    shards: int,
    client=None,
    seed: int | None = None,
    overwrite: bool = False,
    on_submit: Callable[[list], None] | None = None,
) -> Path:
    """Simulate a scenario in ``shards`` buckets of regions into a run directory.

    Parameters
    ----------
    scenario : Scenario
    out_dir : Path
        Run directory (written into ``<out_dir>.partial`` and moved in place at the
        end). On a cluster it must be on storage every worker sees.
    shards : int
        Buckets of regions, between 1 and the number of regions. [-]
    client : distributed.Client, optional
        Runs the shards as tasks; without one the shards run here, one after the other.
    seed : int, optional
        Overrides the scenario's seed.
    overwrite : bool, default False
    on_submit : callable, optional
        Called with the shards' futures (e.g. a progress bar).

    Returns
    -------
    Path
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    if seed is not None:
        scenario = scenario.with_overrides(seed=seed)
    topology, storms, faults = fleet_draws(scenario)
    parts = region_parts(topology, storms, faults)
    groups = assign_shards([p.n_onus for p in parts], shards)
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    buckets = [[parts[i] for i in g] for g in groups]
    if client is None:
        results = [r for b in buckets for r in simulate_regions(scenario, b, str(partial))]
    else:
        futures = [
            client.submit(simulate_regions, scenario, b, str(partial), pure=False, retries=2)
            for b in buckets
        ]
        if on_submit is not None:
            on_submit(futures)
        results = [r for f in futures for r in f.result()]
    orders, truth, counts = _merge(results)
    write_run_tables(
        partial, scenario, topology, orders, truth, counts,
        extra={"streams": STREAMS_LAYOUT, "regions": [p.region for p in parts]},
    )  # fmt: skip
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return out_dir
