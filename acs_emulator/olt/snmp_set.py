"""What the emulated OLT agents do with an SNMP SET: change the simulation's admin state.

:class:`OltSetHandler` is an agent's ``set_fn`` (:class:`~acs_emulator.olt.agent.AgentSpec`)
over the same :class:`~acs_emulator.olt.provisioning.OltConfigBackend` as the OLT's
command line, so a SET and a CLI command change the same state:

- every vendor: IF-MIB ``ifAdminStatus.<PON ifIndex>`` (``1.3.6.1.2.1.2.2.1.7``), 1 = up,
  2 = down: opens / shuts the PON port (its ONUs go offline);
- Huawei: ``hwGponDeviceOntControlActive`` (``1.3.6.1.4.1.2011.6.128.1.1.2.46.1.1``), 1 =
  activate, 2 = deactivate, and ``hwGponDeviceOntControlReset`` (``….46.1.2``), 1 = reset,
  indexed ``<PON ifIndex>.<ONT id>``.

Written from those MIB facts, independently of the library's ``snmp_set`` profile
sections. Answers: ``notWritable`` (an OID this OLT does not write), ``wrongValue``,
``noCreation`` (no such port or ONU), ``resourceUnavailable`` (the OLT is busy).
"""

from __future__ import annotations

from acs_emulator.olt.provisioning import ConfigError, OltConfigBackend

__all__ = ["OltSetHandler", "IF_ADMIN_STATUS", "HW_ONT_CONTROL"]

IF_ADMIN_STATUS = (1, 3, 6, 1, 2, 1, 2, 2, 1, 7)
HW_ONT_CONTROL = (1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2, 46, 1)
_HW_ACTIVE, _HW_RESET = 1, 2


class OltSetHandler:
    """SETs of one emulated OLT (call as ``handler(oid, value, check=...)``).

    Parameters
    ----------
    backend : OltConfigBackend

    Attributes
    ----------
    applied : int
        SETs that changed the simulation. [-]
    """

    def __init__(self, backend: OltConfigBackend) -> None:
        self.backend = backend
        pons = backend.sim.topology.pons
        pons = pons[pons["olt_id"] == backend.olt_id]
        self.pon_of_if = {
            int(i): (int(s), int(p))
            for i, s, p in zip(pons["if_index"], pons["slot"], pons["port"], strict=True)
        }
        self.applied = 0

    def __call__(self, oid: tuple[int, ...], value: int, check: bool = False) -> str | None:
        """Check (``check=True``) or apply one var-bind; None or an error-status name."""
        n = len(IF_ADMIN_STATUS)
        if oid[:n] == IF_ADMIN_STATUS and len(oid) == n + 1:
            where = self.pon_of_if.get(oid[n])
            if where is None:
                return "noCreation"
            if value not in (1, 2):
                return "wrongValue"
            return None if check else self._do(self.backend.set_port_enabled, *where, value == 1)
        m = len(HW_ONT_CONTROL)
        if self.backend.vendor == "huawei" and oid[:m] == HW_ONT_CONTROL and len(oid) == m + 3:
            col, ifx, ont = oid[m:]
            where = self.pon_of_if.get(ifx)
            if col not in (_HW_ACTIVE, _HW_RESET):
                return "notWritable"
            if where is None or not any(
                r["onu_id"] == ont for r in self.backend.configured(*where)
            ):
                return "noCreation"
            if (col == _HW_RESET and value != 1) or value not in (1, 2):
                return "wrongValue"
            if check:
                return None
            if col == _HW_RESET:
                return self._do(self.backend.reboot, *where, ont)
            return self._do(self.backend.set_onu_enabled, *where, ont, value == 1)
        return "notWritable"

    def _do(self, change, *args) -> str | None:
        try:
            change(*args)
        except ConfigError as exc:
            return "resourceUnavailable" if exc.kind == "busy" else "noCreation"
        self.applied += 1
        return None
