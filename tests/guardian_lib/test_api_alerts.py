"""``GET /alerts`` and ``/silences`` of the operator API over operate's real alert files.

The alert outbox is written by :class:`~guardian_lib.alerts.outbox.Outbox` with payloads of
real :class:`~guardian_lib.alerts.rules.Alert` objects; silences added through the API are
read back by the :class:`~guardian_lib.alerts.dispatch` side's
:class:`~guardian_lib.alerts.silences.SilenceStore`. The permission matrix of these routes
is in test_api.py.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from guardian_lib.alerts.outbox import Outbox
from guardian_lib.alerts.pipeline import OUTBOX_FILE, SILENCES_FILE
from guardian_lib.alerts.rules import Alert
from guardian_lib.alerts.silences import SilenceStore
from guardian_lib.api.app import PREFIX, ApiConfig, create_app
from guardian_lib.api.users import UserStore
from guardian_lib.operate.state import StateStore

T0 = pd.Timestamp("2026-12-04T06:00:00Z")


@pytest.fixture
def site(tmp_path):
    """A site-mode API (no warehouse needed by these routes) and one token per user."""
    state = tmp_path / "state"
    StateStore(state).close()
    users = UserStore(tmp_path / "users.json")
    tokens = {}
    for name, role, regions in (("op-n", "operator", ["north"]), ("op-all", "operator", ()),
                                ("viewer-n", "viewer", ["north"])):  # fmt: skip
        users.add(name, role, regions)
        tokens[name] = {"Authorization": f"Bearer {users.issue_token(name)[0]}"}
    cfg = ApiConfig(run=tmp_path / "run", users=tmp_path / "users.json", state=state,
                    webhook_every_s=0)  # fmt: skip
    return {"client": TestClient(create_app(cfg, users)), "tokens": tokens, "state": state,
            "cfg": cfg}  # fmt: skip


def _notify(outbox: Outbox, key: str, *alerts: Alert) -> None:
    outbox.enqueue(key, "ops", {"status": "firing", "alerts": [a.to_dict() for a in alerts]})


def test_alerts_show_each_alerts_newest_notified_state_in_the_users_regions(site):
    north = Alert({"alertname": "PonDown", "region": "north", "pon": "PON-N1"}, T0)
    south = Alert({"alertname": "PonDown", "region": "south", "pon": "PON-S1"}, T0)
    outbox = Outbox(site["state"] / OUTBOX_FILE, clock=lambda: T0)
    _notify(outbox, "k1", north, south)
    outbox.clock = lambda: T0 + pd.Timedelta(minutes=5)
    _notify(outbox, "k2", Alert(north.labels, T0, ends_at=T0 + pd.Timedelta(minutes=4)))
    outbox.close()
    c, tok = site["client"], site["tokens"]

    firing = c.get(PREFIX + "/alerts", headers=tok["op-all"]).json()["items"]
    assert [a["labels"]["pon"] for a in firing] == ["PON-S1"]  # north resolved since
    resolved = c.get(PREFIX + "/alerts?status=resolved", headers=tok["op-all"]).json()["items"]
    assert [(a["labels"]["pon"], a["fingerprint"]) for a in resolved] == [
        ("PON-N1", north.fingerprint)
    ]
    scoped = c.get(PREFIX + "/alerts?status=firing", headers=tok["viewer-n"]).json()
    assert scoped == {"items": [], "total": 0}
    assert c.get(PREFIX + "/alerts?region=south", headers=tok["viewer-n"]).status_code == 403


def test_a_silence_added_through_the_api_mutes_in_operates_store_and_expires(site):
    c, tok = site["client"], site["tokens"]
    body = {"matchers": {"region": "north", "pon": "~PON-N.*"}, "duration_minutes": 90,
            "comment": "fibre splice"}  # fmt: skip
    resp = c.post(PREFIX + "/silences", json=body, headers=tok["op-n"])
    assert resp.status_code == 201, resp.text
    sid = resp.json()["id"]
    store = SilenceStore(site["state"] / SILENCES_FILE)  # what operate's dispatcher reads
    (s,) = store.all()
    now = pd.Timestamp.now(tz="UTC")
    assert s.silence_id == sid and s.created_by == "api:op-n"
    assert s.mutes({"region": "north", "pon": "PON-N7"}, now)
    assert not s.mutes({"region": "north", "pon": "PON-S1"}, now)
    assert (s.ends_at - s.starts_at) == pd.Timedelta(minutes=90)
    listed = c.get(PREFIX + "/silences", headers=tok["viewer-n"]).json()["items"]
    assert [x["id"] for x in listed] == [sid]

    resp = c.delete(PREFIX + f"/silences/{sid}", headers=tok["op-all"])
    assert resp.status_code == 200 and resp.json()["active"] is False
    store.reload()
    assert not store.all()[0].active(pd.Timestamp.now(tz="UTC"))
    store.close()
    assert c.get(PREFIX + "/silences", headers=tok["op-all"]).json()["items"] == []
    everything = c.get(PREFIX + "/silences?expired=true", headers=tok["op-all"]).json()
    assert [x["id"] for x in everything["items"]] == [sid]
    trail = [json.loads(x) for x in site["cfg"].audit_path().read_text().splitlines()]
    assert [(t["action"], t["target"], t["status"]) for t in trail] == [
        ("add_silence", sid, 201), ("expire_silence", sid, 200)]  # fmt: skip


@pytest.mark.parametrize(
    ("matchers", "status", "kind"),
    [
        ({"pon": "PON-N1"}, 403, "out-of-region"),  # a scoped user must pin a region
        ({"region": "~north|south"}, 403, "out-of-region"),  # ... exactly, not by regex
        ({"region": "north", "pon": "~(unclosed"}, 422, "invalid-request"),
        ({"region": "north", "bad name": "x"}, 422, "invalid-request"),
    ],
)
def test_bad_or_out_of_scope_silences_are_refused_and_nothing_is_stored(
    site, matchers, status, kind
):
    body = {"matchers": matchers, "duration_minutes": 30, "comment": "x"}
    resp = site["client"].post(PREFIX + "/silences", json=body, headers=site["tokens"]["op-n"])
    assert resp.status_code == status, resp.text
    assert resp.json()["type"].endswith(f"/{kind}")
    assert resp.json()["field"].startswith("body.matchers")
    store = SilenceStore(site["state"] / SILENCES_FILE)
    assert store.all() == []
    store.close()


def test_unknown_silence_is_404_and_run_mode_has_no_silences(site, tmp_path):
    c, tok = site["client"], site["tokens"]
    resp = c.delete(PREFIX + "/silences/0123456789ab", headers=tok["op-all"])
    assert resp.status_code == 404 and resp.json()["field"] == "path.silence_id"
    from guardian_lib.layout import RunLayout

    run = tmp_path / "ro-run"
    run.mkdir()
    RunLayout(run).warehouse.touch()
    users = UserStore(tmp_path / "ro-users.json")
    users.add("v", "viewer")
    ro = TestClient(create_app(ApiConfig(run=run, users=tmp_path / "ro-users.json"), users))
    got = ro.get(
        PREFIX + "/silences", headers={"Authorization": f"Bearer {users.issue_token('v')[0]}"}
    )
    assert got.status_code == 409 and got.json()["type"].endswith("/read-only")
