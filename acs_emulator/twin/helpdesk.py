"""The twin's helpdesk: the simulated customers' calls as contact files for operate.

On a real network the customers who lose service call the ISP's helpdesk, and its CRM
writes those contacts where ``guardian operate`` reads them (the site file's
``contacts:`` drop folder, docs/operate.md). :class:`HelpdeskDrop` plays that CRM for
``guardian twin --serve-network --helpdesk``: it is a sink of the running simulation
(:class:`simulator.engine.TickSink`) that writes each tick's ``CUSTOMER_CALL`` events as
one CSV file into the drop folder, with the columns operate reads (``ts``,
``customer_id``, ``channel``, ``reason``, ``contact_id``). A file is written under a
hidden ``.part`` name and renamed, so operate never reads half of one.

The calls are the simulator's own (who calls, when and why: the scenario's customer
behaviour, its own random stream), so the simulated data are the same with or without
the helpdesk; the files only make them visible to operate, as the backtest's loop sees
them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from pathlib import Path
from typing import Any

__all__ = ["HelpdeskDrop", "CONTACT_COLUMNS"]

#: Columns of the files written (those of operate's contact drop folder).
CONTACT_COLUMNS = ("ts", "customer_id", "channel", "reason", "contact_id")

#: Calls held while no folder is set (before the site file is written). [-]
_MAX_HELD = 10_000


class HelpdeskDrop:
    """Writes the simulation's customer calls into a contacts drop folder, a file per tick.

    Parameters
    ----------
    folder : path, optional
        The drop folder (created when missing). Until it is set (:meth:`set_folder`),
        calls are held in memory, the newest :data:`_MAX_HELD` at most.
    channel : str, default "phone"
        The ``channel`` of every contact.

    Attributes
    ----------
    files : int
        Files written. [-]
    contacts : int
        Contacts written. [-]
    """

    def __init__(self, folder: str | Path | None = None, channel: str = "phone") -> None:
        self.folder: Path | None = None
        self.channel = channel
        # Contact ids unique across twins writing to the same folder (operate keeps the
        # ids it has read, also across its restarts).
        self._run = uuid.uuid4().hex[:8]
        self._held: list[dict[str, str]] = []
        self._seq = 0
        self.files = 0
        self.contacts = 0
        if folder is not None:
            self.set_folder(folder)

    def set_folder(self, folder: str | Path) -> None:
        """Write into ``folder`` from now on (and the calls held so far)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if self._held:
            rows, self._held = self._held, []
            self._write(rows, "held")

    def on_tick(self, sim: Any, state: Any, events: list[Any]) -> None:
        """:class:`simulator.engine.TickSink`: this tick's calls as one file."""
        rows = []
        for e in events:
            if e.type != "CUSTOMER_CALL":
                continue
            try:
                reason = json.loads(e.payload).get("reason")
            except (ValueError, AttributeError):
                reason = None
            self._seq += 1
            rows.append({
                "ts": sim.ts_of(e.now_s).isoformat(), "customer_id": str(e.entity_id),
                "channel": self.channel, "reason": "" if reason is None else str(reason),
                "contact_id": f"twin-{self._run}-{self._seq}",
            })  # fmt: skip
        if not rows:
            return
        if self.folder is None:
            self._held = (self._held + rows)[-_MAX_HELD:]
            return
        self._write(rows, f"t{int(sim.tick_index):06d}")

    def _write(self, rows: list[dict[str, str]], tag: str) -> None:
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=CONTACT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        name = f"calls-{self._run}-{tag}.csv"
        tmp = self.folder / f".{name}.part"
        tmp.write_text(buf.getvalue(), encoding="utf-8")
        os.replace(tmp, self.folder / name)
        self.files += 1
        self.contacts += len(rows)
