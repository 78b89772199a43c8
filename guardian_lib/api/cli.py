"""``guardian api`` and ``guardian users`` (registered through ``guardian.commands``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register", "api_command", "users_app"]

users_app = typer.Typer(
    help="Users of the operator API: add, list, disable, token, revoke.", no_args_is_help=True
)
UsersFile = Annotated[Path, typer.Option("--users", help="Users file (JSON, mode 0600).")]


def _store(path: Path):
    from guardian_lib.api.users import UserStore

    return UserStore(path)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="helpdesk, viewer, operator or admin.")],
    users: UsersFile,
    region: Annotated[
        list[str] | None, typer.Option(help="Limit the user to this region (repeatable).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    no_password: Annotated[
        bool, typer.Option("--no-password", help="API tokens only (no dashboard login).")
    ] = False,
    site: Annotated[
        Path | None,
        typer.Option(
            help="Check --region against this site's inventory (its warehouse and "
            "subscribers file)."
        ),
    ] = None,
    run: Annotated[
        Path | None, typer.Option(help="Check --region against this run's inventory.")
    ] = None,
) -> None:
    """Add a user (asks for a password unless --no-password or --password-stdin)."""
    from guardian_lib.api.users import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"--role: expected one of {ROLES}, got {role!r}")
    if region:
        _check_regions(list(region), site, run)
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not no_password:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    user = _store(users).add(name, role, region or (), password)
    scope = ", ".join(user.regions) or "all regions"
    typer.echo(f"{user.name}: {user.role} ({scope}) added to {users}")


def _check_regions(regions: list[str], site: Path | None, run: Path | None) -> None:
    """Refuse regions the network's inventory does not name (exit 2); say when unchecked."""
    from guardian_lib.api.data import WarehouseReader

    if site is not None and run is not None:
        raise typer.BadParameter("give at most one of --site and --run", param_hint="--site")
    if site is None and run is None:
        typer.echo(
            "note: --region not checked against a network (give --site SITE.yaml or --run RUN "
            "to refuse a region its inventory does not name)",
            err=True,
        )
        return
    subscribers = None
    if site is not None:
        from guardian_lib.operate.site import load_site

        cfg = load_site(site)
        run, subscribers = cfg.resolve(cfg.warehouse), cfg.resolve(cfg.subscribers)
    known = WarehouseReader(run, subscribers=subscribers).known_regions()
    where = f"--site {site}" if site is not None else f"--run {run}"
    if known is None:
        typer.echo(f"note: --region not checked: {where} has no inventory naming a region",
                   err=True)  # fmt: skip
        return
    unknown = [r for r in regions if r not in known]
    if unknown:
        raise typer.BadParameter(
            f"{unknown[0]!r} is not a region of {where} (its regions: {known[:20]}); "
            "region names are case-sensitive",
            param_hint="--region",
        )


