"""Which OLT command lines to reach, and where their secrets come from.

An OLT CLI inventory (YAML) lists OLTs: id, SSH host and port, CLI profile, a
credentials reference and the host keys to accept. Secrets never sit in the inventory or
on the command line: a reference ``NAME`` is resolved from the environment first
(``GUARDIAN_OLT_<NAME>_USERNAME`` / ``GUARDIAN_OLT_<NAME>_PASSWORD``), then from a secret
file (``{NAME: {username, password}}``) that must be readable by its owner only (mode
0600). PPPoE accounts live in the same file under ``pppoe:`` (``{KEY: {username,
password}}``) or in ``GUARDIAN_OLT_PPPOE_<KEY>_USERNAME`` / ``…_PASSWORD``; an operation
names the key, never the password.

Example::

    secrets_file: olt-cli.secrets.yaml        # relative to this file, mode 0600
    known_hosts: olt-cli.known_hosts          # OpenSSH format
    defaults: {timeout_s: 10, busy_retries: 3}
    olts:
      - {olt_id: OLT-001, host: 10.0.0.1, profile: huawei_ma5800, credentials: noc}
      - {olt_id: OLT-002, host: 10.0.0.2, port: 2222, profile: zte_c300, credentials: noc}
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, PrivateAttr

from guardian_lib.errors import ConfigError
from guardian_lib.olt.profiles import CliProfile, load_cli_profiles
from guardian_lib.olt.session import SshTarget
from guardian_lib.safe_yaml import StrictModel, load_yaml_model
from guardian_lib.secrets import (  # read_secret_file re-exported (moved there)
    read_secret_file,
    resolve_credential,
    secret_file_path,
)

if TYPE_CHECKING:  # pysnmp is imported only when SNMP SET is used
    from guardian_lib.snmp.transport import SnmpCredentials

__all__ = [
    "CliDefaults",
    "CliOltEntry",
    "SnmpSetEntry",
    "CliInventory",
    "load_cli_inventory",
    "read_secret_file",
    "pppoe_account",
    "ENV_PREFIX",
]

ENV_PREFIX = "GUARDIAN_OLT_"


_Strict = StrictModel  # unknown keys refused (guardian_lib.safe_yaml)


class CliDefaults(_Strict):
    """Settings shared by every OLT of the inventory."""

    timeout_s: float = Field(10.0, gt=0, le=300, description="Connect / command timeout. [s]")
    busy_retries: int = Field(3, ge=0, le=10, description="Resends after 'busy'. [-]")
    busy_backoff_s: float = Field(0.5, ge=0, le=30, description="First pause after 'busy'. [s]")


class SnmpSetEntry(_Strict):
    """Opt-in SNMP SET for one OLT: where its agent listens and which write credentials.

    ``credentials`` names an entry resolved like the CLI login: v2c from
    ``GUARDIAN_OLT_<REF>_WRITE_COMMUNITY`` or ``{REF: {write_community}}`` in the secret
    file; v3 from ``GUARDIAN_OLT_<REF>_V3_USER`` / ``…_V3_AUTH_KEY`` / ``…_V3_PRIV_KEY`` or
    ``{REF: {v3_user, auth_key, priv_key}}`` (SHA / AES).
    """

    host: str | None = Field(None, description="Agent address (the CLI host by default).")
    port: int = Field(161, ge=1, le=65535)
    version: Literal["2c", "3"] = "2c"
    credentials: str
    timeout_s: float = Field(2.0, gt=0, le=60, description="Wait for one answer. [s]")
    retries: int = Field(1, ge=0, le=5, description="Resends of an unanswered SET. [-]")


class CliOltEntry(_Strict):
    """One OLT's command line (and, opt-in, its SNMP SET)."""

    olt_id: str
    host: str
    port: int = Field(22, ge=1, le=65535)
    profile: str
    credentials: str = Field(description="Credentials reference (env / secret file key).")
    insecure: bool = Field(
        False, description="Accept any SSH host key, or telnet's clear text (lab only)."
    )
    protocol: Literal["ssh", "telnet"] = Field(
        "ssh", description="telnet only for OLTs without SSH; needs insecure: true."
    )
    snmp_set: SnmpSetEntry | None = Field(None, description="Allow SNMP SET (opt-in).")


