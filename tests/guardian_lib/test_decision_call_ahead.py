"""Call-ahead before a dying-gasp visit: "is your power on?" before the truck rolls.

The dispatch office calls the customer first: a customer whose power is off cancels
the visit, one whose power is on confirms, an unanswered call lets it go. The expected
cost prices it (the call plus the trips it does not filter), the customer's answer is
evidence, and a case whose customer said their power is off is not called again for
``call_ahead_quiet_h`` (no call every 15 minutes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from decision_harness import T0, Field, SyntheticNet, readings
from dying_gasp_rows import ML, NO_CALL_AHEAD, RULE, rows

from guardian_lib.actions import Dispatcher
from guardian_lib.decision import Snapshot
from guardian_lib.decision._types import Decision
from guardian_lib.decision.call_ahead import (
    POWER_OFF_OUTCOME,
    UNREACHED_OUTCOME,
    answered_power_off,
)
from guardian_lib.decision.costs import CostModel
from guardian_lib.decision.expected_cost import case_costs
from guardian_lib.loop.tick import EventRow, Tick

HOURS = np.array([0.5, 4.0, 12.0, 40.0, 100.0, 300.0])


@pytest.mark.parametrize("probs", [RULE, ML], ids=["rule", "ml"])
def test_a_visit_called_ahead_costs_the_call_plus_the_trips_it_does_not_filter(probs):
    with_, without = CostModel(), NO_CALL_AHEAD
    on = case_costs(rows(probs, HOURS, False), with_)
    off = case_costs(rows(probs, HOURS, False), without)
    p_go = np.asarray(on["p_go"])
    reach = with_.call_ahead_reach_prob
    # P(go) = reach · (1 − P(power cut)): a trip only to a customer reached who has power.
    # It grows as the ONU stays dark (once the first hour's short blips are ruled out).
    assert ((0.0 < p_go) & (p_go < reach)).all()
    assert (np.diff(p_go[1:]) > 0).all()
    # Against the same visit with every trip made: cheaper (the trips to power cuts it
    # filters outweigh the call), never by more than a trip (exact terms: the next test).
    diff = np.asarray(on["schedule_visit"]) - np.asarray(off["schedule_visit"])
    assert (diff < 0).all()
    assert (diff >= with_.call_ahead_cost_brl - with_.cost_per_visit_brl).all()
    # Waiting, then visiting what is still dark, calls ahead too: cheaper than before.
    assert (np.asarray(on["wait"]) < np.asarray(off["wait"])).all()
    np.testing.assert_array_equal(np.asarray(off["p_go"]), 1.0)


def test_the_price_of_a_call_ahead_by_hand():
    # One row, 40 h dark, rule-scorer probabilities: the difference between the visit
    # called ahead and the same visit with every trip made, term by term.
    r = rows(RULE, np.array([40.0]), False)
    m = CostModel()
    on, off = case_costs(r, m), case_costs(r, NO_CALL_AHEAD)
    reach, C, ca = m.call_ahead_reach_prob, m.cost_per_visit_brl, m.call_ahead_cost_brl
    p_cut = 1.0 - float(on["p_go"][0]) / reach
    rate = 110.0 / 720 + m.churn_cost_brl_per_h + 0.3 * m.call_rate_per_h * m.call_cost_brl
    # On a dying gasp after 40 h the unexplained blips are gone: what is not a power cut
    # is the power supply, which only a visit ends.
    q_need = 1.0 - p_cut
    again = (1 - reach) * (ca + rate * m.call_ahead_retry_h)
    trips = reach * q_need + q_need * (1 - reach)
    expected = ca - (1 - trips) * C + q_need * again
    diff = float(on["schedule_visit"][0] - off["schedule_visit"][0])
    assert diff == pytest.approx(expected, rel=1e-3)


def test_no_call_ahead_off_dying_gasp_rows():
    # A LOS (fibre, a dead laser) is no power question: the costs do not change.
    on = case_costs(rows(RULE, HOURS, True, down_type="LOS"), CostModel())
    off = case_costs(rows(RULE, HOURS, True, down_type="LOS"), NO_CALL_AHEAD)
    for col in ("wait", "schedule_visit"):
        np.testing.assert_array_equal(np.asarray(on[col]), np.asarray(off[col]))
    np.testing.assert_array_equal(np.asarray(on["p_go"]), 1.0)


@pytest.mark.parametrize(("reach", "call"), [(0.5, 2.0), (0.5, 8.0), (0.95, 2.0), (0.95, 8.0)])
def test_across_the_stated_ranges_a_call_ahead_visit_still_waits_on_a_fresh_outage(reach, call):
    # reach 0.5–0.95, R$ 2–8 a call: a visit is never ordered in the first hour, and the
    # further the call reaches and the less it costs, the sooner the visit.
    model = CostModel(call_ahead_reach_prob=reach, call_ahead_cost_brl=call)
    for probs in (RULE, ML):
        t = case_costs(rows(probs, np.array([0.25, 0.5, 1.0]), True), model)
        assert (np.asarray(t["wait"]) < np.asarray(t["schedule_visit"])).all()


def test_the_answer_restarts_the_evidence_of_the_dark_hours():
    # 100 h dark; the customer said 2 h ago that their power was off: the power cut is
    # known to have lasted 98 h, so the hours dark weigh only from the answer on and a
    # contact before the answer (the customer without power) counts no more.
    r = rows(RULE, np.array([100.0, 100.0]), True)
    said = r.with_columns(power_off_said_h=np.array([np.nan, 2.0]),
                          last_call_min=np.array([50 * 60.0, 50 * 60.0]))  # fmt: skip
    t = case_costs(said, CostModel())
    p_go = np.asarray(t["p_go"])
    assert p_go[1] < 0.5 * p_go[0]  # the power cut is likely again
    assert t["schedule_visit"][0] < t["wait"][0]  # without the answer: visit
    # An answer older than the outage is another outage's; a contact after it counts.
    dg = np.ones(3, dtype=bool)
    r3 = rows(RULE, np.array([5.0, 5.0, 5.0]), True).with_columns(
        power_off_said_h=np.array([10.0, 2.0, 2.0]), last_call_min=np.array([60.0, 60.0, 300.0])
    )
    said_h, counts = answered_power_off(r3, dg, np.full(3, 5.0))
    assert np.isnan(said_h[0]) and said_h[1] == 2.0 and said_h[2] == 2.0
    assert counts.tolist() == [True, True, False]


class AnsweringField(Field):
    """Field service whose office calls ahead at once: the customer's power is off."""

    def __init__(self):
        super().__init__()
        self.calls: list[pd.Timestamp] = []
        self.now = T0

    def open_visit(self, onu_id, reason, priority, confirm=None):
        if confirm:
            self.calls.append(self.now)
        return super().open_visit(onu_id, reason, priority, confirm)

    def outcome(self, os_id):
        return POWER_OFF_OUTCOME if self.confirm[int(os_id[2:]) - 1] else None


