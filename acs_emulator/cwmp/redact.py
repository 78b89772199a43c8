"""Secrets in device documents and tasks: which parameters hold them, and their redaction.

A parameter is secret when the last segment of its name is a password, a passphrase
or a key (``…ConnectionRequestPassword``, ``…PPP.Interface.1.Password``,
``…Security.KeyPassphrase``, ``…PreSharedKey.1.KeyPassphrase``, ``…WEPKey`` …).
The NBI never returns such a value (it answers ``""``, as a CPE reading a password
does), and the SQLite store never writes the values a queued task carries.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "is_secret", "redact_document", "redact_task", "task_has_secrets"]

#: What a redacted value reads as (TR-069: reading a password returns an empty string).
REDACTED = ""

_SECRET_RE = re.compile(
    r"(password|passphrase|presharedkey|psk|secret|wepkey\d*|keypassphrase|sharedkey|"
    r"privatekey)$",
    re.IGNORECASE,
)


def is_secret(name: str) -> bool:
    """Whether parameter ``name`` (dotted path) holds a secret.

    Examples
    --------
    >>> is_secret("Device.WiFi.AccessPoint.1.Security.KeyPassphrase")
    True
    >>> is_secret("Device.PPP.Interface.1.Username")
    False
    """
    last = name.rstrip(".").rsplit(".", 1)[-1]
    return bool(_SECRET_RE.search(last))


def redact_document(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy of device ``doc`` whose secret parameter values read ``""``.

    Only the branches holding a secret are copied; ``doc`` itself is not modified.
    """

    def walk(node: dict[str, Any], key: str) -> dict[str, Any] | None:
        changed: dict[str, Any] = {}
        for k, v in node.items():
            if isinstance(v, dict) and not k.startswith("_"):
                if "_value" in v and is_secret(k) and v["_value"] != REDACTED:
                    changed[k] = dict(v, _value=REDACTED)
                else:
                    sub = walk(v, k)
                    if sub is not None:
                        changed[k] = sub
        return None if not changed else {**node, **changed}

    return walk(doc, "") or doc


def _secret_value(entry: Any) -> bool:
    if isinstance(entry, dict):
        return is_secret(str(entry.get("name", "")))
    return isinstance(entry, list | tuple) and len(entry) > 1 and is_secret(str(entry[0]))


def task_has_secrets(task: dict[str, Any]) -> bool:
    """Whether a task carries a secret value (a SetParameterValues of a password)."""
    return any(_secret_value(v) for v in task.get("parameterValues") or [])


def redact_task(task: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``task`` without secret values (``task`` itself is not modified)."""
    if not task_has_secrets(task):
        return task
    values = []
    for v in task["parameterValues"]:
        if _secret_value(v):
            if isinstance(v, dict):
                v = dict(v, value=REDACTED)
            else:
                v = [v[0], REDACTED, *list(v[2:])]
        values.append(v)
    return dict(task, parameterValues=values, _secretsRedacted=True)
