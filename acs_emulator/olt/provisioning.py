"""An emulated OLT's configuration, backed by the simulation: what its CLI changes.

:class:`OltConfigBackend` is the state behind one emulated OLT command line. ONUs the
simulation marks as not authorized (:class:`simulator.admin.AdminState`) are the OLT's
autofind list; authorizing one gives it an ONU id on its port (the simulation's
``onu_index``, which the SNMP agent serves) and lets it range at the next tick;
deactivating it or shutting its PON port takes it offline; a reboot power-cycles it in
the simulation. Vendor-neutral: the vendor command lines (:mod:`acs_emulator.olt.cli_vendors`)
translate their syntax into these calls and these errors into their messages.

Every call holds the lock the simulation is stepped under.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ConfigError", "OnuConfig", "OltConfigBackend", "unprovision_onus"]


class ConfigError(Exception):
    """A refused configuration change; ``kind`` is vendor-neutral (busy, exists, …)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


@dataclass
class OnuConfig:
    """What the operator configured on one authorized ONU."""

    row: int
    onu_id: int
    line_profile: str = ""
    srv_profile: str = ""
    desc: str = ""
    service_vlans: list[int] = field(default_factory=list)
    wan: dict[str, Any] = field(default_factory=dict)


def unprovision_onus(sim: Any, olt_id: str, n: int, rng: np.random.Generator) -> list[str]:
    """Take ``n`` ONUs of ``olt_id`` out of its configuration (they wait in autofind).

    Parameters
    ----------
    sim : simulator.engine.Simulation
    olt_id : str
    n : int
        How many ONUs (chosen with ``rng``). [-]
    rng : numpy.random.Generator

    Returns
    -------
    serials : list of str
    """
    onus = sim.topology.onus
    rows = np.flatnonzero(onus["olt_id"].to_numpy() == olt_id)
    rows = rows[sim.admin.provisioned[rows]]
    pick = np.sort(rng.choice(rows, size=min(n, len(rows)), replace=False))
    sim.admin.unprovision(pick.tolist())
    return [str(s) for s in onus["serial"].to_numpy()[pick]]


