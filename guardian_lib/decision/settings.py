"""Autopilot settings, validated by pydantic-settings and overridable by environment.

Every field reads the environment variable of the same name in upper case, e.g.
``AUTOPILOT_MODE=execute``, ``REBOOT_COOLDOWN_MINUTES=360``, ``MAX_REBOOTS_PER_DAY=2``,
``COST_PER_VISIT=150``, ``KILL_SWITCH=true``. ``simulate`` (the default) decides and
audits but never touches a device.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from guardian_lib.schema import VISIT_COST_BRL

__all__ = ["AutopilotSettings"]


class AutopilotSettings(BaseSettings):
    """Safety limits and mode of the autopilot.

    Attributes
    ----------
    autopilot_mode : {'simulate', 'execute'}
        ``simulate``: decide and audit only; ``execute``: call the injected executors.
    reboot_cooldown_minutes : float
        Minimum time between two automatic reboots of the same device. [min]
    max_reboots_per_day : int
        Automatic reboots of one device in any rolling 24 h. [-]
    cost_per_visit : float
        Cost of one technician visit. [R$]
    max_reboots_per_pon_per_hour : int
        Automatic reboots under one PON in any rolling hour. [-]
    max_actions_fleet_per_hour : int
        Automatic device actions over the whole fleet in any rolling hour. [-]
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
    """

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

    autopilot_mode: Literal["simulate", "execute"] = "simulate"
    reboot_cooldown_minutes: Annotated[float, Field(ge=0)] = 360.0
    max_reboots_per_day: Annotated[int, Field(ge=0)] = 2
    cost_per_visit: Annotated[float, Field(ge=0)] = VISIT_COST_BRL
    max_reboots_per_pon_per_hour: Annotated[int, Field(ge=0)] = 4
    max_actions_fleet_per_hour: Annotated[int, Field(ge=0)] = 60
    jitter_max_seconds: Annotated[float, Field(ge=0, le=3600)] = 60.0
    jitter_seed: int = 0
    breaker_window: Annotated[int, Field(ge=1)] = 10
    breaker_min_success_rate: Annotated[float, Field(ge=0, le=1)] = 0.3
    breaker_pause_minutes: Annotated[float, Field(ge=0)] = 120.0
    kill_switch: bool = False
