"""guardian_lib.acs.NbiClient: against the emulated ACS + CPEs on 127.0.0.1, and against
scripted transports for retries, Retry-After, lost answers and idempotency."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from local_servers import free_port

from acs_emulator.cwmp.testing import BackgroundLab
from guardian_lib.acs import (
    AcsAmbiguousError,
    AcsDeviceNotFoundError,
    AcsRequestError,
    AcsUnavailableError,
    NbiClient,
    tasks,
)

Lab = BackgroundLab


@pytest.fixture(scope="module")
def lab():
    lab = Lab(3)
    yield lab
    lab.close()


@pytest.fixture
def audit():
    return []


@pytest.fixture
def client(lab, audit):
    with NbiClient(lab.svc.nbi_url, audit=audit.append, token="", task_timeout_ms=10000) as c:
        yield c


def test_reboot_is_done_once_per_key_even_across_clients(lab, client, audit):
    did = sorted(lab.fleet.agents)[0]
    agent = lab.fleet.agents[did]
    first = client.reboot(did, idempotency_key="incident-42:reboot")
    assert first.status == "done" and first.http_status == 200
    again = client.reboot(did, idempotency_key="incident-42:reboot")
    assert again is first  # answered from the client's memory
    with NbiClient(lab.svc.nbi_url) as other:  # a new process retrying the same action
        third = other.reboot(did, idempotency_key="incident-42:reboot")
    assert third.status == "done"
    lab.call(asyncio.sleep(0.3))
    assert agent.rpcs_handled.count("Reboot") == 1
    calls = [a for a in audit if a.get("method") == "POST"]
    assert calls and all(a["device_id"] == did and a["task"] == "reboot" for a in calls)
    assert {a["outcome"] for a in audit} >= {"answered", "task_done"}


def test_get_set_refresh_wifi_and_ping(lab, client, audit):
    did = sorted(lab.fleet.agents)[1]
    agent = lab.fleet.agents[did]
    values = client.get_parameter_values(
        did, ["Device.WiFi.SSID.1.SSID", "Device.DeviceInfo.UpTime"]
    )
    assert values["Device.WiFi.SSID.1.SSID"] == agent.model.get("ssid")
    res = client.set_wifi(did, ssid="Casa-5G", password="s3cret-passphrase", channel=36)
    assert res.status == "done"
    assert agent.model.get("ssid") == "Casa-5G" and agent.model.get("channel") == "36"
    assert "s3cret-passphrase" not in json.dumps(audit)
    assert client.refresh(did, "Device.WiFi.").status == "done"
    assert client.refresh(did).status == "done"  # whole data model
    ping = client.ping(did, "8.8.8.8", 3, wait_s=5, poll_s=0.05)
    assert ping["state"] == "Complete" and ping["success_count"] == "3"
    client.tag(did, "canary")
    assert [d["_id"] for d in client.devices({"_tags": "canary"})] == [did]
    client.tag(did, "canary", present=False)
    assert client.devices({"_tags": "canary"}) == []


def test_faulted_task_reports_the_fault_and_can_be_cleared(lab, client):
    did = sorted(lab.fleet.agents)[2]
    res = client.set_parameter_values(did, {"Device.DeviceInfo.SerialNumber": "X"})
    assert res.status == "faulted" and res.fault["code"] == "cwmp.9003"
    assert client.faults({"device": did})
    client.delete_fault(res.fault["_id"])
    assert client.faults({"device": did}) == [] and client.tasks({"device": did}) == []


def test_unknown_device_raises_with_the_id(client):
    with pytest.raises(AcsDeviceNotFoundError, match="NOPE-X-1"):
        client.reboot("NOPE-X-1")
    with pytest.raises(AcsDeviceNotFoundError, match="NOPE-X-1"):
        client.device("NOPE-X-1")


def test_bearer_token_from_environment_and_never_audited(monkeypatch):
    monkeypatch.setenv("GUARDIAN_NBI_TOKEN", "tok-123")
    lab = Lab(1, token="tok-123")
    try:
        records = []
        with NbiClient(lab.svc.nbi_url, audit=records.append) as c:
            assert len(c.devices()) == 1
        with NbiClient(lab.svc.nbi_url, token="wrong", retries=0) as c:
            with pytest.raises(AcsRequestError, match="401"):
                c.devices()
        assert "tok-123" not in json.dumps(records)
    finally:
        lab.close()


# -- scripted transports ---------------------------------------------------------------


def scripted(responses):
    """MockTransport answering from a list of callables/responses; records requests."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = responses.pop(0)
        return item(request) if callable(item) else item

    return httpx.MockTransport(handler), seen


