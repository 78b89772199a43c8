"""Interoperability with a CWMP client we did not write.

The messages below were recorded from CwmpClient 0.0.1b0 (a third-party Python CWMP
CPE on PyPI) talking to this ACS. They carry quirks of their own: an unqualified
``<Envelope>`` root, RPC arguments qualified with ``cwmp:``, values without
``xsi:type``, a CurrentTime without time zone, no RetryCount, ``Content-Type:
text/plain``, no ``SOAPAction`` on the Inform, no cookies at all (aiohttp refuses
cookies from IP-address hosts), and a SetParameterValuesResponse holding a
ParameterList instead of a Status. Replayed here byte for byte over one connection.
"""

from __future__ import annotations

import aiohttp

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.store import get_parameter
from acs_emulator.cwmp.testing import run, running_acs

INFORM = (
    '<?xml version="1.0" ?>'
    '<Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-0">'
    "<soap:Header/><soap:Body><cwmp:Inform><cwmp:MaxEnvelopes>1</cwmp:MaxEnvelopes>"
    "<cwmp:CurrentTime>2026-11-23T12:42:26.155872</cwmp:CurrentTime><cwmp:DeviceId>"
    "<cwmp:Manufacturer>Dites Telecom</cwmp:Manufacturer><cwmp:OUI>FFFFFF</cwmp:OUI>"
    "<cwmp:ProductClass>DTBox1</cwmp:ProductClass><cwmp:SerialNumber>"
    "0123456</cwmp:SerialNumber></cwmp:DeviceId>"
    '<ParameterList soap:arrayType="cwmp:ParameterValueStruct[9]">'
    "<ParameterValueStruct><Name>Device.RootDataModelVersion</Name><Value>"
    "2.15</Value></ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.DeviceInfo.Manufacturer</Name><Value>Dites Telecom</Value>"
    "</ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.DeviceInfo.ManufacturerOUI</Name><Value>FFFFFF</Value>"
    "</ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.DeviceInfo.ProductClass</Name><Value>DTBox1</Value>"
    "</ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.DeviceInfo.SerialNumber</Name><Value>0123456</Value>"
    "</ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.DeviceInfo.ProvisioningCode</Name><Value></Value></ParameterValueStruct>"
    "<ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value>"
    "0.0.1</Value></ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.DeviceInfo.HardwareVersion</Name><Value>1.0.0</Value>"
    "</ParameterValueStruct><ParameterValueStruct><Name>"
    "Device.ManagementServer.ParameterKey</Name><Value></Value>"
    "</ParameterValueStruct></ParameterList>"
    '<cwmp:Event soap:arrayType="cwmp:EventStruct[2]"><EventStruct><cwmp:EventCode>'
    "1 BOOT</cwmp:EventCode></EventStruct><EventStruct><cwmp:EventCode>"
    "M Reboot</cwmp:EventCode></EventStruct></cwmp:Event></cwmp:Inform></soap:Body>"
    "</Envelope>"
)

GPV_RESPONSE = (
    '<?xml version="1.0" ?>'
    '<Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-0">'
    '<soap:Header><cwmp:ID soap:mustUnderstand="1">{id}</cwmp:ID></soap:Header>'
    "<soap:Body><cwmp:GetParameterValuesResponse>"
    '<ParameterList soap:arrayType="cwmp:ParameterValueStruct[1]">'
    "<ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name><Value>"
    "0.0.1</Value></ParameterValueStruct></ParameterList>"
    "</cwmp:GetParameterValuesResponse></soap:Body></Envelope>"
)

SPV_RESPONSE = (
    '<?xml version="1.0" ?>'
    '<Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:cwmp="urn:dslforum-org:cwmp-1-0">'
    '<soap:Header><cwmp:ID soap:mustUnderstand="1">{id}</cwmp:ID></soap:Header>'
    "<soap:Body><cwmp:SetParameterValuesResponse>"
    '<ParameterList soap:arrayType="cwmp:ParameterValueStruct[1]">'
    "<ParameterValueStruct><Name>Device.DeviceInfo.ProvisioningCode</Name><Value>"
    "ZT1</Value></ParameterValueStruct></ParameterList>"
    "</cwmp:SetParameterValuesResponse></soap:Body></Envelope>"
)

DEVICE = "FFFFFF-DTBox1-0123456"
PLAIN = {"Content-Type": "text/plain; charset=utf-8"}


def test_recorded_third_party_cpe_session_replays():
    async def body():
        async with running_acs() as svc:
            store = svc.acs.store
            # One connection, no cookie jar: the session must follow the connection.
            async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1), cookie_jar=aiohttp.DummyCookieJar()
            ) as http:

                async def post(data: str, headers=PLAIN):
                    async with http.post(svc.cwmp_url, data=data.encode(), headers=headers) as r:
                        return r.status, await r.read()

                status, data = await post(INFORM)
                assert status == 200 and soap.parse_message(data).name == "InformResponse"
                assert (await post(""))[0] == 204
                assert store.get_device(DEVICE)["_events"] == ["1 BOOT", "M Reboot"]
                store.insert_task(
                    {
                        "name": "getParameterValues",
                        "device": DEVICE,
                        "parameterNames": ["Device.DeviceInfo.SoftwareVersion"],
                    }
                )
                store.insert_task(
                    {
                        "name": "setParameterValues",
                        "device": DEVICE,
                        "parameterValues": [["Device.DeviceInfo.ProvisioningCode", "ZT1"]],
                    }
                )
                assert (await post(INFORM))[0] == 200
                status, data = await post("")
                msg = soap.parse_message(data)
                assert msg.name == "GetParameterValues" and msg.cwmp_ns.endswith("cwmp-1-0")
                assert "<cwmp:GetParameterValues>" in data.decode()
                soap_action = dict(PLAIN, SOAPAction="")
                status, data = await post(GPV_RESPONSE.format(id=msg.id), soap_action)
                msg = soap.parse_message(data)
                assert msg.name == "SetParameterValues"
                status, _ = await post(SPV_RESPONSE.format(id=msg.id), soap_action)
                assert status == 204
            doc = store.get_device(DEVICE)
            assert get_parameter(doc, "Device.DeviceInfo.SoftwareVersion") == "0.0.1"
            assert get_parameter(doc, "Device.DeviceInfo.ProvisioningCode") == "ZT1"
            assert get_parameter(doc, "Device.RootDataModelVersion") == "2.15"
            assert store.tasks == {} and store.faults == {}

    run(body())
