"""Safety limits between a policy's decisions and the devices.

:class:`SafetyGuard` is the single gate every automatic action passes. It checks, in
this order, and names the rule that blocks:

``kill_switch``
    A global stop: nothing automatic runs. On when ``KILL_SWITCH`` is set, while the
    file ``KILL_SWITCH_FILE`` exists, or once :meth:`SafetyGuard.engage_kill_switch`
    was called (e.g. by the ``SIGUSR1`` handler of :meth:`SafetyGuard.install_signal`).
    It is looked at on every check, so flipping it while the autopilot runs stops the
    very next action.
``empty_target``
    An action with no target, or a wildcard (``*``, ``all``), never runs.
``maintenance_window``
    No reboot, Wi-Fi change, technician visit or customer notice where a scheduled
    maintenance window is in force (``MAINTENANCE_FILE``, or the alerting file of
    ``guardian operate``); the verdict names the window
    (:mod:`~guardian_lib.decision.maintenance`).
``single_target``
    A reboot names exactly one device.
``active_outage``
    No reboot while the customer's PON or street box has an open outage incident.
``circuit_breaker``
    Automatic reboots pause when their verified success rate falls.
``reboot_cooldown``, ``max_reboots_per_day``
    Per device: ``REBOOT_COOLDOWN_MINUTES`` between reboots, ``MAX_REBOOTS_PER_DAY``
    in any 24 h.
``pon_rate_cap``, ``fleet_rate_cap``
    Reboots per PON and device actions over the fleet in any hour.

Device actions are spread by a seeded random jitter; limits are checked on the jittered
execution times, conservatively (any recorded time within one window of the new one
counts), so that no window of the limit's length, wherever it starts, ever holds more
than the cap.
"""

from __future__ import annotations

import signal
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from guardian_lib.actions.dispatcher import ActionResult
from guardian_lib.decision._types import BOOKKEEPING_ACTIONS, DEVICE_ACTIONS, Decision
from guardian_lib.decision.maintenance import (
    MAINTENANCE_BLOCKED_ACTIONS,
    MaintenanceCalendar,
    load_maintenance,
)
from guardian_lib.decision.settings import AutopilotSettings

__all__ = ["SafetyGuard", "Verdict", "RULES", "WILDCARD_TARGETS", "blocked_action"]

#: Names of the rules that can block an action, in the order they are checked.
RULES = (
    "kill_switch",
    "empty_target",
    "maintenance_window",
    "single_target",
    "active_outage",
    "circuit_breaker",
    "reboot_cooldown",
    "max_reboots_per_day",
    "pon_rate_cap",
    "fleet_rate_cap",
)
#: Targets that would mean "every device": always blocked.
WILDCARD_TARGETS = frozenset({"", "*", "all", "ALL", "any", "%"})
_DAY_S, _HOUR_S = 86400.0, 3600.0


@dataclass(frozen=True)
class Verdict:
    """Outcome of a safety check.

    Attributes
    ----------
    allowed : bool
    rule : str or None
        The rule that blocked (one of :data:`RULES`), ``None`` when allowed.
    execute_at : pandas.Timestamp or None
        When an allowed device action should run (decision time plus jitter).
    detail : str
        Human-readable reason.
    maintenance_window : str or None
        Name of the maintenance window that blocked (rule ``maintenance_window``).
    """

    allowed: bool
    rule: str | None
    execute_at: pd.Timestamp | None
    detail: str = ""
    maintenance_window: str | None = None


def blocked_action(verdict: Verdict, action: str, target: str, ts: pd.Timestamp) -> ActionResult:
    """The audit's ``actions`` row of an action the guard blocked (one shape everywhere).

    The autopilot (:class:`~guardian_lib.decision.engine.Autopilot`) and the send step of
    ``guardian operate --mode approve`` write blocked actions through this, so that the
    report, the dashboards and the API read one shape: status ``blocked``, ``result``
    ``{"rule": RULE}`` (plus ``"maintenance_window": NAME`` when a window blocked) and the
    verdict's detail as ``error``.

    Parameters
    ----------
    verdict : Verdict
        A refusal (``verdict.allowed`` is false).
    action, target : str
        The action type and the one target it was refused for.
    ts : pandas.Timestamp
        When it was refused (start and finish of the row). [UTC]
    """
    if verdict.allowed:
        raise ValueError(f"{action} {target}: the verdict allows it, nothing was blocked")
    result: dict[str, str] = {"rule": str(verdict.rule)}
    if verdict.maintenance_window is not None:
        result["maintenance_window"] = verdict.maintenance_window
    return ActionResult(action, target, "blocked", ts, ts, result=result, error=verdict.detail)


