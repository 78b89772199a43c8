"""Autopilot settings, validated by pydantic-settings and overridable by environment.

Every field reads the environment variable of the same name in upper case, e.g.
``AUTOPILOT_MODE=execute``, ``REBOOT_COOLDOWN_MINUTES=360``, ``MAX_REBOOTS_PER_DAY=2``,
``COST_PER_VISIT=150``, ``KILL_SWITCH=true``. ``simulate`` (the default) decides and
audits but never touches a device.

Misspellings refuse to start (:class:`~guardian_lib.errors.ConfigError`, one line naming
the variable and the valid names), because a silently ignored ``KILL_SWITCH`` is a kill
switch that does not work. What is checked:

* every variable starting with ``AUTOPILOT_`` must be ``AUTOPILOT_MODE``;
* every variable starting with ``GUARDIAN_`` must be one of :data:`GUARDIAN_ENV_NAMES`
  or belong to a credential family of another component (:data:`GUARDIAN_ENV_FAMILIES`,
  e.g. ``GUARDIAN_SNMP_<NAME>_COMMUNITY``);
* a variable without those prefixes is checked only when, ignoring ``_`` and case, it
  spells a setting's name (``KILLSWITCH``, ``Kill_Switch``, ``REBOOTCOOLDOWNMINUTES``) —
  other variables of the environment are none of our business.

Limits have hard bounds (:data:`HARD_LIMITS`): no configuration can allow more than one
reboot of a device per ``10`` minutes, ``24`` per day, ``64`` per PON per hour or
``10 000`` device actions per hour over the fleet.

The thresholds of topology evidence for a shared outage
(:class:`~guardian_lib.decision.neighbours.OutageEvidence`) are settings too
(``OUTAGE_COINCIDENCE_MIN``, ``OUTAGE_BOX_MIN_SHARE``, ``OUTAGE_BOX_MIN_COUNT``, … for
``box``, ``pon`` and ``olt``; :meth:`AutopilotSettings.outage_evidence`): an ISP whose
street boxes or PONs are larger or smaller than the defaults assume tunes them per site.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from guardian_lib.decision.neighbours import OutageEvidence
from guardian_lib.errors import ConfigError
from guardian_lib.schema import VISIT_COST_BRL

__all__ = [
    "AutopilotSettings",
    "SettingsError",
    "check_environment",
    "GUARDIAN_ENV_NAMES",
    "GUARDIAN_ENV_FAMILIES",
    "HARD_LIMITS",
    "OUTAGE_FIELDS",
]

#: ``GUARDIAN_*`` variables read anywhere in Network Guardian.
GUARDIAN_ENV_NAMES = frozenset(
    {
        "GUARDIAN_DEBUG",
        "GUARDIAN_DATA_DIR",
        "GUARDIAN_CHROMIUM",
        "GUARDIAN_MLFLOW_PARENT_RUN_ID",
        "GUARDIAN_TEST_REPORT_DIR",
    }
)
#: Prefixes of ``GUARDIAN_*`` families owned by other components (credentials named by
#: inventories, ACS / CPE / NBI secrets); not checked here.
GUARDIAN_ENV_FAMILIES = (
    "GUARDIAN_SNMP_",
    "GUARDIAN_OLT_",  # OLT CLI logins and PPPoE accounts named by an OLT CLI inventory
    "GUARDIAN_ACS_",
    "GUARDIAN_CPE_",
    "GUARDIAN_NBI_",
    "GUARDIAN_ZT_",
    "GUARDIAN_ALERT_",  # receivers' secrets named by an alert file (``token_env``)
    "GUARDIAN_OWN_",  # database URLs named by an own-data mapping (``sql.url_env``)
)
#: Hard bounds of the safety limits: ``field → (lowest, highest)`` allowed value.
HARD_LIMITS: dict[str, tuple[float, float]] = {
    "reboot_cooldown_minutes": (10.0, 7 * 1440.0),
    "max_reboots_per_day": (0, 24),
    "max_reboots_per_pon_per_hour": (0, 64),
    "max_actions_fleet_per_hour": (0, 10_000),
    "cost_per_visit": (0.0, 100_000.0),
    "jitter_max_seconds": (0.0, 3600.0),
    "breaker_window": (1, 1000),
    "breaker_min_success_rate": (0.0, 1.0),
    "breaker_pause_minutes": (0.0, 7 * 1440.0),
}

#: Settings of the outage evidence: ``field → OutageEvidence attribute``.
OUTAGE_FIELDS = {
    f"outage_{name}": name
    for name in (
        "coincidence_min",
        *(f"{scope}_min_{what}" for scope in ("box", "pon", "olt") for what in ("share", "count")),
    )
}
_OUTAGE_DEFAULT = OutageEvidence()
#: A share of a scope's ONUs: above 0, at most 1. [-]
_Share = Annotated[float, Field(gt=0.0, le=1.0)]
#: ONUs that failed together: one ONU is never an outage of its scope. [-]
_Count = Annotated[int, Field(ge=2, le=100_000)]


class SettingsError(ConfigError):
    """A setting is invalid; ``validation_error`` holds pydantic's detail (callers that
    read settings from a file, not the environment, name the fields their own way)."""

    def __init__(self, message: str, validation_error: ValidationError) -> None:
        super().__init__(message)
        self.validation_error = validation_error


def _bounded(name: str) -> Any:
    lo, hi = HARD_LIMITS[name]
    return Field(ge=lo, le=hi)


class AutopilotSettings(BaseSettings):
    """Safety limits and mode of the autopilot.

    Attributes
    ----------
    autopilot_mode : {'simulate', 'execute'}
        ``simulate``: decide and audit only; ``execute``: call the injected executors.
    reboot_cooldown_minutes : float
        Minimum time between two automatic reboots of the same device, 10 to 10 080. [min]
    max_reboots_per_day : int
        Automatic reboots of one device in any rolling 24 h, at most 24. [-]
    cost_per_visit : float
        Cost of one technician visit. [R$]
    max_reboots_per_pon_per_hour : int
        Automatic reboots under one PON in any rolling hour, at most 64. [-]
    max_actions_fleet_per_hour : int
        Automatic device actions over the whole fleet in any rolling hour, at most 10 000. [-]
    jitter_max_seconds : float
        Each device action is delayed by a uniform random time in ``[0, jitter]``
        so that a burst of decisions does not hit the ACS or a PON at once. [s]
    jitter_seed : int
        Seed of the jitter's random stream (deterministic runs). [-]
    breaker_window : int
        Number of most recent verified reboots the circuit breaker looks at. [-]
    breaker_min_success_rate : float
        Below this success rate over the window, automatic reboots pause. [-]
    breaker_pause_minutes : float
        How long the breaker stays open once tripped. [min]
    kill_switch : bool
        Stop every automatic action (decisions are still made and audited).
    kill_switch_file : Path, optional
        While this file exists every automatic action is blocked; checked at every
        decision, so it can be created while the autopilot runs (``touch FILE``).
    maintenance_file : Path, optional
        YAML file whose ``maintenance_windows:`` block reboots, visits and notices in
        their area while in force (an alerting file will do; read when the guard is
        built). ``guardian operate`` uses the site's alerting file when unset.
    outage_coincidence_min : float
        Largest gap between the starts of two consecutive failures of one shared
        outage, 0 to 1440. [min]
    outage_box_min_share, outage_pon_min_share, outage_olt_min_share : float
        Share of a street box's / PON's / OLT's ONUs that must fail together for a
        shared outage of that scope, in (0, 1]. [-]
    outage_box_min_count, outage_pon_min_count, outage_olt_min_count : int
        Number of ONUs of the scope that must fail together too, at least 2. [-]
    """

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, case_sensitive=False, allow_inf_nan=False
    )

    autopilot_mode: Literal["simulate", "execute"] = "simulate"
    reboot_cooldown_minutes: Annotated[float, _bounded("reboot_cooldown_minutes")] = 360.0
    max_reboots_per_day: Annotated[int, _bounded("max_reboots_per_day")] = 2
    cost_per_visit: Annotated[float, _bounded("cost_per_visit")] = VISIT_COST_BRL
    max_reboots_per_pon_per_hour: Annotated[int, _bounded("max_reboots_per_pon_per_hour")] = 4
    max_actions_fleet_per_hour: Annotated[int, _bounded("max_actions_fleet_per_hour")] = 60
    jitter_max_seconds: Annotated[float, _bounded("jitter_max_seconds")] = 60.0
    jitter_seed: int = 0
    breaker_window: Annotated[int, _bounded("breaker_window")] = 10
    breaker_min_success_rate: Annotated[float, _bounded("breaker_min_success_rate")] = 0.3
    breaker_pause_minutes: Annotated[float, _bounded("breaker_pause_minutes")] = 120.0
    kill_switch: bool = False
    kill_switch_file: Path | None = None
    maintenance_file: Path | None = None
    outage_coincidence_min: Annotated[float, Field(ge=0.0, le=1440.0)] = (
        _OUTAGE_DEFAULT.coincidence_min
    )
    outage_box_min_share: _Share = _OUTAGE_DEFAULT.box_min_share
    outage_box_min_count: _Count = _OUTAGE_DEFAULT.box_min_count
    outage_pon_min_share: _Share = _OUTAGE_DEFAULT.pon_min_share
    outage_pon_min_count: _Count = _OUTAGE_DEFAULT.pon_min_count
    outage_olt_min_share: _Share = _OUTAGE_DEFAULT.olt_min_share
    outage_olt_min_count: _Count = _OUTAGE_DEFAULT.olt_min_count

    def outage_evidence(self) -> OutageEvidence:
        """The :class:`~guardian_lib.decision.neighbours.OutageEvidence` these settings
        describe (the policies' topology evidence for a shared outage)."""
        return OutageEvidence(**{attr: getattr(self, f) for f, attr in OUTAGE_FIELDS.items()})

    def __init__(self, **values: Any) -> None:
        check_environment(os.environ)
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_settings_message(exc), exc) from None


