"""The call-ahead travels to the field-service system and its answer comes back.

A dying-gasp visit asks the office to call the customer first (``confirm_first:
power_on``): the webhook sends it as a JSON field, the drop folder as a CSV column, the
twin's ticketing server passes it to the simulated office; the closure code of a visit
the customer cancelled on the call (``customer_power_off``) comes back as ``outcome``.
"""

from __future__ import annotations

import json
import threading

import httpx
import pandas as pd
import pytest

from acs_emulator.twin.ticketing import TicketingServer
from guardian_lib.decision.call_ahead import POWER_OFF_OUTCOME
from guardian_lib.operate.adapters import ActionContext
from guardian_lib.operate.field import DropFolderFieldService, WebhookFieldService
from guardian_lib.operate.state import StateStore


def _ctx(cycle: int = 1) -> ActionContext:
    return ActionContext("isp", cycle=cycle, ts="2026-01-01T00:00:00+00:00")


def test_webhook_sends_the_question_and_reads_the_closure_code(tmp_path):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            seen.append(json.loads(request.content))
            return httpx.Response(201, json={"id": f"T-{len(seen)}"})
        if request.url.path.endswith("/T-1"):
            return httpx.Response(200, json={"status": "cancelled", "outcome": POWER_OFF_OUTCOME})
        return httpx.Response(200, json={"status": "scheduled"})

    st = StateStore(tmp_path / "state")
    fs = WebhookFieldService(
        "http://tickets/orders", st, _ctx(), transport=httpx.MockTransport(handler)
    )
    try:
        assert fs.open_visit("ONU-1", "autopilot_power", "high", confirm="power_on") == "T-1"
        fs.context = _ctx(2)
        assert fs.open_visit("ONU-2", "autopilot_los", "high") == "T-2"
        assert seen[0]["confirm_first"] == "power_on"
        assert "confirm_first" not in seen[1]  # other visits: the body as before
        assert fs.outcome("T-1") == POWER_OFF_OUTCOME
        assert fs.status("T-1") == "cancelled"
        assert fs.outcome("T-2") is None
        assert list(fs.open_orders()["os_id"]) == ["T-2"]
    finally:
        fs.close()
        st.close()


@pytest.mark.parametrize(
    "outcome", [{"code": POWER_OFF_OUTCOME}, ["x"], "x" * 10_000, "power off\n", 7, ""]
)
def test_a_closure_code_that_is_not_a_short_token_is_dropped(tmp_path, outcome):
    """The ticketing system's answer is hostile input: only a short token is kept (and
    stored in the state), anything else reads as no closure code."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(201, json={"id": "T-1"})
        return httpx.Response(200, json={"status": "cancelled", "outcome": outcome})

    st = StateStore(tmp_path / "state")
    fs = WebhookFieldService(
        "http://tickets/orders", st, _ctx(), transport=httpx.MockTransport(handler)
    )
    try:
        fs.open_visit("ONU-1", "autopilot_power", "high", confirm="power_on")
        assert fs.outcome("T-1") is None
        assert fs.status("T-1") == "cancelled"
    finally:
        fs.close()
        st.close()
    folder = tmp_path / "drop"
    st2 = StateStore(tmp_path / "state2")
    drop = DropFolderFieldService(folder, st2, _ctx())
    os_id = drop.open_visit("ONU-1", "autopilot_power", "high", confirm="power_on")
    st2.close()
    if isinstance(outcome, str):
        text = outcome.replace("\n", " ")
        (folder / "status.csv").write_text(f'os_id,status,outcome\n{os_id},cancelled,"{text}"\n')
        assert drop.outcome(os_id) is None


def test_drop_folder_writes_the_question_and_reads_the_closure_code(tmp_path):
    st = StateStore(tmp_path / "state")
    fs = DropFolderFieldService(tmp_path / "drop", st, _ctx())
    asked = fs.open_visit("ONU-1", "autopilot_power", "high", confirm="power_on")
    fs.context = _ctx(2)
    plain = fs.open_visit("ONU-2", "autopilot_los", "high")
    row = pd.read_csv(tmp_path / "drop" / f"{asked}.open.csv", keep_default_na=False).iloc[0]
    assert row["confirm_first"] == "power_on"
    row = pd.read_csv(tmp_path / "drop" / f"{plain}.open.csv", keep_default_na=False).iloc[0]
    assert row["confirm_first"] == ""
    (tmp_path / "drop" / "status.csv").write_text(
        f"os_id,status,outcome\n{asked},cancelled,{POWER_OFF_OUTCOME}\n{plain},in_progress,\n"
    )
    assert fs.outcome(asked) == POWER_OFF_OUTCOME
    assert fs.outcome(plain) is None
    # A consumer that writes no outcome column: no closure code.
    (tmp_path / "drop" / "status.csv").write_text(f"os_id,status\n{asked},cancelled\n")
    assert fs.outcome(asked) is None
    st.close()


class _Office:
    """A field service that records the question and cancels the asked visit."""

    def __init__(self):
        self.asked: dict[str, str | None] = {}

    def open_visit(self, onu_id, reason, priority, confirm=None):
        os_id = f"OS{len(self.asked) + 1}"
        self.asked[os_id] = confirm
        return os_id

    def cancel_visit(self, os_id, reason):
        return True

    def status(self, os_id):
        return "cancelled" if self.asked.get(os_id) else "scheduled"

    def outcome(self, os_id):
        return POWER_OFF_OUTCOME if self.asked.get(os_id) else None


def test_the_twin_ticketing_server_passes_the_question_and_the_answer(tmp_path):
    office = _Office()
    srv = TicketingServer(office, threading.Lock()).start()
    st = StateStore(tmp_path / "state")
    fs = WebhookFieldService(srv.url, st, _ctx(), sleep=lambda s: None)
    try:
        os_id = fs.open_visit("ONU-1", "autopilot_power", "high", confirm="power_on")
        fs.context = _ctx(2)
        other = fs.open_visit("ONU-2", "autopilot_los", "high")
        assert office.asked == {os_id: "power_on", other: None}
        assert fs.outcome(os_id) == POWER_OFF_OUTCOME
        assert fs.outcome(other) is None
    finally:
        fs.close()
        st.close()
        srv.stop()
