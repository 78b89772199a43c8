"""Provisions: a safe, declarative subset of GenieACS's provision script API.

GenieACS runs provision scripts as JavaScript in a sandbox. This ACS never runs code:
a script is *parsed* into a list of declarations, and only this grammar is accepted
(anything else is refused with the line and column)::

    script     := (statement (";" | newline))*
    statement  := "declare" "(" expr ["," expr ["," expr]] ")"
                | "commit" "(" ")" | "log" "(" expr ")"
    expr       := product (("+" | "-") product)*      product := term (("*" | "/") term)*
    term       := string | number | "true" | "false" | "null" | object | array
                | "args" "[" integer "]" | "Date.now" "(" ")"
    object     := "{" [key ":" expr ("," key ":" expr)* [","]] "}"   (key: name or string)

``declare(path, timestamps, values)`` has GenieACS's meaning for a parameter path
without wildcards: ``values.value`` is the value the parameter must have (a
SetParameterValues when it differs), ``timestamps.value`` how fresh it must be (a
GetParameterValues when it is missing or older; ``Date.now()`` means "now"). A path
ending in ``.`` or ``.*`` refreshes the object (``refreshObject``). Instance counts
(``values.path``) and attributes are refused.

Built-in provisions (GenieACS's names, used by presets without a script):
``refresh(path, max_age_s)``, ``value(path, value)``, ``tag(tag, present)``,
``reboot()``, ``reset()`` and ``download(fileType, fileName[, targetFileName])``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from guardian_lib.errors import GuardianError

__all__ = [
    "BUILTIN_PROVISIONS",
    "MAX_SCRIPT_CHARS",
    "Declaration",
    "ProvisionError",
    "Plan",
    "parse_script",
    "plan_provisions",
]

MAX_SCRIPT_CHARS = 64 * 1024
BUILTIN_PROVISIONS = ("refresh", "value", "tag", "reboot", "reset", "download")
_MAX_DECLARATIONS = 500
_MAX_DEPTH = 8
#: Longest number literal (a 5,000-digit literal makes ``int()`` raise). [characters]
_MAX_NUMBER_CHARS = 32
#: Largest magnitude of an integer result (a chain of products grows without bound). [-]
_MAX_INT = 2**63
#: Longest string a ``+`` may build (a parameter value's limit). [characters]
_MAX_STRING_CHARS = 16384


class ProvisionError(GuardianError, ValueError):
    """A provision script outside the accepted subset, or bad arguments (says where)."""


@dataclass
class Declaration:
    """One ``declare(path, timestamps, values)`` (or ``log``) of a script."""

    path: str
    timestamps: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)


_NOW = object()  # Date.now(), resolved when the provision runs
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<comment>//[^\n]*)
      | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
      | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*)
      | (?P<punct>[(){}\[\],:;+\-*/.])
      | (?P<newline>\n)
    )""",
    re.VERBOSE | re.DOTALL,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/"}


