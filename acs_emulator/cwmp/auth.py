"""HTTP Basic and Digest (RFC 2617, MD5, ``qop=auth``) for CWMP.

Used on both sides: the ACS authenticates CPEs, the CPE connection-request listener
authenticates the ACS, and the clients answer Digest challenges. Nonces are stateless
(timestamp + HMAC), so any number of concurrent sessions need no nonce table; a nonce
older than ``nonce_ttl_s`` is refused as stale. Passwords are compared in constant
time and never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "DEV_CR_PASSWORD",
    "AuthMode",
    "AuthPolicy",
    "Authenticator",
    "parse_auth_header",
    "digest_authorization",
    "basic_authorization",
]

AuthMode = Literal["none", "basic", "digest"]

#: Connection-request password used by the emulators when ``GUARDIAN_CPE_CR_PASSWORD``
#: is unset (development only: docs/tr069.md says to set the variable).
DEV_CR_PASSWORD = "guardian-dev-cr"

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
        ``passwords(username) -> str | None`` gives the expected password of a user
        (``None`` = unknown user). Secrets come from the environment or a file, never
        from code (see :func:`acs_emulator.cwmp.server.password_lookup_from_env`).
    per_device : dict, optional
        Overrides of the mode by username (device id), for CPEs that crash on a Digest
        challenge (use ``"basic"``) or cannot authenticate at all (``"none"``).
    realm : str
        Realm announced in challenges.
    nonce_ttl_s : float, default 300
        Lifetime of a Digest nonce. [s]
    """

    mode: AuthMode = "none"
    passwords: Callable[[str], str | None] | None = None
    per_device: dict[str, AuthMode] = field(default_factory=dict)
    realm: str = "cwmp"
    nonce_ttl_s: float = 300.0


class Authenticator:
    """Checks ``Authorization`` headers against an :class:`AuthPolicy`."""

    def __init__(self, policy: AuthPolicy) -> None:
        self.policy = policy
        self._key = os.urandom(16)

    def _nonce(self) -> str:
        ts = f"{time.time():.0f}"
        sig = hmac.new(self._key, ts.encode(), hashlib.sha256).hexdigest()[:24]
        return base64.b64encode(f"{ts}:{sig}".encode()).decode()

    def _nonce_ok(self, nonce: str) -> bool:
        try:
            ts, sig = base64.b64decode(nonce.encode()).decode().split(":")
            good = hmac.new(self._key, ts.encode(), hashlib.sha256).hexdigest()[:24]
            return hmac.compare_digest(sig, good) and time.time() - float(ts) < (
                self.policy.nonce_ttl_s
            )
        except (ValueError, UnicodeDecodeError):
            return False

    def challenge(self, username: str | None = None) -> str:
        """``WWW-Authenticate`` value for a 401 (Digest or Basic by policy)."""
        mode = self.mode_for(username)
        if mode == "basic":
            return f'Basic realm="{self.policy.realm}"'
        return (
            f'Digest realm="{self.policy.realm}", qop="auth", '
            f'nonce="{self._nonce()}", algorithm=MD5'
        )

    def mode_for(self, username: str | None) -> AuthMode:
        """The mode applying to ``username`` (per-device override or fleet mode)."""
        if username and username in self.policy.per_device:
            return self.policy.per_device[username]
        return self.policy.mode

    def check(self, header: str | None, method: str, *, device_hint: str | None = None) -> bool:
        """Whether ``header`` authenticates the request under the policy.

        Parameters
        ----------
        header : str or None
            The request's ``Authorization`` header.
        method : str
            HTTP method (part of the Digest hash).
        device_hint : str, optional
            Device id when already known (selects per-device overrides when no
            ``Authorization`` header names a user).
        """
        if header is None:
            return self.mode_for(device_hint) == "none"
        scheme, p = parse_auth_header(header)
        if scheme == "basic":
            try:
                user, _, pw = base64.b64decode(p["token"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            mode = self.mode_for(user)
            if mode == "none":
                return True
            if mode != "basic":  # Digest required: Basic is answered with a challenge
                return False
            expected = self._password(user)
            return expected is not None and hmac.compare_digest(pw.encode(), expected.encode())
        if scheme == "digest":
            user = p.get("username", "")
            mode = self.mode_for(user)
            if mode == "none":
                return True
            expected = self._password(user)
            if expected is None or not self._nonce_ok(p.get("nonce", "")):
                return False
            ha1 = _md5(f"{user}:{p.get('realm', '')}:{expected}")
            ha2 = _md5(f"{method}:{p.get('uri', '')}")
            if p.get("qop"):
                want = _md5(
                    f"{ha1}:{p['nonce']}:{p.get('nc', '')}:{p.get('cnonce', '')}:{p['qop']}:{ha2}"
                )
            else:
                want = _md5(f"{ha1}:{p['nonce']}:{ha2}")
            return hmac.compare_digest(want, p.get("response", ""))
        return False

    def _password(self, user: str) -> str | None:
        return self.policy.passwords(user) if self.policy.passwords else None
