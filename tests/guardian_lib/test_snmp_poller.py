"""Poller: pure decoding, inventory and credentials, failures (timeout, garbage, v3 keys,
partial answers) and output files. Agents are real UDP servers on 127.0.0.1."""

from __future__ import annotations

import json
import math
import socket
import threading

import pandas as pd
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from acs_emulator.olt.agent import AgentPool, AgentSpec, V3User
from acs_emulator.olt.mib import INTEGER, OCTET_STRING, OidTable
from guardian_lib.errors import ConfigError
from guardian_lib.snmp import (
    EVENTS_SCHEMA,
    TELEMETRY_SCHEMA,
    Inventory,
    OltEntry,
    decode_walk,
    derive_events,
    load_inventory,
    poll_once,
    resolve_credentials,
    write_to_warehouse,
)
from guardian_lib.snmp.cli import parse_interval_s, register
from guardian_lib.snmp.errors import SnmpCredentialsError
from guardian_lib.snmp.profiles import load_profiles

HW = "1.3.6.1.4.1.2011.6.128.1.1.2"
TS = pd.Timestamp("2026-01-05 00:05", tz="UTC")
PON = 4194304000  # 0xFA000000: frame 0, slot 0, port 0


def _o(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def huawei_table(n_onus: int = 4) -> OidTable:
    """A Huawei OLT: ONT 1 online, 2 offline by LOS, 3 offline by dying gasp, 4+ online."""
    items = [
        (_o("1.3.6.1.2.1.1.1.0"), (OCTET_STRING, b"Huawei Integrated Access Software MA5800")),
        (_o("1.3.6.1.2.1.1.2.0"), (6, "1.3.6.1.4.1.2011.2.248")),
    ]
    for ont in range(1, n_onus + 1):
        idx = (PON, ont)
        offline = ont in (2, 3)
        rx = 2147483647 if offline else -2000 - ont
        items += [
            (_o(f"{HW}.51.1.4") + idx, (INTEGER, rx)),
            (_o(f"{HW}.51.1.3") + idx, (INTEGER, 2147483647 if offline else 215)),
            (_o(f"{HW}.51.1.6") + idx, (INTEGER, 2147483647 if offline else 7780)),
            (_o(f"{HW}.46.1.15") + idx, (INTEGER, 2 if offline else 1)),
            (_o(f"{HW}.46.1.24") + idx, (INTEGER, {2: 1, 3: 13}.get(ont, -1))),
            (_o(f"{HW}.43.1.3") + idx, (OCTET_STRING, b"HWTC" + ont.to_bytes(4, "big"))),
        ]
    return OidTable(items)


@pytest.fixture(scope="module")
def agents():
    table = huawei_table(300)
    calls = {"n": 0}

    def breaking():
        calls["n"] += 1
        if calls["n"] > 4:  # answers a few requests, then stops answering
            raise RuntimeError("simulated agent crash")
        return table

    pool = AgentPool(
        [
            AgentSpec(
                "hw", lambda: table, community="pub", v3_users=[V3User("u", "a" * 8, "p" * 8)]
            ),
            AgentSpec("breaking", breaking, community="pub"),
        ]
    ).start_in_thread()
    yield pool.ports
    pool.stop_thread()


ENV = {"GUARDIAN_SNMP_LAB_COMMUNITY": "pub"}


def _inv(port: int, **kw) -> Inventory:
    entry = {"olt_id": "OLT-1", "host": "127.0.0.1", "port": port, "credentials": "lab"} | kw
    return Inventory(olts=[OltEntry(**entry)], defaults={"timeout_s": 0.3, "retries": 0})


# --- pure decoding -------------------------------------------------------------------------


def test_decode_walk_sentinels_status_and_causes():
    profile = load_profiles()["huawei_ma5800"]
    table = huawei_table(4)
    rows = {}
    for _, col in profile.columns.items():
        prefix = _o(col.oid)
        rows[col.oid] = [
            (k[len(prefix) :], v[1]) for k, v in table.items() if k[: len(prefix)] == prefix
        ]
    # ONT 4 is absent from the RX column: NaN there, other columns still give its row
    rows[profile.columns.rx_dbm.oid] = [r for r in rows[profile.columns.rx_dbm.oid] if r[0][1] != 4]
    frame, causes = decode_walk(profile, rows, olt_id="OLT-1", ts=TS)
    frame = frame.set_index("snmp_index")
    assert list(frame.index) == [f"{PON}.{i}" for i in (1, 2, 3, 4)]
    assert frame.at[f"{PON}.1", "rx_dbm"] == pytest.approx(-20.01)
    assert frame.at[f"{PON}.1", "olt_rx_dbm"] == pytest.approx(-22.2)
    assert frame.at[f"{PON}.1", "tx_dbm"] == pytest.approx(2.15)
    assert (
        frame.loc[[f"{PON}.2", f"{PON}.3"], ["rx_dbm", "tx_dbm", "olt_rx_dbm"]].isna().all().all()
    )
    assert math.isnan(frame.at[f"{PON}.4", "rx_dbm"])
    assert frame.at[f"{PON}.4", "tx_dbm"] == pytest.approx(2.15)  # never derived from OLT RX
    assert frame["online"].tolist() == [True, False, False, True]
    assert frame.at[f"{PON}.1", "serial"] == "HWTC00000001"
    assert frame.at[f"{PON}.1", "onu_id"] == "HWTC00000001"
    assert causes == {f"{PON}.2": "LOS", f"{PON}.3": "DYING_GASP"}

    events = derive_events(frame.reset_index(), causes, profile="huawei_ma5800")
    assert sorted(events["type"]) == ["DYING_GASP", "LOS"]
    assert set(events["entity_type"]) == {"onu"} and set(events["source"]) == {"snmp"}
    payload = json.loads(events.iloc[0]["payload"])
    assert payload["olt_id"] == "OLT-1" and payload["snmp_index"].startswith(str(PON))

    # next cycle: ONT 2 back online, ONT 1 goes down without a known cause → only LINK_UP
    prev = dict(zip(frame["onu_id"], frame["online"], strict=True))
    again = frame.reset_index().copy()
    again["online"] = pd.array([False, True, False, True], dtype="boolean")
    ev2 = derive_events(again, {}, prev)
    assert ev2["type"].tolist() == ["LINK_UP"]
    assert ev2["entity_id"].tolist() == ["HWTC00000002"]


def test_zte_strip_suffix_joins_columns():
    profile = load_profiles()["zte_c300_v1"]
    ifx = 0x10000000 + (1 << 16) + 256 + 1
    rows = {
        profile.columns.rx_dbm.oid: [((ifx, 5, 1), 7500), ((ifx, 6, 1), 65535)],
        profile.columns.status.oid: [((ifx, 5), 4), ((ifx, 6), 2)],
    }
    frame, causes = decode_walk(profile, rows, olt_id="Z", ts=TS)
    assert frame["snmp_index"].tolist() == [f"{ifx}.5", f"{ifx}.6"]
    assert frame["rx_dbm"].iloc[0] == pytest.approx(-15.0)
    assert math.isnan(frame["rx_dbm"].iloc[1])
    assert causes == {f"{ifx}.6": "LOS"}
    assert frame["onu_id"].iloc[0] == f"Z:{ifx}.5"  # no serial reported: OLT-qualified index


# --- inventory and credentials ---------------------------------------------------------------


def test_inventory_and_secret_file(tmp_path):
    (tmp_path / "s.yaml").write_text("core: {user: u, auth_key: k1234567, priv_key: p1234567}\n")
    (tmp_path / "s.yaml").chmod(0o600)
    (tmp_path / "olts.yaml").write_text(
        "secrets_file: s.yaml\nolts:\n"
        "  - {olt_id: A, host: 10.0.0.1, version: '3', credentials: core}\n"
        "  - {olt_id: B, host: 10.0.0.2, credentials: noc}\n"
    )
    inv = load_inventory(tmp_path / "olts.yaml")
    a, b = inv.olts
    cred = resolve_credentials(a, inv.secrets_path(), environ={})
    assert (cred.version, cred.user, cred.auth_key) == ("3", "u", "k1234567")
    env = {"GUARDIAN_SNMP_CORE_USER": "env-user", "GUARDIAN_SNMP_NOC_COMMUNITY": "c"}
    assert resolve_credentials(a, inv.secrets_path(), environ=env).user == "env-user"
    assert resolve_credentials(b, inv.secrets_path(), environ=env).community == "c"
    with pytest.raises(SnmpCredentialsError, match=r"OLT B.*GUARDIAN_SNMP_NOC_COMMUNITY"):
        resolve_credentials(b, inv.secrets_path(), environ={})


def test_world_readable_snmp_secret_file_is_refused(tmp_path):
    secret = tmp_path / "s.yaml"
    secret.write_text("noc: {community: c}\n")
    (tmp_path / "olts.yaml").write_text(
        "secrets_file: s.yaml\nolts:\n  - {olt_id: B, host: 10.0.0.2, credentials: noc}\n"
    )
    inv = load_inventory(tmp_path / "olts.yaml")
    (entry,) = inv.olts
    for mode in (0o644, 0o640, 0o604):
        secret.chmod(mode)
        with pytest.raises(
            SnmpCredentialsError,
            match=rf"OLT B: .*s\.yaml: secret file has mode {mode:04o}; .*chmod 600",
        ):
            resolve_credentials(entry, inv.secrets_path(), environ={})
    secret.chmod(0o600)
    assert resolve_credentials(entry, inv.secrets_path(), environ={}).community == "c"
    # the environment alone never opens the file, whatever its mode
    secret.chmod(0o644)
    env = {"GUARDIAN_SNMP_NOC_COMMUNITY": "e"}
    assert resolve_credentials(entry, inv.secrets_path(), environ=env).community == "e"
    secret.unlink()
    with pytest.raises(
        SnmpCredentialsError,
        match=r"OLT B: SNMPv2c credentials .noc.: secret file .*s\.yaml does not exist",
    ):
        resolve_credentials(entry, inv.secrets_path(), environ={})


def test_invalid_inventory_names_field(tmp_path):
    p = tmp_path / "olts.yaml"
    p.write_text("olts:\n  - {olt_id: A, host: h, port: 70000, credentials: x}\n")
    with pytest.raises(ConfigError, match=r"olts\.yaml.*olts\[0\]\.port.*70000"):
        load_inventory(p)


# --- against real UDP agents -------------------------------------------------------------------


def test_poll_auto_profile_and_events(agents):
    report = poll_once(_inv(agents["hw"]), environ=ENV)
    r = report.results[0]
    assert r.complete, r.error
    assert r.profile == "huawei_ma5800"
    assert len(r.telemetry) == 300
    assert r.telemetry["online"].sum() == 298
    assert sorted(r.events["type"]) == ["DYING_GASP", "LOS"]


def test_v3_wrong_key_is_a_clear_error(agents):
    # A wait per request that a loaded machine does not reach: SNMPv3 answers cost pure-Python
    # crypto on both sides of one process (measured: median 0.13 s a request, max 0.49 s at
    # load 4; median 0.35 s, max 0.79 s at load 5), so 0.3 s without retries timed one
    # request of the right-key poll out under load. The wrong key is answered at once (a
    # report PDU: the auth error below), so nothing here waits for this bound.
    inv = _inv(agents["hw"], version="3", timeout_s=5.0)
    env = {
        "GUARDIAN_SNMP_LAB_USER": "u",
        "GUARDIAN_SNMP_LAB_AUTH_KEY": "wrong-key",
        "GUARDIAN_SNMP_LAB_PRIV_KEY": "p" * 8,
    }
    r = poll_once(inv, environ=env).results[0]
    assert not r.complete
    assert "SNMPv3 authentication failed for user 'u'" in r.error
    assert "OLT OLT-1" in r.error
    assert r.events["type"].tolist() == ["OLT_ALARM"]
    env["GUARDIAN_SNMP_LAB_AUTH_KEY"] = "a" * 8
    ok = poll_once(inv, environ=env).results[0]
    assert ok.complete and len(ok.telemetry) == 300


def test_timeout_when_nobody_answers():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        r = poll_once(_inv(silent.getsockname()[1]), environ=ENV).results[0]
    assert not r.complete
    assert "no answer to GET" in r.error and "OLT OLT-1 (127.0.0.1:" in r.error
    assert len(r.telemetry) == 0
    assert json.loads(r.events.iloc[0]["payload"])["reason"] == "snmp_poll_incomplete"


def test_garbage_answers_are_ignored_then_time_out():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def reply_garbage() -> None:
        while not stop.is_set():
            try:
                _, addr = sock.recvfrom(65535)
            except OSError:
                continue
            sock.sendto(b"\x30\x82\xff\xffnot-snmp", addr)
            sock.sendto(b"", addr)

    t = threading.Thread(target=reply_garbage, daemon=True)
    t.start()
    try:
        r = poll_once(_inv(sock.getsockname()[1]), environ=ENV).results[0]
    finally:
        stop.set()
        t.join(2)
        sock.close()
    assert not r.complete and "no answer" in r.error
    assert "not a valid answer (garbage" in r.error


def test_partial_answer_is_kept_and_flagged(agents):
    r = poll_once(_inv(agents["breaking"], profile="huawei_ma5800"), environ=ENV).results[0]
    assert not r.complete
    assert len(r.telemetry) > 0
    assert (~r.telemetry["poll_complete"]).all()
    assert "OLT_ALARM" in set(r.events["type"])


# --- outputs ---------------------------------------------------------------------------------


def test_warehouse_layout_and_dtypes(agents, tmp_path):
    report = poll_once(_inv(agents["hw"]), environ=ENV)
    paths = write_to_warehouse(report, tmp_path)
    kinds = sorted(p.relative_to(tmp_path).parts[2] for p in paths)
    assert kinds == ["events", "telemetry"]
    for p in paths:
        assert p.parent.name.startswith("date=") and p.suffix == ".parquet"
        assert not list(p.parent.glob(".*.part"))
    tel = next(p for p in paths if "telemetry" in p.parts)
    assert pq.read_schema(tel).remove_metadata().equals(TELEMETRY_SCHEMA)
    ev = next(p for p in paths if "events" in p.parts)
    assert pq.read_schema(ev).remove_metadata().equals(EVENTS_SCHEMA)
    again = write_to_warehouse(report, tmp_path)
    assert set(again).isdisjoint(paths)  # a new unique file per poll


def test_cli_poll_once_out(agents, tmp_path, monkeypatch):
    inv = tmp_path / "olts.yaml"
    inv.write_text(
        "defaults: {timeout_s: 1, retries: 1}\nolts:\n"
        f"  - {{olt_id: OLT-1, host: 127.0.0.1, port: {agents['hw']}, credentials: lab}}\n"
    )
    monkeypatch.setenv("GUARDIAN_SNMP_LAB_COMMUNITY", "pub")
    app = typer.Typer()
    register(app)

    @app.command("noop", hidden=True)
    def _noop() -> None:  # typer needs two commands to keep the sub-command name
        pass

    out = tmp_path / "one.parquet"
    res = CliRunner().invoke(app, ["poll", "--inventory", str(inv), "--once", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_parquet(out)) == 300
    assert (tmp_path / "one.events.parquet").is_file()
    bad = CliRunner().invoke(app, ["poll", "--inventory", str(inv), "--out", str(out)])
    assert bad.exit_code != 0


def test_cli_poll_every_into_run(agents, tmp_path, monkeypatch):
    inv = tmp_path / "olts.yaml"
    inv.write_text(
        f"olts:\n  - {{olt_id: OLT-1, host: 127.0.0.1, port: {agents['hw']}, credentials: lab}}\n"
    )
    monkeypatch.setenv("GUARDIAN_SNMP_LAB_COMMUNITY", "pub")
    app = typer.Typer()
    register(app)
    app.command("noop", hidden=True)(lambda: None)
    args = ["poll", "--inventory", str(inv), "--every", "0.1s", "--cycles", "2"]
    res = CliRunner().invoke(app, [*args, "--run", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    files = sorted((tmp_path / "run" / "lake" / "raw" / "telemetry").glob("date=*/*.parquet"))
    assert len(files) == 2
    # the second cycle saw no change: events only from the first (LOS + DYING_GASP)
    events = pd.read_parquet(tmp_path / "run" / "lake" / "raw" / "events")
    assert sorted(events["type"]) == ["DYING_GASP", "LOS"]


def test_parse_interval():
    assert parse_interval_s("5m") == 300.0 and parse_interval_s("30s") == 30.0
    with pytest.raises(ConfigError, match="--every"):
        parse_interval_s("soon")
