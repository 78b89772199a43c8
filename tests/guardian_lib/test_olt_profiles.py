"""OLT CLI profiles, command rendering, serials, inventories and secrets (no network)."""

from __future__ import annotations

import os

import pytest
import yaml

from guardian_lib.errors import ConfigError
from guardian_lib.olt.changes import Change
from guardian_lib.olt.driver import normalize_serial, plan, serial_to_hex
from guardian_lib.olt.inventory import load_cli_inventory, pppoe_account, read_secret_file
from guardian_lib.olt.profiles import (
    builtin_cli_profiles_dir,
    load_cli_profile,
    load_cli_profiles,
    render,
)

VALUES = {"slot": 1, "port": 2, "onu_id": 5, "serial": "ZTEG1A2B3C4D",
          "serial_hex": "5A5445471A2B3C4D", "serial_lower": "ZTEG1a2b3c4d", "vlan": 100,
          "desc": "C-1", "onu_type": "HG6145E",
          "pppoe_username": "u@isp", "pppoe_password": "pw-1", "wan": "pppoe"}  # fmt: skip


def test_shipped_profiles_load_and_render_every_operation():
    profiles = load_cli_profiles()
    assert {"huawei_ma5800", "zte_c300", "zte_c600", "fiberhome_an5516"} <= set(profiles)
    for prof in profiles.values():
        for name in prof.operations:
            cmds = plan(prof, name, VALUES)
            assert cmds and all("{" not in c for c in cmds), (prof.name, name, cmds)
            assert not any("pw-1" in c for c in cmds)
        assert prof.classify("nothing wrong here") is None


def test_error_patterns_classify_vendor_answers():
    profiles = load_cli_profiles()
    hw, zte = profiles["huawei_ma5800"], profiles["zte_c300"]
    assert hw.classify("  Failure: System is busy, please retry later")[0] == "busy"
    assert hw.classify("  % Unknown command, the error locates at '^'")[0] == "syntax"
    assert hw.classify("  Failure: SN already exists") == ("exists", "Failure: SN already exists")
    assert zte.classify("%Code 32307-GPONSRV : The ONU already exists")[0] == "exists"
    assert zte.classify("% Invalid input detected at '^' marker.")[0] == "syntax"
    fh = profiles["fiberhome_an5516"]
    assert fh.classify("[ERR -598] physical address is error!")[0] == "unknown_serial"
    assert fh.classify("Unknown command.")[0] == "syntax"
    assert fh.classify("Command execute success.") is None


def test_listing_sections_give_their_slot_and_port_to_the_records():
    from guardian_lib.olt.driver import parse_listing, serial_lower

    op = load_cli_profiles()["fiberhome_an5516"].operations["autofind"]
    text = (
        "-----  ONU Unauth Table ,SLOT=12 PON=1 ,ITEM=0-----\n"
        "-----  ONU Unauth Table ,SLOT=12 PON=3 ,ITEM=2-----\n"
        " No  OnuType        PhyId        PhyPwd     Why\n"
        " 1   HG6243C        FHTT91fbc5e8            1\n"
        " 2   5506-04-FA     HWTC746ebb4c            1\n"
        "-----  ONU Unauth Table ,SLOT=13 PON=16 ,ITEM=1-----\n"
        " 1   HG260          ZTEG00a0b0c0            1\n"
    )
    recs = parse_listing(text, op.parse, op.section)
    assert [(r["slot"], r["port"], r["serial"], r["model"]) for r in recs] == [
        ("12", "3", "FHTT91fbc5e8", "HG6243C"), ("12", "3", "HWTC746ebb4c", "5506-04-FA"),
        ("13", "16", "ZTEG00a0b0c0", "HG260"),
    ]  # fmt: skip
    assert serial_lower("fhtt91FBC5E8") == "FHTT91fbc5e8"


