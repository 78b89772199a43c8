"""Does each ``guardian operate`` cycle's telemetry land on the SILVER step of the cycle's
own records? Synthetic schedules through operate's real time rules (not part of the test
suite).

A cycle's time is the poll's earliest row time snapped to the polling grid and bumped one
step past the last cycle when it would not advance (``Operator._on_grid``); its
``ACS_SEEN`` / ``ACS_PPP_*`` records carry it. SILVER snaps each telemetry row's ``ts``
to the nearest grid step (``guardian_lib.ingest``: ``round(epoch(ts) / grid) * grid``).

Schedule (``--seeds`` seeds × ``--days`` days, every random choice seeded): cycles every
``grid`` (300 s) at a random phase per seed, each start late by |N(0, 50 ms)|; N OLTs walked ``max_concurrent_olts`` (16) at a time, each walk taking
U[0.5, 1.5] × w, w chosen so that the poll of N OLTs takes about ``s`` seconds; each
OLT's rows carry the start of its walk (as the SNMP poller stamps them). With traps, an
accepted trap starts an extra cycle at once (Poisson, ``--traps-per-day``; no sooner
than 5 s after the last cycle) and the loop then waits one interval from that cycle.

Per layout: the share of cycles with rows on another SILVER step than the cycle's time
(``off step``), of rows (``rows off``), and of cycles whose rows share a SILVER step with
another cycle's (``shared``: SILVER keeps one row per ONU and step, the later cycle's),
and of cycles with an event of the poll (one per OLT, at its walk's start) that the
replay puts on another step (``events off``: ``guardian decide`` gives a step the events
after the previous step, up to it), ``before`` (rows stored with their own time) and
``after`` (:func:`stamp_poll <guardian_lib.operate.steps.stamp_poll>`: telemetry at the
cycle's time, events moved into the cycle's step).

    PYTHONPATH=. python benchmarks/cycle_steps.py [--seeds 100] [--days 1]
"""

from __future__ import annotations

import argparse
import heapq
from types import SimpleNamespace

import numpy as np
import pandas as pd

GRID_S = 300
CONCURRENT = 16
TRAP_GAP_S = 5.0


def _walk_starts(rng: np.random.Generator, start: float, n: int, poll_s: float) -> np.ndarray:
    """Each OLT's walk start [epoch s]: ``CONCURRENT`` slots, walks of U[0.5, 1.5] × w."""
    batches = -(-n // CONCURRENT)
    w = poll_s / batches
    slots = [start] * min(n, CONCURRENT)
    heapq.heapify(slots)
    out = np.empty(n)
    for i in range(n):
        t = heapq.heappop(slots)
        out[i] = t
        heapq.heappush(slots, t + w * rng.uniform(0.5, 1.5))
    return out


def _silver_step(t: np.ndarray) -> np.ndarray:
    """SILVER's step of each time (half away from zero, as DuckDB's round). [epoch s]"""
    return np.floor(t / GRID_S + 0.5) * GRID_S


def _replay_step(t: np.ndarray) -> np.ndarray:
    """``guardian decide``'s step of each event time: the first step at or after it. [epoch s]"""
    return np.ceil(t / GRID_S) * GRID_S


def _schedule(rng: np.random.Generator, days: float, traps_per_day: float) -> list[float]:
    """Cycle start times [s from 0]: one interval after the previous cycle's start (late
    by |N(0, 50 ms)|: the host), or a trap's extra cycle in between (traps that came
    during a cycle start the next one once the 5-s gap is over)."""
    end = days * 86400.0
    n_traps = rng.poisson(traps_per_day * days)
    traps = np.sort(rng.uniform(0.0, end, n_traps))
    t, i, out = rng.uniform(0, GRID_S), 0, []
    while t < end:
        t += abs(rng.normal(0.0, 0.05))
        out.append(t)
        while i < len(traps) and traps[i] <= t:  # drained by this cycle
            i += 1
        due = t + GRID_S
        if i < len(traps) and traps[i] < due:
            due = max(float(traps[i]), t + TRAP_GAP_S)
        t = due
    return out


def run(n_olts: int, poll_s: float, traps_per_day: float, seeds: int, days: float) -> dict:
    """Shares [%] before and after, over every seed's cycles."""
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.steps import stamp_poll

    t0 = pd.Timestamp("2026-01-05", tz="UTC").timestamp()
    cycles = rows = 0
    off = {"before": 0, "after": 0}
    rows_off = {"before": 0, "after": 0}
    shared = {"before": 0, "after": 0}
    events_off = {"before": 0, "after": 0}
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        grid, last = SimpleNamespace(tick_s=float(GRID_S), _last_ts=None), None
        steps: dict[str, list[np.ndarray]] = {"before": [], "after": []}
        for start in _schedule(rng, days, traps_per_day):
            walks = t0 + _walk_starts(rng, start, n_olts, poll_s)
            ts = Operator._on_grid(grid, pd.Timestamp(walks.min(), unit="s", tz="UTC"))
            grid._last_ts = ts
            tel = pd.DataFrame({"ts": pd.to_datetime(walks, unit="s", utc=True)})
            tel["received_at"] = tel["ts"]
            # one event per OLT, at its walk's start (an LOS, a DYING_GASP)
            stored = stamp_poll(SimpleNamespace(telemetry=tel, events=tel), ts, None, last)
            at = {"before": walks, "after": stored.telemetry["ts"].astype("int64").to_numpy() / 1e6}
            ev = {"before": walks, "after": stored.events["ts"].astype("int64").to_numpy() / 1e6}
            for k, t in at.items():
                s = _silver_step(t)
                steps[k].append(s)
                bad = s != ts.timestamp()
                off[k] += int(bad.any())
                rows_off[k] += int(bad.sum())
                # guardian decide gives a step the events after the previous step, up to it
                events_off[k] += int((_replay_step(ev[k]) != ts.timestamp()).any())
            last = ts
            cycles += 1
            rows += n_olts
        for k, per_cycle in steps.items():
            owners: dict[float, int] = {}
            for s in per_cycle:
                for v in set(s.tolist()):
                    owners[v] = owners.get(v, 0) + 1
            shared[k] += sum(any(owners[v] > 1 for v in set(s.tolist())) for s in per_cycle)
    pct = lambda x, n: round(100.0 * x / n, 2)  # noqa: E731
    return {
        "cycles": cycles,
        **{f"off_{k}": pct(v, cycles) for k, v in off.items()},
        **{f"rows_off_{k}": pct(v, rows) for k, v in rows_off.items()},
        **{f"shared_{k}": pct(v, cycles) for k, v in shared.items()},
        **{f"events_off_{k}": pct(v, cycles) for k, v in events_off.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--days", type=float, default=1.0)
    args = ap.parse_args()
    print("| OLTs | poll [s] | traps/day | cycles | off step [%] before → after | "
          "rows off [%] | shared [%] | events off [%] |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for n, s, traps in [(1, 1, 0), (16, 2, 0), (100, 30, 0), (400, 120, 0), (1000, 240, 0),
                        (16, 2, 4), (100, 30, 4), (100, 30, 48)]:  # fmt: skip
        r = run(n, s, traps, args.seeds, args.days)
        print(f"| {n} | {s} | {traps} | {r['cycles']} | {r['off_before']} → {r['off_after']} | "
              f"{r['rows_off_before']} → {r['rows_off_after']} | "
              f"{r['shared_before']} → {r['shared_after']} | "
              f"{r['events_off_before']} → {r['events_off_after']} |")  # fmt: skip


if __name__ == "__main__":
    main()
