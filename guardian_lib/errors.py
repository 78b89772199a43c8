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
    "is_expected",
    "error_line",
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


def is_expected(exc: BaseException) -> bool:
    """Whether ``exc`` means bad input or environment (exit status 2), not a bug.

    :class:`GuardianError`, ``OSError``, ``ValueError`` (pydantic's ``ValidationError``
    included) and ``duckdb.IOException`` (a path that cannot be opened, a file that is not
    a database). Imports lazily: this module is imported by everything.
    """
    import duckdb

    return isinstance(exc, GuardianError | OSError | ValueError | duckdb.IOException)


def error_line(exc: BaseException) -> str:
    """The message a command line prints for ``exc``: its own text, without a traceback.

    :class:`GuardianError` messages are printed as written (one line per problem).
    Other exceptions are prefixed with their type (``FileNotFoundError: …``) and a
    pydantic ``ValidationError`` is rendered with :func:`validation_message`.
    """
    import pydantic

    if isinstance(exc, GuardianError):
        text = str(exc)
    elif isinstance(exc, pydantic.ValidationError):
        text = validation_message(exc.title, exc)
    elif isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    else:
        detail = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
        text = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return text.strip() or type(exc).__name__
