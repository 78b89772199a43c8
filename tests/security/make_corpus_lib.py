"""Generate the hostile-input corpus for the library (run once; files are committed)."""

from pathlib import Path

from guardian_lib.snmp.ber import GET, RESPONSE, Message, encode_message

C = Path("tests/security/corpus")
OID = (1, 3, 6, 1, 2, 1, 1, 1, 0)


def msg(pdu, community=b"pub", rid=5, vbs=None, version=1):
    return encode_message(
        Message(version, community, pdu, rid, 0, 0, vbs if vbs is not None else [(OID, (5, None))])
    )


resp = msg(RESPONSE, vbs=[(OID, (4, b"olt"))])
snmp = {
    "empty": b"",
    "one_zero_byte": b"\x00",
    "length_past_end": b"\x30\x82\xff\xff\x02\x01\x01",
    "http_request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "snmpv3_header": b"\x30\x0e\x02\x01\x03\x30\x09\x02\x01\x01\x02\x01\x01\x04\x01\x00",
    "length_form_5_bytes": b"\x30\x85\x00\x00\x00\x00\x10",
    "unknown_pdu_type": resp.replace(b"\xa2", b"\xbf", 1),
    "varbind_longer_than_list": bytes.fromhex(
        "302602010104037075626a219020102020100020100301630140608"[:0]
    )
    or b"",
    "oid_subid_overflow": None,
    "oid_unterminated": None,
    "nested_zeros": bytes(1400),
    "pysnmp_crasher": b"t#\x02\x01\x01\x04\x03pub\xa0\x19\x02\x01\x05\x02\x01\x00\x02\x01\x00\x30\x0e\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x05\x00",
    "get_pdu_with_pending_id": msg(GET),
    "trap_v2_with_pending_id": msg(0xA7),
    "set_pdu_with_pending_id": msg(0xA3),
    "response_wrong_community": msg(RESPONSE, community=b"evil", vbs=[(OID, (4, b"x"))]),
    "response_v1_valid": msg(RESPONSE, vbs=[(OID, (4, b"x"))], version=0),
    "response_valid": resp,
}
# A varbind whose declared length runs past the varbind list that holds it.
good = bytearray(resp)
i = good.index(b"\x30", good.index(b"\xa2") + 11)  # the varbind list
good[i + 2] = 0x30
good[i + 3] = 0x7F
snmp["varbind_longer_than_list"] = bytes(good)


# OID with an 11-byte sub-identifier and one that ends mid sub-identifier.
def with_oid(body):
    vb = b"\x06" + bytes([len(body)]) + body + b"\x05\x00"
    vb = b"\x30" + bytes([len(vb)]) + vb
    vl = b"\x30" + bytes([len(vb)]) + vb
    pdu = b"\x02\x01\x05\x02\x01\x00\x02\x01\x00" + vl
    pdu = b"\xa2" + bytes([len(pdu)]) + pdu
    m = b"\x02\x01\x01\x04\x03pub" + pdu
    return b"\x30" + bytes([len(m)]) + m


snmp["oid_subid_overflow"] = with_oid(b"\x2b" + b"\xff" * 10 + b"\x01")
snmp["oid_unterminated"] = with_oid(b"\x2b\x06\x81")
for name, data in snmp.items():
    (C / "snmp" / f"{name}.bin").write_bytes(data)

M = C / "mapping"


def case(name, mapping, csv):
    d = M / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "mapping.yaml").write_text(mapping)
    (d / "data.csv").write_bytes(csv.encode() if isinstance(csv, str) else csv)


STD = "columns:\n  ts: ts\n  onu_id: onu_id\n  rx_dbm: {column: rx, scale: 1}\n"
OK = "ts,onu_id,rx\n2026-01-01T00:00:00Z,A,-21.5\n2026-01-01T00:05:00Z,B,-22.0\n"
case(
    "centi_dbm_scale_1",
    STD,
    "ts,onu_id,rx\n2026-01-01T00:00:00Z,A,-2150\n2026-01-01T00:05:00Z,B,-2200\n",
)
case("valid_dbm", STD, OK)
bomb = (
    "a0: &a0 [x,x,x,x,x,x,x,x,x]\n"
    + "".join(f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 10))
    + "columns: {ts: ts, onu_id: onu_id, rx_dbm: rx}\nsource: *a9\n"
)
case("alias_bomb", bomb, OK)
case("python_object_tag", "columns: !!python/object/apply:os.system ['true']\n", OK)
case("unknown_target_column", "columns: {ts: ts, onu_id: onu_id, rx_power: rx}\n", OK)
case("missing_onu_id", "columns: {ts: ts, rx_dbm: rx}\n", OK)
case("extra_key", STD + "delimiter: ';'\n", OK)
case(
    "bad_number",
    STD,
    "ts,onu_id,rx\n2026-01-01T00:00:00Z,A,-21.5\n2026-01-01T00:05:00Z,B,minus twenty\n",
)
case("bad_timestamp", STD, "ts,onu_id,rx\nyesterday,A,-21.5\n")
case("empty_onu_id", STD, "ts,onu_id,rx\n2026-01-01T00:00:00Z,  ,-21.5\n")
case("empty_csv", STD, "")
case("header_only", STD, "ts,onu_id,rx\n")
case("deep_nesting", "columns: " + "[" * 500 + "]" * 500 + "\n", OK)
case("not_utf8_mapping", STD, OK)
(M / "not_utf8_mapping" / "mapping.yaml").write_bytes(b"columns: {ts: \xff\xfe}\n")
case("recursive_alias", "columns: &c {ts: ts, onu_id: onu_id, rx_dbm: rx, x: *c}\n", OK)
case("nul_in_csv", STD, b"ts,onu_id,rx\n2026-01-01T00:00:00Z,A\x00,-21.5\n")

