"""Errors raised by the SNMP poller; each names the OLT, the OID or field, and what arrived."""

from __future__ import annotations

from guardian_lib.errors import ConfigError, GuardianError

__all__ = [
    "SnmpError",
    "SnmpTimeoutError",
    "SnmpAuthError",
    "SnmpProtocolError",
    "SnmpProfileError",
    "SnmpCredentialsError",
]


class SnmpError(GuardianError):
    """An OLT could not be polled (base class)."""


class SnmpTimeoutError(SnmpError):
    """The OLT did not answer within the timeout after all retries."""


class SnmpAuthError(SnmpError):
    """SNMPv3 authentication / privacy failed (wrong user, keys or protocols)."""


class SnmpProtocolError(SnmpError):
    """The OLT answered with an SNMP error status or a malformed answer."""


class SnmpProfileError(SnmpError):
    """No vendor profile fits the OLT, or the named profile does not exist."""


class SnmpCredentialsError(SnmpError, ConfigError):
    """Credentials named by the inventory are missing from the environment / secret file."""
