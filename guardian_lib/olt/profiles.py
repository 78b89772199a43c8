"""OLT command-line profiles: each vendor's prompts, paging, commands and errors as data.

A profile (YAML under ``guardian_lib/olt/profiles/`` or an operator's directory) says how
to talk to one OLT family over its SSH CLI: the prompt and the configuration-mode prompt,
the pager line and the key that continues it, confirmation questions and their answer,
the commands of each operation as templates (``{slot}``, ``{port}``, ``{onu_id}``,
``{serial}``, ``{vlan}``, ``{pppoe_username}`` …) and the error patterns that classify an
answer (wrong syntax, busy, ONU already exists, unknown serial …). Adding a model or
fixing a command for a firmware is a change to a YAML file, not to code.

Templates are filled by :func:`render`: every value is checked against a strict
character set first, so that no value can add a second command (a newline or ``;`` in
a description, a serial or a PPPoE user name is refused, not sent).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.safe_yaml import StrictModel, load_yaml

__all__ = [
    "ERROR_KINDS",
    "Step",
    "Operation",
    "ErrorPattern",
    "CliProfile",
    "builtin_cli_profiles_dir",
    "load_cli_profile",
    "load_cli_profiles",
    "render",
    "template_fields",
    "SECRET_FIELDS",
    "SNMP_SET_OPERATIONS",
    "SnmpVarbind",
    "IfIndexRule",
    "SnmpSetProfile",
]

#: Error classes an answer can fall in (``ErrorPattern.kind``).
ERROR_KINDS = (
    "syntax",  # the OLT did not understand the command (wrong profile or firmware)
    "busy",  # the OLT refused for now (another session configuring, resources busy)
    "exists",  # the ONU (serial or id) is already configured
    "unknown_serial",  # no ONU with that serial is waiting for authorization
    "not_found",  # the ONU / port named does not exist
    "profile",  # a line / service / bandwidth profile or VLAN named does not exist
    "failure",  # any other refusal
)
#: Template fields whose values are secrets: never printed, logged or audited.
SECRET_FIELDS = frozenset({"pppoe_password"})


_Strict = StrictModel  # unknown keys refused (guardian_lib.safe_yaml)


def _check_regex(value: str | None) -> str | None:
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression ({exc}): {value!r}") from None
    return value


class Step(_Strict):
    """One step of an operation: commands sent in order, then what to read back.

    ``capture`` is a regular expression whose named groups are read from the step's
    output (e.g. the ONU id the OLT allocated) and become template fields of the
    following steps.
    """

    name: str
    send: list[str] = Field(min_length=1)
    capture: str | None = None
    _v = field_validator("capture")(_check_regex)


class Operation(_Strict):
    """Commands of one operation, and how to undo it if a later step fails.

    ``rollback`` is sent when a step after the first fails (what the vendor allows to
    undo, e.g. delete the ONU added by the first step); ``parse`` is a regular expression
    applied with ``finditer`` to the whole output, one match per record (listings).
    """

    steps: list[Step] = Field(min_length=1)
    rollback: list[str] = Field(default_factory=list)
    parse: str | None = None
    section: str | None = Field(
        None,
        description="Header of a section of a listing; its named groups (e.g. slot and "
        "port) apply to the records that follow it, up to the next header.",
    )
    empty: str | None = Field(None, description="Error line that means 'no records'.")
    _v = field_validator("parse", "section", "empty")(_check_regex)


class ErrorPattern(_Strict):
    """A line of an answer that means the command failed, and what kind of failure."""

    kind: Literal["syntax", "busy", "exists", "unknown_serial", "not_found", "profile", "failure"]
    pattern: str
    _v = field_validator("pattern")(_check_regex)


#: Operations SNMP SET may carry (a subset of the CLI operations).
SNMP_SET_OPERATIONS = ("reboot", "onu_disable", "onu_enable", "port_disable", "port_enable")


class SnmpVarbind(_Strict):
    """One INTEGER var-bind of an SNMP SET; ``oid`` may use ``{if_index}`` and ``{onu_id}``."""

    oid: str
    value: int

    @field_validator("oid")
    @classmethod
    def _oid(cls, oid: str) -> str:
        fields = set(template_fields(oid))
        if not fields <= {"if_index", "onu_id"} or not re.fullmatch(
            r"(\d+|\{if_index\}|\{onu_id\})(\.(\d+|\{if_index\}|\{onu_id\}))+", oid
        ):
            raise ValueError(
                f"{oid!r}: expected a dotted OID whose parts are numbers, {{if_index}} or "
                "{onu_id}"
            )
        return oid


class IfIndexRule(_Strict):
    """PON port ifIndex from CLI numbering: ``base + slot·slot_step + port·port_step``."""

    base: int = Field(ge=0)
    slot_step: int = Field(ge=0)
    port_step: int = Field(ge=0)

    def of(self, slot: int, port: int) -> int:
        """The ifIndex of CLI ``slot`` / ``port``."""
        return self.base + int(slot) * self.slot_step + int(port) * self.port_step


class SnmpSetProfile(_Strict):
    """The changes an OLT family accepts over SNMP SET, as var-bind templates."""

    if_index: IfIndexRule
    operations: dict[str, list[SnmpVarbind]]

    @field_validator("operations")
    @classmethod
    def _known(cls, ops: dict[str, list[SnmpVarbind]]) -> dict[str, list[SnmpVarbind]]:
        bad = sorted(set(ops) - set(SNMP_SET_OPERATIONS))
        if bad:
            raise ValueError(f"unknown operations {bad} (expected some of {SNMP_SET_OPERATIONS})")
        return ops


class CliProfile(_Strict):
    """How to drive one OLT family's command line (see the module docstring)."""

    name: str
    vendor: str
    models: list[str] = Field(min_length=1)
    prompt: str = Field(description="Regex matching any prompt at the end of the output.")
    config_prompt: str = Field(description="Regex matching the configuration-mode prompt.")
    paging: str = Field(description="Regex of the pager line ('---- More ----').")
    paging_continue: str = " "
    confirm: str | None = Field(None, description="Regex of a yes/no question.")
    confirm_answer: str = "y"
    password_prompt: str | None = Field(
        None, description="Regex of a password question after login (FiberHome `enable`); "
        "answered with the login password, which is never echoed or recorded.",
    )  # fmt: skip
    setup: list[str] = Field(default_factory=list, description="Sent after login.")
    exit_mode: str = Field(description="Leaves a sub-mode (back towards config mode).")
    port_base: int = Field(0, ge=0, le=1, description="Number of the first PON port in CLI.")
    onu_id_range: tuple[int, int] = (0, 127)
    assign_onu_id: Literal["olt", "driver"] = Field(
        "driver", description="'olt': the OLT allocates (read by capture); 'driver': we pick."
    )
    serial_format: Literal["plain", "hex", "lower_hex"] = Field(
        "plain",
        description="'plain' HWTC1A2B3C4D; 'hex' 485754431A2B3C4D (vendor id in hex); "
        "'lower_hex' HWTC1a2b3c4d (FiberHome: hex digits in lower case).",
    )
    defaults: dict[str, str] = Field(default_factory=dict)
    errors: list[ErrorPattern] = Field(min_length=1)
    operations: dict[str, Operation]
    snmp_set: SnmpSetProfile | None = Field(
        None, description="Changes the family accepts over SNMP SET (opt-in per OLT)."
    )

    _v = field_validator("prompt", "config_prompt", "paging", "confirm", "password_prompt")(
        _check_regex
    )

    @field_validator("operations")
    @classmethod
    def _required(cls, ops: dict[str, Operation]) -> dict[str, Operation]:
        need = {
            "autofind", "configured", "authorize", "wan_pppoe", "wan_bridge", "reboot",
            "onu_disable", "onu_enable", "port_disable", "port_enable", "onu_status",
            "port_status",
        }  # fmt: skip
        missing = sorted(need - set(ops))
        if missing:
            raise ValueError(f"missing operations {missing}")
        return ops

    def classify(self, output: str) -> tuple[str, str] | None:
        """``(kind, line)`` of the first error pattern found in ``output``, or None."""
        for err in self.errors:
            m = re.search(err.pattern, output, re.MULTILINE)
            if m is not None:
                start = output.rfind("\n", 0, m.start()) + 1
                end = output.find("\n", m.end())
                return err.kind, output[start : end if end >= 0 else None].strip()
        return None


