"""OLT provisioning end to end: guardian_lib.olt drives the emulated OLT command lines.

For each emulated vendor (Huawei MA5800, ZTE C320, ZTE C600) a tiny simulated ISP has a
few ONUs left unauthorized; the library finds them (autofind, through the pager),
authorizes one with a PPPoE WAN, and the ONU comes online in the simulation and in
what the SNMP poller reads. Failures (wrong serial, a step refused, busy, bad login,
wrong syntax) are answered clearly and leave nothing half-configured.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

from acs_emulator.olt.cli_vendors import FiberHomeCli, ZteCli
from acs_emulator.olt.provisioning import OltConfigBackend, unprovision_onus
from acs_emulator.olt.serve import (
    EmulatorCredentials,
    simulated_pool,
    single_vendor_simulation,
    write_inventory,
)
from acs_emulator.olt.ssh import OltCliServer, write_cli_inventory
from guardian_lib.errors import ConfigError
from guardian_lib.olt.bulk import load_bulk_csv
from guardian_lib.olt.changes import Change, OltAudit, OltChanges
from guardian_lib.olt.cli import register as register_olt
from guardian_lib.olt.driver import AuthorizeRequest, OltDriver, OnuLocation
from guardian_lib.olt.inventory import load_cli_inventory
from guardian_lib.olt.session import OltAuthError, OltCommandError
from guardian_lib.snmp import load_inventory, poll_once
from simulator.engine import Simulation
from simulator.scenario import load_scenario

FAMILIES = {"huawei": ("huawei", "MA5800-X7"), "zte_c320": ("zte", "C320"),
            "zte_c600": ("zte", "C600"), "fiberhome": ("fiberhome", "AN5516-06")}  # fmt: skip
N_WAITING = 3


def build_app() -> typer.Typer:
    app = typer.Typer()
    register_olt(app)
    app.command("noop", hidden=True)(lambda: None)
    return app


class Lab:
    """A simulated OLT with its CLI over SSH, its SNMP agent and both inventories."""

    def __init__(self, family: str, tmp: Path) -> None:
        vendor, model = FAMILIES[family]
        self.sim = single_vendor_simulation("tiny", vendor, model, seed=11)
        self.olt_id = str(self.sim.topology.olts["olt_id"].iloc[0])
        self.waiting = unprovision_onus(self.sim, self.olt_id, N_WAITING, np.random.default_rng(5))
        self.sim.step()
        self.backend = OltConfigBackend(self.sim, self.olt_id)
        self.server = OltCliServer([self.backend]).start_in_thread()
        self.cli_inv_path, _ = write_cli_inventory(tmp / "olt-cli.yaml", self.server)
        self.inv = load_cli_inventory(self.cli_inv_path)
        creds = EmulatorCredentials()
        self.pool = simulated_pool(self.sim, creds, olt_ids=[self.olt_id]).start_in_thread()
        self.snmp_inv, _ = write_inventory(tmp / "olts.yaml", self.pool, creds)

    def driver(self) -> OltDriver:
        return OltDriver(self.inv.target(self.olt_id), self.inv.profile_of(self.olt_id))

    def polled(self) -> dict[str, bool]:
        r = poll_once(load_inventory(self.snmp_inv)).results[0]
        assert r.complete, r.error
        return dict(zip(r.telemetry["onu_id"], r.telemetry["online"].astype(bool), strict=True))

    def close(self) -> None:
        self.server.stop_thread()
        self.pool.stop_thread()


@pytest.fixture
def lab(request, tmp_path):
    made = []

    def make(family: str = "huawei") -> Lab:
        made.append(Lab(family, tmp_path / family))
        return made[-1]

    yield make
    for x in made:
        x.close()


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_autofind_authorize_online_polled(lab, family, monkeypatch):
    monkeypatch.setattr(ZteCli, "page_lines", 2)  # ZTE's short listing crosses the pager too
    monkeypatch.setattr(FiberHomeCli, "page_lines", 3)
    lab = lab(family)
    before = lab.polled()
    assert not set(lab.waiting) & set(before), "an unauthorized ONU is in the OLT's tables"

    async def go():
        async with lab.driver() as olt:
            found = await olt.autofind()
            assert sorted(a.serial for a in found) == sorted(lab.waiting)
            a = found[0]
            req = AuthorizeRequest(a.slot, a.port, a.serial, vlan=100, wan="pppoe",
                                   pppoe_username="cust1", pppoe_password="s3cret", desc="C-1")  # fmt: skip
            res = await olt.authorize(req)
            assert not any("s3cret" in c for c in olt.session.transcript)
            left = await olt.autofind()
            return a, res, left

    a, res, left = run(go())
    assert a.serial not in {x.serial for x in left} and len(left) == N_WAITING - 1
    row = int(np.flatnonzero(lab.sim.onu_ids == a.serial)[0])
    assert lab.backend.config[row].wan["username"] == "cust1"
    lab.sim.step()
    assert lab.sim.state.online[row]
    polled = lab.polled()
    assert polled[a.serial] is True
    assert not set(lab.waiting) - {a.serial} & set(polled)

    async def status():
        async with lab.driver() as olt:
            return await olt.onu_status(OnuLocation(a.slot, a.port, res.onu_id))

    st = run(status())
    assert st["run"] in ("online", "working", "up") and st["admin"] in ("active", "enable")


def test_port_disable_takes_its_onus_offline(lab):
    lab = lab("huawei")
    pons = lab.sim.topology.pons
    pon = pons[pons["olt_id"] == lab.olt_id].iloc[0]
    on_pon = lab.sim.topology.onus["pon_id"].to_numpy() == pon["pon_id"]
    rows = np.flatnonzero(on_pon & lab.sim.admin.provisioned & lab.sim.state.online)
    assert len(rows) > 0

    async def switch(enabled: bool):
        async with lab.driver() as olt:
            await olt.set_port_enabled(int(pon["slot"]), int(pon["port"]), enabled)
            return await olt.port_status(int(pon["slot"]), int(pon["port"]))

    assert run(switch(False))["admin"] == "disable"
    polled = lab.polled()  # the OLT reports them down at once, before the next tick
    assert not any(polled[s] for s in lab.sim.onu_ids[rows])
    lab.sim.step()
    assert not lab.sim.state.online[rows].any()
    assert (lab.sim.state.down_cause[rows] == 3).all()
    polled = lab.polled()
    assert not any(polled[s] for s in lab.sim.onu_ids[rows])
    assert run(switch(True))["admin"] == "enable"
    lab.sim.step()
    assert lab.sim.state.online[rows].mean() > 0.5


def test_wrong_serial_is_refused_before_any_change(lab):
    lab = lab("zte_c320")

    async def go():
        async with lab.driver() as olt:
            n = len(olt.session.transcript)
            with pytest.raises(OltCommandError) as err:
                await olt.authorize(AuthorizeRequest(1, 1, "ZTEG00000000", vlan=100))
            return err.value, olt.session.transcript[n:]

    err, sent = run(go())
    assert err.kind == "unknown_serial" and "ZTEG00000000" in str(err)
    assert not any(c.startswith("onu ") for c in sent)
    assert lab.backend.changes == 0

    slot, port, serial, _ = lab.backend.autofind()[0]
    used = lab.backend.configured(slot, port)[0]["onu_id"]
    other = next(p for s_, p in sorted(lab.backend.pon_of) if s_ == slot and p != port)

    async def elsewhere():  # asked on another port: the error names the port it waits on
        async with lab.driver() as olt:
            with pytest.raises(OltCommandError) as err:
                await olt.authorize(AuthorizeRequest(slot, other + 1, serial, 100))
            return err.value

    err = run(elsewhere())
    assert err.kind == "unknown_serial" and f"it waits on port {slot}/{port + 1}" in str(err)

    async def taken():  # an ONU id already in use on that port
        async with lab.driver() as olt:
            with pytest.raises(OltCommandError) as err:
                await olt.authorize(AuthorizeRequest(slot, port + 1, serial, 100, onu_id=used))
            return err.value

    err = run(taken())
    assert err.kind == "exists" and "already exists" in err.line and err.rolled_back is None
    assert serial in {s for _, _, s, _ in lab.backend.autofind()} and lab.backend.changes == 0


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_failed_service_port_rolls_back(lab, family):
    lab = lab(family)

    async def go():
        async with lab.driver() as olt:
            a = (await olt.autofind())[0]
            with pytest.raises(OltCommandError) as err:  # VLAN 999 does not exist on the OLT
                await olt.authorize(AuthorizeRequest(a.slot, a.port, a.serial, vlan=999))
            configured = await olt.configured(a.slot, a.port)
            return a, err.value, await olt.autofind(), configured

    a, err, waiting, configured = run(go())
    assert err.kind == "profile" and err.rolled_back is True
    assert "vlan" in err.line.lower()
    assert a.serial in {w.serial for w in waiting}
    assert a.serial not in configured.values()
    assert lab.sim.admin.provisioned.sum() == len(lab.sim.onu_ids) - N_WAITING


def test_busy_olt_is_retried_then_reported(lab):
    lab = lab("huawei")

    async def go(busy: int):
        lab.backend.busy_next = busy
        async with lab.driver() as olt:
            a = (await olt.autofind())[0]
            return await olt.authorize(AuthorizeRequest(a.slot, a.port, a.serial, vlan=100))

    assert run(go(2)).onu_id >= 0  # two "busy" answers, then the retry goes through
    with pytest.raises(OltCommandError) as err:
        run(go(50))
    assert err.value.kind == "busy" and "busy" in err.value.line
    assert err.value.rolled_back is None  # refused at the first step: nothing to undo
    assert lab.sim.admin.provisioned.sum() == len(lab.sim.onu_ids) - N_WAITING + 1


def test_bad_credentials_and_wrong_syntax(lab):
    lab = lab("zte_c600")
    target = lab.inv.target(lab.olt_id)
    target.password = "not-the-password"
    with pytest.raises(OltAuthError, match="refused user 'guardian'"):
        run(OltDriver(target, lab.inv.profile_of(lab.olt_id)).__aenter__())

    async def go():
        async with lab.driver() as olt:
            with pytest.raises(OltCommandError) as err:
                await olt.session.run("onu frobnicate")
            assert olt.session.in_config_mode
            return err.value

    err = run(go())
    assert err.kind == "syntax" and "Invalid input" in err.line


def test_changes_are_audited_with_before_and_after(lab, tmp_path):
    lab = lab("huawei")
    audit = OltAudit(tmp_path / "audit.jsonl")
    changes = OltChanges(lab.inv, audit, who="noc-ana")
    a_slot, a_port = 1, 0
    onus = lab.backend.configured(a_slot, a_port)
    onu_id = onus[0]["onu_id"]
    res = run(changes.apply(Change(lab.olt_id, "onu-disable",
                                   {"slot": a_slot, "port": a_port, "onu_id": onu_id})))  # fmt: skip
    assert res.status == "ok", res.error
    assert res.before["admin"] == "active" and res.after["admin"] == "deactivated"
    records = audit.read()
    assert [r["status"] for r in records] == ["started", "ok"]
    assert records[1]["who"] == "noc-ana" and records[1]["after"]["admin"] == "deactivated"
    assert any("ont deactivate" in c for c in records[1]["commands"])
    bad = run(changes.apply(Change(lab.olt_id, "reboot-onu",
                                   {"slot": a_slot, "port": a_port, "onu_id": 120})))  # fmt: skip
    assert bad.status == "failed" and bad.error_kind == "not_found"
    assert audit.read()[-1]["error"] == bad.error


def test_cli_dry_run_prints_commands_and_sends_nothing(lab, tmp_path):
    lab = lab("huawei")
    sec = lab.inv.secrets_path()
    text = sec.read_text() + "pppoe:\n  cust-7: {username: cust7@isp, password: pw-77}\n"
    sec.write_text(text)
    os.chmod(sec, 0o600)
    serial = lab.waiting[0]
    args = ["olt", "authorize", "-i", str(lab.cli_inv_path), "--olt", lab.olt_id, "--slot", "1",
            "--port", "0", "--serial", serial, "--vlan", "120", "--wan", "pppoe", "--pppoe",
            "cust-7", "--desc", "C-7", "--dry-run", "--who", "tester"]  # fmt: skip
    out = CliRunner().invoke(build_app(), args)
    assert out.exit_code == 0, out.output
    hexsn = serial[:4].encode().hex().upper() + serial[4:]
    assert out.stdout.splitlines() == [
        "interface gpon 0/1",
        f"ont add 0 sn-auth {hexsn} omci ont-lineprofile-id 10 ont-srvprofile-id 10 desc C-7",
        "quit",
        "service-port vlan 120 gpon 0/1/0 ont {onu_id} gemport 1 multi-service user-vlan 120 "
        "tag-transform translate",
        "interface gpon 0/1",
        "ont ipconfig 0 {onu_id} pppoe vlan 120 priority 0 user-account username cust7@isp "
        "password ******",
        "ont internet-config 0 {onu_id} ip-index 0",
        "quit",
    ]
    assert "pw-77" not in out.output
    assert lab.backend.changes == 0 and lab.server.sessions == 0
    rec = [
        json.loads(x)
        for x in (lab.cli_inv_path.parent / "olt-audit.jsonl").read_text().splitlines()
    ]
    assert rec[-1]["status"] == "dry-run" and rec[-1]["who"] == "tester"
    assert "pw-77" not in json.dumps(rec)
    status = CliRunner().invoke(build_app(), ["olt", "status", "-i", str(lab.cli_inv_path),
                                              "--olt", lab.olt_id, "--slot", "1", "--port", "0"])  # fmt: skip
    assert status.exit_code == 0, status.output
    listed = json.loads(status.stdout)
    assert listed["port"]["admin"] == "enable" and serial not in listed["onus"].values()


def test_cli_bulk_csv(lab, tmp_path):
    lab = lab("zte_c320")
    rows = ["olt_id,operation,slot,port,serial,vlan,onu_id"]
    w = lab.backend.autofind()
    for slot, port, serial, _ in w[:2]:
        rows.append(f"{lab.olt_id},authorize,{slot},{port + 1},{serial},100,")
    rows.append(f"{lab.olt_id},port-disable,1,2,,,")
    csv_path = tmp_path / "bulk.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    args = ["olt", "bulk", "-i", str(lab.cli_inv_path), str(csv_path), "--per-minute", "6000",
            "--who", "bulk-test"]  # fmt: skip
    out = CliRunner().invoke(build_app(), args)
    assert out.exit_code == 0, out.output
    assert out.stdout.count(" ok") == 3
    configured = {r["serial"] for p in (0, 1) for r in lab.backend.configured(1, p)}
    assert {serial for _, _, serial, _ in w[:2]} <= configured
    assert not lab.backend.port_enabled(1, 1) and lab.backend.port_enabled(1, 0)
    audit = [
        json.loads(x)
        for x in (lab.cli_inv_path.parent / "olt-audit.jsonl").read_text().splitlines()
    ]
    assert [r["status"] for r in audit] == ["started", "ok"] * 3
    assert {r["who"] for r in audit} == {"bulk-test"}
    bad = tmp_path / "bad.csv"
    bad.write_text("olt_id,operation,slot,port\nX,authorize,1,1\n")
    with pytest.raises(ConfigError, match=r"bad.csv row 2: authorize needs \['serial', 'vlan'\]"):
        load_bulk_csv(bad)


def test_serve_starts_the_cli_and_the_trap_sender(tmp_path):
    import io
    import threading

    from rich.console import Console

    from acs_emulator.olt.cli import _start_cli, _start_traps
    from guardian_lib.snmp.traps import TrapReceiver

    sim = Simulation(load_scenario("tiny"), seed=2)
    sim.step()
    olt = str(sim.topology.olts["olt_id"].iloc[0])
    console = Console(file=io.StringIO())
    server = _start_cli(sim, [olt], threading.Lock(), "127.0.0.1", tmp_path / "cli.yaml", 2,
                        console)  # fmt: skip
    creds = EmulatorCredentials()
    rx = TrapReceiver(community=creds.community).start_in_thread()
    sender = _start_traps(sim, [olt], creds, "2c", f"127.0.0.1:{rx.port}",
                          tmp_path / "olts.yaml", console)  # fmt: skip
    try:
        inv = load_cli_inventory(tmp_path / "cli.yaml")

        async def go():
            async with OltDriver(inv.target(olt), inv.profile_of(olt)) as drv:
                return await drv.autofind()

        assert len(run(go())) == 2
        section = yaml.safe_load((tmp_path / "olts.traps.yaml").read_text())["traps"]
        assert section["port"] == rx.port and section["version"] == "2c"
        with pytest.raises(ConfigError, match="--traps-to must be HOST:PORT"):
            _start_traps(sim, [olt], creds, "2c", "nohost", tmp_path / "o.yaml", console)
    finally:
        sender.close()
        rx.stop_thread()
        server.stop_thread()


@pytest.mark.parametrize("family", ["huawei", "zte_c600", "fiberhome"])
def test_reboot_answers_the_confirmation_and_reboots_in_the_simulation(lab, family):
    lab = lab(family)
    first = lab.backend.configured(1, 0)[0]
    port = 0 if family == "huawei" else 1  # CLI numbering: ZTE ports start at 1

    async def go():
        async with lab.driver() as olt:
            await olt.reboot_onu(OnuLocation(1, port, first["onu_id"]))
            assert olt.session.in_config_mode
            if family == "huawei":  # the OLT allocates Huawei ONT ids: asking for one is refused
                with pytest.raises(ValueError, match="the OLT allocates the ONU id"):
                    await olt.authorize(AuthorizeRequest(1, 0, lab.waiting[0], 100, onu_id=9))

    run(go())
    lab.sim.step()  # the power cycle runs in the simulation's time
    assert [r["by"] for r in lab.sim.reboots] == ["olt-cli"]
    assert lab.sim.onu_ids[lab.sim.reboots[0]["onu_row"]] == first["serial"]


def test_api_olt_changes_behind_the_operator_role(lab, tmp_path):
    import duckdb
    from fastapi.testclient import TestClient

    from guardian_lib.api.app import PREFIX, ApiConfig, create_app
    from guardian_lib.api.users import UserStore
    from guardian_lib.layout import RunLayout
    from guardian_lib.operate.state import StateStore

    lab = lab("zte_c320")
    run, state = tmp_path / "run", tmp_path / "state"
    run.mkdir()
    StateStore(state).close()
    con = duckdb.connect(str(RunLayout(run).warehouse))
    con.register("f", lab.sim.topology.olts[["olt_id", "region"]])
    con.execute("CREATE TABLE olts AS SELECT * FROM f")
    con.close()
    users = UserStore(tmp_path / "users.json")
    users.add("ana", "operator")
    users.add("vic", "viewer")
    tokens = {n: users.issue_token(n)[0] for n in ("ana", "vic")}
    cfg = ApiConfig(run=run, users=tmp_path / "users.json", state=state,
                    olt_cli_inventory=lab.cli_inv_path)  # fmt: skip
    client = TestClient(create_app(cfg, users))
    slot, port, serial, _ = lab.backend.autofind()[0]
    body = {"olt_id": lab.olt_id, "operation": "authorize", "comment": "new customer",
            "params": {"slot": slot, "port": port + 1, "serial": serial, "vlan": 100}}  # fmt: skip

    def post(who: str, payload: dict):
        headers = {"Authorization": f"Bearer {tokens[who]}"}
        return client.post(PREFIX + "/olt/changes", json=payload, headers=headers)

    assert post("vic", body).status_code == 403
    resp = post("ana", body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ok" and resp.json()["who"] == "api:ana"
    assert serial in {r["serial"] for r in lab.backend.configured(slot, port)}
    again = post("ana", body)  # no longer waiting: the OLT-side check refuses it
    assert again.status_code == 502 and again.json()["error_kind"] == "unknown_serial"
    audit = [json.loads(x) for x in cfg.olt_audit_path().read_text().splitlines()]
    assert [r["status"] for r in audit] == ["started", "ok", "started", "failed"]
    resync = {"olt_id": lab.olt_id, "operation": "resync", "dry_run": True,
              "params": {"slot": slot, "port": port + 1,
                         "onu_id": resp.json()["params"]["onu_id"]}}  # fmt: skip
    answer = post("ana", resync)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "dry-run" and answer.json()["commands"] == []


def test_a_silent_olt_times_out_without_quoting_a_secret(tmp_path):
    """An OLT that echoes a command and never shows a prompt again: a clear timeout, and
    the error does not quote output that may hold the PPPoE password."""
    import asyncssh

    from guardian_lib.olt.profiles import load_cli_profiles
    from guardian_lib.olt.session import CliSession, OltTimeoutError, SshTarget

    key = asyncssh.generate_private_key("ssh-ed25519")

    class Auth(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def password_auth_supported(self):
            return True

        def validate_password(self, username, password):
            return password == "pw"

    async def handle(process):
        process.stdout.write("OLT>")
        async for line in process.stdin:  # echo, then hang: no prompt
            process.stdout.write(line)

    async def go():
        server = await asyncssh.create_server(
            Auth, "127.0.0.1", 0, server_host_keys=[key], process_factory=handle,
            line_editor=False,
        )  # fmt: skip
        port = server.sockets[0].getsockname()[1]
        target = SshTarget("OLT-X", "127.0.0.1", port, "u", "pw", insecure=True, timeout_s=0.5)
        prof = load_cli_profiles()["huawei_ma5800"].model_copy(update={"setup": []})
        try:
            async with CliSession(target, prof) as s:
                with pytest.raises(OltTimeoutError, match="no prompt within 0.5 s") as err:
                    await s.run(
                        "ont ipconfig 0 1 password s3cret", "ont ipconfig 0 1 password ******"
                    )
                return str(err.value)
        finally:
            server.close()

    msg = run(go())
    assert "s3cret" not in msg and "output not shown" in msg


def test_bulk_rate_limit_spaces_the_changes(lab, monkeypatch):
    import guardian_lib.olt.bulk as bulk

    lab = lab("huawei")
    waits: list[float] = []

    async def record(seconds: float) -> None:  # no real waiting: the schedule is checked
        waits.append(seconds)

    monkeypatch.setattr(bulk, "_sleep", record)
    rows = [Change(lab.olt_id, op, {"slot": 1, "port": 1})
            for op in ("port-disable", "port-enable", "port-disable")]  # fmt: skip
    changes = OltChanges(lab.inv, OltAudit(lab.cli_inv_path.parent / "a.jsonl"), who="t")
    results = run(bulk.run_bulk(changes, rows, per_minute=6.0))  # one change per 10 s
    assert [r.status for r in results] == ["ok"] * 3
    assert len(waits) == 2 and 0 < waits[0] <= 10.0 and 10.0 < waits[1] <= 20.0
    with pytest.raises(ValueError, match="per_minute must be > 0"):
        run(bulk.run_bulk(changes, rows, per_minute=0))


def test_fiberhome_wrong_serial_case_busy_and_enable_password(lab, tmp_path):
    """FiberHome: the enable password is answered (never echoed or recorded), the serial
    goes out with lower-case hex and the ONU's own type, a wrong serial and a busy OLT are
    answered clearly, and the dry run leaves the type read from autofind open."""
    lab = lab("fiberhome")
    # an ONU whose serial has hex letters, so that upper and lower case differ
    slot, port, serial, model = next(
        w for w in lab.backend.autofind() if any(c in "ABCDEF" for c in w[2][4:])
    )
    link = port + 1  # FiberHome links count from 1
    lower = serial[:4] + serial[4:].lower()

    async def go():
        async with lab.driver() as olt:
            assert olt.session.in_config_mode  # enable + password reached Admin#
            with pytest.raises(OltCommandError) as wrong:
                await olt.authorize(AuthorizeRequest(slot, link, "FHTT00000000", vlan=100))
            await olt.session.run("cd gpononu")
            with pytest.raises(OltCommandError) as upper:  # the OLT wants lower-case hex
                await olt.session.run(
                    f"set whitelist phy_addr address {serial} password null action add "
                    f"slot {slot} link {link} onu 100 type {model}"
                )
            await olt.session.leave_to_config()
            lab.backend.busy_next = 2  # two busy answers, then the resend goes through
            res = await olt.authorize(AuthorizeRequest(slot, link, serial, vlan=100))
            return wrong.value, upper.value, res, list(olt.session.transcript)

    wrong, upper, res, sent = run(go())
    assert wrong.kind == "unknown_serial" and "FHTT00000000" in str(wrong)
    assert upper.kind == "unknown_serial" and "physical address is error" in upper.line
    add = [c for c in sent if c.startswith("set whitelist") and "action add" in c]
    assert add[-1] == (f"set whitelist phy_addr address {lower} password null action add "
                       f"slot {slot} link {link} onu {res.onu_id} type {model}")  # fmt: skip
    assert sum(c == add[-1] for c in sent) == 3  # sent once, resent twice after "busy"
    assert lab.inv.target(lab.olt_id).password not in "\n".join(sent)
    assert serial in {r["serial"] for r in lab.backend.configured(slot, port)}
    plan = OltChanges(lab.inv, OltAudit(tmp_path / "a.jsonl"), who="t").plan(
        Change(
            lab.olt_id,
            "authorize",
            {"slot": slot, "port": link, "serial": serial, "vlan": 120, "wan": "bridge"},
        )  # fmt: skip
    )
    assert plan[1] == (f"set whitelist phy_addr address {lower} password null action add "
                       f"slot {slot} link {link} onu {{onu_id}} type {{onu_type}}")  # fmt: skip
    assert any("type bridge 120 0 nat disable" in c for c in plan)


def test_fiberhome_wrong_enable_password_is_an_auth_error(lab, monkeypatch):
    from acs_emulator.olt.cli_fiberhome import FiberHomeCli

    lab = lab("fiberhome")
    orig = FiberHomeCli.c_enable

    def other_password(self):
        self.enable_password = "not-the-login-password"
        return orig(self)

    monkeypatch.setattr(FiberHomeCli, "c_enable", other_password)
    with pytest.raises(OltAuthError, match="password refused after 'enable'"):
        run(lab.driver().__aenter__())


def _with_pppoe_secret(lab) -> None:
    sec = lab.inv.secrets_path()
    sec.write_text(sec.read_text() + "pppoe:\n  cust-9: {username: cust9@isp, password: pw-99}\n")
    os.chmod(sec, 0o600)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_resync_reapplies_the_stored_wan_after_checking_the_serial(lab, family, tmp_path):
    lab = lab(family)
    _with_pppoe_secret(lab)
    audit = OltAudit(tmp_path / "audit.jsonl")
    changes = OltChanges(lab.inv, audit, who="noc-rui")
    slot, port, serial, _ = lab.backend.autofind()[0]
    cli_port = port + lab.inv.profile_of(lab.olt_id).port_base
    auth = run(changes.apply(Change(lab.olt_id, "authorize", {
        "slot": slot, "port": cli_port, "serial": serial, "vlan": 110, "wan": "pppoe",
        "pppoe": "cust-9"})))  # fmt: skip
    assert auth.status == "ok", auth.error
    row = int(np.flatnonzero(lab.sim.onu_ids == serial)[0])
    lab.backend.config[row].wan.clear()  # the ONU lost its WAN (factory reset, swap …)
    where = {"slot": slot, "port": cli_port, "onu_id": auth.params["onu_id"]}

    dry = run(changes.apply(Change(lab.olt_id, "resync", where), dry_run=True))
    assert dry.commands and any("cust9@isp" in c for c in dry.commands)
    assert "pw-99" not in json.dumps(dry.commands) and lab.backend.config[row].wan == {}

    res = run(changes.apply(Change(lab.olt_id, "resync", where)))
    assert res.status == "ok", res.error
    assert lab.backend.config[row].wan["username"] == "cust9@isp"
    assert lab.backend.config[row].wan["password"] == "pw-99"
    assert res.after["reapplied"] == "wan_pppoe" and res.before and res.after
    records = audit.read()
    assert [r["status"] for r in records][-3:] == ["dry-run", "started", "ok"]
    assert records[-1]["who"] == "noc-rui" and "pw-99" not in json.dumps(records)


def test_resync_refuses_a_different_onu_and_rereads_an_unknown_one(lab, tmp_path):
    lab = lab("zte_c320")
    changes = OltChanges(lab.inv, OltAudit(tmp_path / "audit.jsonl"), who="t")
    s1, p1, sn1, _ = lab.backend.autofind()[0]
    auth = run(changes.apply(Change(lab.olt_id, "authorize", {
        "slot": s1, "port": p1 + 1, "serial": sn1, "vlan": 100, "wan": "bridge"})))  # fmt: skip
    assert auth.status == "ok", auth.error
    onu_id = auth.params["onu_id"]
    # the ONU is removed on the OLT by hand and another of that port takes its id
    lab.backend.delete_onu(s1, p1, onu_id)
    neighbour = next(r for r in lab.backend.configured(s1, p1) if r["serial"] != sn1)
    lab.backend.delete_onu(s1, p1, neighbour["onu_id"])
    other = neighbour["serial"]
    lab.backend.add_onu(s1, p1, other, onu_id, (1, 128))
    where = {"slot": s1, "port": p1 + 1, "onu_id": onu_id}
    res = run(changes.apply(Change(lab.olt_id, "resync", where)))
    assert res.status == "failed" and res.error_kind == "not_found"
    assert f"reports serial {other}" in res.error and sn1 in res.error
    assert not any(c.startswith("vlan port") for c in res.commands)
    # an ONU id Guardian never authorized
    never = next(r["onu_id"] for r in lab.backend.configured(1, 0) if r["onu_id"] != onu_id)
    res = run(changes.apply(Change(lab.olt_id, "resync", {"slot": 1, "port": 1, "onu_id": never})))
    assert res.status == "ok" and res.after["reapplied"] == "nothing stored"
    assert res.commands and all(c.startswith(("show", "exit")) for c in res.commands)
    args = ["olt", "resync", "-i", str(lab.cli_inv_path), "--olt", lab.olt_id, "--slot", "1",
            "--port", "1", "--onu-id", str(never), "--dry-run", "--audit",
            str(tmp_path / "audit.jsonl")]  # fmt: skip
    out = CliRunner().invoke(build_app(), args)
    assert out.exit_code == 0, out.output
    assert out.stdout == "" and "nothing stored to re-apply" in out.stderr


def test_fiberhome_onu_and_port_enable_disable(lab):
    lab = lab("fiberhome")
    first = lab.backend.configured(1, 0)[0]
    loc = OnuLocation(1, 1, first["onu_id"])  # link 1 = topology port 0

    async def go():
        async with lab.driver() as olt:
            await olt.set_onu_enabled(loc, False)
            off = await olt.onu_status(loc)
            await olt.set_onu_enabled(loc, True)
            on = await olt.onu_status(loc)
            await olt.set_port_enabled(1, 2, False)
            port = await olt.port_status(1, 2)
            return off, on, port

    off, on, port = run(go())
    assert off["admin"] == "disable" and on["admin"] == "enable"
    assert off["serial"].upper() == first["serial"]
    assert port["admin"] == "disable" and not lab.backend.port_enabled(1, 1)
    assert lab.backend.port_enabled(1, 0)


def test_fiberhome_over_telnet_login_authorize_and_refusals(lab, tmp_path):
    """Many AN5516 speak only telnet: Login: / Password:, then the same CLI."""
    from guardian_lib.olt.session import OltConnectError

    lab = lab("fiberhome")
    server = OltCliServer([lab.backend], telnet=True).start_in_thread()
    try:
        inv_path, _ = write_cli_inventory(tmp_path / "telnet.yaml", server)
        inv = load_cli_inventory(inv_path)
        assert inv.entry(lab.olt_id).protocol == "telnet"
        slot, port, serial, _ = lab.backend.autofind()[0]

        async def go(target):
            async with OltDriver(target, inv.profile_of(lab.olt_id)) as olt:
                return await olt.authorize(AuthorizeRequest(slot, port + 1, serial, vlan=100))

        res = run(go(inv.target(lab.olt_id)))
        assert serial in {r["serial"] for r in lab.backend.configured(slot, port)}
        assert res.commands[0].startswith("cd gpononu")
        assert server.password not in "\n".join(res.commands)
        lab.sim.step()
        assert lab.polled()[serial] is True
        wrong = inv.target(lab.olt_id)
        wrong.password = "not-the-password"
        with pytest.raises(OltAuthError, match="refused user 'guardian' over telnet"):
            run(go(wrong))
        clear = inv.target(lab.olt_id)
        clear.insecure = False
        with pytest.raises(OltConnectError, match="telnet sends the login in clear text"):
            run(go(clear))
    finally:
        server.stop_thread()
