"""What every emulated OLT command line shares: modes, a command table, error wording.

A vendor's command line (:mod:`acs_emulator.olt.cli_huawei`, :mod:`acs_emulator.olt.cli_zte`)
subclasses :class:`VendorCli` with its prompts, its regular expressions of commands and
its messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from acs_emulator.olt.provisioning import ConfigError, OltConfigBackend

__all__ = ["Reply", "VendorCli"]


@dataclass
class Reply:
    """An answer: text, and optionally a question about the next line typed.

    ``confirm`` gets a yes/no answer; ``password`` gets the line itself, which is not
    echoed (a password question such as FiberHome's after ``enable``).
    """

    text: str
    confirm: Callable[[bool], str] | None = None
    password: Callable[[str], Reply] | None = None


class VendorCli:
    """Common machinery: modes, a command table, pager and error wording."""

    page_lines = 20
    pager = "---- More ----"
    #: vendor-neutral error kind → message (filled with ``detail``)
    messages: dict[str, str] = {}
    syntax_error = "% Unknown command"
    commands: list[tuple[tuple[str, ...], str, str]] = []

    def __init__(self, backend: OltConfigBackend, hostname: str) -> None:
        self.backend = backend
        self.hostname = hostname
        self.mode = self.start_mode
        self.context: dict[str, int] = {}
        self._table = [(modes, re.compile(rx), name) for modes, rx, name in self.commands]

    start_mode = "user"
    #: What a password question after login accepts (the SSH server sets its login password).
    enable_password: str | None = None

    def banner(self) -> str:
        """Text shown after login, before the first prompt."""
        return ""

    def prompt(self) -> str:
        """The prompt of the current mode."""
        raise NotImplementedError

    def message(self, exc: ConfigError) -> str:
        """The vendor's wording of a refused change."""
        kind = "vlan" if exc.kind == "profile" and exc.detail.startswith("VLAN") else exc.kind
        return self.messages.get(kind, self.messages["failure"])

    def handle(self, line: str) -> Reply:
        """Answer one command line."""
        line = " ".join(line.split())
        if not line:
            return Reply("")
        for modes, rx, name in self._table:
            if self.mode in modes or "*" in modes:
                m = rx.fullmatch(line)
                if m is not None:
                    try:
                        out = getattr(self, name)(**m.groupdict())
                    except ConfigError as exc:
                        return Reply(self.message(exc))
                    return out if isinstance(out, Reply) else Reply(out)
        return Reply(self.syntax_error)
