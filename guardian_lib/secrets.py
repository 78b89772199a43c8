"""Secrets from the environment or from files only their owner can read.

One way to read a secret file, shared by every configuration that refers to one (site
file, alerting file, SNMP and OLT CLI inventories):

* :func:`check_owner_only` refuses a file that its group or others may read, write or
  execute, naming the file, its mode and the fix (``chmod 600``);
* :func:`read_secret` resolves a :class:`SecretRef` (``token_env`` or ``token_file``) to
  one token;
* :func:`read_secret_file` reads a YAML secret file (a mapping of named credential
  blocks).

This module depends on nothing but :mod:`guardian_lib.errors` and
:mod:`guardian_lib.safe_yaml`, so that configuration packages (``alerts``, ``operate``,
``snmp``, ``olt``) can share it without importing one another.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardian_lib.errors import ConfigError
from guardian_lib.safe_yaml import load_yaml

__all__ = ["SecretRef", "check_owner_only", "read_secret", "read_secret_file"]


class SecretRef(BaseModel):
    """Where a bearer token comes from: an environment variable or a 0600 file."""

    model_config = ConfigDict(extra="forbid")

    token_env: str | None = Field(None, description="Environment variable holding the token.")
    token_file: str | None = Field(None, description="File holding the token (mode 0600).")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if self.token_env and self.token_file:
            raise ValueError("give token_env or token_file, not both")
        return self


def check_owner_only(path: Path, what: str = "") -> None:
    """Refuse a secret file that anyone but its owner may access.

    Parameters
    ----------
    path : Path
        The secret file.
    what : str, optional
        Prefix of the message, e.g. ``"nbi.token_file: "`` (the setting that names it).

    Raises
    ------
    ConfigError
        The file cannot be stat'ed, or its group/other permission bits are not all zero
        (the message names the file, its mode and ``chmod 600``).
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError as exc:
        raise ConfigError(f"{what}cannot read {path}: {exc.strerror or exc}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{what}{path}: secret file has mode {mode:04o}; it must be readable by its "
            f"owner only (chmod 600 {path})"
        )


def read_secret(ref: SecretRef, base: Path | None, what: str) -> str | None:
    """The token a :class:`SecretRef` points to (None when it points nowhere).

    Parameters
    ----------
    ref : SecretRef
    base : Path or None
        Folder relative file names are resolved against.
    what : str
        The setting, e.g. ``nbi`` or ``receivers.ops.webhook`` (for messages).

    Raises
    ------
    ConfigError
        The variable is unset, the file is missing, empty or readable by others.
    """
    if ref.token_env:
        val = os.environ.get(ref.token_env)
        if not val:
            raise ConfigError(f"{what}.token_env: environment variable {ref.token_env} is not set")
        return val
    if ref.token_file:
        p = Path(ref.token_file)
        if not p.is_absolute() and base is not None:
            p = base / p
        check_owner_only(p, f"{what}.token_file: ")
        val = p.read_text(encoding="utf-8").strip()
        if not val:
            raise ConfigError(f"{what}.token_file: {p} is empty")
        return val
    return None


def read_secret_file(path: Path | None) -> dict[str, Any]:
    """A YAML secret file (``{NAME: {…}}``), refused unless only its owner can read it.

    Parameters
    ----------
    path : Path or None
        None or a missing file reads as an empty mapping (the caller then names what it
        looked for and where).

    Raises
    ------
    ConfigError
        The file is readable by group or others (naming the mode and the fix), is not
        valid YAML or is not a mapping.
    """
    if path is None or not path.exists():
        return {}
    check_owner_only(path)
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a secret file must be a YAML mapping")
    return data