def test_a_dry_run_leaves_only_the_onu_id_open():
    prof = load_cli_profiles()["huawei_ma5800"]
    vals = {k: v for k, v in VALUES.items() if k != "onu_id"}
    cmds = plan(prof, "authorize", vals)
    assert any("{onu_id}" in c for c in cmds)
    with pytest.raises(ValueError, match=r"needs a value for \{pppoe_username\}"):
        plan(prof, "authorize", {k: v for k, v in vals.items() if k != "pppoe_username"})


def test_render_refuses_values_that_could_add_a_command():
    tmpl = "ont add {port} sn-auth {serial_hex} desc {desc}"
    ok = render(tmpl, {"port": 0, "serial_hex": "485754431A2B3C4D", "desc": "C-1"})
    assert ok == "ont add 0 sn-auth 485754431A2B3C4D desc C-1"
    for bad in ("a\nont delete 0 all", "x;reboot", "two words", ""):
        with pytest.raises(ValueError, match="desc = .* is not allowed"):
            render(tmpl, {"port": 0, "serial_hex": "485754431A2B3C4D", "desc": bad})
    with pytest.raises(ValueError, match=r"needs a value for \{port\}"):
        render(tmpl, {"serial_hex": "485754431A2B3C4D", "desc": "x"})
    with pytest.raises(ValueError, match=r"pppoe_password = \*\*\*\*\*\*"):
        render("p {pppoe_password}", {"pppoe_password": "has space"})
    masked = render("p {pppoe_password}", {"pppoe_password": "pw"}, mask_secrets=True)
    assert masked == "p ******"


def test_serials():
    assert normalize_serial("hwtc-1a2b3c4d") == "HWTC1A2B3C4D"
    assert normalize_serial("485754431A2B3C4D") == "HWTC1A2B3C4D"
    assert serial_to_hex("HWTC1A2B3C4D") == "485754431A2B3C4D"
    with pytest.raises(ValueError, match="expected a GPON serial"):
        normalize_serial("HWTC 1A2B")


def test_a_broken_profile_names_file_and_field(tmp_path):
    src = yaml.safe_load((builtin_cli_profiles_dir() / "zte_c300.yaml").read_text())
    del src["operations"]["reboot"]
    src["prompt"] = "(unclosed"
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(src))
    with pytest.raises(ConfigError) as err:
        load_cli_profile(p)
    msg = str(err.value)
    assert "bad.yaml: invalid OLT CLI profile: prompt" in msg
    assert "missing operations ['reboot']" in msg


def test_change_validation_names_the_field():
    with pytest.raises(ValueError, match="row 3: vlan must be an integer, got 'abc'"):
        Change("O", "authorize", {"slot": 1, "port": 0, "serial": "X", "vlan": "abc"}).validated(
            "row 3"
        )
    with pytest.raises(ValueError, match="wan pppoe needs the PPPoE account's secret key"):
        Change("O", "authorize", {"slot": 1, "port": 0, "serial": "X", "vlan": 1,
                                  "wan": "pppoe"}).validated()  # fmt: skip
    with pytest.raises(ValueError, match="operation 'format-disk' unknown"):
        Change("O", "format-disk", {}).validated()


