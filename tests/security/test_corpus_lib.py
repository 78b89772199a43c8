"""Hostile-input corpus of the library's inputs: each file has one exact, safe outcome.

``corpus/snmp/*.bin`` are datagrams offered to the fast SNMP client as answers to a
pending request (and to a running agent); ``corpus/mapping/<case>/`` a column mapping
and a CSV; ``corpus/scenario/*.yaml`` scenarios; ``corpus/settings/*.env`` autopilot
environments. ``make_corpus_lib.py`` regenerates the files.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import pytest

from acs_emulator.olt.agent import AgentPool, AgentSpec
from acs_emulator.olt.mib import OCTET_STRING, OidTable
from guardian_lib.decision import AutopilotSettings
from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.ingest import ingest_user_telemetry, load_column_mapping
from guardian_lib.snmp.ber import BerError, decode_message
from guardian_lib.snmp.fast import _Endpoint
from guardian_lib.snmp.transport import SnmpCredentials, SnmpSession, new_engine
from simulator.scenario import load_scenario

CORPUS = Path(__file__).with_name("corpus")

# --- SNMP datagrams: 'ber_error' (decoder refuses), 'ignored' (decodes, not an answer),
# 'answer' (resolves the pending request).
SNMP = {
    "empty": "ber_error",
    "one_zero_byte": "ber_error",
    "length_past_end": "ber_error",
    "http_request": "ber_error",
    "snmpv3_header": "ber_error",
    "length_form_5_bytes": "ber_error",
    "unknown_pdu_type": "ber_error",
    "varbind_longer_than_list": "ber_error",
    "oid_subid_overflow": "ber_error",
    "oid_unterminated": "ber_error",
    "nested_zeros": "ber_error",
    "pysnmp_crasher": "ber_error",
    "get_pdu_with_pending_id": "ignored",
    "trap_v2_with_pending_id": "ignored",
    "set_pdu_with_pending_id": "ignored",
    "response_wrong_community": "ignored",
    "response_v1_valid": "answer",
    "response_valid": "answer",
}
# --- mapping + CSV: (error type or None, text the one-line message must contain).
MAPPING = {
    "valid_dbm": (None, ""),
    "centi_dbm_scale_1": (IngestError, "with scale: 0.01 the median would be"),
    "alias_bomb": (ConfigError, "expands to more than"),
    "python_object_tag": (ConfigError, "could not determine a constructor"),
    "unknown_target_column": (ConfigError, "columns.rx_power: not a telemetry column"),
    "missing_onu_id": (ConfigError, "columns.onu_id: required mapping is missing"),
    "extra_key": (ConfigError, "delimiter: Extra inputs are not permitted"),
    "bad_number": (IngestError, "row 2 (line 3): column 'rx': expected a number"),
    "bad_timestamp": (IngestError, "row 1 (line 2): column 'ts': expected a timestamp"),
    "empty_onu_id": (IngestError, "column 'onu_id': expected an ONU id"),
    "empty_csv": (IngestError, "cannot read file"),
    "header_only": (IngestError, "no data rows"),
    "deep_nesting": (ConfigError, "YAML nested too deeply"),
    "not_utf8_mapping": (ConfigError, "not UTF-8"),
    "recursive_alias": (ConfigError, "recursive YAML alias"),
    "nul_in_csv": (None, ""),
}
# --- scenarios: (None → loads, else text of the ConfigError).
SCENARIO = {
    "valid_tiny": None,
    "alias_bomb": "expands to more than",
    "eight_million_onus": "onus_per_pon_max) exceeds the guard of 100,000;",
    "storms_1e9": "weather.storms_per_year_per_region: Input should be less than or equal to 365",
    "fault_rate_1e9": "faults.feeder_cut.rate_per_year: Input should be less than or equal to",
    "many_fault_starts": "expected fault and call starts exceeds the guard",
    "call_rate_1e6": "customers.call_rate_per_hour_offline: Input should be less than or equal",
    "recursive_alias": "recursive YAML alias",
    "deep_nesting": "YAML nested too deeply",
    "top_level_list": "expected a mapping at the top level",
    "not_utf8": "not UTF-8",
    "python_tag": "could not determine a constructor",
}
# --- settings: (None → starts, else text of the one-line ConfigError).
SETTINGS = {
    "valid_execute": None,
    "autopilot_kill_switch": "AUTOPILOT_KILL_SWITCH is not a Network Guardian setting "
    "(did you mean KILL_SWITCH?)",
    "guardian_killswitch": "GUARDIAN_KILLSWITCH is not a Network Guardian setting "
    "(did you mean KILL_SWITCH?)",
    "killswitch_no_underscore": "KILLSWITCH is not a Network Guardian setting "
    "(did you mean KILL_SWITCH?)",
    "autopilot_mode_typo_key": "AUTOPILOT_MOD is not a Network Guardian setting;",
    "mode_invalid": "AUTOPILOT_MODE: Input should be 'simulate' or 'execute', got 'yolo'",
    "cooldown_zero": "REBOOT_COOLDOWN_MINUTES: Input should be greater than or equal to 10",
    "cooldown_nan": "REBOOT_COOLDOWN_MINUTES: Input should be a finite number",
    "reboots_per_day_1e9": "MAX_REBOOTS_PER_DAY: Input should be less than or equal to 24",
    "fleet_cap_float": "MAX_ACTIONS_FLEET_PER_HOUR: Input should be a valid integer",
    "pon_cap_negative": "MAX_REBOOTS_PER_PON_PER_HOUR: Input should be greater than or equal to 0",
    "breaker_rate_above_1": "BREAKER_MIN_SUCCESS_RATE: Input should be less than or equal to 1",
    "jitter_one_day": "JITTER_MAX_SECONDS: Input should be less than or equal to 3600",
    "kill_switch_not_bool": "KILL_SWITCH: Input should be a valid boolean",
}


def test_every_corpus_file_has_an_expected_outcome():
    assert {p.stem for p in (CORPUS / "snmp").glob("*.bin")} == set(SNMP)
    assert {p.name for p in (CORPUS / "mapping").iterdir()} == set(MAPPING)
    assert {p.stem for p in (CORPUS / "scenario").glob("*.yaml")} == set(SCENARIO)
    assert {p.stem for p in (CORPUS / "settings").glob("*.env")} == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SNMP))
def test_snmp_datagram(name):
    data = (CORPUS / "snmp" / f"{name}.bin").read_bytes()
    expected = SNMP[name]
    if expected == "ber_error":
        with pytest.raises(BerError):
            decode_message(data)
    else:
        assert decode_message(data).request_id == 5
    loop = asyncio.new_event_loop()
    try:
        ep = _Endpoint(b"pub")
        fut = loop.create_future()
        ep.pending[5] = fut
        ep.datagram_received(data, ("127.0.0.1", 161))
        assert fut.done() == (expected == "answer")
        assert ep.ignored == (0 if expected == "answer" else 1)
        assert (5 in ep.pending) == (expected != "answer")
    finally:
        loop.close()


@pytest.mark.parametrize("fast", [True, False], ids=["fast-v2c-agent", "pysnmp-agent"])
def test_agent_logs_one_line_not_a_traceback_per_crafted_datagram(fast, caplog):
    table = OidTable([((1, 3, 6, 1, 2, 1, 1, 1, 0), (OCTET_STRING, b"olt"))])
    spec = AgentSpec("t", lambda: table, community="pub", fast_v2c=fast)
    datagrams = [p.read_bytes() for p in sorted((CORPUS / "snmp").glob("*.bin"))]
    with caplog.at_level(logging.WARNING), AgentPool([spec]) as pool:
        port = pool.ports["t"]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                for d in datagrams:
                    s.sendto(d, ("127.0.0.1", port))
        session = SnmpSession(new_engine(), "t", "127.0.0.1", port, SnmpCredentials("2c", community="pub"), timeout_s=2.0, retries=1)  # fmt: skip
        got = asyncio.run(session.get(["1.3.6.1.2.1.1.1.0"]))
        assert got == {"1.3.6.1.2.1.1.1.0": b"olt"}  # the agent still answers
        time.sleep(0.2)
        transport = pool.agents[0]._transport
        bad = transport.bad_datagrams.count
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]
    assert bad >= 5  # the pysnmp crasher, five times, counted
    warnings = [r for r in caplog.records if "malformed SNMP datagram" in r.getMessage()]
    assert 1 <= len(warnings) <= 2  # rate-limited: one line per 10 s per transport
    assert all(len(r.getMessage()) < 400 for r in warnings)


@pytest.mark.parametrize("name", sorted(MAPPING))
def test_mapping_case(name, tmp_path):
    folder = CORPUS / "mapping" / name
    error, text = MAPPING[name]
    try:
        mapping = load_column_mapping(folder / "mapping.yaml")
        report = ingest_user_telemetry(tmp_path / "run", folder / "data.csv", mapping)
    except (ConfigError, IngestError) as exc:
        assert error is not None, f"unexpected {exc!r}"
        assert type(exc) is error
        assert text in str(exc) and "\n" not in str(exc)
        assert str(folder) in str(exc)
        assert not list((tmp_path / "run").rglob("*.parquet"))  # nothing written
    else:
        assert error is None, f"expected {error.__name__}: {text}"
        assert report.rows_added > 0


@pytest.mark.parametrize("name", sorted(SCENARIO))
def test_scenario_case(name):
    path = CORPUS / "scenario" / f"{name}.yaml"
    text = SCENARIO[name]
    if text is None:
        assert load_scenario(path).name == "ok"
        return
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert text in str(err.value) and str(path) in str(err.value)


def test_big_scenario_runs_with_the_override():
    sc = load_scenario(CORPUS / "scenario" / "eight_million_onus.yaml", allow_large=True)
    assert sum(r.olts for r in sc.topology.regions) == 2000


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_settings_case(name, monkeypatch):
    for line in (CORPUS / "settings" / f"{name}.env").read_text().splitlines():
        key, _, value = line.partition("=")
        monkeypatch.setenv(key, value)
    text = SETTINGS[name]
    if text is None:
        s = AutopilotSettings()
        assert s.autopilot_mode == "execute" and s.kill_switch
        return
    with pytest.raises(ConfigError) as err:
        AutopilotSettings()
    assert text in str(err.value) and "\n" not in str(err.value)


def test_client_transport_counts_bad_datagrams_with_one_line(caplog):
    """The pollers' pysnmp transport: 100 datagrams that make pysnmp raise → 1 log line."""
    from guardian_lib.snmp.transport import GuardedUdpTransport

    loop = asyncio.new_event_loop()
    try:
        transport = GuardedUdpTransport(loop=loop)

        def choke(*_):
            raise TypeError("ConstructedAsn1Type.clone() takes 1 positional argument")

        with caplog.at_level(logging.WARNING):
            for _ in range(100):
                transport._deliver(choke, ("192.0.2.7", 161), b"t#")
    finally:
        loop.close()
    assert transport.bad_datagrams.count == 100
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "192.0.2.7" in lines[0] and "TypeError" in lines[0]
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize(
    ("auth", "priv", "what"), [("short", "long-enough", "auth"), ("long-enough", "1234567", "priv")]
)
def test_v3_key_shorter_than_8_is_one_clear_line(auth, priv, what):
    from acs_emulator.olt.agent import V3User
    from guardian_lib.snmp.errors import SnmpCredentialsError

    with pytest.raises(SnmpCredentialsError) as err:
        SnmpCredentials("3", user="ops", auth_key=auth, priv_key=priv)
    assert f"{what} key is" in str(err.value) and "at least 8" in str(err.value)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=f"{what} key is .* at least 8"):
        V3User("ops", auth, priv)
    assert SnmpCredentials("3", user="ops", auth_key="12345678", priv_key="12345678")
