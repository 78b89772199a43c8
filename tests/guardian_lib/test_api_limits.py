"""Every ``/api/v1`` body is limited before it is read: FastAPI reads a route's body
before its dependencies check the token, so an anonymous client must not be able to make
the API read a large body (413 / 411 come before 401)."""

from __future__ import annotations

import pytest
from api_world import api_client, auth

from guardian_lib.api.app import PREFIX
from guardian_lib.api.limits import MAX_BODY_BYTES

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api(tmp_path):
    w = api_client(tmp_path, [("ops", "operator", ())])
    return w["client"], w["tokens"]["ops"]


@pytest.mark.parametrize("path", ["/silences", "/webhooks", "/olt/changes", "/decision/execute"])
def test_an_anonymous_oversized_body_is_refused_before_authentication(api, path):
    client, _ = api
    big = b'{"x": "' + b"a" * MAX_BODY_BYTES + b'"}'
    resp = client.post(PREFIX + path, content=big, headers=JSON)
    assert resp.status_code == 413, resp.text
    assert resp.json()["field"] == "header.Content-Length"
    assert str(MAX_BODY_BYTES) in resp.json()["detail"]
    # the same route with a small body reaches authentication
    assert client.post(PREFIX + path, content=b"{}", headers=JSON).status_code == 401


def test_a_chunked_body_must_declare_its_length(api):
    client, token = api

    def chunks():  # no Content-Length: chunked, its size unknown until read
        yield b'{"matchers": {"olt": "OLT1"}, '
        yield b'"duration": "1h", "comment": "x"}'

    resp = client.post(PREFIX + "/silences", content=chunks(), headers={**JSON, **auth(token)})
    assert resp.status_code == 411
    bad = client.post(
        PREFIX + "/silences", content=b"{}", headers={**JSON, **auth(token), "Content-Length": "x"}
    )
    assert bad.status_code in (400, 411)  # the server or the limit refuses it; never read


def test_bodies_within_the_limit_and_bodiless_requests_pass(api):
    client, token = api
    assert client.get(PREFIX + "/risk", headers=auth(token)).status_code == 200
    # a request without a body declares no length and is not refused for it
    resp = client.post(PREFIX + "/decisions/none/approve", headers=auth(token))
    assert resp.status_code not in (411, 413)
