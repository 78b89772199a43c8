"""Secrets from the environment or from files only their owner can read.

One way to read a secret file, shared by every configuration that refers to one (site
file, alerting file, SNMP and OLT CLI inventories):

* :func:`check_owner_only` refuses a file that its group or others may read, write or
  execute, naming the file, its mode and the fix (``chmod 600``);
* :func:`read_secret` resolves a :class:`SecretRef` (``token_env`` or ``token_file``) to
  one token;
* :func:`read_secret_file` reads a YAML secret file (a mapping of named credential
  blocks);
* :func:`resolve_credential` looks up the keys of one credentials reference (SNMP
  inventory, OLT CLI login, SNMP SET, PPPoE accounts): ``<PREFIX><REF>_<KEY>`` in the
  environment first, then the reference's block of the secret file, and names every
  variable and file key it looked for when one is missing.

This module depends on nothing but :mod:`guardian_lib.errors` and
:mod:`guardian_lib.safe_yaml`, so that configuration packages (``alerts``, ``operate``,
``snmp``, ``olt``) can share it without importing one another.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guardian_lib.errors import ConfigError
from guardian_lib.safe_yaml import load_yaml

__all__ = [
    "SecretRef",
    "check_owner_only",
    "credential_env_name",
    "read_secret",
    "read_secret_file",
    "resolve_credential",
    "secret_file_path",
]


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


def secret_file_path(
    named: str | None,
    env_var: str,
    config_file: Path | None,
    environ: Mapping[str, str] | None = None,
) -> Path | None:
    """The secret file of a configuration: its own ``secrets_file`` setting, else the
    environment variable ``env_var``; relative to the configuration file's folder.

    Examples
    --------
    >>> str(secret_file_path("s.yaml", "GUARDIAN_SNMP_SECRETS", Path("/etc/g/olts.yaml"), {}))
    '/etc/g/s.yaml'
    >>> secret_file_path(None, "GUARDIAN_SNMP_SECRETS", None, {}) is None
    True
    """
    env = os.environ if environ is None else environ
    raw = named or env.get(env_var)
    if not raw:
        return None
    p = Path(raw)
    return p if p.is_absolute() or config_file is None else config_file.parent / p


def credential_env_name(prefix: str, ref: str, key: str) -> str:
    """The environment variable of one key of a credentials reference.

    Examples
    --------
    >>> credential_env_name("GUARDIAN_SNMP_", "noc-1", "COMMUNITY")
    'GUARDIAN_SNMP_NOC_1_COMMUNITY'
    """
    return prefix + re.sub(r"[^A-Za-z0-9]", "_", ref).upper() + "_" + key


def resolve_credential(
    ref: str,
    env_keys: Mapping[str, str],
    *,
    prefix: str,
    secrets_path: Path | None,
    what: str,
    optional: Sequence[str] = (),
    file_block: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    error: type[ConfigError] = ConfigError,
) -> dict[str, str]:
    """The values of one credentials reference: environment first, then the secret file.

    Each key ``k`` of ``env_keys`` is read from ``<prefix><REF>_<env_keys[k]>``
    (:func:`credential_env_name`); the secret file is opened only when a required key is
    still missing, and fills in the missing keys from its block ``{ref: {k: …}}``. An
    empty value counts as missing. The values never appear in a message.

    Parameters
    ----------
    ref : str
        The credentials reference named by the inventory (``noc``, ``core`` …).
    env_keys : mapping
        Key (as in the secret file) → suffix of its environment variable; the required
        keys are those not in ``optional``.
    prefix : str
        ``GUARDIAN_SNMP_``, ``GUARDIAN_OLT_`` …
    secrets_path : Path or None
        The secret file (None: none configured).
    what : str
        Start of the messages, e.g. ``OLT A: CLI credentials``.
    optional : sequence of str
        Keys taken when present, never reported missing.
    file_block : sequence of str, optional
        Path of the block in the secret file; default ``(ref,)`` (PPPoE accounts:
        ``("pppoe", key)``).
    environ : mapping, optional
        Defaults to ``os.environ``.
    error : ConfigError subclass
        The class of the error raised.

    Returns
    -------
    dict
        Key → value, every required key present.

    Raises
    ------
    ConfigError (``error``)
        A required key found nowhere (naming each variable and the file keys looked up,
        and the file); the secret file named but absent; the file readable by group or
        others (naming its mode), not YAML or not a mapping.
    """
    env = os.environ if environ is None else environ
    required = [k for k in env_keys if k not in optional]
    found: dict[str, str] = {}
    for k, suffix in env_keys.items():
        val = env.get(credential_env_name(prefix, ref, suffix))
        if val:
            found[k] = val
    block_path = tuple(file_block) if file_block is not None else (ref,)
    if not all(k in found for k in required) and secrets_path is not None:
        if not secrets_path.exists():  # named in the inventory or the environment: say so
            raise error(f"{what} {ref!r}: secret file {secrets_path} does not exist")
        try:  # refuses a file others can read (mode 0600 expected)
            block: Any = read_secret_file(secrets_path)
        except ConfigError as exc:
            raise error(f"{what} {ref!r}: {exc}") from None
        for part in block_path:
            block = block.get(part) if isinstance(block, dict) else None
        if isinstance(block, dict):
            for k in env_keys:
                if k not in found and block.get(k) not in (None, ""):
                    found[k] = str(block[k])
    missing = [k for k in required if k not in found]
    if missing:
        names = ", ".join(credential_env_name(prefix, ref, env_keys[k]) for k in missing)
        where = ""
        if secrets_path is not None:
            where = f" or key {'.'.join(block_path)}.{{{','.join(missing)}}} in {secrets_path}"
        raise error(
            f"{what} {ref!r} incomplete: missing {missing}; expected environment "
            f"variable(s) {names}{where}"
        )
    return found
