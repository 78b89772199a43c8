"""Strict JSON: NaN and infinities are written as ``null``, never as ``NaN``.

``json.dumps`` writes ``NaN`` by default, which is not JSON (RFC 8259): ``jq``, browsers'
``JSON.parse`` and most languages' parsers refuse the file. Figures that are not defined
(an F1 with no positive row, a PR-AUC with one class) are written as ``null``; readers
take ``null`` as "not defined", and the evaluation's ``*_note`` keys say why.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["finite_or_none", "dumps_strict"]


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) in dicts, lists and tuples as None."""
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`finite_or_none` ``(obj)`` with ``allow_nan=False``.

    Keyword arguments go to :func:`json.dumps` (``indent``, ``default``, …). Numpy
    floats are Python floats (``np.float64``) and are converted too; other objects go
    through ``default``.
    """
    return json.dumps(finite_or_none(obj), allow_nan=False, **kwargs)
