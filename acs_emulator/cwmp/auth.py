"""HTTP Basic and Digest (RFC 2617, MD5, ``qop=auth``) for CWMP.

Used on both sides: the ACS authenticates CPEs, the CPE connection-request listener
authenticates the ACS, and the clients answer Digest challenges.

Every check is bound to an *identity*: the device id of the Inform the credentials
come with (ACS side) or of the connection-request path (CPE side). The username must
be that identity, its password is the one looked up, and a per-device override
applies to that device only. A Digest nonce is ``timestamp + HMAC(timestamp,
identity)``: it is valid only for the identity it was issued to and for
``nonce_ttl_s``; each ``nc`` of a nonce is accepted once (a nonce without ``qop`` is
single-use), so a captured header cannot be replayed, and its ``uri`` must be the
request's own path. Passwords are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from guardian_lib.errors import GuardianError

__all__ = [
    "DEV_CR_PASSWORD",
    "DevPasswordRefused",
    "resolve_cr_password",
    "AuthMode",
    "AuthPolicy",
    "Authenticator",
    "parse_auth_header",
    "digest_authorization",
    "basic_authorization",
]

AuthMode = Literal["none", "basic", "digest"]

#: The documented development connection-request password. Refused unless a caller
#: allows it explicitly (``allow_dev_password``), with a warning: anyone who has read
#: the documentation knows it.
DEV_CR_PASSWORD = "guardian-dev-cr"

log = logging.getLogger(__name__)

#: Random connection-request password of this process, used by both the ACS and the
#: CPE listener when no password is configured: an ACS and CPEs running in one process
#: (tests, ``guardian twin``) agree on it; separate processes need the variable.
_PROCESS_CR_PASSWORD = secrets.token_hex(18)


class DevPasswordRefused(GuardianError, ValueError):
    """The documented development password was configured without being allowed."""


def resolve_cr_password(
    explicit: str | None = None,
    *,
    env_var: str = "GUARDIAN_CPE_CR_PASSWORD",
    allow_dev_password: bool = False,
) -> str:
    """The connection-request password to use: explicit, else the environment, else random.

    Parameters
    ----------
    explicit : str, optional
        A password given by the caller.
    env_var : str
        Environment variable read when ``explicit`` is not given.
    allow_dev_password : bool, default False
        Accept :data:`DEV_CR_PASSWORD` (logged as a warning); otherwise it is refused.

    Returns
    -------
    str
        The password; without any configuration, a random one shared by this process.

    Raises
    ------
    DevPasswordRefused
        When the documented development password is configured and not allowed.
    """
    pw = explicit or os.environ.get(env_var) or None
    if pw is None:
        return DEV_CR_PASSWORD if allow_dev_password else _PROCESS_CR_PASSWORD
    if pw == DEV_CR_PASSWORD:
        if not allow_dev_password:
            raise DevPasswordRefused(
                f"connection-request password: the documented development password "
                f"{DEV_CR_PASSWORD!r} is refused; set {env_var} to a secret of your own "
                "(or pass allow_dev_password / --allow-dev-password on a lab machine)"
            )
        log.warning("connection requests use the documented development password")
    return pw


_PARAM_RE = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def parse_auth_header(value: str) -> tuple[str, dict[str, str]]:
    """Split an ``Authorization`` / ``WWW-Authenticate`` header into scheme and params.

    Examples
    --------
    >>> parse_auth_header('Digest realm="x", nonce="n", qop=auth')
    ('digest', {'realm': 'x', 'nonce': 'n', 'qop': 'auth'})
    """
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() == "basic":
        return "basic", {"token": rest.strip()}
    params = {m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _PARAM_RE.finditer(rest)}
    return scheme.lower(), params


def _md5(s: str) -> str:
    return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()


def basic_authorization(username: str, password: str) -> str:
    """``Authorization`` header value for HTTP Basic."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return f"Basic {token}"


def digest_authorization(
    challenge: str, method: str, uri: str, username: str, password: str, nc: int = 1
) -> str:
    """``Authorization`` header answering a Digest ``WWW-Authenticate`` challenge."""
    _, p = parse_auth_header(challenge)
    realm, nonce = p.get("realm", ""), p.get("nonce", "")
    qop = "auth" if "auth" in p.get("qop", "").split(",") else ""
    ha1 = _md5(f"{username}:{realm}:{password}")
    ha2 = _md5(f"{method}:{uri}")
    ncv = f"{nc:08x}"
    cnonce = os.urandom(8).hex()
    if qop:
        response = _md5(f"{ha1}:{nonce}:{ncv}:{cnonce}:{qop}:{ha2}")
        extra = f', qop={qop}, nc={ncv}, cnonce="{cnonce}"'
    else:
        response = _md5(f"{ha1}:{nonce}:{ha2}")
        extra = ""
    opaque = f', opaque="{p["opaque"]}"' if "opaque" in p else ""
    return (
        f'Digest username="{username}", realm="{realm}", nonce="{nonce}", uri="{uri}", '
        f'algorithm=MD5, response="{response}"{extra}{opaque}'
    )


