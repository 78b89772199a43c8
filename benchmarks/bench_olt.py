"""Benchmark OLT provisioning: authorizations per minute on one emulated OLT (issue 21).

A simulated OLT (the ``small`` scenario's first OLT, as Huawei MA5800, ZTE C320, ZTE
C600 or FiberHome AN5516-06) has N ONUs left unauthorized; its command line is served over SSH on 127.0.0.1
by ``acs_emulator.olt.ssh``. We authorize all of them with a PPPoE WAN:

1. ``driver``: one :class:`guardian_lib.olt.OltDriver` session, ``authorize`` per ONU
   (autofind check + ONU + service port + WAN, 6–10 commands each);
2. ``audited``: :func:`guardian_lib.olt.bulk.run_bulk` with no rate limit — every change
   also reads the state before and after and writes two audit records.

3. ``--sets N``: SNMP SET round trips per second against one emulated agent (v2c and v3
   authPriv): ifAdminStatus of a PON port alternately down / up, each SET changing the
   simulation; ``raw`` is one :class:`guardian_lib.olt.snmp_set.SnmpSetter` session,
   ``audited`` goes through :class:`OltChanges` (GET before, SET, GET after, two audit
   records, a new SNMP engine per change).

Client and emulated OLT share this process and its event loops (2-core machine), so the
figures are a floor for the library against a real OLT, whose own command latency
(typically 50–500 ms per configuration command) dominates in the field::

    .venv/bin/python benchmarks/bench_olt.py [--onus 60] [--family huawei] [--sets 400]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from acs_emulator.olt.provisioning import OltConfigBackend, unprovision_onus
from acs_emulator.olt.serve import single_vendor_simulation
from acs_emulator.olt.ssh import OltCliServer, write_cli_inventory
from guardian_lib.olt.bulk import run_bulk
from guardian_lib.olt.changes import Change, OltAudit, OltChanges
from guardian_lib.olt.driver import AuthorizeRequest, OltDriver
from guardian_lib.olt.inventory import load_cli_inventory

FAMILIES = {"huawei": ("huawei", "MA5800-X7"), "zte_c320": ("zte", "C320"),
            "zte_c600": ("zte", "C600"), "fiberhome": ("fiberhome", "AN5516-06")}  # fmt: skip


def _lab(family: str, n: int, tmp: Path, seed: int):
    vendor, model = FAMILIES[family]
    sim = single_vendor_simulation("small", vendor, model, seed)
    olt_id = str(sim.topology.olts["olt_id"].iloc[0])
    unprovision_onus(sim, olt_id, n, np.random.default_rng(seed))
    backend = OltConfigBackend(sim, olt_id)
    server = OltCliServer([backend]).start_in_thread()
    inv_path, sec = write_cli_inventory(tmp / "olt-cli.yaml", server)
    with sec.open("a") as fh:
        fh.write("pppoe: {bench: {username: bench@isp, password: bench-pw}}\n")
    os.chmod(sec, 0o600)
    return sim, olt_id, backend, server, load_cli_inventory(inv_path)


async def _driver_run(inv, olt_id: str) -> tuple[int, float]:
    async with OltDriver(inv.target(olt_id), inv.profile_of(olt_id)) as olt:
        waiting = await olt.autofind()
        t0 = time.perf_counter()
        for a in waiting:
            req = AuthorizeRequest(a.slot, a.port, a.serial, vlan=100, wan="pppoe",
                                   pppoe_username="bench@isp", pppoe_password="bench-pw")  # fmt: skip
            await olt.authorize(req)
        return len(waiting), time.perf_counter() - t0


async def _audited_run(inv, olt_id: str, tmp: Path, port_base: int) -> tuple[int, float, int]:
    changes = OltChanges(inv, OltAudit(tmp / "audit.jsonl"), who="bench")
    async with changes.driver(olt_id) as olt:
        waiting = await olt.autofind()
    rows = [Change(olt_id, "authorize", {"slot": a.slot, "port": a.port, "serial": a.serial,
                                         "vlan": 100, "wan": "pppoe", "pppoe": "bench"})
            for a in waiting]  # fmt: skip
    t0 = time.perf_counter()
    results = await run_bulk(changes, rows, per_minute=1e9)
    ok = sum(r.status == "ok" for r in results)
    return len(rows), time.perf_counter() - t0, ok


def _snmp_set_run(version: str, n: int, audited: bool, tmp: Path) -> tuple[int, float]:
    import yaml

    from acs_emulator.olt.serve import EmulatorCredentials, simulated_pool
    from guardian_lib.olt.snmp_set import SnmpSetter

    sim = single_vendor_simulation("small", "huawei", "MA5800-X7", 3)
    olt_id = str(sim.topology.olts["olt_id"].iloc[0])
    backend = OltConfigBackend(sim, olt_id)
    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds, olt_ids=[olt_id], set_backends={olt_id: backend})
    pool.start_in_thread()
    handler = pool.specs[0].set_fn
    try:
        sec = tmp / "s.yaml"
        u = creds.write_user
        sec.write_text(yaml.safe_dump({"cli": {"username": "u", "password": "p"}, "rw": {
            "write_community": creds.write_community, "v3_user": u.user,
            "auth_key": u.auth_key, "priv_key": u.priv_key}}))  # fmt: skip
        os.chmod(sec, 0o600)
        inv_path = tmp / "inv.yaml"
        inv_path.write_text(yaml.safe_dump({"secrets_file": sec.name, "olts": [{
            "olt_id": olt_id, "host": "127.0.0.1", "profile": "huawei_ma5800",
            "credentials": "cli", "snmp_set": {"port": pool.ports[olt_id], "version": version,
                                               "credentials": "rw"}}]}))  # fmt: skip
        inv = load_cli_inventory(inv_path)
        changes = OltChanges(inv, OltAudit(tmp / "audit.jsonl"), who="bench")
        host, port, wcreds, _ = inv.snmp_set_target(olt_id)
        oid = "1.3.6.1.2.1.2.2.1.7." + str(
            int(sim.topology.pons[sim.topology.pons["olt_id"] == olt_id]["if_index"].iloc[0])
        )

        async def go() -> float:
            t0 = time.perf_counter()
            if audited:
                for i in range(n):
                    op = "port-disable" if i % 2 == 0 else "port-enable"
                    ch = Change(olt_id, op, {"slot": 1, "port": 0, "via": "snmp"})
                    assert (await changes.apply(ch)).status == "ok"
            else:
                async with SnmpSetter(olt_id, host, port, wcreds) as agent:
                    for i in range(n):
                        await agent.set([(oid, 2 if i % 2 == 0 else 1)])
            return time.perf_counter() - t0

        dt = asyncio.run(go())
        assert handler.applied == n, f"{handler.applied} of {n} SETs applied"
        return n, dt
    finally:
        pool.stop_thread()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onus", type=int, default=60, help="ONUs to authorize per run")
    ap.add_argument("--family", choices=sorted(FAMILIES), action="append")
    ap.add_argument("--sets", type=int, default=0, help="also time N SNMP SETs (v2c, v3)")
    args = ap.parse_args()
    if args.sets:
        print(f"{'SNMP SET':<10} {'mode':<8} {'SETs':>5} {'seconds':>8} {'SET/s':>9}")
        for version in ("2c", "3"):
            for audited in (False, True):
                with tempfile.TemporaryDirectory() as d:
                    n, dt = _snmp_set_run(version, args.sets, audited, Path(d))
                mode = "audited" if audited else "raw"
                print(f"{'v' + version:<10} {mode:<8} {n:>5} {dt:>8.2f} {n / dt:>9.0f}")
    print(f"{'family':<10} {'mode':<8} {'ONUs':>5} {'seconds':>8} {'auth/min':>9} {'changes':>8}")
    for family in args.family or sorted(FAMILIES):
        for mode in ("driver", "audited"):
            with tempfile.TemporaryDirectory() as d:
                sim, olt_id, backend, server, inv = _lab(family, args.onus, Path(d), seed=3)
                try:
                    if mode == "driver":
                        n, dt = asyncio.run(_driver_run(inv, olt_id))
                        ok = n
                    else:
                        n, dt, ok = asyncio.run(_audited_run(inv, olt_id, Path(d), 0))
                    assert ok == n, f"{family} {mode}: only {ok} of {n} authorized"
                    left = len(backend.autofind())
                    assert left == 0, f"{family} {mode}: {left} ONUs still waiting"
                    print(f"{family:<10} {mode:<8} {n:>5} {dt:>8.2f} {n / dt * 60:>9.0f} "
                          f"{backend.changes:>8}")  # fmt: skip
                finally:
                    server.stop_thread()


if __name__ == "__main__":
    main()
