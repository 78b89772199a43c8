"""SSH servers for the emulated OLT command lines (asyncssh), one port per OLT, loopback.

:class:`OltCliServer` serves each :class:`~acs_emulator.olt.provisioning.OltConfigBackend`
with its vendor's command line (:mod:`acs_emulator.olt.cli_vendors`): password login,
the vendor's banner and prompts, echo when the client asked for a terminal, a pager
after ``page_lines`` lines (space continues, ``q`` stops) and yes/no questions.
:func:`write_cli_inventory` writes what ``guardian olt`` needs to reach them: the
inventory, a 0600 secret file and the servers' host keys.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
import yaml

from acs_emulator.olt.cli_vendors import Reply, VendorCli, cli_for
from acs_emulator.olt.provisioning import OltConfigBackend
from guardian_lib._threaded import ThreadedServer

__all__ = ["OltCliServer", "write_cli_inventory", "PROFILE_OF_MODEL"]

#: Library CLI profile that matches each emulated vendor family.
PROFILE_OF_MODEL: dict[str, str] = {
    "huawei": "huawei_ma5800",
    "zte": "zte_c300",
    "zte_c6": "zte_c600",
    "fiberhome": "fiberhome_an5516",
}
_MAX_LINE = 4096


def profile_name(backend: OltConfigBackend) -> str:
    """The library profile to drive ``backend``'s CLI with."""
    if backend.vendor == "zte" and backend.model.upper().startswith("C6"):
        return PROFILE_OF_MODEL["zte_c6"]
    return PROFILE_OF_MODEL[backend.vendor]


class _Auth(asyncssh.SSHServer):
    def __init__(self, username: str, password: str) -> None:
        self._user, self._pw = username, password

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return secrets.compare_digest(username, self._user) and secrets.compare_digest(
            password, self._pw
        )


class _Terminal:
    """One login session: reads keystrokes, answers through a VendorCli."""

    def __init__(self, process: Any, cli: VendorCli) -> None:
        self.p = process
        self.cli = cli
        self.echo = process.get_terminal_type() is not None
        self.pages: list[str] = []
        self.confirm: Callable[[bool], str] | None = None
        self.password: Callable[[str], Reply] | None = None

    def write(self, text: str) -> None:
        self.p.stdout.write(text.replace("\r\n", "\n").replace("\n", "\r\n"))

    def emit(self, text: str) -> None:
        """Write an answer, paginated, then the prompt."""
        lines = text.split("\n") if text else []
        n = self.cli.page_lines
        if len(lines) > n:
            self.pages = ["\n".join(lines[i : i + n]) for i in range(n, len(lines), n)]
            self.write("\n".join(lines[:n]) + "\n" + self.cli.pager)
            return
        self.write((text + "\n" if text else "") + self.cli.prompt())

    def page_key(self, ch: str) -> None:
        erase = "\x1b[" + str(len(self.cli.pager)) + "D\x1b[K"
        if ch in "qQ":
            self.pages = []
            self.write(erase + "\n" + self.cli.prompt())
            return
        page = self.pages.pop(0)
        if self.pages:
            self.write(erase + page + "\n" + self.cli.pager)
        else:
            self.write(erase + page + "\n" + self.cli.prompt())

    def line(self, line: str) -> None:
        if self.password is not None:  # never echoed
            done_pw, self.password = self.password, None
            self.write("\n")
            answer = done_pw(line)
            if answer.password is not None:  # refused: asked again
                self.password = answer.password
                self.write(answer.text)
            else:
                self.emit(answer.text)
            return
        if self.echo:
            self.write(line + "\n")
        if self.confirm is not None:
            done, self.confirm = self.confirm, None
            self.emit(done(line.strip().lower() in ("y", "yes")))
            return
        reply = self.cli.handle(line)
        if reply.password is not None:
            self.password = reply.password
            self.write(reply.text)
            return
        if reply.confirm is not None:
            self.confirm = reply.confirm
            self.write(reply.text)
            return
        self.emit(reply.text)

    async def run(self) -> None:
        self.write(self.cli.banner() + self.cli.prompt())
        buf, last = "", ""
        while True:
            data = await self.p.stdin.read(4096)
            if not data:
                return
            for ch in data:
                if ch == "\n" and last == "\r":  # the LF of a CR LF (telnet): not a key
                    last = ch
                    continue
                if self.pages:
                    self.page_key(ch)
                elif ch in "\r\n":
                    line, buf = buf, ""
                    self.line(line)
                elif len(buf) < _MAX_LINE and ch.isprintable():
                    buf += ch
                last = ch


