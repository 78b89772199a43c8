"""Notices that follow the autopilot's actions in ``guardian operate``: a verified reboot →
``equipment_rebooted``, a visit held by a massive incident → ``visit_cancelled``; through a
real signed webhook on 127.0.0.1; and the replay of the same audit plans the same notices."""

from __future__ import annotations

import shutil

import duckdb
import pandas as pd
import yaml

from guardian_lib.alerts.replay import replay_run
from guardian_lib.decision import Decision, Snapshot
from guardian_lib.operate.fleet import load_subscribers
from guardian_lib.operate.site import load_site

from .test_delivery import SECRET, Hook

NOON = pd.Timestamp("2026-03-02 15:00", tz="UTC")  # 12:00 in São Paulo
SUBS = (
    "onu_id,customer_id,cpe_id,pon_id,olt_id,region,phone,lang,name,notices_opt_out\n"
    "A,C1,CPE-A,P1,OLT-1,Campinas,+5519911110001,pt-BR,Ana,\n"
    "B,C2,CPE-B,P1,OLT-1,Campinas,+5519911110002,en,Bob,\n"
    "C,C3,CPE-C,P1,OLT-1,Campinas,+5519911110003,,Caio,sim\n"
    "D,C4,CPE-D,P1,OLT-1,Campinas,+5519911110004,,Dora,\n"
    "E,C5,CPE-E,P2,OLT-1,Campinas,+5519911110005,,Eva,\n"
    "F,C6,CPE-F,P1,OLT-1,Campinas,+5519911110006,,Fabi,\n"  # under P1, stays healthy
)


class _Script:
    """A policy that plays back ``steps[k](snapshot)`` at its k-th call."""

    name, version = "script", "1"

    def __init__(self, *steps):
        self.steps, self.k = list(steps), 0

    def decide(self, snap):
        step = self.steps[self.k] if self.k < len(self.steps) else (lambda s: [])
        self.k += 1
        return step(snap)


class _Nbi:
    def reboot(self, device_id, *, idempotency_key):
        return "done"


class _Field:
    """The ISP's field service: every open order can be cancelled."""

    def open_visit(self, onu_id, reason, priority):
        return f"OS-{onu_id}"

    def cancel_visit(self, os_id, reason):
        return True


class _Clock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def _site(tmp_path, url, monkeypatch):
    monkeypatch.setenv("HOOK_KEY", SECRET.decode())
    cfg = {"rules": [{"name": "X", "source": "health"}], "route": {"receiver": "null"},
           "receivers": [{"name": "crm", "webhook": {"url": url, "token_env": "HOOK_KEY"}}],
           "customer_notices": {"receiver": "crm"}}  # fmt: skip
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(cfg))
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "subs.csv").write_text(SUBS)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv", "alerts": "alerts.yaml",
         "safety": {"jitter_max_seconds": 0, "reboot_cooldown_minutes": 10,
                    "max_reboots_per_pon_per_hour": 10}}))  # fmt: skip
    return tmp_path / "site.yaml"


class _Operate:
    """An Operator whose cycles are driven by hand: the policy, the clock and the service
    state are the test's; everything after the decision is operate's own."""

    def __init__(self, tmp_path, policy, mode="execute"):
        from guardian_lib.operate.service import Operator

        self.op = op = Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state", mode=mode)
        op._build(load_subscribers(tmp_path / "subs.csv"))
        op.devices.client = _Nbi()
        op.real_dispatcher.inner.field_ops = _Field()
        op.autopilot.policy = policy
        op.autopilot.scorer = lambda s: pd.DataFrame({"onu_id": list(s.status.index)})
        self.clock = _Clock(NOON)
        op.alerts.outbox.clock = self.clock  # quiet hours in the test's time
        self.figures = []

    def cycle(self, ts, down=()):
        op, self.clock.t = self.op, ts
        op.context.cycle, op.context.ts = op.context.cycle + 1, ts.isoformat()
        if op.mode == "approve":
            op._run_approved(ts)
        status = op.fleet.table.set_index("onu_id").assign(online=True, degraded=False)
        status["service_up"] = ~status.index.isin(list(down))
        op.autopilot.step(Snapshot(ts=ts, status=status))
        polled = pd.DataFrame({"onu_id": list(status.index), "online": True})
        empty = pd.DataFrame(columns=["entity_id", "entity_type", "type"])
        self.figures.append(op._alerts_cycle(ts, polled, empty, {}))
        return self.figures[-1]


