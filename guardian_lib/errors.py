"""Exceptions raised by Network Guardian.

Every error says where (file, table, row, OID or device id), which field, what was
expected and what arrived, so that an operator can fix the input without reading code.
"""

from __future__ import annotations

__all__ = [
    "GuardianError",
    "ConfigError",
    "IngestError",
    "WarehouseError",
]


class GuardianError(Exception):
    """Base class of every error Network Guardian raises on purpose."""


class ConfigError(GuardianError, ValueError):
    """A configuration or scenario file is invalid (names the file and the field path)."""


class IngestError(GuardianError, ValueError):
    """Input data cannot be ingested (names the file, row and column)."""


class WarehouseError(GuardianError):
    """The warehouse is missing, incomplete or cannot be written."""
