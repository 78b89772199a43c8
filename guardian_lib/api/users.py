"""Users, roles, region scopes and API tokens of the operator API, in one 0600 JSON file.

The users file (``--users FILE``) holds, per user, the role, the optional region scope,
an argon2id password hash (for the dashboard login) and whether the user is disabled;
and, per API token, its id, owner, SHA-256 digest, creation and expiry times and whether
it was revoked. A token is shown once, when it is made: ``ngt_<id>_<secret>``. Only its
digest is stored; the id finds the row, a constant-time compare checks the secret.

Why SHA-256 for tokens and argon2 for passwords: a token secret is 256 random bits, so a
fast digest cannot be brute-forced, and every API request checks one; a password is
human-chosen and checked once per login, so it gets a slow, salted, memory-hard hash.

Every write goes to a temporary file in the same folder (mode 0600) that replaces the
old one atomically, so a crash never leaves a half-written users file.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guardian_lib.errors import ConfigError, GuardianError

__all__ = [
    "ROLES",
    "PERMISSIONS",
    "ROLE_PERMISSIONS",
    "User",
    "TokenInfo",
    "UserStore",
    "UsersError",
    "AuthError",
    "hash_password",
    "verify_password",
    "require_users_file",
]

#: Roles, least to most privileged.
ROLES = ("helpdesk", "viewer", "operator", "admin")
#: What each permission allows (docs/api.md has the same table by endpoint).
PERMISSIONS: dict[str, str] = {
    "read": "read the warehouse, the risk queue, incidents, KPIs and the approval queue",
    "simulate": "ask what a decision would do (nothing is queued or sent)",
    "decide": "approve or reject a proposed action; request an action (execute)",
    "admin": "list users and revoke their API tokens",
    "contacts": "report customer contacts to guardian operate (a helpdesk or CRM)",
}
#: Permissions of each role.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "helpdesk": frozenset({"contacts"}),
    "viewer": frozenset({"read", "simulate"}),
    "operator": frozenset({"read", "simulate", "decide", "contacts"}),
    "admin": frozenset({"read", "simulate", "decide", "admin", "contacts"}),
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
_TOKEN = re.compile(r"^ngt_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
_FORMAT_VERSION = 1
#: Expired tokens are dropped from the file this long after their expiry. [s]
_FORGET_EXPIRED_S = 30 * 86400.0


class UsersError(GuardianError, ValueError):
    """The users file or a request to change it is invalid (names the file and field)."""


class AuthError(GuardianError):
    """A token is missing, malformed, unknown, expired, revoked or its user is disabled.

    Attributes
    ----------
    reason : str
        One of ``missing``, ``malformed``, ``unknown``, ``expired``, ``revoked``,
        ``disabled``.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def hash_password(password: str) -> str:
    """Argon2id hash of a password (salted; parameters of argon2-cffi's defaults)."""
    from argon2 import PasswordHasher

    if len(password) < 8:
        raise UsersError("password: expected at least 8 characters")
    return PasswordHasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when ``password`` matches an argon2 hash (False for users without a password)."""
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    if not stored_hash:
        return False
    try:
        return PasswordHasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """An argon2 hash of a random password (what unknown users are checked against)."""
    return hash_password(secrets.token_urlsafe(16))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class User:
    """An authenticated (or listed) user.

    Attributes
    ----------
    name : str
    role : {'viewer', 'operator', 'admin'}
    regions : tuple of str
        Regions the user may see and act on; empty means every region.
    disabled : bool
    """

    name: str
    role: str
    regions: tuple[str, ...] = ()
    disabled: bool = False

    def can(self, permission: str) -> bool:
        """True when the user's role grants ``permission`` (see :data:`PERMISSIONS`)."""
        return permission in ROLE_PERMISSIONS[self.role]

    def in_scope(self, region: str | None) -> bool:
        """True when the user may see or act on a device of ``region``.

        A scoped user is denied objects whose region is unknown (``None``): access is
        granted on evidence, never by default.
        """
        return not self.regions or (region is not None and region in self.regions)

    def to_dict(self) -> dict[str, Any]:
        """Public fields (never a hash)."""
        return {
            "name": self.name,
            "role": self.role,
            "regions": list(self.regions),
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class TokenInfo:
    """A stored API token (without its secret).

    Attributes
    ----------
    token_id : str
    user : str
    created_at, expires_at : float
        Unix times; ``expires_at`` None means it never expires. [s]
    revoked : bool
    """

    token_id: str
    user: str
    created_at: float
    expires_at: float | None
    revoked: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "token_id": self.token_id,
            "user": self.user,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked": self.revoked,
        }


