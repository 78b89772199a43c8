"""A case whose visit ended without fixing it is looked at again.

Every case's visit is followed once its order leaves the open orders: a visit the field
service cancelled (the dispatcher, a technician who could not get in) lets the case get a
new one after ``revisit_after_cancel_h``, a completed visit whose problem persists one
repeat after ``revisit_after_visit_h`` (at most ``max_repeat_visits``); the autopilot's
own cancellation never counts; a status not yet final is asked again next round, and a
client with ``closure(os_id)`` is asked once per order.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pandas as pd
import pytest
from decision_harness import T0, Field, SyntheticNet, readings
from dying_gasp_rows import rows

from guardian_lib.actions import Dispatcher
from guardian_lib.actions.dispatcher import ActionResult
from guardian_lib.decision import Autopilot, Snapshot
from guardian_lib.decision._types import Decision
from guardian_lib.decision.costs import CostModel
from guardian_lib.decision.expected_cost import case_costs
from guardian_lib.decision.visits import follow_visits, order_closure, visit_held
from guardian_lib.loop.tick import EventRow, Tick
from guardian_lib.operate.adapters import ActionContext
from guardian_lib.operate.field import DropFolderFieldService, WebhookFieldService
from guardian_lib.operate.state import StateStore

ROW = 5


class ClosingField(Field):
    """Field service whose orders close at the first question with ``final`` (status,
    closure code); counts the calls of each kind."""

    def __init__(self, final: tuple[str, str | None]):
        super().__init__()
        self.final = final
        self.calls = {"closure": 0, "outcome": 0, "status": 0}

    def closure(self, os_id):
        self.calls["closure"] += 1
        return self.final

    def outcome(self, os_id):
        self.calls["outcome"] += 1
        return self.final[1]

    def status(self, os_id):
        self.calls["status"] += 1
        return self.final[0]


class OldField(Field):
    """A client written before ``closure``: ``outcome`` then ``status``."""

    def __init__(self, final: str):
        super().__init__()
        self.final = final
        self.asked = 0

    def outcome(self, os_id):
        self.asked += 1
        return None

    def status(self, os_id):
        self.asked += 1
        return self.final


def _net(field: Field, costs: CostModel | None = None, policy: str = "autopilot") -> SyntheticNet:
    net = SyntheticNet(2, 16, 8, policy=policy)
    if costs is not None:
        net.ap.policy.costs = costs
    d = net.ap.dispatcher
    net.ap.dispatcher = Dispatcher("execute", devices=d.devices, field_ops=field,
                                   notifier=d.notifier)  # fmt: skip
    return net


def _dark_los(net: SyntheticNet, hours: float, row: int = ROW) -> pd.DataFrame:
    """ONU ``row`` dark with LOS (a dead ONU or a cut drop fibre: never ends alone) for
    ``hours``; the audited visit decisions, with ``h`` the hours since the start."""
    n = net.n
    for m in range(0, int(hours * 60), 15):
        ts = T0 + pd.Timedelta(minutes=m)
        online = np.ones(n, dtype=bool)
        online[row] = False
        events = (EventRow(ts, net.ids[row], "onu", "LOS", "major", "{}"),) if m == 0 else ()
        net.obs.update(Tick(ts, readings(online), events))
        net.ap.step(Snapshot(ts=ts, status=net.obs.status()))
    dec = net.ap.audit.frame("decisions")
    visits = dec.loc[dec["action"] == "schedule_visit"].copy()
    visits["h"] = (pd.to_datetime(visits["ts"], utc=True) - T0).dt.total_seconds() / 3600
    return visits


def _why(row) -> dict:
    return json.loads(row["rationale"])


@pytest.mark.parametrize("after_h", [4.0, 8.0])
def test_a_visit_the_field_service_cancelled_is_ordered_again_after_the_setting(after_h):
    # Before, the cancelled order stayed the case's visit: the ONU stayed dark for the
    # whole day with no new visit and nothing said.
    field = ClosingField(("cancelled", "dispatcher_no_slot"))
    net = _net(field, CostModel(revisit_after_cancel_h=after_h))
    visits = _dark_los(net, 24.0)
    h = visits["h"].to_numpy()
    assert len(h) >= 2
    gaps = np.diff(h)
    assert (gaps >= after_h).all()  # not before the setting
    assert (gaps <= after_h + 0.5).all()  # and soon after it (a dead ONU needs a visit)
    assert len(h) <= 1 + 24.0 / after_h
    assert field.opened == [net.ids[ROW]] * len(h)
    first, second = _why(visits.iloc[0]), _why(visits.iloc[1])
    assert "revisit" not in first
    assert second["revisit"]["previous_os_id"] == "AP1"
    assert second["revisit"]["after"] == "cancelled"
    assert second["revisit"]["code"] == "dispatcher_no_slot"
    case = net.ap.cases[net.ids[ROW]]
    assert case["visit_cancel_code"] == "dispatcher_no_slot"


def test_a_cancelled_visit_is_held_until_the_setting_then_allowed():
    m = CostModel(revisit_after_cancel_h=8.0, revisit_after_visit_h=12.0, max_repeat_visits=1)
    assert visit_held({"visit_cancelled_h": 7.9}, m) == "cancelled_recently"
    assert visit_held({"visit_cancelled_h": 8.0}, m) is None
    assert visit_held({"visit_completed_h": 11.0, "visits_completed": 1}, m) == "visited_recently"
    assert visit_held({"visit_completed_h": 12.5, "visits_completed": 1}, m) is None
    assert visit_held({"visit_completed_h": 99.0, "visits_completed": 2}, m) == "repeat_cap"
    assert visit_held({"visit_cancelled_h": np.nan, "visit_completed_h": np.nan}, m) is None


def test_the_autopilots_own_cancellation_does_not_count_as_the_field_services():
    field = ClosingField(("cancelled", "autopilot_case_closed"))
    case = {"visit_os_id": "AP1", "call_ahead_os_id": None}
    d = Decision(ts=T0, subject="ONU1", action="cancel_visit", targets=("AP1",))
    Autopilot.track_visit(case, d, [ActionResult("cancel_visit", "AP1", "done", T0)], "D1")
    assert follow_visits({"ONU1": case}, field, set(), T0) == 0
    assert sum(field.calls.values()) == 0
    assert case.get("visit_cancelled_at") is None and case["visit_os_id"] is None
    # The same order cancelled by the field service would count.
    other = {"visit_os_id": "AP2"}
    assert follow_visits({"ONU2": other}, field, set(), T0) == 1
    assert other["visit_cancelled_at"] == T0 and other["last_visit_os_id"] == "AP2"


def test_the_autopilot_cancelling_a_visit_when_its_case_closes_records_no_cancellation():
    # The ONU is dark for 3 h (visit ordered, listed open), comes back: the case closes and the
    # autopilot cancels the scheduled order; the order is never followed as cancelled.
    class Listed(ClosingField):
        def __init__(self):
            super().__init__(("cancelled", "autopilot"))
            self.cancelled: list[str] = []

        def cancel_visit(self, os_id, reason):
            self.cancelled.append(os_id)
            return True

    field = Listed()
    net = _net(field)
    n = net.n
    for m in range(0, 6 * 60, 15):
        ts = T0 + pd.Timedelta(minutes=m)
        online = np.ones(n, dtype=bool)
        online[ROW] = m >= 180
        events = (EventRow(ts, net.ids[ROW], "onu", "LOS", "major", "{}"),) if m == 0 else ()
        net.obs.update(Tick(ts, readings(online), events))
        listed = [(f"AP{i + 1}", onu, "scheduled", "autopilot")
                  for i, onu in enumerate(field.opened) if f"AP{i + 1}" not in field.cancelled]  # fmt: skip
        orders = pd.DataFrame(listed, columns=["os_id", "onu_id", "status", "opened_by"])
        net.ap.step(Snapshot(ts=ts, status=net.obs.status(), service_orders=orders))
    assert field.opened == [net.ids[ROW]]
    assert field.cancelled == ["AP1"]
    assert field.calls["closure"] == 0  # open while the case lived, then cancelled by us
    closes = net.ap.audit.frame("decisions")
    closes = closes.loc[closes["action"] == "close_case"]
    assert [_why(r)["outcome"] for _, r in closes.iterrows()] == ["visit_avoided"]


@pytest.mark.parametrize("repeats", [0, 1, 2])
def test_a_completed_visit_that_left_the_onu_dark_gets_the_repeats_allowed_not_a_loop(repeats):
    # The technician closed the order ("no fault found") and the ONU is still dark.
    # Before, the case kept the completed order as its visit for ever: no second visit.
    field = ClosingField(("completed", "no_fault_found"))
    after_h = 12.0
    net = _net(field, CostModel(revisit_after_visit_h=after_h, max_repeat_visits=repeats))
    visits = _dark_los(net, 72.0)
    h = visits["h"].to_numpy()
    assert len(h) == 1 + repeats
    assert (np.diff(h) >= after_h).all()
    for k in range(1, len(h)):
        why = _why(visits.iloc[k])["revisit"]
        assert why == {"previous_os_id": f"AP{k}", "after": "completed", "repeat": k,
                       "code": "no_fault_found", "hours_since": why["hours_since"]}  # fmt: skip
        assert why["hours_since"] >= after_h
    case = net.ap.cases[net.ids[ROW]]
    assert case["visits_completed"] == 1 + repeats
    assert field.calls["closure"] == 1 + repeats  # each order asked once
    assert field.calls["outcome"] == field.calls["status"] == 0


def test_a_repeat_visit_prices_the_visit_that_did_not_fix_it():
    # The same dark LOS row, 14 h into it: with a completed visit 13 h ago, the shares a
    # visit fixes are less likely by 1 − visit_fix_prob (Bayes); a problem that began
    # after the visit (elapsed below the hours since it) is not affected.
    probs = {"p_massive_outage": 0.1, "p_customer_premises": 0.1, "p_equipment_fail": 0.7,
             "p_external_network": 0.0, "p_intermittent": 0.05, "p_unknown": 0.05}  # fmt: skip
    base = rows(probs, np.array([14.0, 14.0, 14.0]), False, down_type="LOS")
    r = base.with_columns(visit_completed_h=np.array([np.nan, 13.0, 20.0]))
    t = case_costs(r, CostModel(visit_fix_prob=0.85))
    p_self = np.asarray(t["p_self_resolving"])
    assert p_self[1] > 2 * p_self[0] and p_self[2] == p_self[0]
    assert t["schedule_visit"][1] > t["schedule_visit"][0]  # a visit is worth less
    surely = case_costs(r, CostModel(visit_fix_prob=0.0))
    assert np.asarray(surely["p_self_resolving"])[1] == p_self[0]


@pytest.mark.parametrize("after_h", [4.0, 8.0])
def test_the_rules_order_again_after_a_cancellation_as_rule_4_says(after_h):
    # "Persists → schedule a visit with priority": a dead ONU whose order the dispatcher
    # cancelled still persists. Before, the rules kept one visit per case and the ONU
    # stayed dark all day.
    field = ClosingField(("cancelled", "dispatcher_no_slot"))
    net = _net(field, CostModel(revisit_after_cancel_h=after_h), policy="rules")
    visits = _dark_los(net, 24.0)
    h = visits["h"].to_numpy()
    assert h[0] == pytest.approx(1.0)  # persist_minutes: 60
    gaps = np.diff(h)
    assert len(h) >= 2 and (gaps >= after_h).all() and (gaps <= after_h + 0.5).all()
    second = _why(visits.iloc[1])
    assert second["rule"] == "problem persists: priority visit"
    assert second["revisit"]["after"] == "cancelled"
    assert second["revisit"]["code"] == "dispatcher_no_slot"


@pytest.mark.parametrize("repeats", [0, 1])
def test_the_rules_repeat_a_visit_that_left_the_onu_dark_within_the_cap(repeats):
    field = ClosingField(("completed", "no_fault_found"))
    net = _net(field, CostModel(revisit_after_visit_h=12.0, max_repeat_visits=repeats),
               policy="rules")  # fmt: skip
    visits = _dark_los(net, 48.0)
    h = visits["h"].to_numpy()
    assert len(h) == 1 + repeats
    assert (np.diff(h) >= 12.0).all()
    assert field.confirm == [None] * len(h)  # the rules call nobody ahead


@pytest.mark.parametrize("code", ["customer_absent", "no_fault_found"])
def test_a_repeat_to_a_customer_found_absent_is_called_ahead(code):
    # The technician found nobody home and the ONU is still dark: a second visit
    # without asking would likely find nobody again (a truck roll for nothing). Before,
    # the closure code was recorded and nobody read it.
    field = ClosingField(("completed", code))
    net = _net(field)
    visits = _dark_los(net, 16.0)
    assert len(visits) == 2
    absent = code == "customer_absent"
    assert field.confirm == [None, "power_on" if absent else None]
    why = _why(visits.iloc[1])
    assert ("call_ahead" in why) == absent
    if absent:
        ca = why["call_ahead"]
        assert ca["after"] == "customer_absent" and ca["question"] == "power_on"
        assert 0.5 < ca["p_absent"] < 1.0
        assert ca["with_call_brl"] < ca["without_brl"]


def test_no_call_ahead_before_a_repeat_when_the_call_costs_more_than_it_saves():
    # A call dearer than the visit it may spare: the repeat goes without one, and the
    # rationale says why (the two prices).
    field = ClosingField(("completed", "customer_absent"))
    net = _net(field, CostModel(call_ahead_cost_brl=150.0))
    visits = _dark_los(net, 16.0)
    assert len(visits) == 2
    assert field.confirm == [None, None]
    why = _why(visits.iloc[1])
    assert "call_ahead" not in why
    assert why["no_call_ahead"]["with_call_brl"] > why["no_call_ahead"]["without_brl"]


def test_a_repeat_call_answered_power_off_holds_the_case_for_the_quiet_time():
    # First visit: customer absent. The repeat is called ahead and the customer says the
    # power is off: no truck, and no new visit (nor call) for call_ahead_quiet_h; then
    # one more call-ahead visit. Without the hold, the case ordered a visit every round.
    class Answers(ClosingField):
        def closure(self, os_id):
            self.calls["closure"] += 1
            if os_id == "AP1":
                return "completed", "customer_absent"
            return "cancelled", "customer_power_off"

    field = Answers(("unused", None))
    quiet = 10.0
    net = _net(field, CostModel(call_ahead_quiet_h=quiet))
    visits = _dark_los(net, 30.0)
    h = visits["h"].to_numpy()
    assert len(h) == 3
    assert field.confirm == [None, "power_on", "power_on"]
    assert quiet <= h[2] - h[1] <= quiet + 0.75  # answered a round after the order
    case = net.ap.cases[net.ids[ROW]]
    assert case["visits_completed"] == 1 and case["power_off_said_at"] is not None


@pytest.mark.parametrize("status", ["unknown", "scheduled", "in_progress"])
def test_a_status_not_final_is_asked_again_and_orders_no_new_visit(status):
    field = ClosingField((status, None))
    net = _net(field)
    visits = _dark_los(net, 24.0)
    assert len(visits) == 1
    assert field.calls["closure"] > 80  # every round after the visit (96 rounds a day)
    assert net.ap.cases[net.ids[ROW]]["visit_os_id"] == "AP1"


@pytest.mark.parametrize("final", ["completed", "cancelled"])
def test_a_client_without_closure_keeps_working(final):
    field = OldField(final)
    net = _net(field, CostModel(revisit_after_cancel_h=4.0, revisit_after_visit_h=4.0))
    visits = _dark_los(net, 6.0)
    assert len(visits) == 2
    assert field.asked == 2 * len(visits)  # outcome then status, once per order
    assert order_closure(field, "AP1") == (final, None)


@pytest.fixture
def field_client(tmp_path):
    """``make(handler)``: a webhook field client answering through ``handler`` (an
    ``httpx`` mock), or with ``handler`` None a drop-folder one on ``tmp_path/orders``;
    on a fresh state store at cycle 1, closed with it after the test."""
    store, made = StateStore(tmp_path / "state"), []

    def make(handler=None):
        ctx = ActionContext("isp", cycle=1, ts="2026-01-01T00:00:00+00:00")
        if handler is None:
            return DropFolderFieldService(tmp_path / "orders", store, ctx)
        made.append(WebhookFieldService("http://tickets/orders", store, ctx,
                                        transport=httpx.MockTransport(handler)))  # fmt: skip
        return made[-1]

    yield make
    for fs in made:
        fs.close()
    store.close()


def test_the_webhook_reads_status_and_code_from_one_get(field_client):
    gets = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": "T-1"})
        gets.append(request.url.path)
        return httpx.Response(200, json={"status": "cancelled", "outcome": "tech_no_access"})

    fs = field_client(handler)
    fs.open_visit("ONU-1", "autopilot_los", "high")
    case = {"visit_os_id": "T-1"}
    assert follow_visits({"ONU-1": case}, fs, set(), T0) == 1
    assert gets == ["/orders/T-1"]  # one GET for status and code
    assert case["visit_cancel_code"] == "tech_no_access"
    assert fs.orders["T-1"]["status"] == "cancelled"


def test_the_drop_folder_reads_status_and_code_from_status_csv(tmp_path, field_client):
    fs = field_client()
    os_id = fs.open_visit("ONU-1", "autopilot_los", "high")
    assert fs.closure(os_id) == ("scheduled", None)
    (tmp_path / "orders" / "status.csv").write_text(
        f"os_id,status,outcome\n{os_id},completed,no_fault_found\n", encoding="utf-8"
    )
    assert fs.closure(os_id) == ("completed", "no_fault_found")
    assert fs.outcome(os_id) == "no_fault_found" and fs.status(os_id) == "completed"


def test_the_webhooks_open_orders_follow_the_ticketing_system(field_client):
    # The state lists what the autopilot opened; before, an order the ticketing system
    # closed stayed "scheduled" there for ever, so the loop never followed it.
    answers = {"T-1": {"status": "completed", "outcome": "no_fault_found"},
               "T-2": {"status": "scheduled"}}  # fmt: skip
    gets: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": f"T-{len(fs.orders) + 1}"})
        os_id = request.url.path.rsplit("/", 1)[1]
        gets.append(os_id)
        return httpx.Response(200, json=answers[os_id])

    fs = field_client(handler)
    fs.open_visit("ONU-1", "autopilot_los", "high")
    fs.context = ActionContext("isp", cycle=2, ts="2026-01-01T00:15:00+00:00")
    fs.open_visit("ONU-2", "autopilot_los", "high")
    assert list(fs.open_orders()["os_id"]) == ["T-2"]
    assert sorted(gets) == ["T-1", "T-2"]  # one GET per open order
    cases = {"ONU-1": {"visit_os_id": "T-1"}, "ONU-2": {"visit_os_id": "T-2"}}
    assert follow_visits(cases, fs, {"T-2"}, T0) == 1
    assert len(gets) == 2  # the final status came with the listing: no second GET
    assert cases["ONU-1"]["visits_completed"] == 1
    assert cases["ONU-2"]["visit_os_id"] == "T-2"


def test_the_drop_folders_open_orders_read_status_csv(tmp_path, field_client):
    fs = field_client()
    os_id = fs.open_visit("ONU-1", "autopilot_los", "high")
    assert list(fs.open_orders()["os_id"]) == [os_id]
    (tmp_path / "orders" / "status.csv").write_text(
        f"os_id,status,outcome\n{os_id},cancelled,no_access\n", encoding="utf-8"
    )
    assert fs.open_orders().empty
    case = {"visit_os_id": os_id}
    follow_visits({"ONU-1": case}, fs, set(), T0)
    assert case["visit_cancel_code"] == "no_access"


def test_the_webhooks_open_orders_cost_one_timeout_when_the_system_is_down(field_client):
    # A ticketing system that stops answering: the listing asks one order and gives up for
    # the cycle (before: one timeout per open order, a cycle of minutes); when it answers
    # again the orders asked longest ago come first, MAX_ORDER_CHECKS at most a cycle.
    from guardian_lib.operate import field

    down, gets = [False], []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": f"T-{len(fs.orders) + 1:03d}"})
        gets.append(request.url.path.rsplit("/", 1)[1])
        if down[0]:
            raise httpx.ConnectError("connection refused")
        return httpx.Response(200, json={"status": "scheduled"})

    fs = field_client(handler)
    for i in range(7):
        fs.context = ActionContext("isp", cycle=i + 1, ts=f"t{i}")
        fs.open_visit(f"ONU-{i}", "autopilot_los", "high")
    down[0] = True
    assert len(fs.open_orders()) == 7  # still listed, as the state has them
    assert len(gets) == 1  # one request, not seven
    down[0], gets[:] = False, []
    field.MAX_ORDER_CHECKS, cap = 3, field.MAX_ORDER_CHECKS
    try:
        fs.open_orders()
        first = list(gets)
        fs.open_orders()
    finally:
        field.MAX_ORDER_CHECKS = cap
    assert len(first) == 3 and "T-001" not in first  # T-001 was asked while down
    assert len(gets) == 6 and set(gets[3:]).isdisjoint(first)  # the others next
