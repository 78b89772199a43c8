"""Real OLT walks (../shared/fixtures/snmp) served on loopback and polled with the profiles.

snmpsim refuses to run as root and, once it drops privileges, cannot read the interpreter
under /root, so the walks are served by our own snmprec-backed agent
(``acs_emulator.olt.serve.snmprec_pool``), which answers GET / GETNEXT / GETBULK the same way.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from acs_emulator.olt.agent import V3User
from acs_emulator.olt.serve import snmprec_pool
from guardian_lib.snmp import Inventory, OltEntry, poll_once
from guardian_lib.snmp.profiles import load_profiles

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "snmp"
WALKS = {
    "axos_e7-2": "calix_axos",
    "edgeosolt": "ubiquiti_ufiber",
    "vsolution_v1600d": "vsol_v1600_epon",
    "vsolution_v1600gs": "vsol_v1600_gpon",
}
USER = V3User("noc", "fixture-auth-key", "fixture-priv-key")


def _env(names):
    return {f"GUARDIAN_SNMP_{n.upper().replace('-', '_')}_COMMUNITY": n for n in names}


@pytest.fixture(scope="module")
def fixture_agents():
    missing = [n for n in WALKS if not (FIXTURES / f"{n}.snmprec").is_file()]
    assert not missing, f"fixtures missing under {FIXTURES}: {missing}"
    pool = snmprec_pool([FIXTURES / f"{n}.snmprec" for n in WALKS], v3_users=[USER])
    pool.start_in_thread()
    yield pool.ports
    pool.stop_thread()


@pytest.fixture(scope="module")
def auto_report(fixture_agents):
    inv = Inventory(
        olts=[
            OltEntry(olt_id=n, host="127.0.0.1", port=p, credentials=n)
            for n, p in fixture_agents.items()
        ]
    )
    return poll_once(inv, environ=_env(WALKS))


@pytest.mark.parametrize("name", sorted(WALKS))
def test_walk_reproduces_expected_values(auto_report, name):
    result = next(r for r in auto_report.results if r.olt_id == name)
    assert result.complete, result.error
    assert result.profile == WALKS[name]  # picked from sysObjectID / sysDescr
    expected = json.loads((FIXTURES / f"{name}.expected.json").read_text())
    got = result.telemetry.set_index("snmp_index")
    assert got.index.is_unique
    missing = sorted(set(expected) - set(got.index))
    assert not missing, f"{name}: ONUs not found: {missing[:5]}"
    for index, values in expected.items():
        for field, want in values.items():
            have = got.at[index, field]
            if want is None:
                assert math.isnan(have), f"{name} {index} {field}: invented {have}"
            else:
                assert abs(have - want) <= 0.01, f"{name} {index} {field}: {have} vs {want}"
    # nothing invented: rows outside expected.json carry no optical reading at all
    extra = got.loc[~got.index.isin(list(expected)), ["rx_dbm", "tx_dbm", "olt_rx_dbm"]]
    assert extra.isna().all().all(), extra.dropna(how="all")
    assert (result.telemetry["source"] == "snmp").all()
    assert (result.telemetry["olt_id"] == name).all()


def test_offline_ufiber_onus_are_rows_without_readings(auto_report):
    t = next(r for r in auto_report.results if r.olt_id == "edgeosolt").telemetry
    assert len(t) == 29
    offline = t[t["online"] == False]  # noqa: E712 (nullable boolean)
    assert len(offline) == 13
    assert offline[["rx_dbm", "tx_dbm"]].isna().all().all()
    # the serial is decoded from the index and used as the ONU id
    assert set(t["onu_id"]) == set(t["serial"])
    assert all(s.startswith("UBNT") for s in t["serial"])


def test_fixture_with_explicit_profile_over_v3(fixture_agents):
    inv = Inventory(
        olts=[
            OltEntry(
                olt_id="vsol",
                host="127.0.0.1",
                port=fixture_agents["vsolution_v1600d"],
                version="3",
                credentials="noc",
                profile="vsol_v1600_epon",
            )
        ]
    )
    env = {
        "GUARDIAN_SNMP_NOC_USER": USER.user,
        "GUARDIAN_SNMP_NOC_AUTH_KEY": USER.auth_key,
        "GUARDIAN_SNMP_NOC_PRIV_KEY": USER.priv_key,
    }
    report = poll_once(inv, load_profiles(), environ=env)
    r = report.results[0]
    assert r.complete, r.error
    assert len(r.telemetry) == 16
    assert np.isfinite(r.telemetry["rx_dbm"]).all()


def test_pysnmp_backend_gives_the_same_rows(fixture_agents, auto_report):
    inv = Inventory(
        olts=[OltEntry(olt_id="axos_e7-2", host="127.0.0.1", port=fixture_agents["axos_e7-2"],
                       credentials="axos_e7-2", backend="pysnmp")]
    )  # fmt: skip
    slow = poll_once(inv, environ=_env(WALKS)).results[0].telemetry
    fast = next(r for r in auto_report.results if r.olt_id == "axos_e7-2").telemetry
    cols = ["snmp_index", "rx_dbm", "tx_dbm", "olt_rx_dbm"]
    assert slow[cols].equals(fast[cols])