class _Parser:
    def __init__(self, text: str, args: list[Any]) -> None:
        self.text = text
        self.args = args
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos] in " \t\r":
                pos += 1
                continue
            start = pos
            while start < len(text) and text[start] in " \t\r\n":
                start += 1
            if text.startswith("/*", start):
                # By hand, not in the regex: a lazy ``/\*.*?\*/`` rescans to the end for
                # every unterminated "/*", quadratic in the script (16 s for 60 KB).
                end = text.find("*/", start + 2)
                if end < 0:
                    self.fail(start, "unterminated comment")
                pos = end + 2
                continue
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                self.fail(pos, f"unexpected character {text[pos]!r}")
            kind = m.lastgroup or ""
            if kind == "newline":
                self.toks.append((";", ";", m.start(kind)))
            elif kind != "comment":
                self.toks.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0

    def fail(self, pos: int, msg: str) -> None:
        line = self.text.count("\n", 0, pos) + 1
        col = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        raise ProvisionError(f"provision script line {line} col {col}: {msg}")

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "", len(self.text))

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind):
            want = repr(value) if value is not None else kind
            self.fail(tok[2], f"expected {want}, got {tok[1] or 'end of script'!r}")
        self.i += 1
        return tok

    def script(self) -> list[Declaration]:
        out: list[Declaration] = []
        while self.peek()[0] != "eof":
            if self.peek()[1] == ";":
                self.i += 1
                continue
            kind, name, pos = self.take(kind="name")
            self.take("(")
            if name == "declare":
                call = [self.expr(0)]
                while self.peek()[1] == ",":
                    self.i += 1
                    call.append(self.expr(0))
                if len(call) > 3:
                    self.fail(pos, "declare takes at most 3 arguments (path, timestamps, values)")
                out.append(self._declaration(call, pos))
            elif name == "commit":
                pass
            elif name == "log":
                self.expr(0)
            else:
                self.fail(pos, f"only declare(), commit() and log() are allowed, got {name}()")
            self.take(")")
            if len(out) > _MAX_DECLARATIONS:
                self.fail(pos, f"at most {_MAX_DECLARATIONS} declarations per script")
        return out

    def _declaration(self, call: list[Any], pos: int) -> Declaration:
        path, ts, values = (call + [None, None])[:3]
        if not isinstance(path, str) or not path:
            self.fail(pos, f"declare: expected a parameter path string, got {path!r}")
        if path.startswith("_") or "._" in path or len(path) > 256:
            self.fail(
                pos,
                f"declare {path[:60]}: expected a parameter path (≤ 256 characters, "
                "no segment starting with '_')",
            )
        for what, d in (("timestamps", ts), ("values", values)):
            if d is not None and not isinstance(d, dict):
                self.fail(pos, f"declare {path}: {what} must be an object, got {d!r}")
            extra = set(d or {}) - {"value", "path"}
            if extra:
                self.fail(pos, f"declare {path}: {what} may hold value/path, got {sorted(extra)}")
        if "path" in (values or {}):
            self.fail(pos, f"declare {path}: instance counts (values.path) are not supported")
        if ("*" in path or "[" in path) and (values or {}):
            self.fail(pos, f"declare {path}: wildcards and aliases are only allowed to refresh")
        return Declaration(path, dict(ts or {}), dict(values or {}))

    def expr(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            self.fail(self.peek()[2], f"nesting deeper than {_MAX_DEPTH}")
        value = self.product(depth)
        while self.peek()[1] in ("+", "-"):
            op = self.take()[1]
            pos = self.peek()[2]
            value = self._arith(value, op, self.product(depth), pos)
        return value

    def product(self, depth: int) -> Any:
        value = self.term(depth)
        while self.peek()[1] in ("*", "/"):
            op = self.take()[1]
            pos = self.peek()[2]
            value = self._arith(value, op, self.term(depth), pos)
        return value

    def _arith(self, a: Any, op: str, b: Any, pos: int) -> Any:
        if a is _NOW or b is _NOW:
            a = _now_ms() if a is _NOW else a
            b = _now_ms() if b is _NOW else b
        if op == "+" and isinstance(a, str) and isinstance(b, str | int | float):
            if len(a) + len(str(b)) > _MAX_STRING_CHARS:
                self.fail(pos, f"string result longer than {_MAX_STRING_CHARS} characters")
            return a + str(b)
        if isinstance(a, int | float) and isinstance(b, int | float):
            if op == "/" and b == 0:
                self.fail(pos, "division by zero")
            out = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if op == "/" else 0}[op]
            if isinstance(out, int) and abs(out) >= _MAX_INT:
                self.fail(pos, f"integer result beyond ±2^63 ({op!r})")
            if isinstance(out, float) and not math.isfinite(out):
                self.fail(pos, f"number result is not finite ({op!r})")
            return out
        self.fail(pos, f"cannot apply {op!r} to {a!r} and {b!r}")

    def term(self, depth: int) -> Any:
        kind, text, pos = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), text[1:-1])
        if kind == "number":
            if len(text) > _MAX_NUMBER_CHARS:
                self.fail(pos, f"number literal longer than {_MAX_NUMBER_CHARS} characters")
            return float(text) if any(c in text for c in ".eE") else int(text)
        if text == "-" and self.peek()[0] == "number":
            return -self.term(depth)
        if kind == "name":
            if text in ("true", "false"):
                return text == "true"
            if text == "null":
                return None
            if text == "Date.now":
                self.take("(")
                self.take(")")
                return _NOW
            if text == "args":
                self.take("[")
                _, idx, ipos = self.take(kind="number")
                self.take("]")
                if not idx.isdigit() or int(idx) >= len(self.args):
                    self.fail(ipos, f"args[{idx}]: the preset passes {len(self.args)} argument(s)")
                return self.args[int(idx)]
            self.fail(pos, f"unknown name {text!r} (only args[N] and Date.now() are allowed)")
        if text == "{":
            obj: dict[str, Any] = {}
            while self.peek()[1] != "}":
                k_kind, key, k_pos = self.take()
                if k_kind == "string":
                    key = key[1:-1]
                elif k_kind != "name":
                    self.fail(k_pos, f"expected an object key, got {key!r}")
                self.take(":")
                obj[key] = self.expr(depth + 1)
                if self.peek()[1] != ",":
                    break
                self.i += 1
            self.take("}")
            return obj
        if text == "[":
            arr = []
            while self.peek()[1] != "]":
                arr.append(self.expr(depth + 1))
                if self.peek()[1] != ",":
                    break
                self.i += 1
            self.take("]")
            return arr
        self.fail(pos, f"unexpected {text!r}")


def _now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


