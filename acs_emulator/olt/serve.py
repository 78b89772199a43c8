"""Wire simulated OLTs (or captured walks) to agents, and write the poller's inventory."""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from acs_emulator.olt.agent import AgentPool, AgentSpec, V3User
from acs_emulator.olt.mib import load_snmprec
from acs_emulator.olt.vendors import LiveOltTable, StateSource

__all__ = [
    "EmulatorCredentials",
    "simulated_pool",
    "single_vendor_simulation",
    "snmprec_pool",
    "write_inventory",
    "run_with_ticks",
]


class EmulatorCredentials:
    """Random v2c community and v3 user (authPriv SHA/AES) shared by the emulated OLTs.

    Parameters
    ----------
    community, user, auth_key, priv_key : str, optional
        Random when not given.
    """

    def __init__(
        self,
        community: str | None = None,
        user: str = "guardian",
        auth_key: str | None = None,
        priv_key: str | None = None,
    ) -> None:
        self.community = community or "c-" + secrets.token_hex(6)
        self.user = user
        self.auth_key = auth_key or secrets.token_hex(8)
        self.priv_key = priv_key or secrets.token_hex(8)
        # SNMP SET (opt-in per agent): its own community and v3 user, never the read ones
        self.write_community = "w-" + secrets.token_hex(6)
        self.write_user = V3User(user + "-rw", secrets.token_hex(8), secrets.token_hex(8))

    @property
    def v3_user(self) -> V3User:
        """The agents' USM user."""
        return V3User(self.user, self.auth_key, self.priv_key)


def single_vendor_simulation(scenario: str, vendor: str, model: str, seed: int) -> Any:
    """A shipped scenario whose OLTs are all ``vendor`` / ``model``, stepped once.

    Parameters
    ----------
    scenario : str
        Scenario name or file (``tiny``, ``small`` …).
    vendor : {'huawei', 'zte', 'fiberhome'}
    model : str
        OLT model, e.g. ``MA5800-X7``, ``C320``, ``C600``, ``AN5516-06``.
    seed : int

    Returns
    -------
    simulator.engine.Simulation
    """
    from simulator.engine import Simulation
    from simulator.scenario import load_scenario

    sc = load_scenario(scenario)
    sc = sc.model_copy(
        update={"topology": sc.topology.model_copy(update={"vendor_mix": {vendor: 1.0}})}
    )
    sim = Simulation(sc, seed=seed)
    sim.topology.olts["model"] = model
    sim.step()
    return sim


def simulated_pool(
    source: StateSource,
    credentials: EmulatorCredentials,
    *,
    base_port: int = 0,
    host: str = "127.0.0.1",
    olt_ids: list[str] | None = None,
    mibs: dict[str, str] | None = None,
    lock: threading.Lock | None = None,
    set_backends: dict[str, Any] | None = None,
) -> AgentPool:
    """One agent per simulated OLT, serving live values from ``source``.

    Parameters
    ----------
    source : StateSource
        E.g. a ``simulator.engine.Simulation`` that has stepped at least once.
    credentials : EmulatorCredentials
    base_port : int
        First UDP port (OLT i gets ``base_port + i``); 0 = any free ports.
    host : str
    olt_ids : list of str, optional
        Subset of ``source.topology.olts`` (all by default).
    mibs : dict, optional
        OLT id → MIB family override (see ``vendors.VENDOR_MIBS``).
    lock : threading.Lock, optional
        Held while reading the source; hold it too while stepping the simulation.
    set_backends : dict, optional
        OLT id → :class:`~acs_emulator.olt.provisioning.OltConfigBackend`: those agents
        answer SNMP SET (``credentials.write_community`` / ``write_user``) by changing the
        simulation (:class:`~acs_emulator.olt.snmp_set.OltSetHandler`).
    """
    from acs_emulator.olt.snmp_set import OltSetHandler

    ids = olt_ids or [str(o) for o in source.topology.olts["olt_id"]]
    lock = lock or threading.Lock()
    specs = []
    for i, olt_id in enumerate(ids):
        table = LiveOltTable(source, olt_id, mib=(mibs or {}).get(olt_id), lock=lock)
        spec = AgentSpec(
            name=olt_id,
            table_fn=table,
            port=base_port + i if base_port else 0,
            community=credentials.community,
            v3_users=[credentials.v3_user],
            host=host,
        )
        backend = (set_backends or {}).get(olt_id)
        if backend is not None:
            spec.set_fn = OltSetHandler(backend)
            spec.write_community = credentials.write_community
            spec.v3_users.append(credentials.write_user)
            spec.write_users = [credentials.write_user.user]
        specs.append(spec)
    return AgentPool(specs)


def snmprec_pool(
    paths: list[str | Path], *, host: str = "127.0.0.1", v3_users: list[V3User] | None = None
) -> AgentPool:
    """One agent per snmprec file; the community is the file name without extension.

    This replaces ``snmpsim-command-responder`` in tests: snmpsim refuses to run as root
    and, after dropping privileges, cannot read an interpreter installed under ``/root``.
    """
    specs = []
    for p in paths:
        p = Path(p)
        table = load_snmprec(p)
        specs.append(
            AgentSpec(
                name=p.stem,
                table_fn=lambda t=table: t,
                community=p.stem,
                v3_users=list(v3_users or []),
                host=host,
            )
        )
    return AgentPool(specs)


def write_inventory(
    path: str | Path,
    pool: AgentPool,
    credentials: EmulatorCredentials,
    *,
    version: str = "2c",
    host: str = "127.0.0.1",
    credentials_ref: str = "emulator",
) -> tuple[Path, Path]:
    """Write the inventory for ``guardian poll`` and its secret file (mode 0600).

    Returns
    -------
    inventory, secrets : Path
        ``<path>`` and ``<path stem>.secrets.yaml`` beside it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets_path = path.with_name(path.stem + ".secrets.yaml")
    secret = {
        credentials_ref: {
            "community": credentials.community,
            "user": credentials.user,
            "auth_key": credentials.auth_key,
            "priv_key": credentials.priv_key,
            "auth_protocol": "SHA",
            "priv_protocol": "AES",
        }
    }
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_TRUNC
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yaml.safe_dump(secret, fh, sort_keys=False)
    inventory: dict[str, Any] = {
        "secrets_file": secrets_path.name,
        "defaults": {"timeout_s": 2.0, "retries": 2, "max_concurrent_olts": 16},
        "olts": [
            {
                "olt_id": name,
                "host": host,
                "port": port,
                "version": version,
                "credentials": credentials_ref,
            }
            for name, port in pool.ports.items()
        ],
    }
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path, secrets_path


async def run_with_ticks(
    pool: AgentPool,
    step: Callable[[], Any] | None,
    tick_s: float,
    lock: threading.Lock,
    ready: Callable[[AgentPool], None] | None = None,
) -> None:
    """Serve ``pool`` and call ``step()`` (under ``lock``) every ``tick_s`` seconds.

    Parameters
    ----------
    pool : AgentPool
    step : callable or None
        Advances the simulation one tick; None or ``tick_s <= 0`` freezes the state.
    tick_s : float
        Wall time between ticks. [s]
    lock : threading.Lock
    ready : callable, optional
        Called once the agents are up.
    """

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_s)
            with lock:
                try:
                    step()  # type: ignore[misc]
                except StopIteration:
                    return

    task = asyncio.create_task(ticker()) if step is not None and tick_s > 0 else None
    try:
        await pool.serve(ready=ready)
    finally:
        if task is not None:
            task.cancel()