class UnreachedField(AnsweringField):
    """Field service whose office never reaches the customer."""

    def outcome(self, os_id):
        return UNREACHED_OUTCOME if self.confirm[int(os_id[2:]) - 1] else None


def _dark_for(net: SyntheticNet, field: AnsweringField, hours: float, row: int = 5) -> None:
    """ONU ``row`` dark with a dying gasp for ``hours``; its customer calls after 1 h."""
    n = net.n
    for m in range(0, int(hours * 60), 15):
        ts = T0 + pd.Timedelta(minutes=m)
        field.now = ts
        online = np.ones(n, dtype=bool)
        online[row] = False
        events = []
        if m == 0:
            events.append(EventRow(ts, net.ids[row], "onu", "DYING_GASP", "major", "{}"))
        if m == 60:
            events.append(EventRow(ts, f"C{row:03d}", "customer", "CUSTOMER_CALL", "info", "{}"))
        net.obs.update(Tick(ts, readings(online), tuple(events)))
        net.ap.step(Snapshot(ts=ts, status=net.obs.status()))


def _net(costs: CostModel, field_type: type = None) -> tuple[SyntheticNet, AnsweringField]:
    net = SyntheticNet(2, 16, 8)
    net.ap.policy.costs = costs
    field = (field_type or AnsweringField)()
    d = net.ap.dispatcher
    net.ap.dispatcher = Dispatcher("execute", devices=d.devices, field_ops=field,
                                   notifier=d.notifier)  # fmt: skip
    return net, field


