"""The site file of ``guardian operate``: what to poll, where to act, how carefully.

A site file (YAML) names the OLT inventory of the SNMP poller, the subscribers
(which CPE and street box hang on each ONU), the ACS NBI, the polling interval, the model
alias, the safety limits, the field-service and notifier settings and the warehouse.
Secrets never sit in it: the NBI and webhook tokens are *references*, an environment
variable name (``token_env``) or a secret file readable by its owner only
(``token_file``, mode 0600). Relative paths are relative to the site file.

Example::

    site_id: isp-sul
    inventory: olts.yaml                 # guardian poll's inventory (docs/snmp.md)
    subscribers: subscribers.csv         # optional: onu_id, cpe_id, customer_id, pon_id, box_id
    polling_interval_s: 300
    missed_poll_grace_steps: 1           # a missed poll keeps the last reading one cycle
    warehouse: data/runs/prod
    model_alias: champion                # the rule scorer when no model is registered
    nbi: {url: "http://acs.example:7557", token_env: GUARDIAN_NBI_TOKEN,
          silent_wait_max_s: 1800}      # a silent OLT waits for its CPEs' Informs
    safety: {reboot_cooldown_minutes: 360, max_reboots_per_day: 2, cost_per_visit: 150}
    costs: {call_cost_brl: 8, call_ahead_cost_brl: 4, revisit_after_cancel_h: 8}
    field_service: {kind: webhook, url: "https://tickets.example/api/orders",
                    token_file: tickets.token}
    notifier: {kind: audit}
    alerts: alerts.yaml                  # alert rules and receivers (docs/alerts.md)
    contacts: {folder: contacts}         # the helpdesk's customer contacts, CSV / JSONL
    schedule:                            # reports e-mailed on a cron schedule
      - {name: weekly, cron: "0 7 * * mon", format: pdf, lang: pt-BR, receiver: managers}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from guardian_lib.decision.settings import AutopilotSettings, SettingsError
from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS
from guardian_lib.operate.contacts import ContactSettings
from guardian_lib.operate.schedule import ReportJob
from guardian_lib.operate.silent import (
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    WAIT_MAX_LIMIT_S,
    WAIT_MAX_S,
)
from guardian_lib.safe_yaml import StrictModel, load_yaml_model
from guardian_lib.secrets import SecretRef, read_secret  # re-exported: moved there

__all__ = [
    "SiteConfig",
    "NbiSettings",
    "FieldServiceSettings",
    "NotifierSettings",
    "ClockSettings",
    "SecretRef",
    "TrapSettings",
    "ContactSettings",
    "load_site",
    "read_secret",
]

#: AutopilotSettings fields a site may set (the mode comes from ``--mode``).
SAFETY_FIELDS = tuple(f for f in AutopilotSettings.model_fields if f != "autopilot_mode")


_Strict = StrictModel  # unknown keys refused (guardian_lib.safe_yaml)


class NbiSettings(SecretRef):
    """The ACS northbound interface (our ACS or GenieACS, port 7557 by default)."""

    url: Annotated[str, Field(pattern=r"^https?://", description="NBI base URL.")]
    timeout_s: float = Field(10.0, gt=0, le=300, description="Per call. [s]")
    task_timeout_ms: int = Field(3000, ge=100, le=120_000, description="Device wait. [ms]")
    retries: int = Field(4, ge=0, le=20, description="Retries of a retryable failure. [-]")
    backoff_s: float = Field(0.5, ge=0, le=60, description="First backoff, doubles. [s]")
    max_backoff_s: float = Field(30.0, ge=0, le=600, description="Cap of one wait. [s]")
    inform_interval_s: float | None = Field(
        None, ge=MIN_INTERVAL_S, le=MAX_INTERVAL_S,
        description="Periodic Inform interval assumed for a CPE that reports none (a silent "
        "OLT's CPEs: guardian_lib.operate.silent); None: such a CPE is no evidence. [s]",
    )  # fmt: skip
    silent_wait_max_s: float = Field(
        WAIT_MAX_S, gt=0, le=WAIT_MAX_LIMIT_S,
        description="How long a silent OLT none of whose CPEs informed since its silence "
        "is held online at most, waiting for evidence (guardian_lib.operate.silent); "
        "longer than 6 h would leave a dead OLT unseen for hours. [s]",
    )  # fmt: skip


class FieldServiceSettings(SecretRef):
    """Where technician visits go: a JSON webhook, a drop folder of CSV orders, or nowhere."""

    kind: Literal["none", "webhook", "drop_folder"] = "none"
    url: str | None = Field(None, pattern=r"^https?://", description="Webhook URL.")
    folder: str | None = Field(None, description="Drop folder of CSV orders.")
    timeout_s: float = Field(10.0, gt=0, le=300, description="Per request. [s]")
    retries: int = Field(3, ge=0, le=20, description="Retries after a failure. [-]")
    backoff_s: float = Field(0.5, ge=0, le=60, description="First backoff, doubles. [s]")

    @model_validator(mode="after")
    def _target(self) -> FieldServiceSettings:
        if self.kind == "webhook" and not self.url:
            raise ValueError("kind 'webhook' needs url")
        if self.kind == "drop_folder" and not self.folder:
            raise ValueError("kind 'drop_folder' needs folder")
        return self


class TrapSettings(_Strict):
    """Listen for the OLTs' SNMP traps: each accepted trap becomes a RAW event and starts a
    cycle at once (no sooner than ``min_cycle_gap_s`` after the previous one).

    ``credentials`` is a reference of the SNMP inventory's (environment or secret file):
    a community for ``version: "2c"``; user, auth and priv keys for ``"3"``, with each
    OLT's snmpEngineID in ``engine_ids`` (traps are unacknowledged, so the receiver must
    know every sender's engine id).
    """

    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(162, ge=0, le=65535, description="UDP port (0: any free port).")
    version: Literal["2c", "3"] = "2c"
    credentials: str = Field(description="Credentials reference (as in the inventory).")
    engine_ids: dict[str, str] = Field(default_factory=dict, description="OLT id → engine id.")
    min_cycle_gap_s: float = Field(5.0, ge=0, le=3600, description="Storm damping. [s]")


class ClockSettings(_Strict):
    """A scaled clock, for test networks that run faster than real time (the twin).

    The cycle time is ``epoch + (now - wall_epoch) * speed``: cooldowns, durations and
    the audit then read in the network's own time. Leave it out against a real network.
    """

    speed: float = Field(1.0, gt=0, le=1e6, description="Network seconds per wall second. [-]")
    epoch: str = Field(description="Network time (ISO 8601, UTC) at wall_epoch.")
    wall_epoch: float = Field(ge=0, description="Unix time at which the network was at epoch. [s]")

    def now(self) -> Any:
        """The network's present (UTC ``pandas.Timestamp``)."""
        import time

        return self.at(time.time())

    def at(self, wall_s: float) -> Any:
        """The network's time (UTC ``pandas.Timestamp``) at the wall-clock time ``wall_s``
        (Unix time). [s]"""
        import pandas as pd

        elapsed = (float(wall_s) - self.wall_epoch) * self.speed
        return pd.Timestamp(self.epoch).tz_convert("UTC") + pd.Timedelta(seconds=elapsed)


