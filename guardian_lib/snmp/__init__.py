"""SNMP poller for OLTs: vendor profiles as data, async pysnmp polling, RAW rows.

Typical use::

    from guardian_lib.snmp import load_inventory, poll_once, write_to_warehouse

    report = poll_once(load_inventory("olts.yaml"))
    write_to_warehouse(report, "data/runs/prod")
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "EVENTS_SCHEMA": "guardian_lib.snmp.poller",
        "FastV2cSession": "guardian_lib.snmp.fast",
        "TELEMETRY_SCHEMA": "guardian_lib.snmp.poller",
        "Inventory": "guardian_lib.snmp.inventory",
        "OltEntry": "guardian_lib.snmp.inventory",
        "OltPollResult": "guardian_lib.snmp.poller",
        "PollReport": "guardian_lib.snmp.poller",
        "Profile": "guardian_lib.snmp.profiles",
        "SnmpAuthError": "guardian_lib.snmp.errors",
        "SnmpCredentials": "guardian_lib.snmp.transport",
        "SnmpCredentialsError": "guardian_lib.snmp.errors",
        "SnmpError": "guardian_lib.snmp.errors",
        "SnmpProfileError": "guardian_lib.snmp.errors",
        "SnmpProtocolError": "guardian_lib.snmp.errors",
        "SnmpSession": "guardian_lib.snmp.transport",
        "SnmpTimeoutError": "guardian_lib.snmp.errors",
        "TrapReceiver": "guardian_lib.snmp.traps",
        "TrapUser": "guardian_lib.snmp.traps",
        "load_trap_profiles": "guardian_lib.snmp.traps",
        "dbm_in_string": "guardian_lib.snmp.encodings",
        "decimal_string_dbm": "guardian_lib.snmp.encodings",
        "decode_dbm": "guardian_lib.snmp.encodings",
        "decode_serial": "guardian_lib.snmp.encodings",
        "decode_walk": "guardian_lib.snmp.rows",
        "derive_events": "guardian_lib.snmp.rows",
        "linear_mw_dbm": "guardian_lib.snmp.encodings",
        "load_inventory": "guardian_lib.snmp.inventory",
        "load_profile": "guardian_lib.snmp.profiles",
        "load_profiles": "guardian_lib.snmp.profiles",
        "new_engine": "guardian_lib.snmp.transport",
        "poll_inventory": "guardian_lib.snmp.poller",
        "poll_olt": "guardian_lib.snmp.poller",
        "poll_once": "guardian_lib.snmp.poller",
        "resolve_credentials": "guardian_lib.snmp.inventory",
        "scaled_dbm": "guardian_lib.snmp.encodings",
        "select_profile": "guardian_lib.snmp.profiles",
        "write_parquet": "guardian_lib.snmp.poller",
        "write_to_warehouse": "guardian_lib.snmp.poller",
    },
)
