"""Webhook subscriptions: HMAC-signed deliveries of decision and incident events.

An admin subscribes a URL to event kinds (``decision``, ``incident``) through
``POST /api/v1/webhooks``; the answer carries the subscription's signing secret, once.
Subscriptions live in a JSON file (mode 0600; the secrets must be readable to sign, so
the file is the operator's own, like the users file).

:class:`WebhookDispatcher` compares operate's approval queue and the open incidents with
what it saw last time and POSTs one JSON body per change to every subscription of that
kind: ``decision.proposed``, ``decision.approved``, ``decision.rejected``,
``decision.executed``, ``decision.failed``, ``incident.opened``, ``incident.closed``.
The first look only sets the baseline (history is not replayed).

Each delivery has the headers ``X-Guardian-Event``, ``X-Guardian-Delivery`` (a unique
id), ``X-Guardian-Timestamp`` (Unix seconds) and ``X-Guardian-Signature:
sha256=<hex>``, the HMAC-SHA256 of ``<timestamp>.<body>`` with the subscription's secret.
A receiver recomputes it (:func:`verify_signature`), compares in constant time and
rejects old timestamps (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from guardian_lib.errors import GuardianError

__all__ = [
    "EVENT_KINDS",
    "WebhookStore",
    "WebhookError",
    "WebhookDispatcher",
    "sign",
    "verify_signature",
]

#: Kinds a subscription may ask for.
EVENT_KINDS = ("decision", "incident")


class WebhookError(GuardianError, ValueError):
    """A subscription is invalid or unknown (names the field)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` HMAC of ``<timestamp>.<body>`` with ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    max_age_s: float = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``signature`` is ours for this body and the timestamp is recent.

    Parameters
    ----------
    max_age_s : float, default 300
        Oldest accepted delivery (replay window). [s]
    """
    try:
        age = (time.time() if now is None else now) - float(timestamp)
    except ValueError:
        return False
    if abs(age) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookStore:
    """Subscriptions in a 0600 JSON file.

    Parameters
    ----------
    path : path
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text(encoding="utf-8"))

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def add(self, url: str, events: list[str], owner: str) -> dict[str, Any]:
        """Subscribe ``url``; returns the subscription with its secret (shown once)."""
        if not url.startswith(("http://", "https://")) or len(url) > 2000:
            raise WebhookError(f"url: expected an http(s) URL, got {url[:80]!r}")
        bad = [e for e in events if e not in EVENT_KINDS]
        if bad or not events:
            raise WebhookError(f"events: expected some of {EVENT_KINDS}, got {events!r}")
        sub = {"id": uuid.uuid4().hex[:12], "url": url, "events": sorted(set(events)),
               "secret": secrets.token_urlsafe(32), "owner": owner,
               "created_at": time.time()}  # fmt: skip
        with self._lock:
            data = self._read()
            data[sub["id"]] = sub
            self._write(data)
        return sub

    def list(self) -> list[dict[str, Any]]:
        """Subscriptions without their secrets."""
        return [{k: v for k, v in s.items() if k != "secret"} for s in self._read().values()]

    def subscriptions(self) -> list[dict[str, Any]]:
        """Subscriptions with their secrets (for signing)."""
        return list(self._read().values())

    def remove(self, sub_id: str) -> None:
        """Delete a subscription."""
        with self._lock:
            data = self._read()
            if sub_id not in data:
                raise WebhookError(f"no webhook subscription {sub_id!r}")
            del data[sub_id]
            self._write(data)


class WebhookDispatcher:
    """Turns changes of the approval queue and of open incidents into signed deliveries.

    Parameters
    ----------
    store : WebhookStore
    approvals : callable
        Returns operate's approval rows (``id``, ``status``, ``action``, ``target``…);
        None when there is no queue.
    incidents : callable
        Returns the open incidents as dict rows (``incident_id``…); may raise to skip
        a round (the audit file is busy).
    post : callable, optional
        ``post(url, body, headers) -> int`` status; defaults to httpx with a 10 s timeout.
    retries : int, default 2
        Extra attempts of a failed delivery within one round. [-]
    """

    def __init__(
        self,
        store: WebhookStore,
        approvals: Callable[[], list[dict[str, Any]] | None],
        incidents: Callable[[], list[dict[str, Any]]],
        post: Callable[[str, bytes, dict[str, str]], int] | None = None,
        retries: int = 2,
    ) -> None:
        self.store = store
        self.approvals = approvals
        self.incidents = incidents
        self.post = post or _httpx_post
        self.retries = retries
        self._seen_approvals: dict[int, str] | None = None
        self._seen_incidents: set[str] | None = None
        self.delivered = 0
        self.failed = 0

    def _events(self, kinds: set[str]) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        rows = self.approvals() if "decision" in kinds else None
        if rows is not None:
            now = {int(r["id"]): str(r["status"]) for r in rows}
            if self._seen_approvals is not None:
                for r in rows:
                    status = "proposed" if r["status"] == "pending" else r["status"]
                    if self._seen_approvals.get(int(r["id"])) != r["status"]:
                        out.append((f"decision.{status}", _public(r)))
            self._seen_approvals = now
        if "incident" not in kinds:
            # nobody listens: do not even open the audit file (operate's own)
            self._seen_incidents = None
            return out
        try:
            open_now = {str(i["incident_id"]): i for i in self.incidents()}
        except GuardianError:
            return out  # audit busy: look again next round
        if self._seen_incidents is not None:
            for iid, row in open_now.items():
                if iid not in self._seen_incidents:
                    out.append(("incident.opened", row))
            for iid in self._seen_incidents - set(open_now):
                out.append(("incident.closed", {"incident_id": iid}))
        self._seen_incidents = set(open_now)
        return out

    def poll_once(self) -> int:
        """Look for changes and deliver them; returns the number of deliveries made."""
        subs = self.store.subscriptions()
        kinds = {k for sub in subs for k in sub["events"]}
        if "decision" not in kinds:
            self._seen_approvals = None  # a later subscriber starts from its own baseline
        events = self._events(kinds)
        made = 0
        for kind, data in events:
            body = json.dumps({"event": kind, "data": data}, default=str, sort_keys=True).encode()
            for sub in subs:
                if kind.split(".")[0] not in sub["events"]:
                    continue
                ts = str(int(time.time()))
                headers = {"Content-Type": "application/json", "X-Guardian-Event": kind,
                           "X-Guardian-Delivery": uuid.uuid4().hex,
                           "X-Guardian-Timestamp": ts,
                           "X-Guardian-Signature": sign(sub["secret"], ts, body)}  # fmt: skip
                for attempt in range(self.retries + 1):
                    try:
                        status = self.post(sub["url"], body, headers)
                    except Exception:  # noqa: BLE001 - a receiver's failure must not stop us
                        status = 0
                    if 200 <= status < 300:
                        self.delivered += 1
                        made += 1
                        break
                    time.sleep(min(2.0, 0.2 * 2**attempt))
                else:
                    self.failed += 1
        return made

    def run(self, stop: threading.Event, every_s: float = 5.0) -> None:
        """Poll every ``every_s`` seconds until ``stop`` is set. [s]"""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:  # noqa: BLE001 - keep delivering after one bad round
                pass
            stop.wait(every_s)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("id", "ts", "action", "subject", "target", "pon_id", "status", "decided_by",
            "decided_at", "comment")  # fmt: skip
    return {k: row.get(k) for k in keep}


def _httpx_post(url: str, body: bytes, headers: dict[str, str]) -> int:
    import httpx

    return httpx.post(url, content=body, headers=headers, timeout=10.0,
                      follow_redirects=False).status_code  # fmt: skip
