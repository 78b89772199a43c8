"""Presets and zero-touch provisioning (TR-181 and TR-098), preset files, NBI overload."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from acs_emulator.cpe import CpeFleet, make_identities
from acs_emulator.cpe.fleet import run_fleet
from acs_emulator.cwmp import AcsConfig, load_presets, soap, zero_touch_preset
from acs_emulator.cwmp.presets import render_task
from acs_emulator.cwmp.store import get_parameter
from acs_emulator.cwmp.testing import RawCpe, http_client, inform_xml, run, running_acs


@pytest.mark.parametrize("flavour, root", [("tr181", "Device"), ("tr098", "InternetGatewayDevice")])
def test_zero_touch_profile_reaches_new_cpes(monkeypatch, flavour, root):
    monkeypatch.setenv("GUARDIAN_ZT_WIFI_PASSWORD", "wifi-secret-1")
    monkeypatch.delenv("GUARDIAN_ZT_PPPOE_PASSWORD", raising=False)
    preset = zero_touch_preset(channel=11)

    async def body():
        async with running_acs(AcsConfig(presets=[preset])) as svc:
            fleet = CpeFleet(
                make_identities(2, seed=8),
                svc.cwmp_url,
                flavour=flavour,
                agent_options={"periodic_interval_s": 3600},
            )
            await fleet.start()
            try:
                for _ in range(750):
                    if (
                        len(svc.acs.store.devices) == 2
                        and not svc.acs.sessions
                        and not svc.acs.store.tasks
                    ):
                        break
                    await asyncio.sleep(0.02)
                for did, agent in fleet.agents.items():
                    serial = agent.identity.serial
                    assert agent.model.get("ssid") == f"NET_{serial}"
                    assert agent.model.get("channel") == "11"
                    assert agent.model.get("ppp_user") == f"{serial}@isp"
                    key = agent.model.params[agent.model.path("wifi_key")]
                    assert key.value == "wifi-secret-1"
                    doc = svc.acs.store.get_device(did)
                    assert root in doc and svc.acs.store.faults == {}
            finally:
                await fleet.stop()

    run(body())


def test_render_and_load_presets(tmp_path):
    t = {
        "name": "setParameterValues",
        "parameterValues": [["{root}.WiFi.SSID.1.SSID", "NET_{serial}", "xsd:string"]],
    }
    assert render_task(t, "InternetGatewayDevice", "S1", "X-Y-S1")["parameterValues"][0][:2] == [
        "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID",
        "NET_S1",
    ]
    f = tmp_path / "p.json"
    f.write_text(json.dumps([{"name": "r", "events": ["2 PERIODIC"], "tasks": [t]}]))
    (p,) = load_presets(f)
    assert p.events == frozenset({"2 PERIODIC"}) and p.tasks == [t]
    f.write_text('{"name": "x"}')
    with pytest.raises(ValueError, match="list of presets"):
        load_presets(f)
    f.write_text('[{"name": "x"}]')
    with pytest.raises(ValueError, match=r"presets\[0\]"):
        load_presets(f)


def test_nbi_overload_answers_503_with_retry_after():
    async def body():
        async with running_acs(nbi_options={"max_waiting": 0, "retry_after_s": 3}) as svc:
            async with http_client() as http:
                await RawCpe(http, svc.cwmp_url).post(inform_xml())
                async with aiohttp.ClientSession(base_url=svc.nbi_url) as nbi:
                    did = next(iter(svc.acs.store.devices))
                    async with nbi.post(
                        f"/devices/{did}/tasks",
                        params={"connection_request": ""},
                        json={"name": "reboot"},
                    ) as r:
                        assert r.status == 503 and r.headers["Retry-After"] == "3"
                    assert svc.acs.store.tasks == {}

    run(body())


def test_internal_error_is_a_cwmp_fault_and_the_acs_keeps_serving(monkeypatch):
    async def body():
        async with running_acs() as svc, http_client() as http:
            calls = []

            def boom(*a, **k):
                calls.append(1)
                raise RuntimeError("disk on fire")

            original = svc.acs._record_inform
            svc.acs._record_inform = boom
            status, data, _ = await RawCpe(http, svc.cwmp_url).post(inform_xml())
            assert status == 500 and calls
            assert soap.parse_fault(soap.parse_message(data).body)["faultCode"] == "8002"
            svc.acs._record_inform = original
            cpe = RawCpe(http, svc.cwmp_url)
            assert (await cpe.post(inform_xml()))[0] == 200
            assert (await cpe.post(b""))[0] == 204

    run(body())


def test_run_fleet_steps_a_simulation():
    class FakeSim:
        tick_s = 300.0
        steps = 0

        def step(self):
            self.steps += 1

    async def body():
        async with running_acs() as svc:
            fleet = CpeFleet(make_identities(2, seed=4), svc.cwmp_url)
            sim = FakeSim()
            stats = await run_fleet(fleet, duration_s=0.5, sim=sim, speed=3000.0)
            assert stats["sessions_ok"] >= 2 and sim.steps >= 3
            assert (
                get_parameter(
                    next(iter(svc.acs.store.devices.values())), "Device.DeviceInfo.UpTime"
                )
                is not None
            )

    run(body())
