"""``guardian operate`` against the twin's network: real processes, SNMP and HTTP on loopback.

``guardian twin --serve-network`` runs the ``tiny`` scenario at 600× (a 5-minute tick
every 0.5 s) with OLT SNMP agents, the ACS NBI and 64 CPE agents, and writes the site
file ``guardian operate`` uses unchanged; at exit it writes the ground truth. Scenarios:
only CPE hangs (seed 4: a hang at 13 and 59 simulated minutes), or only feeder cuts
(seed 34: PON ``OLT-01-001/1/0`` cut at 15 minutes for 7 hours); for a silent OLT, two
OLTs of 32 ONUs without faults, one reached through a UDP forwarder the test turns off.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.request

import duckdb
import yaml
from cli_runner import run_guardian
from local_servers import free_port, stop_process
from twin_network import (
    GUARDIAN,
    audit_rows,
    journal_rows,
    last_cycle,
    last_cycle_safe,
    run_operate,
    scenario_file,
    start_operate,
    stop_operate,
)


def test_execute_reboots_the_hung_cpe_through_the_nbi_and_the_simulator_sees_it_clear(
    tmp_path, only_fault, network_factory
):
    sc = scenario_file(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    summary = run_operate(net.site, tmp_path / "state", "--mode", "execute", "--for-ticks", "12")
    truth = net.stop()
    first = truth["hangs"][0]
    # The first hang (13 simulated minutes in) was ended by a reboot the ACS sent.
    assert first["cleared_by_reboot"] and first["reboot_by"] == "acs"
    journal = journal_rows(tmp_path / "state")
    # On a loaded machine the twin's clock runs ahead of operate's cycles, so a later hang
    # can be seen in the same cycle: the first hang is rebooted in the first cycle that
    # sent a reboot (the order inside one cycle is not the order of the hangs).
    first_cycle = min(j["cycle"] for j in journal if j["action"] == "reboot")
    assert first["cpe_id"] in {
        j["target"] for j in journal if j["action"] == "reboot" and j["cycle"] == first_cycle
    }
    assert all(j["status"] == "sent" for j in journal)
    # Each reboot operate sent reached the CPE at most once (one sent in the last cycle
    # may still be in flight when the network stops); nothing else rebooted a CPE.
    sent = sorted(j["target"] for j in journal if j["action"] == "reboot")
    rpcs = truth["cpe_reboot_rpcs"]
    assert first["cpe_id"] in rpcs and len(rpcs) == len(set(rpcs)) and set(rpcs) <= set(sent)
    assert summary["actions_sent"] == len(sent) >= 1
    assert summary["safety_violations"] == 0 and summary["actions_failed"] == 0
    assert summary["ticks"] == 12 and summary["rows_polled"] == 12 * 64
    # Audited once verified (15 simulated minutes after the reboot): the first one is.
    reboots = audit_rows(
        tmp_path / "state", "SELECT target FROM actions WHERE action_type='reboot'"
    )
    audited = [r[0] for r in reboots]
    assert first["cpe_id"] in audited and set(audited) <= set(sent)
    # Every polled row is in the warehouse (RAW and SILVER) once.
    wh = net.site.parent / "site-warehouse"
    con = duckdb.connect()
    raw = f"read_parquet('{wh}/lake/raw/telemetry/*/*.parquet')"
    n, uniq = con.execute(f"SELECT count(*), count(DISTINCT (onu_id, ts)) FROM {raw}").fetchone()
    assert n == uniq == summary["rows_polled"]


def test_simulate_mode_sends_nothing_and_an_unreachable_olt_is_flagged(
    tmp_path, only_fault, network_factory
):
    sc = scenario_file(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    # Add an OLT that does not answer (nothing listens on its port).
    inv_path = net.site.with_name("site.olts.yaml")
    inv = yaml.safe_load(inv_path.read_text())
    inv["olts"].append({"olt_id": "OLT-DEAD", "host": "127.0.0.1", "port": 9,
                        "version": "2c", "credentials": "emulator", "timeout_s": 0.2,
                        "retries": 0})  # fmt: skip
    inv_path.write_text(yaml.safe_dump(inv))
    # Run as a service: metrics while it runs, SIGTERM ends the cycle and exits 0.
    state, out, port = tmp_path / "state", tmp_path / "summary.json", free_port()
    proc = start_operate(net.site, state, "--json", str(out), "--metrics-port", str(port),
                          mode="simulate")  # fmt: skip
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and last_cycle_safe(state) < 8:
            time.sleep(0.1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        err = stop_operate(proc)
    finally:
        stop_process(proc)
    assert proc.returncode == 0, err[-2000:]
    text = metrics.decode()
    for name in ("guardian_cycle_duration_seconds_bucket", "guardian_rows_polled_total",
                 "guardian_olts_failed 1.0", 'guardian_model_info{model_version="rules-2"} 1.0',
                 "guardian_last_successful_cycle_timestamp_seconds",
                 'guardian_decisions_total{action="reboot"}'):  # fmt: skip
        assert name in text, name
    summary = json.loads(out.read_text())
    truth = net.stop()
    n = summary["ticks"]
    assert n >= 8 and n == last_cycle_safe(state)  # the last cycle was finished
    assert summary["olts_failed"] == n  # the dead OLT, every cycle; the cycle went on
    assert summary["rows_polled"] == n * 64
    # The hung CPE is decided about (audited as simulated) but nothing is sent.
    assert summary["decisions_by_action"].get("reboot", 0) >= 1
    assert summary["actions_sent"] == 0 and summary["actions_simulated"] >= 1
    assert journal_rows(tmp_path / "state") == []
    assert truth["cpe_reboot_rpcs"] == [] and truth["hangs"][0]["reboot_by"] is None
    statuses = audit_rows(tmp_path / "state", "SELECT DISTINCT status FROM actions")
    assert {s[0] for s in statuses} <= {"simulated"}


def test_kill_9_mid_run_then_restart_sends_nothing_twice(tmp_path, only_fault, network_factory):
    # Reboots never clear these hangs: the policy keeps wanting one, only the restored
    # cooldown (or the journal) stops a second reboot after the restart.
    sc = scenario_file(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=0.0)
    net = network_factory(sc, seed=4)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [str(GUARDIAN), "operate", "--site", str(net.site), "--state", str(state),
         "--mode", "execute"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    end = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            try:
                # Kill once the cycle that sent the reboot is committed: the restart then
                # runs new cycles (new idempotency keys), only the restored cooldown and
                # case can stop a second reboot of the still-hung CPE.
                if (state / "operate.sqlite").exists() and journal_rows(state):
                    if last_cycle(state) >= journal_rows(state)[0]["cycle"]:
                        break
            except sqlite3.OperationalError:  # the tables are being created
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("operate sent no reboot within 60 s")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    first = journal_rows(state)
    summary = run_operate(net.site, state, "--mode", "execute", "--for-ticks", "10")
    truth = net.stop()
    journal = journal_rows(state)
    targets = [j["target"] for j in journal if j["action"] == "reboot"]
    assert len(targets) == len(set(targets)), f"a device was rebooted twice: {targets}"
    assert first[0]["target"] in targets
    # The restarted process continued the cycle count and never re-sent a key.
    assert summary["first_cycle"] > first[0]["cycle"] and summary["ticks"] == 10
    assert summary["duplicates_suppressed"] == 0
    assert summary["safety_violations"] == 0
    # The simulator received each reboot at most once.
    rpcs = truth["cpe_reboot_rpcs"]
    assert len(rpcs) == len(set(rpcs)) and set(rpcs) <= set(targets)
    # No polled row is in RAW twice (the cycle cut by the kill is polled anew).
    wh = net.site.parent / "site-warehouse"
    raw = f"read_parquet('{wh}/lake/raw/telemetry/*/*.parquet')"
    n, uniq = (
        duckdb.connect()
        .execute(f"SELECT count(*), count(DISTINCT (onu_id, ts)) FROM {raw}")
        .fetchone()
    )
    assert n == uniq
    silver = f"read_parquet('{wh}/lake/silver/telemetry/*/*.parquet')"
    n, uniq = (
        duckdb.connect()
        .execute(f"SELECT count(*), count(DISTINCT (onu_id, ts)) FROM {silver}")
        .fetchone()
    )
    assert n == uniq > 0


def test_approve_mode_sends_only_what_was_approved(tmp_path, only_fault, network_factory):
    sc = scenario_file(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    state = tmp_path / "state"
    s1 = run_operate(net.site, state, "--mode", "approve", "--for-ticks", "6")
    assert s1["actions_queued"] >= 1 and s1["actions_sent"] == 0
    assert journal_rows(state) == []
    # The operator's decisions commands run in this process (operate and the twin stay
    # real processes): what they write to the state is tested here, not their start-up.
    listed = run_guardian("decisions", "list", "--state", str(state), "--json")
    pending = json.loads(listed.stdout)
    reboots = [p for p in pending if p["action"] == "reboot"]
    assert reboots, pending
    approved = reboots[0]
    run_guardian("decisions", "approve", str(approved["id"]), "--state", str(state))
    for other in (p for p in pending if p["id"] != approved["id"]):
        run_guardian("decisions", "reject", str(other["id"]), "--state", str(state))
    s2 = run_operate(net.site, state, "--mode", "approve", "--for-ticks", "4")
    truth = net.stop()
    journal = journal_rows(state)
    assert [(j["action"], j["target"]) for j in journal] == [("reboot", approved["target"])]
    assert s2["actions_sent"] == 1
    assert truth["cpe_reboot_rpcs"] == [approved["target"]]
    # The console script end to end for the decisions commands: its error path.
    again = subprocess.run(
        [str(GUARDIAN), "decisions", "approve", str(approved["id"]), "--state", str(state)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2 and "is executed, not pending" in again.stderr


def test_a_massive_outage_opens_one_incident_and_holds_visits(
    tmp_path, only_fault, network_factory
):
    sc = scenario_file(tmp_path, only_fault, "feeder_cut", 600.0)
    net = network_factory(sc, seed=34)
    state = tmp_path / "state"
    summary = run_operate(net.site, state, "--mode", "execute", "--for-ticks", "12")
    truth = net.stop()
    cut = truth["faults"][0]
    assert cut["kind"] == "feeder_cut" and cut["scope_key"] == "OLT-01-001/1/0"
    incidents = audit_rows(
        state, "SELECT DISTINCT incident_id, scope_type, scope_key FROM incidents"
    )
    assert len(incidents) == 1, incidents
    _, scope_type, scope_key = incidents[0]
    assert (scope_type, scope_key) == ("pon", cut["scope_key"])
    subs = yaml.safe_load(net.site.read_text())["subscribers"]
    import pandas as pd

    table = pd.read_csv(net.site.with_name(subs))
    on_pon = set(table.loc[table["pon_id"] == cut["scope_key"], "onu_id"])
    visited = {v["onu_id"] for v in truth["visits"] if v["opened_by"] == "autopilot"}
    assert not visited & on_pon, "a visit was sent into a massive outage"
    assert summary["decisions_by_action"].get("schedule_visit", 0) == 0
    assert truth["cpe_reboot_rpcs"] == []


def test_the_twins_ticketing_webhook_opens_each_visit_once_and_rejects_bad_input():
    import threading

    import httpx

    from acs_emulator.twin.ticketing import TicketingServer

    class Field:
        def __init__(self) -> None:
            self.orders: dict[str, str] = {}

        def open_visit(self, onu_id: str, reason: str, priority: str) -> str:
            if onu_id != "ONU-1":
                raise KeyError(onu_id)
            os_id = f"OS{len(self.orders) + 1}"
            self.orders[os_id] = "scheduled"
            return os_id

        def cancel_visit(self, os_id: str, reason: str) -> bool:
            if self.orders.get(os_id) != "scheduled":
                return False
            self.orders[os_id] = "cancelled"
            return True

        def status(self, os_id: str) -> str:
            return self.orders.get(os_id, "unknown")

    field = Field()
    srv = TicketingServer(field, threading.Lock()).start()
    try:
        with httpx.Client(timeout=5) as c:
            body = {"onu_id": "ONU-1", "idempotency_key": "k1", "reason": "r"}
            first = c.post(srv.url, json=body)
            again = c.post(srv.url, json=body)
            assert first.status_code == 201 and again.status_code == 200
            assert first.json()["id"] == again.json()["id"] == "OS1" and len(field.orders) == 1
            assert c.get(f"{srv.url}/OS1").json() == {"id": "OS1", "status": "scheduled"}
            assert c.post(f"{srv.url}/OS1/cancel", json={}).status_code == 200
            assert c.post(f"{srv.url}/OS1/cancel", json={}).status_code == 409
            assert c.get(f"{srv.url}/OS9").status_code == 404
            assert c.post(srv.url, content=b"not json").status_code == 400
            assert c.post(srv.url, json=[1]).status_code == 400
            assert c.post(srv.url, json={"onu_id": "ONU-1"}).status_code == 422
            unknown = c.post(srv.url, json={"onu_id": "X", "idempotency_key": "k2"})
            assert unknown.status_code == 422 and "unknown onu_id" in unknown.text
            big = c.post(srv.url, content=b"{" + b" " * (70 * 1024) + b"}")
            assert big.status_code == 413
            assert c.get(f"{srv.url}/../../etc/passwd").status_code == 404
    finally:
        srv.stop()
