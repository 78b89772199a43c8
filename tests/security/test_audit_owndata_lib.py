"""Security audit of own-data SQL sources: read-only, time- and size-bounded, no secrets
in errors. PostgreSQL is the real server of ``tests/conftest.py`` (Debian's postgresql)."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy

from guardian_lib.errors import IngestError
from guardian_lib.owndata.config import TableSource
from guardian_lib.owndata.read import _redact, read_pieces


def _read(monkeypatch, url: str, query: str, **sql):
    monkeypatch.setenv("GUARDIAN_OWN_AUDIT_URL", url)
    table = TableSource(sql={"url_env": "GUARDIAN_OWN_AUDIT_URL", "query": query, **sql},
                        columns={})  # fmt: skip
    return read_pieces("t", table, base=None, mapping_label="m.yaml")


@pytest.fixture
def pg(postgres_url):
    eng = sqlalchemy.create_engine(postgres_url)
    with eng.begin() as c:
        c.exec_driver_sql("DROP TABLE IF EXISTS audit_t")
        c.exec_driver_sql("CREATE TABLE audit_t (a int)")
        c.exec_driver_sql("INSERT INTO audit_t VALUES (1), (2), (3)")

    def count() -> int:
        with eng.connect() as c:  # closed: an open one would hold a lock on the table
            return c.exec_driver_sql("SELECT count(*) FROM audit_t").scalar()

    yield postgres_url, count
    eng.dispose()


@pytest.mark.parametrize(
    "query, phrase",
    [
        # "SET TRANSACTION READ ONLY" held for the first statement only: this deleted the rows
        ("COMMIT; DELETE FROM audit_t; SELECT 1 AS a", "expected one SELECT statement"),
        ("SELECT 1 AS a; SET default_transaction_read_only = off", "expected one SELECT"),
        ("WITH d AS (DELETE FROM audit_t RETURNING a) SELECT * FROM d", "read-only"),
    ],
)
def test_postgres_queries_cannot_write(pg, monkeypatch, query, phrase):
    url, count = pg
    with pytest.raises(IngestError, match=phrase):
        _read(monkeypatch, url, query)
    assert count() == 3


def test_postgres_query_has_a_time_limit_and_a_trailing_semicolon_is_fine(pg, monkeypatch):
    url, _ = pg
    with pytest.raises(IngestError, match="statement timeout"):
        _read(monkeypatch, url, "SELECT pg_sleep(30), 1 AS a", timeout_s=0.2)
    (piece,) = _read(monkeypatch, url, "SELECT a FROM audit_t ORDER BY a;  ")
    assert piece.frame["a"].tolist() == [1, 2, 3]


def test_sqlite_is_query_only_and_rows_are_bounded(tmp_path, monkeypatch):
    db = tmp_path / "own.db"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE t (a int)")
        con.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(25_000)])
    url = f"sqlite:///{db}"
    with pytest.raises(IngestError, match="readonly"):
        _read(monkeypatch, url, "DELETE FROM t RETURNING a")
    with pytest.raises(IngestError, match="more than sql.max_rows = 20000"):
        _read(monkeypatch, url, "SELECT a FROM t", max_rows=20_000)
    (piece,) = _read(monkeypatch, url, "SELECT a FROM t", max_rows=25_000)
    assert len(piece.frame) == 25_000


def test_passwords_are_redacted_as_given_and_as_percent_encoded():
    url = "postgresql+psycopg://reader:p%40ss%3Aw0rd@db.example/erp"
    text = "auth failed for p@ss:w0rd (url p%40ss%3Aw0rd)"
    out = _redact(text, url)
    assert "p@ss" not in out and "p%40ss" not in out and "w0rd" not in out
