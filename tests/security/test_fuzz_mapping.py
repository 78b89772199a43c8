"""Property-based fuzzing of the mapping reader: any YAML mapping file and any CSV either
load or fail with the library's own error (ConfigError / IngestError), nothing else."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.ingest import (
    ColumnMapping,
    ColumnSpec,
    ingest_user_telemetry,
    load_column_mapping,
)

FUZZ = settings(max_examples=300, deadline=None)

_KEYS = ["columns", "source", "csv_delimiter", "ts", "onu_id", "rx_dbm", "column", "scale",
         "offset", "format", "timezone", "true_values", "online", "bogus", "&a", "*a", "<<"]  # fmt: skip
_TOKENS = st.sampled_from(
    [
        *_KEYS,
        ":",
        " ",
        "\n",
        "  ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "'",
        '"',
        "1e9",
        "-1",
        "null",
        "~",
        "!!python/object:os.system",
        "%Y",
        "UTC",
        "\t",
        "#",
    ]  # fmt: skip
)
yaml_texts = st.one_of(
    st.lists(_TOKENS, max_size=40).map("".join),
    st.text(max_size=200),
)


@FUZZ
@given(yaml_texts)
def test_any_mapping_file_loads_or_raises_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mapping.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            mapping = load_column_mapping(path)
        except ConfigError as exc:
            assert str(path) in str(exc)
            event("refused")
        else:
            event("loaded")
            assert isinstance(mapping, ColumnMapping)
            assert {"ts", "onu_id"} <= set(mapping.columns)


_GOOD_TS = st.sampled_from(
    ["2026-01-01T00:00:00Z", "2026-01-01 00:05", "2026-01-02T23:59:59+03:00"]
)
_BAD_TS = st.sampled_from(
    ["", "yesterday", "2026-13-45", "1970-01-01", "9999-12-31T23:59:59Z", "\x00"]
)
_GOOD_RX = st.sampled_from(["-2150", "-1980.5", "", "nan"])
_BAD_RX = st.sampled_from(["-21.5", "1e308", "inf", "-inf", "0x10", "12,5", "abc", '"'])


def _cell(good, bad):
    return st.one_of(good, good, good, bad, st.text(max_size=6))


_ROW = st.tuples(
    _cell(_GOOD_TS, _BAD_TS),
    _cell(st.sampled_from(["ONU1", "ONU2"]), st.sampled_from(["", " ", "\t"])),
    _cell(_GOOD_RX, _BAD_RX),
).map(",".join)
csv_texts = st.lists(st.one_of(_ROW, _ROW, _ROW, st.text(max_size=12)), max_size=8).map(
    lambda rows: "\n".join(["ts,onu_id,rx", *rows])
)
MAPPING = ColumnMapping(
    columns={"ts": "ts", "onu_id": "onu_id", "rx_dbm": ColumnSpec(column="rx", scale=0.01)}
)


@FUZZ
@given(st.one_of(csv_texts, st.text(max_size=300)), st.booleans())
def test_any_csv_is_added_or_refused_with_ingest_error(text, mapped):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "user.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            report = ingest_user_telemetry(Path(d) / "run", path, MAPPING if mapped else None)
        except IngestError as exc:
            assert str(path) in str(exc)
            event("refused")
        else:
            assert report.rows_added > 0
            event("added")
