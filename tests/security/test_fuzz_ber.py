"""Property-based fuzzing of the SNMP BER decoder: any bytes give a Message or BerError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from guardian_lib.snmp.ber import (
    GET,
    GETBULK,
    GETNEXT,
    RESPONSE,
    BerError,
    Message,
    decode_message,
    encode_message,
)

FUZZ = settings(max_examples=300, deadline=None)

oids = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=12).map(lambda t: (1, 3, *t))
values = st.one_of(
    st.tuples(st.just(2), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just(4), st.binary(max_size=40)),
    st.tuples(st.just(65), st.integers(0, 2**32 - 1)),
    st.tuples(st.just(70), st.integers(0, 2**64 - 1)),
    st.tuples(st.just(5), st.none()),
)
messages = st.builds(
    Message,
    version=st.sampled_from([0, 1]),
    community=st.binary(max_size=20),
    pdu_type=st.sampled_from([GET, GETNEXT, RESPONSE, GETBULK]),
    request_id=st.integers(0, 2**31 - 1),
    error_status=st.integers(0, 18),
    error_index=st.integers(0, 100),
    varbinds=st.lists(st.tuples(oids, values), max_size=6),
)


def _decode_or_ber_error(data: bytes) -> Message | None:
    try:
        return decode_message(data)
    except BerError:
        return None


@FUZZ
@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_ber_error(data):
    msg = _decode_or_ber_error(data)
    if msg is not None:
        assert msg.version in (0, 1)


@FUZZ
@given(messages, st.data())
def test_mutated_messages_only_raise_ber_error(msg, data):
    wire = bytearray(encode_message(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    _decode_or_ber_error(bytes(wire[:cut]))
    _decode_or_ber_error(bytes(wire))


@FUZZ
@given(messages)
def test_valid_messages_round_trip(msg):
    back = decode_message(encode_message(msg))
    assert (back.version, back.community, back.pdu_type, back.request_id) == (
        msg.version, msg.community, msg.pdu_type, msg.request_id,
    )  # fmt: skip
    assert [o for o, _ in back.varbinds] == [o for o, _ in msg.varbinds]
