"""Security audit of the dashboard login (``/login``, ``/auth/login``) of ``guardian api``."""

from __future__ import annotations

import api_world
import argon2
import pytest
from fastapi.testclient import TestClient

from guardian_lib.api.app import PREFIX, ApiConfig, create_app
from guardian_lib.api.deps import LOGIN_FAILURES_PER_CLIENT_PER_MINUTE, RateLimiter
from guardian_lib.api.routes import auth
from guardian_lib.api.users import UserStore

PASSWORD = "north-operator-pw"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-console")
    api_world.make_warehouse(root / "run")
    users = UserStore(root / "users.json")
    users.add("op", "operator", password=PASSWORD)
    users.add("off", "viewer", password=PASSWORD)
    users.disable("off")
    return root, users


def _app(world):
    root, users = world
    return create_app(ApiConfig(run=root / "run", users=root / "users.json", webhook_every_s=0),
                      users)  # fmt: skip


def test_unknown_and_disabled_users_cost_an_argon2_check(world, monkeypatch):
    """Without it, unknown names answered at once and real ones after argon2: an oracle."""
    calls = []
    real = argon2.PasswordHasher.verify
    monkeypatch.setattr(argon2.PasswordHasher, "verify",
                        lambda self, h, p: calls.append(h) or real(self, h, p))  # fmt: skip
    client = TestClient(_app(world))
    for name in ("no-such-user", "off", "op"):
        r = client.post(f"{PREFIX}/auth/login", json={"name": name, "password": "wrong-pw-1"})
        assert r.status_code == 401 and r.json()["detail"] == "unknown user or wrong password"
    assert len(calls) == 3


def test_password_spraying_from_one_address_is_limited(world):
    app = _app(world)
    assert app.state.ctx.login_client_failures.per_minute == LOGIN_FAILURES_PER_CLIENT_PER_MINUTE
    app.state.ctx.login_client_failures = RateLimiter(3)  # each failure costs an argon2 check
    sprayer = TestClient(app, client=("192.0.2.7", 4000))
    for i in range(3):
        r = sprayer.post(f"{PREFIX}/auth/login", json={"name": f"u{i}", "password": "guess-123"})
        assert r.status_code == 401
    r = sprayer.post(f"{PREFIX}/auth/login", json={"name": "op", "password": "guess-123"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    form = sprayer.post("/login", data={"name": "op", "password": PASSWORD})
    assert form.status_code == 429
    other = TestClient(app, client=("192.0.2.8", 4000))
    ok = other.post(f"{PREFIX}/auth/login", json={"name": "op", "password": PASSWORD})
    assert ok.status_code == 200, ok.text


def test_password_checks_are_capped_when_the_server_is_flooded(world, monkeypatch):
    monkeypatch.setattr(auth, "PASSWORD_CHECK_WAIT_S", 0.05)
    held = 0
    while auth.PASSWORD_CHECKS.acquire(blocking=False):  # all checks busy
        held += 1
    try:
        r = TestClient(_app(world)).post(f"{PREFIX}/auth/login",
                                         json={"name": "op", "password": PASSWORD})  # fmt: skip
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
    finally:
        for _ in range(held):
            auth.PASSWORD_CHECKS.release()
    assert held == 4


def test_rate_limiter_forgets_idle_keys_of_a_name_flood(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("guardian_lib.api.deps.time.monotonic", lambda: now[0])
    lim = RateLimiter(5)
    for i in range(RateLimiter.MAX_KEYS):
        lim.allow(f"name-{i}")
    assert all(lim.wait(f"never-failed-{i}") is None for i in range(1000))
    assert len(lim) == RateLimiter.MAX_KEYS  # looking does not remember a key
    now[0] += 61.0
    lim.allow("one-more")
    assert len(lim) == 1


def test_login_has_no_open_redirect_and_static_paths_do_not_traverse(world):
    client = TestClient(_app(world))
    r = client.post("/login?next=//evil.example/&lang=en", data={"name": "op", "password": PASSWORD},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and r.headers["location"].startswith("/console?")
    assert "evil" not in r.headers["location"]
    for path in ("/console/../../etc/passwd", "/console/%2e%2e/%2e%2e/etc/passwd",
                 "/console/app.js/../../../pyproject.toml"):  # fmt: skip
        resp = client.get(path)
        assert "root:" not in resp.text and "[project]" not in resp.text


def test_api_refuses_a_webhook_to_a_local_address_by_default(world):
    root, users = world
    users.add("boss", "admin")
    token = users.issue_token("boss")[0]
    client = TestClient(_app(world), headers={"Authorization": f"Bearer {token}"})
    r = client.post(f"{PREFIX}/webhooks",
                    json={"url": "http://169.254.169.254/latest/", "events": ["incident"]})  # fmt: skip
    assert r.status_code == 400 and r.json()["field"] == "body.url"
    assert "--webhook-allow-local" in r.json()["detail"]
    ok = client.post(
        f"{PREFIX}/webhooks", json={"url": "https://10.9.8.7/h", "events": ["incident"]}
    )
    assert ok.status_code == 201


def test_validation_errors_never_fail_or_repeat_secrets(world):
    """Found by schemathesis: a JSON body sent as text/plain answered 500 (bytes in the
    error), and a refused password was echoed in the 422."""
    client = TestClient(_app(world))
    raw = client.post(f"{PREFIX}/auth/login", content=b'{"name": "op", "password": "hunter2-pw"}',
                      headers={"Content-Type": "text/plain"})  # fmt: skip
    assert raw.status_code == 422 and "hunter2" not in raw.text
    long_pw = "s3cr3t-" + "x" * 2000
    r = client.post(f"{PREFIX}/auth/login", json={"name": "op", "password": long_pw})
    assert r.status_code == 422 and r.json()["field"] == "body.password" and "s3cr3t" not in r.text
    inf = client.post(f"{PREFIX}/auth/login", content=b'{"name": 1e999, "password": "x"}',
                      headers={"Content-Type": "application/json"})  # fmt: skip
    assert inf.status_code == 422 and "inf" in inf.text
    long_name = client.post(f"{PREFIX}/auth/login", json={"name": "n" * 500, "password": "p"})
    assert long_name.status_code == 422 and "n" * 101 not in long_name.text
