"""Security audit of webhooks: no requests to local addresses (SSRF), a bounded outbox."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from guardian_lib.api.webhooks import (
    WEBHOOK_KEEP_DAYS,
    WebhookDispatcher,
    WebhookError,
    WebhookStore,
    _httpx_post,
    webhook_target_error,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:7557/devices/",  # the ACS NBI (often --no-auth on loopback)
        "http://localhost/",
        "http://127.1/",
        "http://2130706433/",  # 127.0.0.1 as one decimal number
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fe80::1]/",
        "http://0.0.0.0:8080/",
        "http://224.0.0.1/",
    ],
)
def test_local_receivers_are_refused_unless_allowed(url):
    why = webhook_target_error(url, allow_local=False)
    assert why is not None and "--webhook-allow-local" in why
    assert webhook_target_error(url, allow_local=True) is None


def test_private_and_public_receivers_pass_and_credentials_never():
    assert webhook_target_error("https://10.1.2.3/hook", False) is None
    assert webhook_target_error("http://192.168.0.9:8080/x", False) is None
    assert webhook_target_error("https://203.0.113.5/x", False) is None
    assert "credentials" in webhook_target_error("https://u:p@10.1.2.3/", True)
    assert "http(s)" in webhook_target_error("file:///etc/passwd", True)


def test_delivery_checks_again_and_records_the_refusal(tmp_path):
    """A name may resolve to a local address only after it was subscribed."""
    with pytest.raises(WebhookError, match="local address"):
        _httpx_post("http://localhost:9/hook", b"{}", {})
    store = WebhookStore(tmp_path / "webhooks.json")
    store.add("http://127.0.0.1:9/hook", ["incident"], "t")  # the store has no policy
    incidents = [[], [{"incident_id": "I-1"}]]
    d = WebhookDispatcher(store, lambda: None, lambda: incidents.pop(0))
    d.poll_once()
    assert d.poll_once() == 0
    (row,) = d.deliveries()
    assert row["status"] == "pending" and "refused" in row["last_error"]


def test_outbox_forgets_finished_deliveries_and_removed_subscriptions(tmp_path):
    now = [pd.Timestamp("2026-12-01T00:00:00Z")]
    store = WebhookStore(tmp_path / "webhooks.json")
    keep = store.add("https://10.0.0.1/a", ["incident"], "t")
    gone = store.add("https://10.0.0.2/b", ["incident"], "t")
    seq = iter([[]] + [[{"incident_id": f"I-{i}"}] for i in range(3)])
    sent = []
    d = WebhookDispatcher(store, lambda: None, lambda: next(seq), clock=lambda: now[0],
                          post=lambda url, body, h: sent.append(url) or (200 if "/a" in url else 500))  # fmt: skip
    d.poll_once()
    d.poll_once()
    assert {r["status"] for r in d.deliveries()} == {"delivered", "pending"}
    store.remove(gone["id"])
    now[0] += pd.Timedelta(days=WEBHOOK_KEEP_DAYS + 1)
    d.poll_once()
    rows = d.deliveries()
    # the old delivered row and every row of b are gone; this round's events remain
    assert rows and {r["webhook_id"] for r in rows} == {keep["id"]}
    assert all(pd.Timestamp(r["created_at"]) == now[0] for r in rows)
    assert json.loads(Path(store.path).read_text())[keep["id"]]["url"].endswith("/a")


def test_outbox_stops_growing_when_receivers_stay_down(tmp_path, monkeypatch):
    monkeypatch.setattr("guardian_lib.api.webhooks.WEBHOOK_MAX_PENDING", 3)
    store = WebhookStore(tmp_path / "webhooks.json")
    store.add("https://10.0.0.1/a", ["incident"], "t")
    rounds = [[]] + [[{"incident_id": f"I-{i}-{j}"} for j in range(2)] for i in range(4)]
    seq = iter(rounds)
    d = WebhookDispatcher(store, lambda: None, lambda: next(seq), post=lambda *a: 503)
    for _ in rounds:
        d.poll_once()
    assert len(d.deliveries(status="pending")) == 3
    assert d.dropped > 0
