"""Receivers that really deliver: e-mail over SMTP and signed JSON webhooks.

Both take the payload of a :class:`~guardian_lib.alerts.dispatch.Notification`
(``Notification.to_dict()``) and the outbox's idempotency key.

* :class:`EmailReceiver` — :mod:`smtplib`, optional STARTTLS and login; the key becomes
  the ``Message-ID`` so that a resent message can be recognised.
* :class:`WebhookReceiver` — POST of the canonical JSON body with
  ``X-Guardian-Signature: sha256=<HMAC-SHA256(secret, body)>`` and ``Idempotency-Key``;
  retries connection errors, 429 and 5xx with doubling backoff; other 4xx fail at once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from guardian_lib.alerts.config import AlertingConfig, EmailSettings, WebhookSettings
from guardian_lib.alerts.messages import email_text
from guardian_lib.secrets import read_secret

__all__ = [
    "SIGNATURE_HEADER",
    "EmailReceiver",
    "WebhookReceiver",
    "sign",
    "verify_signature",
    "build_receivers",
]

#: The webhook signature header.
SIGNATURE_HEADER = "X-Guardian-Signature"


def sign(secret: bytes, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of body>``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time comparison)."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class EmailReceiver:
    """Send notifications by SMTP.

    Parameters
    ----------
    settings : EmailSettings
    password : str, optional
        Login password (with ``settings.username``).
    """

    def __init__(self, settings: EmailSettings, password: str | None = None) -> None:
        self.settings = settings
        self.password = password

    def send(self, key: str, payload: dict[str, Any]) -> str:
        """Send one e-mail; returns ``"250"`` (raises on any SMTP error)."""
        subject, body = email_text(payload)
        return self.send_text(key, subject, body)

    def send_text(
        self,
        key: str,
        subject: str,
        body: str,
        attachments: tuple[Path, ...] = (),
        to: list[str] | None = None,
    ) -> str:
        """Send an e-mail with files attached (a scheduled report); returns ``"250"``.

        Parameters
        ----------
        key : str
            Idempotency key, sent as the ``Message-ID``.
        attachments : tuple of Path
            Files attached with the MIME type of their extension.
        to : list of str, optional
            Recipients instead of the receiver's ``to``.
        """
        import mimetypes

        s = self.settings
        msg = EmailMessage()
        msg["Subject"], msg["From"], msg["To"] = subject, s.sender, ", ".join(to or s.to)
        msg["Message-ID"] = f"<{key}@network-guardian>"
        msg.set_content(body)
        for path in attachments:
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            main, sub = mime.split("/", 1)
            msg.add_attachment(path.read_bytes(), maintype=main, subtype=sub, filename=path.name)
        with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
            if s.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.username:
                smtp.login(s.username, self.password or "")
            refused = smtp.send_message(msg)
        if refused:
            raise smtplib.SMTPRecipientsRefused(refused)
        return "250"


class WebhookReceiver:
    """POST notifications as signed JSON.

    Parameters
    ----------
    settings : WebhookSettings
    secret : bytes, optional
        HMAC key (no signature header without one).
    sleep : callable, default time.sleep
        Waits between retries [s] (tests inject a recorder).
    transport : httpx.BaseTransport, optional
    """

    def __init__(
        self,
        settings: WebhookSettings,
        secret: bytes | None = None,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.secret = secret
        self.sleep = sleep
        self.client = httpx.Client(timeout=settings.timeout_s, transport=transport)

    def send(self, key: str, payload: dict[str, Any]) -> str:
        """POST once, retrying transient failures; returns the HTTP status."""
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        s = self.settings
        last: Exception | None = None
        for attempt in range(s.retries + 1):
            if attempt:
                self.sleep(s.backoff_s * 2 ** (attempt - 1))
            try:
                r = self.client.post(s.url, content=body, headers=headers)
            except httpx.TransportError as exc:
                last = exc
                continue
            if r.status_code < 300:
                return str(r.status_code)
            last = RuntimeError(f"webhook {s.url} answered HTTP {r.status_code}")
            if r.status_code != 429 and r.status_code < 500:
                break  # the request itself is wrong: retrying will not help
        raise last if last else RuntimeError("webhook: no attempt made")

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


def build_receivers(config: AlertingConfig, base: Path | None = None) -> dict[str, Any]:
    """One receiver object per configured receiver (secrets read from env / 0600 files).

    Raises
    ------
    ConfigError
        A secret's environment variable is unset or its file is missing or readable by others.
    """
    out: dict[str, Any] = {}
    for r in config.receivers:
        if r.email is not None:
            pw = read_secret(r.email, base, f"receivers.{r.name}.email")
            out[r.name] = EmailReceiver(r.email, pw)
        elif r.webhook is not None:
            key = read_secret(r.webhook, base, f"receivers.{r.name}.webhook")
            out[r.name] = WebhookReceiver(r.webhook, key.encode() if key else None)
        else:
            from guardian_lib.alerts import providers

            if r.alertmanager is not None:
                out[r.name] = providers.AlertmanagerForwarder(r.alertmanager)
            elif r.sms is not None:
                token = read_secret(r.sms, base, f"receivers.{r.name}.sms") or ""
                out[r.name] = providers.TwilioSms(r.sms, token)
            elif r.whatsapp is not None:
                token = read_secret(r.whatsapp, base, f"receivers.{r.name}.whatsapp") or ""
                out[r.name] = providers.WhatsAppCloud(r.whatsapp, token)
    return out