@users_app.command("list")
def users_list(
    users: UsersFile,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List users, their roles, regions and tokens (never a secret)."""
    store = _store(users)
    rows = [
        u.to_dict() | {"tokens": [t.to_dict() for t in store.tokens(u.name)]} for u in store.users()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        live = sum(not t["revoked"] for t in r["tokens"])
        typer.echo(
            f"{r['name']:<20} {r['role']:<9} {','.join(r['regions']) or '*':<20} "
            f"{'disabled' if r['disabled'] else 'enabled':<9} tokens={live}"
        )


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument()], users: UsersFile) -> None:
    """Disable a user: their tokens and password stop working at once."""
    _store(users).disable(name)
    typer.echo(f"{name}: disabled")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument()],
    users: UsersFile,
    expires_days: Annotated[
        float, typer.Option(help="Lifetime of the token [days]; 0 for no expiry.")
    ] = 90.0,
) -> None:
    """Make an API token for NAME and print it once (only its digest is stored)."""
    if expires_days < 0:
        raise typer.BadParameter(f"--expires-days: expected >= 0, got {expires_days}")
    token, info = _store(users).issue_token(name, expires_days or None)
    typer.echo(token)
    typer.echo(
        f"token id {info.token_id} for {name}; shown once, store it now "
        f"(revoke with `guardian users revoke {info.token_id} --users {users}`)",
        err=True,
    )


@users_app.command("revoke")
def users_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id (from `guardian users list`).")],
    users: UsersFile,
) -> None:
    """Revoke an API token."""
    _store(users).revoke(token_id)
    typer.echo(f"token {token_id}: revoked")


def api_command(
    users: UsersFile,
    run: Annotated[Path | None, typer.Option(help="Serve this run's warehouse read-only.")] = None,
    site: Annotated[Path | None, typer.Option(help="Site file of guardian operate.")] = None,
    state: Annotated[
        Path | None, typer.Option(help="guardian operate's state folder (with --site).")
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow this browser origin (repeatable).")
    ] = None,
    execute_per_minute: Annotated[
        int, typer.Option(help="POST /decision/execute calls per user per minute.")
    ] = 10,
    audit: Annotated[
        Path | None, typer.Option(help="Audit file of mutating calls (JSON lines).")
    ] = None,
    olt_cli_inventory: Annotated[
        Path | None, typer.Option(help="OLT CLI inventory for POST /olt/changes (docs/olt.md).")
    ] = None,
    cookie_secure: Annotated[
        bool, typer.Option(help="Dashboard session cookie only over HTTPS (behind TLS).")
    ] = False,
    console_refresh: Annotated[float, typer.Option(help="Dashboard refresh interval [s].")] = 10.0,
    webhook_allow_local: Annotated[
        bool,
        typer.Option(
            help="Allow webhooks to loopback, link-local (cloud metadata) and other "
            "local addresses (refused by default)."
        ),
    ] = False,
) -> None:
    """Serve the operator API (FastAPI, /api/v1; OpenAPI at /api/v1/openapi.json)."""
    import uvicorn

    from guardian_lib.api.app import ApiConfig, create_app
    from guardian_lib.api.users import require_users_file

    if (run is None) == (site is None):
        raise typer.BadParameter("give exactly one of --run RUN or --site SITE.yaml")
    if site is not None and state is None:
        raise typer.BadParameter("--site needs --state (guardian operate's state folder)")
    if run is not None and state is not None:
        raise typer.BadParameter("--state goes with --site; --run serves a run read-only")
    if not 1 <= port <= 65535:
        raise typer.BadParameter(f"--port: expected 1-65535, got {port}")
    if not 1.0 <= console_refresh <= 3600.0:
        raise typer.BadParameter(f"--console-refresh: expected 1-3600 s, got {console_refresh}")
    if execute_per_minute < 1:
        raise typer.BadParameter(f"--execute-per-minute: expected >= 1, got {execute_per_minute}")
    cooldown, subscribers, contacts, contacts_folder = 360.0, None, None, None
    if site is not None:
        from guardian_lib.operate.site import load_site

        cfg_site = load_site(site)
        run = cfg_site.resolve(cfg_site.warehouse)
        subscribers = cfg_site.resolve(cfg_site.subscribers)
        cooldown = float(cfg_site.autopilot_settings("approve").reboot_cooldown_minutes)
        if cfg_site.contacts is not None:  # POST /contacts writes to operate's drop folder
            contacts = cfg_site.contacts
            contacts_folder = cfg_site.resolve(contacts.folder)
    store = require_users_file(users)
    cfg = ApiConfig(run=run, users=users, state=state, audit=audit,
                    execute_per_minute=execute_per_minute, reboot_cooldown_minutes=cooldown,
                    cors_origins=list(cors_origin or []), subscribers=subscribers,
                    olt_cli_inventory=olt_cli_inventory,
                    cookie_secure=cookie_secure, console_refresh_s=console_refresh,
                    webhook_allow_local=webhook_allow_local, contacts=contacts,
                    contacts_folder=contacts_folder)  # fmt: skip
    # Checked before create_app, whose audit trail and webhooks may create the folder.
    if cfg.operate_state_ready() is False:
        from guardian_lib.operate.state import STATE_FILE

        typer.echo(
            f"warning: --state {state}: no guardian operate state there yet ({STATE_FILE} "
            f"missing{'' if state.is_dir() else ', and no such folder'}); the approval queue "
            f"answers 503 no-operate-state and /health says operate_state 'waiting' until "
            f"`guardian operate --state {state}` starts. If operate is already running, this "
            f"path is not its --state (`guardian decisions list --state {state}` checks it)",
            err=True,
        )
    app = create_app(cfg, store)
    typer.echo(f"guardian api on http://{host}:{port}/api/v1 (docs: /api/v1/docs; "
               f"dashboard: http://{host}:{port}/console)", err=True)  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def register(app: typer.Typer) -> None:
    """Add ``api`` and ``users`` to the ``guardian`` CLI."""
    app.command("api")(api_command)
    app.add_typer(users_app, name="users")
