"""Vendor command lines of the emulated OLTs: Huawei MA5800, ZTE C300/C320 and ZTE C600.

Each class parses its vendor's syntax, keeps the prompt mode (user, privileged, config,
interface, ONU management) and answers as the vendor does, including wrong-syntax,
busy, already-exists and unknown-serial messages. They are written from the vendors'
documented syntax, independently of the library's YAML profiles, so that driving them
with ``guardian_lib.olt`` is a real test of those profiles.

The state behind them is an :class:`~acs_emulator.olt.provisioning.OltConfigBackend`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from acs_emulator.olt.provisioning import ConfigError, OltConfigBackend

__all__ = ["Reply", "VendorCli", "HuaweiCli", "ZteCli", "cli_for"]


@dataclass
class Reply:
    """An answer: text, and optionally a yes/no question whose answer runs ``confirm``."""

    text: str
    confirm: Callable[[bool], str] | None = None


_Handler = Callable[..., Reply | str]


class VendorCli:
    """Common machinery: modes, a command table, pager and error wording."""

    page_lines = 20
    pager = "---- More ----"
    #: vendor-neutral error kind → message (filled with ``detail``)
    messages: dict[str, str] = {}
    syntax_error = "% Unknown command"
    commands: list[tuple[tuple[str, ...], str, str]] = []

    def __init__(self, backend: OltConfigBackend, hostname: str) -> None:
        self.backend = backend
        self.hostname = hostname
        self.mode = self.start_mode
        self.context: dict[str, int] = {}
        self._table = [(modes, re.compile(rx), name) for modes, rx, name in self.commands]

    start_mode = "user"

    def banner(self) -> str:
        """Text shown after login, before the first prompt."""
        return ""

    def prompt(self) -> str:
        """The prompt of the current mode."""
        raise NotImplementedError

    def message(self, exc: ConfigError) -> str:
        """The vendor's wording of a refused change."""
        kind = "vlan" if exc.kind == "profile" and exc.detail.startswith("VLAN") else exc.kind
        return self.messages.get(kind, self.messages["failure"])

    def handle(self, line: str) -> Reply:
        """Answer one command line."""
        line = " ".join(line.split())
        if not line:
            return Reply("")
        for modes, rx, name in self._table:
            if self.mode in modes or "*" in modes:
                m = rx.fullmatch(line)
                if m is not None:
                    try:
                        out = getattr(self, name)(**m.groupdict())
                    except ConfigError as exc:
                        return Reply(self.message(exc))
                    return out if isinstance(out, Reply) else Reply(out)
        return Reply(self.syntax_error)


