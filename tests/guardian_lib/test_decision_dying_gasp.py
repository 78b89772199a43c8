"""A dark ONU with a dying gasp: a customer's power cut, or the ONU's own power supply.

The two look alike (the ONU announces that it lost power). A power cut returns by
itself, a failed power supply needs a technician: the expected-cost policy must wait on
the first and still visit the second within days, sooner when the customer contacted
us about the dark ONU (someone at home with the lights on).
"""

from __future__ import annotations

import numpy as np
import pytest
from dying_gasp_rows import HOURS, ML, NO_CALL_AHEAD, RULE, rows
from policy_snapshots import T0, case_frame, inventory, observe, snapshot

from guardian_lib.decision import Observer, make_autopilot
from guardian_lib.decision.costs import CostModel, contact_lr
from guardian_lib.decision.expected_cost import case_costs
from guardian_lib.loop.tick import EventRow, Tick


def first_visit_h(probs: dict, contacted: bool, notified: bool = True,
                  model: CostModel = NO_CALL_AHEAD) -> float:  # fmt: skip
    """Elapsed time at which a visit first costs less than waiting. [h]"""
    t = case_costs(rows(probs, HOURS, contacted, notified), model)
    better = np.asarray(t["schedule_visit"]) < np.asarray(t["wait"])
    assert better.any(), "no visit within 400 h dark"
    first = int(better.argmax())
    assert better[first:].all()  # once a visit pays, it keeps paying
    return float(HOURS[first])


@pytest.mark.parametrize("probs", [RULE, ML], ids=["rule", "ml"])
@pytest.mark.parametrize("notified", [False, True])
def test_a_long_dying_gasp_gets_a_visit_within_days_a_contacted_one_sooner(probs, notified):
    # Before, *wait* priced the power cut as if its visit could be skipped later for
    # free: a visit won only once the power supply was 95 % likely, after 490-850 h.
    # Bounds: 5 days dark without a contact (the customer may be away), 3 with one.
    alone = first_visit_h(probs, contacted=False, notified=notified)
    called = first_visit_h(probs, contacted=True, notified=notified)
    assert 24.0 < alone <= 120.0
    assert 2.0 < called <= 72.0
    assert called < alone - 24.0
    # Called ahead ("is your power on?"), a visit to a power cut costs only the call: the
    # visit (its call) comes within hours, still not on a fresh outage, and a contacted
    # one first (test_decision_call_ahead.py).
    ahead = [first_visit_h(probs, c, notified, CostModel()) for c in (False, True)]
    assert 1.0 < ahead[1] <= ahead[0] < alone
    assert 2.0 < ahead[0] <= 12.0 and ahead[1] < called


def test_a_contact_weighs_less_the_longer_the_outage():
    # A contact right after the ONU went dark is the hazard ratio of the two causes; by
    # the time even a customer without power may well have called, it is weak evidence.
    m = CostModel()
    lr = contact_lr(np.array([0.01, 1.0, 6.0, 24.0, 2000.0]), m)
    assert lr[0] == pytest.approx(m.dying_gasp_contact_lr, rel=0.01)
    assert (np.diff(lr) < 0).all()
    assert lr[-1] == pytest.approx(1.0, abs=0.01)


def test_a_fresh_dying_gasp_is_waited_on_even_when_the_customer_called():
    # Most dark ONUs with a dying gasp are a power cut that ends within hours.
    for contacted in (False, True):
        for probs in (RULE, ML):
            t = case_costs(rows(probs, np.array([0.5, 1.0]), contacted), CostModel())
            assert (np.asarray(t["wait"]) < np.asarray(t["schedule_visit"])).all()


