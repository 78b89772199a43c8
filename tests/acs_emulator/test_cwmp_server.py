"""ACS sessions over real HTTP on 127.0.0.1, driven by a hand-written CPE (raw SOAP)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from acs_emulator.cwmp import AcsConfig, AuthPolicy, Preset, soap
from acs_emulator.cwmp.auth import digest_authorization
from acs_emulator.cwmp.store import DeviceStore
from acs_emulator.cwmp.testing import RawCpe, inform_xml, run
from acs_emulator.cwmp.testing import http_client as client
from acs_emulator.cwmp.testing import running_acs as acs

NS = soap.CWMP_NAMESPACES[0]
DEVICE = "00259E-HG8245H-SN0001"


def test_inform_empty_post_and_204_store_the_device():
    async def body():
        async with acs() as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            status, data, headers = await cpe.post(
                inform_xml(params=[("Device.DeviceInfo.SoftwareVersion", "V1", "xsd:string")])
            )
            assert status == 200 and "session=" in headers["Set-Cookie"]
            msg = soap.parse_message(data)
            assert msg.name == "InformResponse" and msg.id == "1"
            assert "<cwmp:InformResponse>" in data.decode()
            status, _, _ = await cpe.post(b"")
            assert status == 204
            doc = svc.acs.store.get_device(DEVICE)
            assert doc["_deviceId"]["_SerialNumber"] == "SN0001"
            assert doc["Device"]["DeviceInfo"]["SoftwareVersion"]["_value"] == "V1"
            assert "_lastInform" in doc and not svc.acs.sessions

    run(body())


def test_queued_rpcs_run_in_order_and_results_are_stored():
    async def body():
        async with acs() as svc, client() as http:
            store = svc.acs.store
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.open_session()  # device known now
            store.insert_task(
                {"name": "getParameterValues", "parameterNames": ["Device.X.A"], "device": DEVICE}
            )
            store.insert_task({"name": "reboot", "device": DEVICE})
            await cpe.post(inform_xml(events=("6 CONNECTION REQUEST",)))
            status, data, _ = await cpe.post(b"")
            msg = soap.parse_message(data)
            assert msg.name == "GetParameterValues"
            resp = soap.envelope(
                soap.rpc_xml(
                    "GetParameterValuesResponse",
                    raw=soap.values_xml([("Device.X.A", "5", "xsd:int")]),
                ),
                msg_id=msg.id,
            )
            status, data, _ = await cpe.post(resp)
            msg = soap.parse_message(data)
            assert msg.name == "Reboot"
            assert soap.text(msg.body, "CommandKey")  # the task id
            status, data, _ = await cpe.post(soap.envelope(soap.rpc_xml("RebootResponse")))
            assert status == 204
            assert store.get_device(DEVICE)["Device"]["X"]["A"]["_value"] == "5"
            assert store.tasks == {}

    run(body())


def test_cpe_fault_is_recorded_and_the_task_is_not_resent_until_the_fault_is_deleted():
    async def body():
        async with acs() as svc, client() as http:
            store = svc.acs.store
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.open_session()
            task, _ = store.insert_task(
                {"name": "getParameterValues", "parameterNames": ["Bad.Name"], "device": DEVICE}
            )
            data = await cpe.open_session()
            assert soap.parse_message(data).name == "GetParameterValues"
            fault = soap.envelope(soap.fault_xml(9005, "Invalid parameter name", acs=False))
            status, _, _ = await cpe.post(fault)
            assert status == 204
            fid = f"{DEVICE}:task_{task['_id']}"
            assert store.faults[fid]["code"] == "cwmp.9005"
            assert store.task_status(task["_id"]) == "fault"
            await cpe.post(inform_xml())
            status, _, _ = await cpe.post(b"")
            assert status == 204  # faulted task not re-sent
            assert store.delete_fault(fid)
            assert task["_id"] not in store.tasks

    run(body())


def _basic(user: str, pw: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()


def test_basic_auth_accepted_before_any_challenge_and_wrong_password_refused():
    policy = AuthPolicy(mode="basic", passwords=lambda u: "s3cret" if u == DEVICE else None)

    async def body():
        async with acs(AcsConfig(auth=policy)) as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            status, _, headers = await cpe.post(inform_xml())
            assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
            status, _, _ = await cpe.post(inform_xml(), {"Authorization": _basic(DEVICE, "wrong")})
            assert status == 401
            status, data, _ = await cpe.post(
                inform_xml(), {"Authorization": _basic(DEVICE, "s3cret")}
            )
            assert status == 200 and soap.parse_message(data).name == "InformResponse"
            status, _, _ = await cpe.post(b"")  # the session needs no credentials again
            assert status == 204

    run(body())


def test_digest_auth_challenge_response_and_per_device_override():
    policy = AuthPolicy(
        mode="digest",
        passwords=lambda u: "pw" if u == DEVICE else None,
        per_device={"00259E-HG8245H-LEGACY": "none"},
    )

    async def body():
        async with acs(AcsConfig(auth=policy)) as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            status, _, headers = await cpe.post(inform_xml())
            challenge = headers["WWW-Authenticate"]
            assert status == 401 and challenge.startswith("Digest")
            # Basic is not enough when Digest is required.
            status, _, _ = await cpe.post(inform_xml(), {"Authorization": _basic(DEVICE, "pw")})
            assert status == 401
            bad = digest_authorization(challenge, "POST", "/", DEVICE, "nope")
            assert (await cpe.post(inform_xml(), {"Authorization": bad}))[0] == 401
            good = digest_authorization(challenge, "POST", "/", DEVICE, "pw")
            status, _, _ = await cpe.post(inform_xml(), {"Authorization": good})
            assert status == 200
            assert (await cpe.post(b""))[0] == 204
            legacy = RawCpe(http, svc.cwmp_url)
            status, _, _ = await legacy.post(inform_xml(serial="LEGACY"))
            assert status == 200  # a CPE that cannot authenticate, allowed by override

    run(body())


def test_whole_set_cookie_echoed_and_stale_cookie_kept_into_next_session():
    async def body():
        async with acs() as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            _, _, headers = await cpe.post(inform_xml())
            whole = headers["Set-Cookie"]
            status, _, _ = await cpe.post(b"", {"Cookie": whole})
            assert status == 204
            # Next session: the CPE still sends the old cookie with its Inform.
            status, _, headers = await cpe.post(inform_xml(), {"Cookie": whole})
            assert status == 200
            new = headers["Set-Cookie"]
            status, _, _ = await cpe.post(b"", {"Cookie": f"{new}; {whole}"})
            assert status == 204

    run(body())


def test_cpe_without_cookie_support_is_followed_by_its_connection():
    async def body():
        async with acs() as svc, client(limit=1) as http:
            status, _, _ = await RawCpe(http, svc.cwmp_url).post(inform_xml())
            assert status == 200
            async with http.post(svc.cwmp_url, data=b"") as r:  # no cookie at all
                assert r.status == 204

    run(body())


def test_duplicate_informs_keep_one_consistent_device():
    async def body():
        async with acs() as svc, client() as http:
            a, b = RawCpe(http, svc.cwmp_url), RawCpe(http, svc.cwmp_url)
            assert (await a.post(inform_xml()))[0] == 200
            assert (await b.post(inform_xml()))[0] == 200  # same device, new session
            assert len(svc.acs.sessions) == 1
            assert (await b.post(b""))[0] == 204
            status, _, _ = await a.post(b"")  # the replaced session is gone
            assert status == 400
            assert list(svc.acs.store.devices) == [DEVICE]

    run(body())


def test_cpe_vanishing_mid_session_leaves_its_task_queued():
    async def body():
        cfg = AcsConfig(session_timeout_s=0.2)
        async with acs(cfg) as svc, client() as http:
            store = svc.acs.store
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.open_session()
            task, _ = store.insert_task({"name": "reboot", "device": DEVICE})
            data = await cpe.open_session()
            assert soap.parse_message(data).name == "Reboot"
            await asyncio.sleep(0.3)  # the CPE vanishes without answering
            other = RawCpe(http, svc.cwmp_url)
            await other.post(inform_xml(serial="OTHER"))  # triggers expiry
            assert not svc.acs.in_session(DEVICE)
            assert store.task_status(task["_id"]) == "pending"
            cpe.cookie = None
            await cpe.post(inform_xml(events=("1 BOOT",)))
            _, data, _ = await cpe.post(b"")
            assert soap.parse_message(data).name == "Reboot"

    run(body())


def test_bootstrap_preset_applies_zero_touch_profile():
    preset = Preset(
        "zero-touch",
        frozenset({"0 BOOTSTRAP"}),
        [
            {
                "name": "setParameterValues",
                "parameterValues": [["{root}.PPP.Interface.1.Username", "user@isp"]],
            }
        ],
    )

    async def body():
        async with acs(AcsConfig(presets=[preset])) as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.post(inform_xml(events=("0 BOOTSTRAP", "1 BOOT")))
            _, data, _ = await cpe.post(b"")
            msg = soap.parse_message(data)
            assert msg.name == "SetParameterValues"
            (pv,) = soap.parse_parameter_values(soap.child(msg.body, "ParameterList"))
            assert (pv.name, pv.value) == ("Device.PPP.Interface.1.Username", "user@isp")
            resp = soap.envelope(soap.rpc_xml("SetParameterValuesResponse", {"Status": 0}))
            assert (await cpe.post(resp))[0] == 204
            doc = svc.acs.store.get_device(DEVICE)
            assert doc["Device"]["PPP"]["Interface"]["1"]["Username"]["_value"] == "user@isp"
            assert "_lastBootstrap" in doc
            # A periodic inform does not apply it again.
            await cpe.post(inform_xml())
            assert (await cpe.post(b""))[0] == 204

    run(body())


def test_store_persists_devices_tasks_and_faults(tmp_path):
    db = tmp_path / "acs.sqlite"
    store = DeviceStore(db)
    store.save_device({"_id": "D1", "_tags": ["vip"]})
    task, _ = store.insert_task({"name": "reboot", "device": "D1"})
    store.fault_task(task, "cwmp.9002", "Internal error", {})
    store.close()
    again = DeviceStore(db)
    assert again.get_device("D1")["_tags"] == ["vip"]
    assert task["_id"] in again.tasks and f"D1:task_{task['_id']}" in again.faults
    again.close()


@pytest.mark.parametrize("max_sessions", [1])
def test_overload_answers_503_with_retry_after(max_sessions):
    async def body():
        cfg = AcsConfig(max_sessions=max_sessions, retry_after_s=7)
        async with acs(cfg) as svc, client() as http:
            assert (await RawCpe(http, svc.cwmp_url).post(inform_xml()))[0] == 200
            status, _, headers = await RawCpe(http, svc.cwmp_url).post(inform_xml(serial="SN2"))
            assert status == 503 and headers["Retry-After"] == "7"

    run(body())


def test_reboot_confirmed_by_m_reboot_is_not_sent_twice():
    async def body():
        async with acs() as svc, client() as http:
            store = svc.acs.store
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.open_session()
            task, _ = store.insert_task({"name": "reboot", "device": DEVICE})
            data = await cpe.open_session()
            key = soap.text(soap.parse_message(data).body, "CommandKey")
            assert key == task["_id"]
            # The CPE reboots at once; its RebootResponse never arrives. It comes back
            # with "1 BOOT" + "M Reboot" carrying the command key.
            cpe.cookie = None
            boot = inform_xml(events=("1 BOOT", "M Reboot")).replace(
                b"<EventCode>M Reboot</EventCode><CommandKey/>",
                f"<EventCode>M Reboot</EventCode><CommandKey>{key}</CommandKey>".encode(),
            )
            assert (await cpe.post(boot))[0] == 200
            assert store.tasks == {}
            assert (await cpe.post(b""))[0] == 204  # no second Reboot

    run(body())


def test_repeated_inform_in_the_same_session_is_answered_once_recorded_once():
    preset = Preset("p", frozenset({"0 BOOTSTRAP"}), [{"name": "reboot"}])

    async def body():
        async with acs(AcsConfig(presets=[preset])) as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            assert (await cpe.post(inform_xml(events=("0 BOOTSTRAP",))))[0] == 200
            token = cpe.cookie
            # Our InformResponse was "lost": the CPE sends the same Inform again.
            assert (await cpe.post(inform_xml(events=("0 BOOTSTRAP",))))[0] == 200
            assert cpe.cookie == token and len(svc.acs.sessions) == 1
            assert len(svc.acs.store.tasks) == 1  # the preset ran once
            _, data, _ = await cpe.post(b"")
            assert soap.parse_message(data).name == "Reboot"

    run(body())


def test_passwords_come_from_environment_or_file(monkeypatch, tmp_path):
    from acs_emulator.cwmp.server import password_lookup_from_env

    f = tmp_path / "pw"
    f.write_text("# device:password\nD1:one\nD2:two:with:colons\n")
    monkeypatch.setenv("GUARDIAN_ACS_CPE_PASSWORDS_FILE", str(f))
    monkeypatch.setenv("GUARDIAN_ACS_CPE_PASSWORD", "fleet")
    lookup = password_lookup_from_env()
    assert (lookup("D1"), lookup("D2"), lookup("D3")) == ("one", "two:with:colons", "fleet")
    monkeypatch.delenv("GUARDIAN_ACS_CPE_PASSWORD")
    assert password_lookup_from_env()("D3") is None


def test_service_in_a_thread_serves_cwmp_and_flushes_its_store_on_stop(tmp_path):
    # The shared ThreadedServer protocol: ``with`` starts the listeners on a thread of
    # their own; leaving the block stops them and writes the store (a restart finds it).
    import httpx

    from acs_emulator.cwmp.service import AcsService

    db = tmp_path / "acs.sqlite"
    with AcsService(db_path=db) as svc:
        with httpx.Client() as http:
            r = http.post(svc.cwmp_url, content=inform_xml())
            assert r.status_code == 200 and b"InformResponse" in r.content
            cookie = r.headers["Set-Cookie"].split(";", 1)[0]
            assert (
                http.post(svc.cwmp_url, content=b"", headers={"Cookie": cookie}).status_code == 204
            )
        thread = svc._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()
    with pytest.raises(httpx.TransportError):
        httpx.post(svc.cwmp_url, content=inform_xml(), timeout=2)
    reopened = DeviceStore(db)
    assert reopened.get_device(DEVICE) is not None
    reopened.close()
