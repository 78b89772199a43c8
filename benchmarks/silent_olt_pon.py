"""A PON that goes dark while its OLT's management path is down: the silent-OLT rule
(:mod:`guardian_lib.operate.silent`) on synthetic Inform times (not part of the test suite).

One OLT of ``--pons`` PONs of 8, 32, 64 and 120 ONUs stops answering SNMP; its CPEs keep
informing the ACS every 5 min or 1 h, each with its own random phase, half of them on a
fixed schedule (``PeriodicInformTime``) and half one interval after their last session.
Each Inform reaches the ACS late by a session delay (exponential, mean 2 s); a session
fails with probability 1 % (after a failure, 30 %: failures come in runs) and the CPE
retries after TR-069's default backoff (the j-th retry waits U[5·2^(j−1), 5·2^j] s).
The ``stress`` model also loses 1 Inform in 1,000 outright (firmware that skips one).
The rule is evaluated at every 5-minute poll, past the one-poll grace, as operate does;
the ACS hears the rest of the fleet (OLTs that answer) at least every 10 s.

For each layout and Inform interval, ``before`` is the rule without missed Informs
(the overdue rule alone: :data:`~guardian_lib.operate.silent.MISS_LATE_S` infinite) and
``after`` the rule with missed Informs, both without the wait for evidence of an OLT none
of whose CPEs informed since the silence (``WAIT_MAX_S`` 0; ``--table wait`` measures it):

* false offline: a management-only silence of 4 h; ONUs counted offline (not read and
  not known up) per hour of silence, in ONU-polls / hours (``start``: while no CPE of
  the OLT has informed since the silence, which both rules count offline; ``later``:
  the rest), over ``--seeds`` seeds;
* detection: during such a silence PON 0 is cut at a random time 15–75 min in (its
  CPEs' Informs stop reaching the ACS); minutes from the cut to the first poll with
  one, ``min(3, n)`` (the autopilot's ``outage_pon_min_count``) and all its ONUs
  offline (median and maximum over the seeds), and ONUs of the other PONs counted
  offline past the OLT's start (ONU-polls per silence);
* wrongly dark: PON-polls at which a PON that carries traffic was dark, summed over
  every seed of both runs (a false PON-wide outage: 0 expected).

``--table wait`` compares the rule with and without its wait for evidence (an OLT none of
whose CPEs informed since the silence; :data:`~guardian_lib.operate.silent.WAIT_MAX_S`)
on OLTs of 1–4 PONs of 8, 16, 32, 64 and 120 ONUs (:func:`wait_table`), in parallel
processes (``--workers``).

Usage::

    .venv/bin/python benchmarks/silent_olt_pon.py [--seeds 100] [--pons 2] [--model nominal|stress]
    .venv/bin/python benchmarks/silent_olt_pon.py --table wait [--interval 300 3600] [--workers 2]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from guardian_lib.operate import silent as rule

POLL_S = 300.0
SILENCE_S = 4 * 3600.0
PON_SIZES = (8, 32, 64, 120)
INTERVALS_S = (300.0, 3600.0)
P_FAIL, P_FAIL_AGAIN, MEAN_DELAY_S, P_SKIP = 0.01, 0.3, 2.0, 1e-3
MAX_RETRIES = 12
HOUR_S = 3600.0
#: The rest of the fleet: the ACS heard some CPE within this long of each poll. [s]
WITNESS_S = 10.0


def _delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Session delays of ``n`` Informs: transfer time plus failed sessions' backoff. [s]"""
    d = rng.exponential(MEAN_DELAY_S, n)
    failing = rng.random(n) < P_FAIL
    for j in range(1, MAX_RETRIES + 1):
        d[failing] += rng.uniform(5.0 * 2 ** (j - 1), 5.0 * 2**j, int(failing.sum()))
        failing &= rng.random(n) < P_FAIL_AGAIN
    return d


def inform_times(rng: np.random.Generator, interval: float, t_from: float, t_to: float,
                 stress: bool) -> np.ndarray:  # fmt: skip
    """The times one CPE's periodic Informs reach the ACS in [t_from, t_to]. [s]"""
    k = int(math.ceil((t_to - t_from) / interval)) + 2
    phase = t_from + rng.uniform(0.0, interval)
    if rng.random() < 0.5:  # a fixed schedule: nominal times, each one late by its delay
        times = phase + interval * np.arange(k) + _delays(rng, k)
    else:  # one interval after the last session
        times = phase + np.cumsum(interval + _delays(rng, k)) - interval
    if stress:
        times = times[rng.random(k) >= P_SKIP]
    return np.sort(times[times <= t_to])


