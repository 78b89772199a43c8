"""The emulated FiberHome AN5516 command line (RP07xx-RP08xx ``gpononu`` tree).

A directory tree rather than modes: ``User>``, then ``enable`` and a password question,
``Admin#``; ``cd gpononu`` (``Admin\\gpononu#``), ``cd epononu`` / ``cd qinq``
(``Admin\\epononu\\qinq#``); ``cd ..`` goes one level up. PON ports are ``link`` numbers
from 1. Serials are shown with their hex digits in lower case and a whitelist command
must give them so ("[ERR -598] physical address is error!" otherwise), with the ONU's
own type.

Which parts follow public AN5516 scripts and which are modelled is listed in the
library profile ``guardian_lib/olt/profiles/fiberhome_an5516.yaml``; this module is
written from that syntax, independently of the profile's templates.
"""

from __future__ import annotations

import secrets

from acs_emulator.olt.cli_base import Reply, VendorCli
from acs_emulator.olt.provisioning import ConfigError

__all__ = ["FiberHomeCli", "fh_serial"]

_OK = "Command execute success."
_SLP = r"slot (?P<s>\d+) link (?P<p>\d+)"


def fh_serial(serial: str) -> str:
    """How the OLT writes a serial: ``FHTT0017EED0`` → ``FHTT0017eed0``."""
    return serial[:4] + serial[4:].lower()


