"""Network Guardian: keep fibre ISP customers online.

The library works on an operator's real data alone: it never imports ``simulator`` or
``acs_emulator``. Sub-packages and modules:

- :mod:`guardian_lib.warehouse` — the DuckDB + Parquet warehouse of a run
- :mod:`guardian_lib.ingest` — RAW → SILVER, users' own telemetry
- :mod:`guardian_lib.schema` — table schemas and valid ranges
- :mod:`guardian_lib.errors` — the exceptions it raises
"""

from guardian_lib.errors import ConfigError, GuardianError, IngestError, WarehouseError

__all__ = ["GuardianError", "ConfigError", "IngestError", "WarehouseError", "__version__"]

__version__ = "0.1.0"