#: Allowed characters of each kind of template value (no spaces, quotes, ``;`` or newlines).
_VALUE_RULES: dict[str, re.Pattern[str]] = {
    "serial": re.compile(r"[A-Z0-9]{4}[0-9A-F]{8}"),
    "serial_hex": re.compile(r"[0-9A-F]{16}"),
    "serial_lower": re.compile(r"[A-Z0-9]{4}[0-9a-f]{8}"),
    "desc": re.compile(r"[A-Za-z0-9_.:@-]{1,64}"),
    "pppoe_username": re.compile(r"[A-Za-z0-9_.@+-]{1,64}"),
    "pppoe_password": re.compile(r"[A-Za-z0-9_.@+!%*#=-]{1,64}"),
}
_DEFAULT_RULE = re.compile(r"[A-Za-z0-9_.-]{1,32}")


def template_fields(template: str) -> list[str]:
    """Names of the ``{fields}`` a command template uses."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def render(template: str, values: dict[str, Any], *, mask_secrets: bool = False) -> str:
    """Fill one command template, refusing values that could change the command.

    Parameters
    ----------
    template : str
        E.g. ``"ont add {port} sn-auth {serial_hex} omci ont-lineprofile-id {line_profile}"``.
    values : dict
        Field name → value (ints or strings).
    mask_secrets : bool
        Print ``******`` instead of secret fields (dry-run, logs, audit).

    Raises
    ------
    ValueError
        A field has no value, or a value has characters outside its field's set.
    """
    out: dict[str, str] = {}
    for name in template_fields(template):
        if name not in values or values[name] is None:
            raise ValueError(f"command {template!r} needs a value for {{{name}}}")
        text = str(values[name])
        rule = _VALUE_RULES.get(name, _DEFAULT_RULE)
        if not rule.fullmatch(text):
            shown = "******" if name in SECRET_FIELDS else repr(text)
            raise ValueError(
                f"{name} = {shown} is not allowed in an OLT command "
                f"(expected characters matching {rule.pattern})"
            )
        out[name] = "******" if (mask_secrets and name in SECRET_FIELDS) else text
    return template.format_map(out)


def builtin_cli_profiles_dir() -> Path:
    """The directory of the shipped CLI profiles."""
    return Path(__file__).parent / "profiles"


def load_cli_profile(path: str | Path) -> CliProfile:
    """Read and validate one CLI profile.

    Raises
    ------
    ConfigError
        Naming the file and the field.
    """
    path = Path(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: an OLT CLI profile must be a YAML mapping")
    try:
        return CliProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, "invalid OLT CLI profile")) from None


def load_cli_profiles(extra_dirs: list[str | Path] | None = None) -> dict[str, CliProfile]:
    """Shipped profiles, then those of ``extra_dirs`` (a later file wins by name)."""
    out: dict[str, CliProfile] = {}
    for d in [builtin_cli_profiles_dir(), *(extra_dirs or [])]:
        for p in sorted(Path(d).glob("*.yaml")):
            prof = load_cli_profile(p)
            out[prof.name] = prof
    return out
