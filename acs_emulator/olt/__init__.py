"""Emulated OLTs backed by simulator state or captured walks: SNMP agents (Huawei / ZTE /
FiberHome), SSH command lines (Huawei / ZTE / FiberHome, ``docs/olt.md``) and SNMP traps.

Typical use (see ``docs/snmp.md``)::

    from acs_emulator.olt import EmulatorCredentials, simulated_pool, write_inventory

    creds = EmulatorCredentials()
    pool = simulated_pool(sim, creds, base_port=16100).start_in_thread()
    write_inventory("olts.yaml", pool, creds)
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "VENDOR_MIBS": "acs_emulator.olt.vendors",
        "AgentPool": "acs_emulator.olt.agent",
        "AgentSpec": "acs_emulator.olt.agent",
        "EmulatorCredentials": "acs_emulator.olt.serve",
        "LiveOltTable": "acs_emulator.olt.vendors",
        "OidTable": "acs_emulator.olt.mib",
        "OltAgent": "acs_emulator.olt.agent",
        "OltCliServer": "acs_emulator.olt.ssh",
        "OltConfigBackend": "acs_emulator.olt.provisioning",
        "OltTrapSender": "acs_emulator.olt.traps",
        "unprovision_onus": "acs_emulator.olt.provisioning",
        "write_cli_inventory": "acs_emulator.olt.ssh",
        "StateSource": "acs_emulator.olt.vendors",
        "TableMibInstrum": "acs_emulator.olt.mib",
        "V3User": "acs_emulator.olt.agent",
        "answer_v2c": "acs_emulator.olt.agent",
        "build_olt_table": "acs_emulator.olt.vendors",
        "load_snmprec": "acs_emulator.olt.mib",
        "mib_for": "acs_emulator.olt.vendors",
        "olt_view": "acs_emulator.olt.vendors",
        "run_with_ticks": "acs_emulator.olt.serve",
        "simulated_pool": "acs_emulator.olt.serve",
        "single_vendor_simulation": "acs_emulator.olt.serve",
        "OltSetHandler": "acs_emulator.olt.snmp_set",
        "snmprec_pool": "acs_emulator.olt.serve",
        "write_inventory": "acs_emulator.olt.serve",
    },
)