def _reboot(onu, case):
    return Decision(ts=NOON, subject=onu, action="reboot", targets=(f"CPE-{onu}",), case_id=case)


def _received(template=None):
    return [b for _, b in Hook.received if template is None or b["template"] == template]


def test_a_verified_reboot_tells_each_customer_once_never_the_opted_out(
    tmp_path, crm_webhook, monkeypatch
):
    _site(tmp_path, crm_webhook, monkeypatch)
    reboots = [_reboot(o, f"CASE-{o}") for o in "ABCD"]
    run = _Operate(tmp_path, _Script(lambda s: reboots, lambda s: [],
                                     lambda s: [_reboot("A", "CASE-A")]))  # fmt: skip
    try:
        assert run.cycle(NOON)["delivered"] == 0  # sent to the ACS, not verified yet
        # 20 min later: A, B, C back; D still without service (the reboot did not fix it)
        fig = run.cycle(NOON + pd.Timedelta(minutes=20), down={"D"})
        assert fig["delivered"] == 2
        assert fig["notices"]["by_template"] == {"equipment_rebooted": 2}
        assert fig["notices"]["opted_out"] == 1
        run.cycle(NOON + pd.Timedelta(minutes=40))  # A rebooted again, same case
        fig = run.cycle(NOON + pd.Timedelta(minutes=60))
        assert fig["delivered"] == 0 and fig["notices"]["duplicate"] == 1
        actions = run.op.audit.frame("actions")
    finally:
        run.op.close()
    assert sorted(actions.loc[actions["action_type"] == "reboot", "status"]) == (
        ["failed"] + ["succeeded"] * 4
    )
    bodies = {b["customer_id"]: b for b in _received()}
    assert set(bodies) == {"C1", "C2"} and len(Hook.received) == 2
    assert {b["template"] for b in bodies.values()} == {"equipment_rebooted"}
    assert bodies["C1"]["incident_id"] == "CASE-A"
    assert bodies["C1"]["text"].startswith("Olá, Ana. Detectamos uma instabilidade")
    assert "02/03/2026 12:20" in bodies["C1"]["text"]  # verified at 15:20 UTC, São Paulo time
    assert bodies["C2"]["text"].startswith("Hello Bob.") and bodies["C2"]["lang"] == "en"
    assert Hook.bad_signatures == 0


def test_a_reboot_verified_in_quiet_hours_waits_until_morning(tmp_path, crm_webhook, monkeypatch):
    _site(tmp_path, crm_webhook, monkeypatch)
    night = pd.Timestamp("2026-03-03 02:00", tz="UTC")  # 23:00 in São Paulo
    run = _Operate(tmp_path, _Script(lambda s: [_reboot("E", "CASE-E")]))
    try:
        run.cycle(night)
        assert run.cycle(night + pd.Timedelta(minutes=20))["delivered"] == 0
        (msg,) = run.op.alerts.outbox.messages("pending")
        assert msg.payload["template"] == "equipment_rebooted" and msg.payload["deferred"]
        assert msg.payload["send_at"] == "2026-03-03T10:00:00+00:00"  # 07:00 local
        assert run.cycle(pd.Timestamp("2026-03-03 10:05", tz="UTC"))["delivered"] == 1
    finally:
        run.op.close()
    ((body,),) = [_received("equipment_rebooted")]
    assert body["customer_id"] == "C5" and "02/03/2026 23:20" in body["text"]