@pytest.mark.parametrize("quiet_h", [12.0, 24.0, 48.0])
def test_a_customer_who_said_the_power_is_off_is_not_called_again_within_the_quiet_time(quiet_h):
    # A posterior that would visit at once (half of the dying gasps fixable): without the
    # bound the office would call every 15 minutes. Each call-ahead is answered "power
    # off": the next comes no sooner than call_ahead_quiet_h later.
    costs = CostModel(dying_gasp_fixable_share=0.5, call_ahead_quiet_h=quiet_h)
    net, field = _net(costs)
    hours = 96.0
    _dark_for(net, field, hours)
    calls = field.calls
    assert len(calls) >= 2
    assert all(c is not None for c in field.confirm)
    gaps_h = np.diff([c.value for c in calls]) / 3.6e12
    assert (gaps_h >= quiet_h).all()
    assert len(calls) <= 1 + hours / quiet_h
    dec = net.ap.audit.frame("decisions")
    visits = dec.loc[dec["action"] == "schedule_visit"]
    assert len(visits) == len(calls)


def test_the_default_model_calls_a_power_off_customer_at_most_once_a_day():
    # The stated defaults, a customer who called 1 h into the outage: a first call-ahead
    # within the day, none within 24 h of a "power off", at most 1 + 96 / 24 in four days.
    net, field = _net(CostModel())
    _dark_for(net, field, 96.0)
    calls = field.calls
    assert 1 <= len(calls) <= 5
    assert (calls[0] - T0) <= pd.Timedelta(hours=24)
    assert (np.diff([c.value for c in calls]) / 3.6e12 >= 24.0).all()


def test_the_dispatcher_carries_the_question_only_when_asked():
    field = Field()
    disp = Dispatcher("execute", field_ops=field)
    for params in ({"priority": "high"},
                   {"priority": "high", "confirm_first": True, "confirm_question": "power_on"}):  # fmt: skip
        d = Decision(ts=T0, subject="ONU1", action="schedule_visit", targets=("ONU1",),
                     params=params)  # fmt: skip
        (r,) = disp.execute(d)
        assert r.status == "done"
    assert field.confirm == [None, "power_on"]
    assert r.result["confirm_first"] == "power_on"


@pytest.mark.parametrize("retry_h", [2.0, 4.0, 12.0])
def test_a_call_ahead_that_does_not_reach_is_tried_again_no_sooner_than_the_retry_time(retry_h):
    costs = CostModel(dying_gasp_fixable_share=0.5, call_ahead_retry_h=retry_h)
    net, field = _net(costs, UnreachedField)
    hours = 48.0
    _dark_for(net, field, hours)
    calls = field.calls
    assert len(calls) >= 2
    gaps_h = np.diff([c.value for c in calls]) / 3.6e12
    assert (gaps_h >= retry_h).all()
    assert len(calls) <= 1 + hours / retry_h


class SilentlyCancelledField(AnsweringField):
    """Field service that cancels every called-ahead visit without a closure code (a
    ticketing system that reports none), or reports it ``completed``, or never answers."""

    def __init__(self, status: str):
        super().__init__()
        self.final = status
        self.asked = 0

    def outcome(self, os_id):
        return None

    def status(self, os_id):
        self.asked += 1
        return self.final if self.confirm[int(os_id[2:]) - 1] else "scheduled"


def test_a_call_ahead_cancelled_without_a_closure_code_is_tried_again_after_the_retry_time():
    # Before, the case kept the cancelled order as its visit: no technician and no new
    # call for as long as the ONU stayed dark (here two days).
    costs = CostModel(dying_gasp_fixable_share=0.5, call_ahead_retry_h=4.0)
    net, field = _net(costs, lambda: SilentlyCancelledField("cancelled"))
    _dark_for(net, field, 48.0)
    calls = field.calls
    assert len(calls) >= 2
    assert (np.diff([c.value for c in calls]) / 3.6e12 >= 4.0).all()
    assert len(calls) <= 1 + 48.0 / 4.0


@pytest.mark.parametrize("status", ["completed", "unknown"])
def test_a_call_ahead_visit_made_or_not_yet_known_is_not_ordered_again_at_once(status):
    # completed: the technician went and the ONU is still dark: one repeat visit (called
    # ahead again) after revisit_after_visit_h, never a loop (max_repeat_visits 1);
    # unknown: the system did not answer, asked each round, no new visit
    costs = CostModel(dying_gasp_fixable_share=0.5)
    net, field = _net(costs, lambda: SilentlyCancelledField(status))
    _dark_for(net, field, 48.0)
    if status == "completed":
        assert len(field.calls) == 2
        assert (field.calls[1] - field.calls[0]) >= pd.Timedelta(hours=costs.revisit_after_visit_h)
        assert field.asked == 2  # each order followed until its status was final, once
    else:
        assert len(field.calls) == 1
        assert field.asked > 10  # still followed, round after round
