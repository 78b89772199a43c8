"""Regions are checked against the network's inventory (user safety).

A user added with a mistyped region (``--region sul`` on a network of ``north`` and
``south``) and a listing asked for one (``/risk?region=sul``) used to be accepted and
answer an empty list; a scoped user asking for another region read "the requested region
is in region 'south'".
"""

from __future__ import annotations

import pytest
from api_world import api_client, auth, make_warehouse

from guardian_lib.api.app import PREFIX


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("regions")
    return api_client(root, [("all", "viewer", []), ("n", "viewer", ["north"])])


@pytest.mark.parametrize("path", ["/risk", "/onus"])
def test_a_region_the_inventory_does_not_name_is_refused(world, path):
    c, tokens = world["client"], world["tokens"]
    resp = c.get(PREFIX + path, params={"region": "sul"}, headers=auth(tokens["all"]))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["field"] == "query.region"
    assert "region 'sul' is not in this network's inventory" in body["detail"]
    assert "north" in body["detail"] and "south" in body["detail"]
    ok = c.get(PREFIX + path, params={"region": "north"}, headers=auth(tokens["all"]))
    assert ok.status_code == 200, ok.text


def test_out_of_region_names_the_region_and_the_users_regions(world):
    c, tokens = world["client"], world["tokens"]
    resp = c.get(PREFIX + "/risk", params={"region": "south"}, headers=auth(tokens["n"]))
    assert resp.status_code == 403
    assert resp.json()["detail"] == "region 'south' is not one of user n's regions ['north']"
    # a scoped user is not told the other regions' names: unknown is out of scope too
    resp = c.get(PREFIX + "/risk", params={"region": "sul"}, headers=auth(tokens["n"]))
    assert resp.status_code == 403 and "north" in resp.json()["detail"]
    assert "south" not in resp.json()["detail"]


def _users_add(tmp_path, *args):
    import typer
    from typer.testing import CliRunner

    from guardian_lib.api.cli import register

    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, ["users", "add", "noc", "--role", "viewer", "--users",
                                    str(tmp_path / "u.json"), "--no-password", *args])  # fmt: skip


def test_users_add_refuses_a_region_the_network_does_not_have(tmp_path):
    run = tmp_path / "run"
    make_warehouse(run)
    out = _users_add(tmp_path, "--region", "sul", "--run", str(run))
    assert out.exit_code == 2
    assert "'sul' is not a region of --run" in out.output and "'north'" in out.output
    assert not (tmp_path / "u.json").exists()  # nothing added
    out = _users_add(tmp_path, "--region", "north", "--run", str(run))
    assert out.exit_code == 0, out.output
    assert "noc: viewer (north) added" in out.output and "note:" not in out.output


def test_users_add_without_a_network_says_the_region_is_not_checked(tmp_path):
    out = _users_add(tmp_path, "--region", "sul")
    assert out.exit_code == 0, out.output
    assert "note: --region not checked against a network" in out.output
    empty = tmp_path / "empty"
    empty.mkdir()
    out = _users_add(tmp_path / "x", "--region", "sul", "--run", str(empty))
    assert out.exit_code == 0, out.output
    assert "has no inventory naming a region" in out.output
