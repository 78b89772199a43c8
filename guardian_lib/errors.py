"""Exceptions raised by Network Guardian.

Every error says where (file, table, row, OID or device id), which field, what was
expected and what arrived, so that an operator can fix the input without reading code.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "validation_message",
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


def validation_message(source: Any, exc: Any, what: str | None = None) -> str:
    """One line per pydantic error: ``<source>: [<what>: ]<path>: <message> (got <value>)``.

    The path reads like the file (``olts[2].port``, ``topology.boards_per_olt``); the
    offending value is shown unless it is a whole mapping.

    Parameters
    ----------
    source : str or Path
        The file (or ``"<dict>"``) the data came from.
    exc : pydantic.ValidationError
    what : str, optional
        What the file is (``"invalid OLT inventory"``), put after the file name.
    """
    prefix = f"{source}: {what}: " if what else f"{source}: "
    lines = []
    for err in exc.errors():
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
        got = err.get("input")
        got_txt = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{prefix}{path.lstrip('.') or '<root>'}: {err['msg']}{got_txt}")
    return "\n".join(lines)
