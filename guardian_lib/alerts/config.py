"""The alerting file (YAML): rules, inhibition, routing tree and receivers.

One file configures everything (the shape of Prometheus rules + Alertmanager config)::

    rules:
      - name: MassiveIncident
        source: incidents            # incidents | predictions | events | health
        when: [{field: scope_type, op: in, value: [olt, pon, splitter]}]
        for: 0m
        severity: critical
        summary: "{scope_type} {scope_key}: {affected_customers} customers affected"
    inhibit_rules:
      - source_matchers: {alertname: MassiveIncident, scope_type: pon}
        target_matchers: {level: onu}
        equal: [pon]
    route:
      receiver: noc-email
      group_by: [alertname, scope_key]
      routes: [{matchers: {severity: critical}, receiver: noc-webhook, continue: true}]
    receivers:
      - name: noc-email
        email: {host: 127.0.0.1, port: 25, sender: guardian@isp, to: [noc@isp]}

Every error names the file and the field (``rules[2].when[0].op``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guardian_lib.decision.maintenance import MaintenanceWindow, unique_windows
from guardian_lib.safe_yaml import load_yaml_model
from guardian_lib.secrets import SecretRef

__all__ = [
    "SOURCES",
    "OPS",
    "Condition",
    "Rule",
    "InhibitRule",
    "MaintenanceWindow",
    "Route",
    "EmailSettings",
    "WebhookSettings",
    "AlertmanagerSettings",
    "SmsSettings",
    "WhatsAppSettings",
    "ReceiverSettings",
    "CustomerNoticeSettings",
    "AlertingConfig",
    "parse_duration_s",
    "load_alerting",
    "default_rules_path",
]

#: Where observations come from.
SOURCES = ("incidents", "predictions", "events", "health")
#: Comparison operators of a rule condition.
OPS = ("==", "!=", ">", ">=", "<", "<=", "in", "not_in", "=~")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 60.0}


def parse_duration_s(value: Any) -> float:
    """A duration in seconds from ``"5m"``, ``"30s"``, ``"1h"``, ``"2d"`` or a number of minutes.

    Examples
    --------
    >>> parse_duration_s("5m"), parse_duration_s(2), parse_duration_s("90s")
    (300.0, 120.0, 90.0)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"expected a duration >= 0, got {value!r}")
        return float(value) * 60.0
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"expected a duration like '30s', '5m', '1h' or '2d', got {value!r}")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


