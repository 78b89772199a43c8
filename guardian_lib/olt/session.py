"""One SSH command-line session with an OLT: login, prompts, paging, errors, retries.

:class:`CliSession` sends one command at a time and reads until the profile's prompt,
answering the pager ("---- More ----") and yes/no questions on the way. Each answer is
checked against the profile's error patterns; a refusal raises :class:`OltCommandError`
naming the OLT, the command (secrets masked) and the OLT's own line. A "busy" answer
means the OLT did not run the command, so it is retried a bounded number of times with
a growing pause; nothing else is retried (a command that may have run is never sent
twice).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import asyncssh

from guardian_lib.errors import GuardianError
from guardian_lib.olt.profiles import CliProfile

__all__ = [
    "OltError",
    "OltConnectError",
    "OltAuthError",
    "OltTimeoutError",
    "OltCommandError",
    "SshTarget",
    "CliSession",
]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\b\r\x07]")
#: Largest answer read for one command (a hostile or broken OLT cannot fill memory). [bytes]
MAX_ANSWER_BYTES = 4_000_000


def _tail(buf: str, quote: bool) -> str:
    return f"last output {buf[-200:]!r}" if quote else "output not shown (secret command)"


class OltError(GuardianError):
    """An OLT could not be driven (base class; the message names the OLT).

    ``rolled_back`` is set on the error of a failed authorization: whether the half-done
    change was undone (None: nothing had been changed).
    """

    rolled_back: bool | None = None


class OltConnectError(OltError):
    """No SSH session could be opened (address, port, host key)."""


class OltAuthError(OltError):
    """The OLT refused the user name or password."""


class OltTimeoutError(OltError):
    """The OLT did not answer with a prompt in time."""


class OltCommandError(OltError):
    """The OLT refused a command.

    Attributes
    ----------
    kind : str
        One of :data:`guardian_lib.olt.profiles.ERROR_KINDS`.
    command : str
        The command, secrets masked.
    line : str
        The OLT's error line.
    """

    def __init__(self, olt_id: str, kind: str, command: str, line: str) -> None:
        self.olt_id, self.kind, self.command, self.line = olt_id, kind, command, line
        super().__init__(f"OLT {olt_id}: {kind}: {command!r} answered {line!r}")


@dataclass
class SshTarget:
    """Where and how to reach one OLT's CLI.

    Attributes
    ----------
    olt_id, host : str
    port : int
        SSH port. [-]
    username : str
    password : str
        Never printed (``repr`` hides it).
    known_hosts : str or None
        Accepted host keys (OpenSSH ``known_hosts`` text); None only with ``insecure``.
    insecure : bool
        Accept any host key (lab use; the inventory must say so explicitly).
    timeout_s : float
        Connect and per-command timeout. [s]
    busy_retries : int
        Resends of a command the OLT answered "busy". [-]
    busy_backoff_s : float
        First pause before such a resend, doubled each time. [s]
    protocol : {'ssh', 'telnet'}
        ``telnet`` (clear text: the inventory must also say ``insecure``) for OLTs
        without SSH (:mod:`guardian_lib.olt.telnet`).
    """

    olt_id: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    known_hosts: str | None = field(default=None, repr=False)
    insecure: bool = False
    timeout_s: float = 10.0
    busy_retries: int = 3
    busy_backoff_s: float = 0.2
    protocol: str = "ssh"


class CliSession:
    """An open CLI session (use ``async with CliSession(target, profile) as s``).

    Parameters
    ----------
    target : SshTarget
    profile : CliProfile

    Attributes
    ----------
    transcript : list of str
        Every command sent, secrets masked (for dry-run comparison and audit).
    """

    def __init__(self, target: SshTarget, profile: CliProfile) -> None:
        self.target = target
        self.profile = profile
        self.transcript: list[str] = []
        self.last_prompt = ""
        self._conn: Any = None
        self._proc: Any = None
        self._prompt = re.compile(profile.prompt + r"\Z")
        self._config = re.compile(profile.config_prompt)
        self._paging = re.compile(profile.paging)
        self._confirm = re.compile(profile.confirm) if profile.confirm else None
        self._password = re.compile(profile.password_prompt) if profile.password_prompt else None

    async def __aenter__(self) -> CliSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, log in, wait for the first prompt and send the profile's setup."""
        t = self.target
        if t.protocol == "telnet":
            return await self._open_telnet()
        if t.known_hosts is None and not t.insecure:
            raise OltConnectError(
                f"OLT {t.olt_id}: no host key to check {t.host}:{t.port} against; give "
                "known_hosts in the inventory (or insecure: true in a lab)"
            )
        known = None if t.insecure else asyncssh.import_known_hosts(t.known_hosts or "")
        try:
            self._conn = await asyncio.wait_for(
                asyncssh.connect(
                    t.host, t.port, username=t.username, password=t.password,
                    known_hosts=known, client_keys=None, agent_path=None,
                    preferred_auth="password,keyboard-interactive",
                ),
                t.timeout_s,
            )  # fmt: skip
        except asyncssh.PermissionDenied:
            raise OltAuthError(
                f"OLT {t.olt_id}: {t.host}:{t.port} refused user {t.username!r} "
                "(wrong user name or password)"
            ) from None
        except TimeoutError:
            raise OltConnectError(
                f"OLT {t.olt_id}: no SSH answer from {t.host}:{t.port} in {t.timeout_s} s"
            ) from None
        except (OSError, asyncssh.Error) as exc:
            raise OltConnectError(
                f"OLT {t.olt_id}: cannot open SSH to {t.host}:{t.port}: {exc}"
            ) from None
        try:
            self._proc = await self._conn.create_process(term_type="vt100", encoding="utf-8")
            await self._read_until_prompt("<login>")
            for cmd in self.profile.setup:
                await self.run(cmd)
        except BaseException:  # e.g. the enable password refused: do not leak the session
            await self.close()
            raise

    async def _open_telnet(self) -> None:
        """Telnet: log in at ``Login:`` / ``Password:``, then as over SSH."""
        from guardian_lib.olt.telnet import TelnetLoginError, open_telnet

        t = self.target
        if not t.insecure:
            raise OltConnectError(
                f"OLT {t.olt_id}: telnet sends the login in clear text; say insecure: true "
                "in its inventory entry to accept that (or use SSH)"
            )
        try:
            chan = await asyncio.wait_for(
                open_telnet(t.host, t.port, t.username, t.password), t.timeout_s
            )
        except TelnetLoginError as exc:
            raise OltAuthError(
                f"OLT {t.olt_id}: {t.host}:{t.port} refused user {t.username!r} over telnet "
                f"({exc}: wrong user name or password)"
            ) from None
        except TimeoutError:
            raise OltConnectError(
                f"OLT {t.olt_id}: no telnet login from {t.host}:{t.port} in {t.timeout_s} s"
            ) from None
        except OSError as exc:
            raise OltConnectError(
                f"OLT {t.olt_id}: cannot open telnet to {t.host}:{t.port}: {exc}"
            ) from None
        self._conn = self._proc = chan
        try:
            await self._read_until_prompt("<login>")
            for cmd in self.profile.setup:
                await self.run(cmd)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the session (never raises)."""
        if self._conn is not None:
            try:
                self._proc.stdin.write_eof()
            except Exception:  # already closed by the OLT
                pass
            self._conn.close()
            try:
                await asyncio.wait_for(self._conn.wait_closed(), 2.0)
            except Exception:
                pass
            self._conn = None

    @property
    def in_config_mode(self) -> bool:
        """Whether the last prompt was the configuration-mode prompt."""
        return bool(self._config.search(self.last_prompt))

    async def run(self, command: str, shown: str | None = None) -> str:
        """Send one command and return its answer (echo and prompt removed).

        Parameters
        ----------
        command : str
            Exactly what is sent.
        shown : str, optional
            The same command with secrets masked (what errors and the transcript show).

        Raises
        ------
        OltCommandError
            The answer matched one of the profile's error patterns (after the allowed
            retries if it was "busy").
        OltTimeoutError
        """
        shown = command if shown is None else shown
        delay = self.target.busy_backoff_s
        for attempt in range(self.target.busy_retries + 1):
            self.transcript.append(shown)
            self._proc.stdin.write(command + "\n")
            answer = await self._read_until_prompt(shown, quote_output=command == shown)
            lines = answer.split("\n")
            if lines and lines[0].strip() == command.strip():  # the OLT echoed the command
                answer = "\n".join(lines[1:])
            error = self.profile.classify(answer)
            if error is None:
                return answer
            kind, line = error
            if kind != "busy" or attempt == self.target.busy_retries:
                raise OltCommandError(self.target.olt_id, kind, shown, line)
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def leave_to_config(self, max_exits: int = 4) -> None:
        """Send ``exit_mode`` until the configuration-mode prompt shows (bounded)."""
        for _ in range(max_exits):
            if self.in_config_mode:
                return
            await self.run(self.profile.exit_mode)

    async def _read_until_prompt(self, shown: str, quote_output: bool = True) -> str:
        """Read until a prompt ends the output; page through and confirm on the way.

        Errors quote the end of the output, except after a command that carried a secret
        (the OLT may have echoed it).
        """
        buf = ""
        answered = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.target.timeout_s
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise OltTimeoutError(
                    f"OLT {self.target.olt_id}: no prompt within {self.target.timeout_s} s "
                    f"after {shown!r}; " + _tail(buf, quote_output)
                )
            try:
                chunk = await asyncio.wait_for(self._proc.stdout.read(65536), left)
            except TimeoutError:
                continue
            if not chunk:
                raise OltConnectError(
                    f"OLT {self.target.olt_id}: session closed after {shown!r}; "
                    + _tail(buf, quote_output)
                )
            buf += _ANSI.sub("", chunk)
            if len(buf) > MAX_ANSWER_BYTES:
                raise OltCommandError(
                    self.target.olt_id, "failure", shown, f"answer over {MAX_ANSWER_BYTES} bytes"
                )
            pager = self._paging.search(buf)
            if pager is not None:
                buf = buf[: pager.start()] + buf[pager.end() :].lstrip(" ")
                self._proc.stdin.write(self.profile.paging_continue)
                continue
            if self._password is not None:
                asked = self._password.search(buf)
                if asked is not None:  # e.g. FiberHome `enable`: the login password again
                    if answered:
                        raise OltAuthError(
                            f"OLT {self.target.olt_id}: password refused after {shown!r} "
                            "(the login password is also the enable password)"
                        )
                    answered = True
                    buf = buf[: asked.start()] + buf[asked.end() :]
                    self._proc.stdin.write(self.target.password + "\n")
                    continue
            if self._confirm is not None and self._confirm.search(buf):
                buf = self._confirm.sub("", buf)
                self._proc.stdin.write(self.profile.confirm_answer + "\n")
                continue
            m = self._prompt.search(buf)
            if m is not None:
                self.last_prompt = m.group(0)
                return buf[: m.start()].strip("\n")
