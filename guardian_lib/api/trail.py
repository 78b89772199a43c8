"""Append-only record of every mutating API call, with the caller's identity.

One JSON line per call (mode 0600, flushed and fsynced before the answer is sent):
``ts`` (UTC ISO 8601), ``user``, ``role``, ``token_id``, ``method``, ``path``,
``action`` (``approve``, ``reject``, ``execute``, ``revoke_token``), ``target``,
``status`` (the HTTP status answered), ``comment`` and ``client``. A denied attempt
(403, 409, 429) is recorded too: who tried to change what is part of the record.

The autopilot's own audit trail (``audit.duckdb``) stays ``guardian operate``'s: it is
held open by the running service. Decisions approved through the API carry the user
into it through the approval queue (``decided_by``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["ApiTrail"]

_log = logging.getLogger(__name__)


class ApiTrail:
    """Writer and reader of the API's JSON-lines audit file.

    Parameters
    ----------
    path : path
        The file (created with mode 0600).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)

    def record(self, **row: Any) -> None:
        """Append one call (``ts`` is added)."""
        row = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), **row}
        line = json.dumps(row, sort_keys=True, default=str) + "\n"
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            except FileNotFoundError:
                # The file or its folder was removed while the API runs. The call this
                # records has already taken effect: answering 500 would hide it, and
                # failing every later call would leave them unrecorded. Start the file
                # again (0600) and say so in the log.
                _log.warning("API audit file %s was missing; started it again", self.path)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def rows(self) -> list[dict[str, Any]]:
        """Every recorded call, oldest first."""
        text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