Duration = Annotated[float, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _WithDurations(_Strict):
    """Fields ending in ``_s`` also accept '5m'-style strings (stored in seconds)."""

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if (name.endswith("_s") or name == "for_s") and key in out:
                out[key] = parse_duration_s(out[key])
        return out


class Condition(_Strict):
    """One test on an observation: ``field op value`` (a label or a value)."""

    field: str = Field(min_length=1)
    op: Literal["==", "!=", ">", ">=", "<", "<=", "in", "not_in", "=~"] = "=="
    value: Any

    @model_validator(mode="after")
    def _value_fits(self) -> Condition:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value, got {self.value!r}")
        if self.op == "=~":
            re.compile(str(self.value))
        return self

    def holds(self, obs: dict[str, Any]) -> bool:
        """Whether ``obs`` passes (a missing field never passes)."""
        if self.field not in obs or obs[self.field] is None:
            return False
        x, v = obs[self.field], self.value
        try:
            match self.op:
                case "==":
                    return x == v or str(x) == str(v)
                case "!=":
                    return not (x == v or str(x) == str(v))
                case ">":
                    return float(x) > float(v)
                case ">=":
                    return float(x) >= float(v)
                case "<":
                    return float(x) < float(v)
                case "<=":
                    return float(x) <= float(v)
                case "in":
                    return str(x) in {str(i) for i in v}
                case "not_in":
                    return str(x) not in {str(i) for i in v}
                case "=~":
                    return re.fullmatch(str(v), str(x)) is not None
        except (TypeError, ValueError):
            return False
        return False  # pragma: no cover


class Rule(_WithDurations):
    """An alert rule over one source of observations."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    source: Literal["incidents", "predictions", "events", "health"]
    when: list[Condition] = Field(default_factory=list)
    for_s: Duration = Field(0.0, alias="for", description="Condition must hold this long. [s]")
    keep_firing_for_s: Duration = Field(
        0.0, alias="keep_firing_for", description="Stay firing after the last match. [s]"
    )
    severity: Literal["critical", "major", "warning", "info"] = "warning"
    labels: dict[str, str] = Field(default_factory=dict)
    label_fields: list[str] = Field(
        default_factory=lambda: ["region", "olt", "pon", "box", "onu", "customer",
                                 "segment", "scope_type", "scope_key", "level"],
        description="Observation fields copied into the alert's labels (identity).",
    )  # fmt: skip
    summary: str = ""
    notify_resolved: bool = True


class InhibitRule(_Strict):
    """A firing source alert mutes target alerts that share the ``equal`` labels."""

    source_matchers: dict[str, str]
    target_matchers: dict[str, str]
    equal: list[str] = Field(default_factory=list)


class Route(_WithDurations):
    """A node of the routing tree (children inherit unset settings)."""

    receiver: str | None = None
    matchers: dict[str, str] = Field(default_factory=dict)
    group_by: list[str] | None = None
    group_wait_s: Duration | None = Field(None, alias="group_wait")
    group_interval_s: Duration | None = Field(None, alias="group_interval")
    repeat_interval_s: Duration | None = Field(None, alias="repeat_interval")
    continue_: bool = Field(False, alias="continue")
    routes: list[Route] = Field(default_factory=list)


class EmailSettings(SecretRef):
    """SMTP delivery (the password comes from ``token_env`` or a 0600 ``token_file``)."""

    host: str
    port: int = Field(25, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    to: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+$")]] = Field(min_length=1)
    starttls: bool = False
    username: str | None = None
    timeout_s: float = Field(10.0, gt=0, le=300)


class WebhookSettings(SecretRef):
    """JSON POST signed with HMAC-SHA256 (the key from ``token_env`` or ``token_file``)."""

    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(10.0, gt=0, le=300)
    retries: int = Field(3, ge=0, le=20)
    backoff_s: float = Field(0.5, ge=0, le=60, description="First backoff, doubles. [s]")


class AlertmanagerSettings(_Strict):
    """Forward alerts to an existing Prometheus Alertmanager (``POST /api/v2/alerts``)."""

    url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://am:9093")
    timeout_s: float = Field(10.0, gt=0, le=300)


_PHONE = r"^\+?[0-9]{8,15}$"


class SmsSettings(SecretRef):
    """SMS through Twilio's Messages API (auth token from ``token_env`` / ``token_file``)."""

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    sender: str = Field(pattern=_PHONE)
    to: list[Annotated[str, Field(pattern=_PHONE)]] = Field(
        default_factory=list, description="On-call numbers (alerts); empty for customer notices."
    )
    base_url: str = Field("https://api.twilio.com", pattern=r"^https?://")
    timeout_s: float = Field(10.0, gt=0, le=300)


class WhatsAppSettings(SecretRef):
    """WhatsApp Business Cloud API text messages (access token from ``token_env``/``token_file``)."""

    phone_number_id: str = Field(pattern=r"^[0-9]{5,20}$")
    to: list[Annotated[str, Field(pattern=_PHONE)]] = Field(
        default_factory=list, description="On-call numbers (alerts); empty for customer notices."
    )
    api_version: str = Field("v21.0", pattern=r"^v[0-9]+\.[0-9]+$")
    base_url: str = Field("https://graph.facebook.com", pattern=r"^https?://")
    timeout_s: float = Field(10.0, gt=0, le=300)


_CHANNELS = ("email", "webhook", "alertmanager", "sms", "whatsapp")


class ReceiverSettings(_Strict):
    """A named receiver with one channel."""

    name: str = Field(min_length=1)
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    alertmanager: AlertmanagerSettings | None = None
    sms: SmsSettings | None = None
    whatsapp: WhatsAppSettings | None = None
    send_resolved: bool = True

    @model_validator(mode="after")
    def _one_channel(self) -> ReceiverSettings:
        given = [c for c in _CHANNELS if getattr(self, c) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one channel of {_CHANNELS}, got {given or 'none'}")
        return self


class CustomerNoticeSettings(_Strict):
    """How ``guardian operate`` tells customers (docs/alerts.md, "Customer notices")."""

    receiver: str = Field(min_length=1, description="An sms, whatsapp or webhook receiver.")
    lang: Literal["pt-BR", "en"] = Field(
        "pt-BR", description="Language of customers whose subscriber row gives none."
    )
    tz: str = Field("America/Sao_Paulo", description="Customers' time zone (dates, quiet hours).")
    quiet_start_h: int = Field(22, ge=0, le=23, description="Quiet hours start (local). [h]")
    quiet_end_h: int = Field(7, ge=0, le=23, description="Quiet hours end (local). [h]")
    eta_h: float = Field(
        12.0, gt=0, le=168,
        description="ETA told in visit_cancelled, after the incident's start. [h]",
    )  # fmt: skip

    @field_validator("tz")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (e.g. America/Sao_Paulo)") from None
        return v


_NOTICE_CHANNELS = ("sms", "whatsapp", "webhook")


class AlertingConfig(_WithDurations):
    """The whole alerting file."""

    evaluation_interval_s: Duration = Field(300.0, alias="evaluation_interval")
    drift_every_cycles: int = Field(
        12, ge=1, le=10_000,
        description="guardian operate recomputes the models' PSI (health, level: model) "
        "every this many cycles. [-]",
    )  # fmt: skip
    rules: list[Rule] = Field(min_length=1)
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    maintenance_windows: list[MaintenanceWindow] = Field(default_factory=list)
    route: Route = Route(receiver="null")
    receivers: list[ReceiverSettings] = Field(default_factory=list)
    customer_notices: CustomerNoticeSettings | None = None
    path: Path | None = Field(None, exclude=True)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, v: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for r in v:
            if r.name in seen:
                raise ValueError(f"rule name {r.name!r} is used twice")
            seen.add(r.name)
        return v

    @field_validator("maintenance_windows")
    @classmethod
    def _window_names(cls, v: list[MaintenanceWindow]) -> list[MaintenanceWindow]:
        return unique_windows(v)

    @model_validator(mode="after")
    def _receivers_exist(self) -> AlertingConfig:
        names = {r.name for r in self.receivers} | {"null"}

        def walk(route: Route, where: str) -> None:
            if route.receiver is not None and route.receiver not in names:
                raise ValueError(
                    f"{where}.receiver: unknown receiver {route.receiver!r}, "
                    f"expected one of {sorted(names)}"
                )
            rx = self.receiver(route.receiver) if route.receiver else None
            for ch in ("sms", "whatsapp"):
                if rx is not None and getattr(rx, ch) is not None and not getattr(rx, ch).to:
                    raise ValueError(
                        f"{where}.receiver: receiver {rx.name!r} gets alerts but its {ch}.to "
                        "lists no number"
                    )
            for i, child in enumerate(route.routes):
                walk(child, f"{where}.routes[{i}]")

        if self.route.receiver is None:
            raise ValueError("route.receiver: the root route needs a receiver")
        walk(self.route, "route")
        cn = self.customer_notices
        if cn is not None:
            rx = self.receiver(cn.receiver)
            if rx is None or not any(getattr(rx, c) is not None for c in _NOTICE_CHANNELS):
                raise ValueError(
                    f"customer_notices.receiver: {cn.receiver!r} must name a receiver with "
                    f"one of {_NOTICE_CHANNELS}; receivers: {sorted(names - {'null'})}"
                )
        return self

    def receiver(self, name: str) -> ReceiverSettings | None:
        """The receiver called ``name`` (None for ``null``)."""
        return next((r for r in self.receivers if r.name == name), None)


def default_rules_path() -> Path:
    """The rule file shipped with the package."""
    return Path(__file__).with_name("default_rules.yaml")


@cache
def _default() -> AlertingConfig:
    return load_alerting(default_rules_path())


def load_alerting(path: str | Path | None = None) -> AlertingConfig:
    """Read and validate an alerting file (``None``: the shipped default).

    Raises
    ------
    ConfigError
        Naming the file and the field (``rules[1].for``) and what was expected.
    """
    if path is None:
        return _default()
    p = Path(path)
    return load_yaml_model(
        p, AlertingConfig, shape="a mapping with 'rules'", what="invalid alerting file",
        extra={"path": p},
    )  # fmt: skip
