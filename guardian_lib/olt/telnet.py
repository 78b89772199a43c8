"""A minimal telnet client for OLT command lines that speak only telnet (many AN5516).

:func:`open_telnet` connects, answers the ``Login:`` / ``Password:`` questions and returns
a :class:`TelnetChannel` that :class:`~guardian_lib.olt.session.CliSession` reads and
writes like an SSH process (``stdin.write``, ``stdout.read``). Telnet option negotiation
(RFC 854 / 855) is refused: every ``DO`` is answered ``WONT`` and every ``WILL`` ``DONT``,
and IAC sequences (also those split across reads) never reach the caller.

Telnet carries the login in clear text: the inventory asks for it explicitly
(``protocol: telnet`` with ``insecure: true``); prefer SSH wherever the OLT offers it.
"""

from __future__ import annotations

import asyncio
import re

__all__ = ["TelnetChannel", "open_telnet", "TelnetLoginError", "TelnetProtocolError"]

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
_LOGIN = re.compile(r"(?i)(login|username|user name)\s*:\s*$")
_PASSWORD = re.compile(r"(?i)password\s*:\s*$")
#: Longest login banner read before giving up. [bytes]
_MAX_BANNER = 65536
#: Longest telnet sequence (sub-negotiation) kept while waiting for its end. [bytes]
_MAX_PENDING = 4096


class TelnetLoginError(Exception):
    """The OLT asked for the login again (or closed) after the password."""


class TelnetProtocolError(ConnectionError):
    """The peer does not behave like a telnet login: no login question, an option sequence
    or an answer that never ends, a connection closed before the password was asked."""


class TelnetChannel:
    """Reads and writes text over a telnet connection (also its own stdin / stdout).

    Parameters
    ----------
    reader, writer : asyncio streams
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.stdin = self.stdout = self
        self._pending = b""  # an IAC sequence cut by the end of a read
        self.pushback = ""  # text read during login, given to the next read

    def write(self, text: str) -> None:
        """Send text (``IAC`` bytes doubled, newlines as CR LF)."""
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
        self.writer.write(data.replace(bytes([IAC]), bytes([IAC, IAC])))

    def write_eof(self) -> None:
        """Half-close (never raises)."""
        try:
            self.writer.write_eof()
        except (OSError, RuntimeError):
            pass

    async def read(self, n: int = 65536) -> str:
        """Up to ``n`` bytes of text; ``""`` when the OLT closed the connection."""
        if self.pushback:
            text, self.pushback = self.pushback, ""
            return text
        while True:
            data = await self.reader.read(n)
            if not data:
                return ""
            text = self._filter(self._pending + data)
            if len(self._pending) > _MAX_PENDING:
                # a hostile or broken peer: an option sequence that never ends
                raise TelnetProtocolError(
                    f"telnet: option sequence longer than {_MAX_PENDING} bytes from the OLT"
                )
            if text:
                return text.decode("utf-8", "replace")

    def _filter(self, data: bytes) -> bytes:
        """Strip IAC sequences, refuse options; keep an incomplete sequence for later."""
        out = bytearray()
        i, n = 0, len(data)
        self._pending = b""
        while i < n:
            b = data[i]
            if b != IAC:
                out.append(b)
                i += 1
                continue
            if i + 1 >= n:
                self._pending = data[i:]
                break
            cmd = data[i + 1]
            if cmd == IAC:  # an escaped 255 data byte
                out.append(IAC)
                i += 2
            elif cmd in (DO, DONT, WILL, WONT):
                if i + 2 >= n:
                    self._pending = data[i:]
                    break
                if cmd in (DO, WILL):
                    self.writer.write(bytes([IAC, WONT if cmd == DO else DONT, data[i + 2]]))
                i += 3
            elif cmd == SB:  # sub-negotiation: skip to IAC SE
                end = data.find(bytes([IAC, SE]), i + 2)
                if end < 0:
                    self._pending = data[i:]
                    break
                i = end + 2
            else:  # NOP, GA, … : two bytes
                i += 2
        return bytes(out)

    def close(self) -> None:
        """Close the connection."""
        self.writer.close()

    async def wait_closed(self) -> None:
        """Wait until the connection is closed."""
        try:
            await self.writer.wait_closed()
        except (OSError, ConnectionError):
            pass


async def _read_until(chan: TelnetChannel, pattern: re.Pattern[str], buf: str) -> str:
    while not pattern.search(buf):
        if len(buf) > _MAX_BANNER:
            raise TelnetProtocolError("no login question in the first 64 KiB")
        chunk = await chan.read()
        if not chunk:
            raise TelnetProtocolError("connection closed during login")
        buf += chunk.replace("\r", "")
    return buf


async def open_telnet(host: str, port: int, username: str, password: str) -> TelnetChannel:
    """Connect and log in; the channel is left after the password (the CLI prompt follows).

    Raises
    ------
    TelnetLoginError
        The OLT closed, or asked for the login again after the password.
    TelnetProtocolError
        The peer never asked for a login, hung up before the password, or sent a
        banner, option sequence or answer beyond the bounds (an :class:`OSError`).
    OSError
        No connection.
    """
    reader, writer = await asyncio.open_connection(host, port)
    chan = TelnetChannel(reader, writer)
    try:
        await _read_until(chan, _LOGIN, "")
        chan.write(username + "\n")
        await _read_until(chan, _PASSWORD, "")
        chan.write(password + "\n")
        # refused logins ask again; an accepted one shows the CLI (checked by the caller)
        after = ""
        while True:
            chunk = await chan.read()
            if not chunk:
                raise TelnetLoginError("connection closed after the password")
            after += chunk.replace("\r", "")
            if len(after) > _MAX_BANNER:
                raise TelnetProtocolError("no answer to the password in the first 64 KiB")
            if _LOGIN.search(after) or re.search(r"(?i)incorrect|failed|denied", after):
                raise TelnetLoginError("login refused")
            if after.strip():
                chan.pushback = after
                return chan
    except BaseException:
        chan.close()
        raise
