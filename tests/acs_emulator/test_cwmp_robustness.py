"""Hostile and malformed input over real HTTP: each gets a CWMP fault or an HTTP error,
the ACS keeps serving, and stored data stays consistent."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.testing import RawCpe, inform_xml, run
from acs_emulator.cwmp.testing import http_client as client
from acs_emulator.cwmp.testing import running_acs as acs

DEVICE = "00259E-HG8245H-SN0001"
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&x;
</soap:Body></soap:Envelope>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&c;
</soap:Body></soap:Envelope>"""


def _snapshot(svc) -> str:
    s = svc.acs.store
    return json.dumps([s.devices, s.tasks, s.faults], sort_keys=True, default=str)


@pytest.mark.parametrize(
    "body, status, code",
    [
        (XXE, 400, "8003"),
        (BILLION_LAUGHS, 400, "8003"),
        (b"<<<garbage", 400, "8003"),
        (inform_xml(ns="urn:dslforum-org:cwmp-9-9"), 400, "8003"),
        (inform_xml().replace(b"<OUI>00259E</OUI>", b""), 400, "8003"),  # a client error
        (b"x" * (soap.MAX_BODY_BYTES + 10), 413, None),
    ],
    ids=["xxe", "entity-expansion", "not-xml", "wrong-namespace", "no-oui", "oversized"],
)
def test_hostile_bodies_are_refused_and_nothing_changes(body, status, code):
    async def go():
        async with acs() as svc, client() as http:
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.open_session()
            before = _snapshot(svc)
            got, data, _ = await RawCpe(http, svc.cwmp_url).post(body)
            assert got == status
            if code:
                assert soap.parse_fault(soap.parse_message(data).body)["faultCode"] == code
            assert _snapshot(svc) == before
            # Still serving.
            assert (await cpe.post(inform_xml()))[0] == 200
            assert (await cpe.post(b""))[0] == 204

    run(go())


def test_missing_headers_are_tolerated():
    async def go():
        async with acs() as svc, client() as http:
            # No Content-Type, no SOAPAction, no cookie support needed for a single request.
            async with http.post(
                svc.cwmp_url, data=inform_xml(), skip_auto_headers=["Content-Type"]
            ) as r:
                assert r.status == 200
                assert soap.parse_message(await r.read()).name == "InformResponse"

    run(go())


def test_rpc_without_session_and_unsupported_method():
    async def go():
        async with acs() as svc, client() as http:
            lost = RawCpe(http, svc.cwmp_url)
            status, _, _ = await lost.post(soap.envelope(soap.rpc_xml("RebootResponse")))
            assert status == 400
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.post(inform_xml())
            status, data, _ = await cpe.post(soap.envelope(soap.rpc_xml("RequestDownload")))
            assert status == 500
            assert soap.parse_fault(soap.parse_message(data).body)["faultCode"] == "8000"
            status, data, _ = await cpe.post(soap.envelope(soap.rpc_xml("GetRPCMethods")))
            assert soap.parse_message(data).name == "GetRPCMethodsResponse"
            assert (await cpe.post(b""))[0] == 204

    run(go())


def test_unexpected_response_and_empty_post_with_outstanding_rpc():
    async def go():
        async with acs() as svc, client() as http:
            store = svc.acs.store
            cpe = RawCpe(http, svc.cwmp_url)
            await cpe.open_session()
            task, _ = store.insert_task(
                {"name": "getParameterValues", "parameterNames": ["A.B"], "device": DEVICE}
            )
            await cpe.open_session()  # → GetParameterValues
            # The CPE answers something else: the task faults, nothing crashes.
            wrong = soap.envelope(soap.rpc_xml("RebootResponse"))
            assert (await cpe.post(wrong))[0] == 204
            assert store.task_status(task["_id"]) == "fault"
            store.delete_fault(f"{DEVICE}:task_{task['_id']}")
            task2, _ = store.insert_task(
                {"name": "getParameterValues", "parameterNames": ["A.B"], "device": DEVICE}
            )
            await cpe.open_session()  # → GetParameterValues
            assert (await cpe.post(b""))[0] == 204  # empty POST instead of an answer
            assert store.task_status(task2["_id"]) == "pending"

    run(go())


def test_many_concurrent_sessions_stay_isolated():
    async def go():
        async with acs() as svc, client(limit=50) as http:

            async def one(i: int) -> int:
                cpe = RawCpe(http, svc.cwmp_url)
                s1, _, _ = await cpe.post(inform_xml(serial=f"C{i:04d}"))
                s2, _, _ = await cpe.post(b"")
                return s1 * 1000 + s2

            results = await asyncio.gather(*(one(i) for i in range(100)))
            assert set(results) == {200 * 1000 + 204}
            assert len(svc.acs.store.devices) == 100 and not svc.acs.sessions

    run(go())


def test_wrong_method_on_cwmp_port():
    async def go():
        async with acs() as svc, aiohttp.ClientSession() as http:
            async with http.get(svc.cwmp_url) as r:
                assert r.status == 405

    run(go())
