"""``guardian acs …``: run the emulated ACS (registered through ``guardian.commands``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["register", "serve_command"]


def serve_command(
    host: Annotated[str, typer.Option(help="Bind address of the CWMP listener.")] = "127.0.0.1",
    nbi_host: Annotated[
        str,
        typer.Option(help="Bind address of the NBI (keep it on loopback or a management LAN)."),
    ] = "127.0.0.1",
    cwmp_port: Annotated[int, typer.Option(help="CWMP port (CPEs inform here).")] = 7547,
    nbi_port: Annotated[int, typer.Option(help="GenieACS-compatible NBI port.")] = 7557,
    db: Annotated[Path, typer.Option(help="SQLite store.")] = Path("data/acs/acs.sqlite"),
    cpe_auth: Annotated[
        str,
        typer.Option(
            help="CPE authentication: none (GenieACS default), basic or digest. "
            "Passwords from $GUARDIAN_ACS_CPE_PASSWORD or $GUARDIAN_ACS_CPE_PASSWORDS_FILE."
        ),
    ] = "none",
    auth_overrides: Annotated[
        Path | None,
        typer.Option(
            help='JSON {"<device id>": "none|basic|digest"} for CPEs that cannot do the '
            "fleet mode (e.g. crash on a Digest challenge)."
        ),
    ] = None,
    nbi_token_file: Annotated[
        Path | None,
        typer.Option(help="File holding the NBI bearer token (or set $GUARDIAN_NBI_TOKEN)."),
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="Run the NBI without a token (only with a loopback --nbi-host; "
            "anyone on this machine can then send tasks).",
        ),
    ] = False,
    cr_allowed_hosts: Annotated[
        str,
        typer.Option(
            help="Comma-separated hosts/networks connection requests may go to besides "
            "the address each CPE informs from (CPEs behind NAT)."
        ),
    ] = "",
    allow_dev_cr_password: Annotated[
        bool,
        typer.Option(help="Allow the documented development connection-request password."),
    ] = False,
    presets: Annotated[
        Path | None, typer.Option(help="JSON file of presets (see docs/tr069.md).")
    ] = None,
    zero_touch: Annotated[
        bool,
        typer.Option(help="Apply the built-in PPPoE + Wi-Fi profile on '0 BOOTSTRAP'."),
    ] = False,
    max_sessions: Annotated[int, typer.Option(help="Open sessions before 503.")] = 5000,
    max_new_sessions_per_s: Annotated[
        float,
        typer.Option(help="New sessions admitted per second before 503 (0: no limit)."),
    ] = 0.0,
    retry_after: Annotated[int, typer.Option(help="Retry-After of a 503 answer. [s]")] = 5,
    file_port: Annotated[int, typer.Option(help="File server port (CPE downloads).")] = 7567,
    file_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of files uploaded through the NBI (default: <db>/../files)."),
    ] = None,
    file_server_url: Annotated[
        str,
        typer.Option(help="Base URL CPEs download from (default: this file server)."),
    ] = "",
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate (chain): serve CWMP and files over HTTPS."),
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    cr_allow_basic: Annotated[
        bool,
        typer.Option(help="Answer Basic challenges of connection-request listeners."),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="ACS processes on the CWMP port (SO_REUSEPORT) over the shared store; "
            "process 0 also serves the NBI and files. Admission limits are split "
            "evenly between them.",
        ),
    ] = 1,
) -> None:
    """Run the CWMP ACS and its NBI until interrupted."""
    import asyncio
    import json
    import logging
    import signal

    from rich.console import Console

    from acs_emulator.cwmp import AcsConfig, AcsService, AuthPolicy, load_presets
    from acs_emulator.cwmp.presets import zero_touch_preset
    from acs_emulator.cwmp.server import password_lookup_from_env
    from acs_emulator.cwmp.service import freeze_startup_heap, server_tls_context

    if cpe_auth not in ("none", "basic", "digest"):
        raise typer.BadParameter(f"expected none, basic or digest, got {cpe_auth!r}")
    console = Console(stderr=True)
    logging.basicConfig(level=logging.WARNING)
    token = _nbi_token(nbi_token_file, no_auth=no_auth, nbi_host=nbi_host)
    preset_list = load_presets(presets) if presets else []
    if zero_touch:
        preset_list.append(zero_touch_preset())
    overrides = json.loads(auth_overrides.read_text()) if auth_overrides else {}
    bad = {k: v for k, v in overrides.items() if v not in ("none", "basic", "digest")}
    if bad:
        raise typer.BadParameter(f"{auth_overrides}: modes must be none/basic/digest, got {bad}")
    config = AcsConfig(
        auth=AuthPolicy(
            mode=cpe_auth,  # type: ignore[arg-type]
            passwords=password_lookup_from_env(),
            per_device=overrides,
        ),
        presets=preset_list,
        max_sessions=max_sessions,
        max_new_sessions_per_s=max_new_sessions_per_s,
        retry_after_s=retry_after,
        file_dir=str(file_dir or db.parent / "files"),
        file_server_url=file_server_url,
        cr_allow_basic=cr_allow_basic,
        cr_allowed_hosts=[h.strip() for h in cr_allowed_hosts.split(",") if h.strip()],
        cr_allow_dev_password=allow_dev_cr_password,
    )
    if (tls_cert is None) != (tls_key is None):
        raise typer.BadParameter("--tls-cert and --tls-key go together")
    tls = server_tls_context(tls_cert, tls_key) if tls_cert and tls_key else None
    if workers > 1:
        _serve_workers(
            workers, db, host, cwmp_port, nbi_host, nbi_port, file_port, token, tls, config
        )
        return
    svc = AcsService(
        db,
        host,
        cwmp_port,
        nbi_port,
        config=config,
        nbi_token=token,
        nbi_host=nbi_host,
        file_port=file_port,
        ssl_context=tls,
    )
    if cpe_auth == "none":
        console.print("[yellow]warning:[/] CPEs are not authenticated (--cpe-auth none)")
    if token is None:
        console.print(
            "[yellow]warning:[/] --no-auth: the NBI has no bearer token (anyone on this "
            "machine can send tasks)"
        )
    if allow_dev_cr_password:
        console.print("[yellow]warning:[/] the documented connection-request password is allowed")

    async def main() -> None:
        await svc.start()
        freeze_startup_heap()
        console.print(
            f"[green]ACS[/] CWMP {svc.cwmp_url}  NBI {svc.nbi_url}  files {svc.file_url}  "
            f"store {db}  (Ctrl-C stops)"
        )
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await stop.wait()
        finally:
            await svc.close()  # flushes the store

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        console.print("stopped")


def _serve_workers(
    workers: int,
    db: Path,
    host: str,
    cwmp_port: int,
    nbi_host: str,
    nbi_port: int,
    file_port: int,
    token: str | None,
    tls: Any,
    config: Any,
) -> None:
    """``serve --workers N``: supervise N ACS processes until SIGTERM/SIGINT."""
    from rich.console import Console

    from acs_emulator.cwmp.workers import AcsWorkers, WorkerStartError

    console = Console(stderr=True)
    pool = AcsWorkers(
        workers,
        db,
        lambda: config,  # each forked process gets its own copy
        host=host,
        cwmp_port=cwmp_port,
        nbi_port=nbi_port,
        nbi_host=nbi_host,
        file_port=file_port,
        nbi_token=token,
        ssl_context=tls,
    )
    try:
        pool.start()
    except WorkerStartError as exc:
        pool.stop()
        raise typer.BadParameter(str(exc)) from exc
    scheme = "https" if tls is not None else "http"
    console.print(
        f"[green]ACS[/] {workers} workers (pids {' '.join(map(str, pool.pids))})  "
        f"CWMP {scheme}://{host}:{pool.cwmp_port}/  NBI http://{nbi_host}:{pool.nbi_port}  "
        f"files {pool.file_url}  store {db}  (Ctrl-C stops)"
    )
    pool.serve_forever()
    console.print("stopped")


def _nbi_token(token_file: Path | None, *, no_auth: bool, nbi_host: str) -> str | None:
    """The NBI token (file, else ``$GUARDIAN_NBI_TOKEN``); ``None`` only if allowed.

    Raises
    ------
    typer.BadParameter
        When there is no token and ``--no-auth`` was not given, or ``--no-auth`` is
        combined with a non-loopback ``--nbi-host``.
    """
    import os

    from acs_emulator.cwmp.service import is_loopback

    token = token_file.read_text().strip() if token_file else None
    token = token or os.environ.get("GUARDIAN_NBI_TOKEN") or None
    if token is None and not no_auth:
        raise typer.BadParameter(
            "the NBI needs a bearer token: --nbi-token-file FILE or $GUARDIAN_NBI_TOKEN "
            "(or --no-auth with a loopback --nbi-host, for a lab machine)"
        )
    if token is None and not is_loopback(nbi_host):
        raise typer.BadParameter(
            f"--no-auth is only allowed on loopback, got --nbi-host {nbi_host}"
        )
    return token


def register(app: typer.Typer) -> None:
    """Add the ``acs`` command group to the ``guardian`` CLI."""
    acs = typer.Typer(
        help="Emulated TR-069 ACS with a GenieACS-compatible NBI.", no_args_is_help=True
    )
    acs.command("serve")(serve_command)
    from acs_emulator.cwmp.firmware_cli import firmware_app

    acs.add_typer(firmware_app, name="firmware")
    app.add_typer(acs, name="acs")
