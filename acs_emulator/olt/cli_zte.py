"""The emulated ZTE C300/C320 and C600 command lines."""

from __future__ import annotations

import re

from acs_emulator.olt.cli_base import Reply, VendorCli
from acs_emulator.olt.provisioning import ConfigError, OltConfigBackend

__all__ = ["ZteCli"]


class ZteCli(VendorCli):
    """ZTE C300 / C320 (``gpon-olt_1/S/P``) or C600 (``gpon_olt-1/S/P``, vports)."""

    pager = " --More--"
    page_lines = 24
    syntax_error = "                        ^\n% Invalid input detected at '^' marker."
    messages = {
        "busy": "%Code 30001-GPONSRV : System is busy",
        "exists": "%Code 32307-GPONSRV : The ONU already exists",
        "unknown_serial": "%Code 32315-GPONSRV : SN not found in uncfg list",
        "not_found": "%Code 32310-GPONSRV : The ONU does not exist",
        "profile": "%Code 32311-GPONSRV : Profile does not exist",
        "vlan": "%Code 32312-GPONSRV : VLAN does not exist",
        "failure": "%Code 32300-GPONSRV : Operation failed",
    }
    start_mode = "exec"

    def __init__(self, backend: OltConfigBackend, hostname: str, c600: bool = False) -> None:
        self.olt = "gpon_olt-" if c600 else "gpon-olt_"
        self.onu = "gpon_onu-" if c600 else "gpon-onu_"
        o, u = re.escape(self.olt), re.escape(self.onu)
        port = r"1/(?P<s>\d+)/(?P<p>\d+)"
        onu = port + r":(?P<o>\d+)"
        cfg = ("config", "if-olt", "if-onu", "onu-mng", "vport")
        self.commands = [
            (("exec",), r"configure terminal", "c_configure"),
            (("exec",) + cfg, r"show gpon onu uncfg", "c_uncfg"),
            (("exec",) + cfg, rf"show gpon onu uncfg {o}{port}", "c_uncfg"),
            (("exec",) + cfg, rf"show running-config interface {o}{port}", "c_running"),
            (("exec",) + cfg, rf"show gpon onu detail-info {u}{onu}", "c_detail"),
            (("exec",) + cfg, rf"show interface {o}{port}", "c_show_if"),
            (("config",), rf"interface {o}{port}", "c_if_olt"),
            (("config",), rf"interface {u}{onu}", "c_if_onu"),
            (("config",), rf"pon-onu-mng {u}{onu}", "c_onu_mng"),
            (("if-olt",), r"onu (?P<o>\d+) type (?P<t>\S+) sn (?P<sn>[A-Za-z0-9]{12})", "c_onu"),
            (("if-olt",), r"no onu (?P<o>\d+)", "c_no_onu"),
            (("if-olt", "if-onu"), r"(?P<no>no )?shutdown", "c_shutdown"),
            (("if-onu",), r"name (?P<d>\S+)", "c_name"),
            (("if-onu",), r"tcont \d+ profile (?P<lp>\S+)", "c_tcont"),
            (("if-onu",), r"gemport \d+ tcont \d+", "c_ok"),
            (("onu-mng",), r"service internet gemport \d+ vlan (?P<v>\d+)", "c_service"),
            (
                ("onu-mng",),
                r"wan-ip \d+ mode pppoe username (?P<u>\S+) password (?P<pw>\S+)"
                r" vlan-profile \S+ host \d+",
                "c_wan",
            ),
            (("onu-mng",), r"vlan port eth_0/\d+ mode tag vlan (?P<v>\d+)", "c_bridge"),
            (("onu-mng",), r"reboot", "c_reboot"),
            (("*",), r"exit", "c_exit"),
            (("*",), r"end", "c_end"),
        ]
        if c600:
            self.commands += [
                (("config",), r"interface vport-1/(?P<s>\d+)/(?P<p>\d+)\.(?P<o>\d+):1", "c_vport"),
                (("vport",), r"service-port \d+ user-vlan (?P<uv>\d+) vlan (?P<v>\d+)", "c_sp"),
            ]
        else:
            self.commands += [
                (("if-onu",), r"service-port \d+ vport \d+ user-vlan (?P<uv>\d+) vlan (?P<v>\d+)",
                 "c_sp"),
            ]  # fmt: skip
        super().__init__(backend, hostname)

    def prompt(self) -> str:
        sub = {"exec": "", "config": "(config)", "if-olt": "(config-if)", "if-onu": "(config-if)",
               "onu-mng": "(gpon-onu-mng)", "vport": "(config-if)"}[self.mode]  # fmt: skip
        return f"{self.hostname}{sub}#"

    def _where(self, s: str, p: str) -> tuple[int, int]:
        """CLI slot/port (ports from 1) → topology slot/port (ports from 0)."""
        return int(s), int(p) - 1

    def c_configure(self) -> str:
        self.mode = "config"
        return "Enter configuration commands, one per line. End with CTRL/Z."

    def c_exit(self) -> str:
        # one level up: sub-modes → config → exec (exec stays: no logout in the emulator)
        self.mode = "config" if self.mode not in ("config", "exec") else "exec"
        return ""

    def c_end(self) -> str:
        self.mode = "exec"
        return ""

    def c_ok(self) -> str:
        self.backend.check_busy()
        return ""

    def c_uncfg(self, s: str | None = None, p: str | None = None) -> str:
        found = self.backend.autofind()
        if s is not None:  # one port: ``show gpon onu uncfg gpon-olt_1/S/P``
            where = self._where(s, str(p))
            self.backend.pon(*where)
            found = [f for f in found if (f[0], f[1]) == where]
        if not found:
            return "%Code 32310-GPONSRV : No related information to show."
        out = ["OnuIndex                 Sn                  State", "-" * 69]
        for i, (slot, port, serial, _) in enumerate(found, 1):
            out.append(f"{self.onu}1/{slot}/{port + 1}:{i:<8} {serial:<19} unknown")
        return "\n".join(out)

    def c_running(self, s: str, p: str) -> str:
        rows = self.backend.configured(*self._where(s, p))
        on = self.backend.port_enabled(*self._where(s, p))
        lines = ["Building configuration...", f"interface {self.olt}1/{s}/{p}",
                 "  no shutdown" if on else "  shutdown"]  # fmt: skip
        lines += [f"  onu {r['onu_id']} type {r['model']} sn {r['serial']}" for r in rows]
        return "\n".join(lines + ["!", "end"])

    def c_detail(self, s: str, p: str, o: str) -> str:
        r = self.backend.onu(*self._where(s, p), int(o))
        return "\n".join(
            [
                f"ONU interface:          {self.onu}1/{s}/{p}:{o}",
                f"Name:                   {r['desc']}",
                f"Type:                   {r['model']}",
                "State:                  ready",
                f"Admin state:            {'enable' if r['enabled'] else 'disable'}",
                f"Phase state:            {'working' if r['online'] else 'OffLine'}",
                "Config state:           success",
                "Authentic type:         SN",
                f"Serial number:          {r['serial']}",
            ]
        )

    def c_show_if(self, s: str, p: str) -> str:
        on = self.backend.port_enabled(*self._where(s, p))
        state = "activate, line protocol is up" if on else "deactivate, line protocol is down"
        return f"{self.olt}1/{s}/{p} is {state}."

    def c_if_olt(self, s: str, p: str) -> str:
        self.backend.pon(*self._where(s, p))
        self.mode = "if-olt"
        self.context = {"s": int(s), "p": int(p)}
        return ""

    def _enter_onu(self, mode: str, s: str, p: str, o: str) -> str:
        self.backend.onu(*self._where(s, p), int(o))
        self.mode = mode
        self.context = {"s": int(s), "p": int(p), "o": int(o)}
        return ""

    def c_if_onu(self, s: str, p: str, o: str) -> str:
        return self._enter_onu("if-onu", s, p, o)

    def c_onu_mng(self, s: str, p: str, o: str) -> str:
        return self._enter_onu("onu-mng", s, p, o)

    def c_vport(self, s: str, p: str, o: str) -> str:
        return self._enter_onu("vport", s, p, o)

    def _ctx(self) -> tuple[int, int, int]:
        c = self.context
        return c["s"], c["p"] - 1, c["o"]

    def c_onu(self, o: str, t: str, sn: str) -> str:
        slot, port = self._where(str(self.context["s"]), str(self.context["p"]))
        self.backend.add_onu(slot, port, sn.upper(), int(o), (1, 128))
        return ""

    def c_no_onu(self, o: str) -> str:
        slot, port = self._where(str(self.context["s"]), str(self.context["p"]))
        self.backend.delete_onu(slot, port, int(o))
        return ""

    def c_shutdown(self, no: str | None) -> str:
        if self.mode == "if-olt":
            slot, port = self._where(str(self.context["s"]), str(self.context["p"]))
            self.backend.set_port_enabled(slot, port, bool(no))
        else:
            self.backend.set_onu_enabled(*self._ctx(), bool(no))
        return ""

    def c_name(self, d: str) -> str:
        self.backend.update(*self._ctx(), desc=d)
        return ""

    def c_tcont(self, lp: str) -> str:
        self.backend.update(*self._ctx(), line_profile=lp)
        return ""

    def c_sp(self, uv: str, v: str) -> str:
        self.backend.add_service_port(*self._ctx(), int(v))
        return ""

    def c_service(self, v: str) -> str:
        self.backend.update(*self._ctx(), service_vlan=int(v))
        return ""

    def c_wan(self, u: str, pw: str) -> str:
        self.backend.update(*self._ctx(), mode="pppoe", username=u, password=pw)
        return ""

    def c_bridge(self, v: str) -> str:
        self.backend.update(*self._ctx(), mode="bridge", vlan=int(v))
        return ""

    def c_reboot(self) -> Reply:
        where = self._ctx()

        def confirm(yes: bool) -> str:
            if not yes:
                return ""
            try:
                self.backend.reboot(*where)
            except ConfigError as exc:
                return self.message(exc)
            return ""

        return Reply("Confirm to reboot? [yes/no]:", confirm)
