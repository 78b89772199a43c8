"""Vendor profiles are data: all load, select by sysObjectID/sysDescr, errors name the file."""

from __future__ import annotations

import importlib

import pytest

import guardian_lib.snmp as snmp_pkg
from guardian_lib.errors import ConfigError
from guardian_lib.snmp.errors import SnmpProfileError
from guardian_lib.snmp.profiles import builtin_profiles_dir, load_profiles, select_profile

REQUIRED = {
    "huawei_ma5800",
    "zte_c300_v1",
    "zte_c600",
    "fiberhome_an5516",
    "vsol_v1600_epon",
    "vsol_v1600_gpon",
    "calix_axos",
    "ubiquiti_ufiber",
}


def test_builtin_profiles_load():
    profiles = load_profiles()
    assert REQUIRED <= set(profiles)
    # ZTE 3902.1082 reports only the OLT-side reading: rx_dbm must stay empty
    assert profiles["zte_c600"].columns.rx_dbm is None
    assert profiles["zte_c600"].columns.olt_rx_dbm is not None


@pytest.mark.parametrize(
    ("oid", "descr", "name"),
    [
        ("1.3.6.1.4.1.2011.2.248", "Huawei Integrated Access Software MA5608T", "huawei_ma5800"),
        ("1.3.6.1.4.1.3902.1082.1001.320.1", "ZXA10 C320 Version V1.2.5P3 Software", "zte_c300_v1"),
        ("1.3.6.1.4.1.3902.1082.1001.320.1", "ZXA10 C320 Version V2.1.0 Software", "zte_c600"),
        ("1.3.6.1.4.1.3902.1082.1001.600.1", "ZXA10 C600 Version V1.1.0", "zte_c600"),
        ("1.3.6.1.4.1.3902.1082.1001.300.1", "ZXA10 C300", "zte_c300_v1"),  # version unknown
        ("1.3.6.1.4.1.5875.800.1001.16", "AN5516-06 FiberHome", "fiberhome_an5516"),
        ("1.3.6.1.4.1.37950.1.1.5.10.14.1", "V1600D", "vsol_v1600_epon"),
        ("1.3.6.1.4.1.37950.1.1.5.10.14.1", "V1600GS", "vsol_v1600_gpon"),
        ("1.3.6.1.4.1.6321.1.2.4.1.1", "Calix, Inc E7-2 XG801 none", "calix_axos"),
        (".1.3.6.1.4.1.41112.1.5", "EdgeOS v4.4.2", "ubiquiti_ufiber"),
    ],
)
def test_select_profile(oid, descr, name):
    assert select_profile(load_profiles(), oid, descr).name == name


def test_no_profile_error_names_olt_and_answer():
    with pytest.raises(SnmpProfileError, match=r"OLT X-9.*sysObjectID='1.3.6.1.4.1.9'"):
        select_profile(load_profiles(), "1.3.6.1.4.1.9", "Cisco IOS", olt_id="X-9")


def test_operator_profile_dir_adds_and_overrides(tmp_path):
    text = (builtin_profiles_dir() / "huawei_ma5800.yaml").read_text()
    (tmp_path / "mine.yaml").write_text(text.replace("name: huawei_ma5800", "name: my_olt"))
    profiles = load_profiles([tmp_path])
    assert "my_olt" in profiles and "huawei_ma5800" in profiles


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("name: a\nvendor: b\ncolumns: {}\n", r"bad\.yaml.*columns.*at least one of rx_dbm"),
        (
            "name: a\nvendor: b\ncolumns: {rx_dbm: {oid: 'iso.3.6'}}\n",
            r"bad\.yaml.*columns\.rx_dbm\.oid.*dotted numeric OID.*iso\.3\.6",
        ),
        (
            "name: a\nvendor: b\ncolumns:\n  rx_dbm: {oid: 1.3.6.1}\n"
            "  down_cause: {oid: 1.3.6.2, causes: {1: FIRE}}\n",
            r"bad\.yaml.*down_cause\.causes.*FIRE",
        ),
        ("- just a list\n", r"bad\.yaml.*YAML mapping"),
    ],
)
def test_invalid_profile_names_file_and_field(tmp_path, body, match):
    (tmp_path / "bad.yaml").write_text(body)
    with pytest.raises(ConfigError, match=match):
        load_profiles([tmp_path])


@pytest.mark.parametrize(
    "module",
    [
        "guardian_lib.snmp",
        "guardian_lib.snmp.ber",
        "guardian_lib.snmp.encodings",
        "guardian_lib.snmp.fast",
        "guardian_lib.snmp.errors",
        "guardian_lib.snmp.inventory",
        "guardian_lib.snmp.poller",
        "guardian_lib.snmp.profiles",
        "guardian_lib.snmp.rows",
        "guardian_lib.snmp.transport",
        "guardian_lib.snmp.traps",
        "guardian_lib.snmp.cli",
        "acs_emulator.olt",
        "acs_emulator.olt.agent",
        "acs_emulator.olt.mib",
        "acs_emulator.olt.serve",
        "acs_emulator.olt.vendors",
        "acs_emulator.olt.cli",
        "acs_emulator.olt.cli_vendors",
        "acs_emulator.olt.cli_base",
        "acs_emulator.olt.cli_huawei",
        "acs_emulator.olt.cli_zte",
        "acs_emulator.olt.cli_fiberhome",
        "acs_emulator.olt.snmp_set",
        "acs_emulator.olt.telnet",
        "acs_emulator.olt.provisioning",
        "acs_emulator.olt.ssh",
        "acs_emulator.olt.traps",
        "guardian_lib.olt",
        "guardian_lib.olt.bulk",
        "guardian_lib.olt.changes",
        "guardian_lib.olt.cli",
        "guardian_lib.olt.driver",
        "guardian_lib.olt.inventory",
        "guardian_lib.olt.profiles",
        "guardian_lib.olt.session",
        "guardian_lib.olt.snmp_set",
        "guardian_lib.olt.telnet",
    ],
)
def test_all_names_exist(module):
    mod = importlib.import_module(module)
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ lists missing {name}"
    assert snmp_pkg.__all__


def test_snmp_package_imports_neither_simulator_nor_emulator():
    pkg = builtin_profiles_dir().parent
    for path in pkg.glob("*.py"):
        text = path.read_text()
        assert "import simulator" not in text and "from simulator" not in text, path
        assert "acs_emulator" not in text, path
