"""Bounded evaluation of NBI queries (a safe subset of MongoDB's query language).

An NBI query is hostile input: Python's :mod:`re` backtracks, so a crafted ``$regex``
can take exponential (nested quantifiers) or high-polynomial (``.*.*.*x``) time, and
it runs on the event loop the CWMP sessions share. The mechanism here:

* only known operators are accepted; ``$where`` (runs code) and ``$text`` (needs a
  text index) are refused by name, as is any other unknown ``$`` operator;
* a ``$regex`` must be in a *safe subset*: at most :data:`MAX_REGEX_CHARS` characters,
  no groups, alternation or back-references, at most two quantified atoms of which at
  most one unbounded (``*``, ``+``, ``{m,}``), bounded repeats up to ``{,16}``. Its
  worst case is then quadratic in the subject, and subjects are matched on their first
  :data:`MAX_REGEX_SUBJECT_CHARS` characters;
* the whole evaluation has a time budget (checked between documents and before each
  regex match); past it the query fails with :class:`QueryTimeout`.

Pure functions and a :class:`mongoquery.Query` subclass; no I/O.
"""

from __future__ import annotations

import re
import time
import warnings
from typing import Any

import mongoquery

from guardian_lib.errors import GuardianError

__all__ = [
    "MAX_REGEX_CHARS",
    "MAX_REGEX_SUBJECT_CHARS",
    "QueryRejected",
    "QueryTimeout",
    "BoundedQuery",
    "check_regex",
    "prepare_query",
    "validate_sort",
]

MAX_REGEX_CHARS = 128
MAX_REGEX_SUBJECT_CHARS = 512
_MAX_BOUNDED_REPEAT = 16
_MAX_QUERY_DEPTH = 16

_ALLOWED_OPS = frozenset(
    "$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $nor $not $regex $options "
    "$size $all $elemMatch $type $mod".split()
)
_REFUSED_OPS = {
    "$where": "it runs server-side code",
    "$text": "there is no text index",
    "$expr": "aggregation expressions are not supported",
    "$function": "it runs server-side code",
    "$jsonSchema": "schema validation is not supported",
}


class QueryRejected(GuardianError, ValueError):
    """A query, regex or sort outside the supported subset (names the operator/field)."""


class QueryTimeout(GuardianError, TimeoutError):
    """A query ran past its time budget."""


def check_regex(pattern: str, options: str = "") -> re.Pattern[str]:
    """Compile ``pattern`` if it is in the safe subset, else raise :class:`QueryRejected`.

    Examples
    --------
    >>> check_regex("^00259E-.*-GDN").pattern
    '^00259E-.*-GDN'
    >>> check_regex(".*GDN.*").pattern  # unanchored ends dropped: same matches
    'GDN'
    >>> check_regex("(a+)+$")
    Traceback (most recent call last):
    ...
    acs_emulator.cwmp.query.QueryRejected: query: $regex '(a+)+$': groups and alternation are not supported (safe subset: literals, ., [classes], ^, $ and at most 2 quantifiers, 1 unbounded)
    """
    if not isinstance(pattern, str):
        raise QueryRejected(f"query: $regex: expected a string, got {type(pattern).__name__}")
    if len(pattern) > MAX_REGEX_CHARS:
        raise QueryRejected(
            f"query: $regex: expected at most {MAX_REGEX_CHARS} characters, got {len(pattern)}"
        )
    if not isinstance(options, str) or set(options) - set("imsx"):
        raise QueryRejected(f"query: $options: expected letters of 'imsx', got {options!r}")
    subset = "(safe subset: literals, ., [classes], ^, $ and at most 2 quantifiers, 1 unbounded)"
    original = pattern
    # An unanchored leading ".*" or trailing ".*" changes nothing for a search but
    # costs a quantifier (and backtracking): drop them, so ".*GDN.*" is accepted.
    while pattern.startswith((".*?", ".*")):
        pattern = pattern[3:] if pattern.startswith(".*?") else pattern[2:]
    while pattern.endswith(".*") and not pattern.endswith("\\.*"):
        pattern = pattern[:-2]

    def refuse(what: str) -> QueryRejected:
        return QueryRejected(f"query: $regex {original!r}: {what} {subset}")

    quantified, unbounded = _count_quantifiers(pattern, refuse)
    if quantified > 2 or unbounded > 1:
        raise refuse(f"{quantified} quantifiers ({unbounded} unbounded) are too many")
    flags = 0
    for letter in options:
        flags |= getattr(re, letter.upper())
    try:
        with warnings.catch_warnings():  # "possible nested set" for "[[": harmless here
            warnings.simplefilter("ignore", FutureWarning)
            return re.compile(pattern, flags)
    except re.error as exc:
        raise QueryRejected(f"query: $regex {original!r}: not a valid expression ({exc})") from exc