def _env_names() -> list[str]:
    return sorted(n.upper() for n in AutopilotSettings.model_fields)


def _squash(name: str) -> str:
    return name.replace("_", "").replace("-", "").upper()


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse unknown ``AUTOPILOT_*`` / ``GUARDIAN_*`` variables and misspelled settings.

    Raises
    ------
    ConfigError
        One line: the variable, the setting it probably meant, and the valid names.
    """
    valid = _env_names()
    squashed = {_squash(n): n for n in valid}
    for raw in sorted(environ):
        name = raw.upper()
        if name in valid or name in GUARDIAN_ENV_NAMES:
            continue
        if name.startswith("GUARDIAN_") and name.startswith(GUARDIAN_ENV_FAMILIES):
            continue
        prefixed = name.startswith(("AUTOPILOT_", "GUARDIAN_"))
        bare = _squash(name)
        for prefix in ("AUTOPILOT", "GUARDIAN"):
            if bare.startswith(prefix) and bare[len(prefix) :] in squashed:
                bare = bare[len(prefix) :]
        meant = squashed.get(bare)
        if not prefixed and meant is None:
            continue
        hint = f" (did you mean {meant}?)" if meant else ""
        raise ConfigError(
            f"environment variable {raw} is not a Network Guardian setting{hint}; "
            f"autopilot settings are {', '.join(valid)}; other GUARDIAN_ variables: "
            f"{', '.join(sorted(GUARDIAN_ENV_NAMES))} and "
            f"the families {', '.join(p + '*' for p in GUARDIAN_ENV_FAMILIES)}"
        )


def _settings_message(exc: ValidationError) -> str:
    """One line per bad setting, named as its environment variable."""
    lines = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else "<settings>"
        env = field.upper()
        bounds = HARD_LIMITS.get(field)
        limit = f" (hard limits {bounds[0]:g} to {bounds[1]:g})" if bounds else ""
        lines.append(f"autopilot setting {env}: {err['msg']}{limit}, got {err.get('input')!r}")
    return "\n".join(lines)
