"""The emulated Huawei MA5800 command line."""

from __future__ import annotations

from acs_emulator.olt.cli_base import Reply, VendorCli
from acs_emulator.olt.provisioning import ConfigError

__all__ = ["HuaweiCli"]


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
