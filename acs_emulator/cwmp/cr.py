"""Connection requests from the ACS to CPEs, to trusted URLs with the ACS's own credentials.

A device reports its ``ConnectionRequestURL`` and ``ConnectionRequestUsername`` in its
own Informs, so both are hostile: a device could point the URL at another host (the
ACS would then call it, and authenticate there) or name another device as its user
(the ACS would send that device's password). So:

* the URL must be http(s), without userinfo, and its host must be the address the
  device informs from (``_informAddress`` of its document) or in the operator's
  ``cr_allowed_hosts`` (host names or networks, for CPEs behind NAT or a proxy);
  redirects are not followed;
* the username is always the device id, and the password is the ACS's own for that
  device id (``cr_password(device_id)``, the environment, or this process's random
  password); the documented development password is refused unless allowed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from acs_emulator.cwmp.auth import (
    DevPasswordRefused,
    basic_authorization,
    digest_authorization,
    parse_auth_header,
    resolve_cr_password,
)
from acs_emulator.cwmp.documents import get_parameter

__all__ = ["ConnectionRequester", "password_lookup_from_env"]

log = logging.getLogger(__name__)


def password_lookup_from_env(
    var: str = "GUARDIAN_ACS_CPE_PASSWORD", file_var: str = "GUARDIAN_ACS_CPE_PASSWORDS_FILE"
) -> Callable[[str], str | None]:
    """Password lookup from the environment: one fleet password, or a file of ``user:pw``.

    The file (one ``username:password`` per line) wins over the single variable for
    the users it lists. Values are read once; nothing is logged.
    """
    table: dict[str, str] = {}
    path = os.environ.get(file_var)
    if path:
        for line in Path(path).read_text().splitlines():
            user, sep, pw = line.strip().partition(":")
            if sep and not user.startswith("#"):
                table[user] = pw
    fleet = os.environ.get(var)

    def lookup(user: str) -> str | None:
        return table.get(user, fleet)

    return lookup


class ConnectionRequester:
    """Sends connection requests for one ACS (see the module docstring).

    Parameters
    ----------
    config : AcsConfig
        The ACS settings (``cr_*`` fields and ``connection_request_timeout_s``).
    """

    def __init__(self, config: Any) -> None:
        self.config = config
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Close the HTTP client pool."""
        if self._http is not None:
            await self._http.close()
            self._http = None

    def _cr_url_refusal(self, url: str, doc: dict[str, Any]) -> str | None:
        """Why the ACS will not send a connection request to ``url`` (``None``: it may).

        Trusted: an http(s) URL without userinfo whose host is the address the device
        informs from, or in ``cr_allowed_hosts`` (host names or networks).
        """
        try:
            u = aiohttp.helpers.URL(url)
        except (ValueError, TypeError):
            return "Connection request refused: ConnectionRequestURL is not a URL"
        if u.scheme not in ("http", "https") or not u.host:
            return f"Connection request refused: expected an http(s) URL, got {url[:100]!r}"
        if u.user or u.password:
            return "Connection request refused: the URL carries credentials"
        host = u.host.strip("[]").lower()
        addr = _ip(host)
        for allowed in self.config.cr_allowed_hosts:
            net = _net(allowed)
            if (net is not None and addr is not None and addr in net) or host == allowed.lower():
                return None
        source = _ip(str(doc.get("_informAddress", "")))
        if source is not None and addr is not None and addr == source:
            return None
        return (
            f"Connection request refused: URL host {host} is neither the device's Inform "
            f"source ({doc.get('_informAddress', 'unknown')}) nor in cr_allowed_hosts"
        )

    def _cr_credentials(self, device_id: str) -> tuple[str, str]:
        """The ACS's own connection-request credentials of ``device_id``."""
        lookup = self.config.cr_password or password_lookup_from_env(
            "GUARDIAN_CPE_CR_PASSWORD", "GUARDIAN_CPE_CR_PASSWORDS_FILE"
        )
        password = resolve_cr_password(
            lookup(device_id), allow_dev_password=self.config.cr_allow_dev_password
        )
        return device_id, password

    async def send(self, device_id: str, doc: dict[str, Any], root: str) -> str | None:
        """Send a connection request to device ``doc``; ``None`` on success, else why not."""
        url = get_parameter(doc, f"{root}.ManagementServer.ConnectionRequestURL")
        if not url:
            return "Connection request error: device has no ConnectionRequestURL"
        refusal = self._cr_url_refusal(str(url), doc)
        if refusal is not None:
            log.warning("%s: %s", device_id, refusal)
            return refusal
        try:
            user, password = self._cr_credentials(device_id)
        except DevPasswordRefused as exc:
            return f"Connection request error: {exc}"
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.config.connection_request_timeout_s)
            )
        try:
            async with self._http.get(url, allow_redirects=False) as resp:
                status, challenge = resp.status, resp.headers.get("WWW-Authenticate", "")
            if status == 401 and challenge:
                scheme, _ = parse_auth_header(challenge)
                if scheme != "digest" and not self.config.cr_allow_basic:
                    return (
                        f"Connection request error: {url} asks for {scheme} auth; "
                        "Basic is off (cr_allow_basic)"
                    )
                uri = aiohttp.helpers.URL(url).raw_path_qs
                header = (
                    digest_authorization(challenge, "GET", uri, user, password)
                    if scheme == "digest"
                    else basic_authorization(user, password)
                )
                async with self._http.get(
                    url, headers={"Authorization": header}, allow_redirects=False
                ) as resp:
                    status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            return f"Connection request error: {type(exc).__name__} reaching {url}"
        if status in (200, 204):
            return None
        if status == 401:
            return f"Connection request error: incorrect connection request credentials ({url})"
        return f"Connection request error: unexpected status {status} from {url}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    mapped = getattr(addr, "ipv4_mapped", None)
    return mapped or addr


def _net(spec: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return None
