"""Rule evaluation: observations in, firing and resolved :class:`Alert` objects out.

Semantics follow Prometheus alerting rules. At each evaluation the engine is given, per
source, the observations that hold *now* (open incidents, the latest prediction per ONU,
health samples, events since the last evaluation). An observation that passes a rule's
``when`` makes an alert identified by the rule name and the observation's label fields;
it is *pending* until it has held for ``for``, then *firing*. When it stops matching (and
``keep_firing_for`` has passed) it is *resolved* once, with ``ends_at``.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from guardian_lib.alerts.config import AlertingConfig, Rule

__all__ = ["Alert", "RuleEngine", "render_summary", "fingerprint", "alert_from_dict"]


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex id of a label set."""
    text = "\x1f".join(f"{k}={labels[k]}" for k in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _Lenient(string.Formatter):
    """``str.format`` that leaves unknown fields and bad formats visible instead of failing."""

    def get_value(self, key, args, kwargs):  # noqa: D401 - Formatter API
        return kwargs.get(key, "{" + str(key) + "}")

    def format_field(self, value, format_spec):
        try:
            return super().format_field(value, format_spec)
        except (TypeError, ValueError):
            return str(value)


def render_summary(template: str, values: Mapping[str, Any]) -> str:
    """Fill a rule's summary from an observation (missing fields stay as ``{name}``)."""
    try:
        return _Lenient().format(template, **values)
    except (IndexError, ValueError):
        return template


@dataclass(frozen=True)
class Alert:
    """One alert instance.

    Attributes
    ----------
    labels : dict
        Identity: ``alertname``, ``severity``, the rule's labels and label fields.
    starts_at : pandas.Timestamp
        When it started firing (UTC).
    ends_at : pandas.Timestamp or None
        When it resolved (None while firing).
    summary : str
    values : dict
        The observation's numeric values when last seen (e.g. ``affected_customers``).
    notify_resolved : bool
    """

    labels: dict[str, str]
    starts_at: pd.Timestamp
    ends_at: pd.Timestamp | None = None
    summary: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    notify_resolved: bool = True

    @property
    def fingerprint(self) -> str:
        """Stable id of the label set."""
        return fingerprint(self.labels)

    @property
    def firing(self) -> bool:
        """Not resolved."""
        return self.ends_at is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (Alertmanager's field names)."""
        return {
            "status": "firing" if self.firing else "resolved",
            "labels": dict(sorted(self.labels.items())),
            "annotations": {"summary": self.summary},
            "startsAt": self.starts_at.isoformat(),
            "endsAt": None if self.ends_at is None else self.ends_at.isoformat(),
            "fingerprint": self.fingerprint,
            "values": {k: _plain(v) for k, v in sorted(self.values.items())},
        }

    def to_state(self) -> dict[str, Any]:
        """:meth:`to_dict` plus what a restart needs (:func:`alert_from_dict` reads it)."""
        return {**self.to_dict(), "notify_resolved": self.notify_resolved}


def alert_from_dict(d: Mapping[str, Any]) -> Alert:
    """The :class:`Alert` of :meth:`Alert.to_dict` (persisted state)."""
    return Alert(
        labels=dict(d["labels"]),
        starts_at=pd.Timestamp(d["startsAt"]),
        ends_at=None if d.get("endsAt") is None else pd.Timestamp(d["endsAt"]),
        summary=d.get("annotations", {}).get("summary", ""),
        values=dict(d.get("values", {})),
        notify_resolved=bool(d.get("notify_resolved", True)),
    )


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


@dataclass
class _State:
    alert: Alert
    active_since: pd.Timestamp
    last_match: pd.Timestamp
    fired: bool = False


class RuleEngine:
    """Evaluates a config's rules over time (state kept between calls).

    Parameters
    ----------
    config : AlertingConfig
    """

    def __init__(self, config: AlertingConfig) -> None:
        self.config = config
        self._states: dict[tuple[str, str], _State] = {}
        #: Every alert that ever fired (``(fingerprint, starts_at)`` → alert), for replays.
        self.fired: list[Alert] = []

    def state_dict(self) -> list[dict[str, Any]]:
        """Pending and firing alerts with their timers (JSON-ready), for a restart."""
        return [
            {"rule": rule, "alert": st.alert.to_state(), "active_since": st.active_since.isoformat(),
             "last_match": st.last_match.isoformat(), "fired": st.fired}
            for (rule, _), st in self._states.items()
        ]  # fmt: skip

    def load_state_dict(self, states: Iterable[Mapping[str, Any]]) -> None:
        """Restore :meth:`state_dict`: ``for:`` timers go on from when the condition was
        first seen; alerts of rules no longer in the config are dropped."""
        names = {r.name for r in self.config.rules}
        self._states = {}
        for s in states:
            if s["rule"] not in names:
                continue
            a = alert_from_dict(s["alert"])
            self._states[(s["rule"], a.fingerprint)] = _State(
                a, pd.Timestamp(s["active_since"]), pd.Timestamp(s["last_match"]), bool(s["fired"])
            )

    def _alert(self, rule: Rule, obs: Mapping[str, Any], ts: pd.Timestamp) -> Alert:
        labels = {"alertname": rule.name, "severity": rule.severity, **rule.labels}
        for f in rule.label_fields:
            v = obs.get(f)
            if v is not None and not (isinstance(v, float) and pd.isna(v)):
                labels[f] = str(v)
        values = {k: v for k, v in obs.items() if k not in labels and k != "ts"}
        return Alert(
            labels=labels,
            starts_at=ts,
            summary=render_summary(rule.summary, obs),
            values=values,
            notify_resolved=rule.notify_resolved,
        )

    def evaluate(
        self, now: pd.Timestamp, observations: Mapping[str, Iterable[Mapping[str, Any]]]
    ) -> list[Alert]:
        """One evaluation.

        Parameters
        ----------
        now : pandas.Timestamp
            Evaluation time (UTC).
        observations : mapping
            Source name → the observations that hold now (dicts of labels and values).

        Returns
        -------
        list of Alert
            The firing alerts, then the alerts resolved at this evaluation.
        """
        obs_by_source = {s: list(v) for s, v in observations.items()}
        seen: set[tuple[str, str]] = set()
        for rule in self.config.rules:
            for obs in obs_by_source.get(rule.source, ()):
                if not all(c.holds(obs) for c in rule.when):
                    continue
                a = self._alert(rule, obs, now)
                key = (rule.name, a.fingerprint)
                seen.add(key)
                st = self._states.get(key)
                if st is None:
                    self._states[key] = _State(a, now, now)
                else:
                    st.last_match = now
                    st.alert = replace(st.alert, summary=a.summary, values=a.values)
        firing: list[Alert] = []
        resolved: list[Alert] = []
        rules = {r.name: r for r in self.config.rules}
        for key, st in list(self._states.items()):
            rule = rules[key[0]]
            held = (now - st.last_match).total_seconds() <= rule.keep_firing_for_s
            if key in seen or held:
                if not st.fired and (now - st.active_since).total_seconds() >= rule.for_s:
                    st.fired = True
                    st.alert = replace(st.alert, starts_at=now)
                    self.fired.append(st.alert)
                if st.fired:
                    firing.append(st.alert)
                continue
            del self._states[key]
            if st.fired:
                resolved.append(replace(st.alert, ends_at=now))
        return firing + resolved
