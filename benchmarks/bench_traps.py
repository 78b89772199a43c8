"""Benchmark the SNMP trap receiver (issue 21): trap → event latency and events/s.

The receiver (:class:`guardian_lib.snmp.traps.TrapReceiver`) runs in this process on
127.0.0.1; a separate sender process sends Huawei ONU LOS traps (the emulated OLT's
encoding, :mod:`acs_emulator.olt.traps`):

1. latency: traps at a steady, modest rate; for each, the time from the sender's
   ``sendto`` to the receiver's event (``time.perf_counter`` is CLOCK_MONOTONIC, shared
   by both processes) — p50 / p99;
2. throughput: v2c traps offered at increasing rates for a few seconds each; events/s
   accepted and the share lost (UDP drops once the receiver's socket buffer overflows);
3. the same latency for SNMPv3 authPriv (SHA/AES) traps, decoded by pysnmp;
4. fault → incident: the feeder of one PON of the ``tiny`` scenario is cut; the
   emulated OLT sends its LOS traps; ``guardian operate`` (polling interval 300 s, rule
   scorer) wakes on the first trap, polls, and opens the massive incident.

Two cores are shared by sender and receiver::

    .venv/bin/python benchmarks/bench_traps.py [--latency-traps 2000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import socket
import time

import numpy as np

from acs_emulator.olt.traps import SERIAL_COLUMNS, TRAP_OIDS
from guardian_lib.snmp.ber import Message, encode_message
from guardian_lib.snmp.traps import TrapReceiver, TrapUser

COMMUNITY = "bench-traps"
AUTH, PRIV = "bench-auth-1", "bench-priv-1"
OLT = "OLT-BENCH"


def _datagrams(n: int) -> list[bytes]:
    col, _ = SERIAL_COLUMNS["huawei"]
    out = []
    for i in range(n):
        serial = b"HWTC" + (i & 0xFFFFFFFF).to_bytes(4, "big")
        binds = [((1, 3, 6, 1, 2, 1, 1, 3, 0), (67, i)),
                 ((1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0), (6, TRAP_OIDS["huawei"][0])),
                 (col + (4194312192, i % 128), (4, serial))]  # fmt: skip
        out.append(encode_message(Message(1, COMMUNITY.encode(), 0xA7, i + 1, 0, 0, binds)))
    return out


def _send_v2c(port: int, n: int, rate: float, q: mp.Queue) -> None:
    data = _datagrams(n)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent = np.empty(n)
    t0 = time.perf_counter()
    for i, d in enumerate(data):
        due = t0 + i / rate
        while (now := time.perf_counter()) < due:
            if due - now > 0.002:
                time.sleep(due - now - 0.001)
        sent[i] = time.perf_counter()
        sock.sendto(d, ("127.0.0.1", port))
    q.put(sent)


def _send_v3(port: int, n: int, rate: float, q: mp.Queue) -> None:
    from acs_emulator.olt.agent import V3User
    from acs_emulator.olt.traps import OltTrapSender
    from simulator.engine import Simulation
    from simulator.scenario import load_scenario

    sim = Simulation(load_scenario("tiny"), seed=1)
    sim.step()
    olt = str(sim.topology.olts["olt_id"].iloc[0])
    tx = OltTrapSender(sim, ("127.0.0.1", port), v3_user=V3User("bench", AUTH, PRIV))
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        if due > time.perf_counter():
            time.sleep(due - time.perf_counter())
        tx.send_onu_trap(olt, i % len(sim.onu_ids), 0)
    q.put(np.array(tx.sent_at))
    tx.close()


def _run(kind: str, n: int, rate: float) -> tuple[np.ndarray, np.ndarray, dict]:
    got: list[float] = []
    olt_for_v3 = "OLT-01-001"  # the tiny scenario's OLT (engine id of the v3 sender)
    from acs_emulator.olt.traps import OltTrapSender

    users = [TrapUser("bench", AUTH, PRIV, engine_id=OltTrapSender.engine_id(olt_for_v3))]
    rx = TrapReceiver(community=COMMUNITY, users=users, sources={"127.0.0.1": OLT},
                      on_event=lambda e: got.append(time.perf_counter()))  # fmt: skip
    rx.start_in_thread()
    q: mp.Queue = mp.get_context("spawn").Queue()
    target = _send_v2c if kind == "v2c" else _send_v3
    proc = mp.get_context("spawn").Process(target=target, args=(rx.port, n, rate, q))
    proc.start()
    sent = q.get(timeout=600)
    proc.join()
    end = time.monotonic() + 5
    while len(got) < len(sent) and time.monotonic() < end:
        time.sleep(0.05)
    rx.stop_thread()
    return sent, np.array(got), dict(rx.stats)


def _fault_to_incident(tmp: str) -> tuple[float, float]:
    """Wall time from the fibre cut to the trap-started cycle's end, and of the wake. [s]"""
    import os
    from pathlib import Path

    import yaml

    from acs_emulator.olt.serve import EmulatorCredentials, simulated_pool, write_inventory
    from acs_emulator.olt.traps import OltTrapSender
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site
    from simulator.engine import Simulation
    from simulator.scenario import load_scenario

    d = Path(tmp)
    sim = Simulation(load_scenario("tiny"), seed=4)
    sim.step()
    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds).start_in_thread()
    write_inventory(d / "olts.yaml", pool, creds)
    os.environ["GUARDIAN_SNMP_TRAPS_COMMUNITY"] = creds.community
    (d / "site.yaml").write_text(yaml.safe_dump({
        "inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
        "polling_interval_s": 300, "traps": {"host": "127.0.0.1", "port": 0,
                                             "credentials": "traps", "min_cycle_gap_s": 0}}))  # fmt: skip
    op = Operator(load_site(d / "site.yaml"), d / "state")
    tx = OltTrapSender(sim, ("127.0.0.1", op.traps.receiver.port), community=creds.community)
    try:
        op.run_cycle()
        sim.step()
        op.run_cycle()
        pon = sim.topology.pons["pon_id"].iloc[0]
        sim.effects.los_n[sim.topology.onus["pon_id"].to_numpy() == pon] += 1
        op.traps.last_cycle_end = 0.0
        t0 = time.perf_counter()
        sim.step()  # the tick at which the fibre is cut: the OLT sends its LOS traps
        op.traps.sleep(300, op.stop_event)
        t1 = time.perf_counter()
        figures = op.run_cycle()
        t2 = time.perf_counter()
        assert figures["open_incidents"] == 1, figures
        return t2 - t0, t1 - t0
    finally:
        tx.close()
        op.close()
        pool.stop_thread()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--latency-traps", type=int, default=2000)
    ap.add_argument("--latency-rate", type=float, default=500.0, help="traps/s")
    ap.add_argument("--seconds", type=float, default=3.0, help="per throughput step")
    ap.add_argument("--rates", default="2000,5000,10000,20000,40000")
    ap.add_argument("--v3-traps", type=int, default=300)
    args = ap.parse_args()

    sent, got, _ = _run("v2c", args.latency_traps, args.latency_rate)
    if len(got) == len(sent):
        lat = (got - sent) * 1000
        print(f"v2c latency ({len(sent)} traps at {args.latency_rate:.0f}/s): "
              f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms, "
              f"max {lat.max():.2f} ms")  # fmt: skip
    else:
        print(f"v2c latency: {len(sent) - len(got)} of {len(sent)} traps lost")

    print(f"{'offered/s':>10} {'accepted/s':>11} {'lost %':>7}")
    for rate in (float(r) for r in args.rates.split(",")):
        n = int(rate * args.seconds)
        sent, got, stats = _run("v2c", n, rate)
        span = (got[-1] - got[0]) if len(got) > 1 else float("nan")
        offered = n / (sent[-1] - sent[0])
        print(f"{offered:>10.0f} {len(got) / span:>11.0f} {100 * (1 - len(got) / n):>7.1f}")

    sent, got, stats = _run("v3", args.v3_traps, 100.0)
    if len(got) == len(sent):
        lat = (got - sent) * 1000
        print(f"v3 authPriv latency ({len(sent)} traps at 100/s): "
              f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms")  # fmt: skip
    else:
        print(f"v3: {len(got)} of {len(sent)} traps became events; stats {stats}")

    import tempfile

    runs = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as d:
            runs.append(_fault_to_incident(d))
    total, wake = np.median(np.array(runs), axis=0)
    print(f"feeder cut -> incident opened by operate: {total:.2f} s median of 3 "
          f"(woken {wake * 1000:.0f} ms after the cut; polling interval 300 s)")  # fmt: skip


if __name__ == "__main__":
    main()
