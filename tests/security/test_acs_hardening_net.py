"""Each network finding of the hostile-input probe (issue 14, points 1-5 and the
network part of 8), proven against real listeners on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import sqlite3
import stat

import aiohttp
import pytest
import typer
from aiohttp import web
from typer.testing import CliRunner

from acs_emulator.cpe import CpeAgent, CpeFleet, make_identities
from acs_emulator.cpe.agent import SessionError
from acs_emulator.cwmp import AcsConfig, AuthPolicy, soap
from acs_emulator.cwmp.auth import (
    DEV_CR_PASSWORD,
    DevPasswordRefused,
    digest_authorization,
    parse_auth_header,
)
from acs_emulator.cwmp.cli import register as register_acs
from acs_emulator.cwmp.service import AcsService, NbiExposureError
from acs_emulator.cwmp.store import DeviceStore, StoreError
from acs_emulator.cwmp.testing import RawCpe, http_client, inform_xml, run, running_acs

A, B, C = (f"00259E-HG8245H-{s}" for s in ("A", "B", "C"))
LEGACY = "00259E-HG8245H-LEGACY"
CR_URL = "Device.ManagementServer.ConnectionRequestURL"
CR_USER = "Device.ManagementServer.ConnectionRequestUsername"


def _basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


# -- 1. CPE authentication bound to the DeviceId ------------------------------------------
def test_credentials_only_authenticate_the_deviceid_of_their_inform():
    passwords = {A: "pw-a", B: "pw-b"}
    policy = AuthPolicy(mode="digest", passwords=passwords.get, per_device={LEGACY: "none"})

    async def go():
        async with running_acs(AcsConfig(auth=policy)) as svc, http_client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            status, _, headers = await cpe.post(inform_xml(serial="B"))
            assert status == 401
            challenge_b = headers["WWW-Authenticate"]
            # A's valid credentials on an Inform whose DeviceId is B.
            a_creds = digest_authorization(challenge_b, "POST", "/", A, "pw-a")
            assert (await cpe.post(inform_xml(serial="B"), {"Authorization": a_creds}))[0] == 401
            # A nonce issued for B's Inform does not serve A's, even with A's password.
            assert (await cpe.post(inform_xml(serial="A"), {"Authorization": a_creds}))[0] == 401
            # The legacy device's "none" override is not a password-less key to others.
            no_pw = f'Digest username="{LEGACY}", realm="cwmp", nonce="x", uri="/", response=""'
            for serial in ("B", "C"):
                got = await cpe.post(inform_xml(serial=serial), {"Authorization": no_pw})
                assert got[0] == 401
            # Each device with its own credentials, and the legacy device itself, pass.
            _, _, headers = await cpe.post(inform_xml(serial="B"))
            b_creds = digest_authorization(headers["WWW-Authenticate"], "POST", "/", B, "pw-b")
            assert (await cpe.post(inform_xml(serial="B"), {"Authorization": b_creds}))[0] == 200
            assert (await cpe.post(b""))[0] == 204
            legacy = RawCpe(http, svc.cwmp_url)
            assert (await legacy.post(inform_xml(serial="LEGACY")))[0] == 200

    run(go())


def test_basic_credentials_only_authenticate_their_own_device():
    policy = AuthPolicy(mode="basic", passwords={A: "pw-a", B: "pw-b"}.get)

    async def go():
        async with running_acs(AcsConfig(auth=policy)) as svc, http_client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            bad = {"Authorization": _basic(A, "pw-a")}
            assert (await cpe.post(inform_xml(serial="B"), bad))[0] == 401
            assert (await cpe.post(inform_xml(serial="A"), bad))[0] == 200

    run(go())


# -- 2. bounded store, background loops that survive ----------------------------------------
def test_sweeper_survives_a_document_that_cannot_be_written(monkeypatch):
    async def go():
        config = AcsConfig(session_timeout_s=0.3)
        async with running_acs(config) as svc, http_client() as http:
            store = svc.acs.store
            real_put = store._put

            def put(table, row_id, doc):
                if row_id == A:
                    raise RecursionError("maximum recursion depth exceeded")
                real_put(table, row_id, doc)

            monkeypatch.setattr(store, "_put", put)
            for serial in ("A", "B"):  # Informs with no empty POST: sessions stay open
                assert (await RawCpe(http, svc.cwmp_url).post(inform_xml(serial=serial)))[0] == 200
            for _ in range(200):
                if not svc.acs.sessions:
                    break
                await asyncio.sleep(0.02)
            assert not svc.acs.sessions  # both expired although A's write failed
            assert svc.acs.stats["background_errors"] >= 1
            rows = {r[0] for r in store._db.execute("SELECT id FROM devices")}
            assert B in rows and A not in rows and A in store.devices  # kept in memory
            assert svc.acs._sweeper is not None and not svc.acs._sweeper.done()
            async with http.get(svc.nbi_url + "/devices/") as r:
                assert r.status == 200 and len(await r.json()) == 2

    run(go())


def test_store_refuses_what_it_cannot_bound():
    from acs_emulator.cwmp.store import set_parameter

    doc: dict = {"_id": "x"}
    for name, value, phrase in [
        ("Device." + ".".join(["a"] * 3000), "1", "256 characters"),
        ("Device." + ".".join(["a"] * 40), "1", "segments"),
        ("Device.DeviceInfo.Description", "v" * 20000, "16384"),
        ("Device._tags", "x", "'_'"),
    ]:
        with pytest.raises(StoreError, match=phrase):
            set_parameter(doc, name, value)
    assert doc == {"_id": "x"}


# -- 3. bounded queries ------------------------------------------------------------------------
def test_query_evaluation_has_a_time_budget():
    store = DeviceStore()
    store.save_device({"_id": A, "_tags": []})
    assert [d["_id"] for d in store.find("devices", {"_id": {"$regex": "^00259E"}})] == [A]
    with pytest.raises(StoreError, match="time budget"):
        store.find("devices", {"_id": {"$regex": "^00259E"}}, budget_s=0.0)


def test_redos_query_is_refused_while_cwmp_keeps_serving():
    async def go():
        async with running_acs() as svc, http_client() as http:
            await RawCpe(http, svc.cwmp_url).open_session()
            q = {"_id": {"$regex": "^(" + "a" * 20 + "+)+$"}}
            query = http.get(svc.nbi_url + "/devices/", params={"query": json.dumps(q)})
            inform = RawCpe(http, svc.cwmp_url).post(inform_xml(serial="OTHER"))
            (r, (status, _, _)) = await asyncio.gather(query, inform)
            async with r:
                assert r.status == 400 and "groups" in await r.text()
            assert status == 200

    run(go())


# -- 4. connection requests ---------------------------------------------------------------------
class _Listener:
    """A connection-request endpoint that records what the ACS sends it."""

    def __init__(self, host: str) -> None:
        self.host, self.seen = host, []

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.seen.append(auth)
        if auth is None:
            return web.Response(
                status=401,
                headers={"WWW-Authenticate": 'Digest realm="cr", nonce="n1", qop="auth"'},
            )
        return web.Response(status=200)

    async def __aenter__(self) -> str:
        app = web.Application()
        app.router.add_get("/cr", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://{self.host}:{port}/cr"

    async def __aexit__(self, *exc: object) -> None:
        await self.runner.cleanup()


async def _inform_with_cr(http, svc, serial: str, url: str, user: str) -> None:
    params = [(CR_URL, url, "xsd:string"), (CR_USER, user, "xsd:string")]
    assert (await RawCpe(http, svc.cwmp_url).open_session(inform_xml(serial, params=params))) == b""


def _md5(s: str) -> str:
    return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()


def test_connection_request_uses_the_acs_credentials_of_the_device_not_the_reported_user():
    config = AcsConfig(cr_password=lambda did: f"pw-{did}")

    async def go():
        listener = _Listener("127.0.0.1")
        async with running_acs(config) as svc, http_client() as http, listener as url:
            await _inform_with_cr(http, svc, "A", url, user=B)  # A names B as its username
            async with http.post(f"{svc.nbi_url}/devices/{A}/tasks?connection_request") as r:
                assert r.status == 200
            header = next(h for h in listener.seen if h)
            assert B not in header
            _, p = parse_auth_header(header)
            assert p["username"] == A
            ha1 = _md5(f"{A}:cr:pw-{A}")  # A's own password, as the ACS knows it
            want = _md5(f"{ha1}:n1:{p['nc']}:{p['cnonce']}:auth:{_md5('GET:/cr')}")
            assert p["response"] == want

    run(go())


def test_connection_request_goes_only_to_the_inform_source_or_an_allowed_host():
    async def go(allowed: list[str]) -> tuple[int, str, list]:
        listener = _Listener("127.0.0.2")  # not the address the CPE informs from
        config = AcsConfig(cr_allowed_hosts=allowed)
        async with running_acs(config) as svc, http_client() as http, listener as url:
            await _inform_with_cr(http, svc, "A", url, user=A)
            async with http.post(f"{svc.nbi_url}/devices/{A}/tasks?connection_request") as r:
                return r.status, await r.text(), listener.seen

    status, text, seen = run(go([]))
    assert status == 504 and "refused" in text and "127.0.0.2" in text
    assert seen == []  # nothing, not even an unauthenticated GET, reached it
    status, _, seen = run(go(["127.0.0.0/8"]))
    assert status == 200 and len(seen) == 2


def test_connection_request_url_with_credentials_or_odd_scheme_is_refused():
    async def go(url: str) -> str:
        async with running_acs() as svc, http_client() as http:
            await _inform_with_cr(http, svc, "A", url, user=A)
            return (await svc.acs.connection_request(A)) or ""

    assert "credentials" in run(go("http://u:p@127.0.0.1:9/cr"))
    assert "http(s)" in run(go("file:///etc/passwd"))


def test_cpe_listener_refuses_replayed_and_misdirected_digest_headers():
    async def go():
        ids = make_identities(2, seed=1)
        fleet = CpeFleet(ids, "http://127.0.0.1:9/", cr_password="cr-secret-1")
        await fleet.start(run_agents=False)
        try:
            a, b = (i.device_id for i in ids)
            base = f"http://127.0.0.1:{fleet.cr_port}"
            async with http_client() as http:

                async def get(path: str, header: str | None = None) -> int:
                    h = {"Authorization": header} if header else {}
                    async with http.get(base + path, headers=h) as r:
                        return r.status

                async with http.get(f"{base}/cr/{a}") as r:
                    challenge = r.headers["WWW-Authenticate"]
                header = digest_authorization(challenge, "GET", f"/cr/{a}", a, "cr-secret-1")
                assert [await get(f"/cr/{a}", header) for _ in range(3)] == [200, 401, 401]
                # A fresh header for A, presented on B's path: refused (and still unused).
                async with http.get(f"{base}/cr/{a}") as r:
                    challenge = r.headers["WWW-Authenticate"]
                header = digest_authorization(challenge, "GET", f"/cr/{a}", a, "cr-secret-1")
                assert await get(f"/cr/{b}", header) == 401
                forged = digest_authorization(challenge, "GET", f"/cr/{b}", a, "cr-secret-1")
                assert await get(f"/cr/{b}", forged) == 401
                assert await get(f"/cr/{a}", header) == 200
        finally:
            await fleet.stop()

    run(go())


def test_documented_cr_password_is_refused_unless_allowed(monkeypatch, caplog):
    ids = make_identities(1)
    with pytest.raises(DevPasswordRefused, match="GUARDIAN_CPE_CR_PASSWORD"):
        CpeFleet(ids, "http://127.0.0.1:9/", cr_password=DEV_CR_PASSWORD)
    monkeypatch.setenv("GUARDIAN_CPE_CR_PASSWORD", DEV_CR_PASSWORD)
    with pytest.raises(DevPasswordRefused):
        CpeFleet(ids, "http://127.0.0.1:9/")
    with caplog.at_level(logging.WARNING):
        CpeFleet(ids, "http://127.0.0.1:9/", allow_dev_password=True)
    assert "documented development password" in caplog.text

    async def acs_side() -> str:
        async with running_acs() as svc, http_client() as http:
            await _inform_with_cr(http, svc, "A", "http://127.0.0.1:9/cr", user=A)
            return (await svc.acs.connection_request(A)) or ""

    assert "refused" in run(acs_side())  # the ACS will not send it either


# -- 5. NBI exposure -------------------------------------------------------------------------
def test_nbi_without_token_only_listens_on_loopback():
    with pytest.raises(NbiExposureError, match="bearer token"):
        AcsService(nbi_host="0.0.0.0")
    AcsService(nbi_host="0.0.0.0", nbi_token="t0k").acs.store.close()  # allowed with a token


def test_acs_serve_needs_a_token_unless_no_auth_on_loopback(monkeypatch, tmp_path):
    monkeypatch.delenv("GUARDIAN_NBI_TOKEN", raising=False)
    app = typer.Typer()
    register_acs(app)
    db = str(tmp_path / "acs.sqlite")
    res = CliRunner().invoke(app, ["acs", "serve", "--db", db])
    assert res.exit_code == 2 and "bearer token" in res.output
    args = ["acs", "serve", "--db", db, "--no-auth", "--nbi-host", "0.0.0.0"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "loopback" in res.output


def test_nbi_binds_its_own_host():
    async def go():
        async with running_acs(nbi_host="127.0.0.2") as svc, http_client() as http:
            assert svc.nbi_url.startswith("http://127.0.0.2:")
            async with http.get(svc.nbi_url + "/devices/") as r:
                assert r.status == 200
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.get(f"http://127.0.0.1:{svc.nbi_port}/devices/"):
                    pass

    run(go())


def test_queued_tasks_are_capped_per_device_and_overall():
    async def go():
        opts = {"max_tasks_per_device": 3, "max_tasks_total": 5, "retry_after_s": 7}
        async with running_acs(nbi_options=opts) as svc, http_client() as http:
            for serial in ("A", "B"):
                await RawCpe(http, svc.cwmp_url).open_session(inform_xml(serial))

            async def post(did: str, key: str | None = None):
                task = {"name": "reboot", **({"idempotencyKey": key} if key else {})}
                async with http.post(f"{svc.nbi_url}/devices/{did}/tasks", json=task) as r:
                    return r.status, await r.text(), r.headers.get("Retry-After")

            assert [(await post(A, f"k{i}"))[0] for i in range(3)] == [202, 202, 202]
            status, text, retry = await post(A)
            assert (status, retry) == (429, "7") and "limit 3" in text
            assert (await post(A, "k0"))[0] == 202  # a known key queues nothing: answered
            assert [(await post(B))[0] for _ in range(2)] == [202, 202]
            status, text, retry = await post(B)
            assert (status, retry) == (503, "7") and "limit 5" in text
            assert svc.acs.store.pending_count() == 5

    run(go())


def test_secrets_are_redacted_from_answers_and_kept_off_disk(tmp_path):
    db = tmp_path / "acs.sqlite"
    wifi = "Device.WiFi.AccessPoint.1.Security.KeyPassphrase"
    ppp = "Device.PPP.Interface.1.Password"

    async def go():
        async with running_acs(db=str(db)) as svc, http_client() as http:
            inform = inform_xml("A", params=[(wifi, "hunter2-wifi", "xsd:string")])
            await RawCpe(http, svc.cwmp_url).open_session(inform)
            task = {"name": "setParameterValues", "parameterValues": [[ppp, "ppp-secret-9"]]}
            async with http.post(f"{svc.nbi_url}/devices/{A}/tasks", json=task) as r:
                assert r.status == 202 and "ppp-secret-9" not in await r.text()
            for path in ("/tasks/", "/devices/"):
                async with http.get(svc.nbi_url + path) as r:
                    text = await r.text()
                    assert "ppp-secret-9" not in text and "hunter2-wifi" not in text
            doc = (await (await http.get(svc.nbi_url + "/devices/")).json())[0]
            assert (
                doc["Device"]["WiFi"]["AccessPoint"]["1"]["Security"]["KeyPassphrase"]["_value"]
                == ""
            )
            # In memory the task keeps its value: the CPE will receive it.
            assert "ppp-secret-9" in json.dumps(list(svc.acs.store.tasks.values()))

    run(go())
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    rows = sqlite3.connect(db).execute("SELECT doc FROM tasks").fetchall()
    assert rows and all("ppp-secret-9" not in r[0] for r in rows)
    again = DeviceStore(db)  # restart: the secret is gone, so the task is faulted
    (fault,) = again.faults.values()
    assert fault["code"] == "store.secret_lost"
    again.close()


# -- 8. network robustness -------------------------------------------------------------------
async def _not_cwmp(_request: web.Request) -> web.Response:
    return web.Response(status=200, text="<html>captive portal</html> not CWMP <<<")


def test_cpe_agent_survives_an_acs_that_answers_non_xml():
    async def go():
        app = web.Application()
        app.router.add_post("/", _not_cwmp)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/"  # type: ignore[union-attr]
        agent = CpeAgent(make_identities(1)[0], url)
        try:
            async with http_client() as http:
                with pytest.raises(SessionError, match="non-CWMP"):
                    await agent.run_session(http)
                stop = asyncio.Event()
                loop_task = asyncio.create_task(agent.run(http, stop=stop, retry_base_s=0.01))
                for _ in range(500):
                    if agent.sessions_failed >= 4:
                        break
                    await asyncio.sleep(0.01)
                assert not loop_task.done()  # still alive, retrying with back-off
                stop.set()
                await asyncio.wait_for(loop_task, 5)
                assert loop_task.exception() is None and agent.sessions_failed >= 4
                assert agent.pending_events  # events kept for the next session
        finally:
            await runner.cleanup()

    run(go())


def test_cpe_agent_loop_survives_an_unexpected_exception(monkeypatch):
    async def go():
        agent = CpeAgent(make_identities(1)[0], "http://127.0.0.1:9/")
        calls = []

        async def boom(_http, timeout_s: float = 30.0) -> bool:
            calls.append(1)
            raise RuntimeError("bug in one session")

        monkeypatch.setattr(agent, "run_session", boom)
        stop = asyncio.Event()
        task = asyncio.create_task(agent.run(None, stop=stop, retry_base_s=0.01))  # type: ignore[arg-type]
        for _ in range(500):
            if len(calls) >= 3:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
        assert len(calls) >= 3 and agent.sessions_failed >= 3

    run(go())


async def _cut_after_partial_headers(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n")  # ... and never the rest
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 10)  # b"" once the server cuts
    finally:
        writer.close()


def test_slow_clients_are_cut_on_every_listener():
    async def go():
        config = AcsConfig(read_timeout_s=0.3)
        async with running_acs(config) as svc:
            fleet = CpeFleet(make_identities(1), svc.cwmp_url, read_timeout_s=0.3)
            await fleet.start(run_agents=False)
            try:
                for port in (svc.cwmp_port, svc.nbi_port, fleet.cr_port):
                    assert await _cut_after_partial_headers("127.0.0.1", port) == b""
                # Headers complete, body never finished: 408 from the CWMP listener.
                reader, writer = await asyncio.open_connection("127.0.0.1", svc.cwmp_port)
                writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n<a>")
                await writer.drain()
                status_line = await asyncio.wait_for(reader.readline(), 10)
                rest = await asyncio.wait_for(reader.read(), 10)  # then the server closes
                writer.close()
                assert status_line.startswith(b"HTTP/1.1 408") and b"not received" in rest
            finally:
                await fleet.stop()

    run(go())


def test_inform_without_deviceid_is_a_client_error():
    body = inform_xml()
    body = body[: body.index(b"<DeviceId>")] + body[body.index(b"</DeviceId>") + 11 :]

    async def go():
        async with running_acs() as svc, http_client() as http:
            status, data, _ = await RawCpe(http, svc.cwmp_url).post(body)
            assert status == 400
            fault = soap.parse_fault(soap.parse_message(data).body)
            assert fault["faultCode"] == "8003" and "DeviceId" in fault["faultString"]

    run(go())


def test_agent_xml_is_escaped_whatever_the_values():
    """Every XML the agent writes goes through soap's escaping builders (issue 13)."""
    from acs_emulator.cpe.rpc_handlers import After
    from acs_emulator.cpe.state import DeviceIdentity

    odd = "A&B <x> \"q\" 'p'"
    ident = DeviceIdentity("00259E", "HG<8245>", "SN&1", manufacturer=odd)
    agent = CpeAgent(ident, "http://127.0.0.1:9/")
    agent.pending_events["M Download"] = "key<&>"
    inform = soap.parse_inform(soap.parse_message(soap.envelope(agent._inform_xml())).body)
    assert inform["device"]["Manufacturer"] == odd
    assert inform["device"]["ProductClass"] == "HG<8245>"
    assert ("M Download", "key<&>") in inform["events"]
    # A set value with markup is answered and read back intact.
    spv = soap.rpc_xml(
        "SetParameterValues",
        raw=soap.values_xml([("Device.WiFi.SSID.1.SSID", "</Value><evil/>&", "xsd:string")]),
    )
    after = After()
    reply = agent._handle_rpc(soap.parse_message(soap.envelope(spv)), after)
    assert soap.parse_message(soap.envelope(reply)).name == "SetParameterValuesResponse"
    gpv = soap.rpc_xml("GetParameterValues", raw=soap.names_xml(["Device.WiFi.SSID.1.SSID"]))
    reply = agent._handle_rpc(soap.parse_message(soap.envelope(gpv)), after)
    msg = soap.parse_message(soap.envelope(reply))
    (value,) = soap.parse_parameter_values(soap.child(msg.body, "ParameterList"))
    assert value.value == "</Value><evil/>&"
    # A fault naming a hostile method is still well-formed XML.
    bad = soap.parse_message(soap.envelope("<cwmp:Nope/>"))
    fault = soap.parse_fault(soap.parse_message(soap.envelope(agent._handle_rpc(bad, after))).body)
    assert fault["faultCode"] == "9000"
    # The TransferComplete the agent queues parses back with its command key.
    tc = soap.parse_message(agent._transfer_complete("k<&>", (9010, "bad <image>"), "t").encode())
    assert soap.text(tc.body, "CommandKey") == "k<&>"


def test_repeated_informs_do_not_grow_a_preset_queue():
    from acs_emulator.cwmp import Preset

    gpv = {"name": "getParameterValues", "parameterNames": ["{root}.DeviceInfo.UpTime"]}
    preset = Preset(name="refresh", tasks=[gpv], events=frozenset({"2 PERIODIC"}))

    async def go():
        async with running_acs(AcsConfig(presets=[preset])) as svc, http_client() as http:
            for _ in range(20):  # Informs whose sessions never run the task
                assert (await RawCpe(http, svc.cwmp_url).post(inform_xml()))[0] == 200
            assert svc.acs.store.pending_count("00259E-HG8245H-SN0001") == 1

    run(go())