S = C / "scenario"
TOPO = "topology:\n  regions:\n    - name: r\n      cities: [{name: c, lat: -23.5, lon: -46.6}]\n      olts: 1\n"
(S / "valid_tiny.yaml").write_text("name: ok\ndays: 1\n" + TOPO)
(S / "eight_million_onus.yaml").write_text(
    "name: huge\ndays: 1\ntopology:\n  boards_per_olt: 16\n  pons_per_board: 16\n  onus_per_pon_max: 64\n  regions:\n"
    + "".join(
        f"    - name: r{i}\n      cities: [{{name: c, lat: 0, lon: 0}}]\n      olts: 500\n"
        for i in range(4)
    )
)
(S / "storms_1e9.yaml").write_text(
    "name: storms\n" + TOPO + "weather: {storms_per_year_per_region: 1.0e9}\n"
)
(S / "fault_rate_1e9.yaml").write_text(
    "name: rate\n" + TOPO + "faults: {feeder_cut: {rate_per_year: 1.0e9}}\n"
)
(S / "many_fault_starts.yaml").write_text(
    "name: busy\ndays: 366\ntopology:\n  regions:\n    - name: r\n      cities: [{name: c, lat: 0, lon: 0}]\n      olts: 20\nfaults: {cpe_hang: {rate_per_year: 9000}}\n"
)
(S / "recursive_alias.yaml").write_text("name: &n [*n]\n" + TOPO)
(S / "deep_nesting.yaml").write_text("name: " + "[" * 1000 + "]" * 1000 + "\n" + TOPO)
(S / "top_level_list.yaml").write_text("- a\n- b\n")
(S / "not_utf8.yaml").write_bytes(b"name: \xff\xfe\n")
(S / "python_tag.yaml").write_text("name: !!python/object/apply:os.system ['true']\n" + TOPO)
(S / "call_rate_1e6.yaml").write_text(
    "name: calls\n" + TOPO + "customers: {call_rate_per_hour_offline: 1.0e6}\n"
)

E = C / "settings"
envs = {
    "autopilot_kill_switch": "AUTOPILOT_KILL_SWITCH=true\n",
    "guardian_killswitch": "GUARDIAN_KILLSWITCH=true\n",
    "killswitch_no_underscore": "KILLSWITCH=true\n",
    "autopilot_mode_typo_key": "AUTOPILOT_MOD=execute\n",
    "mode_invalid": "AUTOPILOT_MODE=yolo\n",
    "cooldown_zero": "REBOOT_COOLDOWN_MINUTES=0\n",
    "cooldown_nan": "REBOOT_COOLDOWN_MINUTES=nan\n",
    "reboots_per_day_1e9": "MAX_REBOOTS_PER_DAY=1000000000\n",
    "fleet_cap_float": "MAX_ACTIONS_FLEET_PER_HOUR=1e9\n",
    "pon_cap_negative": "MAX_REBOOTS_PER_PON_PER_HOUR=-1\n",
    "breaker_rate_above_1": "BREAKER_MIN_SUCCESS_RATE=2\n",
    "jitter_one_day": "JITTER_MAX_SECONDS=86400\n",
    "kill_switch_not_bool": "KILL_SWITCH=maybe\n",
    "valid_execute": "AUTOPILOT_MODE=execute\nKILL_SWITCH=true\nREBOOT_COOLDOWN_MINUTES=60\nGUARDIAN_SNMP_LAB_COMMUNITY=x\nGUARDIAN_DEBUG=1\n",
}
for name, text in envs.items():
    (E / f"{name}.env").write_text(text)
print("ok")