def _run(n: int, pons: int, interval: float, seed: int, stress: bool, cut: bool,
         misses: bool, wait: bool = False, power: bool = False,
         silence_s: float = SILENCE_S) -> dict:  # fmt: skip
    """One silence of one OLT; what the rule counted offline at each poll (``wait``: with
    the wait for evidence, else :data:`~guardian_lib.operate.silent.WAIT_MAX_S` 0;
    ``power``: every CPE's Informs stop when the management path fails, up to one poll
    before the silence began)."""
    rng = np.random.default_rng(seed)
    onus = [f"p{p}-o{i}" for p in range(pons) for i in range(n)]
    pon = {o: o.split("-")[0] for o in onus}
    s = rule.SilentOlts(onus, dict.fromkeys(onus, "OLT"), {o: o for o in onus}, POLL_S,
                        pon_of=pon)  # fmt: skip
    t0 = 1.7e9 + rng.uniform(0.0, 86400.0)  # the end of the first poll OLT did not answer
    s.observe([], ["OLT"], t0)
    t_cut = t0 + rng.uniform(900.0, 4500.0) if cut else math.inf
    t_cut = t0 - rng.uniform(0.0, POLL_S) if power else t_cut
    times = {}
    for o in onus:
        t = inform_times(rng, interval, t0 - 3 * interval, t0 + silence_s, stress)
        times[o] = t[t <= t_cut] if pon[o] == "p0" or power else t
    polls = t0 + POLL_S * np.arange(1, int(silence_s / POLL_S) + 1)  # past the grace
    idx = {o: np.searchsorted(t, polls, side="right") - 1 for o, t in times.items()}
    saved = rule.MISS_LATE_S, rule.WAIT_MAX_S
    rule.MISS_LATE_S = saved[0] if misses else math.inf
    rule.WAIT_MAX_S = saved[1] if wait else 0.0
    try:
        off, start, dark = [], [], []
        for k, now in enumerate(polls):
            informs = {o: (float(times[o][idx[o][k]]), interval) for o in onus if idx[o][k] >= 0}
            informs["fleet"] = (float(now) - rng.uniform(0.0, WITNESS_S), HOUR_S)
            off.append(~s.known_up(informs, float(now)))
            start.append(s.evidence == 0)
            dark.append([p for p in s.dark if p != "p0" or not cut])  # wrongly dark
    finally:
        rule.MISS_LATE_S, rule.WAIT_MAX_S = saved
    return {"polls": polls, "off": np.array(off), "start": np.array(start), "t_cut": t_cut,
            "dark": sum(len(d) for d in dark)}  # fmt: skip


def _minutes(x: list[float]) -> str:
    x = np.asarray(x)
    if np.isinf(x).any():
        return f"never in {np.isinf(x).sum()}"
    return f"{np.median(x) / 60:5.1f} / {x.max() / 60:5.1f}"


WAIT_PON_SIZES, WAIT_PONS = (8, 16, 32, 64, 120), (1, 2, 3, 4)
#: Management-only silences of the ``wait`` table (the wait acts in their first half hour). [s]
WAIT_SILENCE_S = 2 * 3600.0


def _wait_layout(job: tuple[int, int, float, int, bool, bool]) -> str:
    """One row of the ``--table wait`` table: one layout, one rule, every seed."""
    n, pons, interval, seeds, stress, wait = job
    t = time.perf_counter()
    hours = WAIT_SILENCE_S / 3600.0
    false_off = all_off = silences_all_off = 0.0
    power: list[float] = []
    cut: list[float] = []
    for seed in range(seeds):
        r = _run(n, pons, interval, seed, stress, cut=False, misses=True, wait=wait,
                 silence_s=WAIT_SILENCE_S)  # fmt: skip
        every = r["off"].all(axis=1)
        false_off += r["off"].sum() / hours / seeds
        all_off += every.sum() / seeds
        silences_all_off += every.any() / seeds
        r = _run(n, pons, interval, 20_000 + seed, stress, cut=False, misses=True, wait=wait,
                 power=True, silence_s=3600.0)  # fmt: skip
        hit = np.flatnonzero(r["off"].all(axis=1))
        power.append(r["polls"][hit[0]] - r["t_cut"] if len(hit) else math.inf)
        if pons > 1:
            r = _run(n, pons, interval, 10_000 + seed, stress, cut=True, misses=True, wait=wait,
                     silence_s=2.5 * 3600.0)  # fmt: skip
            after = r["polls"] >= r["t_cut"]
            hit = np.flatnonzero(after & r["off"][:, :n].all(axis=1))
            cut.append(r["polls"][hit[0]] - r["t_cut"] if len(hit) else math.inf)
    return (f"| {n} × {pons} | {interval / 60:.0f} min | {'after' if wait else 'before'} | "
            f"{false_off:.3f} | {all_off:.2f} | {100 * silences_all_off:.0f} % | "
            f"{_minutes(power)} | {_minutes(cut) if cut else '–'} |"
            f" <!-- {time.perf_counter() - t:.0f} s -->")  # fmt: skip


