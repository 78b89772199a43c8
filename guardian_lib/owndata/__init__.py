"""An operator's own data: every table of a source folder imported through one mapping.

* :mod:`~guardian_lib.owndata.config` — ``mapping.yaml`` (:class:`SourceMapping`);
* :mod:`~guardian_lib.owndata.tables` — the importable tables and where each lands;
* :mod:`~guardian_lib.owndata.read` — files, globs and SQL queries;
* :mod:`~guardian_lib.owndata.importer` — :func:`import_source` (``guardian ingest
  --source``).

Documented in ``docs/ingest.md``.
"""

from guardian_lib.owndata.config import SourceMapping, TableSource, load_source_mapping
from guardian_lib.owndata.importer import ImportSummary, TableImport, import_source
from guardian_lib.owndata.tables import TABLES

__all__ = [
    "SourceMapping",
    "TableSource",
    "load_source_mapping",
    "ImportSummary",
    "TableImport",
    "import_source",
    "TABLES",
]
