"""SNMP traps: the emulated OLT sends them, the library's receiver turns them into events.

LOS, ONU up and a PON port shut travel as v2c and as v3 (authPriv) traps; a wrong v3
key or community is dropped and counted; ``guardian operate`` merges trap events into
its next cycle (stored in RAW) and a trap wakes it before the polling interval.
"""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pandas as pd
import pytest
import yaml

from acs_emulator.olt.agent import V3User
from acs_emulator.olt.serve import EmulatorCredentials, simulated_pool, write_inventory
from acs_emulator.olt.traps import OltTrapSender
from guardian_lib.snmp.traps import TrapReceiver, TrapUser, events_frame
from simulator.engine import Simulation
from simulator.scenario import load_scenario

AUTH, PRIV = "trap-auth-key-1", "trap-priv-key-1"


@pytest.fixture
def sim():
    s = Simulation(load_scenario("tiny"), seed=4)
    s.step()
    return s


def _wait_for(rx: TrapReceiver, done, timeout_s: float = 10.0) -> list[dict]:
    """Events drained until ``done(events)`` holds (bounded by ``timeout_s``). [s]"""
    got: list[dict] = []
    end = time.monotonic() + timeout_s
    while not done(got) and time.monotonic() < end:
        got += rx.drain()
        time.sleep(0.02)
    return got


def _has(serial: str):
    return lambda evs: any(e["entity_id"] == serial for e in evs)


def _receiver(sim, **kw) -> TrapReceiver:
    olt = str(sim.topology.olts["olt_id"].iloc[0])
    users = [TrapUser("nms", AUTH, PRIV, engine_id=OltTrapSender.engine_id(olt))]
    # no address map: the OLT is named by the trap's sysName.0 varbind
    return TrapReceiver(community="c-trap", users=users, **kw)


@pytest.mark.parametrize("version", ["2c", "3"])
def test_los_onu_up_and_port_down_become_events(sim, version):
    rx = _receiver(sim).start_in_thread()
    user = V3User("nms", AUTH, PRIV) if version == "3" else None
    tx = OltTrapSender(sim, ("127.0.0.1", rx.port), community="c-trap", v3_user=user)
    try:
        row = int(np.flatnonzero(sim.state.online)[0])
        serial = str(sim.topology.onus["serial"].iat[row])
        sim.effects.los_n[row] += 1  # a cut drop fibre
        sim.step()
        assert not sim.state.online[row]
        events = _wait_for(rx, _has(serial))
        los = [e for e in events if e["entity_id"] == serial]
        assert [(e["type"], e["severity"], e["entity_type"]) for e in los] == [
            ("LOS", "critical", "onu")
        ]
        assert json.loads(los[0]["payload"])["olt_id"] == str(sim.topology.olts["olt_id"][0])
        sim.effects.los_n[row] -= 1
        pon = sim.topology.onus["pon_id"].iat[row]
        sim.admin.set_pon_enabled(pon, False)  # and the operator shuts its port
        sim.step()
        events = _wait_for(rx, lambda evs: any(e["entity_type"] == "pon" for e in evs))
        kinds = {(e["type"], e["entity_type"]) for e in events}
        assert ("OLT_ALARM", "pon") in kinds
        port = next(e for e in events if e["entity_type"] == "pon")
        if_index = int(sim.topology.pons.set_index("pon_id").loc[pon, "if_index"])
        assert json.loads(port["payload"])["if_index"] == if_index
        assert not any(e["type"] == "LOS" for e in events), "an admin shutdown is not a LOS"
        sim.admin.set_pon_enabled(pon, True)
        sim.step()
        up = [e for e in _wait_for(rx, _has(serial)) if e["entity_id"] == serial]
        assert [e["type"] for e in up] == ["LINK_UP"]
        frame = events_frame(los + up)
        assert list(frame["source"]) == ["snmp-trap"] * 2
        assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    finally:
        tx.close()
        rx.stop_thread()


