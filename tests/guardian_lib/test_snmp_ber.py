"""The fast SNMPv2c BER codec agrees with pysnmp's encoder and decoder, and rejects junk."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api
from pysnmp.proto.rfc1902 import Counter64, Integer32, ObjectName, OctetString, TimeTicks

from guardian_lib.snmp.ber import (
    END_OF_MIB_VIEW,
    GETBULK,
    RESPONSE,
    BerError,
    Message,
    decode_message,
    encode_message,
)

P = api.PROTOCOL_MODULES[api.SNMP_VERSION_2C]

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=14).map(lambda t: (1, 3, *t))
values = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(lambda v: (2, v)),
    st.binary(max_size=40).map(lambda v: (4, v)),
    st.integers(0, 2**32 - 1).map(lambda v: (67, v)),
    st.integers(0, 2**64 - 1).map(lambda v: (70, v)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(oids, values), max_size=20), st.integers(0, 2**31 - 1))
def test_roundtrip_and_pysnmp_decodes_ours(varbinds, rid):
    msg = Message(1, b"public", RESPONSE, rid, 0, 0, varbinds)
    data = encode_message(msg)
    assert decode_message(data) == msg
    parsed, rest = decoder.decode(data, asn1Spec=P.Message())
    assert not rest
    pdu = P.apiMessage.get_pdu(parsed)
    assert int(P.apiPDU.get_request_id(pdu)) == rid
    got = P.apiPDU.get_varbinds(pdu)
    assert [tuple(o) for o, _ in got] == [o for o, _ in varbinds]
    for (_, v), (_, (tag, want)) in zip(got, varbinds, strict=True):
        assert (bytes(v) if tag == 4 else int(v)) == want


def test_we_decode_pysnmp_getbulk_and_response():
    req = P.GetBulkRequestPDU()
    P.apiBulkPDU.set_defaults(req)
    P.apiBulkPDU.set_request_id(req, 4242)
    P.apiBulkPDU.set_non_repeaters(req, 0)
    P.apiBulkPDU.set_max_repetitions(req, 25)
    P.apiBulkPDU.set_varbinds(req, [((1, 3, 6, 1, 4, 1, 2011, 6, 128), P.Null(""))])
    msg = P.Message()
    P.apiMessage.set_defaults(msg)
    P.apiMessage.set_community(msg, "c0mm")
    P.apiMessage.set_pdu(msg, req)
    ours = decode_message(encoder.encode(msg))
    assert (ours.pdu_type, ours.request_id, ours.error_index) == (GETBULK, 4242, 25)
    assert ours.community == b"c0mm"
    assert ours.varbinds == [((1, 3, 6, 1, 4, 1, 2011, 6, 128), (5, None))]

    rsp = P.GetResponsePDU()
    P.apiPDU.set_defaults(rsp)
    P.apiPDU.set_varbinds(
        rsp,
        [
            (ObjectName("1.3.6.1.2.1.1.1.0"), OctetString(b"\x00\xffHW")),
            (ObjectName("1.3.6.1.2.1.1.3.0"), TimeTicks(4294967295)),
            (ObjectName("1.3.6.1.4.1.1.1"), Integer32(-2147483648)),
            (ObjectName("1.3.6.1.4.1.1.2"), Counter64(2**64 - 1)),
            (ObjectName("1.3.6.1.4.1.1.3"), P.EndOfMibView()),
        ],
    )
    P.apiMessage.set_pdu(msg, rsp)
    got = decode_message(encoder.encode(msg)).varbinds
    assert [v for _, v in got] == [
        (4, b"\x00\xffHW"),
        (67, 4294967295),
        (2, -2147483648),
        (70, 2**64 - 1),
        (END_OF_MIB_VIEW, None),
    ]


@pytest.mark.parametrize(
    "junk",
    [
        b"",
        b"\x30",
        b"\x30\x82\xff\xff",
        b"\x30\x03\x02\x01\x03",  # version 3: left to pysnmp
        b"GET / HTTP/1.1\r\n\r\n",
        encode_message(Message(1, b"c", RESPONSE, 1, 0, 0, [((1, 3, 6), (2, 5))]))[:-2],
    ],
)
def test_garbage_raises_ber_error(junk):
    with pytest.raises(BerError):
        decode_message(junk)
