"""SOAP codec: liberal parsing of field-CPE quirks, strict writing, hostile XML refused."""

from __future__ import annotations

import contextlib
import doctest
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acs_emulator.cwmp import soap

INFORM = """<?xml version="1.0"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="{ns}">
 <SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">42</cwmp:ID></SOAP-ENV:Header>
 <SOAP-ENV:Body><cwmp:Inform>
  <DeviceId><Manufacturer>Huawei</Manufacturer><OUI>00259E</OUI>
   <ProductClass>HG8245H</ProductClass><SerialNumber>48575443ABCD</SerialNumber></DeviceId>
  <Event SOAP-ENC:arrayType="cwmp:EventStruct[7]">
   <EventStruct><EventCode>1 BOOT</EventCode><CommandKey></CommandKey></EventStruct>
   <EventStruct><EventCode>M Reboot</EventCode><CommandKey>k1</CommandKey></EventStruct>
  </Event>
  <MaxEnvelopes>1</MaxEnvelopes><RetryCount>0</RetryCount>
  <ParameterList SOAP-ENC:arrayType="cwmp:ParameterValueStruct[1]">
   <ParameterValueStruct><Name>Device.DeviceInfo.SoftwareVersion</Name>
    <Value>V1</Value></ParameterValueStruct>
   <ParameterValueStruct><Name>Device.DeviceInfo.UpTime</Name>
    <Value xsi:type="xsd:unsignedInt">12</Value></ParameterValueStruct>
  </ParameterList>
 </cwmp:Inform></SOAP-ENV:Body></SOAP-ENV:Envelope>"""


@pytest.mark.parametrize("ns", soap.CWMP_NAMESPACES)
def test_inform_from_any_cwmp_namespace_with_quirks(ns):
    msg = soap.parse_message(INFORM.format(ns=ns).encode())
    assert (msg.name, msg.cwmp_ns, msg.id) == ("Inform", ns, "42")
    inform = soap.parse_inform(msg.body)
    assert inform["device"]["SerialNumber"] == "48575443ABCD"
    # arrayType says 7 events and 1 parameter: the lists win.
    assert [c for c, _ in inform["events"]] == ["1 BOOT", "M Reboot"]
    assert inform["events"][1][1] == "k1"
    # A value without xsi:type reads as a string.
    assert [(p.name.rsplit(".", 1)[1], p.value, p.type) for p in inform["params"]] == [
        ("SoftwareVersion", "V1", "xsd:string"),
        ("UpTime", "12", "xsd:unsignedInt"),
    ]


def test_writer_uses_literal_cwmp_prefix_echoes_namespace_and_types_values():
    ns = soap.CWMP_NAMESPACES[2]
    body = soap.rpc_xml(
        "SetParameterValues", raw=soap.values_xml([("A.B", "7", "xsd:unsignedInt")])
    )
    xml = soap.envelope(body, cwmp_ns=ns, msg_id="9").decode()
    assert f'xmlns:cwmp="{ns}"' in xml and "<cwmp:SetParameterValues>" in xml
    assert 'arrayType="cwmp:ParameterValueStruct[1]"' in xml
    assert 'xsi:type="xsd:unsignedInt"' in xml
    back = soap.parse_message(xml.encode())
    assert back.name == "SetParameterValues" and back.id == "9" and back.cwmp_ns == ns
    (pv,) = soap.parse_parameter_values(soap.child(back.body, "ParameterList"))
    assert (pv.name, pv.value, pv.type) == ("A.B", "7", "xsd:unsignedInt")


def test_empty_body_is_the_empty_post():
    assert soap.parse_message(b"").name == ""
    assert soap.parse_message(b"  \r\n").name == ""


XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&x;
</soap:Body></soap:Envelope>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>&c;
</soap:Body></soap:Envelope>"""


@pytest.mark.parametrize(
    "body, words",
    [
        (XXE, "DTD"),
        (BILLION_LAUGHS, "DTD"),
        (b"<not-xml", "well-formed"),
        (b"<a/>", "Envelope"),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"/>',
            "Body",
        ),
        (INFORM.format(ns="urn:example:not-cwmp").encode(), "namespace"),
        (b"x" * (soap.MAX_BODY_BYTES + 1), "at most"),
    ],
)
def test_hostile_or_malformed_bodies_raise_a_named_error(body, words):
    with pytest.raises(soap.CwmpParseError, match=words):
        soap.parse_message(body)


def test_inform_without_device_id_is_refused():
    xml = soap.envelope(soap.rpc_xml("Inform", raw="<Event/>"))
    with pytest.raises(soap.CwmpParseError, match="DeviceId"):
        soap.parse_inform(soap.parse_message(xml).body)


def test_cpe_fault_with_set_parameter_values_detail():
    xml = soap.fault_xml(9003, "Invalid arguments", acs=False).replace(
        "</cwmp:Fault>",
        "<SetParameterValuesFault><ParameterName>A.B</ParameterName><FaultCode>9008"
        "</FaultCode></SetParameterValuesFault></cwmp:Fault>",
    )
    msg = soap.parse_message(soap.envelope(xml))
    fault = soap.parse_fault(msg.body)
    assert fault["faultCode"] == "9003"
    assert fault["setParameterValuesFault"] == [{"parameterName": "A.B", "faultCode": "9008"}]


@pytest.mark.parametrize(
    "module",
    [
        "acs_emulator.cwmp.auth",
        "acs_emulator.cwmp.server",
        "acs_emulator.cwmp.documents",
        "acs_emulator.cpe.state",
        "guardian_lib.acs.tasks",
        "guardian_lib.acs.campaigns",
    ],
)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048) | st.text(max_size=512).map(str.encode))
def test_parser_only_ever_raises_cwmp_parse_error(body):
    try:
        msg = soap.parse_message(body)
    except soap.CwmpParseError:
        return
    if msg.name == "Inform":
        with contextlib.suppress(soap.CwmpParseError):
            soap.parse_inform(msg.body)


_NAME = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._", min_size=1
)
# Any text a CPE may store, except "\r" (XML parsers normalise line ends to "\n").
_VALUE = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_NAME, _VALUE), max_size=5))
def test_typed_values_round_trip(pairs):
    values = [(n, v, "xsd:string") for n, v in pairs]
    xml = soap.envelope(soap.rpc_xml("SetParameterValues", raw=soap.values_xml(values)))
    msg = soap.parse_message(xml)
    back = soap.parse_parameter_values(soap.child(msg.body, "ParameterList"))
    assert [(p.name, p.value, p.type) for p in back] == values