class NotifierSettings(_Strict):
    """Customer notifications: always in the audit trail; also sent when the alerting file
    (``alerts``) has a ``customer_notices`` section (docs/alerts.md)."""

    kind: Literal["audit"] = "audit"


class SiteConfig(_Strict):
    """A validated site file.

    Attributes
    ----------
    site_id : str
        Short name; prefixes the idempotency keys and audit ids.
    inventory : str
        OLT inventory YAML of the SNMP poller.
    subscribers : str or None
        CSV or Parquet with ``onu_id`` and optionally ``cpe_id``, ``customer_id``,
        ``pon_id``, ``box_id``, ``region``, ``segment``. Without it ONUs come from the
        first poll, the CPE id from the ACS (serial match) and the PON from the SNMP index.
    polling_interval_s : float
        Time between two cycles. [s]
    missed_poll_grace_steps : int
        Cycles an ONU missing from an answering OLT's poll keeps its last reading before
        it counts as not read (offline), 0 to 12; ``guardian decide`` applies the same
        to SILVER history (:mod:`guardian_lib.loop.missed`). [-]
    warehouse : str
        Run folder whose RAW lake and SILVER receive the polled rows.
    model_alias : str or None
        MLflow alias of the scorer; the rule scorer when nothing is registered.
    safety : dict
        :class:`~guardian_lib.decision.AutopilotSettings` fields (not the mode).
    costs : dict
        :class:`~guardian_lib.decision.costs.CostModel` fields (the expected-cost
        policy's prices and times; the visit's price is ``safety.cost_per_visit``).
    contacts : ContactSettings or None
        The helpdesk's customer contacts, read each cycle from a drop folder
        (:mod:`guardian_lib.operate.contacts`); None: operate learns of none.
    """

    site_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")] = "site"
    inventory: str
    subscribers: str | None = None
    polling_interval_s: float = Field(300.0, gt=0, le=86400)
    missed_poll_grace_steps: int = Field(MISSED_POLL_GRACE_STEPS, ge=0, le=12)
    warehouse: str
    model_alias: str | None = "champion"
    nbi: NbiSettings | None = None
    safety: dict[str, Any] = Field(default_factory=dict)
    costs: dict[str, Any] = Field(default_factory=dict)
    field_service: FieldServiceSettings = FieldServiceSettings()
    notifier: NotifierSettings = NotifierSettings()
    alerts: str | None = Field(
        None, description="Alerting file (YAML, docs/alerts.md): evaluated every cycle."
    )
    contacts: ContactSettings | None = Field(
        None, description="Drop folder of the helpdesk's customer contacts (docs/operate.md)."
    )
    clock: ClockSettings | None = None
    traps: TrapSettings | None = None
    schedule: list[ReportJob] = Field(
        default_factory=list, description="Reports built and e-mailed on a cron schedule."
    )
    reports_dir: str | None = Field(
        None, description="Folder of scheduled reports (default: STATE/reports)."
    )
    path: Path | None = Field(None, exclude=True)

    @field_validator("schedule")
    @classmethod
    def _unique_jobs(cls, v: list[ReportJob]) -> list[ReportJob]:
        names = [j.name for j in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"job names must be unique; repeated: {dup}")
        return v

    @field_validator("safety")
    @classmethod
    def _safety_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(v) - set(SAFETY_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown safety setting(s) {unknown}; expected some of {SAFETY_FIELDS}"
            )
        return v

    @model_validator(mode="after")
    def _grid_divides_a_day(self) -> SiteConfig:
        # SILVER's grid is the polling interval on the network's clock, whole seconds
        from guardian_lib.operate.steps import silver_grid_seconds

        silver_grid_seconds(self)  # ConfigError (a ValueError) names polling_interval_s
        return self

    def resolve(self, name: str | None) -> Path | None:
        """A path of the site file, relative to the file's folder."""
        if name is None:
            return None
        p = Path(name)
        return p if p.is_absolute() or self.path is None else self.path.parent / p

    def autopilot_settings(self, mode: str) -> AutopilotSettings:
        """The safety settings with the given mode (``approve`` decides like ``execute``).

        Raises
        ------
        ConfigError
            Naming ``safety.<field>``.
        """
        run_mode = "simulate" if mode == "simulate" else "execute"
        try:
            return AutopilotSettings(**self.safety, autopilot_mode=run_mode)
        except SettingsError as exc:  # name the site file's fields, not environment variables
            msg = validation_message(
                self.path or "<site>", exc.validation_error, "invalid site file"
            )
            raise ConfigError(
                msg.replace("invalid site file: ", "invalid site file: safety.")
            ) from None

    def cost_model(self) -> Any:
        """The expected-cost policy's :class:`~guardian_lib.decision.costs.CostModel`
        from ``costs:`` (defaults for what it leaves out).

        Raises
        ------
        ConfigError
            Naming ``costs.<field>``: an unknown field (with the known ones), a value out
            of range, or ``cost_per_visit_brl`` (the visit's price is
            ``safety.cost_per_visit``).
        """
        return _cost_model(self)


