"""Read the rows of one mapped table: files (CSV, Parquet, .xlsx, a glob) or a SQL query.

Each piece (one file, or one query's result) is a :class:`Piece`: its rows as a frame
whose index is the source row, the :class:`~guardian_lib.mapping.RowOrigin` that names
a bad row (file and CSV line, or query and row) and a digest of its content, so that
importing the same data twice stores it once.

A query runs against the operator's database through a SQLAlchemy URL read from the
environment variable the mapping names (``sql.url_env``, a ``GUARDIAN_OWN_*`` name):
the URL and its password never live in the mapping, and never appear in an error. The
query must be one statement (a ``;`` inside it is refused: ``COMMIT; DELETE …`` would
end a read-only transaction); on PostgreSQL the session is read-only
(``default_transaction_read_only``) and on SQLite ``query_only``; the statement has a
time limit (``sql.timeout_s``, PostgreSQL and MySQL) and at most ``sql.max_rows`` rows
are read.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from guardian_lib.errors import IngestError
from guardian_lib.ingest import file_digest
from guardian_lib.mapping import RowOrigin
from guardian_lib.owndata.config import TableSource
from guardian_lib.user_files import read_user_file

__all__ = ["Piece", "read_pieces", "frame_digest"]

_GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Piece:
    """The rows of one file or one query.

    Attributes
    ----------
    origin : RowOrigin
        Names a bad row of ``frame``.
    frame : pandas.DataFrame
        The rows as read (CSV cells as text); the index is the source row (0-based).
    digest : str
        Of the file's bytes or the query's result.
    path : Path or None
        The file (``None`` for a query).
    """

    origin: RowOrigin
    frame: pd.DataFrame
    digest: str
    path: Path | None = None


def frame_digest(frame: pd.DataFrame) -> str:
    """Short SHA-256 of a frame's column names and values (row order included)."""
    h = hashlib.sha256("\x1f".join(map(str, frame.columns)).encode())
    if len(frame):
        h.update(pd.util.hash_pandas_object(frame.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()[:20]


def _files(where: str, table: TableSource, base: Path) -> list[Path]:
    pattern = table.file or ""
    if _GLOB_CHARS & set(pattern):
        paths = sorted(p for p in base.glob(pattern) if p.is_file())
    else:
        paths = [base / pattern] if (base / pattern).is_file() else []
    if not paths:
        raise IngestError(f"{where}.file: no file matches {pattern!r} in {base}")
    root = base.resolve()
    for p in paths:
        if not p.resolve().is_relative_to(root):  # a symbolic link out of the folder
            raise IngestError(f"{where}.file: {p} leads outside the source folder {base}")
    return paths


def _redact(text: str, url: str) -> str:
    """``text`` without the URL or its password (driver messages may echo either)."""
    from urllib.parse import quote

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    out = text.replace(url, "<url>")
    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        password = None
    if password:
        # as given and as written in the URL (a driver may echo either)
        for form in sorted({str(password), quote(str(password), safe="")}, key=len, reverse=True):
            out = out.replace(form, "***")
    return out


def _one_statement(where: str, query: str) -> None:
    """Refuse a query holding more than one statement (any ``;`` but trailing ones)."""
    body = query.strip().rstrip(";").rstrip()
    if ";" in body:
        raise IngestError(
            f"{where}.sql.query: expected one SELECT statement, found ';' at character "
            f"{body.index(';') + 1} (statements after it could write: 'COMMIT; DELETE …'); "
            "write a ';' inside a string as chr(59)"
        )


def _guard(con, dialect: str, timeout_s: float) -> None:
    """Make the connection read-only and time-limited where the database allows it."""
    ms = int(timeout_s * 1000)
    if dialect == "postgresql":
        con.exec_driver_sql(f"SET SESSION statement_timeout = {ms}")
        con.exec_driver_sql("SET SESSION default_transaction_read_only = on")
        con.commit()
        con.exec_driver_sql("SET TRANSACTION READ ONLY")  # never write there
    elif dialect == "sqlite":
        con.exec_driver_sql("PRAGMA query_only = ON")
    elif dialect in ("mysql", "mariadb"):
        con.exec_driver_sql(f"SET SESSION max_execution_time = {ms}")
        con.exec_driver_sql("SET SESSION TRANSACTION READ ONLY")


def _query(where: str, table: TableSource) -> pd.DataFrame:
    """Run the table's query; every failure becomes one :class:`IngestError` line."""
    import sqlalchemy
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

    sql = table.sql
    assert sql is not None
    _one_statement(where, sql.query)
    url = os.environ.get(sql.url_env, "").strip()
    if not url:
        raise IngestError(
            f"{where}.sql.url_env: environment variable {sql.url_env} is not set; it must "
            "hold a SQLAlchemy URL such as postgresql+psycopg://user:password@host:5432/db"
        )
    try:
        engine = sqlalchemy.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        detail = _redact(" ".join(str(exc).split()), url)
        raise IngestError(f"{where}.sql: ${sql.url_env} is not a usable URL: {detail}") from None
    try:
        with engine.connect() as con:
            _guard(con, engine.dialect.name, sql.timeout_s)
            result = con.exec_driver_sql(sql.query)
            if not result.returns_rows:
                raise IngestError(f"{where}.sql.query: the statement returns no rows")
            columns = list(result.keys())
            rows: list = []
            while chunk := result.fetchmany(10_000):
                rows.extend(chunk)
                if len(rows) > sql.max_rows:
                    raise IngestError(
                        f"{where}.sql: the query returns more than sql.max_rows = "
                        f"{sql.max_rows} rows; narrow it (WHERE) or raise max_rows"
                    )
            con.rollback()
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        detail = _redact(first, url)
        raise IngestError(f"{where}.sql: query failed ({type(orig).__name__}): {detail}") from None
    finally:
        engine.dispose()
    dup = sorted({c for c in columns if columns.count(c) > 1})
    if dup:
        raise IngestError(f"{where}.sql.query: the result has repeated column name(s) {dup}")
    return pd.DataFrame.from_records(rows, columns=columns)


def read_pieces(name: str, table: TableSource, base: Path, mapping_label: str) -> list[Piece]:
    """Every piece of table ``name``: one per file of ``file`` (sorted), or the query's.

    Parameters
    ----------
    name : str
        The table (``tables.<name>`` in errors).
    table : TableSource
    base : Path
        The source folder (``file`` is relative to it).
    mapping_label : str
        The mapping file, named in errors.

    Raises
    ------
    IngestError
        No file matches, a file cannot be read, the database URL is missing or
        unusable, the query fails.
    """
    where = f"{mapping_label}: tables.{name}"
    if table.sql is not None:
        frame = _query(where, table)
        origin = RowOrigin(f"{where}.sql query")
        return [Piece(origin, frame, frame_digest(frame))]
    pieces = []
    for path in _files(where, table, base):
        frame = read_user_file(
            path, delimiter=table.csv_delimiter, encoding=table.csv_encoding, sheet=table.sheet
        ).reset_index(drop=True)
        pieces.append(Piece(RowOrigin.of_file(path, table.sheet), frame, file_digest(path), path))
    return pieces
