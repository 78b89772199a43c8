"""The hostile-input corpus of the ACS, over real HTTP on 127.0.0.1.

``corpus/soap/*.xml`` are posted to the CWMP listener (``corpus/soap/expected.json``
gives each one's HTTP status and CWMP fault code); ``corpus/nbi_queries/*.json`` are
NBI requests with their status and a phrase the answer must contain. Every case must
get exactly its safe outcome, leave the stored devices, tasks and faults unchanged,
and the server must serve a good request right after it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.testing import RawCpe, http_client, inform_xml, run, running_acs

CORPUS = Path(__file__).parent / "corpus"
SOAP_EXPECTED = json.loads((CORPUS / "soap" / "expected.json").read_text())
SOAP_CASES = sorted(p.stem for p in (CORPUS / "soap").glob("*.xml"))
NBI_CASES = sorted(p.stem for p in (CORPUS / "nbi_queries").glob("*.json"))
DEVICE = "00259E-HG8245H-SN0001"


def _snapshot(svc) -> str:
    s = svc.acs.store
    return json.dumps([s.devices, s.tasks, s.faults], sort_keys=True, default=str)


def test_every_soap_case_has_an_expectation():
    assert SOAP_CASES and set(SOAP_CASES) == set(SOAP_EXPECTED)


@pytest.mark.parametrize("name", SOAP_CASES)
def test_soap_corpus_case_gets_its_safe_outcome(name):
    body = (CORPUS / "soap" / f"{name}.xml").read_bytes()
    want = SOAP_EXPECTED[name]

    async def go():
        async with running_acs() as svc, http_client() as http:
            good = RawCpe(http, svc.cwmp_url)
            await good.open_session()  # one known device, session ended
            before = _snapshot(svc)
            status, data, _ = await RawCpe(http, svc.cwmp_url).post(body)
            assert status == want["status"], (name, data[:300])
            if want["fault"]:
                fault = soap.parse_fault(soap.parse_message(data).body)
                assert fault["faultCode"] == want["fault"], fault
            assert _snapshot(svc) == before
            # The ACS still serves a good session.
            assert (await good.post(inform_xml()))[0] == 200
            assert (await good.post(b""))[0] == 204
            assert svc.acs.stats["background_errors"] == 0

    run(go())


@pytest.mark.parametrize("name", NBI_CASES)
def test_nbi_corpus_case_gets_its_safe_outcome(name):
    case = json.loads((CORPUS / "nbi_queries" / f"{name}.json").read_text())

    async def go():
        async with running_acs() as svc, http_client() as http:
            await RawCpe(http, svc.cwmp_url).open_session()
            before = _snapshot(svc)
            url = svc.nbi_url + case["path"].replace("{device}", DEVICE)
            body = case.get("body")
            async with http.request(
                case["method"],
                url,
                params=case["params"],
                data=None if body is None else body.encode(),
            ) as r:
                text = await r.text()
                assert r.status == case["status"], (name, text[:300])
            if "contains" in case:
                assert case["contains"] in text, text[:300]
            if r.status == 200:
                assert [d["_id"] for d in json.loads(text)] == [DEVICE]
            assert _snapshot(svc) == before
            # The NBI still answers a good query.
            async with http.get(svc.nbi_url + "/devices/", params={"query": "{}"}) as r:
                assert r.status == 200 and len(await r.json()) == 1

    run(go())