def wait_table(seeds: int, stress: bool, workers: int,
               intervals: tuple[float, ...] = INTERVALS_S) -> None:  # fmt: skip
    """The wait for evidence (``--table wait``), before (:data:`WAIT_MAX_S` 0: every ONU
    of an OLT none of whose CPEs informed since the silence offline past the grace) and
    after, on OLTs of 1–4 PONs of 8–120 ONUs: in 2-hour management-only silences, false
    offline ONU-polls per hour, polls with the whole OLT offline per silence and the share
    of silences with one; minutes from a power loss (every CPE silent from up to one poll
    before the silence began) to the first poll with every ONU offline; minutes from a
    PON cut (PON 0, 15–75 min into a management-only silence) to all its ONUs offline
    (median / maximum over the seeds)."""
    from multiprocessing import Pool

    print(f"wait for evidence: at most {rule.WAIT_MAX_S / 60:.0f} min; model "
          f"{'stress' if stress else 'nominal'}, {seeds} seeds, polls every "
          f"{POLL_S / 60:.0f} min")  # fmt: skip
    print("| ONUs × PONs | Inform | rule | false offline ONU-polls/h | whole OLT offline: "
          "polls per silence | silences with one | power loss → all offline [min] | "
          "PON cut → all its ONUs offline [min] |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    jobs = [(n, pons, iv, seeds, stress, wait) for iv in intervals for n in WAIT_PON_SIZES
            for pons in WAIT_PONS for wait in (False, True)]  # fmt: skip
    with Pool(workers) as pool:
        for row in pool.imap(_wait_layout, jobs):
            print(row, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--pons", type=int, default=2)
    ap.add_argument("--model", choices=("nominal", "stress"), default="nominal")
    ap.add_argument("--table", choices=("pon", "wait"), default="pon")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--interval", type=float, nargs="*", default=INTERVALS_S,
                    help="Inform intervals of the wait table [s]")  # fmt: skip
    args = ap.parse_args()
    stress = args.model == "stress"
    if args.table == "wait":
        wait_table(args.seeds, stress, args.workers, tuple(args.interval))
        return
    hours = SILENCE_S / 3600.0
    print(f"model {args.model}, {args.seeds} seeds, OLT of {args.pons} PONs, polls every "
          f"{POLL_S / 60:.0f} min; slack {rule.MISS_LATE_S:.0f} s + {rule.MISS_POLLS} poll, "
          f"{rule.PON_MISSES} misses make a PON dark")  # fmt: skip
    print(
        "| PON | Inform | rule | false offline ONU-polls/h: start, later | "
        "PON cut → 1st / min(3,n) / all offline [min, median / max] | other PONs off | "
        "wrongly dark |"
    )
    print("|---|---|---|---|---|---|---|")
    for interval in INTERVALS_S:
        for n in PON_SIZES:
            for misses in (False, True):
                t = time.perf_counter()
                f_start = f_later = others = dark = 0.0
                det: list[list[float]] = [[], [], []]
                for seed in range(args.seeds):
                    r = _run(n, args.pons, interval, seed, stress, cut=False, misses=misses)
                    per_poll = r["off"].sum(axis=1)
                    f_start += per_poll[r["start"]].sum() / hours / args.seeds
                    f_later += per_poll[~r["start"]].sum() / hours / args.seeds
                    dark += r["dark"]
                    r = _run(n, args.pons, interval, 10_000 + seed, stress, cut=True,
                             misses=misses)  # fmt: skip
                    cut_off = r["off"][:, :n].sum(axis=1)
                    after = r["polls"] >= r["t_cut"]
                    for j, need in enumerate((1, min(3, n), n)):
                        hit = np.flatnonzero(after & (cut_off >= need))
                        det[j].append(r["polls"][hit[0]] - r["t_cut"] if len(hit) else math.inf)
                    others += r["off"][~r["start"], n:].sum() / args.seeds
                    dark += r["dark"]
                name = "after" if misses else "before"
                print(f"| {n} | {interval / 60:.0f} min | {name} | {f_start:.2f}, {f_later:.3f} | "
                      f"{' · '.join(_minutes(d) for d in det)} | {others:.3f} | {dark:.0f} |"
                      f" <!-- {time.perf_counter() - t:.0f} s -->", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