def test_secrets_only_from_owner_readable_files_and_env(tmp_path):
    sec = tmp_path / "s.yaml"
    sec.write_text(
        "noc: {username: admin, password: pw}\npppoe: {c1: {username: u1, password: p1}}\n"
    )
    os.chmod(sec, 0o644)
    with pytest.raises(ConfigError, match="mode 0644; it must be readable by its owner only"):
        read_secret_file(sec)
    os.chmod(sec, 0o600)
    assert pppoe_account("c1", sec, environ={}) == ("u1", "p1")
    env = {"GUARDIAN_OLT_PPPOE_C2_USERNAME": "u2", "GUARDIAN_OLT_PPPOE_C2_PASSWORD": "p2"}
    assert pppoe_account("c2", sec, environ=env) == ("u2", "p2")
    with pytest.raises(
        ConfigError,
        match=r"PPPoE account .c3. incomplete: missing \[.username., .password.\]; .*GUARDIAN_OLT_PPPOE_C3_USERNAME.* or key pppoe\.c3\.\{username,password\} in .*s\.yaml",
    ) as err:
        pppoe_account("c3", sec, environ={})
    assert "p1" not in str(err.value)
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump({"secrets_file": "s.yaml", "olts": [
        {"olt_id": "A", "host": "10.0.0.1", "profile": "zte_c300", "credentials": "noc"},
        {"olt_id": "B", "host": "10.0.0.2", "profile": "nokia", "credentials": "other"}]}))  # fmt: skip
    loaded = load_cli_inventory(inv)
    t = loaded.target("A", environ={})
    assert (t.username, t.password, t.port) == ("admin", "pw", 22) and "pw" not in repr(t)
    with pytest.raises(ConfigError, match="GUARDIAN_OLT_OTHER_USERNAME"):
        loaded.target("B", environ={})
    with pytest.raises(ConfigError, match="unknown CLI profile 'nokia'"):
        loaded.profile_of("B")
    with pytest.raises(ConfigError, match="no OLT 'C'"):
        loaded.entry("C")


def test_snmp_set_credentials_varbinds_and_opt_in(tmp_path):
    from guardian_lib.olt.snmp_set import format_varbinds, set_varbinds

    sec = tmp_path / "s.yaml"
    sec.write_text("rw: {v3_user: guardian-rw, auth_key: authkey-1, priv_key: privkey-1}\n")
    os.chmod(sec, 0o600)
    inv = tmp_path / "inv.yaml"
    inv.write_text(yaml.safe_dump({"secrets_file": "s.yaml", "olts": [
        {"olt_id": "H", "host": "10.0.0.1", "profile": "huawei_ma5800", "credentials": "noc",
         "snmp_set": {"version": "3", "credentials": "rw"}},
        {"olt_id": "Z", "host": "10.0.0.2", "profile": "zte_c300", "credentials": "noc",
         "snmp_set": {"host": "10.9.9.9", "port": 1161, "credentials": "zw"}},
        {"olt_id": "F", "host": "10.0.0.3", "profile": "fiberhome_an5516",
         "credentials": "noc"}]}))  # fmt: skip
    loaded = load_cli_inventory(inv)
    host, port, creds, _ = loaded.snmp_set_target("H", environ={})
    assert (host, port, creds.version, creds.user) == ("10.0.0.1", 161, "3", "guardian-rw")
    assert "authkey-1" not in repr(creds)
    with pytest.raises(ConfigError, match="GUARDIAN_OLT_ZW_WRITE_COMMUNITY") as err:
        loaded.snmp_set_target("Z", environ={})
    assert "authkey-1" not in str(err.value)
    env = {"GUARDIAN_OLT_ZW_WRITE_COMMUNITY": "w-secret"}
    host, port, creds, _ = loaded.snmp_set_target("Z", environ=env)
    assert (host, port, creds.version, creds.community) == ("10.9.9.9", 1161, "2c", "w-secret")
    with pytest.raises(ConfigError, match="OLT F: SNMP SET is not enabled"):
        loaded.snmp_set_target("F", environ={})

    hw = loaded.profile_of("H")
    vbs = set_varbinds(hw, "reboot", {"slot": 2, "port": 3, "onu_id": 7})
    ifx = 0xFA000000 + 2 * 8192 + 3 * 256  # the PON ifIndex the poller reads
    assert vbs == [(f"1.3.6.1.4.1.2011.6.128.1.1.2.46.1.2.{ifx}.7", 1)]
    assert format_varbinds(vbs) == [f"SET 1.3.6.1.4.1.2011.6.128.1.1.2.46.1.2.{ifx}.7 = INTEGER 1"]
    fh = loaded.profile_of("F")  # FiberHome link 2 of slot 11: slot·2^25 + link·2^19
    assert set_varbinds(fh, "port_disable", {"slot": 11, "port": 2}) == [
        (f"1.3.6.1.2.1.2.2.1.7.{11 * 2**25 + 2 * 2**19}", 2)
    ]
    with pytest.raises(ValueError, match="needs onu_id"):
        set_varbinds(hw, "onu_disable", {"slot": 2, "port": 3})
    with pytest.raises(ValueError, match="no SNMP SET for reboot"):
        set_varbinds(fh, "reboot", {"slot": 1, "port": 1, "onu_id": 1})
    with pytest.raises(ValueError, match="via must be cli or snmp"):
        Change("H", "port-disable", {"slot": 1, "port": 1, "via": "tl1"}).validated()


