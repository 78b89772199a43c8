"""An operator's export files as frames: CSV, Parquet and Excel workbooks.

:func:`read_user_file` reads one file the way :mod:`guardian_lib.mapping` and
:mod:`guardian_lib.owndata` parse it: CSV cells as text (in the file's ``csv_encoding``),
Parquet columns and Excel cells as stored. Every read error becomes an
:class:`~guardian_lib.errors.IngestError` that names the file; a workbook is refused
before it is parsed when it would inflate beyond :data:`MAX_XLSX_UNCOMPRESSED_BYTES`.
"""

from __future__ import annotations

import codecs
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import AfterValidator, Field

from guardian_lib.errors import IngestError

if TYPE_CHECKING:  # the mapping module imports this one
    from guardian_lib.mapping import ColumnMapping

__all__ = [
    "CsvEncoding",
    "DEFAULT_CSV_ENCODING",
    "EXCEL_SUFFIXES",
    "MAX_XLSX_UNCOMPRESSED_BYTES",
    "SheetName",
    "read_errors",
    "read_user_file",
]


def _known_encoding(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(
            f"unknown text encoding {name!r}; expected a Python codec name such as "
            "'utf-8', 'cp1252' (Excel on Windows) or 'latin-1'"
        ) from None
    return name


#: The text encoding of a CSV file (a Python codec name). Exports saved by Excel on a
#: Brazilian Windows machine are usually ``cp1252``; UTF-8 with a byte-order mark is read
#: as UTF-8.
CsvEncoding = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(_known_encoding)]
DEFAULT_CSV_ENCODING = "utf-8"
#: File suffixes read as Excel workbooks (:func:`read_user_file`).
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
#: The worksheet of an Excel file: its name, or its position (0 the first).
SheetName = Annotated[str, Field(min_length=1, max_length=31)] | Annotated[int, Field(ge=0)]


def read_errors() -> tuple[type[BaseException], ...]:
    """What reading an operator's file may raise on bad content (named, never a traceback)."""
    return (
        OSError,
        pa.ArrowException,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        ValueError,
    )


def read_user_file(
    path: Path,
    mapping: ColumnMapping | None = None,
    delimiter: str = ",",
    encoding: str = DEFAULT_CSV_ENCODING,
    sheet: str | int = 0,
) -> pd.DataFrame:
    """One export file: CSV/TXT/GZ cells as text, Parquet columns and Excel (``.xlsx``)
    cells as stored (numbers, dates and text; a date cell is a time, not text).

    The delimiter, the text encoding and the worksheet (name, or position from 0) are the
    mapping's (``csv_delimiter``, ``csv_encoding``, ``sheet``) when a mapping is given,
    else ``delimiter``, ``encoding`` and ``sheet``.
    """
    suffix = path.suffix.lower()
    if mapping is not None:
        delimiter, encoding, sheet = mapping.csv_delimiter, mapping.csv_encoding, mapping.sheet
    try:
        if suffix == ".parquet":
            return pq.read_table(path).to_pandas()
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(
                path, sep=delimiter, dtype=str, keep_default_na=False, encoding=encoding
            )
        if suffix in EXCEL_SUFFIXES:
            return _read_sheet(path, sheet)
    except IngestError:
        raise
    except UnicodeDecodeError as exc:
        hint = " (set csv_encoding, e.g. cp1252 for a file saved by Excel on Windows)"
        raise IngestError(
            f"{path}: cannot read file as {encoding}: it holds byte "
            f"0x{exc.object[exc.start]:02x}, which is not valid {exc.encoding}"
            + (hint if codecs.lookup(encoding).name == "utf-8" else "")
        ) from None
    except read_errors() as exc:
        raise IngestError(f"{path}: cannot read file: {' '.join(str(exc).split())}") from None
    raise IngestError(f"{path}: unsupported file type {suffix!r}: expected .csv, .parquet or .xlsx")


#: Largest workbook read, uncompressed: an .xlsx is a zip, and a few MB can inflate to
#: many GB (a decompression bomb) where a CSV's size is what the disk shows. [bytes]
MAX_XLSX_UNCOMPRESSED_BYTES = 1 << 30


def _read_sheet(path: Path, sheet: str | int) -> pd.DataFrame:
    """One worksheet, cells as Python values (an id typed as a number keeps its digits:
    no float column), the first row its header. openpyxl parses the workbook's XML with
    defusedxml when that is installed (it is a dependency here)."""
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with zipfile.ZipFile(path) as archive:
            inflated = sum(item.file_size for item in archive.infolist())
        if inflated > MAX_XLSX_UNCOMPRESSED_BYTES:
            raise IngestError(
                f"{path}: the workbook holds {inflated:,} bytes uncompressed, above the "
                f"importer's limit of {MAX_XLSX_UNCOMPRESSED_BYTES:,}; export the sheet as CSV"
            )
        with pd.ExcelFile(path, engine="openpyxl") as book:
            names = book.sheet_names
            known = sheet in names if isinstance(sheet, str) else 0 <= sheet < len(names)
            if not known:
                raise IngestError(f"{path}: no sheet {sheet!r}; the workbook has {names}")
            # Text stays text: "NA" or "NULL" in a cell is for blank_mask to judge.
            return book.parse(sheet, dtype=object, keep_default_na=False, na_values=[])
    except IngestError:
        raise
    except (zipfile.BadZipFile, KeyError, InvalidFileException, ValueError, TypeError) as exc:
        # A renamed file, a damaged download, a workbook whose XML defusedxml refuses.
        why = " ".join(str(exc).split()) or type(exc).__name__
        raise IngestError(f"{path}: not a readable Excel workbook (.xlsx): {why}") from None
