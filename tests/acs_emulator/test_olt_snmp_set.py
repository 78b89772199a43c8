"""OLT changes over SNMP SET: guardian_lib.olt drives the emulated agents' SET handlers.

A tiny simulated ISP's OLT serves SNMP with a write community and a v3 write user; the
library shuts / opens a PON port (IF-MIB ifAdminStatus) and reboots / deactivates a
Huawei ONT (hwGponDeviceOntControl*), v2c and v3, audited with before / after; the
read community is refused (noAccess), a vendor without the operation is refused before
anything is sent, and SET is off unless the inventory enables it.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from acs_emulator.olt.provisioning import OltConfigBackend
from acs_emulator.olt.serve import EmulatorCredentials, simulated_pool, single_vendor_simulation
from guardian_lib.errors import ConfigError
from guardian_lib.olt.changes import Change, OltAudit, OltChanges
from guardian_lib.olt.inventory import load_cli_inventory
from simulator.engine import Simulation
from simulator.scenario import load_scenario

IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"


class SetLab:
    """One simulated OLT of ``vendor`` whose agent answers SET, and a CLI inventory."""

    def __init__(self, vendor: str, model: str, tmp: Path, version: str = "2c") -> None:
        self.sim = single_vendor_simulation("tiny", vendor, model, seed=11)
        self.olt_id = str(self.sim.topology.olts["olt_id"].iloc[0])
        self.other = "NO-SET"  # an inventory entry without snmp_set
        self.backend = OltConfigBackend(self.sim, self.olt_id)
        self.creds = creds = EmulatorCredentials()
        self.pool = simulated_pool(self.sim, creds, olt_ids=[self.olt_id],
                                   set_backends={self.olt_id: self.backend}).start_in_thread()  # fmt: skip
        self.handler = self.pool.specs[0].set_fn
        profile = {"huawei": "huawei_ma5800", "zte": "zte_c300", "fiberhome": "fiberhome_an5516"}
        tmp.mkdir(parents=True, exist_ok=True)
        secrets = tmp / "olt-cli.secrets.yaml"
        secrets.write_text(yaml.safe_dump({
            "cli": {"username": "u", "password": "p"},
            "rw": {"write_community": creds.write_community, "v3_user": creds.write_user.user,
                   "auth_key": creds.write_user.auth_key,
                   "priv_key": creds.write_user.priv_key},
            "ro": {"write_community": creds.community},  # the read community: refused
        }))  # fmt: skip
        os.chmod(secrets, 0o600)
        port = self.pool.ports[self.olt_id]
        entry = {"host": "127.0.0.1", "profile": profile[vendor], "credentials": "cli",
                 "insecure": True}  # fmt: skip
        self.inv_path = tmp / "olt-cli.yaml"
        self.inv_path.write_text(yaml.safe_dump({
            "secrets_file": secrets.name,
            "olts": [
                {**entry, "olt_id": self.olt_id,
                 "snmp_set": {"port": port, "version": version, "credentials": "rw",
                              "timeout_s": 1.0, "retries": 0}},
                {**entry, "olt_id": self.other},  # SET not enabled
                {**entry, "olt_id": "RO", "snmp_set": {"port": port, "credentials": "ro",
                                                       "timeout_s": 1.0, "retries": 0}},
            ],
        }))  # fmt: skip
        self.changes = OltChanges(load_cli_inventory(self.inv_path),
                                  OltAudit(tmp / "audit.jsonl"), who="noc-eva")  # fmt: skip

    def if_index(self, slot: int, port: int) -> int:
        pons = self.sim.topology.pons
        hit = pons[
            (pons["olt_id"] == self.olt_id) & (pons["slot"] == slot) & (pons["port"] == port)
        ]
        return int(hit["if_index"].iloc[0])

    def apply(self, op: str, params: dict, dry_run: bool = False, olt: str | None = None):
        change = Change(olt or self.olt_id, op, {**params, "via": "snmp"})
        return asyncio.run(self.changes.apply(change, dry_run=dry_run))


@pytest.fixture
def setlab(tmp_path):
    made: list[SetLab] = []

    def make(vendor: str = "huawei", model: str = "MA5800-X7", version: str = "2c") -> SetLab:
        made.append(SetLab(vendor, model, tmp_path / f"{vendor}-{version}", version))
        return made[-1]

    yield make
    for lab in made:
        lab.pool.stop_thread()


@pytest.mark.parametrize(("vendor", "model", "cli_port"),
                         [("huawei", "MA5800-X7", 0), ("fiberhome", "AN5516-06", 1)])  # fmt: skip
def test_port_shut_and_opened_by_set_v2c(setlab, vendor, model, cli_port):
    lab = setlab(vendor, model)
    pons = lab.sim.topology.pons
    pon = pons[(pons["olt_id"] == lab.olt_id) & (pons["slot"] == 1) & (pons["port"] == 0)]
    rows = np.flatnonzero(lab.sim.topology.onus["pon_id"].to_numpy() == pon["pon_id"].iloc[0])
    assert lab.sim.state.online[rows].any()
    oid = f"{IF_ADMIN}.{lab.if_index(1, 0)}"

    dry = lab.apply("port-disable", {"slot": 1, "port": cli_port}, dry_run=True)
    assert dry.commands == [f"SET {oid} = INTEGER 2"] and lab.handler.applied == 0

    res = lab.apply("port-disable", {"slot": 1, "port": cli_port})
    assert res.status == "ok", res.error
    assert res.before == {oid: 1} and res.after == {oid: 2}
    assert not lab.backend.port_enabled(1, 0)
    lab.sim.step()
    assert not lab.sim.state.online[rows].any()
    assert lab.apply("port-enable", {"slot": 1, "port": cli_port}).after == {oid: 1}
    assert lab.backend.port_enabled(1, 0) and lab.handler.applied == 2
    audit = lab.changes.audit.read()
    assert [r["status"] for r in audit] == ["dry-run", "started", "ok", "started", "ok"]
    assert audit[2]["who"] == "noc-eva" and audit[2]["commands"] == [f"SET {oid} = INTEGER 2"]
    assert lab.creds.write_community not in json.dumps(audit)


def test_huawei_ont_reboot_and_deactivate_by_set_v3(setlab):
    lab = setlab("huawei", version="3")
    onu = lab.backend.configured(1, 0)[0]
    where = {"slot": 1, "port": 0, "onu_id": onu["onu_id"]}
    res = lab.apply("reboot-onu", where)
    assert res.status == "ok", res.error
    assert res.commands == [
        f"SET 1.3.6.1.4.1.2011.6.128.1.1.2.46.1.2.{lab.if_index(1, 0)}.{onu['onu_id']} = INTEGER 1"
    ]
    lab.sim.step()
    assert len(lab.sim.reboots) == 1
    assert lab.sim.onu_ids[lab.sim.reboots[0]["onu_row"]] == onu["serial"]
    assert lab.apply("onu-disable", where).status == "ok"
    assert lab.backend.onu(1, 0, onu["onu_id"])["enabled"] is False
    bad = lab.apply("onu-disable", {**where, "onu_id": 127})  # no such ONT: noCreation
    assert bad.status == "failed" and "noCreation" in bad.error
    assert bad.error_kind == "SnmpProtocolError"


def test_set_refused_for_readers_unsupported_operations_and_olts_without_opt_in(setlab):
    lab = setlab("huawei")
    res = lab.apply("port-disable", {"slot": 1, "port": 0}, olt="RO")
    assert res.status == "failed" and "noAccess" in res.error
    assert lab.backend.port_enabled(1, 0) and lab.handler.applied == 0
    with pytest.raises(ConfigError, match="SNMP SET is not enabled"):
        lab.apply("port-disable", {"slot": 1, "port": 0}, olt=lab.other)
    with pytest.raises(ValueError, match="resync cannot go over SNMP SET"):
        lab.apply("resync", {"slot": 1, "port": 0, "onu_id": 1})
    lab.backend.busy_next = 1  # the OLT is busy: resourceUnavailable, nothing changed
    busy = lab.apply("port-disable", {"slot": 1, "port": 0})
    assert busy.status == "failed" and "resourceUnavailable" in busy.error
    assert lab.backend.port_enabled(1, 0)


def test_zte_has_no_onu_reboot_over_snmp_and_the_cli_prints_varbinds(setlab):
    import typer

    from guardian_lib.olt.cli import register

    lab = setlab("zte", "C320")
    with pytest.raises(ValueError, match="no SNMP SET for reboot .*port_disable, port_enable"):
        lab.apply("reboot-onu", {"slot": 1, "port": 1, "onu_id": 1})
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)
    args = ["olt", "port", "disable", "-i", str(lab.inv_path), "--olt", lab.olt_id, "--slot",
            "1", "--port", "1", "--via", "snmp", "--dry-run", "--who", "t"]  # fmt: skip
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert out.stdout.strip() == f"SET {IF_ADMIN}.{lab.if_index(1, 0)} = INTEGER 2"
    assert lab.handler.applied == 0
    out = CliRunner().invoke(app, args[:-3])
    assert out.exit_code == 0, out.output
    assert not lab.backend.port_enabled(1, 0)


def test_served_olts_share_one_state_between_cli_and_set(tmp_path):
    """``guardian olt serve --snmp-set``'s wiring: one backend per OLT behind both the SSH
    CLI and the SET handler, and a CLI inventory that enables SET with the write user."""
    import io
    import threading

    from rich.console import Console

    from acs_emulator.olt.cli import _backends, _start_cli

    sim = Simulation(load_scenario("tiny"), seed=2)
    sim.step()
    ids = [str(o) for o in sim.topology.olts["olt_id"]]
    lock = threading.Lock()
    backends = _backends(sim, ids, lock)
    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds, olt_ids=ids, lock=lock, set_backends=backends)
    pool.start_in_thread()
    snmp = {"ports": pool.ports, "credentials": creds, "version": "3"}
    server = _start_cli(sim, ids, lock, "127.0.0.1", tmp_path / "cli.yaml", 0,
                        Console(file=io.StringIO()), backends=backends, snmp=snmp)  # fmt: skip
    try:
        inv = load_cli_inventory(tmp_path / "cli.yaml")
        changes = OltChanges(inv, OltAudit(tmp_path / "a.jsonl"), who="t")
        for olt_id in ids:
            assert inv.entry(olt_id).snmp_set.credentials == "emulator-rw"
            base = inv.profile_of(olt_id).port_base
            res = asyncio.run(changes.apply(Change(olt_id, "port-disable",
                                                   {"slot": 1, "port": base, "via": "snmp"})))  # fmt: skip
            assert res.status == "ok", res.error
            assert list(res.after.values()) == [2]
            # the CLI of the same OLT sees the port shut by SET
            st = asyncio.run(
                changes.apply(Change(olt_id, "port-enable", {"slot": 1, "port": base}))
            )
            assert st.status == "ok", st.error
            assert st.before["admin"].lower().startswith(("disable", "deactiv", "down"))
            assert backends[olt_id].port_enabled(1, 0)
    finally:
        server.stop_thread()
        pool.stop_thread()


def test_a_wrong_v3_write_key_changes_nothing(setlab):
    lab = setlab("huawei", version="3")
    sec = lab.changes.inventory.secrets_path()
    data = yaml.safe_load(sec.read_text())
    data["rw"]["auth_key"] = "not-the-auth-key"
    sec.write_text(yaml.safe_dump(data))
    res = lab.apply("port-disable", {"slot": 1, "port": 0})
    assert res.status == "failed" and res.error_kind in ("SnmpAuthError", "SnmpTimeoutError")
    assert "not-the-auth-key" not in res.error
    assert lab.backend.port_enabled(1, 0) and lab.handler.applied == 0


def test_bulk_rows_via_snmp_need_no_cli_session(setlab, tmp_path):
    from guardian_lib.olt.bulk import load_bulk_csv, run_bulk

    lab = setlab("huawei")  # its inventory's SSH port has no server: only SNMP answers
    csv_path = tmp_path / "bulk.csv"
    csv_path.write_text(
        "olt_id,operation,slot,port,via\n"
        f"{lab.olt_id},port-disable,1,0,snmp\n{lab.olt_id},port-enable,1,0,snmp\n"
    )
    results = asyncio.run(run_bulk(lab.changes, load_bulk_csv(csv_path), per_minute=6000))
    assert [r.status for r in results] == ["ok", "ok"], [r.error for r in results]
    assert lab.handler.applied == 2 and lab.backend.port_enabled(1, 0)