class OltCliServer(ThreadedServer):
    """SSH command lines of several emulated OLTs on one event loop.

    Parameters
    ----------
    backends : list of OltConfigBackend
    username, password : str, optional
        Login accepted by every OLT (random password by default).
    host : str
        Loopback address to bind.
    telnet : bool
        Serve telnet (``Login:`` / ``Password:``, :mod:`acs_emulator.olt.telnet`) instead
        of SSH, like many FiberHome AN5516.
    """

    _thread_name = "olt-cli"
    _server_label = "OLT CLI servers"

    def __init__(
        self,
        backends: list[OltConfigBackend],
        username: str = "guardian",
        password: str | None = None,
        host: str = "127.0.0.1",
        telnet: bool = False,
    ) -> None:
        self.backends = {b.olt_id: b for b in backends}
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.host = host
        self.telnet = telnet
        self.key = asyncssh.generate_private_key("ssh-ed25519")
        self.ports: dict[str, int] = {}
        self.sessions = 0
        self._servers: list[Any] = []

    def known_hosts(self) -> str:
        """OpenSSH ``known_hosts`` lines for every served OLT."""
        pub = self.key.export_public_key("openssh").decode().strip()
        return "".join(f"[{self.host}]:{port} {pub}\n" for port in self.ports.values())

    async def start(self) -> None:
        """Bind one port per OLT on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        for olt_id, backend in self.backends.items():
            if self.telnet:
                await self._start_telnet(olt_id, backend)
                continue

            async def handle(process: Any, b: OltConfigBackend = backend) -> None:
                self.sessions += 1
                try:
                    cli = cli_for(b)
                    cli.enable_password = self.password
                    await _Terminal(process, cli).run()
                except (asyncssh.Error, ConnectionError, BrokenPipeError):
                    pass
                finally:
                    process.exit(0)

            server = await asyncssh.create_server(
                lambda: _Auth(self.username, self.password), self.host, 0,
                server_host_keys=[self.key], process_factory=handle, line_editor=False,
                encoding="utf-8",
            )  # fmt: skip
            self._servers.append(server)
            self.ports[olt_id] = server.sockets[0].getsockname()[1]

    async def _start_telnet(self, olt_id: str, backend: OltConfigBackend) -> None:
        from acs_emulator.olt.telnet import TelnetProcess, telnet_login

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            process = TelnetProcess(reader, writer)
            try:
                if await telnet_login(process, self.username, self.password):
                    self.sessions += 1
                    cli = cli_for(backend)
                    cli.enable_password = self.password
                    await _Terminal(process, cli).run()
            except (ConnectionError, BrokenPipeError):
                pass
            finally:
                process.exit(0)

        server = await asyncio.start_server(handle, self.host, 0)
        self._servers.append(server)
        self.ports[olt_id] = server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        """Release the ports (end of :meth:`serve`)."""
        for s in self._servers:
            s.close()
            await s.wait_closed()


def _snmp_entry(olt_id: str, host: str, snmp: dict | None, ref: str) -> dict:
    if snmp is None or olt_id not in snmp["ports"]:
        return {}
    return {"snmp_set": {"host": host, "port": snmp["ports"][olt_id],
                         "version": snmp["version"], "credentials": ref + "-rw"}}  # fmt: skip


def write_cli_inventory(
    path: str | Path,
    server: OltCliServer,
    credentials_ref: str = "emulator",
    snmp: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write the OLT CLI inventory for ``guardian olt``, its 0600 secret file and host keys.

    With ``snmp`` (``{"ports": {olt_id: UDP port}, "credentials": EmulatorCredentials,
    "version": "2c" | "3"}``) those OLTs get an ``snmp_set:`` entry and the secret file
    the agents' write community / v3 write user under ``<credentials_ref>-rw``.

    Returns
    -------
    inventory, secrets : Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secrets_path = path.with_name(path.stem + ".secrets.yaml")
    hosts_path = path.with_name(path.stem + ".known_hosts")
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_TRUNC
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        blocks: dict[str, Any] = {
            credentials_ref: {"username": server.username, "password": server.password}
        }
        if snmp is not None:
            c = snmp["credentials"]
            blocks[credentials_ref + "-rw"] = {
                "write_community": c.write_community, "v3_user": c.write_user.user,
                "auth_key": c.write_user.auth_key, "priv_key": c.write_user.priv_key,
            }  # fmt: skip
        yaml.safe_dump(blocks, fh)
    hosts_path.write_text(server.known_hosts(), encoding="utf-8")
    inventory = {
        "secrets_file": secrets_path.name,
        "known_hosts": hosts_path.name,
        "defaults": {"timeout_s": 10.0, "busy_retries": 3, "busy_backoff_s": 0.05},
        "olts": [
            {
                "olt_id": olt_id,
                "host": server.host,
                "port": port,
                "profile": profile_name(server.backends[olt_id]),
                "credentials": credentials_ref,
                **({"protocol": "telnet", "insecure": True} if server.telnet else {}),
                **_snmp_entry(olt_id, server.host, snmp, credentials_ref),
            }
            for olt_id, port in server.ports.items()
        ],
    }
    path.write_text(yaml.safe_dump(inventory, sort_keys=False), encoding="utf-8")
    return path, secrets_path
