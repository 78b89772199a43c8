"""HTTP providers: Alertmanager v2 forwarding, Twilio SMS, WhatsApp Business Cloud API.

Each is a receiver (``send(key, payload) -> str``) for the outbox; a non-2xx answer raises
so that the outbox records it and retries later. Message text for SMS / WhatsApp is
:func:`short_text` (the e-mail subject and the alerts' summaries, one line), sent to the
receiver's ``to`` numbers; a customer notice (``kind: customer_notice``, see
:mod:`~guardian_lib.alerts.customers`) carries its own ``text`` and the customer's ``to``.

* :class:`AlertmanagerForwarder` — ``POST {url}/api/v2/alerts`` with Alertmanager's
  ``postableAlerts`` (``labels``, ``annotations``, ``startsAt``, ``endsAt`` when resolved).
* :class:`TwilioSms` — ``POST {base}/2010-04-01/Accounts/{sid}/Messages.json``, form fields
  ``To``, ``From``, ``Body``, HTTP basic auth (account SID, auth token); one call per number.
* :class:`WhatsAppCloud` — ``POST {base}/{version}/{phone_number_id}/messages``, bearer
  token, JSON ``{"messaging_product": "whatsapp", "to", "type": "text", "text": {"body"}}``.
"""

from __future__ import annotations

from typing import Any

import httpx

from guardian_lib.alerts.config import AlertmanagerSettings, SmsSettings, WhatsAppSettings
from guardian_lib.alerts.messages import email_text

__all__ = ["AlertmanagerForwarder", "TwilioSms", "WhatsAppCloud", "postable_alerts", "short_text"]


def short_text(payload: dict[str, Any]) -> str:
    """One line for SMS / WhatsApp: the e-mail subject plus the alerts' summaries."""
    subject = email_text(payload)[0]
    summaries = [a.get("annotations", {}).get("summary", "") for a in payload.get("alerts", [])]
    extra = "; ".join(x for x in summaries if x and x not in subject)
    return f"{subject} — {extra}" if extra else subject


def _message(payload: dict[str, Any], default_to: list[str]) -> tuple[str, list[str]]:
    """Text and numbers: a customer notice (``kind: customer_notice``) goes to its ``to``
    with its own ``text``; a notification to the receiver's numbers as :func:`short_text`."""
    if payload.get("kind") == "customer_notice":
        if not payload.get("to"):
            raise ValueError(f"customer notice {payload.get('customer_id')!r} has no phone number")
        return str(payload["text"]), [str(payload["to"])]
    if not default_to:
        raise ValueError("this receiver has no numbers ('to') for alert notifications")
    return short_text(payload), list(default_to)


def _check(r: httpx.Response, what: str) -> str:
    if r.status_code >= 300:
        raise RuntimeError(f"{what} answered HTTP {r.status_code}: {r.text[:200]}")
    return str(r.status_code)


def postable_alerts(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Alertmanager v2 ``postableAlerts`` of a notification payload."""
    out = []
    for a in payload.get("alerts", []):
        item = {"labels": a["labels"], "annotations": a.get("annotations", {}),
                "startsAt": a["startsAt"]}  # fmt: skip
        if a.get("endsAt"):
            item["endsAt"] = a["endsAt"]
        out.append(item)
    return out


class AlertmanagerForwarder:
    """Forward alerts to an Alertmanager (it then groups and routes them itself)."""

    def __init__(self, settings: AlertmanagerSettings, transport=None) -> None:
        self.url = settings.url.rstrip("/") + "/api/v2/alerts"
        self.client = httpx.Client(timeout=settings.timeout_s, transport=transport)

    def send(self, key: str, payload: dict[str, Any]) -> str:
        """POST the alerts; returns the HTTP status."""
        return _check(self.client.post(self.url, json=postable_alerts(payload)), self.url)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


class TwilioSms:
    """SMS through Twilio's Messages API."""

    def __init__(self, settings: SmsSettings, auth_token: str, transport=None) -> None:
        self.settings = settings
        base = settings.base_url.rstrip("/")
        self.url = f"{base}/2010-04-01/Accounts/{settings.account_sid}/Messages.json"
        self.client = httpx.Client(timeout=settings.timeout_s, transport=transport,
                                   auth=(settings.account_sid, auth_token))  # fmt: skip

    def send(self, key: str, payload: dict[str, Any]) -> str:
        """One SMS per number (all must be accepted)."""
        text, numbers = _message(payload, self.settings.to)
        body = text[:1600]
        for to in numbers:
            r = self.client.post(self.url, data={"To": to, "From": self.settings.sender,
                                                 "Body": body})  # fmt: skip
            _check(r, "Twilio")
        return "201"

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()


class WhatsAppCloud:
    """WhatsApp Business Cloud API text messages."""

    def __init__(self, settings: WhatsAppSettings, token: str, transport=None) -> None:
        self.settings = settings
        base = settings.base_url.rstrip("/")
        self.url = f"{base}/{settings.api_version}/{settings.phone_number_id}/messages"
        self.client = httpx.Client(timeout=settings.timeout_s, transport=transport,
                                   headers={"Authorization": f"Bearer {token}"})  # fmt: skip

    def send(self, key: str, payload: dict[str, Any]) -> str:
        """One message per number (all must be accepted)."""
        text, numbers = _message(payload, self.settings.to)
        body = text[:4096]
        for to in numbers:
            msg = {"messaging_product": "whatsapp", "recipient_type": "individual",
                   "to": to.lstrip("+"), "type": "text",
                   "text": {"preview_url": False, "body": body}}  # fmt: skip
            _check(self.client.post(self.url, json=msg), "WhatsApp Cloud API")
        return "200"

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()
