"""Write a simulation as the files an ISP's systems would export.

Layout of a run directory (RAW layer of the warehouse, docs/ingest.md)::

    run.json                                   manifest: scenario, seed, row counts
    inventory/{olts,pons,splitters,onus,customers}.parquet
    lake/raw/telemetry/date=YYYY-MM-DD/sim-part-NNNN.parquet
    lake/raw/events/date=YYYY-MM-DD/sim-part-NNNN.parquet
    ops/service_orders.parquet
    ops/faults_truth.parquet                   ground truth: evaluation only

``date`` is the day a row was *received*: late rows land in a later partition than their
``ts``. RAW is as messy as an operator's data (missed polls, offline ONUs without rows,
duplicates, late rows, clock skew per OLT, vendor sentinels), as the scenario's
``data_quality`` section says. The writer is a :class:`~simulator.engine.TickSink`; it
buffers a few hours of ticks and flushes them as one row group, so memory stays flat in
the number of simulated days.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from guardian_lib.layout import RunLayout
from guardian_lib.schema import RAW_EVENTS_ARROW, RAW_TELEMETRY_ARROW, US_PER_S
from simulator.engine import SimEvent, Simulation
from simulator.parallel import run_jobs
from simulator.run_tables import faults_truth_frame, service_orders_frame, write_run_tables
from simulator.telemetry import TickState

__all__ = [
    "RunWriter",
    "TELEMETRY_SCHEMA",
    "EVENTS_SCHEMA",
    "simulate_to_dir",
    "simulate_runs",
    "check_out_dir",
    "write_run_tables",
    "service_orders_frame",
    "faults_truth_frame",
    "VENDOR_SENTINELS",
]

_TS = pa.timestamp("us", tz="UTC")
# The warehouse's RAW schema, with the repeated strings dictionary-encoded (same values
# when read back, far faster to write).
TELEMETRY_SCHEMA = RAW_TELEMETRY_ARROW.set(
    RAW_TELEMETRY_ARROW.get_field_index("onu_id"),
    pa.field("onu_id", pa.dictionary(pa.int32(), pa.string())),
).set(
    RAW_TELEMETRY_ARROW.get_field_index("source"),
    pa.field("source", pa.dictionary(pa.int8(), pa.string())),
)
EVENTS_SCHEMA = RAW_EVENTS_ARROW
_FLOAT_COLS = ("rx_dbm", "tx_dbm", "olt_rx_dbm", "snr_db", "ber", "latency_ms", "loss_pct")
#: Values each vendor's management system puts in place of a missing optical reading,
#: already multiplied by the vendor's scale (what a naive export writes). [dBm]
VENDOR_SENTINELS = {"huawei": 21474836.47, "zte": -80.0, "fiberhome": 655.35}
_RESOLUTION = {
    "rx_dbm": 2,
    "tx_dbm": 2,
    "olt_rx_dbm": 2,
    "snr_db": 1,
    "latency_ms": 1,
    "loss_pct": 2,
}


class RunWriter:
    """Tick sink that writes RAW telemetry and events as hive-partitioned Parquet.

    Parameters
    ----------
    out_dir : Path
        Directory to write into (created).
    flush_ticks : int, default 36
        Ticks buffered per row group (36 × 5 min = 3 h). [-]
    part : int, default 0
        Number of the part files written (``sim-part-NNNN.parquet``): the sharded
        simulator gives each region its own, so shards never write the same file.
    """

    def __init__(self, out_dir: Path, flush_ticks: int = 36, part: int = 0) -> None:
        self.out_dir = Path(out_dir)
        self.flush_ticks = flush_ticks
        self.part = part
        self._block: list[TickState] = []
        self._events: list[SimEvent] = []
        self._writers: dict[tuple[str, str], pq.ParquetWriter] = {}  # I/O thread only
        self._open: set[tuple[str, str]] = set()
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet")
        self._pending: list = []
        self._late: list[pa.Table] = []
        self.rows = {"telemetry": 0, "events": 0}
        self._sim: Simulation | None = None

    # -- TickSink -------------------------------------------------------------------------
    def on_tick(self, sim: Simulation, state: TickState, events: list[SimEvent]) -> None:
        """Buffer one tick; flush a row group when the block is full or the day ends."""
        if self._sim is None:
            self._setup(sim)
        self._block.append(state)
        self._events.extend(events)
        per_day = sim.scenario.ticks_per_day
        if len(self._block) >= self.flush_ticks or (sim.tick_index + 1) % per_day == 0:
            self.flush()

    def _setup(self, sim: Simulation) -> None:
        self._sim = sim
        topo = sim.topology
        self._onu_dict = pa.array(sim.onu_ids.astype(str), pa.string())
        self._source_dict = pa.array(["sim"], pa.string())
        olt_vendor = topo.olts["vendor"].to_numpy()
        self._onu_vendor = olt_vendor[topo.onu_olt]
        # Each OLT's clock is a little off (constant skew per source). [s]
        skew_s = sim.rng_dq.normal(0.0, sim.scenario.data_quality.clock_skew_s, len(topo.olts))
        self._onu_skew_us = np.round(skew_s[topo.onu_olt] * US_PER_S).astype(np.int64)

    def flush(self) -> None:
        """Write buffered ticks and events."""
        if not self._block:
            return
        sim = self._sim
        assert sim is not None
        dq = sim.scenario.data_quality
        rng = sim.rng_dq
        n = sim.topology.n_onus
        k = len(self._block)
        cols = {c: np.concatenate([getattr(s, c) for s in self._block]) for c in _FLOAT_COLS}
        # Vendors report optics in 0.01 dB and the rest at similar resolution.
        for c, decimals in _RESOLUTION.items():
            np.round(cols[c], decimals, out=cols[c])
        online = np.concatenate([s.online for s in self._block])
        crc = np.concatenate([s.crc_errors for s in self._block])
        uptime = np.concatenate([s.uptime_s for s in self._block])
        tick_us = np.repeat(
            np.array([int(s.ts.value // 1000) for s in self._block], dtype=np.int64), n
        )
        onu_idx = np.tile(np.arange(n, dtype=np.int32), k)
        ts_us = tick_us + np.tile(self._onu_skew_us, k)
        received_us = tick_us + rng.integers(5 * US_PER_S, 90 * US_PER_S, k * n)
        # Sentinels: a naive export of a missing reading.
        sentinel = rng.random(k * n) < dq.sentinel_rate
        if sentinel.any():
            vendor = np.tile(self._onu_vendor, k)[sentinel]
            values = np.array([VENDOR_SENTINELS[v] for v in vendor])
            col = "olt_rx_dbm" if rng.random() < 0.5 else "rx_dbm"
            cols[col][sentinel] = values
        keep = (online | (rng.random(k * n) < dq.offline_row_rate)) & (
            rng.random(k * n) >= dq.missed_poll_rate
        )
        late = keep & (rng.random(k * n) < dq.late_rate)
        received_us[late] = tick_us[late] + rng.integers(
            3600 * US_PER_S,
            max(int(dq.late_max_hours * 3600 * US_PER_S), 3600 * US_PER_S + 1),
            int(late.sum()),
        )
        rows = np.flatnonzero(keep)
        dup = rows[rng.random(len(rows)) < dq.duplicate_rate]
        order = np.concatenate([rows, dup])
        received_us_o = received_us[order]
        received_us_o[len(rows) :] += rng.integers(1 * US_PER_S, 600 * US_PER_S, len(dup))
        table = pa.table(
            {
                "ts": pa.array(ts_us[order], _TS),
                "onu_id": pa.DictionaryArray.from_arrays(
                    pa.array(onu_idx[order], pa.int32()), self._onu_dict
                ),
                **{c: pa.array(cols[c][order], pa.float64()) for c in _FLOAT_COLS[:5]},
                "crc_errors": pa.array(crc[order], pa.int64()),
                "latency_ms": pa.array(cols["latency_ms"][order], pa.float64()),
                "loss_pct": pa.array(cols["loss_pct"][order], pa.float64()),
                "online": pa.array(online[order], pa.bool_()),
                "uptime_s": pa.array(uptime[order], pa.int64()),
                "source": pa.DictionaryArray.from_arrays(
                    pa.array(np.zeros(len(order), np.int8), pa.int8()), self._source_dict
                ),
                "received_at": pa.array(received_us_o, _TS),
            },
            schema=TELEMETRY_SCHEMA,
        )
        tick_day = self._block[0].ts.strftime("%Y-%m-%d")
        is_late = late[order]
        self._write("telemetry", tick_day, table.filter(pa.array(~is_late)))
        if is_late.any():
            self._late.append(table.filter(pa.array(is_late)))
        self._flush_late(up_to_day=tick_day)
        self._flush_events()
        self._block = []

    def _flush_late(self, up_to_day: str | None) -> None:
        """Write late rows whose arrival day has come (all of them when ``None``)."""
        if not self._late:
            return
        late = pa.concat_tables(self._late)
        self._late = []
        day = pc_day(late["received_at"])
        for d in sorted(set(day)):
            part = late.filter(pa.array(day == d))
            if up_to_day is not None and d > up_to_day:
                self._late.append(part)
            else:
                self._write("telemetry", d, part)

    def _flush_events(self) -> None:
        if not self._events:
            return
        sim = self._sim
        assert sim is not None
        ev = self._events
        self._events = []
        start_us = int(sim.start.value // 1000)
        ts_us = np.array([start_us + int(round(e.now_s * US_PER_S)) for e in ev], dtype=np.int64)
        recv = ts_us + sim.rng_dq.integers(1 * US_PER_S, 60 * US_PER_S, len(ev))
        table = pa.table(
            {
                "ts": pa.array(ts_us, _TS),
                "entity_id": [e.entity_id for e in ev],
                "entity_type": [e.entity_type for e in ev],
                "type": [e.type for e in ev],
                "severity": [e.severity for e in ev],
                "source": ["sim"] * len(ev),
                "payload": [e.payload for e in ev],
                "received_at": pa.array(recv, _TS),
            },
            schema=EVENTS_SCHEMA,
        )
        day = pc_day(table["received_at"])
        for d in sorted(set(day)):
            self._write("events", d, table.filter(pa.array(day == d)))

    def _write(self, kind: str, day: str, table: pa.Table) -> None:
        """Queue a write; Parquet encoding runs on the I/O thread (it releases the GIL)."""
        if table.num_rows == 0:
            return
        key = (kind, day)
        to_close = []
        if key not in self._open:
            self._open.add(key)
            # Close finished days of the same kind: memory stays flat.
            for other in sorted(k for k in self._open if k[0] == kind and k[1] < day):
                if kind == "telemetry" and self._late_pending_for(other[1]):
                    continue
                self._open.discard(other)
                to_close.append(other)
        self.rows[kind] += table.num_rows
        self._pending.append(self._io.submit(self._io_write, key, table, to_close))
        self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]

    def _io_write(self, key: tuple[str, str], table: pa.Table, to_close: list) -> None:
        kind, day = key
        writer = self._writers.get(key)
        if writer is None:
            name = f"sim-part-{self.part:04d}.parquet"
            path = RunLayout(self.out_dir).raw(kind) / f"date={day}" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            schema = TELEMETRY_SCHEMA if kind == "telemetry" else EVENTS_SCHEMA
            writer = pq.ParquetWriter(path, schema, compression="zstd")
            self._writers[key] = writer
        writer.write_table(table, row_group_size=max(table.num_rows, 1))
        for other in to_close:
            self._writers.pop(other).close()

    def _late_pending_for(self, day: str) -> bool:
        return any(day in set(pc_day(t["received_at"])) for t in self._late)

    def close(self) -> None:
        """Flush everything, close the files and write inventory, operations, manifest."""
        sim = self.close_files()
        write_run_tables(
            self.out_dir,
            sim.scenario,
            sim.topology,
            service_orders_frame(sim),
            faults_truth_frame(sim),
            {**self.rows, "calls": int(sim.ops.calls)},
        )

    def close_files(self) -> Simulation:
        """Flush every buffered row and close the Parquet files (RAW only).

        Returns
        -------
        Simulation
            The simulation the writer saw.

        Raises
        ------
        RuntimeError
            The writer saw no tick.
        """
        self.flush()
        self._flush_late(up_to_day=None)
        self._flush_events()
        self._io.shutdown(wait=True)
        for future in self._pending:
            future.result()  # re-raise an I/O error here
        for writer in self._writers.values():
            writer.close()
        self._writers = {}
        if self._sim is None:
            raise RuntimeError("the writer saw no tick")
        return self._sim


def pc_day(ts: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """UTC calendar day (``YYYY-MM-DD``) of each timestamp."""
    us = np.asarray(ts.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    days = us // (86400 * US_PER_S)
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D")


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an existing ``out_dir`` unless ``overwrite`` and it is a run (has ``run.json``).

    Raises
    ------
    FileExistsError
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists: choose another --out or pass --overwrite")
    if out_dir.exists() and not (out_dir.is_dir() and RunLayout(out_dir).manifest.is_file()):
        # --overwrite deletes the folder: only ever one that simulate_to_dir wrote.
        raise FileExistsError(
            f"{out_dir} exists and is not a simulated run (no run.json): refusing to "
            "overwrite it; choose another --out or remove it yourself"
        )


def simulate_to_dir(
    scenario, out_dir: Path, seed: int | None = None, overwrite: bool = False, progress=None
) -> Path:
    """Simulate a scenario into a run directory, atomically.

    Parameters
    ----------
    scenario : Scenario
    out_dir : Path
        Run directory; must not exist unless ``overwrite``.
    seed : int, optional
        Overrides the scenario's seed.
    overwrite : bool, default False
        Replace ``out_dir`` if it is an earlier run (has a ``run.json``); any other
        existing path is refused.
    progress : callable, optional
        ``progress(done_ticks, total_ticks)``.

    Returns
    -------
    Path
        ``out_dir``. The files are written into ``<out_dir>.partial`` and moved in
        place at the end, so an interrupted run never leaves a half-written directory.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    partial = out_dir.with_name(out_dir.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    if seed is not None:
        scenario = scenario.with_overrides(seed=seed)
    writer = RunWriter(partial)
    sim = Simulation(scenario, sinks=[writer])
    sim.run(progress=progress)
    writer.close()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return out_dir


#: Most worker processes :func:`simulate_runs` starts (each holds one run in memory). [-]
SIMULATE_WORKERS = 2


def _simulate_and_ingest(scenario, out_dir: Path, seed: int, overwrite: bool, ingest: bool) -> Path:
    """One job of :func:`simulate_runs` (module level: the worker processes import it).

    In a worker process the job's standard output is discarded: DuckDB draws progress
    bars there for long queries of the ingest, which would land in the terminal of
    ``guardian run`` (a notebook kernel hides them); errors come back as exceptions.
    """
    import multiprocessing

    quiet = multiprocessing.parent_process() is not None
    if quiet:
        saved = os.dup(1)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
    try:
        simulate_to_dir(scenario, out_dir, seed=seed, overwrite=overwrite)
        if ingest:
            from guardian_lib.ingest import ingest_run

            ingest_run(out_dir)
    finally:
        if quiet:
            os.dup2(saved, 1)
            os.close(saved)
            os.close(devnull)
    return Path(out_dir)


def simulate_runs(
    runs: Sequence[tuple[object, Path | str, int]],
    overwrite: bool = False,
    ingest: bool = True,
    workers: int = SIMULATE_WORKERS,
) -> list[Path]:
    """Simulate (and ingest) several runs, each in its own worker process.

    Each run is :func:`simulate_to_dir` of its scenario with its seed, then
    ``guardian_lib.ingest.ingest_run``: it depends on its own scenario and seed only,
    so the files are the same as one after the other in one process, for any
    ``workers`` (the jobs run through :func:`simulator.parallel.run_jobs`).

    Parameters
    ----------
    runs : sequence of (Scenario, path, int)
        Scenario, run directory and seed of each run; the directories must differ.
    overwrite : bool, default False
        As :func:`simulate_to_dir`.
    ingest : bool, default True
        Also load each run into its warehouse.
    workers : int, default 2
        Processes [-], at most one per run; 1 runs them one after the other in this
        process. A script that calls this with ``workers`` > 1 must keep its top-level
        code under ``if __name__ == "__main__":`` (the workers import it again).

    Returns
    -------
    list of Path
        The run directories, in the order of ``runs``.
    """
    dirs = [Path(out).resolve() for _, out, _ in runs]
    if len(set(dirs)) != len(dirs):
        raise ValueError(f"simulate_runs: two runs write the same directory: {dirs}")
    jobs = [
        (i, (sc, Path(out), int(seed), overwrite, ingest)) for i, (sc, out, seed) in enumerate(runs)
    ]
    done = run_jobs(_simulate_and_ingest, jobs, workers, caller="simulate_runs")
    return [done[i] for i in range(len(runs))]
