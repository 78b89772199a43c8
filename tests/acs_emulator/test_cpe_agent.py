"""CPE agents against the ACS on 127.0.0.1: reboot, download, diagnostics, auth, quirks."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import pytest

from acs_emulator.cpe import CpeFleet, DataModel, Misbehaviour, StaticStateSource, make_identities
from acs_emulator.cpe.datamodel import CpeFault
from acs_emulator.cwmp import AcsConfig, AuthPolicy, soap
from acs_emulator.cwmp.auth import digest_authorization
from acs_emulator.cwmp.store import get_parameter
from acs_emulator.cwmp.testing import run, running_acs

PARAMS = {"connection_request": "", "timeout": "10000"}


@contextlib.asynccontextmanager
async def world(n: int = 1, config: AcsConfig | None = None, **fleet_kw) -> AsyncIterator[tuple]:
    async with running_acs(config) as svc:
        opts = {"periodic_interval_s": 3600, "reboot_duration_s": 0.1}
        opts.update(fleet_kw.pop("agent_options", {}))
        fleet = CpeFleet(make_identities(n, seed=5), svc.cwmp_url, agent_options=opts, **fleet_kw)
        await fleet.start()
        try:
            await until(lambda: len(svc.acs.store.devices) == n and not svc.acs.sessions)
            async with aiohttp.ClientSession(base_url=svc.nbi_url) as nbi:
                yield svc, fleet, nbi
        finally:
            await fleet.stop()


async def until(cond, timeout_s: float = 15.0) -> None:
    for _ in range(int(timeout_s / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def task(nbi, did, body, params=PARAMS):
    async with nbi.post(f"/devices/{did}/tasks", params=params, json=body) as r:
        return r.status, r.reason, await r.json()


def test_reboot_takes_the_device_down_and_back_with_boot_events():
    async def body():
        async with world() as (svc, fleet, nbi):
            did, agent = next(iter(fleet.agents.items()))
            state = fleet.state
            status, _, t = await task(nbi, did, {"name": "reboot"})
            assert status == 200
            assert not agent.online  # down right after the session
            await until(lambda: "M Reboot" in svc.acs.store.get_device(did)["_events"])
            assert set(svc.acs.store.get_device(did)["_events"]) == {"1 BOOT", "M Reboot"}
            assert state.reboots[did] == 1
            assert int(agent.model.get("uptime")) < 5

    run(body())


def test_download_updates_firmware_and_bad_image_faults():
    async def body():
        async with world(2) as (svc, fleet, nbi):
            good, bad = sorted(fleet.agents)
            status, _, t = await task(nbi, good, {"name": "download", "fileName": "V2.1.0.bin"})
            assert status in (200, 202)  # done once TransferComplete arrives
            await until(lambda: not svc.acs.store.tasks)
            doc = svc.acs.store.get_device(good)
            assert get_parameter(doc, "Device.DeviceInfo.SoftwareVersion") == "V2.1.0"
            assert {"1 BOOT", "M Download", "7 TRANSFER COMPLETE"} <= set(doc["_events"])
            status, _, t = await task(nbi, bad, {"name": "download", "fileName": "V9-bad.bin"})
            fid = f"{bad}:task_{t['_id']}"
            await until(lambda: fid in svc.acs.store.faults)
            assert svc.acs.store.faults[fid]["code"] == "cwmp.9010"
            doc = svc.acs.store.get_device(bad)
            assert get_parameter(doc, "Device.DeviceInfo.SoftwareVersion") == "V1.0.0"

    run(body())


def test_connection_request_listener_requires_digest():
    async def body():
        async with world(cr_password="cr-pw") as (svc, fleet, nbi):
            did, agent = next(iter(fleet.agents.items()))
            url = agent.cr_url
            async with aiohttp.ClientSession() as http:
                async with http.get(url) as r:
                    assert r.status == 401
                    challenge = r.headers["WWW-Authenticate"]
                assert challenge.startswith("Digest")
                path = url.split(str(fleet.cr_port), 1)[1]
                wrong = digest_authorization(challenge, "GET", path, did, "nope")
                async with http.get(url, headers={"Authorization": wrong}) as r:
                    assert r.status == 401
                good = digest_authorization(challenge, "GET", path, did, "cr-pw")
                async with http.get(url, headers={"Authorization": good}) as r:
                    assert r.status == 200
            await until(lambda: "6 CONNECTION REQUEST" in svc.acs.store.get_device(did)["_events"])
            # The ACS does not know this password: its connection request fails → 202.
            status, reason, _ = await task(nbi, did, {"name": "reboot"})
            assert status == 202 and "credentials" in reason

    run(body())


@pytest.mark.parametrize("mode, basic_first", [("digest", False), ("basic", True)])
def test_agents_authenticate_to_the_acs(monkeypatch, mode, basic_first):
    monkeypatch.setenv("GUARDIAN_ACS_CPE_PASSWORD", "fleet-pw")
    policy = AuthPolicy(mode=mode, passwords=lambda _u: "fleet-pw")
    mb = Misbehaviour(basic_before_challenge=basic_first)

    async def body():
        async with world(2, AcsConfig(auth=policy), agent_options={"misbehaviour": mb}) as (
            svc,
            fleet,
            nbi,
        ):
            assert all(a.sessions_ok >= 1 for a in fleet.agents.values())

    run(body())


def test_periodic_informs_and_namespace_echo():
    async def body():
        async with world(
            2, agent_options={"periodic_interval_s": 0.15, "cwmp_ns": soap.CWMP_NAMESPACES[3]}
        ) as (
            svc,
            fleet,
            nbi,
        ):
            await until(lambda: all(a.sessions_ok >= 3 for a in fleet.agents.values()))
            doc = next(iter(svc.acs.store.devices.values()))
            assert doc["_events"] == ["2 PERIODIC"]

    run(body())


def test_injected_faults_and_dropped_sessions():
    async def body():
        async with world(2) as (svc, fleet, nbi):
            faulty, dropper = sorted(fleet.agents)
            fleet.set_misbehaviour(faulty, Misbehaviour(fault_rate=1.0))
            fleet.set_misbehaviour(dropper, Misbehaviour(drop_session_rate=1.0))
            gpv = {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]}
            status, reason, _ = await task(nbi, faulty, gpv)
            assert (status, reason) == (202, "Task faulted")
            svc.acs.config.session_timeout_s = 0.2
            status, reason, t = await task(
                nbi, dropper, gpv, {"connection_request": "", "timeout": "300"}
            )
            assert status == 202
            assert svc.acs.store.task_status(t["_id"]) == "pending"
            assert fleet.agents[dropper].rpcs_handled[-1] == "dropped:GetParameterValues"

    run(body())


def test_ping_diagnostics_complete_and_results_reach_the_acs():
    async def body():
        async with world() as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            base = "Device.IP.Diagnostics.IPPing"
            spv = {
                "name": "setParameterValues",
                "parameterValues": [
                    [f"{base}.Host", "8.8.8.8", "xsd:string"],
                    [f"{base}.DiagnosticsState", "Requested", "xsd:string"],
                ],
            }
            status, _, _ = await task(nbi, did, spv)
            assert status == 200
            doc = svc.acs.store.get_device(did)
            await until(lambda: get_parameter(doc, f"{base}.DiagnosticsState") == "Complete")
            assert get_parameter(doc, f"{base}.SuccessCount") == "4"
            assert "8 DIAGNOSTICS COMPLETE" in doc["_events"]

    run(body())


def test_tr098_agents():
    async def body():
        async with world(1, flavour="tr098") as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            status, _, _ = await task(
                nbi,
                did,
                {"name": "refreshObject", "objectName": "InternetGatewayDevice.LANDevice."},
            )
            assert status == 200
            doc = svc.acs.store.get_device(did)
            w = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1"
            assert get_parameter(doc, f"{w}.SSID").startswith("NET_")
            assert get_parameter(doc, "InternetGatewayDevice.DeviceInfo.UpTime") is not None

    run(body())


def test_data_model_rpc_semantics():
    m = DataModel("tr181")
    m.set("ssid", "a", writable=True)
    m.set("channel", 6, "xsd:unsignedInt", True)
    m.set("serial", "S1")
    assert [n for n, _ in m.names("Device.WiFi.", next_level=True)] == [
        "Device.WiFi.Radio.",
        "Device.WiFi.SSID.",
    ]
    assert ("Device.WiFi.SSID.1.SSID", True) in m.names("Device.", next_level=False)
    assert m.values(["Device.WiFi."]) == [
        ("Device.WiFi.Radio.1.Channel", "6", "xsd:unsignedInt"),
        ("Device.WiFi.SSID.1.SSID", "a", "xsd:string"),
    ]
    with pytest.raises(CpeFault, match="partial"):
        m.values(["Device.WiFi."], allow_partial=False)
    with pytest.raises(CpeFault) as exc:
        m.set_values(
            [
                ("Device.DeviceInfo.SerialNumber", "x", "xsd:string"),
                ("Device.WiFi.Radio.1.Channel", "eleven", "xsd:unsignedInt"),
                ("Device.Nope", "1", "xsd:string"),
            ]
        )
    assert exc.value.code == 9003
    assert sorted(c for _, c in exc.value.spv) == [9005, 9007, 9008]
    assert m.get("channel") == "6"  # nothing applied
    assert m.add_object("Device.WiFi.SSID.") == 2
    m.delete_object("Device.WiFi.SSID.2.")
    with pytest.raises(CpeFault):
        m.delete_object("Device.WiFi.SSID.7.")


def test_static_state_source_is_seeded_and_reboot_resets_uptime():
    t = [1000.0]
    a, b = (
        StaticStateSource(seed=1, clock=lambda: t[0]),
        StaticStateSource(seed=1, clock=lambda: t[0]),
    )
    assert a.values("D") == b.values("D")
    assert (
        StaticStateSource(seed=2, clock=lambda: t[0]).values("D")["rx_dbm"]
        != a.values("D")["rx_dbm"]
    )
    assert -25 < a.values("D")["rx_dbm"] < -15
    a.reboot("D")
    t[0] += 10
    assert a.values("D")["uptime_s"] == 10


def test_known_device_boots_without_bootstrap():
    async def body():
        async with world(1, agent_options={"bootstrap": False}) as (svc, fleet, nbi):
            doc = next(iter(svc.acs.store.devices.values()))
            assert doc["_events"] == ["1 BOOT"] and "_lastBootstrap" not in doc

    run(body())
