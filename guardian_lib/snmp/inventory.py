"""OLT inventory files and where their SNMP credentials come from.

An inventory (YAML) lists OLTs: id, host, port, SNMP version, a *credentials reference*
and optionally the vendor profile. Secrets never sit in the inventory or on the command
line: a reference ``NAME`` is resolved from environment variables first
(``GUARDIAN_SNMP_<NAME>_COMMUNITY`` for v2c; ``GUARDIAN_SNMP_<NAME>_USER``, ``…_AUTH_KEY``,
``…_PRIV_KEY``, optional ``…_AUTH_PROTOCOL`` / ``…_PRIV_PROTOCOL`` for v3), then from a
secret file (YAML ``{NAME: {community: …}}`` or ``{NAME: {user, auth_key, priv_key}}``)
named by ``secrets_file:`` in the inventory or by ``GUARDIAN_SNMP_SECRETS``. The secret
file must be readable by its owner only (mode 0600): a file its group or others can
read is refused, naming the file and its mode. The lookup and its messages are those of
every credentials reference (:func:`guardian_lib.secrets.resolve_credential`).

Example::

    secrets_file: olts.secrets.yaml      # relative to this file, mode 0600
    defaults: {timeout_s: 2, retries: 2, max_concurrent_olts: 16}
    olts:
      - {olt_id: OLT-001, host: 10.0.0.1, version: "2c", credentials: noc}
      - {olt_id: OLT-002, host: 10.0.0.2, version: "3", credentials: core, profile: zte_c600}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from guardian_lib.errors import ConfigError
from guardian_lib.safe_yaml import StrictModel, load_yaml_model
from guardian_lib.secrets import resolve_credential, secret_file_path
from guardian_lib.snmp.errors import SnmpCredentialsError
from guardian_lib.snmp.transport import SnmpCredentials

__all__ = ["OltEntry", "PollDefaults", "Inventory", "load_inventory", "resolve_credentials"]

ENV_PREFIX = "GUARDIAN_SNMP_"


_Strict = StrictModel  # unknown keys refused (guardian_lib.safe_yaml)


class PollDefaults(_Strict):
    """Poll settings shared by every OLT (an entry may override timeout and retries)."""

    timeout_s: float = Field(2.0, gt=0, le=60, description="Wait per request. [s]")
    retries: int = Field(2, ge=0, le=10, description="Resends per request. [-]")
    max_concurrent_olts: int = Field(16, ge=1, le=1024, description="OLTs polled at once. [-]")
    max_inflight_per_olt: int = Field(
        2, ge=1, le=16, description="Concurrent requests to one OLT. [-]"
    )
    max_repetitions: int | None = Field(
        None, ge=1, le=200, description="GETBULK max-repetitions (default: profile's). [-]"
    )
    backend: Literal["auto", "pysnmp", "fast"] = Field(
        "auto", description="SNMP engine: 'fast' (v2c only), 'pysnmp', or 'auto' (fast for v2c)."
    )


class OltEntry(_Strict):
    """One OLT of the inventory."""

    olt_id: str
    host: str
    port: int = Field(161, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    credentials: str = Field(description="Credentials reference (env / secret file key).")
    profile: str | None = Field(None, description="Profile name; by default auto-detected.")
    timeout_s: float | None = Field(None, gt=0, le=60)
    retries: int | None = Field(None, ge=0, le=10)
    backend: Literal["auto", "pysnmp", "fast"] | None = None

    @model_validator(mode="after")
    def _fast_is_v2c(self) -> OltEntry:
        if self.backend == "fast" and self.version != "2c":
            raise ValueError("backend 'fast' speaks SNMPv2c only; use 'pysnmp' or 'auto' for v3")
        return self


class Inventory(_Strict):
    """A validated inventory file."""

    olts: list[OltEntry]
    defaults: PollDefaults = PollDefaults()
    secrets_file: str | None = None
    profiles_dirs: list[str] = Field(default_factory=list)
    path: Path | None = Field(None, exclude=True)

    def secrets_path(self) -> Path | None:
        """The secret file (``secrets_file`` or ``GUARDIAN_SNMP_SECRETS``), resolved
        relative to the inventory file."""
        return secret_file_path(self.secrets_file, ENV_PREFIX + "SECRETS", self.path)


def load_inventory(path: str | Path) -> Inventory:
    """Read and validate an inventory YAML file.

    Raises
    ------
    ConfigError
        Naming the file and the field (e.g. ``olts[2].port``).
    """
    path = Path(path)
    inv = load_yaml_model(
        path, Inventory, shape="an OLT inventory: a YAML mapping with 'olts:'",
        what="invalid OLT inventory",
    )  # fmt: skip
    ids = [o.olt_id for o in inv.olts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{path}: olts: duplicate olt_id {dup}")
    inv.path = path
    return inv


def resolve_credentials(
    entry: OltEntry,
    secrets_path: Path | None,
    environ: Mapping[str, str] | None = None,
) -> SnmpCredentials:
    """Credentials of one OLT from the environment, then from the secret file.

    The lookup is :func:`guardian_lib.secrets.resolve_credential` (the one the OLT CLI
    inventory uses too): ``GUARDIAN_SNMP_<REF>_<KEY>``, then ``{REF: {key: …}}``.

    Parameters
    ----------
    entry : OltEntry
    secrets_path : Path or None
    environ : mapping, optional
        Defaults to ``os.environ``.

    Returns
    -------
    credentials : SnmpCredentials

    Raises
    ------
    SnmpCredentialsError
        Naming the OLT, the reference and the variables / file keys that were looked up;
        or the secret file is missing, not a mapping, or readable by group or others
        (naming the file and its mode).
    """
    ref = entry.credentials
    keys = ("community",) if entry.version == "2c" else ("user", "auth_key", "priv_key")
    optional = () if entry.version == "2c" else ("auth_protocol", "priv_protocol")
    found = resolve_credential(
        ref, {k: k.upper() for k in keys + optional}, prefix=ENV_PREFIX,
        secrets_path=secrets_path, what=f"OLT {entry.olt_id}: SNMPv{entry.version} credentials",
        optional=optional, environ=environ, error=SnmpCredentialsError,
    )  # fmt: skip
    try:
        return SnmpCredentials(version=entry.version, **found)
    except SnmpCredentialsError as exc:  # e.g. a v3 key shorter than 8 characters
        raise SnmpCredentialsError(f"OLT {entry.olt_id}: credentials {ref!r}: {exc}") from None
