"""Settings of the CWMP ACS (:class:`AcsConfig`), apart from the session machinery."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from acs_emulator.cwmp import soap
from acs_emulator.cwmp.auth import AuthPolicy
from acs_emulator.cwmp.presets import Preset

__all__ = ["AcsConfig"]


@dataclass
class AcsConfig:
    """Settings of the ACS.

    Parameters
    ----------
    auth : AuthPolicy
        CPE authentication (none by default, as GenieACS).
    max_body_bytes : int
        Largest CWMP body accepted. [bytes]
    session_timeout_s : float
        A session idle this long is dropped (its in-flight task stays queued). [s]
    max_sessions : int
        Open sessions beyond this get 503 with Retry-After. [-]
    retry_after_s : int
        Retry-After sent with 503. [s]
    max_new_sessions_per_s : float, default 0
        Admission rate of new sessions (token bucket, bursts of one second's worth);
        an Inform beyond it is answered 503 + Retry-After before any parsing work is
        stored, so a boot storm queues in the CPEs' back-off rather than in the ACS.
        0 = no rate limit (``max_sessions`` still applies). [1/s]
    connection_request_timeout_s : float
        Timeout of one connection request. [s]
    cr_allow_basic : bool, default False
        Answer a connection-request listener's Basic challenge (sends the password in
        clear; off by default, as GenieACS's ``cwmp.connectionRequestAllowBasicAuth``).
    cr_password : callable, optional
        ``cr_password(device_id) -> str | None`` for connection requests; defaults to
        the environment (``GUARDIAN_CPE_CR_PASSWORD`` or the ``device-id:password``
        lines of ``GUARDIAN_CPE_CR_PASSWORDS_FILE``). The username sent is always the
        device id, never the ``ConnectionRequestUsername`` the device reports.
    cr_allowed_hosts : list of str
        Hosts or networks (``"10.20.0.0/16"``, ``"cpe.example.net"``) connection
        requests may go to besides the address the device informs from (CPEs behind
        NAT or a proxy). [-]
    cr_allow_dev_password : bool, default False
        Allow the documented development connection-request password.
    read_timeout_s : float, default 15
        A client must deliver its request body within this time (slow clients are
        cut with 408). [s]
    presets : list of Preset
        Automatic tasks (zero-touch provisioning, periodic refresh).
    file_server_url : str
        Base URL prepended to a download task's ``fileName`` when it has no ``url``
        (where CPEs reach the file server). Empty: :class:`AcsService` sets it to its
        own file listener.
    builtin_virtual_parameters : bool, default True
        Compute ``VirtualParameters.RXPower`` [dBm] across vendors
        (:data:`acs_emulator.cwmp.virtual.RX_POWER`).
    file_dir : str, optional
        Folder of the files uploaded through the NBI (``PUT /files/<name>``);
        ``None`` keeps them in a temporary folder removed at exit.
    max_file_bytes : int, default 512 MiB
        Largest file accepted by ``PUT /files/<name>``. [bytes]
    store_commit_interval_s : float, default 0.05
        The store's queued changes are written in one transaction this often (group
        commit); a crash loses at most this much CWMP state. [s]
    session_token_prefix : str, default ""
        Hex digits every session cookie of this process starts with (set per process
        by :class:`~acs_emulator.cwmp.workers.AcsWorkers`).
    sibling_sockets : dict of str to str
        ``{token prefix: Unix socket}`` of the sibling ACS processes: a request whose
        session cookie has such a prefix is forwarded there
        (:class:`~acs_emulator.cwmp.siblings.SiblingProxy`).
    cwmp_unix_socket : str, optional
        Also serve CWMP on this Unix socket (where siblings forward to).
    """

    auth: AuthPolicy = field(default_factory=AuthPolicy)
    max_body_bytes: int = soap.MAX_BODY_BYTES
    session_timeout_s: float = 30.0
    max_sessions: int = 5000
    retry_after_s: int = 5
    max_new_sessions_per_s: float = 0.0
    connection_request_timeout_s: float = 5.0
    cr_allow_basic: bool = False
    cr_password: Callable[[str], str | None] | None = None
    cr_allowed_hosts: list[str] = field(default_factory=list)
    cr_allow_dev_password: bool = False
    read_timeout_s: float = 15.0
    presets: list[Preset] = field(default_factory=list)
    file_server_url: str = ""
    builtin_virtual_parameters: bool = True
    file_dir: str | None = None
    max_file_bytes: int = 512 * 1024 * 1024
    store_commit_interval_s: float = 0.05
    session_token_prefix: str = ""
    sibling_sockets: dict[str, str] = field(default_factory=dict)
    cwmp_unix_socket: str | None = None
