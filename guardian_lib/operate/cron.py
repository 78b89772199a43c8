"""Five-field cron expressions (``minute hour day-of-month month day-of-week``).

Each field is ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma
list of those; day-of-week is 0–7 (0 and 7 are Sunday) or ``sun``…``sat``, months 1–12
or ``jan``…``dec``. As in cron, when both day fields are restricted a day matches if
either does. :meth:`CronSchedule.previous` gives the latest firing time at or before a
moment (the *period* a scheduled job belongs to), :meth:`CronSchedule.next` the first
after it; both in the schedule's time zone, returned in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

__all__ = ["CronError", "CronSchedule"]

_NAMES = {
    3: {m: i + 1 for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())},
    4: {d: i for i, d in enumerate("sun mon tue wed thu fri sat".split())},
}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
#: Farthest a search looks (a day-of-month such as 31 in February never matches). [days]
_HORIZON_DAYS = 4 * 366


class CronError(ValueError):
    """A cron expression or time zone that cannot be used (names the field)."""


def _value(text: str, i: int) -> int:
    t = text.lower()
    if t in _NAMES.get(i, {}):
        return _NAMES[i][t]
    if not t.isdigit():
        raise CronError(f"{_FIELDS[i]}: {text!r} is not a number")
    v = int(t)
    lo, hi = _BOUNDS[i]
    if not lo <= v <= hi:
        raise CronError(f"{_FIELDS[i]}: {v} is outside {lo}-{hi}")
    return v


def _field(text: str, i: int) -> frozenset[int]:
    lo, hi = _BOUNDS[i]
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_txt = part.partition("/")
        step = 1
        if step_txt:
            if not step_txt.isdigit() or int(step_txt) < 1:
                raise CronError(f"{_FIELDS[i]}: step {step_txt!r} must be a positive number")
            step = int(step_txt)
        if rng == "*":
            a, b = lo, hi
        elif "-" in rng:
            a_txt, b_txt = rng.split("-", 1)
            a, b = _value(a_txt, i), _value(b_txt, i)
            if a > b:
                raise CronError(f"{_FIELDS[i]}: range {rng!r} runs backwards")
        else:
            a = _value(rng, i)
            b = hi if step_txt else a
        out.update(range(a, b + 1, step))
    if i == 4 and 7 in out:  # 7 is Sunday too
        out = (out - {7}) | {0}
    return frozenset(out)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression and its time zone.

    Parameters
    ----------
    expr : str
        Five fields, e.g. ``"0 7 * * mon"`` (Mondays at 07:00).
    timezone : str, default "UTC"
        IANA name of the zone the fields are read in (``America/Sao_Paulo``).
    """

    expr: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        parts = self.expr.split()
        if len(parts) != 5:
            raise CronError(
                f"expected 5 fields (minute hour day-of-month month day-of-week), got "
                f"{len(parts)} in {self.expr!r}"
            )
        fields = tuple(_field(p, i) for i, p in enumerate(parts))
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise CronError(f"timezone: unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "_f", fields)
        object.__setattr__(self, "_star", (parts[2] == "*", parts[4] == "*"))
        object.__setattr__(self, "_zone", zone)

    def _day_ok(self, d: datetime) -> bool:
        _, _, dom, month, dow = self._f
        if d.month not in month:
            return False
        dom_ok, dow_ok = d.day in dom, (d.isoweekday() % 7) in dow
        dom_star, dow_star = self._star
        if dom_star or dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def _utc(self, local: datetime) -> pd.Timestamp:
        return pd.Timestamp(local.replace(tzinfo=self._zone)).tz_convert("UTC")

    def previous(self, at: pd.Timestamp) -> pd.Timestamp | None:
        """Latest firing time at or before ``at`` (UTC), or None within four years."""
        local = pd.Timestamp(at).tz_convert(self._zone).to_pydatetime().replace(tzinfo=None)
        minutes, hours = sorted(self._f[0], reverse=True), sorted(self._f[1], reverse=True)
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for k in range(_HORIZON_DAYS):
            d = day - timedelta(days=k)
            if not self._day_ok(d):
                continue
            for h in hours:
                for m in minutes:
                    cand = d.replace(hour=h, minute=m)
                    if cand <= local:
                        return self._utc(cand)
        return None

    def next(self, at: pd.Timestamp) -> pd.Timestamp | None:
        """First firing time strictly after ``at`` (UTC), or None within four years."""
        local = pd.Timestamp(at).tz_convert(self._zone).to_pydatetime().replace(tzinfo=None)
        minutes, hours = sorted(self._f[0]), sorted(self._f[1])
        day = local.replace(hour=0, minute=0, second=0, microsecond=0)
        for k in range(_HORIZON_DAYS):
            d = day + timedelta(days=k)
            if not self._day_ok(d):
                continue
            for h in hours:
                for m in minutes:
                    cand = d.replace(hour=h, minute=m)
                    if cand > local:
                        return self._utc(cand)
        return None
