"""The twin as a network for ``guardian operate``: OLT SNMP agents, the ACS NBI and CPEs.

:class:`TwinNetwork` runs the simulator in scaled real time (``speed`` simulated seconds
per wall second) with, on loopback only,

* one SNMP agent per simulated OLT (:mod:`acs_emulator.olt`), serving the live values;
* the ACS (CWMP + GenieACS-compatible NBI) and one CPE agent per customer; a Reboot a
  CPE receives is applied to the simulation (which may clear a hang);
* a ticketing webhook (:mod:`acs_emulator.twin.ticketing`) whose visit orders the
  simulator's technicians carry out;
* with ``helpdesk``, the customers' calls as contact files in a drop folder
  (:mod:`acs_emulator.twin.helpdesk`), as a helpdesk's CRM would write them;

and no autopilot of its own: ``guardian operate`` is the autopilot, pointed at the site
file :meth:`TwinNetwork.write_site` writes (inventory + 0600 secrets, subscribers, NBI
URL, the ticketing webhook and a scaled clock). At exit :meth:`truth` says what
really happened: the faults, the hangs, which hangs a reboot cleared and who sent it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from acs_emulator.twin.adapters import TwinStateSource

__all__ = ["TwinNetwork"]

log = logging.getLogger(__name__)


class TwinNetwork:
    """A simulated ISP served as a network (see the module docstring).

    Parameters
    ----------
    scenario : simulator.scenario.Scenario
    seed : int, optional
    speed : float, default 60
        Simulated seconds per wall second. [-]
    host : str, default "127.0.0.1"
        Loopback address of every service.
    n_cpes : int, optional
        Emulate only the first N customers' CPEs.
    nbi_token : str, optional
        Bearer token the NBI requires (written to a 0600 file beside the site file).
    periodic_inform_min : float, default 10
        CPE periodic inform interval in simulated time (how fresh the ACS's view of
        the PPPoE sessions is). [min]
    olt_cli : bool, default False
        Also serve each Huawei / ZTE / FiberHome OLT's command line over SSH
        (``docs/olt.md``); the site file then has an OLT CLI inventory beside it.
    traps : bool, default False
        The OLTs send SNMPv2c traps (LOS, dying gasp, ONU up, port down) to a port the
        site file's ``traps:`` section names, so operate reacts at once.
    helpdesk : bool, default False
        The simulated customers' calls are written, a CSV file per tick, into the drop
        folder the site file's ``contacts:`` section names (``<stem>-contacts/``), so
        operate learns of them as from a helpdesk (:class:`~acs_emulator.twin.helpdesk.HelpdeskDrop`).
    """

    def __init__(
        self,
        scenario: Any,
        *,
        seed: int | None = None,
        speed: float = 60.0,
        host: str = "127.0.0.1",
        n_cpes: int | None = None,
        nbi_token: str | None = None,
        periodic_inform_min: float = 10.0,
        olt_cli: bool = False,
        traps: bool = False,
        helpdesk: bool = False,
    ) -> None:
        from acs_emulator.twin.helpdesk import HelpdeskDrop
        from simulator.engine import Simulation

        if not speed > 0:
            raise ValueError(f"TwinNetwork: speed must be > 0, got {speed!r}")
        if not host.startswith("127.") and host not in ("localhost", "::1"):
            raise ValueError(f"TwinNetwork: host must be a loopback address, got {host!r}")
        self.scenario = scenario
        self.speed = float(speed)
        self.host = host
        self.nbi_token = nbi_token
        self.sim = Simulation(scenario, seed=seed)
        self.state = TwinStateSource(self.sim)
        self.identities = self.state.identities(n_cpes)
        self.lock = threading.Lock()
        self.tick_wall_s = self.sim.tick_s / self.speed
        self.periodic_interval_s = max(0.5, periodic_inform_min * 60.0 / self.speed)
        self.reboot_duration_s = scenario.faults.reboot_down_minutes * 60.0 / self.speed
        self.services: Any = None
        self.pool: Any = None
        self.ticketing: Any = None
        self.field: Any = None
        self.credentials: Any = None
        self.wall_epoch = 0.0
        self.epoch: pd.Timestamp | None = None
        self.olt_cli, self.traps = olt_cli, traps
        self.cli_server: Any = None
        self.trap_sender: Any = None
        self.trap_port: int | None = None
        self.helpdesk = HelpdeskDrop() if helpdesk else None
        if self.helpdesk is not None:
            self.sim.sinks.append(self.helpdesk)

    def start(self, settle_timeout_s: float = 60.0) -> None:
        """Step tick 0, start the ACS, the CPEs and the OLT agents."""
        from acs_emulator.olt.serve import EmulatorCredentials, simulated_pool
        from acs_emulator.twin.runner import _Services

        with self.lock:
            if self.sim.state is None:
                self.sim.step()
        self.services = _Services(
            self.identities, self.state, self.host, self.nbi_token,
            {"periodic_interval_s": self.periodic_interval_s,
             "reboot_duration_s": self.reboot_duration_s,
             "periodic_phase": True},  # a real fleet's Informs are spread in time
            seed=int(self.scenario.seed),
        )  # fmt: skip
        self.services.start(settle_timeout_s)
        self.credentials = EmulatorCredentials()
        self.pool = simulated_pool(self.sim, self.credentials, host=self.host, lock=self.lock)
        self.pool.start_in_thread()
        from acs_emulator.twin.ticketing import TicketingServer
        from simulator.adapters import SimFieldService

        self.field = SimFieldService(self.sim)
        self.ticketing = TicketingServer(self.field, self.lock, host=self.host).start()
        self._start_olt_extras()
        self.wall_epoch = time.time()
        self.epoch = self.sim.ts_of(self.sim.env.now)

    def _start_olt_extras(self) -> None:
        """The OLTs' SSH command lines and trap sender, when asked for."""
        import socket

        from acs_emulator.olt.provisioning import OltConfigBackend
        from acs_emulator.olt.ssh import OltCliServer
        from acs_emulator.olt.traps import OltTrapSender

        olts = self.sim.topology.olts
        if self.olt_cli:
            ids = [str(o) for o, v in zip(olts["olt_id"], olts["vendor"], strict=True)
                   if v in ("huawei", "zte", "fiberhome")]  # fmt: skip
            backends = [OltConfigBackend(self.sim, i, self.lock) for i in ids]
            self.cli_server = OltCliServer(backends, host=self.host).start_in_thread()
        if self.traps:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.bind((self.host, 0))  # a free port for operate's trap receiver
                self.trap_port = probe.getsockname()[1]
            with self.lock:
                self.trap_sender = OltTrapSender(self.sim, (self.host, self.trap_port),
                                                 community=self.credentials.community)  # fmt: skip

    @property
    def nbi_url(self) -> str:
        """URL of the ACS's NBI."""
        return self.services.svc.nbi_url

    def write_site(self, path: str | Path) -> Path:
        """Write the site file (and its inventory, secrets, subscribers) for operate.

        Files beside ``path``: ``<stem>.olts.yaml`` (+ ``.secrets.yaml``, 0600),
        ``<stem>.subscribers.csv``, ``<stem>.nbi-token`` (0600, only with a token),
        ``<stem>.olt-cli.yaml`` (+ secrets, host keys; with ``olt_cli``); the warehouse
        ``<stem>-warehouse/``; the contacts drop folder ``<stem>-contacts/`` (with
        ``helpdesk``).
        """
        import os

        from acs_emulator.olt.serve import write_inventory

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = path.stem
        inv, _ = write_inventory(path.with_name(f"{stem}.olts.yaml"), self.pool, self.credentials,
                                 host=self.host)  # fmt: skip
        topo = self.sim.topology
        onus = topo.onus.set_index("onu_id")
        cust = topo.customers
        subs = pd.DataFrame(
            {
                "onu_id": cust["onu_id"].astype(str),
                "cpe_id": cust["cpe_id"].astype(str),
                "customer_id": cust["customer_id"].astype(str),
                "pon_id": onus.loc[cust["onu_id"], "pon_id"].astype(str).to_numpy(),
                "box_id": onus.loc[cust["onu_id"], "splitter_id"].astype(str).to_numpy(),
                "olt_id": onus.loc[cust["onu_id"], "olt_id"].astype(str).to_numpy(),
                "region": cust["region"].astype(str),
                "segment": cust["segment"].astype(str),
                "lat": onus.loc[cust["onu_id"], "lat"].to_numpy(),
                "lon": onus.loc[cust["onu_id"], "lon"].to_numpy(),
                "distance_m": onus.loc[cust["onu_id"], "distance_m"].to_numpy(),
            }
        )
        subs_path = path.with_name(f"{stem}.subscribers.csv")
        subs.to_csv(subs_path, index=False)
        # the ACS does not store PeriodicInformInterval (not an Inform parameter): the
        # CPEs' interval, wall-clock, for the silent-OLT evidence (guardian_lib.operate.silent)
        nbi: dict[str, Any] = {"url": self.nbi_url, "timeout_s": 10.0, "retries": 4,
                               "backoff_s": 0.2, "max_backoff_s": 2.0,
                               "inform_interval_s": round(self.periodic_interval_s, 6)}  # fmt: skip
        if self.nbi_token:
            tok = path.with_name(f"{stem}.nbi-token")
            fd = os.open(tok, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(self.nbi_token)
            nbi["token_file"] = tok.name
        site = {
            "site_id": "twin",
            "inventory": inv.name,
            "subscribers": subs_path.name,
            "polling_interval_s": round(self.tick_wall_s, 6),
            "warehouse": f"{stem}-warehouse",
            "model_alias": None,
            "nbi": nbi,
            "field_service": {
                "kind": "webhook",
                "url": self.ticketing.url,
                "retries": 3,
                "backoff_s": 0.1,
            },  # fmt: skip
            "notifier": {"kind": "audit"},
            "clock": {
                "speed": self.speed,
                "epoch": self.epoch.isoformat(),
                "wall_epoch": self.wall_epoch,
            },  # fmt: skip
        }
        if self.cli_server is not None:
            from acs_emulator.olt.ssh import write_cli_inventory

            write_cli_inventory(path.with_name(f"{stem}.olt-cli.yaml"), self.cli_server)
        if self.trap_port is not None:
            site["traps"] = {
                "host": self.host, "port": self.trap_port, "version": "2c",
                "credentials": "emulator", "min_cycle_gap_s": round(self.tick_wall_s / 2, 6),
            }  # fmt: skip
        if self.helpdesk is not None:
            folder = path.with_name(f"{stem}-contacts")
            with self.lock:  # the simulation thread writes the files
                self.helpdesk.set_folder(folder)
            site["contacts"] = {"folder": folder.name}
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(
            "# Written by guardian twin --serve-network: a test network on loopback.\n"
            + yaml.safe_dump(site, sort_keys=False),
            encoding="utf-8",
        )
        os.replace(tmp, path)
        return path

    def run(
        self,
        ticks: int | None = None,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Step the simulation in scaled real time; returns the ticks run. [-]"""
        sim = self.sim
        last = sim.n_ticks - 1 if ticks is None else min(sim.n_ticks - 1, sim.tick_index + ticks)
        first = sim.tick_index
        t_end = None if duration_s is None else time.time() + duration_s
        while sim.tick_index < last:
            due = self.wall_epoch + (sim.tick_index + 1 - first) * self.tick_wall_s
            if t_end is not None and due > t_end:
                break
            wait = due - time.time()
            if stop is not None:
                if stop.wait(max(0.0, wait)):
                    break
            elif wait > 0:
                time.sleep(wait)
            with self.lock:
                self.state.apply_reboots()
                sim.step()
        with self.lock:
            self.state.apply_reboots()
        return sim.tick_index - first

    def truth(self) -> dict[str, Any]:
        """What really happened (simulator ground truth), JSON-ready."""
        sim = self.sim
        cust = sim.topology.customers
        cpe_of = dict(zip(cust["onu_id"], cust["cpe_id"], strict=True))
        ts = sim.ts_of

        def iso(s: float | None) -> str | None:
            return None if s is None else ts(s).isoformat()

        faults = []
        for f in sim.faults:
            if f.start_s > sim.env.now:
                continue
            faults.append({
                "fault_id": f.fault_id, "kind": f.kind, "scope_type": f.scope_type,
                "scope_key": str(f.scope_key), "start": iso(f.start_s), "end": iso(f.end_s),
                "fixed_by": f.fixed_by, "n_onus": len(f.onus),
            })  # fmt: skip
        reboots = [
            {"ts": iso(r["ts_s"]), "onu_id": str(sim.onu_ids[r["onu_row"]]),
             "cpe_id": str(cpe_of.get(sim.onu_ids[r["onu_row"]])), "by": r["by"]}
            for r in sim.reboots
        ]  # fmt: skip
        hangs = []
        for f in sim.faults:
            if f.kind != "cpe_hang" or f.start_s > sim.env.now:
                continue
            onu = str(sim.onu_ids[int(f.onus[0])])
            end = f.end_s
            before = [r for r in reboots if r["onu_id"] == onu and r["ts"] >= iso(f.start_s)
                      and (end is None or r["ts"] <= iso(end))]  # fmt: skip
            hangs.append({
                "fault_id": f.fault_id, "onu_id": onu, "cpe_id": str(cpe_of.get(onu)),
                "start": iso(f.start_s), "end": iso(end), "fixed_by": f.fixed_by,
                "cleared_by_reboot": f.fixed_by == "reboot",
                "reboot_by": before[-1]["by"] if f.fixed_by == "reboot" and before else None,
            })  # fmt: skip
        onu_ids = sim.onu_ids
        visits = [
            {"os_id": str(o.os_id), "onu_id": str(onu_ids[o.onu_row]), "status": str(o.status),
             "opened_by": str(o.opened_by)}
            for o in sim.ops.orders
        ]  # fmt: skip
        return {
            "scenario": self.scenario.name,
            "visits": visits,
            "speed": self.speed,
            "start": iso(0.0),
            "now": iso(sim.env.now),
            "ticks": int(sim.tick_index),
            "faults": faults,
            "hangs": hangs,
            "reboots": reboots,
            "cpe_reboot_rpcs": list(self.state.received),
            "helpdesk_contacts": None if self.helpdesk is None else self.helpdesk.contacts,
        }

    def write_truth(self, path: str | Path) -> Path:
        """:meth:`truth` as JSON (written atomically)."""
        import os

        path = Path(path)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(json.dumps(self.truth(), indent=2, default=str), encoding="utf-8")
        os.replace(tmp, path)
        return path

    def stop(self) -> None:
        """Stop the ticketing server, the OLT agents, the CPEs and the ACS."""
        if self.trap_sender is not None:
            self.trap_sender.close()
            self.trap_sender = None
        if self.cli_server is not None:
            self.cli_server.stop_thread()
            self.cli_server = None
        if self.ticketing is not None:
            self.ticketing.stop()
            self.ticketing = None
        if self.pool is not None:
            self.pool.stop_thread()
            self.pool = None
        if self.services is not None:
            self.services.stop()
            self.services = None