class UserStore:
    """Read and change a users file.

    Parameters
    ----------
    path : path
        The users file; created (mode 0600) by the first :meth:`add`.
    clock : callable, optional
        Returns the present as a Unix time [s] (tests move it to expire tokens).

    Raises
    ------
    UsersError
        The file is readable by others, is not JSON, or has an invalid entry.
    """

    def __init__(self, path: str | Path, clock: Any = time.time) -> None:
        self.path = Path(path)
        self.clock = clock
        self._mtime: float | None = None
        self._data: dict[str, Any] = {"version": _FORMAT_VERSION, "users": {}, "tokens": {}}
        self._load()

    # --- file -----------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            return
        st = self.path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsersError(
                f"{self.path}: users file has mode {stat.S_IMODE(st.st_mode):04o}; it holds "
                "password and token hashes and must be readable by its owner only (chmod 600)"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsersError(f"{self.path}: cannot read users file: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != _FORMAT_VERSION:
            raise UsersError(
                f"{self.path}: version: expected {_FORMAT_VERSION}, got "
                f"{data.get('version') if isinstance(data, dict) else type(data).__name__!r}"
            )
        for name, u in data.get("users", {}).items():
            if u.get("role") not in ROLES:
                raise UsersError(
                    f"{self.path}: users.{name}.role: expected one of {ROLES}, got "
                    f"{u.get('role')!r}"
                )
        data.setdefault("tokens", {})
        self._data = data
        self._mtime = st.st_mtime_ns

    def reload_if_changed(self) -> None:
        """Re-read the file when another process (``guardian users``) changed it."""
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime != self._mtime:
            self._load()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self._data, fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._mtime = self.path.stat().st_mtime_ns

    @contextmanager
    def _mutate(self) -> Iterator[None]:
        """Read-modify-write under an exclusive lock: ``guardian users`` and a running API
        may change the file at the same time (a login makes a token) without losing either
        change. Nothing is written when the body raises."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._load()  # what is on disk now, not what this process read earlier
            yield
            self._save()
        finally:
            os.close(fd)  # releases the lock

    def add(
        self,
        name: str,
        role: str,
        regions: list[str] | tuple[str, ...] = (),
        password: str | None = None,
    ) -> User:
        """Add a user.

        Raises
        ------
        UsersError
            Bad name or role, empty region, or the user exists.
        """
        with self._mutate():
            return self._add(name, role, regions, password)

    def disable(self, name: str) -> User:
        """Disable a user: their tokens and password stop working at once."""
        with self._mutate():
            return self._disable(name)

    def issue_token(self, name: str, expires_days: float | None = 90.0) -> tuple[str, TokenInfo]:
        """Make a token for ``name``; returns the token (shown once) and its stored row.

        Parameters
        ----------
        name : str
        expires_days : float or None, default 90
            Lifetime [days]; None: never expires.
        """
        with self._mutate():
            return self._issue_token(name, expires_days)

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke a token (it stops working at once; the row stays for the record)."""
        with self._mutate():
            return self._revoke(token_id)

    # --- users ----------------------------------------------------------------------------
    def _add(
        self,
        name: str,
        role: str,
        regions: list[str] | tuple[str, ...] = (),
        password: str | None = None,
    ) -> User:
        if not _NAME.match(name):
            raise UsersError(
                f"name: expected 1-64 letters, digits or _.@- (starting with a letter or "
                f"digit), got {name!r}"
            )
        if role not in ROLES:
            raise UsersError(f"role: expected one of {ROLES}, got {role!r}")
        if any(not r.strip() for r in regions):
            raise UsersError("region: expected a region name, got an empty string")
        if name in self._data["users"]:
            raise UsersError(f"{self.path}: user {name!r} exists")
        self._data["users"][name] = {
            "role": role,
            "regions": sorted(set(regions)),
            "password_hash": hash_password(password) if password else None,
            "disabled": False,
            "created_at": self.clock(),
        }
        return self.get(name)

    def get(self, name: str) -> User:
        """The user called ``name``.

        Raises
        ------
        UsersError
            No such user.
        """
        u = self._data["users"].get(name)
        if u is None:
            raise UsersError(f"{self.path}: no user {name!r}")
        return User(name, u["role"], tuple(u.get("regions") or ()), bool(u.get("disabled")))

    def users(self) -> list[User]:
        """Every user, by name."""
        return [self.get(n) for n in sorted(self._data["users"])]

    def _disable(self, name: str) -> User:
        self.get(name)
        self._data["users"][name]["disabled"] = True
        return self.get(name)

    def check_password(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs and they are enabled, else None.

        An unknown, disabled or password-less user costs one argon2 verification too, so
        the answer's timing does not tell which user names exist.
        """
        u = self._data["users"].get(name)
        stored = None if u is None or u.get("disabled") else u.get("password_hash")
        if not stored:
            verify_password(_dummy_hash(), password)
            return None
        return self.get(name) if verify_password(stored, password) else None

    # --- tokens ---------------------------------------------------------------------------
    def _issue_token(self, name: str, expires_days: float | None) -> tuple[str, TokenInfo]:
        user = self.get(name)
        if user.disabled:
            raise UsersError(f"{self.path}: user {name!r} is disabled")
        if expires_days is not None and expires_days <= 0:
            raise UsersError(f"expires_days: expected > 0, got {expires_days}")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = self.clock()
        # forget tokens expired for a month (logins make one per session); the API's audit
        # file keeps who used which token id
        self._data["tokens"] = {
            k: t
            for k, t in self._data["tokens"].items()
            if t["expires_at"] is None or t["expires_at"] > now - _FORGET_EXPIRED_S
        }
        self._data["tokens"][token_id] = {
            "user": name,
            "sha256": _digest(secret),
            "created_at": now,
            "expires_at": None if expires_days is None else now + expires_days * 86400.0,
            "revoked": False,
        }
        return f"ngt_{token_id}_{secret}", self._token(token_id)

    def _token(self, token_id: str) -> TokenInfo:
        t = self._data["tokens"][token_id]
        return TokenInfo(token_id, t["user"], t["created_at"], t["expires_at"], t["revoked"])

    def tokens(self, name: str | None = None) -> list[TokenInfo]:
        """Stored tokens (of one user), oldest first."""
        rows = [self._token(t) for t in self._data["tokens"]]
        return sorted(
            (r for r in rows if name is None or r.user == name), key=lambda r: r.created_at
        )

    def _revoke(self, token_id: str) -> TokenInfo:
        if token_id not in self._data["tokens"]:
            raise UsersError(f"{self.path}: no token {token_id!r}")
        self._data["tokens"][token_id]["revoked"] = True
        return self._token(token_id)

    def authenticate(self, token: str | None) -> tuple[User, str]:
        """The user a bearer token belongs to, and the token id.

        Raises
        ------
        AuthError
            Its ``reason`` says why (missing, malformed, unknown, expired, revoked,
            disabled); the message never repeats the secret.
        """
        if not token:
            raise AuthError("missing", "no bearer token: send 'Authorization: Bearer ngt_…'")
        m = _TOKEN.match(token)
        if m is None:
            raise AuthError("malformed", "bearer token is not of the form ngt_<id>_<secret>")
        token_id, secret = m.groups()
        row = self._data["tokens"].get(token_id)
        if row is None or not hmac.compare_digest(row["sha256"], _digest(secret)):
            raise AuthError("unknown", f"token {token_id} is not known")
        if row["revoked"]:
            raise AuthError("revoked", f"token {token_id} was revoked")
        if row["expires_at"] is not None and self.clock() >= row["expires_at"]:
            raise AuthError("expired", f"token {token_id} expired")
        user = self.get(row["user"])
        if user.disabled:
            raise AuthError("disabled", f"user {user.name} is disabled")
        return user, token_id


def require_users_file(path: str | Path) -> UserStore:
    """A :class:`UserStore` over an existing users file with at least one user.

    Raises
    ------
    ConfigError
        The file is missing or empty (``guardian users add`` makes it).
    """
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: no users file (create one with `guardian users add NAME ...`)")
    store = UserStore(p)
    if not store.users():
        raise ConfigError(f"{p}: the users file has no users")
    return store
