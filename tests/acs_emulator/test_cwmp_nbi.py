"""GenieACS-compatible NBI against real emulated CPEs on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp

from acs_emulator.cpe import CpeFleet, Misbehaviour, make_identities
from acs_emulator.cwmp import AcsConfig
from acs_emulator.cwmp.testing import run, running_acs

FAST = {"periodic_interval_s": 3600, "reboot_duration_s": 0.2}


@contextlib.asynccontextmanager
async def world(
    n: int = 3, token: str | None = None, config: AcsConfig | None = None, **fleet_kw
) -> AsyncIterator[tuple]:
    """ACS + ``n`` CPEs that have all informed once + an NBI HTTP client."""
    async with running_acs(config, nbi_token=token) as svc:
        fleet_kw.setdefault("agent_options", dict(FAST))
        fleet = CpeFleet(make_identities(n, seed=3), svc.cwmp_url, **fleet_kw)
        await fleet.start()
        try:
            for _ in range(750):
                if len(svc.acs.store.devices) == n and not svc.acs.sessions:
                    break
                await asyncio.sleep(0.02)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with aiohttp.ClientSession(base_url=svc.nbi_url, headers=headers) as nbi:
                yield svc, fleet, nbi
        finally:
            await fleet.stop()


async def get_json(nbi, path, **params):
    async with nbi.get(path, params=params) as r:
        assert r.status == 200, await r.text()
        return await r.json(), r.headers


def test_devices_query_operators_projection_and_tags():
    async def body():
        async with world(3) as (svc, fleet, nbi):
            ids = sorted(fleet.agents)
            docs, headers = await get_json(nbi, "/devices/")
            assert headers["total"] == "3" and sorted(d["_id"] for d in docs) == ids
            # Equality on a parameter compares its value (GenieACS expansion).
            q = {"Device.DeviceInfo.HardwareVersion": "HW1.0"}
            docs, _ = await get_json(nbi, "/devices/", query=json.dumps(q))
            assert len(docs) == 3
            q = {"_deviceId._SerialNumber": fleet.agents[ids[0]].identity.serial}
            docs, _ = await get_json(nbi, "/devices/", query=json.dumps(q))
            assert [d["_id"] for d in docs] == [ids[0]]
            docs, _ = await get_json(nbi, "/devices/", query=json.dumps({"_id": {"$in": ids[:2]}}))
            assert len(docs) == 2
            docs, _ = await get_json(
                nbi, "/devices/", query=json.dumps({"_id": {"$regex": "^00259E-"}})
            )
            assert len(docs) == 3
            docs, _ = await get_json(
                nbi, "/devices/", query=json.dumps({"Device.DeviceInfo.UpTime": {"$gt": "0"}})
            )
            assert len(docs) == 3
            docs, _ = await get_json(
                nbi,
                "/devices/",
                query=json.dumps({"_id": ids[0]}),
                projection="Device.DeviceInfo.SoftwareVersion,_lastInform",
            )
            assert set(docs[0]) == {"_id", "Device", "_lastInform"}
            assert set(docs[0]["Device"]["DeviceInfo"]) == {"SoftwareVersion"}
            # Tags.
            async with nbi.post(f"/devices/{ids[1]}/tags/vip") as r:
                assert r.status == 200
            docs, _ = await get_json(nbi, "/devices/", query=json.dumps({"_tags": "vip"}))
            assert [d["_id"] for d in docs] == [ids[1]]
            async with nbi.delete(f"/devices/{ids[1]}/tags/vip") as r:
                assert r.status == 200
            docs, _ = await get_json(nbi, "/devices/", query=json.dumps({"_tags": "vip"}))
            assert docs == []
            async with nbi.get("/devices/", params={"query": "{not json"}) as r:
                assert r.status == 400
            async with nbi.get("/devices/", params={"query": '{"a": {"$bogus": 1}}'}) as r:
                assert r.status == 400
            docs, _ = await get_json(
                nbi, "/devices/", sort=json.dumps({"_id": -1}), limit="2", projection="_id"
            )
            assert [d["_id"] for d in docs] == sorted(ids, reverse=True)[:2]
            async with nbi.head("/devices/") as r:
                assert r.status == 200 and r.headers["total"] == "3"

    run(body())


def test_task_with_connection_request_answers_200_when_done():
    async def body():
        async with world(2) as (svc, fleet, nbi):
            did = sorted(fleet.agents)[0]
            params = {"connection_request": "", "timeout": "10000"}
            task = {"name": "getParameterValues", "parameterNames": ["Device.WiFi.SSID.1.SSID"]}
            async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                assert r.status == 200, r.reason
                doc = await r.json()
            assert doc["device"] == did and doc["_id"]
            docs, _ = await get_json(nbi, "/tasks/")
            assert docs == []  # done tasks leave the queue, as in GenieACS
            ssid = svc.acs.store.get_device(did)["Device"]["WiFi"]["SSID"]["1"]["SSID"]
            assert ssid["_value"] == fleet.agents[did].model.get("ssid")
            agent = fleet.agents[did]
            async with nbi.post(f"/devices/{did}/tasks", params=params, json={"name": "reboot"}):
                pass
            for _ in range(750):
                if "M Reboot" in svc.acs.store.get_device(did).get("_events", []):
                    break
                await asyncio.sleep(0.02)
            assert "1 BOOT" in svc.acs.store.get_device(did)["_events"]
            assert agent.rpcs_handled[-1] == "Reboot"

    run(body())


def test_task_without_connection_request_is_queued_202_and_can_be_deleted():
    async def body():
        async with world(1) as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            async with nbi.post(f"/devices/{did}/tasks", json={"name": "reboot"}) as r:
                assert r.status == 202
                task = await r.json()
            docs, _ = await get_json(nbi, "/tasks/", query=json.dumps({"device": did}))
            assert [d["_id"] for d in docs] == [task["_id"]]
            async with nbi.delete(f"/tasks/{task['_id']}") as r:
                assert r.status == 200
            async with nbi.delete(f"/tasks/{task['_id']}") as r:
                assert r.status == 404
            assert fleet.agents[did].rpcs_handled == []

    run(body())


def test_offline_device_gives_202_queued_and_runs_the_task_when_back():
    async def body():
        async with world(1) as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            agent = fleet.agents[did]
            loop = asyncio.get_running_loop()
            agent.down_until = loop.time() + 0.5  # rebooting: connection requests fail
            params = {"connection_request": "", "timeout": "300"}
            task = {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]}
            async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                assert r.status == 202 and "Connection request" in r.reason
            agent.pending_events["1 BOOT"] = ""
            agent.wakeup.set()  # back up after the "reboot": informs 1 BOOT
            for _ in range(750):
                if not svc.acs.store.tasks:
                    break
                await asyncio.sleep(0.02)
            assert svc.acs.store.tasks == {}
            assert "GetParameterValues" in agent.rpcs_handled

    run(body())


def test_faulted_task_gives_202_task_faulted_and_fault_can_be_deleted():
    async def body():
        async with world(1) as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            params = {"connection_request": "", "timeout": "10000"}
            task = {
                "name": "setParameterValues",
                "parameterValues": [["Device.DeviceInfo.SerialNumber", "X", "xsd:string"]],
            }
            async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                assert r.status == 202 and r.reason == "Task faulted"
                tid = (await r.json())["_id"]
            faults, _ = await get_json(nbi, "/faults/")
            assert faults[0]["_id"] == f"{did}:task_{tid}" and faults[0]["code"] == "cwmp.9003"
            spv = faults[0]["detail"]["setParameterValuesFault"]
            assert spv == [{"parameterName": "Device.DeviceInfo.SerialNumber", "faultCode": "9008"}]
            async with nbi.delete(f"/faults/{faults[0]['_id']}") as r:
                assert r.status == 200
            assert (await get_json(nbi, "/faults/"))[0] == []
            assert (await get_json(nbi, "/tasks/"))[0] == []  # the task went with its fault

    run(body())


def test_bad_requests_unknown_device_and_idempotency_key():
    async def body():
        async with world(1) as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            async with nbi.post("/devices/NOPE-X-1/tasks", json={"name": "reboot"}) as r:
                assert r.status == 404
            async with nbi.post(f"/devices/{did}/tasks", json={"name": "explode"}) as r:
                assert r.status == 400 and "explode" in await r.text()
            async with nbi.post(f"/devices/{did}/tasks", json={"name": "refreshObject"}) as r:
                assert r.status == 400 and "objectName" in await r.text()
            async with nbi.post(f"/devices/{did}/tasks", data=b"[1,") as r:
                assert r.status == 400
            params = {"connection_request": "", "timeout": "10000"}
            task = {"name": "reboot", "idempotencyKey": "k-1"}
            async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                assert r.status == 200
                assert r.headers["Guardian-Idempotency"]
            async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                assert r.status == 200  # same key: answered from memory, not re-sent
            await asyncio.sleep(0.4)
            assert fleet.agents[did].rpcs_handled.count("Reboot") == 1

    run(body())


def test_bearer_token_is_required_when_configured():
    async def body():
        async with world(1, token="t0k3n") as (svc, fleet, nbi):
            assert (await get_json(nbi, "/devices/"))[0]
            async with aiohttp.ClientSession() as anon:
                async with anon.get(svc.nbi_url + "/devices/") as r:
                    assert r.status == 401
                bad = {"Authorization": "Bearer nope"}
                async with anon.get(svc.nbi_url + "/devices/", headers=bad) as r:
                    assert r.status == 401

    run(body())


def test_refresh_add_delete_object_and_connection_request_only():
    async def body():
        async with world(1, cr_auth="basic", config=AcsConfig(cr_allow_basic=True)) as (
            svc,
            fleet,
            nbi,
        ):
            did = next(iter(fleet.agents))
            params = {"connection_request": "", "timeout": "10000"}
            for task in (
                {"name": "refreshObject", "objectName": "Device.WiFi."},
                {"name": "addObject", "objectName": "Device.WiFi.SSID."},
                {"name": "deleteObject", "objectName": "Device.WiFi.SSID.2."},
            ):
                async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                    assert r.status == 200, (task, r.reason)
            wifi = svc.acs.store.get_device(did)["Device"]["WiFi"]
            assert wifi["Radio"]["1"]["Channel"]["_writable"] is True
            assert "2" not in wifi["SSID"]
            async with nbi.post(f"/devices/{did}/tasks", params={"connection_request": ""}) as r:
                assert r.status == 200

    run(body())


def test_misbehaving_cpes_still_interoperate():
    mb = Misbehaviour(
        echo_full_set_cookie=True,
        no_soapaction=True,
        untyped_values=True,
        wrong_array_size=True,
        slow_response_s=0.01,
    )

    async def body():
        async with world(2, agent_options=dict(FAST, misbehaviour=mb)) as (svc, fleet, nbi):
            did = sorted(fleet.agents)[0]
            params = {"connection_request": "", "timeout": "10000"}
            task = {"name": "getParameterValues", "parameterNames": ["Device.WiFi.Radio.1.Channel"]}
            async with nbi.post(f"/devices/{did}/tasks", params=params, json=task) as r:
                assert r.status == 200, r.reason
            doc = svc.acs.store.get_device(did)
            assert doc["Device"]["DeviceInfo"]["UpTime"]["_type"] == "xsd:string"  # untyped

    run(body())


def test_basic_only_connection_request_listener_is_refused_by_default():
    async def body():
        async with world(1, cr_auth="basic") as (svc, fleet, nbi):
            did = next(iter(fleet.agents))
            async with nbi.post(f"/devices/{did}/tasks", params={"connection_request": ""}) as r:
                assert r.status == 504 and "Basic is off" in await r.text()

    run(body())
