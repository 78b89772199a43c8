"""Telnet access to the emulated OLT command lines (``OltCliServer(..., telnet=True)``).

A connection gets ``Login:`` and ``Password:`` (three tries, then it is closed; a wrong
login answers ``Login incorrect`` and asks again), then the same vendor command line as
over SSH (:class:`acs_emulator.olt.ssh._Terminal`). No option negotiation is offered; IAC
sequences a client sends are dropped.
"""

from __future__ import annotations

import asyncio
import secrets

__all__ = ["TelnetProcess", "telnet_login"]

_IAC = 255
_MAX_LINE = 256


class TelnetProcess:
    """What :class:`~acs_emulator.olt.ssh._Terminal` needs of an SSH process, over telnet."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.stdin = self.stdout = self

    def get_terminal_type(self) -> str:
        """A telnet line echoes what is typed, like an SSH terminal."""
        return "vt100"

    def write(self, text: str) -> None:
        self.writer.write(text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8"))

    async def read(self, n: int = 4096) -> str:
        data = await self.reader.read(n)
        out, i = bytearray(), 0
        while i < len(data):  # drop IAC commands (3 bytes for DO/DONT/WILL/WONT, else 2)
            if data[i] == _IAC and i + 1 < len(data):
                i += 3 if 251 <= data[i + 1] <= 254 else 2
                continue
            out.append(data[i])
            i += 1
        return out.decode("utf-8", "replace")

    def exit(self, status: int) -> None:
        self.writer.close()


async def _line(proc: TelnetProcess) -> str | None:
    buf = ""
    while True:
        chunk = await proc.read()
        if not chunk:
            return None
        for ch in chunk:
            if ch in "\r\n":
                if buf:  # an empty line is the LF of a CR LF split across reads
                    return buf
                continue
            if len(buf) < _MAX_LINE and ch.isprintable():
                buf += ch


async def telnet_login(proc: TelnetProcess, username: str, password: str, tries: int = 3) -> bool:
    """Ask ``Login:`` / ``Password:`` until a right pair (True) or ``tries`` wrong ones."""
    for _ in range(tries):
        proc.write("\nLogin: ")
        user = await _line(proc)
        if user is None:
            return False
        proc.write("Password: ")
        typed = await _line(proc)
        if typed is None:
            return False
        if secrets.compare_digest(user.encode(), username.encode()) and secrets.compare_digest(
            typed.encode(), password.encode()
        ):
            proc.write("\n")
            return True
        proc.write("\nLogin incorrect\n")
    return False
