"""GenieACS NBI parity: presets, provisions, virtual parameters, files, /ping; TLS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acs_emulator.cpe import CpeAgent, StaticStateSource, make_identities
from acs_emulator.cpe.agent import SessionError
from acs_emulator.cpe.fleet import client_tls_context
from acs_emulator.cwmp import AcsConfig
from acs_emulator.cwmp.presets import schedule_active
from acs_emulator.cwmp.provisions import ProvisionError, parse_script
from acs_emulator.cwmp.service import server_tls_context
from acs_emulator.cwmp.store import get_parameter
from acs_emulator.cwmp.testing import run, running_acs
from acs_emulator.cwmp.virtual import check_virtual_parameter, compute_all

PII = "Device.ManagementServer.PeriodicInformInterval"


def _agent(url: str, i: int = 0, flavour: str = "tr181") -> CpeAgent:
    ident = make_identities(i + 1, seed=21)[i]
    return CpeAgent(ident, url, state=StaticStateSource(seed=2), flavour=flavour, seed=i)


async def _inform(agent: CpeAgent, http: aiohttp.ClientSession, event: str) -> None:
    agent.pending_events[event] = ""
    assert await agent.run_session(http)


# -- presets and provisions ------------------------------------------------------------------
def test_genieacs_preset_with_precondition_events_and_provision_script():
    async def go():
        async with running_acs() as svc, aiohttp.ClientSession() as http:
            nbi = svc.nbi_url
            a, b = _agent(svc.cwmp_url, 0), _agent(svc.cwmp_url, 1)
            for ag in (a, b):
                assert await ag.run_session(http)  # register (BOOTSTRAP + BOOT)
            async with http.post(f"{nbi}/devices/{a.device_id}/tags/test") as r:
                assert r.status == 200
            # GenieACS's documented example, on the TR-181 path.
            preset = {
                "weight": 0,
                "precondition": json.dumps({"_tags": "test"}),
                "configurations": [{"type": "value", "name": PII, "value": "600"}],
            }
            async with http.put(f"{nbi}/presets/inform", data=json.dumps(preset)) as r:
                assert r.status == 200
            script = (
                'declare("Device.WiFi.SSID.1.SSID", null, {value: "NET_" + args[0]});\ncommit();'
            )
            async with http.put(f"{nbi}/provisions/ssid", data=script) as r:
                assert r.status == 200
            boot_only = {
                "weight": 1,
                "events": {"1 BOOT": True},
                "provision": "ssid",
                "provisionArgs": '"boot"',
            }
            async with http.put(f"{nbi}/presets/on-boot", data=json.dumps(boot_only)) as r:
                assert r.status == 200
            async with http.get(f"{nbi}/presets/", params={"query": '{"_id": "inform"}'}) as r:
                listed = await r.json()
            assert [p["_id"] for p in listed] == ["inform"] and listed[0]["weight"] == 0
            for ag in (a, b):
                await _inform(ag, http, "2 PERIODIC")
            assert str(a.model.get("periodic_interval")) == "600"  # the tagged device only
            assert str(b.model.get("periodic_interval")) == "300"  # unchanged default
            doc = svc.acs.store.get_device(a.device_id)
            assert doc["Device"]["ManagementServer"]["PeriodicInformInterval"]["_type"] == (
                "xsd:unsignedInt"
            )
            assert a.model.get("ssid") != "NET_boot"  # not a BOOT inform
            await _inform(b, http, "1 BOOT")
            assert b.model.get("ssid") == "NET_boot"
            doc = svc.acs.store.get_device(b.device_id)
            assert get_parameter(doc, "Device.WiFi.SSID.1.SSID") == "NET_boot"
            await _inform(b, http, "1 BOOT")  # already right: nothing is sent again
            assert b.rpcs_handled.count("SetParameterValues") == 1
            async with http.delete(f"{nbi}/presets/inform") as r:
                assert r.status == 200
            assert "inform" not in svc.acs.store.admin["presets"]

    run(go())


@pytest.mark.parametrize(
    "body, phrase",
    [
        ({"weight": "heavy"}, "weight"),
        ({"precondition": "{not json"}, "precondition"),
        ({"precondition": '{"_id": {"$where": "1"}}'}, "$where"),
        ({"events": ["1 BOOT"]}, "events"),
        ({"schedule": "3600 99 * * * *"}, "minute"),
        ({"configurations": [{"type": "script"}]}, "configurations[0].type"),
    ],
)
def test_bad_presets_are_refused_naming_the_field(body, phrase):
    async def go():
        async with running_acs() as svc, aiohttp.ClientSession() as http:
            async with http.put(f"{svc.nbi_url}/presets/p1", data=json.dumps(body)) as r:
                assert r.status == 400 and phrase in await r.text()
            assert not svc.acs.store.admin["presets"]

    run(go())


@pytest.mark.parametrize(
    "script, phrase",
    [
        ('require("child_process").exec("id")', "only declare()"),
        ("const x = 1;", "unexpected character '='"),
        ('declare("A", {value: 1}, {path: 3})', "instance counts"),
        ('declare("A.*", null, {value: 1})', "wildcards"),
        ('declare("A", null, {value: process.env})', "unknown name 'process.env'"),
        ('declare("A", null, {value: args[9]})', "args[9]"),
        ('declare("Device._tags", null, {value: 1})', "no segment starting with '_'"),
        ('declare("A", null, {value: ' + "[" * 20 + "]" * 20 + "})", "nesting deeper"),
    ],
)
def test_provision_scripts_outside_the_subset_are_refused(script, phrase):
    with pytest.raises(ProvisionError, match="line 1") as err:
        parse_script(script, ["x"])
    assert phrase in str(err.value)


def test_provision_put_answers_400_with_line_and_column():
    async def go():
        async with running_acs() as svc, aiohttp.ClientSession() as http:
            bad = 'declare("A", null, {value: 1});\neval("1")'
            async with http.put(f"{svc.nbi_url}/provisions/p", data=bad) as r:
                assert r.status == 400 and "line 2 col 1" in await r.text()

    run(go())


def test_schedule_window_follows_cron_and_duration():
    at = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)  # a Monday, 03:00 UTC
    assert schedule_active("3600 0 3 * * 1-5", at)
    assert schedule_active("3600 0 3 * * 1-5", at + dt.timedelta(minutes=59))
    assert not schedule_active("3600 0 3 * * 1-5", at + dt.timedelta(minutes=61))
    assert not schedule_active("3600 0 3 * * 1-5", at - dt.timedelta(minutes=1))
    assert not schedule_active("3600 0 3 * * 0,6", at)


# -- virtual parameters -------------------------------------------------------------------------
def test_rxpower_virtual_parameter_is_the_same_across_data_models():
    async def go():
        async with running_acs() as svc, aiohttp.ClientSession() as http:
            tr181, tr098 = _agent(svc.cwmp_url, 0), _agent(svc.cwmp_url, 1, flavour="tr098")
            for ag in (tr181, tr098):
                assert await ag.run_session(http)
            q = {"VirtualParameters.RXPower": {"$lt": 0}}
            async with http.get(
                f"{svc.nbi_url}/devices/",
                params={"query": json.dumps(q), "projection": "VirtualParameters.RXPower"},
            ) as r:
                docs = {d["_id"]: d for d in await r.json()}
            for ag in (tr181, tr098):
                # The value the CPE reported in its Inform (the live one drifts).
                raw = int(
                    get_parameter(svc.acs.store.get_device(ag.device_id), ag.model.path("rx"))
                )
                got = docs[ag.device_id]["VirtualParameters"]["RXPower"]
                assert got["_value"] == round(raw / 1000, 2) and got["_type"] == "xsd:double"

    run(go())


def test_declarative_virtual_parameter_converts_microwatts_and_skips_bad_sources():
    spec = check_virtual_parameter(
        "ZteRx",
        {
            "round": 1,
            "sources": [
                {"path": "IGD.X_ZTE.RXPower", "convert": "uW_to_dBm"},
                {"path": "IGD.Other.RX", "scale": 0.1},
            ],
        },
    )
    doc = {"IGD": {"X_ZTE": {"RXPower": {"_value": "10"}}}}
    assert (
        compute_all(doc, {"ZteRx": spec}, "t")
        and doc["VirtualParameters"]["ZteRx"]["_value"] == -20.0
    )
    doc = {"IGD": {"X_ZTE": {"RXPower": {"_value": "0"}}, "Other": {"RX": {"_value": "-195"}}}}
    compute_all(doc, {"ZteRx": spec}, "t")  # log10(0) is skipped, the next source used
    assert doc["VirtualParameters"]["ZteRx"]["_value"] == -19.5

    async def go():
        async with running_acs() as svc, aiohttp.ClientSession() as http:
            url = f"{svc.nbi_url}/virtual_parameters/ZteRx"
            async with http.put(url, data="let v = 1; return {value: [v]}") as r:
                assert r.status == 400 and "scripts are not run" in await r.text()
            async with http.put(
                url, data=json.dumps({"sources": [{"path": "A", "convert": "x"}]})
            ) as r:
                assert r.status == 400 and "sources[0].convert" in await r.text()
            bad = {"sources": [{"path": "Device._tags.x"}]}
            async with http.put(url, data=json.dumps(bad)) as r:
                assert r.status == 400 and "sources[0].path" in await r.text()
            async with http.put(url, data=json.dumps({"sources": [{"path": "A"}]})) as r:
                assert r.status == 200
            assert "ZteRx" in svc.acs.virtual_parameters()

    run(go())


# -- files, firmware, /ping ---------------------------------------------------------------------
def _fw() -> bytes:
    return bytes(range(256)) * 64  # 16 KiB


def test_file_upload_metadata_hosting_and_verified_download(tmp_path):
    async def go():
        async with running_acs(AcsConfig(file_dir=str(tmp_path / "files"))) as svc:
            async with aiohttp.ClientSession() as http:
                nbi = svc.nbi_url
                headers = {
                    "fileType": "1 Firmware Upgrade Image",
                    "oui": "00259E",
                    "productClass": "HG8245Q2",
                    "version": "V2.0.0",
                }
                async with http.put(f"{nbi}/files/V2.0.0.bin", data=_fw(), headers=headers) as r:
                    assert r.status == 201
                async with http.get(
                    f"{nbi}/files/", params={"query": '{"filename": "V2.0.0.bin"}'}
                ) as r:
                    (meta,) = await r.json()
                sha = hashlib.sha256(_fw()).hexdigest()
                assert meta["length"] == len(_fw()) and meta["sha256"] == sha
                assert meta["metadata"] == {**headers}
                async with http.get(f"{svc.file_url}V2.0.0.bin") as r:
                    assert await r.read() == _fw()
                    assert (
                        r.headers["Digest"]
                        == "sha-256=" + base64.b64encode(bytes.fromhex(sha)).decode()
                    )
                agent = _agent(svc.cwmp_url)
                assert await agent.run_session(http)
                task = {"name": "download", "fileName": "V2.0.0.bin"}
                async with http.post(f"{nbi}/devices/{agent.device_id}/tasks", json=task) as r:
                    assert r.status == 202
                await _inform(agent, http, "2 PERIODIC")
                assert agent.downloads_verified == 1
                assert agent.model.get("software") == "V2.0.0"
                await _inform(agent, http, "1 BOOT")  # TransferComplete → task done
                assert not svc.acs.store.tasks
                # A tampered image on the server: the CPE refuses it (size kept, hash not).
                (tmp_path / "files" / sha).write_bytes(b"\0" * len(_fw()))
                async with http.post(f"{nbi}/devices/{agent.device_id}/tasks", json=task) as r:
                    t = await r.json()
                await _inform(agent, http, "2 PERIODIC")
                await _inform(agent, http, "2 PERIODIC")
                fault = svc.acs.store.faults[f"{agent.device_id}:task_{t['_id']}"]
                assert fault["code"] == "cwmp.9010" and "SHA-256" in fault["message"]
                async with http.put(f"{nbi}/files/..%2Fescape", data=b"x") as r:
                    assert r.status in (400, 404)
                async with http.delete(f"{nbi}/files/V2.0.0.bin") as r:
                    assert r.status == 200
                async with http.delete(f"{nbi}/files/V2.0.0.bin") as r:
                    assert r.status == 404
                assert not list((tmp_path / "files").iterdir())

    run(go())


def test_file_upload_over_the_size_cap_keeps_nothing(tmp_path):
    async def go():
        config = AcsConfig(file_dir=str(tmp_path / "f"), max_file_bytes=1000)
        async with running_acs(config) as svc, aiohttp.ClientSession() as http:
            async with http.put(f"{svc.nbi_url}/files/big.bin", data=b"x" * 5000) as r:
                assert r.status == 413 and "at most 1000 bytes" in await r.text()
            assert not svc.acs.store.admin["files"] and not list((tmp_path / "f").iterdir())

    run(go())


def test_ping_runs_the_command_without_a_shell():
    fake = (
        sys.executable,
        "-c",
        "import sys; print('pong', sys.argv[1]); sys.exit(sys.argv[1] == '10.9.9.9')",
    )

    async def go():
        async with running_acs(nbi_options={"ping_command": fake}) as svc:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{svc.nbi_url}/ping/127.0.0.1") as r:
                    assert r.status == 200 and "pong 127.0.0.1" in await r.text()
                async with http.get(f"{svc.nbi_url}/ping/10.9.9.9") as r:
                    assert r.status == 404
                for bad in ("-c1", "a;id", "$(id)"):
                    async with http.get(f"{svc.nbi_url}/ping/{bad}") as r:
                        assert r.status == 404
        async with running_acs(nbi_options={"ping_command": ("/nonexistent/ping",)}) as svc:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{svc.nbi_url}/ping/127.0.0.1") as r:
                    assert r.status == 500

    run(go())


# -- CWMP over TLS -------------------------------------------------------------------------------
def _ca_and_cert(tmp: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 signed by it (PEM files)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acs")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / f"{name}-ca.pem", tmp / f"{name}-cert.pem", tmp / f"{name}-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_cwmp_and_firmware_over_tls_verified_against_the_ca(tmp_path):
    ca, cert, key = _ca_and_cert(tmp_path, "good")
    other_ca, _, _ = _ca_and_cert(tmp_path, "other")

    async def go():
        tls = server_tls_context(cert, key)
        async with running_acs(ssl_context=tls) as svc:
            assert svc.cwmp_url.startswith("https://127.0.0.1:")
            good = aiohttp.TCPConnector(ssl=client_tls_context(ca))
            async with aiohttp.ClientSession(connector=good) as http:
                agent = _agent(svc.cwmp_url)
                assert await agent.run_session(http)
                async with aiohttp.ClientSession() as nbi:
                    async with nbi.put(f"{svc.nbi_url}/files/fw.bin", data=_fw()) as r:
                        assert r.status == 201
                    task = {"name": "download", "fileName": "fw.bin"}
                    async with nbi.post(
                        f"{svc.nbi_url}/devices/{agent.device_id}/tasks", json=task
                    ) as r:
                        assert r.status == 202
                await _inform(agent, http, "2 PERIODIC")
                assert agent.downloads_verified == 1  # fetched over https
            wrong = aiohttp.TCPConnector(ssl=client_tls_context(other_ca))
            async with aiohttp.ClientSession(connector=wrong) as http:
                with pytest.raises(SessionError, match="certificate"):
                    await _agent(svc.cwmp_url, 1).run_session(http)
            async with aiohttp.ClientSession() as http:  # plain HTTP to the TLS port
                with pytest.raises(SessionError):
                    await _agent(svc.cwmp_url.replace("https", "http"), 2).run_session(http)
            assert len(svc.acs.store.devices) == 1  # nothing got in without TLS

    run(go())
