"""Reading a policy's small per-round frames without a pandas lookup per column and row.

A decision round builds a few frames of a handful of rows (the ONUs worth a look, the
open cases) and reads them column by column and row by row. With a few rows, the cost
is pandas' per-call overhead, not the data: a column lookup costs about as much as the
arithmetic on it. :class:`FrameColumns` reads each column once, and from the arrays the
frame was built from when pandas stores those unchanged; :func:`records` gives the rows
as read-only mappings that read only the columns a policy asks for.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FrameColumns", "Row", "records"]

#: dtype kinds a DataFrame stores as given (bool, integers, floats): reading the column
#: back gives the same array values and dtype.
_STORED_AS_GIVEN = frozenset("biuf")


class FrameColumns(dict):
    """``{column: frame[column].to_numpy()}`` for one frame, filled on first access.

    Parameters
    ----------
    frame : pandas.DataFrame
        The frame; treated as read-only from here on.
    source : dict of ndarray, optional
        The arrays ``frame`` was built from (``pd.DataFrame(source, index=…)``). A
        boolean, integer or float array is returned as it is (pandas stores it
        unchanged); any other column is read from ``frame`` (pandas infers a string or
        datetime dtype for object arrays, and the policy must see what the frame holds).
    """

    def __init__(self, frame: pd.DataFrame, source: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.frame = frame
        self._source = source or {}

    def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The source of a frame of the rows ``rows`` of this one, column by column (the
        source array where there is one: pandas makes the same column of it)."""
        src = self._source
        return {c: (src[c] if c in src else self[c])[rows] for c in self.frame.columns}

    def __missing__(self, name: str) -> np.ndarray:
        src = self._source.get(name)
        if isinstance(src, np.ndarray) and src.dtype.kind in _STORED_AS_GIVEN:
            arr = src
        else:
            arr = self.frame[name].to_numpy()
        self[name] = arr
        return arr


class Row(Mapping):
    """One row of a frame as a read-only mapping: ``row[column]`` is the value that
    ``frame[column].to_numpy()[i]`` holds (a numpy scalar or a Python object)."""

    __slots__ = ("_cols", "_i")

    def __init__(self, cols: FrameColumns, i: int) -> None:
        self._cols = cols
        self._i = i

    def __getitem__(self, name: str) -> Any:
        cols = self._cols
        if name not in cols and name not in cols.frame.columns:
            raise KeyError(name)
        return cols[name][self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols.frame.columns)

    def __len__(self) -> int:
        return len(self._cols.frame.columns)

    def __repr__(self) -> str:
        return f"Row({dict(self)!r})"


def records(df: pd.DataFrame, columns: FrameColumns | None = None) -> list[Row]:
    """Rows of ``df`` as read-only mappings, much faster than ``to_dict`` or ``iterrows``
    for the few dozen cases a policy looks at each round.

    Parameters
    ----------
    df : pandas.DataFrame
    columns : FrameColumns, optional
        Column cache of ``df`` (e.g. :meth:`PolicyBase.columns
        <guardian_lib.decision.PolicyBase.columns>`); a new one by default.

    Returns
    -------
    list of Row
        Each column is read once, when a row is first asked for it.
    """
    if len(df) == 0:
        return []
    cols = columns if columns is not None else FrameColumns(df)
    return [Row(cols, i) for i in range(len(df))]


#: Largest time difference the per-element path of :func:`_seconds_from` takes: below
#: it the difference in nanoseconds is an exact float64, so its quotient by the unit's
#: length is the one pandas' vectorised ``total_seconds`` gives. [ns]
_EXACT_NS = 2**53


def _seconds_from(ts: pd.Timestamp, times: np.ndarray) -> np.ndarray:
    """``(pd.to_datetime(pd.Series(times), utc=True) - ts).dt.total_seconds()`` [s]
    (NaN for a missing time), the same values.

    A round looks at a handful of open cases: per element this costs microseconds,
    where the vectorised pandas path costs a fraction of a millisecond of overhead.
    Anything but timestamps, or a difference beyond about 104 days (see
    :data:`_EXACT_NS`), takes that path.
    """
    out = np.full(len(times), np.nan)
    ts = pd.Timestamp(ts)
    for i, t in enumerate(times):
        if t is None or t is pd.NaT:
            continue
        if not isinstance(t, pd.Timestamp) or ts.tzinfo is None:
            break
        if t.tzinfo is None:
            t = t.tz_localize("UTC")
        delta = t - ts
        if abs(delta.value) >= _EXACT_NS:
            break
        out[i] = delta.total_seconds()
    else:
        return out
    return (pd.to_datetime(pd.Series(times), utc=True) - ts).dt.total_seconds().to_numpy()
