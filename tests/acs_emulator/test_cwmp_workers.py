"""`guardian acs serve --workers 2`: two ACS processes on one port over one store."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import aiohttp
import httpx
import psutil
from local_servers import free_port, wait_until_answers

from acs_emulator.cpe import CpeFleet, make_identities
from acs_emulator.cwmp import soap
from acs_emulator.cwmp.store import DeviceStore, get_parameter
from acs_emulator.cwmp.testing import RawCpe, http_client, inform_xml, run

GUARDIAN = Path(sys.executable).with_name("guardian")

_ENV = dict(os.environ, GUARDIAN_CPE_CR_PASSWORD="workers-cr-pw")


def _serve(tmp_path: Path) -> tuple[subprocess.Popen, str, str]:
    cwmp, nbi, files = free_port(), free_port(), free_port()
    proc = subprocess.Popen(
        [
            str(GUARDIAN),
            "acs",
            "serve",
            "--workers",
            "2",
            "--cwmp-port",
            str(cwmp),
            "--nbi-port",
            str(nbi),
            "--file-port",
            str(files),
            "--db",
            str(tmp_path / "acs.sqlite"),
            "--no-auth",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=_ENV,
    )
    nbi_url = f"http://127.0.0.1:{nbi}"
    wait_until_answers(f"{nbi_url}/devices/", proc=proc)
    return proc, f"http://127.0.0.1:{cwmp}/", nbi_url


def _workers(proc: subprocess.Popen, expected: int = 2) -> list[int]:
    """The worker processes of ``proc``, once ``expected`` of them are up (bounded wait:
    on a busy machine the second one may still be starting when the NBI answers)."""
    for _ in range(300):
        pids = sorted(c.pid for c in psutil.Process(proc.pid).children())
        if len(pids) >= expected or proc.poll() is not None:
            break
        time.sleep(0.1)
    return pids


def _stop(proc: subprocess.Popen) -> None:
    kids = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(30)
    finally:
        # A worker that outlived its parent holds the stderr pipe open: reading it would
        # block forever, so end it before reading what the server printed.
        for kid in kids:
            with contextlib.suppress(psutil.NoSuchProcess):
                kid.kill()
    assert code == 0, proc.communicate(timeout=30)[1]


def _gpv_reply(value: str) -> bytes:
    return soap.envelope(
        soap.rpc_xml(
            "GetParameterValuesResponse",
            raw=soap.values_xml([("Device.DeviceInfo.SoftwareVersion", value, "string")]),
        )
    )


async def _sessions(url: str, n: int, rounds: int) -> int:
    """``rounds`` sessions of ``n`` CPEs over one shared 8-connection pool; 204s seen.

    Each Inform carries the round number, so the store must end with the last one.
    A shared pool sends a session's requests over any connection, hence to either
    process: the one that does not hold the session forwards them.
    """
    done = 0
    async with http_client(limit=8) as http:

        async def one(i: int) -> None:
            nonlocal done
            cpe = RawCpe(http, url)
            for r in range(1, rounds + 1):
                body = inform_xml(f"W{i:04d}", params=[("Device.DeviceInfo.UpTime", str(r), "int")])
                status, _, _ = await cpe.post(body)
                assert status == 200
                status, _, _ = await cpe.post(b"")
                done += status == 204

        await asyncio.gather(*(one(i) for i in range(n)))
    return done


def test_two_workers_record_every_inform_and_deliver_nbi_tasks(tmp_path):
    proc, url, nbi = _serve(tmp_path)
    try:
        assert len(_workers(proc)) == 2
        n, rounds = 60, 3
        assert run(_sessions(url, n, rounds)) == n * rounds
        # Unknown sessions naming both processes: answered once, not bounced between them.
        bogus = {"Cookie": f"session=00{'a' * 30}; session=01{'b' * 30}"}
        for _ in range(4):
            assert httpx.post(url, content=b"", headers=bogus, timeout=10).status_code == 400

        async def fleet_task() -> tuple[int, str, int, int]:
            fleet = CpeFleet(
                make_identities(12, seed=3),
                url,
                cr_password=_ENV["GUARDIAN_CPE_CR_PASSWORD"],
                agent_options={"periodic_interval_s": 3600, "reboot_duration_s": 0.1},
            )
            await fleet.start()
            async with aiohttp.ClientSession() as h:
                for _ in range(300):  # every CPE's BOOT Inform (bounded wait)
                    async with h.get(f"{nbi}/devices/?projection=_id") as r:
                        if len(await r.json()) == n + 12:
                            break
                    await asyncio.sleep(0.05)
                device = next(iter(fleet.agents))
                # Queued in process 0 (the NBI); the CPE's Inform may reach either.
                async with h.post(
                    f"{nbi}/devices/{quote(device, safe='')}/tasks",
                    params={"connection_request": "", "timeout": "10000"},
                    json={"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo."]},
                ) as r:
                    status = r.status
                async with h.get(f"{nbi}/tasks/") as r:
                    pending = len(await r.json())
            await fleet.stop()
            return status, device, pending, fleet.sessions_failed

        status, device, pending, failed = run(fleet_task())
        assert (status, pending, failed) == (200, 0, 0)
    finally:
        _stop(proc)
    # After a clean stop every process has flushed: nothing lost, nothing doubled.
    store = DeviceStore(tmp_path / "acs.sqlite")
    try:
        assert len(store.devices) == n + 12
        for i in range(n):
            doc = store.devices[f"00259E-HG8245H-W{i:04d}"]
            assert get_parameter(doc, "Device.DeviceInfo.UpTime") == str(rounds)
        assert store.pending_count() == 0
        assert get_parameter(store.devices[device], "Device.DeviceInfo.SoftwareVersion")
    finally:
        store.close()


def test_worker_killed_mid_run_others_serve_store_intact(tmp_path):
    proc, url, nbi = _serve(tmp_path)
    try:
        before = _workers(proc)

        async def storm() -> tuple[int, int, list[int]]:
            fleet = CpeFleet(
                make_identities(40, seed=4),
                url,
                cr_password=_ENV["GUARDIAN_CPE_CR_PASSWORD"],
                agent_options={"periodic_interval_s": 0.3, "reboot_duration_s": 0.1},
            )
            await fleet.start(spread_s=0.3)
            await asyncio.sleep(1.0)
            os.kill(before[1], signal.SIGKILL)  # a worker dies mid-run
            ok_at_kill = fleet.sessions_ok
            await asyncio.sleep(1.5)
            ok_after = fleet.sessions_ok - ok_at_kill
            deadline = time.monotonic() + 30
            while len(_workers(proc)) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await fleet.stop()
            return ok_at_kill, ok_after, _workers(proc)

        ok_at_kill, ok_after, after = run(storm())
        assert ok_at_kill > 0 and ok_after > 0  # the survivor kept serving
        assert len(after) == 2 and before[1] not in after  # the supervisor replaced it
        devices = httpx.get(f"{nbi}/devices/?projection=_id", timeout=10).json()
        assert len(devices) == 40
    finally:
        _stop(proc)
    with sqlite3.connect(tmp_path / "acs.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = DeviceStore(tmp_path / "acs.sqlite")
    try:
        assert len(store.devices) == 40
    finally:
        store.close()


def _pair(tmp_path: Path, key: bytes | None) -> tuple[DeviceStore, DeviceStore]:
    path = tmp_path / "shared.sqlite"
    return (
        DeviceStore(path, shared=True, secret_key=key),
        DeviceStore(path, shared=True, secret_key=key),
    )


def test_shared_store_applies_sibling_changes(tmp_path):
    a, b = _pair(tmp_path, os.urandom(32))
    try:
        a.save_device({"_id": "d1", "_tags": [], "X": {"_value": "1"}})
        b.sync()
        assert b.get_device("d1")["X"]["_value"] == "1"
        b.save_device({"_id": "d1", "_tags": ["t"], "X": {"_value": "2"}})
        assert a.get_device("d1")["X"]["_value"] == "1"  # until synced
        a.sync()
        assert a.get_device("d1")["X"]["_value"] == "2"
        assert a.find("devices", {"_tags": "t"})[0]["_id"] == "d1"
        pw = [["Device.WiFi.AccessPoint.1.Security.KeyPassphrase", "hunter22", "xsd:string"]]
        task, _ = a.insert_task(
            {"name": "setParameterValues", "device": "d1", "parameterValues": pw}
        )
        a.flush()
        assert b.pending_tasks("d1") == []
        b.sync()
        # The secret crossed sealed (never in the file in clear) and opens in b.
        assert b.pending_tasks("d1")[0]["parameterValues"] == pw
        with sqlite3.connect(tmp_path / "shared.sqlite") as db:
            assert "hunter22" not in str(db.execute("SELECT doc FROM tasks").fetchall())
        b.complete_task(task["_id"])
        b.flush()
        a.sync()
        assert a.task_status(task["_id"]) == "done" and a.pending_count() == 0
    finally:
        a.close()
        b.close()


def test_shared_store_without_the_key_faults_secret_tasks(tmp_path):
    path = tmp_path / "shared.sqlite"
    a = DeviceStore(path, shared=True, secret_key=os.urandom(32))
    b = DeviceStore(path, shared=True, secret_key=os.urandom(32))  # another key
    try:
        pw = [["Device.PPP.Interface.1.Password", "s3cret!", "xsd:string"]]
        task, _ = a.insert_task(
            {"name": "setParameterValues", "device": "d9", "parameterValues": pw}
        )
        a.flush()
        b.sync()
        assert b.task_status(task["_id"]) == "fault"  # never sent with a blank
        assert b.faults[f"d9:task_{task['_id']}"]["code"] == "store.secret_lost"
    finally:
        a.close()
        b.close()


def test_shared_store_keeps_the_later_inform(tmp_path):
    a, b = _pair(tmp_path, None)
    try:
        b.save_device({"_id": "d2", "_lastInform": "2026-01-01T00:00:03.000Z", "v": 3})
        # a commits an older session's document after b committed the newer one.
        a.save_device({"_id": "d2", "_lastInform": "2026-01-01T00:00:02.000Z", "v": 2})
        a.sync()
        assert a.get_device("d2")["v"] == 3
        fresh = DeviceStore(tmp_path / "shared.sqlite")
        assert fresh.get_device("d2")["v"] == 3
        fresh.close()
    finally:
        a.close()
        b.close()


def test_each_worker_gets_its_share_of_admission(tmp_path):
    from acs_emulator.cwmp.config import AcsConfig
    from acs_emulator.cwmp.workers import AcsWorkers, _worker_config

    pool = AcsWorkers(
        3,
        tmp_path / "acs.sqlite",
        lambda: AcsConfig(max_sessions=1000, max_new_sessions_per_s=900.0),
    )
    pool.file_url = "http://127.0.0.1:7567/"
    configs = [_worker_config(pool, i) for i in range(3)]
    assert [c.max_sessions for c in configs] == [334] * 3  # rounded up: never below the ask
    assert sum(c.max_new_sessions_per_s for c in configs) == 900.0
    assert [c.session_token_prefix for c in configs] == ["00", "01", "02"]
    assert configs[1].file_server_url == pool.file_url  # files are served by worker 0
    assert set(configs[0].sibling_sockets) == {"01", "02"}
    pool.stop()