class OltConfigBackend:
    """Configuration state of one emulated OLT (see the module docstring).

    Parameters
    ----------
    sim : simulator.engine.Simulation
    olt_id : str
    lock : threading.Lock, optional
        Held while reading or changing the simulation.
    line_profiles, srv_profiles : set of str
        Profiles that exist on this OLT (ids or names).
    vlans : set of int
        VLANs that exist on this OLT.
    busy_rate : float
        Probability that a configuration command is refused as busy. [-]
    seed : int
        Seeds the busy draws.

    Attributes
    ----------
    busy_next : int
        The next this-many configuration commands are refused as busy (tests). [-]
    """

    def __init__(
        self,
        sim: Any,
        olt_id: str,
        lock: threading.Lock | None = None,
        *,
        line_profiles: set[str] | None = None,
        srv_profiles: set[str] | None = None,
        vlans: set[int] | None = None,
        busy_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.sim = sim
        self.olt_id = olt_id
        self.lock = lock or threading.Lock()
        topo = sim.topology
        olt = topo.olts.set_index("olt_id").loc[olt_id]
        self.vendor = str(olt["vendor"])
        self.model = str(olt["model"])
        pons = topo.pons[topo.pons["olt_id"] == olt_id]
        self.pon_of = {
            (int(s), int(p)): str(pid)
            for s, p, pid in zip(pons["slot"], pons["port"], pons["pon_id"], strict=True)
        }
        self.slots = sorted({s for s, _ in self.pon_of})
        self.rows = np.flatnonzero(topo.onus["olt_id"].to_numpy() == olt_id)
        self.line_profiles = line_profiles or {"1", "10", "20", "1G", "500M", "100M", "default"}
        self.srv_profiles = srv_profiles or {"1", "10", "20"}
        self.vlans = vlans or set(range(100, 200)) | {10, 20}
        self.busy_rate = busy_rate
        self.busy_next = 0
        self._rng = np.random.default_rng(seed)
        self.config: dict[int, OnuConfig] = {}
        self.changes = 0

    # --- reading ---------------------------------------------------------------------
    def _onus(self) -> Any:
        return self.sim.topology.onus

    def pon(self, slot: int, port: int) -> str:
        """PON id of a (slot, port) in topology numbering; ``not_found`` if none."""
        pon = self.pon_of.get((slot, port))
        if pon is None:
            raise ConfigError("not_found", f"port {slot}/{port}")
        return pon

    def autofind(self) -> list[tuple[int, int, str, str]]:
        """``(slot, port, serial, model)`` of ONUs waiting for authorization, on open ports."""
        with self.lock:
            onus = self._onus()
            out = []
            for row in self.rows[~self.sim.admin.provisioned[self.rows]]:
                pon = str(onus["pon_id"].iat[row])
                if pon in self.sim.admin.disabled_pons:
                    continue  # a shut port does not range anything
                slot, port = next(k for k, v in self.pon_of.items() if v == pon)
                out.append((slot, port, str(onus["serial"].iat[row]), str(onus["model"].iat[row])))
            return sorted(out)

    def _configured_rows(self, pon: str) -> dict[int, int]:
        onus = self._onus()
        rows = self.rows[self.sim.admin.provisioned[self.rows]]
        rows = rows[onus["pon_id"].to_numpy()[rows] == pon]
        return {int(onus["onu_index"].iat[r]): int(r) for r in rows}

    def configured(self, slot: int, port: int) -> list[dict[str, Any]]:
        """ONUs configured on a port: ``onu_id``, ``serial``, ``model``, ``enabled``, ``online``."""
        with self.lock:
            pon = self.pon(slot, port)
            onus = self._onus()
            state = self.sim.state
            # deactivation and port shutdown act at once; ranging waits for the next tick
            shut = self.sim.admin.down_mask()
            out = []
            for onu_id, row in sorted(self._configured_rows(pon).items()):
                cfg = self.config.get(row)
                out.append(
                    {
                        "onu_id": onu_id,
                        "serial": str(onus["serial"].iat[row]),
                        "model": str(onus["model"].iat[row]),
                        "enabled": bool(self.sim.admin.onu_enabled[row]),
                        "online": bool(state is not None and state.online[row] and not shut[row]),
                        "desc": cfg.desc if cfg else "",
                    }
                )
            return out

    def onu(self, slot: int, port: int, onu_id: int) -> dict[str, Any]:
        """One configured ONU (see :meth:`configured`); ``not_found`` if none."""
        for rec in self.configured(slot, port):
            if rec["onu_id"] == onu_id:
                return rec
        raise ConfigError("not_found", f"ONU {slot}/{port}:{onu_id}")

    def port_enabled(self, slot: int, port: int) -> bool:
        """Whether a PON port is open."""
        with self.lock:
            return self.pon(slot, port) not in self.sim.admin.disabled_pons

    # --- changing --------------------------------------------------------------------
    def check_busy(self) -> None:
        """Refuse a configuration command as busy (injected or drawn)."""
        if self.busy_next > 0:
            self.busy_next -= 1
            raise ConfigError("busy")
        if self.busy_rate > 0 and self._rng.random() < self.busy_rate:
            raise ConfigError("busy")

    def _row(self, slot: int, port: int, onu_id: int) -> int:
        row = self._configured_rows(self.pon(slot, port)).get(onu_id)
        if row is None:
            raise ConfigError("not_found", f"ONU {slot}/{port}:{onu_id}")
        return row

    def add_onu(
        self,
        slot: int,
        port: int,
        serial: str,
        onu_id: int | None,
        id_range: tuple[int, int],
        line_profile: str = "",
        srv_profile: str = "",
        desc: str = "",
    ) -> int:
        """Authorize the waiting ONU ``serial`` on a port; returns its ONU id.

        Errors: ``busy``, ``not_found`` (port), ``profile``, ``exists`` (serial or id
        configured), ``unknown_serial`` (not waiting on that port).
        """
        self.check_busy()
        with self.lock:
            pon = self.pon(slot, port)
            if line_profile and line_profile not in self.line_profiles:
                raise ConfigError("profile", f"line profile {line_profile}")
            if srv_profile and srv_profile not in self.srv_profiles:
                raise ConfigError("profile", f"service profile {srv_profile}")
            onus = self._onus()
            hits = self.rows[onus["serial"].to_numpy()[self.rows] == serial]
            if len(hits) and self.sim.admin.provisioned[hits[0]]:
                raise ConfigError("exists", f"serial {serial}")
            used = self._configured_rows(pon)
            if onu_id is not None and onu_id in used:
                raise ConfigError("exists", f"ONU id {onu_id}")
            if not len(hits) or str(onus["pon_id"].iat[hits[0]]) != pon:
                raise ConfigError("unknown_serial", serial)
            if pon in self.sim.admin.disabled_pons:
                raise ConfigError("unknown_serial", serial)
            if onu_id is None:
                lo, hi = id_range
                onu_id = next((i for i in range(lo, hi + 1) if i not in used), None)
                if onu_id is None:
                    raise ConfigError("failure", f"no free ONU id on {slot}/{port}")
            row = int(hits[0])
            onus.iat[row, onus.columns.get_loc("onu_index")] = onu_id
            self.sim.admin.provision(row)
            self.config[row] = OnuConfig(row, onu_id, line_profile, srv_profile, desc)
            self.changes += 1
            return onu_id

    def delete_onu(self, slot: int, port: int, onu_id: int) -> None:
        """Remove an ONU's configuration (it goes back to autofind)."""
        self.check_busy()
        with self.lock:
            row = self._row(slot, port, onu_id)
            self.sim.admin.unprovision([row])
            self.config.pop(row, None)
            self.changes += 1

    def update(self, slot: int, port: int, onu_id: int, **fields: Any) -> None:
        """Change stored settings of a configured ONU (profiles, description, WAN)."""
        self.check_busy()
        with self.lock:
            row = self._row(slot, port, onu_id)
            if "line_profile" in fields and fields["line_profile"] not in self.line_profiles:
                raise ConfigError("profile", f"profile {fields['line_profile']}")
            cfg = self.config.setdefault(row, OnuConfig(row, onu_id))
            for k, v in fields.items():
                if k in ("line_profile", "srv_profile", "desc"):
                    setattr(cfg, k, v)
                else:  # WAN settings (mode, VLAN, PPPoE user; the password is kept too)
                    cfg.wan[k] = v
            self.changes += 1

    def add_service_port(self, slot: int, port: int, onu_id: int, vlan: int) -> None:
        """Bind a VLAN to the ONU's GEM port; ``profile`` error if the VLAN does not exist."""
        self.check_busy()
        with self.lock:
            row = self._row(slot, port, onu_id)
            if vlan not in self.vlans:
                raise ConfigError("profile", f"VLAN {vlan}")
            cfg = self.config.setdefault(row, OnuConfig(row, onu_id))
            cfg.service_vlans.append(vlan)
            self.changes += 1

    def reboot(self, slot: int, port: int, onu_id: int) -> None:
        """Power-cycle the ONU in the simulation."""
        self.check_busy()
        with self.lock:
            row = self._row(slot, port, onu_id)
            self.sim.reboot_cpe(row, by="olt-cli")
            self.changes += 1

    def set_onu_enabled(self, slot: int, port: int, onu_id: int, enabled: bool) -> None:
        """Activate or deactivate a configured ONU."""
        self.check_busy()
        with self.lock:
            row = self._row(slot, port, onu_id)
            self.sim.admin.set_onu_enabled(row, enabled)
            self.changes += 1

    def set_port_enabled(self, slot: int, port: int, enabled: bool) -> None:
        """Open or shut a PON port."""
        self.check_busy()
        with self.lock:
            self.sim.admin.set_pon_enabled(self.pon(slot, port), enabled)
            self.changes += 1