def _incident_steps():
    """Step 1: a massive incident on P1 opens, A's and C's visits are held, the members
    told; D's case merges into it (its visit cancelled after the notice), E's visit is
    cancelled because E is back (no outage). Step 2: E's CPE rebooted. Step 4: closed."""

    def opening(snap):
        scope = {"scope_type": "pon", "scope_key": "P1"}
        return [
            Decision(ts=snap.ts, subject="pon:P1", action="open_incident",
                     targets=tuple("ABCD"), params=scope),
            Decision(ts=snap.ts, subject="pon:P1", action="hold_visits",
                     targets=("OS-A", "OS-C"),
                     rationale={"rule": "visits of a massive outage's members are held"},
                     params={**scope, "visit_onus": {"OS-A": "A", "OS-C": "C"}}),
            Decision(ts=snap.ts, subject="pon:P1", action="notify", targets=tuple("ABCD"),
                     params={"template": "massive_outage", "until_h": 12.0}),
            Decision(ts=snap.ts, subject="D", action="cancel_visit", targets=("OS-D",),
                     rationale={"rule": "case merged into massive incident"}),
            Decision(ts=snap.ts, subject="E", action="cancel_visit", targets=("OS-E",),
                     rationale={"rule": "case back and stable"}),
        ]  # fmt: skip

    def closing(snap):
        (iid,) = snap.incidents["incident_id"]
        return [Decision(ts=snap.ts, subject="pon:P1", action="close_incident", targets=(iid,),
                         params={"incident_id": iid})]  # fmt: skip

    return _Script(opening, lambda s: [_reboot("E", "CASE-E")], lambda s: [], closing)


def _run_folder(tmp_path):
    """A run folder with the site's inventory and operate's audit, for the replay."""
    run = tmp_path / "run"
    run.mkdir()
    subs = pd.read_csv(tmp_path / "subs.csv")
    con = duckdb.connect(str(run / "warehouse.duckdb"))
    con.register("s", subs)
    con.execute("CREATE TABLE olts AS SELECT DISTINCT olt_id, region FROM s")
    con.execute("CREATE TABLE pons AS SELECT DISTINCT pon_id, olt_id FROM s")
    con.execute("CREATE TABLE onus AS SELECT onu_id, 'SN' || onu_id AS serial, pon_id, "
                "'B-' || pon_id AS splitter_id FROM s")  # fmt: skip
    con.execute("CREATE TABLE customers AS SELECT customer_id, onu_id, 'residential' AS segment, "
                "cpe_id FROM s")  # fmt: skip
    con.close()
    shutil.copy(tmp_path / "state" / "audit.duckdb", run / "audit.duckdb")
    return run


def test_a_visit_held_by_a_massive_incident_and_the_replay_plans_the_same(
    tmp_path, crm_webhook, monkeypatch
):
    _site(tmp_path, crm_webhook, monkeypatch)
    run = _Operate(tmp_path, _incident_steps())
    try:
        fig = run.cycle(NOON)
        assert fig["notices"]["by_template"] == {"outage_detected": 2, "visit_cancelled": 1}
        run.cycle(NOON + pd.Timedelta(minutes=10))
        run.cycle(NOON + pd.Timedelta(minutes=30))  # E's reboot verified
        fig = run.cycle(NOON + pd.Timedelta(hours=2))
        assert fig["notices"]["resolved_queued"] == 3
    finally:
        run.op.close()
    got = sorted((b["customer_id"], b["template"]) for b in _received())
    assert got == [
        ("C1", "outage_resolved"), ("C1", "visit_cancelled"),
        ("C2", "outage_detected"), ("C2", "outage_resolved"),
        ("C4", "outage_detected"), ("C4", "outage_resolved"),
        ("C5", "equipment_rebooted"),
    ]  # fmt: skip
    (held,) = _received("visit_cancelled")
    assert held["text"].startswith("Olá, Ana. A visita técnica marcada para 02/03/2026 12:00")
    assert "previsão: 03/03/2026 00:00" in held["text"]  # incident start + eta_h (12 h)
    assert held["incident_id"] in held["text"]

    # F is under the PON but not a member (its ONU stayed healthy): never told of the outage.
    # The replay of the same audit, with the same rules and opt-out, plans the same notices.
    planned = replay_run(_run_folder(tmp_path), opted_out=("C3",), eta_h=12.0)
    plan = sorted(
        (n["customer_id"], n["incident_id"], n["template"], n["send_at"])
        for n in planned["customer_notices"]["list"]
    )
    sent = sorted(
        (b["customer_id"], b["incident_id"], b["template"], pd.Timestamp(b["send_at"]).isoformat())
        for b in _received()
    )
    assert plan == sent