class FiberHomeCli(VendorCli):
    """FiberHome AN5516-01 / -04 / -06."""

    pager = "--Press any key to continue Ctrl+c to stop--"
    page_lines = 20
    syntax_error = "Unknown command."
    messages = {
        "busy": "[ERR -1] system is busy, please try later!",
        "exists": "[ERR -595] onu is already authorized!",
        "unknown_serial": "[ERR -598] physical address is error!",
        "not_found": "[ERR -506] onu is not exist!",
        "profile": "[ERR -531] onu type is error!",
        "vlan": "[ERR -532] vlan is not exist!",
        "failure": "[ERR -500] operation failed!",
    }
    _GPON = ("gpononu",)
    _QINQ = ("qinq",)
    commands = [
        (("user",), r"enable", "c_enable"),
        (("admin", "gpononu", "epononu", "qinq"), r"cd \.\.", "c_up"),
        (("admin",), r"cd (?P<d>gpononu|epononu)", "c_cd"),
        (("epononu",), r"cd (?P<d>qinq)", "c_cd"),
        (_GPON, r"show discovery slot all link all", "c_discovery"),
        (_GPON, rf"show discovery {_SLP}", "c_discovery"),
        (_GPON, rf"show authorization {_SLP}", "c_authorization"),
        (
            _GPON,
            r"set whitelist phy_addr address (?P<sn>\S+) password null action"
            rf" (?P<act>add|delete) {_SLP} onu (?P<o>\d+) type (?P<t>\S+)",
            "c_whitelist",
        ),
        (_GPON, rf"show onu_state {_SLP} onulist (?P<o>\d+)", "c_onu_state"),
        (_GPON, rf"set onu_state {_SLP} onu (?P<o>\d+) state (?P<st>enable|disable)", "c_set_onu"),
        (_GPON, rf"reset {_SLP} onulist (?P<o>\d+)", "c_reset"),
        (_GPON, rf"set pon_state {_SLP} state (?P<st>enable|disable)", "c_set_pon"),
        (_GPON, rf"show pon_state {_SLP}", "c_pon_state"),
        (
            _QINQ,
            r"set epon slot (?P<s>\d+) pon (?P<p>\d+) onu (?P<o>\d+) port 1 service number 1",
            "c_service_number",
        ),
        (
            _QINQ,
            r"set epon slot (?P<s>\d+) pon (?P<p>\d+) onu (?P<o>\d+) port 1 service 1"
            r" vlan_mode tag null 33024 (?P<v>\d+)",
            "c_service_vlan",
        ),
        (_QINQ, r"apply onu (?P<s>\d+) (?P<p>\d+) (?P<o>\d+) vlan", "c_apply"),
        (
            _QINQ,
            r"set wancfg slot (?P<s>\d+) (?P<p>\d+) (?P<o>\d+) index 1 mode internet type route"
            r" (?P<v>\d+) 0 nat enable qos disable dsp pppoe proxy disable (?P<u>\S+)"
            r" (?P<pw>\S+) null auto active enable",
            "c_wan_pppoe",
        ),
        (
            _QINQ,
            r"set wancfg slot (?P<s>\d+) (?P<p>\d+) (?P<o>\d+) index 1 mode internet type bridge"
            r" (?P<v>\d+) 0 nat disable qos disable dsp dhcp active enable",
            "c_wan_bridge",
        ),
        (_QINQ, r"apply wancfg slot (?P<s>\d+) (?P<p>\d+) (?P<o>\d+)", "c_apply"),
    ]

    def prompt(self) -> str:
        return {
            "user": "User>",
            "admin": "Admin#",
            "gpononu": "Admin\\gpononu#",
            "epononu": "Admin\\epononu#",
            "qinq": "Admin\\epononu\\qinq#",
        }[self.mode]

    # --- the tree ----------------------------------------------------------------------
    def c_enable(self) -> Reply:
        def check(typed: str) -> Reply:
            want = self.enable_password or ""
            if not secrets.compare_digest(typed.encode(), want.encode()):
                return Reply("Bad Password!\nPassword:", password=check)  # asks again
            self.mode = "admin"
            return Reply("")

        return Reply("Password:", password=check)

    def c_cd(self, d: str) -> str:
        self.mode = d
        return ""

    def c_up(self) -> str:
        self.mode = {"qinq": "epononu"}.get(self.mode, "admin")
        return ""

    # --- reading -----------------------------------------------------------------------
    def _where(self, s: str, p: str) -> tuple[int, int]:
        """CLI slot / link (links from 1) → topology slot / port (ports from 0)."""
        slot, port = int(s), int(p) - 1
        self.backend.pon(slot, port)  # not_found for a slot or link that does not exist
        return slot, port

    def c_discovery(self, s: str | None = None, p: str | None = None) -> str:
        found = self.backend.autofind()
        out = []
        ports = sorted(self.backend.pon_of) if s is None else [self._where(s, str(p))]
        for slot, port in ports:
            here = [(sn, model) for s, p, sn, model in found if (s, p) == (slot, port)]
            out.append(
                f"-----  ONU Unauth Table ,SLOT={slot} PON={port + 1} ,ITEM={len(here)}-----"
            )
            if here:
                out.append(" No  OnuType        PhyId        PhyPwd     LogicId    LogicPwd   Why")
                out.append(" --- -------------- ------------ ---------- ---------- ---------- ---")
                for i, (sn, model) in enumerate(here, 1):
                    out.append(
                        f" {i:<3} {model:<14} {fh_serial(sn):<12} {'':<10} {'':<10} {'':<10} 1"
                    )
        return "\n".join(out + [_OK])

    def c_authorization(self, s: str, p: str) -> str:
        rows = self.backend.configured(*self._where(s, p))
        out = [
            f"-----  ONU Auth Table, SLOT = {s}, PON = {p}, ITEM = {len(rows)} -----",
            "A: Authorized  P: Preauthorized  R: System Reserved",
            "Slot Pon Onu OnuType        ST Lic OST PhyId        PhyPwd     LogicId    LogicPwd",
            "---- --- --- -------------- -- --- --- ------------ ---------- ---------- ----------",
        ]
        for r in rows:
            ost = "up" if r["online"] else "dn"
            out.append(
                f"{s:<4} {p:<3} {r['onu_id']:<3} {r['model']:<14} A  1   {ost:<3} "
                f"{fh_serial(r['serial'])}"
            )
        return "\n".join(out + [_OK])

    def c_onu_state(self, s: str, p: str, o: str) -> str:
        r = self.backend.onu(*self._where(s, p), int(o))
        return "\n".join(
            [
                f"slot {s} link {p} onu {o}",
                f"  admin state : {'enable' if r['enabled'] else 'disable'}",
                f"  run state   : {'up' if r['online'] else 'down'}",
                f"  phy_id      : {fh_serial(r['serial'])}",
                f"  onu type    : {r['model']}",
                _OK,
            ]
        )

    def c_pon_state(self, s: str, p: str) -> str:
        on = self.backend.port_enabled(*self._where(s, p))
        return f"slot {s} link {p}\n  admin state : {'enable' if on else 'disable'}\n{_OK}"

    # --- changing ----------------------------------------------------------------------
    def c_whitelist(self, sn: str, act: str, s: str, p: str, o: str, t: str) -> str:
        slot, port = self._where(s, p)
        if act == "delete":
            self.backend.delete_onu(slot, port, int(o))
            return _OK
        if sn != fh_serial(sn):  # the OLT compares the text as it shows it
            raise ConfigError("unknown_serial", sn)
        waiting = {x[2]: x[3] for x in self.backend.autofind() if (x[0], x[1]) == (slot, port)}
        if sn.upper() in waiting and waiting[sn.upper()].upper() != t.upper():
            raise ConfigError("profile", f"type {t}")
        self.backend.add_onu(slot, port, sn.upper(), int(o), (1, 128))
        return _OK

    def c_set_onu(self, s: str, p: str, o: str, st: str) -> str:
        self.backend.set_onu_enabled(*self._where(s, p), int(o), st == "enable")
        return _OK

    def c_reset(self, s: str, p: str, o: str) -> str:
        self.backend.reboot(*self._where(s, p), int(o))
        return _OK

    def c_set_pon(self, s: str, p: str, st: str) -> str:
        slot, port = self._where(s, p)
        self.backend.set_port_enabled(slot, port, st == "enable")
        return _OK

    def c_service_number(self, s: str, p: str, o: str) -> str:
        self.backend.onu(*self._where(s, p), int(o))
        self.backend.check_busy()
        return _OK

    def c_service_vlan(self, s: str, p: str, o: str, v: str) -> str:
        self.backend.add_service_port(*self._where(s, p), int(o), int(v))
        return _OK

    def c_apply(self, s: str, p: str, o: str) -> str:
        self.backend.onu(*self._where(s, p), int(o))
        return _OK

    def c_wan_pppoe(self, s: str, p: str, o: str, v: str, u: str, pw: str) -> str:
        self.backend.update(*self._where(s, p), int(o), mode="pppoe", vlan=int(v), username=u,
                            password=pw)  # fmt: skip
        return _OK

    def c_wan_bridge(self, s: str, p: str, o: str, v: str) -> str:
        self.backend.update(*self._where(s, p), int(o), mode="bridge", vlan=int(v))
        return _OK
