"""ACS capacity features: boot storm admission + CPE back-off, group commit, one parse."""

from __future__ import annotations

import asyncio
import sqlite3
from xml.etree.ElementTree import tostring

import defusedxml.ElementTree as DET
import numpy as np
import pytest
from defusedxml.common import DefusedXmlException

from acs_emulator.cpe import CpeAgent, StaticStateSource, make_identities
from acs_emulator.cpe.agent import retry_wait_s
from acs_emulator.cwmp import AcsConfig, soap
from acs_emulator.cwmp.store import DeviceStore
from acs_emulator.cwmp.testing import RawCpe, http_client, inform_xml, run, running_acs


def test_retry_wait_follows_tr069_table_and_spreads():
    rng = np.random.default_rng(3)
    for n, (low, high) in {1: (5, 10), 2: (10, 20), 4: (40, 80), 10: (2560, 5120)}.items():
        draws = [retry_wait_s(n, rng) for _ in range(200)]
        assert low <= min(draws) and max(draws) <= high
        assert max(draws) - min(draws) > 0.5 * (high - low)  # spread over the interval
    assert 2560 <= retry_wait_s(25, rng) <= 5120  # capped from the tenth retry on
    assert 0.2 <= retry_wait_s(1, rng, min_wait_s=0.2, multiplier=1500) <= 0.3


def test_boot_storm_every_cpe_boots_with_503_and_backoff():
    """300 CPEs booting within 0.1 s against an ACS admitting 100 new sessions/s."""
    n = 300

    async def go():
        config = AcsConfig(max_new_sessions_per_s=100, retry_after_s=1)
        async with running_acs(config) as svc, http_client(limit=100) as http:
            state = StaticStateSource(seed=1)
            agents = [
                CpeAgent(ident, svc.cwmp_url, state=state, seed=i, periodic_interval_s=3600)
                for i, ident in enumerate(make_identities(n, seed=7))
            ]
            stop = asyncio.Event()
            rng = np.random.default_rng(0)
            tasks = [
                asyncio.create_task(
                    a.run(
                        http, stop=stop, first_delay_s=float(rng.uniform(0, 0.1)), retry_base_s=0.2
                    )
                )
                for a in agents
            ]
            store = svc.acs.store
            for _ in range(400):
                booted = [a for a in agents if "_lastBoot" in (store.get_device(a.device_id) or {})]
                if len(booted) == n and not svc.acs.sessions:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            await asyncio.gather(*tasks)
            return agents, svc.acs.stats, len(booted)

    agents, stats, booted = run(go(), timeout_s=40)
    assert booted == n  # every CPE delivered its "1 BOOT"
    assert stats["refused"] > 0 and sum(a.sessions_refused for a in agents) == stats["refused"]
    assert sum(a.sessions_failed for a in agents) == 0  # refused ≠ failed
    retried = [a for a in agents if a.sessions_refused]
    assert retried and all(a.retry_count == 0 and not a.pending_events for a in retried)


def test_refused_inform_is_503_with_retry_after_and_stores_nothing():
    async def go():
        async with running_acs(AcsConfig(max_new_sessions_per_s=1, retry_after_s=9)) as svc:
            async with http_client() as http:
                assert (await RawCpe(http, svc.cwmp_url).post(inform_xml("A")))[0] == 200
                status, _, headers = await RawCpe(http, svc.cwmp_url).post(inform_xml("B"))
                assert status == 503 and headers["Retry-After"] == "9"
                assert svc.acs.store.get_device("00259E-HG8245H-B") is None

    run(go())


def test_group_commit_writes_last_state_once(tmp_path):
    db = tmp_path / "acs.sqlite"
    store = DeviceStore(db)
    store.save_device({"_id": "D1", "_tags": []}, defer=True)
    gone, _ = store.insert_task({"name": "reboot", "device": "D1"})
    store.complete_task(gone["_id"])  # queued and done before the commit
    kept, _ = store.insert_task({"name": "factoryReset", "device": "D1"})
    raw = sqlite3.connect(db)
    assert raw.execute("SELECT count(*) FROM devices").fetchone()[0] == 0  # not yet
    store.flush()
    assert [r[0] for r in raw.execute("SELECT id FROM tasks")] == [kept["_id"]]
    assert raw.execute("SELECT count(*) FROM devices").fetchone()[0] == 1
    store.close()
    again = DeviceStore(db)
    assert set(again.tasks) == {kept["_id"]} and again.get_device("D1") is not None
    again.close()


def test_acs_commits_within_its_interval(tmp_path):
    async def go():
        db = str(tmp_path / "acs.sqlite")
        async with running_acs(AcsConfig(store_commit_interval_s=0.02), db=db) as svc:
            async with http_client() as http:
                cpe = RawCpe(http, svc.cwmp_url)
                await cpe.post(inform_xml("Z"))
                assert (await cpe.post(b""))[0] == 204
                raw = sqlite3.connect(db)
                for _ in range(500):  # bounded: 5 s
                    rows = raw.execute("SELECT id FROM devices").fetchall()
                    if rows:
                        break
                    await asyncio.sleep(0.01)
                assert rows == [("00259E-HG8245H-Z",)]

    run(go())


HOSTILE = [
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
    b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>',
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode(
        "utf-16"
    ),
    b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x +AFs-+ADw-!ENTITY a "b"+AD4-+AF0-'
    b"+AD4-<x>&a;</x>",
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies_are_refused_on_every_path(body):
    with pytest.raises(soap.CwmpParseError):
        soap.parse_message(body)


def test_fast_and_defused_parsers_build_the_same_tree():
    body = inform_xml(params=[("Device.DeviceInfo.SoftwareVersion", "V1 & <2>", "xsd:string")])
    fast = soap.parse_xml(body)
    slow = DET.fromstring(body, forbid_dtd=True)
    assert tostring(fast) == tostring(slow)
    with pytest.raises(DefusedXmlException):
        soap.parse_xml(HOSTILE[0])