def lost(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("answer lost", request=request)


def test_503_retry_after_is_honoured(audit):
    transport, seen = scripted(
        [
            httpx.Response(503, headers={"Retry-After": "2"}),
            httpx.Response(503, headers={"Retry-After": "120"}),
            httpx.Response(200, json={"_id": "t1", "name": "reboot"}),
        ]
    )
    waits = []
    c = NbiClient(
        "http://acs", transport=transport, sleep=waits.append, audit=audit.append, max_backoff_s=30
    )
    res = c.reboot("D-1", idempotency_key="k")
    assert res.status == "done" and len(seen) == 3
    assert waits == [2.0, 30.0]  # Retry-After, capped at max_backoff_s
    assert [a.get("status") for a in audit if "attempt" in a] == [503, 503, 200]
    # Every attempt carried the same idempotency key.
    assert {json.loads(r.content)["idempotencyKey"] for r in seen} == {"k"}


def test_connection_refused_retries_with_backoff_then_gives_up():
    port = free_port()  # nothing listens there
    waits = []
    c = NbiClient(f"http://127.0.0.1:{port}", retries=3, backoff_s=0.5, sleep=waits.append)
    with pytest.raises(AcsUnavailableError, match="4 attempts"):
        c.devices()
    assert waits == [0.5, 1.0, 2.0]


def test_lost_answer_of_a_reboot_is_never_resent_blindly():
    transport, seen = scripted([lost, httpx.Response(200, json=[])])
    c = NbiClient("http://acs", transport=transport, sleep=lambda s: None)
    with pytest.raises(AcsAmbiguousError, match="not re-sent"):
        c.reboot("D-1", idempotency_key="k1")
    assert [r.method for r in seen] == ["POST", "GET"]  # one POST, then a lookup
    assert json.loads(seen[1].url.params["query"]) == {"idempotencyKey": "k1"}


@pytest.mark.parametrize("failure", [lost, httpx.Response(500, text="MongoError")])
def test_lost_answer_reconciled_from_the_task_queue(failure):
    queued = {"_id": "t9", "name": "reboot", "device": "D-1", "idempotencyKey": "k2"}
    transport, seen = scripted([failure, httpx.Response(200, json=[queued])])
    c = NbiClient("http://acs", transport=transport, sleep=lambda s: None)
    res = c.reboot("D-1", idempotency_key="k2")
    assert res.status == "queued" and res.task_id == "t9"
    assert [r.method for r in seen] == ["POST", "GET"]


def test_lost_answer_resent_only_when_the_server_deduplicates():
    dedupe = {"Guardian-Idempotency": "idempotencyKey"}
    transport, seen = scripted(
        [
            httpx.Response(200, json=[], headers=dedupe),  # earlier call: learns the header
            lost,
            httpx.Response(200, json=[], headers=dedupe),
            httpx.Response(200, json={"_id": "t3", "name": "reboot"}, headers=dedupe),
        ]
    )
    c = NbiClient("http://acs", transport=transport, sleep=lambda s: None)
    c.devices()
    res = c.reboot("D-1", idempotency_key="k3")
    assert res.status == "done"
    posts = [r for r in seen if r.method == "POST"]
    assert len(posts) == 2 and {json.loads(r.content)["idempotencyKey"] for r in posts} == {"k3"}


def test_reads_are_simply_retried_after_a_lost_answer():
    transport, seen = scripted([lost, httpx.Response(200, json=[{"_id": "D-1"}])])
    c = NbiClient("http://acs", transport=transport, sleep=lambda s: None)
    assert c.devices() == [{"_id": "D-1"}] and len(seen) == 2


def test_task_builders_validate_and_type_values():
    assert tasks.set_parameter_values({"A.B": True, "A.C": 3, "A.D": "x"})["parameterValues"] == [
        ["A.B", True, "xsd:boolean"],
        ["A.C", 3, "xsd:unsignedInt"],
        ["A.D", "x", "xsd:string"],
    ]
    w = tasks.wifi_profile("InternetGatewayDevice", channel=11)
    assert w["parameterValues"][0][0].endswith("WLANConfiguration.1.Channel")
    with pytest.raises(ValueError, match="channel"):
        tasks.wifi_profile("Device", channel=300)
    with pytest.raises(ValueError, match="8–63"):
        tasks.wifi_profile("Device", password="short")
    with pytest.raises(ValueError, match="expected ssid"):
        tasks.wifi_profile("Device")


def test_token_from_file(monkeypatch, tmp_path):
    from guardian_lib.acs import token_from_env

    f = tmp_path / "tok"
    f.write_text("from-file\n")
    monkeypatch.setenv("GUARDIAN_NBI_TOKEN", "from-env")
    assert token_from_env() == "from-env"
    monkeypatch.setenv("GUARDIAN_NBI_TOKEN_FILE", str(f))
    assert token_from_env() == "from-file"
    transport, seen = scripted([httpx.Response(200, json=[])])
    NbiClient("http://acs", transport=transport).devices()
    assert seen[0].headers["Authorization"] == "Bearer from-file"