class CliInventory(_Strict):
    """A validated OLT CLI inventory."""

    olts: list[CliOltEntry]
    defaults: CliDefaults = CliDefaults()
    secrets_file: str | None = None
    known_hosts: str | None = None
    profiles_dirs: list[str] = Field(default_factory=list)
    path: Path | None = Field(None, exclude=True)
    _profiles: dict[str, CliProfile] | None = PrivateAttr(None)

    def _resolve(self, raw: str | None) -> Path | None:
        if not raw:
            return None
        p = Path(raw)
        return p if p.is_absolute() or self.path is None else self.path.parent / p

    def secrets_path(self) -> Path | None:
        """The secret file (``secrets_file`` or ``GUARDIAN_OLT_SECRETS``), resolved."""
        return secret_file_path(self.secrets_file, ENV_PREFIX + "SECRETS", self.path)

    def entry(self, olt_id: str) -> CliOltEntry:
        """The entry of ``olt_id``; ConfigError naming the known ids if absent."""
        for e in self.olts:
            if e.olt_id == olt_id:
                return e
        known = ", ".join(e.olt_id for e in self.olts)
        raise ConfigError(f"{self.path}: no OLT {olt_id!r} (inventory has: {known})")

    def profiles(self) -> dict[str, CliProfile]:
        """Shipped CLI profiles plus the inventory's ``profiles_dirs`` (read once)."""
        if self._profiles is None:  # parsing and validating the YAML costs ~80 ms a file
            dirs = [self._resolve(d) for d in self.profiles_dirs]
            self._profiles = load_cli_profiles(dirs)  # type: ignore[arg-type]
        return self._profiles

    def profile_of(self, olt_id: str) -> CliProfile:
        """The CLI profile of one OLT; ConfigError naming the known profiles if absent."""
        name = self.entry(olt_id).profile
        profiles = self.profiles()
        if name not in profiles:
            raise ConfigError(
                f"{self.path}: OLT {olt_id}: unknown CLI profile {name!r} "
                f"(known: {', '.join(sorted(profiles))})"
            )
        return profiles[name]

    def target(self, olt_id: str, environ: Mapping[str, str] | None = None) -> SshTarget:
        """SSH target of one OLT with its credentials and accepted host keys."""
        e = self.entry(olt_id)
        found = resolve_credential(
            e.credentials, {"username": "USERNAME", "password": "PASSWORD"}, prefix=ENV_PREFIX,
            secrets_path=self.secrets_path(), what=f"OLT {olt_id}: CLI credentials",
            environ=environ,
        )  # fmt: skip
        known = self._resolve(self.known_hosts)
        d = self.defaults
        return SshTarget(
            olt_id=olt_id, host=e.host, port=e.port, username=found["username"],
            password=found["password"],
            known_hosts=known.read_text(encoding="utf-8") if known and known.exists() else None,
            insecure=e.insecure, timeout_s=d.timeout_s, busy_retries=d.busy_retries,
            busy_backoff_s=d.busy_backoff_s, protocol=e.protocol,
        )  # fmt: skip

    def snmp_set_target(
        self, olt_id: str, environ: Mapping[str, str] | None = None
    ) -> tuple[str, int, SnmpCredentials, SnmpSetEntry]:
        """Agent address, write credentials and settings of an OLT with SNMP SET enabled.

        Raises
        ------
        ConfigError
            SET not enabled for that OLT, or its write credentials incomplete (naming the
            environment variables and secret-file keys looked up, never a value).
        """
        from guardian_lib.snmp.transport import SnmpCredentials

        e = self.entry(olt_id)
        if e.snmp_set is None:
            raise ConfigError(
                f"{self.path}: OLT {olt_id}: SNMP SET is not enabled (add snmp_set: "
                "{credentials: REF} to its entry; docs/olt.md)"
            )
        ss = e.snmp_set
        keys = ("write_community",) if ss.version == "2c" else ("v3_user", "auth_key", "priv_key")
        found = resolve_credential(
            ss.credentials, {k: _ENV_KEY[k] for k in keys}, prefix=ENV_PREFIX,
            secrets_path=self.secrets_path(),
            what=f"OLT {olt_id}: SNMP SET credentials (SNMPv{ss.version})", environ=environ,
        )  # fmt: skip
        if ss.version == "2c":
            creds = SnmpCredentials("2c", community=found["write_community"])
        else:
            creds = SnmpCredentials(
                "3", user=found["v3_user"], auth_key=found["auth_key"], priv_key=found["priv_key"]
            )
        return ss.host or e.host, ss.port, creds, ss


_ENV_KEY = {"write_community": "WRITE_COMMUNITY", "v3_user": "V3_USER",
            "auth_key": "V3_AUTH_KEY", "priv_key": "V3_PRIV_KEY"}  # fmt: skip


def pppoe_account(
    key: str, secrets_path: Path | None, environ: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """PPPoE user name and password stored under ``key`` (environment, then secret file).

    Raises
    ------
    ConfigError
        Naming the key and where it was looked up (never the password).
    """
    found = resolve_credential(
        key, {"username": "USERNAME", "password": "PASSWORD"}, prefix=ENV_PREFIX + "PPPOE_",
        secrets_path=secrets_path, what="PPPoE account", file_block=("pppoe", key),
        environ=environ,
    )  # fmt: skip
    return found["username"], found["password"]


def load_cli_inventory(path: str | Path) -> CliInventory:
    """Read and validate an OLT CLI inventory.

    Raises
    ------
    ConfigError
        Naming the file and the field (e.g. ``olts[1].port``).
    """
    path = Path(path)
    inv = load_yaml_model(
        path, CliInventory, shape="an OLT CLI inventory: a YAML mapping with 'olts:'",
        what="invalid OLT CLI inventory",
    )  # fmt: skip
    ids = [o.olt_id for o in inv.olts]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"{path}: olts: duplicate olt_id {dup}")
    inv.path = path
    return inv
