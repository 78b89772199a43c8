"""Plain-text rendering of a notification, shared by every receiver that sends text.

Its own module so that the text channels (:mod:`~guardian_lib.alerts.receivers` for e-mail,
:mod:`~guardian_lib.alerts.providers` for SMS and WhatsApp) need not import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["email_text"]


def email_text(payload: Mapping[str, Any]) -> tuple[str, str]:
    """Subject and plain-text body of a notification payload."""
    alerts = payload.get("alerts", [])
    firing = [a for a in alerts if a.get("status") == "firing"]
    status = "FIRING" if firing else "RESOLVED"
    names = sorted({a["labels"].get("alertname", "?") for a in alerts})
    group = ", ".join(f"{k}={v}" for k, v in payload.get("groupLabels", {}).items() if v)
    head = alerts[0]["annotations"].get("summary", "") if len(alerts) == 1 else ""
    subject = f"[{status}:{len(firing) or len(alerts)}] {' '.join(names)}"
    subject += f" ({group})" if group else ""
    subject += f" — {head}" if head else ""
    lines = [f"Network Guardian — {status.lower()} — {payload.get('timestamp', '')}", ""]
    for a in alerts:
        lab = a["labels"]
        lines.append(f"* [{a['status']}] {lab.get('alertname')} ({lab.get('severity', '')})")
        if a["annotations"].get("summary"):
            lines.append(f"  {a['annotations']['summary']}")
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in lab.items()))
        lines.append(f"  since {a['startsAt']}" + (f", ended {a['endsAt']}" if a["endsAt"] else ""))
    lines += ["", f"Idempotency key: {payload.get('idempotencyKey', '')}"]
    return subject.replace("\n", " ")[:250], "\n".join(lines) + "\n"
