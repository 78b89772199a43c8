"""Vendor profiles: which OIDs an OLT answers and how to decode them, as data.

A profile is a YAML file (see ``guardian_lib/snmp/profiles/*.yaml`` and ``docs/snmp.md``)
naming the ONU table columns (optical levels, run status, last-down cause, serial, uptime),
their encodings, sentinels and status codes, and how to recognise the OLT from its
``sysObjectID`` / ``sysDescr``. Operators add a model by dropping a YAML file in a
directory and passing it with ``--profiles DIR``; no code changes.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guardian_lib.errors import ConfigError
from guardian_lib.safe_yaml import load_yaml_model
from guardian_lib.snmp.errors import SnmpProfileError

__all__ = [
    "OpticalColumn",
    "StatusColumn",
    "CauseColumn",
    "SerialColumn",
    "UptimeColumn",
    "ProfileColumns",
    "ProfileMatch",
    "Profile",
    "builtin_profiles_dir",
    "load_profile",
    "load_profiles",
    "select_profile",
    "EVENT_TYPES",
]

#: Event types a profile may map a last-down cause to (events_raw ``type``).
EVENT_TYPES = ("LOS", "DYING_GASP", "OLT_ALARM")

_OID = re.compile(r"^\.?\d+(\.\d+)+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Column(_Strict):
    oid: str = Field(description="Column OID (the table entry OID plus the column number).")
    strip_suffix: int = Field(
        0, ge=0, le=4, description="Trailing index sub-ids to drop (e.g. ZTE's '.1')."
    )

    @field_validator("oid")
    @classmethod
    def _dotted(cls, v: str) -> str:
        if not _OID.match(v):
            raise ValueError(f"must be a dotted numeric OID such as 1.3.6.1.2.1.1, got {v!r}")
        return v.lstrip(".")


class OpticalColumn(_Column):
    """An optical level column and its encoding (see :mod:`guardian_lib.snmp.encodings`)."""

    encoding: Literal["scaled", "linear_mw", "dbm_in_string", "decimal_string"] = "scaled"
    scale: float = 1.0
    offset: float = 0.0
    sentinels: tuple[float, ...] = ()
    valid_dbm: tuple[float, float] = Field(
        (-50.0, 15.0), description="Decoded values outside this range become NaN. [dBm]"
    )


class StatusColumn(_Column):
    """Run status: which integer codes mean online and which offline."""

    online: tuple[int, ...]
    offline: tuple[int, ...] = ()


class CauseColumn(_Column):
    """Last-down cause code → event type (LOS, DYING_GASP, …)."""

    causes: dict[int, str]

    @field_validator("causes")
    @classmethod
    def _known_types(cls, v: dict[int, str]) -> dict[int, str]:
        bad = sorted(set(v.values()) - set(EVENT_TYPES))
        if bad:
            raise ValueError(f"event types must be among {list(EVENT_TYPES)}, got {bad}")
        return v


class SerialColumn(_Column):
    """ONU serial number column."""

    encoding: Literal["string", "gpon_octets", "hex_string"] = "string"


class UptimeColumn(_Column):
    """ONU uptime column."""

    scale: float = Field(1.0, gt=0, description="Seconds per raw unit (0.01 for TimeTicks). [s]")


class ProfileColumns(_Strict):
    """The ONU table columns a profile polls. Any may be absent; one optical column is needed."""

    rx_dbm: OpticalColumn | None = None
    tx_dbm: OpticalColumn | None = None
    olt_rx_dbm: OpticalColumn | None = None
    status: StatusColumn | None = None
    down_cause: CauseColumn | None = None
    serial: SerialColumn | None = None
    uptime_s: UptimeColumn | None = None

    @model_validator(mode="after")
    def _one_optical(self) -> ProfileColumns:
        if not (self.rx_dbm or self.tx_dbm or self.olt_rx_dbm):
            raise ValueError("at least one of rx_dbm, tx_dbm, olt_rx_dbm is required")
        return self

    def items(self) -> list[tuple[str, _Column]]:
        """``(field, column)`` pairs of the columns present, in a stable order."""
        return [(k, v) for k, v in self if v is not None]


class ProfileMatch(_Strict):
    """How to recognise the OLT: sysObjectID prefixes and an optional sysDescr regex."""

    sys_object_id: tuple[str, ...] = ()
    sys_descr: str | None = None
    priority: int = Field(0, description="Breaks ties between equally specific matches. [-]")

    @field_validator("sys_descr")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return v


class Profile(_Strict):
    """One vendor / model family.

    Attributes
    ----------
    name : str
        Profile name, referenced from inventories (``profile: huawei_ma5800``).
    vendor, models, technology : str, list of str, {'GPON', 'EPON', 'XGS-PON'}
        Descriptive; ``vendor`` goes into the events' payload.
    index_format : str
        Human description of the table index, e.g. ``<ponIfIndex>.<ontId>``.
    serial_from_index : {'none', 'length_prefixed_ascii'}
        Whether the index itself carries the serial (Ubiquiti UFiber).
    blank_optics_when_offline : bool
        Discard optical values of ONUs whose status says offline (OLTs that keep reporting
        0 or a stale value for them).
    """

    name: str
    vendor: str
    models: tuple[str, ...] = ()
    technology: Literal["GPON", "EPON", "XGS-PON"] = "GPON"
    description: str = ""
    match: ProfileMatch = ProfileMatch()
    index_format: str = "<index>"
    serial_from_index: Literal["none", "length_prefixed_ascii"] = "none"
    blank_optics_when_offline: bool = False
    max_repetitions: int = Field(
        25, ge=1, le=200, description="GETBULK max-repetitions that suits the OLT. [-]"
    )
    columns: ProfileColumns


def builtin_profiles_dir() -> Path:
    """Directory of the profiles shipped with the library."""
    return Path(__file__).with_name("profiles")


def load_profile(path: str | Path) -> Profile:
    """Read and validate one YAML profile.

    Parameters
    ----------
    path : str or Path
        YAML file.

    Returns
    -------
    profile : Profile

    Raises
    ------
    ConfigError
        Naming the file and the field path when the file is not a valid profile.
    """
    path = Path(path)
    return load_yaml_model(
        path, Profile, shape="an SNMP profile: a YAML mapping", what="invalid SNMP profile"
    )


@cache
def _builtin() -> dict[str, Profile]:
    return _load_dir(builtin_profiles_dir())


def _load_dir(directory: Path) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for path in sorted(directory.glob("*.y*ml")):
        prof = load_profile(path)
        if prof.name in out:
            raise ConfigError(f"{path}: profile name {prof.name!r} is already defined")
        out[prof.name] = prof
    return out


def load_profiles(extra_dirs: list[str | Path] | None = None) -> dict[str, Profile]:
    """Built-in profiles plus the operator's (a later directory overrides by name).

    Parameters
    ----------
    extra_dirs : list of path, optional
        Directories of ``*.yaml`` profiles.

    Returns
    -------
    profiles : dict
        Profile name → :class:`Profile`.
    """
    out = dict(_builtin())
    for d in extra_dirs or []:
        d = Path(d)
        if not d.is_dir():
            raise ConfigError(f"{d}: SNMP profile directory does not exist")
        out.update(_load_dir(d))
    return out


def select_profile(
    profiles: dict[str, Profile],
    sys_object_id: str | None,
    sys_descr: str | None,
    *,
    olt_id: str = "?",
) -> Profile:
    """Pick the profile whose ``match`` fits the OLT best.

    The longest matching ``sysObjectID`` prefix wins; a profile whose ``sysDescr`` regex
    matches beats one without a regex, then the higher ``priority``. A profile with a
    regex that does not match is out.

    Parameters
    ----------
    profiles : dict
        Name → profile, e.g. from :func:`load_profiles`.
    sys_object_id, sys_descr : str or None
        What the OLT answered for ``SNMPv2-MIB::sysObjectID.0`` and ``sysDescr.0``.
    olt_id : str
        For the error message.

    Returns
    -------
    profile : Profile

    Raises
    ------
    SnmpProfileError
        When no profile fits; the message names the OLT and what it answered.
    """
    oid = (sys_object_id or "").lstrip(".")
    descr = sys_descr or ""
    best: tuple[int, int, int, str] | None = None
    for name, prof in profiles.items():
        m = prof.match
        if not m.sys_object_id and not m.sys_descr:
            continue
        oid_len = 0
        if m.sys_object_id:
            hits = [p for p in m.sys_object_id if oid == p or oid.startswith(p.rstrip(".") + ".")]
            if not hits:
                continue
            oid_len = max(len(p) for p in hits)
        descr_hit = 0
        if m.sys_descr:
            if not re.search(m.sys_descr, descr):
                continue
            descr_hit = 1
        key = (oid_len, descr_hit, m.priority, name)
        if best is None or key[:3] > best[:3]:
            best = key
    if best is None:
        raise SnmpProfileError(
            f"OLT {olt_id}: no SNMP profile matches sysObjectID={sys_object_id!r} "
            f"sysDescr={sys_descr!r}; expected one of the profiles "
            f"{sorted(profiles)} (set 'profile:' in the inventory or add a YAML profile)"
        )
    return profiles[best[3]]
