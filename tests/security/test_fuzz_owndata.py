"""Property-based fuzzing of the own-data importer: any source mapping loads or fails with
ConfigError; any tickets CSV is imported or refused with IngestError naming the file, and a
refused one writes nothing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from guardian_lib.errors import ConfigError, IngestError
from guardian_lib.owndata import SourceMapping, import_source, load_source_mapping

_TOKENS = st.sampled_from(
    ["tables", "tickets", "onus", "events", "telemetry", "file", "sql", "url_env", "query",
     "columns", "values", "defaults", "timezone", "source", "decimal", "csv_delimiter",
     "ticket_id", "opened_at", "customer_id", "GUARDIAN_OWN_X", "HOME", "../x.csv", "*.csv",
     "America/Sao_Paulo", "Mars/Base", ":", " ", "\n", "  ", "    ", "- ", "{", "}", "[", "]",
     ",", "'", '"', "~", "null", "1e9", "&a", "*a", "<<", "!!python/object:os.system", "#"]
)  # fmt: skip
yaml_texts = st.one_of(st.lists(_TOKENS, max_size=50).map("".join), st.text(max_size=200))


@settings(max_examples=300, deadline=None)
@given(yaml_texts)
def test_any_source_mapping_loads_or_raises_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "mapping.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            mapping = load_source_mapping(path)
        except ConfigError as exc:
            assert str(path) in str(exc)
            event("refused")
        else:
            event("loaded")
            assert isinstance(mapping, SourceMapping)


MAPPING = """\
timezone: America/Sao_Paulo
tables:
  tickets:
    file: os.csv
    decimal: ","
    columns: {ticket_id: os, customer_id: cliente, opened_at: {column: abertura, format: "%d/%m/%Y %H:%M"},
              closed_at: {column: fechamento, format: "%d/%m/%Y %H:%M"}, cost_brl: custo}
"""
_CELLS = {
    "os": st.sampled_from(["OS-1", "OS-2", "OS-3", "", " ", "\x00"]),
    "cliente": st.sampled_from(["C1", "C2", "", "ç", "1e5"]),
    "abertura": st.sampled_from(["05/01/2026 10:00", "31/02/2026 10:00", "", "ontem", "2026-01-05"]),
    "fechamento": st.sampled_from(["05/01/2026 12:00", "", "x"]),
    "custo": st.sampled_from(["150", "1.234,5", "", "abc", "1e400", "-0"]),
}  # fmt: skip
_ROW = st.tuples(*_CELLS.values()).map(lambda cells: ",".join(cells))
csv_texts = st.lists(st.one_of(_ROW, _ROW, _ROW, st.text(max_size=15)), max_size=6).map(
    lambda rows: "\n".join([",".join(_CELLS), *rows])
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(csv_texts, st.text(max_size=200)))
def test_any_tickets_csv_is_imported_or_refused_with_nothing_written(text):
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "src"
        src.mkdir()
        (src / "mapping.yaml").write_text(MAPPING)
        (src / "os.csv").write_text(text, encoding="utf-8", errors="surrogatepass")
        wh = Path(d) / "W"
        try:
            res = import_source(wh, src / "mapping.yaml")
        except IngestError as exc:
            assert "os.csv" in str(exc)
            assert not wh.exists()
            event("refused")
        else:
            event("imported")
            assert (wh / "ops" / "service_orders.parquet").exists()
            assert res.tables["tickets"].rows >= 0
