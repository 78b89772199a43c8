"""Alertmanager semantics: silences, inhibition, a routing tree and aggregation groups.

:class:`Dispatcher` takes the alerts of each evaluation and returns the notifications due
at that instant (no threads, no wall clock: the caller passes ``now``).

* **Silences** mute matching alerts while active; so do the alerting file's scheduled
  **maintenance windows**.
* **Inhibition**: a firing alert matching an inhibit rule's ``source_matchers`` mutes the
  alerts matching its ``target_matchers`` that have the same values of the ``equal``
  labels (an alert matching both sides is never muted by itself).
* **Routing**: an alert walks the tree from the root; the first matching child takes it
  (``continue: true`` lets later siblings take it too); with no matching child the node
  itself takes it. Children inherit ``group_by`` and the intervals.
* **Grouping**: per (route, values of ``group_by``) an aggregation group waits
  ``group_wait`` after its first alert, then is flushed every ``group_interval``; a flush
  notifies when the group changed (a new firing alert, a resolved one) or, unchanged,
  when ``repeat_interval`` passed since the last notification.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from guardian_lib.alerts.config import AlertingConfig, InhibitRule, Route
from guardian_lib.alerts.rules import Alert, alert_from_dict
from guardian_lib.alerts.silences import SilenceStore
from guardian_lib.matchers import labels_match

__all__ = ["Notification", "Dispatcher", "RouteNode", "build_routes", "inhibited"]


@dataclass(frozen=True)
class RouteNode:
    """A route with its inherited settings resolved."""

    path: str
    receiver: str
    matchers: dict[str, str]
    group_by: tuple[str, ...]
    group_wait_s: float
    group_interval_s: float
    repeat_interval_s: float
    continue_: bool
    children: tuple[RouteNode, ...]


def build_routes(route: Route, parent: RouteNode | None = None, path: str = "route") -> RouteNode:
    """Resolve inheritance down the tree (defaults: 30 s, 5 min, 4 h, no grouping)."""

    def pick(own, inherited, default):
        return own if own is not None else (inherited if inherited is not None else default)

    p = parent
    node = RouteNode(
        path=path,
        receiver=pick(route.receiver, p and p.receiver, "null"),
        matchers=dict(route.matchers),
        group_by=tuple(pick(route.group_by, p and p.group_by, ())),
        group_wait_s=pick(route.group_wait_s, p and p.group_wait_s, 30.0),
        group_interval_s=pick(route.group_interval_s, p and p.group_interval_s, 300.0),
        repeat_interval_s=pick(route.repeat_interval_s, p and p.repeat_interval_s, 14400.0),
        continue_=route.continue_,
        children=(),
    )
    kids = tuple(build_routes(c, node, f"{path}.routes[{i}]") for i, c in enumerate(route.routes))
    return RouteNode(**{**node.__dict__, "children": kids})


def _match_routes(node: RouteNode, labels: dict[str, str]) -> list[RouteNode]:
    if not labels_match(labels, node.matchers):
        return []
    out: list[RouteNode] = []
    for child in node.children:
        got = _match_routes(child, labels)
        if got:
            out.extend(got)
            if not child.continue_:
                break
    return out or [node]


def inhibited(alerts: list[Alert], rules: list[InhibitRule]) -> set[str]:
    """Fingerprints of the alerts muted by a firing source alert."""
    muted: set[str] = set()
    for rule in rules:
        sources = [a for a in alerts if a.firing and labels_match(a.labels, rule.source_matchers)]
        if not sources:
            continue
        keys = {tuple(s.labels.get(e, "") for e in rule.equal) for s in sources}
        for a in alerts:
            if a.fingerprint in muted or not labels_match(a.labels, rule.target_matchers):
                continue
            if labels_match(a.labels, rule.source_matchers):
                continue  # never muted by its own kind
            if tuple(a.labels.get(e, "") for e in rule.equal) in keys:
                muted.add(a.fingerprint)
    return muted


@dataclass(frozen=True)
class Notification:
    """What one receiver is told about one group at one flush."""

    receiver: str
    group_key: str
    group_labels: dict[str, str]
    ts: pd.Timestamp
    alerts: tuple[Alert, ...]

    @property
    def status(self) -> str:
        """``firing`` if any alert fires, else ``resolved``."""
        return "firing" if any(a.firing for a in self.alerts) else "resolved"

    @property
    def key(self) -> str:
        """Idempotency key: receiver, group, flush time and alert states."""
        parts = [self.receiver, self.group_key, self.ts.isoformat()]
        parts += sorted(f"{a.fingerprint}:{'f' if a.firing else 'r'}" for a in self.alerts)
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        """The webhook body (Alertmanager's webhook shape plus ``idempotencyKey``)."""
        return {
            "version": "4",
            "receiver": self.receiver,
            "status": self.status,
            "groupKey": self.group_key,
            "groupLabels": dict(sorted(self.group_labels.items())),
            "timestamp": self.ts.isoformat(),
            "idempotencyKey": self.key,
            "alerts": [a.to_dict() for a in self.alerts],
        }

    def to_json(self) -> str:
        """Canonical JSON of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)


@dataclass
class _Group:
    route: RouteNode
    labels: dict[str, str]
    next_flush: pd.Timestamp
    alerts: dict[str, Alert] = field(default_factory=dict)
    sent: dict[str, bool] = field(default_factory=dict)  # fingerprint → firing when last sent
    last_sent: pd.Timestamp | None = None


class Dispatcher:
    """Silence, inhibit, route and group alerts into notifications.

    Parameters
    ----------
    config : AlertingConfig
    silences : SilenceStore, optional
    """

    def __init__(self, config: AlertingConfig, silences: SilenceStore | None = None) -> None:
        self.config = config
        self.silences = silences if silences is not None else SilenceStore()
        self.root = build_routes(config.route)
        self._groups: dict[str, _Group] = {}
        #: Counts of what was muted, by reason.
        self.muted = {"silenced": 0, "inhibited": 0, "maintenance": 0}

    def state_dict(self) -> dict[str, Any]:
        """The aggregation groups (alerts, what was told, next flush), JSON-ready."""
        return {
            gkey: {"route": g.route.path, "receiver": g.route.receiver, "labels": g.labels,
                   "next_flush": g.next_flush.isoformat(),
                   "alerts": [a.to_state() for a in g.alerts.values()], "sent": g.sent,
                   "last_sent": None if g.last_sent is None else g.last_sent.isoformat()}
            for gkey, g in self._groups.items()
        }  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`: a firing group already notified is not notified
        again (only changes and ``repeat_interval``). Groups of a route that no longer
        exists, or now goes to another receiver, are dropped (their alerts regroup)."""
        nodes: dict[str, RouteNode] = {}

        def walk(n: RouteNode) -> None:
            nodes[n.path] = n
            for c in n.children:
                walk(c)

        walk(self.root)
        self._groups = {}
        for gkey, g in state.items():
            node = nodes.get(g["route"])
            if node is None or node.receiver != g["receiver"]:
                continue
            alerts = [alert_from_dict(a) for a in g["alerts"]]
            self._groups[gkey] = _Group(
                node, dict(g["labels"]), pd.Timestamp(g["next_flush"]),
                {a.fingerprint: a for a in alerts}, {k: bool(v) for k, v in g["sent"].items()},
                None if g["last_sent"] is None else pd.Timestamp(g["last_sent"]),
            )  # fmt: skip

    def _send_resolved(self, receiver: str) -> bool:
        r = self.config.receiver(receiver)
        return True if r is None else r.send_resolved

    def step(self, now: pd.Timestamp, alerts: Iterable[Alert]) -> list[Notification]:
        """Take the alerts of one evaluation; return the notifications due at ``now``."""
        alerts = list(alerts)
        muted = inhibited(alerts, self.config.inhibit_rules)
        active = self.silences.active(now)
        live: list[Alert] = []
        for a in alerts:
            if a.fingerprint in muted:
                self.muted["inhibited"] += 1
            elif any(s.mutes(a.labels, now) for s in active):
                self.muted["silenced"] += 1
            elif any(w.mutes(a.labels, now) for w in self.config.maintenance_windows):
                self.muted["maintenance"] += 1
            else:
                live.append(a)
        present: dict[str, set[str]] = {}
        for a in live:
            for node in _match_routes(self.root, a.labels):
                glabels = {k: a.labels.get(k, "") for k in node.group_by}
                gkey = f"{node.path}:" + json.dumps(glabels, sort_keys=True)
                g = self._groups.get(gkey)
                if g is None:
                    g = self._groups[gkey] = _Group(
                        node, glabels, now + pd.Timedelta(seconds=node.group_wait_s)
                    )
                g.alerts[a.fingerprint] = a
                present.setdefault(gkey, set()).add(a.fingerprint)
        # A firing alert no longer given (muted, or gone without resolving) leaves its group.
        for gkey, g in self._groups.items():
            for fp in list(g.alerts):
                if fp not in present.get(gkey, set()) and g.alerts[fp].firing:
                    del g.alerts[fp]
                    g.sent.pop(fp, None)
        out: list[Notification] = []
        for gkey in sorted(self._groups):
            g = self._groups[gkey]
            if now < g.next_flush:
                continue
            n = self._flush(gkey, g, now)
            if n is not None:
                out.append(n)
            if not g.alerts:
                del self._groups[gkey]
        return out

    def _flush(self, gkey: str, g: _Group, now: pd.Timestamp) -> Notification | None:
        g.next_flush = now + pd.Timedelta(seconds=g.route.group_interval_s)
        send_resolved = self._send_resolved(g.route.receiver)
        shown = [
            a
            for a in g.alerts.values()
            if a.firing or (send_resolved and a.notify_resolved and a.fingerprint in g.sent)
        ]
        firing_now = {a.fingerprint for a in g.alerts.values() if a.firing}
        changed = any(g.sent.get(fp) is not True for fp in firing_now) or any(
            not a.firing and a.fingerprint in g.sent for a in shown
        )
        repeat = (
            firing_now
            and g.last_sent is not None
            and (now - g.last_sent).total_seconds() >= g.route.repeat_interval_s
        )
        for fp in [fp for fp, a in g.alerts.items() if not a.firing]:
            del g.alerts[fp]  # resolved alerts are told at most once
            g.sent.pop(fp, None)
        if not shown or not (changed or repeat):
            return None
        g.last_sent = now
        for fp in firing_now:
            g.sent[fp] = True
        shown.sort(key=lambda a: (not a.firing, a.labels.get("alertname", ""), a.fingerprint))
        return Notification(g.route.receiver, gkey, g.labels, now, tuple(shown))