def test_wrong_v3_key_and_wrong_community_are_rejected(sim):
    rx = _receiver(sim).start_in_thread()
    olt = str(sim.topology.olts["olt_id"].iloc[0])
    bad_v3 = OltTrapSender(sim, ("127.0.0.1", rx.port), v3_user=V3User("nms", "wrong-key-99", PRIV))
    bad_v2 = OltTrapSender(sim, ("127.0.0.1", rx.port), community="guess")
    good = OltTrapSender(sim, ("127.0.0.1", rx.port), community="c-trap")
    try:
        bad_v3.send_onu_trap(olt, 0, 0)
        bad_v2.send_onu_trap(olt, 0, 0)
        good.send_onu_trap(olt, 1, 0)  # arrives after the bad ones: they were handled first
        events = _wait_for(rx, lambda evs: len(evs) >= 1)
        assert [e["entity_id"] for e in events] == [str(sim.topology.onus["serial"].iat[1])]
        assert rx.stats["v3_received"] >= 1 and rx.stats["v3_accepted"] == 0
        assert rx.stats["v2c_bad_community"] == 1
    finally:
        for tx in (bad_v3, bad_v2, good):
            tx.close()
        rx.stop_thread()


@pytest.mark.timeout(60)
def test_operate_takes_trap_events_into_its_next_cycle(sim, tmp_path, monkeypatch):
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds).start_in_thread()
    inv, _ = write_inventory(tmp_path / "olts.yaml", pool, creds)
    monkeypatch.setenv("GUARDIAN_SNMP_TRAPS_COMMUNITY", "c-trap")
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({
        "inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
        "polling_interval_s": 600, "traps": {"host": "127.0.0.1", "port": 0,
                                             "credentials": "traps", "min_cycle_gap_s": 0},
    }))  # fmt: skip
    op = Operator(load_site(site), tmp_path / "state")
    tx = OltTrapSender(sim, ("127.0.0.1", op.traps.receiver.port), community="c-trap")
    try:
        op.run_cycle()
        olt = str(sim.topology.olts["olt_id"].iloc[0])
        threading.Timer(0.3, lambda: tx.send_onu_trap(olt, 2, 1)).start()
        op.traps.last_cycle_end = time.monotonic()
        op.traps.sleep(600, op.stop_event)  # a trap ends the wait long before the polling interval
        figures = op.run_cycle()
        assert figures["trap_events"] == 1
        raw = pd.concat(pd.read_parquet(p) for p in (tmp_path / "wh").rglob("*.parquet")
                        if {"raw", "events"} <= set(p.parts))  # fmt: skip
        trap = raw[raw["source"] == "snmp-trap"]
        assert list(trap["type"]) == ["DYING_GASP"]
        assert list(trap["entity_id"]) == [str(sim.topology.onus["serial"].iat[2])]
    finally:
        tx.close()
        op.close()
        pool.stop_thread()


@pytest.mark.timeout(120)
def test_a_feeder_cut_los_trap_opens_an_incident_at_once(sim, tmp_path, monkeypatch):
    """Done-when of issue 21: a LOS trap opens an incident within seconds, not at the
    next poll (the polling interval here is 300 s; the test would hang without the trap)."""
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds).start_in_thread()
    write_inventory(tmp_path / "olts.yaml", pool, creds)
    monkeypatch.setenv("GUARDIAN_SNMP_TRAPS_COMMUNITY", creds.community)
    (tmp_path / "site.yaml").write_text(yaml.safe_dump({
        "inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
        "polling_interval_s": 300, "traps": {"host": "127.0.0.1", "port": 0,
                                             "credentials": "traps", "min_cycle_gap_s": 0},
    }))  # fmt: skip
    op = Operator(load_site(tmp_path / "site.yaml"), tmp_path / "state")
    tx = OltTrapSender(sim, ("127.0.0.1", op.traps.receiver.port), community=creds.community)
    try:
        for _ in range(2):  # a quiet network first
            assert op.run_cycle()["open_incidents"] == 0
            sim.step()
        pon = sim.topology.pons["pon_id"].iloc[0]
        rows = np.flatnonzero(sim.topology.onus["pon_id"].to_numpy() == pon)
        sim.effects.los_n[rows] += 1  # the feeder fibre of one PON is cut
        sim.step()
        op.traps.last_cycle_end = 0.0
        op.traps.sleep(300, op.stop_event)  # returns on the first LOS trap
        figures = op.run_cycle()
        assert figures["trap_events"] == len(rows) and figures["open_incidents"] == 1
        (incident,) = op.autopilot.incidents.values()
        assert incident["scope_type"] == "pon" and incident["cause"] == "MASSIVE_OUTAGE"
        assert set(incident["members"]) == set(sim.topology.onus["onu_id"].iloc[rows])
    finally:
        tx.close()
        op.close()
        pool.stop_thread()