def test_a_contact_is_evidence_only_on_dying_gasp_rows():
    # A LOS is not a power cut: the contact changes nothing there.
    h = np.array([0.5, 3.0, 30.0])
    costs = [case_costs(rows(RULE, h, c, down_type="LOS"), CostModel()) for c in (False, True)]
    for col in ("wait", "schedule_visit"):
        np.testing.assert_array_equal(np.asarray(costs[0][col]), np.asarray(costs[1][col]))
    # The stronger the stated likelihood ratio, the sooner the visit.
    lr = {}
    for ratio in (5.0, 20.0, 50.0):
        model = NO_CALL_AHEAD.model_copy(update={"dying_gasp_contact_lr": ratio})
        t = case_costs(rows(RULE, HOURS, True), model)
        lr[ratio] = float(HOURS[int((np.asarray(t["schedule_visit"]) < t["wait"]).argmax())])
    assert lr[50.0] < lr[20.0] < lr[5.0]


def _dark_with_gasp(call_at_min: float | None, call_customer: str = "C012",
                    at_min: float = 70 * 60) -> tuple:  # fmt: skip
    """ONU012 goes dark with a dying gasp at 5 min; a call at ``call_at_min``; observed
    until ``at_min``."""
    obs = Observer(*inventory())
    online = np.ones(obs.n, dtype=bool)
    observe(obs, 0)
    if call_at_min is not None and call_at_min < 5:
        obs.update(Tick(observe(obs, call_at_min), {**obs.values, "online": obs.online},
                        (EventRow(T0, call_customer, "customer", "CUSTOMER_CALL", "info"),)))  # fmt: skip
    online[12] = False
    ts = observe(obs, 5, online=online)
    gasp = EventRow(ts, "ONU012", "onu", "DYING_GASP", "major")
    obs.update(Tick(ts, {**obs.values, "online": obs.online}, (gasp,)))
    if call_at_min is not None and call_at_min >= 5:
        ts = observe(obs, call_at_min, online=online)
        call = EventRow(ts, call_customer, "customer", "CUSTOMER_CALL", "info")
        obs.update(Tick(ts, {**obs.values, "online": obs.online}, (call,)))
    ts = observe(obs, at_min, online=online)
    return obs, ts


def test_observer_marks_a_contact_since_the_onu_went_dark():
    obs, _ = _dark_with_gasp(call_at_min=90)
    st = obs.status()
    assert st.loc["ONU012", "contacted_since_down"]
    assert not st.drop(index="ONU012")["contacted_since_down"].any()
    # A call before the outage, or from another customer, is no contact about it.
    for call_at, who in ((2, "C012"), (90, "C013")):
        st = _dark_with_gasp(call_at_min=call_at, call_customer=who)[0].status()
        assert not st.loc["ONU012", "contacted_since_down"]


@pytest.mark.parametrize(("model", "at_h"), [(NO_CALL_AHEAD, 70), (CostModel(), 5)],
                         ids=["no-call-ahead", "call-ahead"])  # fmt: skip
def test_autopilot_visits_a_contacted_dark_onu_not_an_uncontacted_one(model, at_h):
    decided = {}
    for call_at in (None, 90):
        obs, ts = _dark_with_gasp(call_at_min=call_at, at_min=at_h * 60)
        scorer, pol = make_autopilot(costs=model)
        snap = snapshot(obs, ts, scorer=scorer, cases=case_frame("ONU012", T0))
        decided[call_at] = {d.action: d for d in pol.decide(snap) if d.subject == "ONU012"}
    assert "schedule_visit" not in decided[None]
    visit = decided[90]["schedule_visit"]
    assert visit.params["priority"] == "high"
    assert visit.rationale["subtype"] == "power"
    assert visit.rationale["contacted_since_down"] is True
    if model.call_ahead_reach_prob == 0:  # a call-ahead that never reaches: none asked
        assert "confirm_first" not in visit.params and "call_ahead" not in visit.rationale
        return
    # Called ahead with the question, the call's price in the rationale.
    assert visit.params.get("confirm_first") is True
    assert visit.params["confirm_question"] == "power_on"
    p_go = visit.rationale["call_ahead"]["p_go"]
    assert 0.2 < p_go < 1.0
