"""What one ``guardian api`` serves (:class:`ApiConfig`) and the URL prefix of its routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ApiConfig", "PREFIX"]

PREFIX = "/api/v1"


@dataclass
class ApiConfig:
    """What one ``guardian api`` serves.

    Attributes
    ----------
    run : Path
        Run folder of the warehouse.
    users : Path
        Users file.
    state : Path or None
        ``guardian operate``'s state folder (site mode); None: read-only run mode.
    audit : Path or None
        The API's audit file (default: ``<state>/api-audit.jsonl``, or beside the users
        file in run mode).
    execute_per_minute : int
        Requests to ``POST /decision/execute`` one user may make per minute. [1/min]
    reboot_cooldown_minutes : float
        Cooldown the simulate endpoint checks against operate's journal. [min]
    cors_origins : list of str
        Origins allowed by CORS; empty: no CORS headers at all.
    subscribers : Path or None
        The site's subscribers file: the inventory when the warehouse has none (operate
        stores telemetry only).
    webhook_every_s : float
        Interval of the webhook dispatcher; 0: not started (tests call it). [s]
    olt_cli_inventory : Path or None
        OLT CLI inventory (``docs/olt.md``) for ``POST /olt/changes``; None: 409.
    cookie_secure : bool
        Send the dashboard's session cookie with ``Secure`` (only over HTTPS): set it when
        a TLS proxy is in front.
    console_refresh_s : float
        How often the dashboard page re-reads the API. [s]
    webhook_allow_local : bool
        Let webhooks reach loopback, link-local (cloud metadata) and other local
        addresses (:func:`guardian_lib.api.webhooks.webhook_target_error`); off: refused.
    contacts_folder : Path or None
        The site's contacts drop folder, which ``POST /contacts`` writes to; None: 409.
    contacts : ContactSettings or None
        The site's ``contacts:`` section (time zone and clock tolerance of the checks).
    """

    run: Path
    users: Path
    state: Path | None = None
    audit: Path | None = None
    execute_per_minute: int = 10
    reboot_cooldown_minutes: float = 360.0
    cors_origins: list[str] = field(default_factory=list)
    subscribers: Path | None = None
    webhook_every_s: float = 5.0
    olt_cli_inventory: Path | None = None
    cookie_secure: bool = False
    console_refresh_s: float = 10.0
    webhook_allow_local: bool = False
    contacts_folder: Path | None = None
    contacts: Any = None

    @property
    def read_only(self) -> bool:
        """True in ``--run`` mode (no operate state)."""
        return self.state is None

    def operate_state_ready(self) -> bool | None:
        """Whether ``guardian operate`` has created its state in ``state`` (None: ``--run``)."""
        if self.state is None:
            return None
        from guardian_lib.operate.state import STATE_FILE

        return (self.state / STATE_FILE).is_file()

    def webhooks_path(self) -> Path:
        """Where webhook subscriptions are kept (0600)."""
        return (self.state or self.users.parent) / "webhooks.json"

    def olt_audit_path(self) -> Path:
        """The OLT changes' audit trail (``olt-audit.jsonl`` beside the API's audit)."""
        return self.audit_path().with_name("olt-audit.jsonl")

    def audit_path(self) -> Path:
        """Where the API's audit lines go."""
        if self.audit is not None:
            return self.audit
        return (self.state or self.users.parent) / "api-audit.jsonl"
