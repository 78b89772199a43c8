"""OLT agents: GET / GETNEXT / GETBULK, v2c and v3 authPriv, bad input, snmprec loading."""

from __future__ import annotations

import asyncio
import socket

import pytest

from acs_emulator.olt.agent import AgentPool, AgentSpec, V3User
from acs_emulator.olt.mib import INTEGER, OCTET_STRING, OidTable, load_snmprec
from guardian_lib.snmp.errors import SnmpAuthError, SnmpTimeoutError
from guardian_lib.snmp.fast import FastV2cSession
from guardian_lib.snmp.transport import SnmpCredentials, SnmpSession, new_engine

USER = V3User("ops", "auth-pass-1", "priv-pass-1")
TABLE = OidTable(
    [((1, 3, 6, 1, 2, 1, 1, 1, 0), (OCTET_STRING, b"test agent"))]
    + [
        ((1, 3, 6, 1, 4, 1, 9, 1, c, i), (INTEGER, c * 1000 + i))
        for c in (1, 2)
        for i in range(1, 151)
    ]
)


@pytest.fixture(scope="module", params=[True, False], ids=["fast-v2c-agent", "pysnmp-agent"])
def port(request):
    spec = AgentSpec("t", lambda: TABLE, community="pub", v3_users=[USER], fast_v2c=request.param)
    pool = AgentPool([spec])
    pool.start_in_thread()
    yield pool.ports["t"]
    pool.stop_thread()


def _run(coro):
    return asyncio.run(coro)


def _session(port: int, creds: SnmpCredentials, timeout_s: float = 1.0) -> SnmpSession:
    return SnmpSession(new_engine(), "t", "127.0.0.1", port, creds, timeout_s=timeout_s, retries=0)


V2 = SnmpCredentials("2c", community="pub")


def _fast(port: int) -> FastV2cSession:
    return FastV2cSession("t", "127.0.0.1", port, V2, timeout_s=1.0, retries=0)


V3 = SnmpCredentials("3", user="ops", auth_key="auth-pass-1", priv_key="priv-pass-1")


@pytest.mark.parametrize("client", ["fast-v2c", "pysnmp-v2c", "pysnmp-v3-authPriv-SHA-AES"])
def test_get_and_bulk_walk(port, client):
    async def go():
        s = {
            "fast-v2c": lambda: _fast(port),
            "pysnmp-v2c": lambda: _session(port, V2),
            "pysnmp-v3-authPriv-SHA-AES": lambda: _session(port, V3),
        }[client]()
        got = await s.get(["1.3.6.1.2.1.1.1.0", "1.3.6.1.2.1.1.5.0"])
        rows = await s.walk_columns(["1.3.6.1.4.1.9.1.1", "1.3.6.1.4.1.9.1.2"], 40)
        return got, rows, s.requests

    got, rows, requests = _run(go())
    assert got == {"1.3.6.1.2.1.1.1.0": b"test agent", "1.3.6.1.2.1.1.5.0": None}
    assert [v for _, v in rows["1.3.6.1.4.1.9.1.1"]] == [1000 + i for i in range(1, 151)]
    assert rows["1.3.6.1.4.1.9.1.2"][-1] == ((150,), 2150)
    assert requests <= 6  # both columns advance in the same GETBULK


def test_getnext_past_end_is_end_of_mib(port):
    async def go():
        s = _session(port, V2)
        return await s.walk_columns(["1.3.6.1.4.1.9.1.2"], 1000)

    rows = _run(go())
    assert len(rows["1.3.6.1.4.1.9.1.2"]) == 150


@pytest.mark.parametrize(
    ("creds", "match"),
    [
        (SnmpCredentials("3", user="ops", auth_key="wrong-pass", priv_key="priv-pass-1"), "digest"),
        (SnmpCredentials("3", user="eve", auth_key="auth-pass-1", priv_key="x" * 8), "USM user"),
    ],
)
def test_v3_wrong_credentials(port, creds, match):
    with pytest.raises(SnmpAuthError, match=rf"OLT t .*authentication failed.*{match}"):
        _run(_session(port, creds).get(["1.3.6.1.2.1.1.1.0"]))


def test_wrong_community_times_out_with_hint(port):
    with pytest.raises(SnmpTimeoutError, match="wrong community"):
        _run(
            _session(port, SnmpCredentials("2c", community="nope"), 0.3).get(["1.3.6.1.2.1.1.1.0"])
        )


def test_agent_survives_garbage_datagrams(port):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for junk in (b"", b"\x00", b"\x30\x82\xff\xff", b"GET / HTTP/1.1\r\n\r\n", bytes(1400)):
            s.sendto(junk, ("127.0.0.1", port))
    got = _run(_session(port, V2).get(["1.3.6.1.2.1.1.1.0"]))
    assert got["1.3.6.1.2.1.1.1.0"] == b"test agent"
    assert _run(_session(port, V3).get(["1.3.6.1.2.1.1.1.0"]))  # v3 path unharmed too


def test_oid_table_next():
    assert TABLE.next((1, 3, 6, 1, 4, 1, 9, 1, 1))[0] == (1, 3, 6, 1, 4, 1, 9, 1, 1, 1)
    assert TABLE.next((1, 3, 6, 1, 4, 1, 9, 1, 2, 150)) is None


def test_load_snmprec(tmp_path):
    p = tmp_path / "x.snmprec"
    p.write_text(
        "1.3.6.1.2.1.1.1.0|4|hello\n1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.9\n1.3.6.1.9|4x|4142\n"
    )
    t = load_snmprec(p)
    assert t.get((1, 3, 6, 1, 9)) == (4, b"AB")
    assert t.get((1, 3, 6, 1, 2, 1, 1, 2, 0)) == (6, "1.3.6.1.4.1.9")
    p.write_text("1.3.6.1.2.1.1.1.0|2|notanumber\n")
    with pytest.raises(ValueError, match=r"x\.snmprec:1: malformed snmprec record"):
        load_snmprec(p)
