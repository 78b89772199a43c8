"""``POST /contacts``: a helpdesk's token reports contacts; operate reads them next cycle.

The request is checked as operate checks a dropped file (422 naming the contact and the
field), limited before its body is read (411 / 413), region-scoped and rate-limited; an
accepted one is one JSONL file in the site's contacts folder, which
:class:`~guardian_lib.operate.contacts.ContactIntake` turns into the cycle's events.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from api_world import T0, api_client, auth
from fastapi.testclient import TestClient

from guardian_lib.api.app import PREFIX, ApiConfig, create_app
from guardian_lib.api.deps import RateLimiter
from guardian_lib.api.users import UserStore
from guardian_lib.operate.contacts import ContactIntake, ContactSettings
from guardian_lib.operate.state import StateStore

URL = PREFIX + "/contacts"


@pytest.fixture
def api(tmp_path):
    accounts = [("crm", "helpdesk", ()), ("crm-north", "helpdesk", ["north"]),
                ("viewer", "viewer", ())]  # fmt: skip
    w = api_client(tmp_path, accounts, contacts=ContactSettings(),
                   contacts_folder=tmp_path / "contacts")  # fmt: skip
    return {**w, "folder": tmp_path / "contacts", "tmp": tmp_path}


def _files(folder):
    return sorted(p for p in folder.glob("*.jsonl")) if folder.exists() else []


def test_a_helpdesk_posts_contacts_and_operate_feeds_them_to_the_customers_onu(api):
    now = pd.Timestamp.now(tz="UTC").floor("s")
    body = {"contacts": [
        {"ts": now.isoformat(), "customer_id": "C-N1", "channel": "phone", "reason": "no_internet",
         "contact_id": "TK-1"},
        {"ts": (now - pd.Timedelta(minutes=1)).isoformat(), "customer_id": "C-S1"},
    ]}  # fmt: skip
    resp = api["client"].post(URL, json=body, headers=auth(api["tokens"]["crm"]))
    assert resp.status_code == 202, resp.text
    assert resp.json()["accepted"] == 2
    (path,) = _files(api["folder"])
    assert path.name == resp.json()["file"]
    # operate's next cycle: the same reader, checks and mapping as a dropped file
    store = StateStore(api["tmp"] / "op-state")
    try:
        intake = ContactIntake(ContactSettings(), api["folder"], store)
        fleet = pd.DataFrame({"onu_id": ["ONU-N1", "ONU-S1"], "customer_id": ["C-N1", "C-S1"]})
        events, fig = intake.cycle(now + pd.Timedelta(minutes=5), now, fleet)
    finally:
        store.close()
    assert (fig["fed"], fig["rejected"]) == (2, [])
    by_customer = {e.entity_id: json.loads(e.payload) for e in events}
    assert by_customer["C-N1"] == {"channel": "phone", "reason": "no_internet",
                                   "contact_id": "TK-1", "onu_id": "ONU-N1"}  # fmt: skip
    assert by_customer["C-S1"]["onu_id"] == "ONU-S1"
    assert {e.type for e in events} == {"CUSTOMER_CALL"}


def test_bad_contacts_are_refused_naming_the_contact_and_field_and_nothing_is_written(api):
    c, h = api["client"], auth(api["tokens"]["crm"])
    ok = {"ts": T0.isoformat(), "customer_id": "C-N1"}
    for contacts, status, field in [
        ([ok, {"ts": "yesterday", "customer_id": "C-N1"}], 422, "body.contacts.1.ts"),
        ([ok, {"ts": "2999-01-01T00:00:00Z", "customer_id": "C-N1"}], 422, "body.contacts.1.ts"),
        ([{"ts": T0.isoformat(), "customer_id": "C\x1b[2J"}], 422, "body.contacts.0.customer_id"),
        ([{**ok, "password": "x"}], 422, "body.contacts.0.password"),
        ([], 422, "body.contacts"),
        ([ok] * 1001, 422, "body.contacts"),
    ]:
        resp = c.post(URL, json={"contacts": contacts}, headers=h)
        assert resp.status_code == status, resp.text
        assert resp.json()["field"] == field, resp.json()
    assert _files(api["folder"]) == []
    # a viewer may not report contacts; a helpdesk token may read nothing
    assert (
        c.post(URL, json={"contacts": [ok]}, headers=auth(api["tokens"]["viewer"])).status_code
        == 403
    )
    assert c.get(PREFIX + "/risk", headers=h).status_code == 403
    assert c.post(URL, json={"contacts": [ok]}).status_code == 401


def test_the_body_is_limited_before_it_is_read(api):
    c, h = api["client"], auth(api["tokens"]["crm"])
    big = b'{"contacts": [' + b" " * 1_000_001 + b"]}"
    resp = c.post(URL, content=big, headers={**h, "Content-Type": "application/json"})
    assert resp.status_code == 413 and resp.json()["field"] == "header.Content-Length"

    def chunks():  # no Content-Length: chunked
        yield b'{"contacts": []}'

    resp = c.post(URL, content=chunks(), headers={**h, "Content-Type": "application/json"})
    assert resp.status_code == 411
    assert _files(api["folder"]) == []


def test_scope_rate_limit_and_a_site_without_contacts(api, tmp_path):
    c = api["client"]
    north = auth(api["tokens"]["crm-north"])
    one = {"contacts": [{"ts": T0.isoformat(), "customer_id": "C-S1"}]}
    resp = c.post(URL, json=one, headers=north)
    assert resp.status_code == 403 and resp.json()["field"] == "body.contacts.0.customer_id"
    unknown = {"contacts": [{"ts": T0.isoformat(), "customer_id": "C-NOBODY"}]}
    assert c.post(URL, json=unknown, headers=north).status_code == 403  # cannot be checked
    own = {"contacts": [{"ts": T0.isoformat(), "customer_id": "C-N1"}]}
    assert c.post(URL, json=own, headers=north).status_code == 202
    api["app"].state.ctx.contacts_limiter = RateLimiter(1)
    h = auth(api["tokens"]["crm"])
    assert c.post(URL, json=own, headers=h).status_code == 202
    resp = c.post(URL, json=own, headers=h)
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    # the API of a run (or a site without contacts:) has nowhere to put them
    cfg = ApiConfig(run=api["tmp"] / "run", users=api["tmp"] / "users.json")
    plain = TestClient(create_app(cfg, api["users"]))
    assert plain.post(URL, json=own, headers=h).status_code == 409


def test_guardian_api_site_mode_takes_the_sites_contacts_folder(tmp_path, monkeypatch):
    import typer
    import uvicorn
    import yaml
    from typer.testing import CliRunner

    import guardian_lib.api.app as app_module
    from guardian_lib.api.cli import register

    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "n"}]})
    )
    site = {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
            "contacts": {"folder": "inbox", "timezone": "America/Sao_Paulo"}}  # fmt: skip
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    UserStore(tmp_path / "u.json").add("crm", "helpdesk")
    seen = {}
    monkeypatch.setattr(app_module, "create_app", lambda cfg, users: seen.setdefault("cfg", cfg))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)
    app = typer.Typer()
    register(app)
    out = CliRunner().invoke(app, ["api", "--users", str(tmp_path / "u.json"), "--site",
                                   str(tmp_path / "site.yaml"), "--state", str(tmp_path / "st")])  # fmt: skip
    assert out.exit_code == 0, out.output
    cfg = seen["cfg"]
    assert cfg.contacts_folder == tmp_path / "inbox"
    assert cfg.contacts.timezone == "America/Sao_Paulo"
