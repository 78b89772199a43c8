"""Users file of the operator API: roles, argon2 passwords, hashed expiring revocable tokens."""

from __future__ import annotations

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from guardian_lib.api.users import AuthError, UsersError, UserStore, verify_password


class Clock:
    """A movable present [s]."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_users_file_is_0600_and_holds_no_secret(tmp_path):
    path = tmp_path / "users.json"
    store = UserStore(path)
    store.add("ana", "operator", ["north"], password="correct horse")
    token, info = store.issue_token("ana")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    secret = token.split("_", 2)[2]
    assert secret not in text and "correct horse" not in text
    data = json.loads(text)
    assert data["users"]["ana"]["password_hash"].startswith("$argon2id$")
    assert data["tokens"][info.token_id]["sha256"] != secret
    # a second reader sees the same user and accepts the token
    user, tid = UserStore(path).authenticate(token)
    assert (user.name, user.role, user.regions, tid) == (
        "ana",
        "operator",
        ("north",),
        info.token_id,
    )


def test_password_is_argon2_and_checked(tmp_path):
    store = UserStore(tmp_path / "u.json")
    store.add("bo", "viewer", password="s3cret-pass")
    assert store.check_password("bo", "s3cret-pass").name == "bo"
    assert store.check_password("bo", "wrong-pass") is None
    assert not verify_password(None, "anything")
    with pytest.raises(UsersError, match="at least 8"):
        store.add("cy", "viewer", password="short")


def test_a_users_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "u.json"
    UserStore(path).add("ana", "admin")
    os.chmod(path, 0o644)
    with pytest.raises(UsersError, match="chmod 600"):
        UserStore(path)


@pytest.mark.parametrize(
    ("name", "role", "regions", "match"),
    [
        ("ana", "root", (), "role: expected one of"),
        ("bad name", "viewer", (), "name: expected"),
        ("ana", "viewer", ("",), "region: expected"),
    ],
)
def test_bad_user_fields_name_the_field(tmp_path, name, role, regions, match):
    with pytest.raises(UsersError, match=match):
        UserStore(tmp_path / "u.json").add(name, role, regions)


def test_duplicate_user_is_refused(tmp_path):
    store = UserStore(tmp_path / "u.json")
    store.add("ana", "viewer")
    with pytest.raises(UsersError, match="exists"):
        store.add("ana", "admin")
    assert store.get("ana").role == "viewer"


def test_token_expiry_revocation_and_disabled_user(tmp_path):
    clock = Clock()
    store = UserStore(tmp_path / "u.json", clock=clock)
    store.add("ana", "operator")
    token, info = store.issue_token("ana", expires_days=1)
    assert store.authenticate(token)[0].name == "ana"
    clock.t += 86400 - 1
    store.authenticate(token)
    clock.t += 1
    with pytest.raises(AuthError) as exc:
        store.authenticate(token)
    assert exc.value.reason == "expired"

    token2, info2 = store.issue_token("ana", expires_days=None)
    clock.t += 10 * 365 * 86400
    store.authenticate(token2)
    store.revoke(info2.token_id)
    with pytest.raises(AuthError) as exc:
        store.authenticate(token2)
    assert exc.value.reason == "revoked"

    token3, _ = store.issue_token("ana")
    store.disable("ana")
    with pytest.raises(AuthError) as exc:
        store.authenticate(token3)
    assert exc.value.reason == "disabled"
    with pytest.raises(UsersError, match="disabled"):
        store.issue_token("ana")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (None, "missing"),
        ("", "missing"),
        ("Bearer x", "malformed"),
        ("ngt_0123456789ab_" + "A" * 43, "unknown"),
    ],
)
def test_bad_tokens_say_why(tmp_path, token, reason):
    store = UserStore(tmp_path / "u.json")
    store.add("ana", "viewer")
    with pytest.raises(AuthError) as exc:
        store.authenticate(token)
    assert exc.value.reason == reason


def test_a_forged_secret_for_a_real_token_id_is_unknown(tmp_path):
    store = UserStore(tmp_path / "u.json")
    store.add("ana", "viewer")
    token, info = store.issue_token("ana")
    forged = f"ngt_{info.token_id}_" + "B" * 43
    assert forged != token
    with pytest.raises(AuthError) as exc:
        store.authenticate(forged)
    assert exc.value.reason == "unknown"


def test_guardian_users_cli(tmp_path):
    import typer

    from guardian_lib.api.cli import register

    app = typer.Typer()
    register(app)
    users = tmp_path / "users.json"
    r = CliRunner()
    out = r.invoke(app, ["users", "add", "ana", "--role", "operator", "--region", "north",
                         "--users", str(users), "--password-stdin"], input="long enough pw\n")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert UserStore(users).check_password("ana", "long enough pw") is not None
    out = r.invoke(app, ["users", "add", "vi", "--role", "viewer", "--users", str(users),
                         "--no-password"])  # fmt: skip
    assert out.exit_code == 0, out.output
    bad = r.invoke(app, ["users", "add", "x", "--role", "root", "--users", str(users),
                         "--no-password"])  # fmt: skip
    assert bad.exit_code != 0 and "--role" in bad.output
    tok = r.invoke(app, ["users", "token", "ana", "--users", str(users), "--expires-days", "2"])
    assert tok.exit_code == 0, tok.output
    token = tok.stdout.strip().splitlines()[0]
    user, tid = UserStore(users).authenticate(token)
    assert user.name == "ana"
    listed = r.invoke(app, ["users", "list", "--users", str(users), "--json"])
    rows = json.loads(listed.stdout)
    assert [u["name"] for u in rows] == ["ana", "vi"]
    assert rows[0]["tokens"][0]["token_id"] == tid and token not in listed.stdout
    assert r.invoke(app, ["users", "revoke", tid, "--users", str(users)]).exit_code == 0
    with pytest.raises(AuthError):
        UserStore(users).authenticate(token)
    assert r.invoke(app, ["users", "disable", "vi", "--users", str(users)]).exit_code == 0
    assert UserStore(users).get("vi").disabled


def test_tokens_expired_for_a_month_are_forgotten(tmp_path):
    clock = Clock()
    store = UserStore(tmp_path / "u.json", clock=clock)
    store.add("ana", "viewer")
    _, old = store.issue_token("ana", expires_days=1)
    _, forever = store.issue_token("ana", expires_days=None)
    clock.t += 30 * 86400  # expired 29 days ago: kept
    store.issue_token("ana")
    assert old.token_id in {t.token_id for t in store.tokens()}
    clock.t += 2 * 86400  # expired 31 days ago: dropped at the next issue
    store.issue_token("ana")
    ids = {t.token_id for t in UserStore(tmp_path / "u.json").tokens()}
    assert old.token_id not in ids and forever.token_id in ids and len(ids) == 3


def test_two_writers_do_not_lose_each_others_changes(tmp_path):
    """The CLI and a running API each hold a store of the same file."""
    path = tmp_path / "u.json"
    UserStore(path).add("ana", "operator")
    api, cli = UserStore(path), UserStore(path)
    _, by_api = api.issue_token("ana")  # e.g. a login
    cli.add("bo", "viewer")  # cli read the file before that token existed
    _, by_cli = cli.issue_token("bo")
    fresh = UserStore(path)
    assert {u.name for u in fresh.users()} == {"ana", "bo"}
    assert {t.token_id for t in fresh.tokens()} == {by_api.token_id, by_cli.token_id}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --run"),
        (["--run", "r", "--site", "s.yaml"], "exactly one of --run"),
        (["--site", "s.yaml"], "--site needs --state"),
        (["--run", "r", "--state", "st"], "--state goes with --site"),
        (["--run", "r", "--port", "0"], "--port"),
    ],
)
def test_guardian_api_refuses_contradictory_options(tmp_path, args, message):
    import typer

    from guardian_lib.api.cli import register

    app = typer.Typer()
    register(app)
    out = CliRunner().invoke(app, ["api", "--users", str(tmp_path / "u.json"), *args])
    assert out.exit_code == 2 and message in out.output