def parse_script(script: str, args: list[Any] | None = None) -> list[Declaration]:
    """Parse a provision script of the accepted subset into declarations.

    Parameters
    ----------
    script : str
        The script text (at most :data:`MAX_SCRIPT_CHARS` characters).
    args : list, optional
        The preset's arguments (``args[N]`` in the script).

    Raises
    ------
    ProvisionError
        Naming the line and column of the first construct outside the subset.

    Examples
    --------
    >>> [d.values for d in parse_script('declare("A.B", null, {value: 300});')]
    [{'value': 300}]
    """
    if not isinstance(script, str):
        raise ProvisionError(f"provision script: expected text, got {type(script).__name__}")
    if len(script) > MAX_SCRIPT_CHARS:
        raise ProvisionError(
            f"provision script: expected at most {MAX_SCRIPT_CHARS} characters, got {len(script)}"
        )
    decls = _Parser(script, list(args or [])).script()
    now = _now_ms()
    for d in decls:
        for part in (d.timestamps, d.values):
            for k, v in part.items():
                if v is _NOW:
                    part[k] = now
    return decls


@dataclass
class Plan:
    """What a session must do for the provisions of the matching presets."""

    get: list[str] = field(default_factory=list)
    set: list[list[Any]] = field(default_factory=list)
    refresh: list[str] = field(default_factory=list)
    tags: dict[str, bool] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)  # reboot, reset, download

    def as_tasks(self) -> list[dict[str, Any]]:
        """NBI tasks carrying out the plan (refreshes, then gets, sets, the rest)."""
        out: list[dict[str, Any]] = [
            {"name": "refreshObject", "objectName": o} for o in self.refresh
        ]
        if self.get:
            out.append({"name": "getParameterValues", "parameterNames": list(self.get)})
        if self.set:
            out.append({"name": "setParameterValues", "parameterValues": list(self.set)})
        return out + list(self.tasks)


def _node(doc: dict[str, Any], path: str) -> dict[str, Any] | None:
    cur: Any = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur if isinstance(cur, dict) else None


def _iso_ms(ts: str) -> int:
    try:
        return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
    except (ValueError, AttributeError):
        return 0


def _apply(plan: Plan, doc: dict[str, Any], d: Declaration) -> None:
    path = d.path
    if path.endswith(".*") or path.endswith("."):
        obj = path.rstrip("*")
        if "value" in d.timestamps and obj not in plan.refresh:
            plan.refresh.append(obj)
        return
    node = _node(doc, path)
    if "value" in d.values:
        want = d.values["value"]
        if isinstance(want, list):  # [value, type]
            want, vtype = (want + ["xsd:string"])[:2]
        elif node is not None and node.get("_type"):
            vtype = node["_type"]  # as GenieACS: the type the device reported
        else:
            # Unknown yet: fetched first in the same session, the type is taken from
            # the answer when the SetParameterValues is sent ("auto").
            vtype = "auto"
            if path not in plan.get:
                plan.get.append(path)
        text = ("true" if want else "false") if isinstance(want, bool) else str(want)
        have = None if node is None else node.get("_value")
        if have is None or str(have).lower() != text.lower():
            plan.set.append([path, want, vtype])
        return
    ts = d.timestamps.get("value")
    if ts is not None and (node is None or _iso_ms(node.get("_timestamp", "")) < int(ts)):
        if path not in plan.get:
            plan.get.append(path)


def _builtin(plan: Plan, doc: dict[str, Any], name: str, args: list[Any]) -> None:
    def arg(i: int, what: str) -> Any:
        if i >= len(args):
            raise ProvisionError(f"provision {name}: expected argument {i + 1} ({what})")
        return args[i]

    if name == "refresh":
        age_s = float(args[1]) if len(args) > 1 else 0.0
        _apply(plan, doc, Declaration(str(arg(0, "path")), {"value": _now_ms() - age_s * 1000}))
    elif name == "value":
        _apply(plan, doc, Declaration(str(arg(0, "path")), {}, {"value": arg(1, "value")}))
    elif name == "tag":
        plan.tags[str(arg(0, "tag"))] = bool(args[1]) if len(args) > 1 else True
    elif name == "reboot":
        plan.tasks.append({"name": "reboot"})
    elif name == "reset":
        plan.tasks.append({"name": "factoryReset"})
    elif name == "download":
        task = {"name": "download", "fileType": str(arg(0, "fileType"))}
        task["fileName"] = str(arg(1, "fileName"))
        if len(args) > 2:
            task["targetFileName"] = str(args[2])
        plan.tasks.append(task)


def plan_provisions(doc: dict[str, Any], calls: list[list[Any]], scripts: dict[str, str]) -> Plan:
    """Evaluate provision calls ``[[name, *args], ...]`` against a device document.

    Parameters
    ----------
    doc : dict
        The device document (values and their timestamps).
    calls : list of list
        Provision name and arguments, in preset order.
    scripts : dict
        Stored provision scripts by name (built-ins need none).

    Raises
    ------
    ProvisionError
        Unknown provision, or a script outside the subset.
    """
    plan = Plan()
    for call in calls:
        name, args = str(call[0]), list(call[1:])
        if name in scripts:
            for d in parse_script(scripts[name], args):
                _apply(plan, doc, d)
        elif name in BUILTIN_PROVISIONS:
            _builtin(plan, doc, name, args)
        else:
            raise ProvisionError(f"provision {name!r}: not defined (PUT /provisions/{name})")
    return plan