def _seconds(ts: pd.Timestamp | float) -> float:
    return float(ts) if isinstance(ts, int | float) else pd.Timestamp(ts).value / 1e9


class SafetyGuard:
    """Stateful gate enforcing the limits of :class:`AutopilotSettings`.

    Parameters
    ----------
    settings : AutopilotSettings, optional
        Defaults read the environment.
    rng : numpy.random.Generator, optional
        Jitter stream; defaults to ``default_rng(settings.jitter_seed)``.
    maintenance : MaintenanceCalendar, optional
        Defaults to the windows of ``settings.maintenance_file`` (none without one).

    Raises
    ------
    ConfigError
        The maintenance file is missing or invalid (naming the file and the field).
    """

    def __init__(
        self,
        settings: AutopilotSettings | None = None,
        rng: np.random.Generator | None = None,
        maintenance: MaintenanceCalendar | None = None,
    ) -> None:
        self.settings = settings or AutopilotSettings()
        self.maintenance = (
            maintenance
            if maintenance is not None
            else load_maintenance(self.settings.maintenance_file)
        )
        self.rng = rng if rng is not None else np.random.default_rng(self.settings.jitter_seed)
        self._by_target: dict[str, list[float]] = {}
        self._by_pon: dict[str, deque[float]] = {}
        self._fleet: deque[float] = deque()
        self._outcomes: deque[bool] = deque(maxlen=self.settings.breaker_window)
        self._breaker_until = -np.inf
        self.blocked: dict[str, int] = dict.fromkeys(RULES, 0)
        self._killed = False  # a plain flag: set from a signal handler, picklable

    # --- kill switch ----------------------------------------------------------------------
    def engage_kill_switch(self) -> None:
        """Block every automatic action from now on (until the process restarts)."""
        self._killed = True

    def kill_switch_on(self) -> bool:
        """Whether the kill switch is on: setting, engaged by signal, or the file exists."""
        s = self.settings
        if s.kill_switch or self._killed:
            return True
        return s.kill_switch_file is not None and s.kill_switch_file.exists()

    def install_signal(self, signum: int = signal.SIGUSR1) -> None:
        """Engage the kill switch when the process receives ``signum`` (main thread only).

        ``kill -USR1 <pid>`` then stops every automatic action at the next decision.
        """
        signal.signal(signum, lambda *_: self.engage_kill_switch())

    # --- circuit breaker ----------------------------------------------------------------
    def record_outcome(self, success: bool, now: pd.Timestamp | float) -> None:
        """Feed the breaker with a verified reboot outcome (trips it if needed)."""
        self._outcomes.append(bool(success))
        s = self.settings
        if len(self._outcomes) >= s.breaker_window:
            rate = sum(self._outcomes) / len(self._outcomes)
            if rate < s.breaker_min_success_rate:
                self._breaker_until = _seconds(now) + s.breaker_pause_minutes * 60
                self._outcomes.clear()

    def breaker_open(self, now: pd.Timestamp | float) -> bool:
        """Whether automatic reboots are paused at ``now``."""
        return _seconds(now) < self._breaker_until

    # --- the gate -------------------------------------------------------------------------
    def check(
        self,
        decision: Decision,
        now: pd.Timestamp | float,
        pon_id: str | None = None,
        outage: bool = False,
        places: Sequence[Mapping[str, str]] = (),
    ) -> Verdict:
        """Check one decision; an allowed device action is recorded against the limits.

        Parameters
        ----------
        decision : Decision
        now : pandas.Timestamp or float
            Decision time (UTC timestamp or epoch seconds). [s]
        pon_id : str, optional
            PON of the target device (for the per-PON cap).
        outage : bool, default False
            The target's PON or box has an open outage incident.
        places : sequence of mapping
            Labels of the ONUs the action touches (``onu``, ``pon``, ``olt``, ``region`` …,
            :func:`~guardian_lib.decision.maintenance.place_labels`), for maintenance windows.

        Returns
        -------
        Verdict
        """
        if decision.action in BOOKKEEPING_ACTIONS:
            return Verdict(True, None, None)
        s = self.settings
        t_now = _seconds(now)
        if self.kill_switch_on():
            return self._block("kill_switch", "global kill switch is on")
        targets = tuple(decision.targets)
        if not targets or any(str(t).strip() in WILDCARD_TARGETS for t in targets):
            return self._block("empty_target", f"targets {targets!r} are empty or a wildcard")
        if decision.action in MAINTENANCE_BLOCKED_ACTIONS and places:
            w = self.maintenance.covering(places, t_now)
            if w is not None:
                v = self._block("maintenance_window",
                                f"maintenance window {w.name!r} ({w.comment or 'no comment'}) "
                                f"covers {decision.subject} until {w.end.isoformat()}")  # fmt: skip
                return replace(v, maintenance_window=w.name)
        if decision.action not in DEVICE_ACTIONS:
            return Verdict(True, None, None)
        if len(targets) != 1:
            return self._block("single_target", f"a reboot names one device, got {len(targets)}")
        target = str(targets[0])
        if decision.action != "reboot":
            # A Wi-Fi profile change takes no service down: the reboot limits do not apply.
            return Verdict(True, None, None)
        if outage:
            return self._block("active_outage", f"{target}: PON/box {pon_id} has an open outage")
        if self.breaker_open(t_now):
            return self._block("circuit_breaker", "reboot success rate fell; paused")
        jitter_s = float(self.rng.uniform(0.0, s.jitter_max_seconds))
        if isinstance(now, int | float):
            execute_at = pd.Timestamp(t_now + jitter_s, unit="s", tz="UTC")
        else:
            execute_at = pd.Timestamp(now) + pd.Timedelta(seconds=jitter_s)
        t = execute_at.value / 1e9
        self._prune(t_now)
        past = self._by_target.get(target, [])
        cooldown_s = s.reboot_cooldown_minutes * 60
        if any(abs(t - x) < cooldown_s for x in past):
            return self._block("reboot_cooldown", f"{target}: rebooted less than cooldown ago")
        if sum(abs(t - x) < _DAY_S for x in past) >= s.max_reboots_per_day:
            return self._block("max_reboots_per_day", f"{target}: daily reboot limit reached")
        pon_key = str(pon_id)
        pon_q = self._by_pon.get(pon_key, deque())
        if sum(abs(t - x) < _HOUR_S for x in pon_q) >= s.max_reboots_per_pon_per_hour:
            return self._block("pon_rate_cap", f"{target}: PON {pon_key} hourly cap reached")
        if sum(abs(t - x) < _HOUR_S for x in self._fleet) >= s.max_actions_fleet_per_hour:
            return self._block("fleet_rate_cap", "fleet-wide hourly cap reached")
        self._by_target.setdefault(target, []).append(t)
        self._by_pon.setdefault(pon_key, deque()).append(t)
        self._fleet.append(t)
        return Verdict(True, None, execute_at)

    def reboot_holds(self, now: pd.Timestamp | float) -> dict[str, tuple[str, float]]:
        """Devices whose reboot :meth:`check` would refuse now for their own history.

        The standing per-device blocks a policy can plan with: ``reboot_cooldown`` (a
        reboot less than ``REBOOT_COOLDOWN_MINUTES`` ago) and ``max_reboots_per_day``
        (the daily limit reached in the last 24 h), over the reboots this guard
        recorded. Nothing is recorded or counted as blocked; :meth:`check` stays the
        final word (jitter, caps, kill switch and breaker are not predicted here).

        Parameters
        ----------
        now : pandas.Timestamp or float
            Decision time (UTC timestamp or epoch seconds). [s]

        Returns
        -------
        dict
            ``target → (rule, until)``: the rule that holds its reboot and the epoch
            time from which that rule no longer does. [s]
        """
        s = self.settings
        t_now = _seconds(now)
        cooldown_s = s.reboot_cooldown_minutes * 60
        per_day = int(s.max_reboots_per_day)
        out: dict[str, tuple[str, float]] = {}
        for target, past in self._by_target.items():
            if not past:
                continue
            last = max(past)
            if t_now < last + cooldown_s:
                out[target] = ("reboot_cooldown", last + cooldown_s)
                continue
            day = sorted(x for x in past if abs(t_now - x) < _DAY_S)
            if len(day) >= per_day:
                # the limit lifts once all but per_day - 1 of them are a day old
                until = day[-per_day] + _DAY_S if per_day > 0 else np.inf
                out[target] = ("max_reboots_per_day", until)
        return out

    def _block(self, rule: str, detail: str) -> Verdict:
        self.blocked[rule] += 1
        return Verdict(False, rule, None, detail)

    def _prune(self, t_now: float) -> None:
        """Forget executions that can no longer count against any limit."""
        horizon = t_now - max(_DAY_S, self.settings.reboot_cooldown_minutes * 60) - 1.0
        hour = t_now - _HOUR_S - 1.0
        while self._fleet and self._fleet[0] < hour:
            self._fleet.popleft()
        for q in self._by_pon.values():
            while q and q[0] < hour:
                q.popleft()
        if len(self._by_target) > 4096:
            self._by_target = {
                k: [x for x in v if x >= horizon]
                for k, v in self._by_target.items()
                if any(x >= horizon for x in v)
            }