@pytest.mark.timeout(120)
def test_the_twin_network_serves_olt_clis_and_traps_for_operate(tmp_path):
    from acs_emulator.twin.network import TwinNetwork
    from guardian_lib.olt.driver import OltDriver
    from guardian_lib.olt.inventory import load_cli_inventory
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    net = TwinNetwork(load_scenario("tiny"), seed=3, speed=600, n_cpes=2, olt_cli=True,
                      traps=True)  # fmt: skip
    net.start()
    try:
        site_path = net.write_site(tmp_path / "site.yaml")
        site = load_site(site_path)
        assert site.traps is not None and site.traps.port == net.trap_port
        inv = load_cli_inventory(tmp_path / "site.olt-cli.yaml")
        olt = inv.olts[0].olt_id

        async def configured():
            async with OltDriver(inv.target(olt), inv.profile_of(olt)) as drv:
                return await drv.configured(1, 0)

        assert len(asyncio_run(configured())) > 0
        op = Operator(site, tmp_path / "state")
        try:
            row = int(np.flatnonzero(net.sim.state.online)[0])
            with net.lock:
                net.sim.effects.los_n[row] += 1
                net.sim.step()
            got = _wait_for(op.traps.receiver, lambda evs: len(evs) > 0)
            serial = str(net.sim.topology.onus["serial"].iat[row])
            assert any(e["entity_id"] == serial and e["type"] == "LOS" for e in got)
        finally:
            op.close()
    finally:
        net.stop()


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)


def _udp_listening(port: int, timeout_s: float) -> bool:
    """Wait (bounded) until a UDP socket is bound to 127.0.0.1:``port`` (Linux
    ``/proc/net/udp``; nothing is sent or bound to find out)."""
    import time

    want = f"0100007F:{port:04X}"
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with open("/proc/net/udp", encoding="ascii") as fh:
            if any(line.split()[1] == want for line in list(fh)[1:]):
                return True
        time.sleep(0.02)
    return False


def test_guardian_traps_writes_raw_events(sim, tmp_path):
    import socket

    import typer
    from typer.testing import CliRunner

    from guardian_lib.snmp.cli import register

    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds).start_in_thread()
    inv, _ = write_inventory(tmp_path / "olts.yaml", pool, creds)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tx = OltTrapSender(sim, ("127.0.0.1", port), community=creds.community)
    olt = str(sim.topology.olts["olt_id"].iloc[0])
    app = typer.Typer()
    register(app)
    # The trap goes once the receiver listens (a fixed delay lost it on a loaded machine,
    # where the command took longer to start: UDP has no retry).
    timer = threading.Thread(
        target=lambda: _udp_listening(port, 30.0) and tx.send_onu_trap(olt, 5, 1), daemon=True
    )
    timer.start()
    try:
        res = CliRunner().invoke(app, [
            "traps", "--inventory", str(inv), "--run", str(tmp_path / "run"), "--credentials",
            "emulator", "--host", "127.0.0.1", "--port", str(port), "--flush-every", "0.5s",
            "--duration", "2",
        ])  # fmt: skip
    finally:
        timer.join(timeout=30)
        tx.close()
        pool.stop_thread()
    assert res.exit_code == 0, res.output
    files = [p for p in (tmp_path / "run").rglob("*.parquet") if "events" in p.parts]
    raw = pd.concat(pd.read_parquet(p) for p in files)
    assert list(raw["type"]) == ["DYING_GASP"] and list(raw["source"]) == ["snmp-trap"]
    assert list(raw["entity_id"]) == [str(sim.topology.onus["serial"].iat[5])]
