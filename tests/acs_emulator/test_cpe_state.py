"""CPE agents driven by the simulator: values from ``Simulation`` state, reboots back into it."""

from __future__ import annotations

import asyncio
import math

import aiohttp
import pytest

from acs_emulator.cpe import CpeFleet, SimulationStateSource, StateSource, StaticStateSource
from acs_emulator.cwmp.store import get_parameter
from acs_emulator.cwmp.testing import run, running_acs
from simulator.engine import Simulation
from simulator.scenario import load_scenario


@pytest.fixture(scope="module")
def sim():
    sim = Simulation(load_scenario("tiny"), seed=1)
    sim.step()
    return sim


def test_sources_follow_the_protocol(sim):
    assert isinstance(StaticStateSource(), StateSource)
    assert isinstance(SimulationStateSource(sim), StateSource)


def test_values_are_the_simulation_state_of_the_customers_onu(sim):
    src = SimulationStateSource(sim)
    customers = sim.topology.customers
    onu_row = {o: i for i, o in enumerate(sim.topology.onus["onu_id"])}
    for cpe_id, onu_id in zip(customers["cpe_id"][:10], customers["onu_id"][:10], strict=True):
        v = src.values(cpe_id)
        i = onu_row[onu_id]
        rx = float(sim.state.rx_dbm[i])
        assert (math.isnan(rx) and math.isnan(v["rx_dbm"])) or v["rx_dbm"] == rx
        assert v["online"] == bool(sim.state.online[i])
        assert v["uptime_s"] == int(sim.state.uptime_s[i])
        assert v["pppoe_up"] == bool(sim.state.pppoe_up[i])
    ids = src.identities(3)
    assert [i.device_id for i in ids] == list(customers["cpe_id"][:3])


def test_agents_report_simulated_optics_and_an_acs_reboot_reaches_the_simulator(sim):
    src = SimulationStateSource(sim)
    online = sim.topology.customers[sim.state.online]  # only ONUs that are up inform
    idents = [i for i in src.identities() if i.device_id in set(online["cpe_id"][:4])]

    async def body():
        async with running_acs() as svc:
            fleet = CpeFleet(
                idents,
                svc.cwmp_url,
                state=src,
                agent_options={"periodic_interval_s": 3600, "reboot_duration_s": 0.05},
            )
            await fleet.start()
            try:
                for _ in range(750):
                    if len(svc.acs.store.devices) == len(idents) and not svc.acs.sessions:
                        break
                    await asyncio.sleep(0.02)
                did = idents[0].device_id
                doc = svc.acs.store.get_device(did)
                rx_milli_dbm = int(
                    get_parameter(doc, "Device.Optical.Interface.1.OpticalSignalLevel")
                )
                assert rx_milli_dbm == round(src.values(did)["rx_dbm"] * 1000)
                async with aiohttp.ClientSession(base_url=svc.nbi_url) as nbi:
                    async with nbi.post(
                        f"/devices/{did}/tasks",
                        params={"connection_request": "", "timeout": "10000"},
                        json={"name": "reboot"},
                    ) as r:
                        assert r.status == 200
            finally:
                await fleet.stop()

    n_before = len(sim.reboots)
    run(body())
    sim.step()  # the simulator applies the reboot on its next tick
    assert len(sim.reboots) == n_before + 1 and sim.reboots[-1]["by"] == "acs"
