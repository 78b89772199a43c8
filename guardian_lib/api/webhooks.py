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

Deliveries are durable: each (event, subscription) is first written to an outbox
(:class:`~guardian_lib.alerts.outbox.Outbox`, ``webhooks_outbox.sqlite`` beside the
subscriptions file) and then tried; a failed one stays ``pending`` and is retried with
doubling back-off (:data:`WEBHOOK_BACKOFF_S` first, capped at 1 h), also after a restart,
until :data:`WEBHOOK_MAX_ATTEMPTS` tries make it ``dead``. Every try is signed anew (a
fresh timestamp) and carries the same ``X-Guardian-Delivery`` id, so a receiver can drop
a duplicate. :meth:`WebhookDispatcher.deliveries` lists them.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from guardian_lib.errors import GuardianError

__all__ = [
    "EVENT_KINDS",
    "OUTBOX_FILE",
    "WEBHOOK_BACKOFF_S",
    "WEBHOOK_KEEP_DAYS",
    "WEBHOOK_MAX_ATTEMPTS",
    "WEBHOOK_MAX_PENDING",
    "WebhookStore",
    "WebhookError",
    "WebhookDispatcher",
    "sign",
    "verify_signature",
    "webhook_target_error",
]

#: Kinds a subscription may ask for.
EVENT_KINDS = ("decision", "incident")
#: File of the delivery outbox, beside the subscriptions file.
OUTBOX_FILE = "webhooks_outbox.sqlite"
#: Wait after a delivery's first failure; doubles after each, capped at 1 h. [s]
WEBHOOK_BACKOFF_S = 30.0
#: Tries of one delivery before it is marked ``dead`` (about 5 h of retries). [-]
WEBHOOK_MAX_ATTEMPTS = 10


#: Finished (delivered or dead) deliveries are forgotten after this long. [days]
WEBHOOK_KEEP_DAYS = 7.0
#: Deliveries waiting at most; events beyond are dropped and counted. [-]
WEBHOOK_MAX_PENDING = 10_000


class WebhookError(GuardianError, ValueError):
    """A subscription is invalid or unknown (names the field)."""