def _count_quantifiers(pattern: str, refuse: Any) -> tuple[int, int]:
    """``(quantified atoms, unbounded ones)`` of ``pattern``; ``refuse(why)`` builds the error
    raised for anything outside the subset (groups, alternation, back-references …)."""
    quantified = unbounded = 0
    i, n = 0, len(pattern)
    prev_atom = False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise refuse("a trailing backslash is not valid")
            nxt = pattern[i + 1]
            if nxt.isdigit() or nxt in "gk":
                raise refuse("back-references are not supported")
            i, prev_atom = i + 2, True
            continue
        if c in "()|":
            raise refuse("groups and alternation are not supported")
        if c == "[":
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            if j >= n:
                raise refuse("an unterminated [class] is not valid")
            i, prev_atom = j + 1, True
            continue
        bound = re.match(r"\{(\d*)(,?)(\d*)\}", pattern[i:]) if c == "{" else None
        if c in "*+?" or bound:
            if not prev_atom:
                raise refuse("a quantifier must follow a character, '.' or a [class]")
            quantified += 1
            if c in "*+" or (bound and bound.group(2) and not bound.group(3)):
                unbounded += 1
            elif bound and int(bound.group(3) or bound.group(1) or 0) > _MAX_BOUNDED_REPEAT:
                raise refuse(f"bounded repeats above {_MAX_BOUNDED_REPEAT} are not supported")
            i += len(bound.group(0)) if bound else 1
            if i < n and pattern[i] == "?":  # lazy variant
                i += 1
            prev_atom = False
            continue
        prev_atom = c not in "^$"
        i += 1
    return quantified, unbounded


def prepare_query(q: Any, depth: int = 0) -> Any:
    """Check operators and compile every ``$regex`` of query ``q`` (returns a new query).

    Raises
    ------
    QueryRejected
        For a refused or unknown operator (named), an unsafe regex, or nesting deeper
        than 16 levels.
    """
    if depth > _MAX_QUERY_DEPTH:
        raise QueryRejected(f"query: expected at most {_MAX_QUERY_DEPTH} levels of nesting")
    if isinstance(q, list):
        return [prepare_query(v, depth + 1) for v in q]
    if not isinstance(q, dict):
        return q
    out: dict[str, Any] = {}
    for k, v in q.items():
        if not isinstance(k, str):
            raise QueryRejected(f"query: expected string keys, got {k!r}")
        if k.startswith("$"):
            if k in _REFUSED_OPS:
                raise QueryRejected(f"query: operator {k} is not supported: {_REFUSED_OPS[k]}")
            if k not in _ALLOWED_OPS:
                raise QueryRejected(
                    f"query: operator {k} is not supported (expected one of "
                    f"{', '.join(sorted(_ALLOWED_OPS))})"
                )
        if k == "$options":
            continue  # folded into $regex below
        if k == "$regex":
            if isinstance(v, str):
                m = re.fullmatch(r"/(.+)/([imsx]{0,4})", v, flags=re.DOTALL)
                pattern, opts = (m.group(1), m.group(2)) if m else (v, "")
            else:
                pattern, opts = v, ""
            out[k] = check_regex(pattern, q.get("$options", opts) or opts)
            continue
        out[k] = prepare_query(v, depth + 1)
    if "$options" in q and "$regex" not in q:
        raise QueryRejected("query: $options: expected next to a $regex")
    return out


def validate_sort(sort: Any) -> dict[str, int]:
    """Check an NBI ``sort``: a JSON object of ``{path: 1 | -1}``.

    Raises
    ------
    QueryRejected
        Naming the offending key or value.
    """
    if not isinstance(sort, dict):
        raise QueryRejected(f"sort: expected a JSON object, got {type(sort).__name__}")
    out: dict[str, int] = {}
    for key, direction in sort.items():
        if not key or len(key) > 256:
            raise QueryRejected(f"sort: expected a field path of 1-256 characters, got {key!r}")
        if isinstance(direction, bool) or direction not in (1, -1):
            raise QueryRejected(f"sort.{key}: expected 1 or -1, got {direction!r}")
        out[key] = int(direction)
    return out


class BoundedQuery(mongoquery.Query):
    """A :class:`mongoquery.Query` whose regex matches are bounded (see module docstring).

    Parameters
    ----------
    definition : dict
        A query returned by :func:`prepare_query` (regexes compiled).
    deadline : float
        ``time.monotonic()`` value past which matching raises :class:`QueryTimeout`. [s]
    """

    def __init__(self, definition: Any, deadline: float) -> None:
        super().__init__(definition)
        self.deadline = deadline

    def check_time(self) -> None:
        """Raise :class:`QueryTimeout` when the budget is spent."""
        if time.monotonic() > self.deadline:
            raise QueryTimeout("query: took longer than its time budget; narrow it down")

    def _regex(self, condition: Any, entry: Any) -> bool:  # type: ignore[override]
        if not isinstance(entry, str):
            return False
        self.check_time()
        if not isinstance(condition, re.Pattern):  # prepare_query compiles every $regex
            condition = check_regex(condition)
        return condition.search(entry[:MAX_REGEX_SUBJECT_CHARS]) is not None