def _cost_model(site: SiteConfig) -> Any:
    """:class:`~guardian_lib.decision.costs.CostModel` of ``site.costs`` (see
    :meth:`SiteConfig.cost_model`)."""
    from pydantic import ValidationError

    from guardian_lib.decision.costs import CostModel

    where = site.path or "<site>"
    fields = sorted(CostModel.model_fields)
    for key in site.costs:
        if key == "cost_per_visit_brl":
            raise ConfigError(
                f"{where}: costs.cost_per_visit_brl: set the visit's price as "
                "safety.cost_per_visit (one place for it)"
            )
        if key not in CostModel.model_fields:
            raise ConfigError(f"{where}: costs.{key}: unknown setting; expected one of {fields}")
    try:
        return CostModel(**site.costs)
    except ValidationError as exc:
        msg = validation_message(where, exc, "invalid site file")
        raise ConfigError(msg.replace("invalid site file: ", "invalid site file: costs.")) from None


def load_site(path: str | Path) -> SiteConfig:
    """Read and validate a site file.

    Raises
    ------
    ConfigError
        Naming the file and the field (``nbi.url``, ``safety.max_reboots_per_day``…).
    """
    path = Path(path)
    site = load_yaml_model(
        path, SiteConfig, shape="a site file: a YAML mapping (inventory:, warehouse:, …)",
        what="invalid site file",
    )  # fmt: skip
    site.path = path
    site.autopilot_settings("simulate")  # validates the safety values now
    site.cost_model()  # and the costs
    inv = site.resolve(site.inventory)
    if inv is None or not inv.is_file():
        raise ConfigError(f"{path}: inventory: OLT inventory file {inv} not found")
    sub = site.resolve(site.subscribers)
    if sub is not None and not sub.is_file():
        raise ConfigError(f"{path}: subscribers: file {sub} not found")
    if site.schedule and site.alerts is None:
        raise ConfigError(
            f"{path}: schedule: reports are e-mailed through a receiver of the alerting "
            "file; give alerts: (docs/alerts.md) with an e-mail receiver"
        )
    return site