class HuaweiCli(VendorCli):
    """Huawei MA5800 / MA5600T: ``>``, ``#``, ``(config)#``, ``(config-if-gpon-F/S)#``."""

    pager = "---- More ( Press 'Q' to break ) ----"
    syntax_error = "                  ^\n  % Unknown command, the error locates at '^'"
    messages = {
        "busy": "  Failure: System is busy, please retry later",
        "exists": "  Failure: SN already exists",
        "unknown_serial": "  Failure: The ONT is not in the auto-find list",
        "not_found": "  Failure: The ONT does not exist",
        "profile": "  Failure: The line profile does not exist",
        "vlan": "  Failure: The VLAN does not exist",
        "failure": "  Failure: Operation failed",
    }
    _ANY = ("enable", "config", "gpon")
    commands = [
        (("user",), r"enable", "c_enable"),
        (("enable",), r"config", "c_config"),
        (_ANY, r"display ont autofind all", "c_autofind"),
        (_ANY, r"display ont info (?P<f>\d+) (?P<s>\d+) (?P<p>\d+) all", "c_info_all"),
        (_ANY, r"display ont info (?P<f>\d+) (?P<s>\d+) (?P<p>\d+) (?P<o>\d+)", "c_info"),
        (("config",), r"interface gpon (?P<f>\d+)/(?P<s>\d+)", "c_interface"),
        (
            ("config",),
            r"service-port vlan (?P<v>\d+) gpon (?P<f>\d+)/(?P<s>\d+)/(?P<p>\d+) ont (?P<o>\d+)"
            r" gemport \d+ multi-service user-vlan (?P<uv>\d+) tag-transform translate",
            "c_service_port",
        ),
        (
            ("gpon",),
            r"ont add (?P<p>\d+)(?: (?P<o>\d+))? sn-auth (?P<sn>[0-9A-Fa-f]{16}) omci"
            r" ont-lineprofile-id (?P<lp>\d+) ont-srvprofile-id (?P<sp>\d+)(?: desc (?P<d>\S+))?",
            "c_ont_add",
        ),
        (("gpon",), r"ont delete (?P<p>\d+) (?P<o>\d+)", "c_ont_delete"),
        (
            ("gpon",),
            r"ont ipconfig (?P<p>\d+) (?P<o>\d+) pppoe vlan (?P<v>\d+) priority \d"
            r" user-account username (?P<u>\S+) password (?P<pw>\S+)",
            "c_ipconfig",
        ),
        (("gpon",), r"ont internet-config (?P<p>\d+) (?P<o>\d+) ip-index \d+", "c_internet"),
        (
            ("gpon",),
            r"ont port native-vlan (?P<p>\d+) (?P<o>\d+) eth \d+ vlan (?P<v>\d+) priority \d",
            "c_native_vlan",
        ),
        (("gpon",), r"ont reset (?P<p>\d+) (?P<o>\d+)", "c_reset"),
        (("gpon",), r"ont (?P<act>activate|deactivate) (?P<p>\d+) (?P<o>\d+)", "c_activate"),
        (("gpon",), r"(?P<undo>undo )?shutdown (?P<p>\d+)", "c_shutdown"),
        (("gpon",), r"display port state (?P<p>\d+)", "c_port_state"),
        (("*",), r"quit", "c_quit"),
    ]

    def banner(self) -> str:
        return (
            "\n  Huawei Integrated Access Software (MA5800).\n"
            "  Copyright(C) Huawei Technologies Co., Ltd. 2002-2026. All rights reserved.\n\n"
        )

    def prompt(self) -> str:
        h = self.hostname
        return {
            "user": f"{h}>",
            "enable": f"{h}#",
            "config": f"{h}(config)#",
            "gpon": f"{h}(config-if-gpon-0/{self.context.get('slot', 0)})#",
        }[self.mode]

    def c_enable(self) -> str:
        self.mode = "enable"
        return ""

    def c_config(self) -> str:
        self.mode = "config"
        return ""

    def c_quit(self) -> str:
        self.mode = {"gpon": "config", "config": "enable", "enable": "user"}.get(self.mode, "user")
        return ""

    def _slot(self, f: str, s: str) -> int:
        if int(f) != 0 or int(s) not in self.backend.slots:
            raise ConfigError("not_found")
        return int(s)

    def c_interface(self, f: str, s: str) -> str:
        if int(f) != 0 or int(s) not in self.backend.slots:
            return "  Failure: The board does not exist"
        self.mode, self.context["slot"] = "gpon", int(s)
        return ""

    def c_autofind(self) -> str:
        found = self.backend.autofind()
        if not found:
            return "  Failure: The automatically found ONTs do not exist"
        rule = "   " + "-" * 76
        out = [rule]
        for i, (slot, port, serial, model) in enumerate(found, 1):
            hexsn = serial[:4].encode().hex().upper() + serial[4:]
            out += [
                f"   Number              : {i}",
                f"   F/S/P               : 0/{slot}/{port}",
                f"   Ont SN              : {hexsn} ({serial[:4]}-{serial[4:]})",
                "   Password            : 0x00000000000000000000",
                "   Loid                : ",
                "   Checkcode           : ",
                f"   VendorID            : {serial[:4]}",
                "   Ont Version         : 10C7.A",
                "   Ont SoftwareVersion : V5R020C10S115",
                f"   Ont EquipmentID     : {model}",
                "   Ont autofind time   : 2026-12-04 10:00:00+08:00",
                rule,
            ]
        out.append(f"   The number of GPON autofind ONT is {len(found)}")
        return "\n".join(out)

    def c_info_all(self, f: str, s: str, p: str) -> str:
        slot = self._slot(f, s)
        rows = self.backend.configured(slot, int(p))
        rule = "  " + "-" * 77
        out = [
            rule,
            "  F/S/P   ONT         SN         Control     Run      Config   Match    Protect",
            "          ID                     flag        state    state    state    side",
            rule,
        ]
        for r in rows:
            hexsn = r["serial"][:4].encode().hex().upper() + r["serial"][4:]
            flag = "active" if r["enabled"] else "deactivated"
            run = "online" if r["online"] else "offline"
            out.append(
                f"  0/{slot:>2}/{int(p):<2} {r['onu_id']:>4}  {hexsn}  {flag:<11} {run:<8} "
                "normal   match    no"
            )
        out += [rule, f"  In port 0/{slot}/{int(p)}, the total of ONTs are: {len(rows)}, "
                f"online: {sum(r['online'] for r in rows)}", rule]  # fmt: skip
        return "\n".join(out)

    def c_info(self, f: str, s: str, p: str, o: str) -> str:
        r = self.backend.onu(self._slot(f, s), int(p), int(o))
        hexsn = r["serial"][:4].encode().hex().upper() + r["serial"][4:]
        return "\n".join(
            [
                "  " + "-" * 61,
                f"  F/S/P                   : 0/{s}/{p}",
                f"  ONT-ID                  : {o}",
                f"  Control flag            : {'active' if r['enabled'] else 'deactivated'}",
                f"  Run state               : {'online' if r['online'] else 'offline'}",
                "  Config state            : normal",
                "  Match state             : match",
                "  Authentic type          : SN-auth",
                f"  SN                      : {hexsn} ({r['serial'][:4]}-{r['serial'][4:]})",
                "  Management mode         : OMCI",
                f"  Description             : {r['desc']}",
                "  " + "-" * 61,
            ]
        )

    def c_service_port(self, v: str, f: str, s: str, p: str, o: str, uv: str) -> str:
        self.backend.add_service_port(self._slot(f, s), int(p), int(o), int(v))
        return ""

    def c_ont_add(self, p: str, o: str | None, sn: str, lp: str, sp: str, d: str | None) -> str:
        raw = bytes.fromhex(sn[:8]).decode("ascii", "replace") + sn[8:].upper()
        onu_id = self.backend.add_onu(
            self.context["slot"], int(p), raw, None if o is None else int(o), (0, 127),
            line_profile=lp, srv_profile=sp, desc=d or "",
        )  # fmt: skip
        return f"  Number of ONTs that can be added: 1, success: 1\n  PortID :{p}, ONTID :{onu_id}"

    def c_ont_delete(self, p: str, o: str) -> str:
        self.backend.delete_onu(self.context["slot"], int(p), int(o))
        return "  Number of ONTs that can be deleted: 1, success: 1"

    def c_ipconfig(self, p: str, o: str, v: str, u: str, pw: str) -> str:
        self.backend.update(self.context["slot"], int(p), int(o), mode="pppoe", vlan=int(v),
                            username=u, password=pw)  # fmt: skip
        return ""

    def c_internet(self, p: str, o: str) -> str:
        self.backend.update(self.context["slot"], int(p), int(o), internet=True)
        return ""

    def c_native_vlan(self, p: str, o: str, v: str) -> str:
        self.backend.update(self.context["slot"], int(p), int(o), mode="bridge", vlan=int(v))
        return ""

    def c_reset(self, p: str, o: str) -> Reply:
        slot = self.context["slot"]
        self.backend.onu(slot, int(p), int(o))  # not_found before the question

        def confirm(yes: bool) -> str:
            if not yes:
                return ""
            try:
                self.backend.reboot(slot, int(p), int(o))
            except ConfigError as exc:
                return self.message(exc)
            return ""

        return Reply("  Are you sure to reset the ONT(s)? (y/n)[n]:", confirm)

    def c_activate(self, act: str, p: str, o: str) -> str:
        self.backend.set_onu_enabled(self.context["slot"], int(p), int(o), act == "activate")
        return ""

    def c_shutdown(self, undo: str | None, p: str) -> str:
        self.backend.set_port_enabled(self.context["slot"], int(p), bool(undo))
        return ""

    def c_port_state(self, p: str) -> str:
        on = self.backend.port_enabled(self.context["slot"], int(p))
        return f"  F/S/P                   : 0/{self.context['slot']}/{p}\n" + (
            f"  Port state              : {'enable' if on else 'disable'}"
        )


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

    def c_uncfg(self) -> str:
        found = self.backend.autofind()
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


def cli_for(backend: OltConfigBackend, hostname: str | None = None) -> VendorCli:
    """The vendor command line matching the backend's OLT (vendor and model).

    Raises
    ------
    ValueError
        No emulated CLI for that vendor (FiberHome is SNMP-only in the emulator).
    """
    host = hostname or backend.olt_id
    if backend.vendor == "huawei":
        return HuaweiCli(backend, host)
    if backend.vendor == "zte":
        return ZteCli(backend, host, c600=backend.model.upper().startswith("C6"))
    raise ValueError(
        f"OLT {backend.olt_id}: no emulated CLI for vendor {backend.vendor!r} "
        "(huawei and zte are emulated)"
    )
