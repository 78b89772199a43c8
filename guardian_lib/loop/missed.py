"""Missed polls: the one rule for an ONU without a reading in a step, whatever the source.

An ONU the collection did not read in a step (no SNMP row in ``guardian operate``'s poll,
no SILVER row in ``guardian decide``'s replay) keeps its previous reading for
``grace_steps`` steps: a missed poll is not an outage. Missing longer, it is "not read"
(``online`` NaN): the observer counts it offline, the scorer's features see NaN, as the
batch features do. Both commands apply :class:`MissedPolls` with the site file's
``missed_poll_grace_steps`` (default :data:`MISSED_POLL_GRACE_STEPS`).

An OLT that stops answering SNMP while others answer is the same case for its ONUs: its
ONUs have no reading (``guardian decide`` cannot tell the two apart in SILVER either), so
they keep their last one for the grace and count as missed past it. A reading held for
hours would hide an OLT that lost power, and the scorer would see stale levels as fresh.

A step without any reading at all (every OLT silent in ``guardian operate``, a hole in the
export in ``guardian decide``) is a *gap* (:meth:`MissedPolls.step`): the collection
stopped, the network did not, so the previous readings are repeated and no ONU's count of
missed steps moves. A gap before the first reading (operate started while no OLT answers)
has nothing to repeat: every ONU is "online, readings unknown" (below) until a poll reads
one. Both commands apply the rule through :meth:`MissedPolls.step`.

Evidence from outside the collection may say that an unread ONU has service
(``guardian operate``: its CPE informed the ACS after its OLT went silent, see
:mod:`guardian_lib.operate.silent`). Such an ONU (``known_up``) is, past the grace,
"online, readings unknown": ``online`` 1, ``loss_pct`` 0 (service, as for a registered
ONU whose OLT reports no loss), every other measure NaN. ``guardian operate`` records
each such ONU of each cycle as an ``ACS_SEEN`` event, so ``guardian decide`` and
``guardian alerts replay`` apply the same evidence to the same steps
(:mod:`guardian_lib.history`); without those events the rule is as above.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from guardian_lib.loop.tick import Tick

__all__ = ["MISSED_POLL_GRACE_STEPS", "MissedPolls"]

#: Steps an ONU without a reading keeps its previous one (a missed poll). [-]
MISSED_POLL_GRACE_STEPS = 1


class MissedPolls:
    """Holds the previous reading of ONUs missing from a step, ``grace_steps`` at most.

    Parameters
    ----------
    n_onus : int
        ONUs of the fleet (every array is in the fleet's order). [-]
    grace_steps : int, default :data:`MISSED_POLL_GRACE_STEPS`
        Consecutive steps an ONU without a reading keeps its previous one; 0: "not read"
        at once. [-]

    Attributes
    ----------
    held : int
        Readings filled in from a previous step so far. [-]
    gaps : int
        Steps without any reading that repeated the previous step (:meth:`step`). [-]
    last : dict of str → ndarray or None
        The previous step as returned (None before the first).
    known_up_last : int
        ONUs of the last step past their grace but online on outside evidence
        (``known_up``). [-]
    known_up_mask : ndarray of bool or None
        Which ONUs those were (None when the last step was given no ``known_up``).

    Examples
    --------
    >>> import numpy as np
    >>> mp = MissedPolls(2, grace_steps=1)
    >>> _ = mp.fill({"online": np.array([1.0, 1.0])}, read=np.array([True, True]))
    >>> mp.fill({"online": np.array([np.nan, 0.0])}, read=np.array([False, True]))["online"]
    array([1., 0.])
    >>> mp.fill({"online": np.array([np.nan, 0.0])}, read=np.array([False, True]))["online"]
    array([nan,  0.])
    """

    def __init__(self, n_onus: int, grace_steps: int = MISSED_POLL_GRACE_STEPS) -> None:
        if grace_steps < 0:
            raise ValueError(f"missed_poll_grace_steps: expected >= 0, got {grace_steps}")
        self.grace_steps = int(grace_steps)
        self.held = 0
        self.gaps = 0
        self.last: dict[str, np.ndarray] | None = None
        self.known_up_mask: np.ndarray | None = None
        self._missing = np.zeros(int(n_onus), dtype=np.int64)  # consecutive steps unread

    @property
    def known_up_last(self) -> int:
        """ONUs of the last step past their grace but online on outside evidence. [-]"""
        return 0 if self.known_up_mask is None else int(self.known_up_mask.sum())

    def fill(
        self, values: dict[str, np.ndarray], read: np.ndarray, known_up: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """One step's readings with the rule applied (vectorised over the fleet).

        Parameters
        ----------
        values : dict of str → ndarray
            Every measure of the step in the fleet's order; float arrays are filled in
            place.
        read : ndarray of bool
            Whether the collection read each ONU in this step.
        known_up : ndarray of bool, optional
            ONUs known to have service from outside the collection (default none).

        Returns
        -------
        dict of str → ndarray
            ``values`` with ``online`` as float 0/1, NaN where the ONU was not read and
            is past its grace (1 with ``loss_pct`` 0 and the levels NaN where it is
            ``known_up``), and every measure of ONUs within their grace taken from the
            previous step.
        """
        read = np.asarray(read, dtype=bool)
        if len(read) != len(self._missing):
            raise ValueError(
                f"MissedPolls: {len(read)} ONUs read, the fleet has {len(self._missing)}"
            )
        out = dict(values)
        online = np.asarray(out["online"], dtype=float)
        online[~read] = np.nan  # a source may say offline (False) for an ONU it did not read
        out["online"] = online
        self._missing = np.where(read, 0, self._missing + 1)
        last = self.last
        if last is not None:
            hold = ~read & (self._missing <= self.grace_steps) & ~np.isnan(last["online"])
            if hold.any():
                self.held += int(hold.sum())
                for m, v in out.items():
                    if m in last:
                        v[hold] = last[m][hold]
        self.known_up_mask = None
        if known_up is not None:
            up = ~read & (self._missing > self.grace_steps) & np.asarray(known_up, dtype=bool)
            self.known_up_mask = up
            if up.any():
                for m, v in out.items():
                    v[up] = 1.0 if m == "online" else 0.0 if m == "loss_pct" else np.nan
                if "loss_pct" not in out:
                    out["loss_pct"] = np.where(up, 0.0, np.nan)
        self.last = out
        return out

    def step(
        self, values: dict[str, np.ndarray], read: np.ndarray, known_up: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """:meth:`fill`, except for a gap: a step in which no ONU was read at all repeats
        the previous step (copies) and leaves every count of missed steps as it was; before
        any previous step, every ONU is "online, readings unknown" (``online`` 1,
        ``loss_pct`` 0, the other measures NaN) and nothing is kept for the next step.

        Parameters
        ----------
        values : dict of str → ndarray
        read : ndarray of bool
        known_up : ndarray of bool, optional
            As :meth:`fill` (not used in a gap).

        Returns
        -------
        dict of str → ndarray
        """
        read = np.asarray(read, dtype=bool)
        if len(read) == len(self._missing) and not read.any():
            self.gaps += 1
            if self.last is not None:
                return {m: np.array(v, copy=True) for m, v in self.last.items()}
            # A gap before any reading (a start while no OLT answers): there is no step
            # to repeat and nothing is known, and as in any gap the collection stopped,
            # not the network. Every ONU is "online, readings unknown" (as ``known_up``),
            # not offline: a fleet-wide outage with a notice to every customer is not
            # made of the poller's silence. Nothing is held from it.
            self.known_up_mask = None
            out = {m: np.full(len(read), np.nan) for m in values}
            out["online"] = np.ones(len(read))
            out["loss_pct"] = np.zeros(len(read))
            return out
        return self.fill(values, read, known_up)

    def tick(self, tick: Tick, read: np.ndarray, known_up: np.ndarray | None = None) -> Tick:
        """``tick`` with the rule applied (:meth:`step` on a copy of its readings)."""
        values = {m: np.array(v, dtype=float) for m, v in tick.values.items()}
        return Tick(tick.ts, self.step(values, read, known_up), tick.events)

    def state_dict(self) -> dict[str, Any]:
        """What a restart needs: the previous readings and the steps each ONU missed."""
        return {"last": self.last, "missing": self._missing.copy(), "held": self.held,
                "gaps": self.gaps}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any] | None) -> bool:
        """Restore :meth:`state_dict`; False (fresh start) when absent or for another fleet."""
        if not state or len(state.get("missing", ())) != len(self._missing):
            return False
        self._missing = np.asarray(state["missing"], dtype=np.int64).copy()
        last = state.get("last")
        self.last = None if last is None else {m: np.asarray(v) for m, v in last.items()}
        self.held = int(state.get("held", 0))
        self.gaps = int(state.get("gaps", 0))
        return True
