"""Timestamps (and typed cells) of an operator's files: ISO 8601 unless the column names its format.

Before 2026-12-06 a column without a format was parsed by pandas' guess from its first
value: ``05/06/2026 10:00`` (the 5th of June in Brazil) became May 6th without a word,
a column mixing values with and without an offset was refused on its valid rows, and
with a time zone configured it stopped with a bare pandas ValueError.
"""

from __future__ import annotations

import pandas as pd
import pytest

from guardian_lib.errors import IngestError
from guardian_lib.mapping import ColumnSpec, RowOrigin, parse_timestamps

ORIGIN = RowOrigin("ordens.csv", csv_lines=True)
UTC = pd.Timestamp


def _parse(values, fmt=None, zone=None, required=True):
    frame = pd.DataFrame({"t": values})
    return parse_timestamps(
        ORIGIN, frame, ColumnSpec(column="t", format=fmt), default_tz=zone, required=required
    ).tolist()


def test_a_day_first_date_without_a_format_is_refused_not_guessed():
    with pytest.raises(IngestError) as info:
        _parse(["05/06/2026 10:00", "06/06/2026 11:00"])
    assert str(info.value) == (
        "ordens.csv: row 1 (line 2): column 't': expected a timestamp in ISO 8601, such as "
        "'2026-06-05 10:00' or '2026-06-05T10:00:00-03:00' (another layout needs the "
        "column's format, e.g. '%d/%m/%Y %H:%M'), got '05/06/2026 10:00'"
    )
    got = _parse(["05/06/2026 10:00"], fmt="%d/%m/%Y %H:%M", zone="America/Sao_Paulo")
    assert got == [UTC("2026-06-05 13:00", tz="UTC")]


def test_a_column_may_mix_values_with_and_without_their_offset():
    values = ["2026-06-13T10:00:00-03:00", "2026-06-13 10:00", "2026-06-13T10:00:00Z",
              "2026-06-13 10:00:00.250+0200", "2026-06-13"]  # fmt: skip
    expected_sp = ["2026-06-13 13:00", "2026-06-13 13:00", "2026-06-13 10:00",
                   "2026-06-13 08:00:00.250", "2026-06-13 03:00"]  # fmt: skip
    assert _parse(values, zone="America/Sao_Paulo") == [UTC(v, tz="UTC") for v in expected_sp]
    # Without a zone, a value without an offset is UTC.
    assert _parse(values)[1] == UTC("2026-06-13 10:00", tz="UTC")


def test_compact_numbers_take_their_format_and_bare_numbers_are_no_epoch():
    assert _parse([202606131000], fmt="%Y%m%d%H%M") == [UTC("2026-06-13 10:00", tz="UTC")]
    with pytest.raises(IngestError, match=r"row 1 \(line 2\): column 't': expected a timestamp"):
        _parse([1750000000])


def test_database_and_parquet_timestamps_keep_their_zone_or_take_the_configured_one():
    naive = pd.Series(pd.to_datetime(["2026-06-13 10:00"]))
    aware = pd.Series(pd.to_datetime(["2026-06-13 10:00"], utc=True))
    assert _parse(naive, zone="America/Sao_Paulo") == [UTC("2026-06-13 13:00", tz="UTC")]
    assert _parse(aware, zone="America/Sao_Paulo") == [UTC("2026-06-13 10:00", tz="UTC")]


def test_a_local_time_a_clock_change_skips_or_repeats_is_named_as_such():
    for value in ("2026-03-08 02:30", "2026-11-01 01:30"):  # skipped, repeated in New York
        with pytest.raises(IngestError, match="exists once in America/New_York"):
            _parse([value], zone="America/New_York")
    assert _parse(["2026-11-01 01:30-04:00"], zone="America/New_York") == [
        UTC("2026-11-01 05:30", tz="UTC")
    ]


def test_blank_cells_are_nat_when_optional_and_refused_when_required():
    assert pd.isna(_parse(["2026-06-13 10:00", None, "", "NULL"], required=False)[1:]).all()
    with pytest.raises(IngestError, match=r"row 2 \(line 3\)"):
        _parse(["2026-06-13 10:00", ""])


def test_typed_cells_are_taken_as_they_are_whatever_the_text_format():
    """A spreadsheet's date cells, a driver's ``date`` and ``Decimal`` values are values,
    not text: the column's format and decimal comma are for its text cells only."""
    import datetime as dt
    from decimal import Decimal

    from guardian_lib.mapping import parse_numbers

    got = _parse(
        pd.Series([dt.date(2026, 6, 5), dt.datetime(2026, 6, 5, 10, 0), "06/06/2026 11:00"],
                  dtype=object),
        fmt="%d/%m/%Y %H:%M", zone="America/Sao_Paulo",
    )  # fmt: skip
    assert got == [UTC("2026-06-05 03:00", tz="UTC"), UTC("2026-06-05 13:00", tz="UTC"),
                   UTC("2026-06-06 14:00", tz="UTC")]  # fmt: skip
    cells = pd.DataFrame({"x": pd.Series([Decimal("1234.5"), 2, "1.234,5"], dtype=object)})
    spec = ColumnSpec(column="x")
    assert parse_numbers(ORIGIN, cells, spec, decimal=",").tolist() == [1234.5, 2.0, 1234.5]
