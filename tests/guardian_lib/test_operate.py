"""``guardian operate`` pieces without the twin: site file, state store, adapters over HTTP."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import yaml
from local_servers import free_port

from guardian_lib.acs import NbiClient
from guardian_lib.decision import AutopilotSettings
from guardian_lib.errors import ConfigError
from guardian_lib.operate.adapters import ActionContext, JournalledDevices, NbiCpeState
from guardian_lib.operate.field import (
    DropFolderFieldService,
    FieldServiceError,
    WebhookFieldService,
)
from guardian_lib.operate.fleet import fleet_from_poll, load_subscribers
from guardian_lib.operate.service import safety_violations
from guardian_lib.operate.site import load_site, read_secret
from guardian_lib.operate.state import StateError, StateStore

INVENTORY = {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}


def _site(tmp_path: Path, **extra) -> Path:
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(INVENTORY))
    site = {"inventory": "olts.yaml", "warehouse": "wh", **extra}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    return path


# --- site file --------------------------------------------------------------------------------
def test_a_valid_site_file_loads_with_its_safety_settings(tmp_path):
    site = load_site(_site(tmp_path, safety={"max_reboots_per_day": 1}, polling_interval_s=60))
    assert site.resolve(site.inventory) == tmp_path / "olts.yaml"
    settings = site.autopilot_settings("approve")
    assert settings.max_reboots_per_day == 1 and settings.autopilot_mode == "execute"
    assert site.autopilot_settings("simulate").autopilot_mode == "simulate"


def test_the_site_sets_the_policys_costs_in_operate_and_in_decide(tmp_path):
    from guardian_lib.decision.costs import CostModel
    from guardian_lib.operate.decide import _settings
    from guardian_lib.operate.fleet import load_subscribers
    from guardian_lib.operate.service import Operator

    path = _site(tmp_path, costs={"call_cost_brl": 12.5, "revisit_after_cancel_h": 6})
    site = load_site(path)
    costs = site.cost_model()
    assert costs.call_cost_brl == 12.5 and costs.revisit_after_cancel_h == 6.0
    assert costs.call_ahead_cost_brl == CostModel().call_ahead_cost_brl  # the rest: defaults
    assert _settings(path)[4] == costs
    (tmp_path / "subs.csv").write_text("onu_id,pon_id,olt_id\nA,P1,OLT-1\n")
    op = Operator(site, tmp_path / "state")
    try:
        op._build(load_subscribers(tmp_path / "subs.csv"))
        assert op.autopilot.policy.costs == costs  # what the running policy prices with
    finally:
        op.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"polling_interval_s": 0}, "polling_interval_s: Input should be greater than 0"),
        ({"nbi": {"url": "ftp://x"}}, "nbi.url: String should match pattern"),
        ({"nbi": {"url": "http://x", "token": "s3cret"}}, "nbi.token: Extra inputs"),
        ({"safety": {"max_reboot": 2}}, "safety: Value error, unknown safety setting"),
        ({"safety": {"max_reboots_per_day": -1}}, "safety.max_reboots_per_day"),
        ({"field_service": {"kind": "webhook"}}, "field_service: Value error, kind 'webhook'"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"costs": {"call_cost": 8}}, "costs.call_cost: unknown setting; expected one of"),
        ({"costs": {"call_ahead_reach_prob": 1.5}}, "costs.call_ahead_reach_prob: Input should"),
        ({"costs": {"revisit_after_cancel_h": "soon"}}, "costs.revisit_after_cancel_h: Input"),
        ({"costs": {"cost_per_visit_brl": 90}}, "as safety.cost_per_visit"),
    ],
)
def test_site_errors_name_the_file_and_the_field(tmp_path, extra, message):
    path = _site(tmp_path, **extra)
    with pytest.raises(ConfigError) as exc:
        load_site(path)
    assert str(path) in str(exc.value) and message in str(exc.value)


def test_a_missing_inventory_is_named(tmp_path):
    path = _site(tmp_path)
    (tmp_path / "olts.yaml").unlink()
    with pytest.raises(ConfigError, match=r"inventory: OLT inventory file .*olts.yaml not found"):
        load_site(path)


def test_secrets_come_from_the_environment_or_an_owner_only_file(tmp_path, monkeypatch):
    site = load_site(_site(tmp_path, nbi={"url": "http://acs:7557", "token_env": "T_NBI"}))
    with pytest.raises(ConfigError, match="T_NBI is not set"):
        read_secret(site.nbi, tmp_path, "nbi")
    monkeypatch.setenv("T_NBI", "abc")
    assert read_secret(site.nbi, tmp_path, "nbi") == "abc"
    tok = tmp_path / "nbi.token"
    tok.write_text("xyz\n")
    os.chmod(tok, 0o644)
    site = load_site(_site(tmp_path, nbi={"url": "http://acs:7557", "token_file": "nbi.token"}))
    with pytest.raises(ConfigError, match="has mode 0644.*chmod 600"):
        read_secret(site.nbi, tmp_path, "nbi")
    os.chmod(tok, 0o600)
    assert read_secret(site.nbi, tmp_path, "nbi") == "xyz"


# --- fleet ----------------------------------------------------------------------------------------
def test_subscribers_fill_what_they_lack_and_reject_duplicates(tmp_path):
    p = tmp_path / "subs.csv"
    p.write_text("onu_id,cpe_id,pon_id\nA,CPE-A,P1\nB,,P1\n")
    fleet = load_subscribers(p)
    assert list(fleet.onu_ids) == ["A", "B"]
    t = fleet.table.set_index("onu_id")
    assert t.at["A", "box_id"] == "P1" and t.at["B", "customer_id"] == "B"
    assert t.at["B", "cpe_id"] is None
    assert fleet.pon_of()["CPE-A"] == "P1"
    p.write_text("onu_id\nA\nA\n")
    with pytest.raises(ConfigError, match="onu_id appears more than once"):
        load_subscribers(p)


def test_a_fleet_from_the_first_poll_takes_the_pon_from_the_snmp_index():
    tel = pd.DataFrame({"onu_id": ["S1", "S2"], "olt_id": ["O", "O"],
                        "snmp_index": ["4194304000.1", "4194304256.7"], "serial": ["S1", "S2"]})  # fmt: skip
    fleet = fleet_from_poll(tel, {"S2": "OUI-X-S2"})
    t = fleet.table.set_index("onu_id")
    assert t.at["S1", "pon_id"] == "O:4194304000" and t.at["S2", "pon_id"] == "O:4194304256"
    assert t.at["S2", "cpe_id"] == "OUI-X-S2" and t.at["S1", "cpe_id"] is None


# --- state store ----------------------------------------------------------------------------------
def test_the_journal_refuses_a_key_twice_and_marks_interrupted_sends_ambiguous(tmp_path):
    st = StateStore(tmp_path)
    kw = {"cycle": 1, "ts": "2026-01-01T00:00:00+00:00", "action": "reboot", "target": "D",
          "pon_id": "P"}  # fmt: skip
    assert st.journal_begin("k1", **kw) is True
    assert st.journal_begin("k1", **kw) is False
    assert st.journal_begin("k2", **kw | {"target": "E"})
    st.journal_end("k2", "sent", "done")
    st.close()
    st = StateStore(tmp_path)  # a restart
    assert st.mark_ambiguous() == 1
    assert {j["key"]: j["status"] for j in st.journal()} == {"k1": "ambiguous", "k2": "sent"}
    st.close()


def test_approvals_move_from_pending_once(tmp_path):
    st = StateStore(tmp_path)
    aid = st.propose(ts="t", action="reboot", subject="ONU", target="D", params={"a": 1})
    assert [a["id"] for a in st.approvals("pending")] == [aid]
    st.decide(aid, "approved", by="noc")
    with pytest.raises(StateError, match=f"action {aid} is approved, not pending"):
        st.decide(aid, "rejected", by="noc")
    with pytest.raises(StateError, match="no proposed action with id 999"):
        st.decide(999, "approved", by="noc")
    st.finish_approval(aid, "executed", {"ok": True})
    assert st.approvals("executed")[0]["decided_by"] == "noc"
    st.close()


def test_a_cycle_commits_its_blobs_atomically(tmp_path):
    st = StateStore(tmp_path)
    st.record_cycle(1, "t1", 0.0, {"rows": 3}, {"loop": {"x": [1, 2]}})
    st.close()
    st = StateStore(tmp_path)
    assert st.last_cycle() == 1 and st.get("loop") == {"x": [1, 2]}
    assert st.cycles()[0]["figures"] == {"rows": 3}
    st.close()


def test_safety_violations_recount_the_journal(tmp_path):
    st = StateStore(tmp_path)
    settings = AutopilotSettings(reboot_cooldown_minutes=60, max_reboots_per_day=2)
    for i, ts in enumerate(["2026-01-01T00:00:00Z", "2026-01-01T02:00:00Z"]):
        st.journal_begin(f"k{i}", cycle=i, ts=ts, action="reboot", target="D", pon_id="P")
    assert safety_violations(st, settings) == 0
    st.journal_begin("k9", cycle=9, ts="2026-01-01T02:30:00Z", action="reboot", target="D",
                     pon_id="P")  # fmt: skip
    assert safety_violations(st, settings) == 2  # inside the cooldown and a third in 24 h
    st.close()


# --- HTTP adapters against local servers ---------------------------------------------------------
class _Server:
    """A loopback HTTP server whose answers a test scripts: ``answers[(method, path)]`` is a
    list of ``(status, body)`` consumed in order (the last one repeats)."""

    def __init__(self, answers: dict, port: int = 0) -> None:
        self.answers = answers
        self.requests: list[tuple[str, str, dict, dict]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def _do(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else {}
                path = self.path.split("?")[0]
                outer.requests.append((self.command, path, dict(self.headers), body))
                queue = outer.answers.get((self.command, path)) or [(404, {"error": "no"})]
                status, doc = queue.pop(0) if len(queue) > 1 else queue[0]
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _do

            def log_message(self, *a) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_webhook_retries_a_failing_ticketing_system_and_never_opens_twice(tmp_path):
    srv = _Server({
        ("POST", "/orders"): [(503, {}), (201, {"id": "T-1"})],
        ("POST", "/orders/T-1/cancel"): [(200, {})],
        ("POST", "/orders/T-9/cancel"): [(404, {})],
        ("GET", "/orders/T-1"): [(200, {"status": "in_progress"})],
    })  # fmt: skip
    st = StateStore(tmp_path / "state")
    ctx = ActionContext("isp", cycle=7, ts="2026-01-01T00:00:00+00:00")
    fs = WebhookFieldService(srv.url + "/orders", st, ctx, token="tk", sleep=lambda s: None)
    try:
        assert fs.open_visit("ONU-1", "no light", "high") == "T-1"
        posts = [r for r in srv.requests if r[1] == "/orders"]
        assert len(posts) == 2  # one 503, one retry
        assert posts[-1][2]["Idempotency-Key"] == "isp:c7:visit:ONU-1"
        assert posts[-1][2]["Authorization"] == "Bearer tk"
        assert posts[-1][3] == {"idempotency_key": "isp:c7:visit:ONU-1", "site_id": "isp",
                                "onu_id": "ONU-1", "reason": "no light", "priority": "high"}  # fmt: skip
        # The same cycle's decision again (a restart): no second POST.
        assert fs.open_visit("ONU-1", "no light", "high") == "T-1"
        assert len([r for r in srv.requests if r[1] == "/orders"]) == 2
        assert list(fs.open_orders()["os_id"]) == ["T-1"]
        assert fs.status("T-1") == "in_progress"
        assert fs.cancel_visit("T-9", "held") is False
        assert fs.cancel_visit("T-1", "held") is True
        assert fs.open_orders().empty
        assert [j["status"] for j in st.journal()] == ["sent"]
    finally:
        fs.close()
        srv.close()
        st.close()


def test_webhook_that_stays_down_fails_clearly_and_is_journalled(tmp_path):
    st = StateStore(tmp_path / "state")
    ctx = ActionContext("isp", cycle=1, ts="t")
    url = f"http://127.0.0.1:{free_port()}/orders"
    fs = WebhookFieldService(url, st, ctx, retries=2, sleep=lambda s: None)
    with pytest.raises(FieldServiceError, match=r"POST .*/orders: no answer after 3 tries"):
        fs.open_visit("ONU-1", "r", "normal")
    assert [j["status"] for j in st.journal()] == ["failed"]
    fs.close()
    st.close()


def test_drop_folder_writes_one_csv_per_order_and_reads_the_consumers_status(tmp_path):
    st = StateStore(tmp_path / "state")
    ctx = ActionContext("isp", cycle=3, ts="t")
    fs = DropFolderFieldService(tmp_path / "drop", st, ctx)
    os_id = fs.open_visit("ONU-1", "no light", "normal")
    row = pd.read_csv(tmp_path / "drop" / f"{os_id}.open.csv").iloc[0]
    assert row["onu_id"] == "ONU-1" and row["idempotency_key"] == "isp:c3:visit:ONU-1"
    assert fs.open_visit("ONU-1", "no light", "normal") == os_id  # same key: same order
    assert len(list((tmp_path / "drop").glob("*.open.csv"))) == 1
    (tmp_path / "drop" / "status.csv").write_text(f"os_id,status\n{os_id},in_progress\n")
    assert fs.status(os_id) == "in_progress"
    assert fs.cancel_visit(os_id, "held_massive") is True
    assert (tmp_path / "drop" / f"{os_id}.cancel.csv").exists()
    assert fs.cancel_visit(os_id, "again") is False
    assert not list((tmp_path / "drop").glob(".*"))  # no temporary files left
    st.close()


def test_nbi_down_then_back_reboot_fails_then_is_sent_once(tmp_path):
    port = free_port()
    st = StateStore(tmp_path / "state")
    ctx = ActionContext("isp", cycle=1, ts="2026-01-01T00:00:00+00:00", pon_of={"D-1": "P"})
    client = NbiClient(f"http://127.0.0.1:{port}", token="", retries=2, backoff_s=0.01,
                       sleep=lambda s: None)  # fmt: skip
    devices = JournalledDevices(client, st, ctx)
    with pytest.raises(Exception, match="Connection refused|ConnectError"):
        devices.reboot("D-1")
    assert [(j["status"], j["pon_id"]) for j in st.journal()] == [("failed", "P")]
    srv = _Server({("POST", "/devices/D-1/tasks"): [(503, {}), (200, {"_id": "t1"})]},
                  port=port)  # fmt: skip
    try:
        ctx.cycle = 2
        result = devices.reboot("D-1")
        assert result.status == "done"
        tasks = [r for r in srv.requests if r[1] == "/devices/D-1/tasks"]
        assert len(tasks) == 2 and tasks[-1][3]["idempotencyKey"] == "isp:c2:reboot:D-1"
        assert devices.reboot("D-1") == "already sent (key isp:c2:reboot:D-1)"
        assert len([r for r in srv.requests if r[1] == "/devices/D-1/tasks"]) == 2
        assert [j["status"] for j in st.journal()] == ["failed", "sent"]
        assert (devices.sent, devices.failed, devices.suppressed) == (1, 1, 1)
    finally:
        client.close()
        srv.close()
        st.close()


def test_cpe_state_reads_ppp_sessions_and_survives_a_down_nbi():
    srv = _Server({("GET", "/devices/"): [(200, [
        {"_id": "A", "Device": {"PPP": {"Interface": {"1": {"Status": {"_value": "Up"}}}}}},
        {"_id": "B", "InternetGatewayDevice": {"WANDevice": {"1": {"WANConnectionDevice": {"1": {
            "WANPPPConnection": {"1": {"ConnectionStatus": {"_value": "Disconnected"}}}}}}}}},
        {"_id": "C"},
    ])]})  # fmt: skip
    client = NbiClient(srv.url, token="", retries=0)
    try:
        assert NbiCpeState(client).ppp_up() == {"A": True, "B": False}
    finally:
        client.close()
        srv.close()
    down = NbiClient(f"http://127.0.0.1:{free_port()}", token="", retries=0)
    state = NbiCpeState(down)
    assert state.ppp_up() == {} and "Unavailable" in state.last_error
    down.close()


# --- restart of the service ------------------------------------------------------------------------
def test_a_reboot_journalled_in_a_cycle_cut_by_a_crash_blocks_a_second_one(tmp_path):
    from guardian_lib.actions.clients import UnknownTargetError
    from guardian_lib.decision import Decision
    from guardian_lib.operate.service import Operator

    (tmp_path / "subs.csv").write_text("onu_id,cpe_id,pon_id\nA,CPE-A,P1\nB,CPE-B,P1\n")
    path = _site(tmp_path, model_alias=None, subscribers="subs.csv",
                 nbi={"url": f"http://127.0.0.1:{free_port()}", "retries": 0})  # fmt: skip
    st = StateStore(tmp_path / "state")  # a crash right after journalling cycle 5's reboot
    st.journal_begin("site:c5:reboot:CPE-A", cycle=5, ts="2026-01-01T00:00:00+00:00",
                     action="reboot", target="CPE-A", pon_id="P1")  # fmt: skip
    st.close()
    op = Operator(load_site(path), tmp_path / "state", mode="execute")
    try:
        assert op.summary.ambiguous_after_restart == 1
        op._build(load_subscribers(tmp_path / "subs.csv"))
        at = pd.Timestamp("2026-01-01T01:00:00Z")
        again = Decision(ts=at, subject="A", action="reboot", targets=("CPE-A",))
        verdict = op.autopilot.guard.check(again, at, pon_id="P1")
        assert not verdict.allowed and verdict.rule == "reboot_cooldown"
        other = Decision(ts=at, subject="B", action="reboot", targets=("CPE-B",))
        assert op.autopilot.guard.check(other, at, pon_id="P1").allowed
        # A device outside the fleet is refused before anything is journalled.
        with pytest.raises(UnknownTargetError, match="unknown device 'None'"):
            op.devices.reboot("None")
        assert len(op.store.journal()) == 1
    finally:
        op.close()


def test_cycles_sit_on_the_polling_grid_and_missed_slots_reach_the_scorer(tmp_path):
    from guardian_lib.loop import Tick
    from guardian_lib.operate.service import Operator

    (tmp_path / "subs.csv").write_text("onu_id,pon_id\nA,P1\nB,P1\n")
    path = _site(tmp_path, model_alias=None, subscribers="subs.csv", polling_interval_s=300)
    op = Operator(load_site(path), tmp_path / "state")
    try:
        op._build(load_subscribers(tmp_path / "subs.csv"))
        t0 = pd.Timestamp("2026-01-01T00:00:00Z")
        assert op._on_grid(t0 + pd.Timedelta(seconds=140)) == t0
        op._last_ts = t0
        # An early poll in the same slot moves to the next slot, never back in time.
        assert op._on_grid(t0 + pd.Timedelta(seconds=20)) == t0 + pd.Timedelta(seconds=300)

        class Window:  # records what the scorer's window receives
            def __init__(self) -> None:
                self.seen: list[pd.Timestamp] = []

            def update(self, tick) -> None:
                self.seen.append(tick.ts)

        op.loop.scorer = Window()
        tick = Tick(t0 + pd.Timedelta(minutes=20), {"online": [True, True]})
        op._fill_gap(tick)  # three slots missed (5, 10, 15 min)
        assert op.loop.scorer.seen == [t0 + pd.Timedelta(minutes=m) for m in (5, 10, 15)]
    finally:
        op.close()


def test_a_failing_cycle_is_logged_and_the_service_goes_on_until_its_limit(
    tmp_path, monkeypatch, capsys
):
    from guardian_lib.operate.metrics import json_logger
    from guardian_lib.operate.service import Operator

    inv = {"defaults": {"timeout_s": 0.1, "retries": 0},
           "olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "port": free_port(),
                     "credentials": "noc"}]}  # fmt: skip
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(inv))
    (tmp_path / "wh").write_text("a file where the warehouse folder should be")
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"inventory": "olts.yaml", "warehouse": "wh",
                                    "model_alias": None, "polling_interval_s": 0.05}))  # fmt: skip
    monkeypatch.setenv("GUARDIAN_SNMP_NOC_COMMUNITY", "public")
    json_logger()
    op = Operator(load_site(site), tmp_path / "state")
    op.max_failed_cycles = 3
    try:
        with pytest.raises(Exception, match="wh"):
            op.run(for_ticks=5)
        assert op.summary.cycles_failed == 3 and op.summary.ticks == 0
    finally:
        op.close()
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    failed = [x for x in lines if x["event"] == "cycle_failed"]
    assert [x["cycle"] for x in failed] == [1, 2, 3]
