"""Label matchers: which labelled things (alerts, places of the network) a rule names.

A matcher maps a label name to a value: a value starting with ``~`` is a regular
expression (full match), any other value must be equal. Alert silences and inhibit rules
(:mod:`guardian_lib.alerts`) and maintenance windows (:mod:`guardian_lib.decision.maintenance`)
share this one definition; it depends on nothing but :mod:`guardian_lib.errors`, so that
both packages can use it without the decision engine importing the alerting one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from guardian_lib.errors import ConfigError

__all__ = ["labels_match", "parse_matchers"]


def labels_match(labels: Mapping[str, str], matchers: Mapping[str, str]) -> bool:
    """Whether ``labels`` pass every matcher (``~regex`` or an exact value).

    Examples
    --------
    >>> labels_match({"olt": "OLT1", "level": "onu"}, {"level": "~(onu|customer)"})
    True
    >>> labels_match({"olt": "OLT1"}, {"olt": "OLT2"})
    False
    """
    for k, v in matchers.items():
        got = labels.get(k, "")
        if v.startswith("~"):
            if re.fullmatch(v[1:], got) is None:
                return False
        elif got != v:
            return False
    return True


def parse_matchers(items: list[str]) -> dict[str, str]:
    """``["olt=OLT1", "level=~onu|customer"]`` → ``{"olt": "OLT1", "level": "~onu|customer"}``.

    Raises
    ------
    ConfigError
        A matcher is not ``name=value`` / ``name=~regex``, or a regex does not compile.
    """
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"matcher {item!r}: expected name=value or name=~regex")
        if value.startswith("~"):
            try:
                re.compile(value[1:])
            except re.error as exc:
                raise ConfigError(f"matcher {item!r}: bad regular expression: {exc}") from None
        out[name] = value
    if not out:
        raise ConfigError("a silence needs at least one matcher (name=value)")
    return out
