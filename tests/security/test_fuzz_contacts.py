"""Property-based fuzzing of operate's contact files: any bytes give contacts or a
ContactFileError naming the file, never another exception; what is accepted is checked."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pandas as pd
from hypothesis import event, given, settings
from hypothesis import strategies as st

from guardian_lib.operate.contacts import ContactFileError, read_contact_file

LATEST = pd.Timestamp("2026-01-05T01:00:00Z")
_CELLS = st.sampled_from(
    ["2026-01-05T00:00:00Z", "2026-01-05T00:00:00", "2026-01-05 00:00:00-03:00", "now",
     "2099-01-01T00:00:00Z", "", " ", "C-1", "C\x1b", "\x00", '"', '""', ",", "\n", "\r",
     "1e9", "null", "{}", "[]", "ç", "x" * 600, "\ufeff"]
)  # fmt: skip
_CSV = st.lists(st.lists(_CELLS, max_size=6).map(",".join), max_size=6).map(
    lambda rows: "\n".join(["ts,customer_id,channel,reason,contact_id", *rows])
)
_JSON = st.lists(
    st.dictionaries(st.sampled_from(["ts", "customer_id", "channel", "reason", "contact_id",
                                     "x"]),
                    st.one_of(_CELLS, st.integers(), st.none(), st.booleans(),
                              st.lists(st.integers(), max_size=2)), max_size=6),
    max_size=5,
).map(lambda recs: "\n".join(__import__("json").dumps(r) for r in recs))  # fmt: skip


def _check(name: str, data: bytes) -> None:
    try:
        contacts = read_contact_file(name, data, ZoneInfo("UTC"), LATEST)
    except ContactFileError as exc:
        assert str(exc).startswith(name)
        event("refused")
        return
    event("accepted")
    for c in contacts:
        assert c.ts <= LATEST and c.ts.utcoffset().total_seconds() == 0
        assert c.customer_id and len(c.customer_id) <= 128
        for v in (c.customer_id, c.channel, c.reason, c.contact_id):
            assert v is None or not any(ord(ch) < 32 for ch in v)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_CSV.map(str.encode), st.binary(max_size=300)))
def test_any_csv_bytes_give_contacts_or_a_named_error(data):
    _check("fuzz.csv", data)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON.map(str.encode), st.binary(max_size=300)))
def test_any_jsonl_bytes_give_contacts_or_a_named_error(data):
    _check("fuzz.jsonl", data)