def test_telnet_channel_refuses_options_and_strips_split_iac_sequences():
    import asyncio

    from guardian_lib.olt.telnet import DO, IAC, SB, SE, WILL, WONT, TelnetChannel

    class Writer:
        def __init__(self) -> None:
            self.sent = b""

        def write(self, data: bytes) -> None:
            self.sent += data

    async def go():
        reader = asyncio.StreamReader()
        writer = Writer()
        chan = TelnetChannel(reader, writer)  # type: ignore[arg-type]
        # DO ECHO, WILL SGA, a sub-negotiation, an escaped 255, and a DO cut in two reads
        reader.feed_data(bytes([IAC, DO, 1]) + b"Log" + bytes([IAC, WILL, 3, IAC, SB, 24, 1]))
        reader.feed_data(bytes([IAC, SE]) + b"in:" + bytes([IAC, IAC]) + bytes([IAC, DO]))
        reader.feed_data(bytes([31]) + b" x")
        reader.feed_eof()
        text = ""
        while chunk := await chan.read():
            text += chunk
        chan.write("a\xff\n")
        return text, writer.sent

    text, sent = asyncio.run(go())
    assert text == "Login:\ufffd x"  # the data byte 255 is kept (not UTF-8: replaced)
    assert sent.startswith(bytes([IAC, WONT, 1, IAC, 254, 3, IAC, WONT, 31]))
    assert sent.endswith(b"a\xc3\xbf\r\n")  # UTF-8 text never holds a 255 (IAC) byte


def test_telnet_channel_refuses_an_option_sequence_that_never_ends():
    """A hostile peer opening a sub-negotiation and never closing it cannot make the
    channel keep every byte it sends: past 4 KiB the connection is refused."""
    import asyncio

    from guardian_lib.olt.telnet import IAC, SB, TelnetChannel

    class Writer:
        def write(self, data: bytes) -> None:
            pass

    async def go():
        reader = asyncio.StreamReader()
        chan = TelnetChannel(reader, Writer())  # type: ignore[arg-type]
        reader.feed_data(b"ok" + bytes([IAC, SB, 24]))
        for _ in range(10):
            reader.feed_data(b"x" * 1024)
        reader.feed_eof()
        out = ""
        while chunk := await chan.read(1024):
            out += chunk
        return out

    with pytest.raises(ConnectionError, match="longer than 4096 bytes"):
        asyncio.run(go())


@pytest.mark.parametrize(
    ("banner", "message"),
    [(b"x" * 70_000, "no login question in the first 64 KiB"),
     (b"Welcome\r\n", "connection closed during login")],
)  # fmt: skip
def test_a_peer_that_is_no_telnet_login_is_a_connection_error_not_a_refused_password(
    banner, message
):
    """A banner without a login question (or a peer that hangs up before asking) says
    nothing about the credentials: the operator is told the connection failed, not that
    the password is wrong."""
    import asyncio

    from guardian_lib.olt.session import CliSession, OltConnectError, SshTarget

    async def go():
        async def serve(reader, writer):
            writer.write(banner)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        target = SshTarget("OLT-T", "127.0.0.1", port, "u", "pw", insecure=True,
                           timeout_s=5.0, protocol="telnet")  # fmt: skip
        try:
            async with CliSession(target, load_cli_profiles()["fiberhome_an5516"]):
                pass
        finally:
            server.close()
            await server.wait_closed()

    with pytest.raises(OltConnectError, match=message):
        asyncio.run(go())
