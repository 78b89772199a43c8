"""The mapping of one source folder (``mapping.yaml``): every table an operator imports.

One file per source folder names, for each table, where its rows come from (a file or
glob relative to the source folder, or a SQL query through a SQLAlchemy URL read from a
``GUARDIAN_OWN_*`` environment variable) and how each warehouse column is read from
them (:class:`~guardian_lib.mapping.ColumnSpec` syntax, the same as a telemetry
mapping). :func:`load_source_mapping` reads and checks it; the tables and their
columns are :data:`guardian_lib.owndata.catalog.TABLES`. Documented in ``docs/ingest.md``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardian_lib.errors import ConfigError
from guardian_lib.mapping import ColumnSpec, check_telemetry_columns
from guardian_lib.owndata.catalog import TABLES
from guardian_lib.safe_yaml import load_yaml_model
from guardian_lib.user_files import DEFAULT_CSV_ENCODING, CsvEncoding, SheetName

__all__ = [
    "SqlSource",
    "TableSource",
    "SourceMapping",
    "load_source_mapping",
    "SQL_URL_ENV_PREFIX",
]

#: Environment variables that may hold a database URL named by a mapping (``url_env``);
#: registered in :data:`guardian_lib.decision.settings.GUARDIAN_ENV_FAMILIES`. A mapping
#: cannot make the importer read (and possibly echo in an error) any other variable.
SQL_URL_ENV_PREFIX = "GUARDIAN_OWN_"


class SqlSource(BaseModel):
    """A table read by a query against the operator's database."""

    model_config = ConfigDict(extra="forbid")

    url_env: Annotated[str, Field(pattern=r"^GUARDIAN_OWN_[A-Z0-9_]+$")]
    query: Annotated[str, Field(min_length=1)]
    #: Longest the query may run (PostgreSQL ``statement_timeout``, MySQL
    #: ``max_execution_time``). [s]
    timeout_s: Annotated[float, Field(gt=0, le=86400)] = 600.0
    #: Most rows the query may return (beyond: refused, nothing imported). [-]
    max_rows: Annotated[int, Field(ge=1)] = 5_000_000


class TableSource(BaseModel):
    """Where one table's rows come from and how its columns are read.

    Exactly one of ``file`` (a path or glob relative to the source folder, CSV or
    Parquet) and ``sql``. ``decimal: ","`` reads ``1.234,5`` in text cells as 1234.5.
    ``values`` maps, per warehouse column, the operator's words to
    the warehouse's (matched without regard to case or surrounding blanks; a value
    mapped to null drops the row). ``defaults`` gives a constant to a column the source
    does not have.
    """

    model_config = ConfigDict(extra="forbid")

    file: Annotated[str, Field(min_length=1)] | None = None
    sql: SqlSource | None = None
    csv_delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    csv_encoding: CsvEncoding = DEFAULT_CSV_ENCODING
    sheet: SheetName = 0
    decimal: Literal[".", ","] = "."
    columns: dict[str, str | ColumnSpec]
    values: dict[str, dict[str, str | None]] = Field(default_factory=dict)
    defaults: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_origin(self) -> TableSource:
        if (self.file is None) == (self.sql is None):
            raise ValueError("give exactly one of 'file' and 'sql'")
        return self

    def spec(self, target: str) -> ColumnSpec | None:
        """The :class:`ColumnSpec` of a warehouse column, or ``None`` if unmapped."""
        value = self.columns.get(target)
        if value is None:
            return None
        return ColumnSpec(column=value) if isinstance(value, str) else value

    def specs(self) -> dict[str, ColumnSpec]:
        """Every mapped warehouse column's :class:`ColumnSpec`."""
        return {t: s for t in self.columns if (s := self.spec(t)) is not None}


class SourceMapping(BaseModel):
    """``mapping.yaml`` of a source folder (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = None
    source: Annotated[str, Field(min_length=1, max_length=100)] = "user"
    tables: Annotated[dict[str, TableSource], Field(min_length=1)]


def _check_zone(zone: str | None, where: str) -> None:
    if zone is None:
        return
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{where}: unknown time zone {zone!r}; expected an IANA name such as "
            "'America/Sao_Paulo' or 'UTC'"
        ) from None


def _check_table(path: Path, name: str, table: TableSource) -> None:
    where = f"{path}: tables.{name}"
    if table.file is not None:
        rel = PurePosixPath(table.file)
        if rel.is_absolute() or ".." in rel.parts:
            raise ConfigError(
                f"{where}.file: {table.file!r} must be a path inside the source folder "
                "(relative, without '..')"
            )
    if name == "telemetry":
        check_telemetry_columns(table.columns, f"{where}.columns")
        if table.values or table.defaults:
            raise ConfigError(
                f"{where}: 'values' and 'defaults' are not used for telemetry (map "
                "units with scale/offset and the online state with true_values)"
            )
    else:
        fields = TABLES[name].fields
        unknown = sorted(set(table.columns) - set(fields))
        if unknown:
            raise ConfigError(
                f"{where}.columns.{unknown[0]}: not a column of {name}; expected one of "
                f"{list(fields)}"
            )
        missing = [c for c in TABLES[name].required_mapped if c not in table.columns]
        if missing:
            raise ConfigError(f"{where}.columns.{missing[0]}: required mapping is missing")
        if TABLES[name].one_of and not set(TABLES[name].one_of) & set(table.columns):
            raise ConfigError(f"{where}.columns: map at least one of {list(TABLES[name].one_of)}")
    fields = TABLES[name].fields
    for key in (*table.values, *table.defaults):
        if key not in fields:
            raise ConfigError(f"{where}: {key!r} is not a column of {name}")
    for key in table.values:
        if key not in table.columns:
            raise ConfigError(f"{where}.values.{key}: the column is not mapped under columns")
    for key in table.defaults:
        if key in table.columns:
            raise ConfigError(f"{where}.defaults.{key}: the column is already mapped")
    for target, spec in table.specs().items():
        _check_zone(spec.timezone, f"{where}.columns.{target}.timezone")


def load_source_mapping(path: Path | str) -> SourceMapping:
    """Read and check a source folder's ``mapping.yaml``.

    Raises
    ------
    ConfigError
        Names the file and the field: an unknown table or column, a missing required
        mapping, an unknown time zone, a file outside the source folder, …
    """
    path = Path(path)
    mapping = load_yaml_model(
        path, SourceMapping, shape="a source mapping with 'tables:'", what="invalid mapping"
    )
    _check_zone(mapping.timezone, f"{path}: timezone")
    for name, table in mapping.tables.items():
        if name not in TABLES:
            raise ConfigError(
                f"{path}: tables.{name}: not a table that can be imported; expected one of "
                f"{list(TABLES)}"
            )
        _check_table(path, name, table)
    return mapping
