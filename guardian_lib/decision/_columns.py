"""The decision round's small tables without pandas: :class:`Rows` and :class:`FrameColumns`.

A decision round looks at a handful of ONUs (the ONUs worth a look, the open cases) and
reads them column by column and row by row. With a few rows, pandas' per-call overhead
(building a frame of ~60 columns, inferring the dtype of every object column again,
one lookup per column) cost more than the arithmetic. The policies therefore work on
:class:`Rows`: an ONU id array and one numpy array per column, all of one length — a
struct of arrays — with :meth:`Rows.records` giving the rows as read-only mappings.
:class:`FrameColumns` reads the columns of a frame a snapshot holds (status,
predictions), each once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FrameColumns", "Row", "Rows"]

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
        datetime dtype for object arrays, and the reader must see what the frame holds).
    exact : bool, default False
        Every numpy array of ``source`` equals ``frame[c].to_numpy()`` (values and
        dtype; e.g. object arrays of strings without a missing value): returned as
        they are.
    """

    def __init__(
        self, frame: pd.DataFrame, source: dict[str, Any] | None = None, exact: bool = False
    ) -> None:
        super().__init__()
        self.frame = frame
        self._source = source or {}
        self._exact = exact

    def rows(self, name: str, rows: np.ndarray) -> np.ndarray:
        """``self[name][rows]``, without reading a column not read yet whole: a string
        column of a few thousand rows costs more to convert than the few rows a round
        looks at (the same values: pandas converts each element the same way)."""
        if name in self or self._from_source(name) is not None:
            return self[name][rows]
        col = self.frame[name]
        if isinstance(col.dtype, np.dtype) and col.dtype.kind in _STORED_AS_GIVEN:
            arr = self[name] = col.to_numpy()  # a view: nothing to convert
            return arr[rows]
        return col.iloc[rows].to_numpy()

    def _from_source(self, name: str) -> np.ndarray | None:
        src = self._source.get(name)
        if isinstance(src, np.ndarray) and (self._exact or src.dtype.kind in _STORED_AS_GIVEN):
            return src
        return None

    def __missing__(self, name: str) -> np.ndarray:
        src = self._source.get(name)
        if isinstance(src, np.ndarray) and (self._exact or src.dtype.kind in _STORED_AS_GIVEN):
            arr = src
        else:
            arr = self.frame[name].to_numpy()
        self[name] = arr
        return arr


class Rows:
    """A small table as a struct of arrays: ONU ids and one numpy array per column.

    What :meth:`PolicyBase.frame <guardian_lib.decision.PolicyBase.frame>` and
    :meth:`PolicyBase.case_decisions <guardian_lib.decision.PolicyBase.case_decisions>`
    return. ``rows[name]`` is a column (a numpy array: bool, int, float, or object for
    strings and timestamps, where a missing value is ``None``, NaN or ``NaT``),
    ``rows.index`` the ONU ids (object array), ``len(rows)`` the number of rows.
    Treat the arrays as read-only: they are shared with the snapshot they came from.

    Parameters
    ----------
    index : array-like of str
        ONU id of each row.
    columns : dict of str → ndarray
        Columns, each of ``len(index)`` values, in order.

    Raises
    ------
    ValueError
        A column's length differs from the index's (the message names it).

    Examples
    --------
    >>> import numpy as np
    >>> r = Rows(["O1", "O2"], {"online": np.array([True, False])})
    >>> len(r), bool(r["online"][1]), r.records()[0]["online"]
    (2, False, np.True_)
    """

    __slots__ = ("index", "_cols")

    def __init__(self, index: Any, columns: dict[str, np.ndarray]) -> None:
        self.index = np.asarray(index, dtype=object)
        n = len(self.index)
        for name, arr in columns.items():
            if len(arr) != n:
                raise ValueError(f"Rows: column {name!r} has {len(arr)} values, index has {n}")
        self._cols = columns

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> Rows:
        """The rows of ``df`` (index = ONU ids), every column read back once."""
        return cls(df.index.to_numpy(dtype=object), {c: df[c].to_numpy() for c in df.columns})

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._cols[name]
        except KeyError:
            raise KeyError(f"Rows has no column {name!r} (columns: {list(self._cols)})") from None

    def __contains__(self, name: object) -> bool:
        return name in self._cols

    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self._cols)

    def items(self):
        """``(name, array)`` pairs, in order."""
        return self._cols.items()

    def take(self, rows: np.ndarray) -> Rows:
        """The rows at positions ``rows`` (integer array), every column."""
        return Rows(self.index[rows], {c: v[rows] for c, v in self._cols.items()})

    def with_columns(self, **columns: np.ndarray) -> Rows:
        """A copy with ``columns`` added or replaced (same index; arrays shared)."""
        return Rows(self.index, {**self._cols, **columns})

    def records(self) -> list[Row]:
        """The rows as read-only mappings (``row[column]`` is ``rows[column][i]``)."""
        return [Row(self._cols, i) for i in range(len(self.index))]

    def to_frame(self) -> pd.DataFrame:
        """The table as a pandas DataFrame (index ``onu_id``), e.g. to display it."""
        return pd.DataFrame(dict(self._cols), index=pd.Index(self.index, name="onu_id"))

    def __repr__(self) -> str:
        return f"Rows({len(self)} rows, columns={self.columns})"


class Row(Mapping):
    """One row of a :class:`Rows` as a read-only mapping: ``row[column]`` is the value
    ``rows[column][i]`` (a numpy scalar or a Python object)."""

    __slots__ = ("_cols", "_i")

    def __init__(self, cols: dict[str, np.ndarray], i: int) -> None:
        self._cols = cols
        self._i = i

    def __getitem__(self, name: str) -> Any:
        return self._cols[name][self._i]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __len__(self) -> int:
        return len(self._cols)

    def __repr__(self) -> str:
        return f"Row({dict(self)!r})"


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