def _local_address(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return (ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast
            or ip.is_reserved)  # fmt: skip


def webhook_target_error(url: str, allow_local: bool, at_delivery: bool = False) -> str | None:
    """Why a webhook may not be sent to ``url`` (None: it may).

    Refused unless ``allow_local`` (``guardian api --webhook-allow-local``): a host that is
    or resolves to a loopback, link-local (cloud metadata, 169.254.169.254), unspecified,
    multicast or reserved address — the API's own machine and its neighbours' control
    planes are not receivers. Private networks (10/8, 192.168/16, fc00::/7…) are allowed:
    an operator's receivers live there. Credentials in the URL are always refused (they
    would be logged). A name that does not resolve is accepted when subscribing (checked
    again at every delivery, which fails then).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "expected an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL are not accepted (the secret signs the body)"
    if allow_local:
        return None
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as exc:
        return f"cannot resolve {parts.hostname!r} ({exc})" if at_delivery else None
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if _local_address(ip):
            return (f"{parts.hostname} is a local address ({ip}); start guardian api with "
                    "--webhook-allow-local to allow it")  # fmt: skip
    return None


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


class _SignedPost:
    """The outbox receiver of one subscription: signs and POSTs a stored delivery."""

    def __init__(self, sub: dict[str, Any], post: Callable[[str, bytes, dict[str, str]], int]):
        self.sub, self.post = sub, post

    def send(self, key: str, payload: dict[str, Any]) -> str:
        body = payload["body"].encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-Guardian-Event": payload["event"],
                   "X-Guardian-Delivery": key, "X-Guardian-Timestamp": ts,
                   "X-Guardian-Signature": sign(self.sub["secret"], ts, body)}  # fmt: skip
        status = self.post(self.sub["url"], body, headers)
        if not 200 <= status < 300:
            raise RuntimeError(f"{self.sub['url']} answered HTTP {status}")
        return str(status)


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
        ``post(url, body, headers) -> int`` status (0 or an exception: no answer);
        defaults to httpx with a 10 s timeout.
    outbox : path, optional
        SQLite file of the deliveries (default ``webhooks_outbox.sqlite`` beside the
        subscriptions file).
    max_attempts : int, default WEBHOOK_MAX_ATTEMPTS
        Tries before a delivery is ``dead``. [-]
    backoff_s : float, default WEBHOOK_BACKOFF_S
        Wait after the first failure, doubling. [s]
    clock : callable, optional
        Current UTC time as a ``pandas.Timestamp`` (tests move it to skip the back-off).
    allow_local : bool, default False
        Let the default ``post`` reach local addresses (:func:`webhook_target_error`,
        checked again before every delivery: a name may resolve elsewhere by then).
    """

    def __init__(
        self,
        store: WebhookStore,
        approvals: Callable[[], list[dict[str, Any]] | None],
        incidents: Callable[[], list[dict[str, Any]]],
        post: Callable[[str, bytes, dict[str, str]], int] | None = None,
        outbox: str | Path | None = None,
        max_attempts: int = WEBHOOK_MAX_ATTEMPTS,
        backoff_s: float = WEBHOOK_BACKOFF_S,
        clock: Callable[[], Any] | None = None,
        allow_local: bool = False,
    ) -> None:
        self.store = store
        self.approvals = approvals
        self.incidents = incidents
        self.allow_local = allow_local
        self.post = post or functools.partial(_httpx_post, allow_local=allow_local)
        self.outbox_path = Path(outbox) if outbox else store.path.with_name(OUTBOX_FILE)
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.clock = clock
        self._seen_approvals: dict[int, str] | None = None
        self._seen_incidents: set[str] | None = None
        self.delivered = 0
        self.failed = 0
        self.dead = 0
        self.dropped = 0

    def _outbox(self) -> Any:
        from guardian_lib.alerts.outbox import Outbox

        # one connection per call: the dispatcher's thread and request threads both use it
        return Outbox(self.outbox_path, max_attempts=self.max_attempts,
                      backoff_s=self.backoff_s, clock=self.clock)  # fmt: skip

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
        """Queue the changes since the last look, then try every due delivery (new ones
        and failed ones whose back-off has passed).

        Returns
        -------
        int
            Deliveries that got a 2xx in this round. [-]
        """
        subs = self.store.subscriptions()
        kinds = {k for sub in subs for k in sub["events"]}
        if "decision" not in kinds:
            self._seen_approvals = None  # a later subscriber starts from its own baseline
        events = self._events(kinds)
        box = self._outbox()
        try:
            # bounded file: finished deliveries age out, removed subscriptions take theirs
            import pandas as pd

            now = self.clock() if self.clock else pd.Timestamp.now(tz="UTC")
            box.forget(now - pd.Timedelta(days=WEBHOOK_KEEP_DAYS), {s["id"] for s in subs})
            room = WEBHOOK_MAX_PENDING - box.pending()
            for kind, data in events:
                body = json.dumps({"event": kind, "data": data}, default=str, sort_keys=True)
                for sub in subs:
                    if kind.split(".")[0] in sub["events"]:
                        if room <= 0:
                            self.dropped += 1  # receivers down for long: drop, do not grow
                            continue
                        box.enqueue(uuid.uuid4().hex, sub["id"], {"event": kind, "body": body})
                        room -= 1
            receivers = {sub["id"]: _SignedPost(sub, self.post) for sub in subs}
            rep = box.deliver(receivers)
        finally:
            box.close()
        self.delivered += rep.delivered
        self.failed += rep.failed
        self.dead += rep.dead
        return rep.delivered

    def deliveries(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Deliveries, newest first: ``delivery_id``, ``webhook_id``, ``event``, ``status``
        (``pending``, ``delivered``, ``dead``), ``attempts``, ``next_attempt_at``,
        ``last_error`` (no body)."""
        if not self.outbox_path.exists():
            return []
        box = self._outbox()
        try:
            rows = box.rows(status, limit)
        finally:
            box.close()
        return [{"delivery_id": r["key"], "webhook_id": r["receiver"],
                 "event": r["payload"]["event"], "status": r["status"],
                 "attempts": r["attempts"], "created_at": r["created_at"],
                 "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending" else None,
                 "delivered_at": r["delivered_at"], "last_error": r["last_error"]}
                for r in rows]  # fmt: skip

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


def _httpx_post(url: str, body: bytes, headers: dict[str, str], allow_local: bool = False) -> int:
    import httpx

    why = webhook_target_error(url, allow_local, at_delivery=True)
    if why is not None:
        raise WebhookError(f"webhook {url[:80]}: refused, {why}")

    return httpx.post(url, content=body, headers=headers, timeout=10.0,
                      follow_redirects=False).status_code  # fmt: skip
