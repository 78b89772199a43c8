"""Save and restore the autopilot's memory (cases, incidents, safety limits) for restarts.

Kept apart from :class:`~guardian_lib.decision.engine.Autopilot` so that the engine
stays about deciding; the functions read and write its documented attributes.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

from guardian_lib.decision.engine import Autopilot
from guardian_lib.decision.safety import SafetyGuard

__all__ = ["save_autopilot_state", "load_autopilot_state"]

_AUTOPILOT_KEYS = ("cases", "incidents", "_pending", "_n_cases", "counts")


def _guard_state(guard: SafetyGuard) -> dict[str, Any]:
    return {
        "by_target": {k: list(v) for k, v in guard._by_target.items()},
        "by_pon": {k: list(v) for k, v in guard._by_pon.items()},
        "fleet": list(guard._fleet),
        "outcomes": list(guard._outcomes),
        "breaker_until": float(guard._breaker_until),
        "blocked": dict(guard.blocked),
        "rng": copy.deepcopy(guard.rng.bit_generator.state),
    }


def _load_guard(guard: SafetyGuard, s: dict[str, Any]) -> None:
    guard._by_target = {k: list(v) for k, v in s["by_target"].items()}
    guard._by_pon = {k: deque(v) for k, v in s["by_pon"].items()}
    guard._fleet = deque(s["fleet"])
    guard._outcomes = deque(s["outcomes"], maxlen=guard.settings.breaker_window)
    guard._breaker_until = float(s["breaker_until"])
    guard.blocked = {**dict.fromkeys(guard.blocked, 0), **s["blocked"]}
    guard.rng.bit_generator.state = copy.deepcopy(s["rng"])


def save_autopilot_state(autopilot: Autopilot) -> dict[str, Any]:
    """Open cases and incidents, pending reboot verifications, decision counts and the
    safety guard's memory (cooldowns, daily and per-PON caps, breaker, jitter stream).

    Returns
    -------
    dict
        Deep copies (picklable).
    """
    out = {k: copy.deepcopy(getattr(autopilot, k)) for k in _AUTOPILOT_KEYS}
    out["guard"] = _guard_state(autopilot.guard)
    return out


def load_autopilot_state(autopilot: Autopilot, state: dict[str, Any]) -> None:
    """Restore :func:`save_autopilot_state` output into ``autopilot``."""
    missing = [k for k in (*_AUTOPILOT_KEYS, "guard") if k not in state]
    if missing:
        raise KeyError(f"load_autopilot_state: saved state lacks {missing}")
    for k in _AUTOPILOT_KEYS:
        setattr(autopilot, k, copy.deepcopy(state[k]))
    _load_guard(autopilot.guard, state["guard"])
