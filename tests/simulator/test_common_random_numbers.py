"""Field operations draw per customer (common random numbers).

A policy that calls or orders for other customers must not change what happens to this
one: the k-th call and the k-th service order of a customer get the same draws (reason
given, phone fix, order or not, scheduling delay, travel and work time, call-ahead
reach) whatever else happened in the run. With one shared stream, every extra call
shifted all later draws, and two policies' paired difference carried that noise.
"""

from __future__ import annotations

import json

from simulator.engine import Simulation

ROW = 7  # the customer followed
OTHERS = (3, 12, 40)  # customers who get calls and orders first in the second run


def _quiet_sim(only_fault, seed: int = 5) -> Simulation:
    """Tiny, 3 days, no random faults or background calls; every call becomes an order,
    scheduled within hours."""
    sc = only_fault("cpe_hang", 0.0)
    sc = sc.with_overrides(
        days=3.0,
        operations=sc.operations.model_dump()
        | {
            "visit_prob_without_fault": 1.0,
            "wrong_reason_prob": 0.5,
            # Short enough that the first order is done before the second (at 59 h).
            "scheduling_delay": {"median_h": 2.0, "p90_h": 6.0},
        },
    )
    sim = Simulation(sc, seed=seed)
    sim.calls_seen = []  # the CUSTOMER_CALL events, as the sinks receive them

    class Calls:
        def on_tick(self, sim, state, events):
            sim.calls_seen += [json.loads(e.payload) for e in events if e.type == "CUSTOMER_CALL"]

    sim.sinks.append(Calls())
    return sim


def _followed(sim: Simulation) -> list[tuple]:
    """The followed customer's calls (reason) and orders (delay, visit length, outcome)."""
    calls = [c["reason"] for c in sim.calls_seen if c["onu_id"] == sim.onu_ids[ROW]]
    orders = [
        (o.scheduled_s - o.opened_s, o.closed_s - o.scheduled_s, o.status, o.outcome)
        for o in sim.ops.orders
        if o.onu_row == ROW
    ]
    return [*calls, *orders]


def _run(only_fault, first_others: bool) -> list[tuple]:
    sim = _quiet_sim(only_fault)
    ops = sim.ops
    if first_others:
        for row in OTHERS:
            ops.on_call(row, "offline")
    ops.on_call(ROW, "offline")  # the call centre opens an order (visit probability 1)
    # A second order, the autopilot's, after the first is done: its own draws (k = 1).
    sim.env.process(_later_order(sim))
    sim.run()
    return _followed(sim)


def _later_order(sim: Simulation):
    yield sim.env.timeout(2.5 * 86400 - 3600)
    if ROW not in sim.ops.open_order_by_onu:
        sim.ops.open_order(ROW, "no_connection", opened_by="autopilot", confirm="power_on")


def test_a_customers_draws_do_not_depend_on_other_customers(only_fault):
    alone = _run(only_fault, first_others=False)
    after_others = _run(only_fault, first_others=True)
    assert len(alone) == 3, alone  # one call, two orders
    assert alone[1][2] in ("completed", "cancelled") and alone[2][0] > 0
    assert after_others == alone


def test_a_customers_successive_orders_draw_afresh(only_fault):
    # Keyed by the count of the customer's orders: the second order is not a copy of the
    # first (it would be, were the key the customer alone).
    first, second = _run(only_fault, first_others=False)[1:]
    assert first[0] != second[0]


def test_the_same_seed_gives_the_same_draws_and_another_seed_others(only_fault):
    assert _run(only_fault, first_others=True) == _run(only_fault, first_others=True)
    sim = _quiet_sim(only_fault, seed=6)
    sim.ops.on_call(ROW, "offline")
    sim.run()
    assert _followed(sim) != _run(only_fault, first_others=False)