@dataclass
class AuthPolicy:
    """How peers must authenticate.

    Parameters
    ----------
    mode : {"none", "basic", "digest"}, default "none"
        Fleet-wide mode. ``"none"`` is GenieACS's default; see docs/tr069.md for why
        production should not use it.
    passwords : callable, optional
        ``passwords(identity) -> str | None`` gives the expected password of a device
        (``None`` = unknown). Secrets come from the environment or a file, never from
        code (see :func:`acs_emulator.cwmp.server.password_lookup_from_env`).
    per_device : dict, optional
        Overrides of the mode by device id, for CPEs that crash on a Digest challenge
        (use ``"basic"``) or cannot authenticate at all (``"none"``). An override
        applies to requests *for that device* only, whatever username they send.
    realm : str
        Realm announced in challenges.
    nonce_ttl_s : float, default 300
        Lifetime of a Digest nonce. [s]
    max_tracked_nonces : int, default 100000
        Nonces whose ``nc`` is remembered; beyond it the oldest are forgotten (they
        become unusable, never reusable). [-]
    """

    mode: AuthMode = "none"
    passwords: Callable[[str], str | None] | None = None
    per_device: dict[str, AuthMode] = field(default_factory=dict)
    realm: str = "cwmp"
    nonce_ttl_s: float = 300.0
    max_tracked_nonces: int = 100_000


class Authenticator:
    """Checks ``Authorization`` headers against an :class:`AuthPolicy`, per identity."""

    def __init__(self, policy: AuthPolicy) -> None:
        self.policy = policy
        self._key = os.urandom(16)
        # nonce -> highest nc seen (0: used without qop). Insertion order = age.
        self._used: dict[str, int] = {}

    def _sign(self, ts: str, identity: str) -> str:
        msg = f"{ts}\0{identity}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:24]

    def _nonce(self, identity: str) -> str:
        # A random part makes every challenge's nonce distinct (two in one second too).
        stamp = f"{int(time.time())}.{secrets.token_hex(6)}"
        return base64.b64encode(f"{stamp}:{self._sign(stamp, identity)}".encode()).decode()

    def _nonce_ok(self, nonce: str, identity: str) -> bool:
        try:
            stamp, sig = base64.b64decode(nonce.encode(), validate=True).decode().split(":")
            age = time.time() - float(stamp.split(".", 1)[0])
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(sig, self._sign(stamp, identity)) and -1 <= age < (
            self.policy.nonce_ttl_s
        )

    def _fresh_nc(self, nonce: str, nc: str | None) -> bool:
        """Record a use of ``nonce``; whether it is new (nc above every earlier one)."""
        try:
            count = int(nc, 16) if nc is not None else 0
        except ValueError:
            return False
        last = self._used.get(nonce)
        if last is not None and (nc is None or count <= last):
            return False
        self._used.pop(nonce, None)
        self._used[nonce] = count
        if len(self._used) > self.policy.max_tracked_nonces:
            for old in list(self._used)[: len(self._used) // 2]:
                del self._used[old]
        return True

    def challenge(self, identity: str | None = None) -> str:
        """``WWW-Authenticate`` value for a 401 (Digest or Basic by policy)."""
        mode = self.mode_for(identity)
        if mode == "basic":
            return f'Basic realm="{self.policy.realm}"'
        return (
            f'Digest realm="{self.policy.realm}", qop="auth", '
            f'nonce="{self._nonce(identity or "")}", algorithm=MD5'
        )

    def mode_for(self, identity: str | None) -> AuthMode:
        """The mode applying to ``identity`` (its per-device override, else the fleet mode)."""
        if identity and identity in self.policy.per_device:
            return self.policy.per_device[identity]
        return self.policy.mode

    def check(
        self, header: str | None, method: str, *, identity: str, uri: str | None = None
    ) -> bool:
        """Whether ``header`` authenticates a request *for* ``identity``.

        Parameters
        ----------
        header : str or None
            The request's ``Authorization`` header.
        method : str
            HTTP method (part of the Digest hash).
        identity : str
            Who the request is for: the DeviceId of the Inform, or the device of the
            connection-request path. The username must equal it.
        uri : str, optional
            The request's raw path and query; a Digest ``uri`` must equal it.
        """
        mode = self.mode_for(identity)
        if mode == "none":
            return True
        if header is None:
            return False
        scheme, p = parse_auth_header(header)
        if scheme == "basic":
            if mode != "basic":  # Digest required: Basic is answered with a challenge
                return False
            try:
                user, _, pw = base64.b64decode(p["token"], validate=True).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            expected = self._password(identity)
            return (
                hmac.compare_digest(user.encode(), identity.encode())
                and expected is not None
                and hmac.compare_digest(pw.encode(), expected.encode())
            )
        if scheme != "digest":
            return False
        user, nonce = p.get("username", ""), p.get("nonce", "")
        if not hmac.compare_digest(user.encode(), identity.encode()):
            return False
        if uri is not None and p.get("uri", "") != uri:
            return False
        expected = self._password(identity)
        if expected is None or not self._nonce_ok(nonce, identity):
            return False
        ha1 = _md5(f"{user}:{p.get('realm', '')}:{expected}")
        ha2 = _md5(f"{method}:{p.get('uri', '')}")
        if p.get("qop"):
            want = _md5(f"{ha1}:{nonce}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}")
        else:
            want = _md5(f"{ha1}:{nonce}:{ha2}")
        if not hmac.compare_digest(want, p.get("response", "")):
            return False
        return self._fresh_nc(nonce, p.get("nc") if p.get("qop") else None)

    def _password(self, identity: str) -> str | None:
        return self.policy.passwords(identity) if self.policy.passwords else None