def test_in_approve_mode_the_notice_follows_the_approved_action_not_the_proposal(
    tmp_path, crm_webhook, monkeypatch
):
    _site(tmp_path, crm_webhook, monkeypatch)
    run = _Operate(tmp_path, _incident_steps(), mode="approve")
    try:
        fig = run.cycle(NOON)  # visits held and cancelled: proposed, not sent
        assert fig["notices"]["by_template"] == {"outage_detected": 3}
        for a in run.op.store.approvals("pending"):
            if a["action"] in ("hold_visits", "cancel_visit"):
                run.op.store.decide(a["id"], "approved", "ana")
        fig = run.cycle(NOON + pd.Timedelta(minutes=10))  # sent now, the incident still open
    finally:
        run.op.close()
    # A and D were told of the outage already (one opening notice per incident), C opted
    # out, E's visit was cancelled because E is back: no visit notice is sent.
    assert fig["notices"]["duplicate"] == 2 and fig["notices"]["opted_out"] == 2
    assert _received("visit_cancelled") == []
    assert sorted(b["customer_id"] for b in _received()) == ["C1", "C2", "C4"]


def test_in_approve_mode_an_approved_reboot_is_verified_and_tells_its_customer_once(
    tmp_path, crm_webhook, monkeypatch
):
    """An approved reboot takes the autopilot's own path: verified 15 min after it was
    sent, the outcome feeds the circuit breaker and the listeners (one notice per case),
    and the audit — replayed — plans the same notice."""
    _site(tmp_path, crm_webhook, monkeypatch)
    rule = {"rule": "individual with high risk: try one reboot"}

    def opening(snap):
        return [Decision(ts=snap.ts, subject="A", action="open_case", targets=("A",)),
                Decision(ts=snap.ts, subject="A", action="reboot", targets=("CPE-A",),
                         rationale=rule)]  # fmt: skip

    def again(snap):
        return [Decision(ts=snap.ts, subject="A", action="reboot", targets=("CPE-A",),
                         rationale=rule)]  # fmt: skip

    run = _Operate(tmp_path, _Script(opening, lambda s: [], lambda s: [], again), mode="approve")
    op = run.op

    def approve_reboots():
        pending = [a for a in op.store.approvals("pending") if a["action"] == "reboot"]
        for a in pending:
            op.store.decide(a["id"], "approved", "ana")
        return len(pending)

    try:
        run.cycle(NOON)  # proposed, not sent
        (case_id,) = [c["case_id"] for c in op.autopilot.cases.values()]
        assert approve_reboots() == 1
        assert run.cycle(NOON + pd.Timedelta(minutes=5))["delivered"] == 0  # sent, not verified
        assert [a["status"] for a in op.store.approvals()] == ["executed"]
        fig = run.cycle(NOON + pd.Timedelta(minutes=25))  # verified: A has service
        assert fig["delivered"] == 1 and fig["notices"]["by_template"] == {"equipment_rebooted": 1}
        run.cycle(NOON + pd.Timedelta(minutes=30))  # the same case: A rebooted again
        assert approve_reboots() == 1
        run.cycle(NOON + pd.Timedelta(minutes=35))
        fig = run.cycle(NOON + pd.Timedelta(minutes=55))
        assert fig["delivered"] == 0 and fig["notices"]["duplicate"] == 1
        assert list(op.autopilot.guard._outcomes) == [True, True]  # the breaker learnt both
        assert op.autopilot.cases["A"]["last_reboot_at"] == NOON + pd.Timedelta(minutes=35)
        assert op.autopilot._pending == []
        op.audit.flush()
        actions = op.audit.frame("actions")
    finally:
        op.close()
    reboots = actions[actions["action_type"] == "reboot"]
    assert sorted(reboots["status"]) == ["queued", "queued", "succeeded", "succeeded"]
    (body,) = _received()
    assert (body["customer_id"], body["template"]) == ("C1", "equipment_rebooted")
    assert body["incident_id"] == case_id  # the approved reboot names the proposal's case
    assert "02/03/2026 12:25" in body["text"]  # verified at 15:25 UTC

    planned = replay_run(_run_folder(tmp_path), opted_out=("C3",), eta_h=12.0)
    plan = [(n["customer_id"], n["incident_id"], n["template"])
            for n in planned["customer_notices"]["list"]]  # fmt: skip
    assert plan == [("C1", case_id, "equipment_rebooted")]
