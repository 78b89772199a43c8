"""Scenario configuration: a validated YAML description of one simulated ISP.

Every key is documented in ``experiments/scenarios/README.md``. Loading fails with the
file, the dotted field path and what was expected, e.g.::

    experiments/scenarios/small.yaml: topology.boards_per_olt: Input should be a valid
    integer (got '12a')
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.safe_yaml import load_yaml
from guardian_lib.schema import VISIT_COST_BRL

__all__ = [
    "Scenario",
    "Topology",
    "Region",
    "City",
    "Faults",
    "FaultSpec",
    "Weather",
    "Customers",
    "Operations",
    "Economics",
    "DataQuality",
    "Duration",
    "Spread",
    "BoxTakeRate",
    "load_scenario",
    "scenario_file",
    "read_yaml_mapping",
    "scenario_dir",
    "SPLIT_RATIOS",
    "SIZE_LIMITS",
    "size_problems",
]

#: Splitter ratios the optics model knows (1:N).
SPLIT_RATIOS = (2, 4, 8, 16, 32, 64)

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0)]
#: A yearly rate: at most 10 000 per unit per year (more than one an hour is not a fault rate).
YearlyRate = Annotated[float, Field(ge=0.0, le=10_000.0)]
#: An hourly call rate: at most 60 per hour.
HourlyRate = Annotated[float, Field(ge=0.0, le=60.0)]

#: Size guards of a whole scenario (``load_scenario(..., allow_large=True)`` or
#: ``guardian simulate --allow-large`` lifts them): upper bound of ONUs, of telemetry rows
#: (ONUs × ticks) and of expected fault starts over the run.
SIZE_LIMITS: dict[str, float] = {
    "onus": 100_000,
    "telemetry_rows": 1.5e9,
    "fault_starts": 1_000_000,
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Duration(_Strict):
    """A log-normal duration given by its median and 90th percentile. [h]"""

    median_h: Annotated[float, Field(gt=0)]
    p90_h: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _p90_above_median(self) -> Duration:
        if self.p90_h < self.median_h:
            raise ValueError(f"p90_h ({self.p90_h}) must be >= median_h ({self.median_h})")
        return self

    @property
    def sigma(self) -> float:
        """Log-space standard deviation. [-]"""
        return math.log(self.p90_h / self.median_h) / 1.2815515655446004


class Spread(_Strict):
    """A log-normal quantity given by its median and 90th percentile (unit set by the field)."""

    median: Annotated[float, Field(gt=0)]
    p90: Annotated[float, Field(gt=0)]

    @model_validator(mode="after")
    def _p90_above_median(self) -> Spread:
        if self.p90 < self.median:
            raise ValueError(f"p90 ({self.p90}) must be >= median ({self.median})")
        return self

    @property
    def sigma(self) -> float:
        """Log-space standard deviation. [-]"""
        return math.log(self.p90 / self.median) / 1.2815515655446004


class BoxTakeRate(_Strict):
    """Each street box's take rate: the share of its ``second_stage_ratio`` ports in use.

    Drawn per box from a Beta distribution of this mean and standard deviation (both
    shares of the box's ports [-]); see :func:`simulator.topology.build_topology`.
    """

    mean: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.75
    sd: Annotated[float, Field(gt=0.0, lt=0.5)]

    @model_validator(mode="after")
    def _beta_exists(self) -> BoxTakeRate:
        # A Beta distribution of mean m has variance below m (1 - m).
        top = math.sqrt(self.mean * (1.0 - self.mean))
        if self.sd >= top:
            raise ValueError(
                f"sd ({self.sd}) must be < sqrt(mean * (1 - mean)) = {top:.3f} for mean "
                f"{self.mean} (no Beta distribution is wider)"
            )
        return self

    @property
    def beta_ab(self) -> tuple[float, float]:
        """The Beta distribution's two shape parameters (a, b). [-]"""
        k = self.mean * (1.0 - self.mean) / self.sd**2 - 1.0
        return self.mean * k, (1.0 - self.mean) * k


class City(_Strict):
    """A city: its centre and the radius within which its street boxes lie."""

    name: str
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    radius_km: Annotated[float, Field(gt=0, le=100)] = 8.0


class Region(_Strict):
    """A region: a group of cities served by its own technicians."""

    name: str
    cities: Annotated[list[City], Field(min_length=1)]
    olts: Annotated[int, Field(ge=1, le=500)] = 1


class Topology(_Strict):
    """Physical network: OLTs → boards → PONs → splitters → street boxes → ONUs."""

    regions: Annotated[list[Region], Field(min_length=1)]
    boards_per_olt: Annotated[int, Field(ge=1, le=16)] = 4
    pons_per_board: Annotated[int, Field(ge=1, le=16)] = 8
    onus_per_pon_min: Annotated[int, Field(ge=1, le=128)] = 24
    onus_per_pon_max: Annotated[int, Field(ge=1, le=128)] = 64
    first_stage_ratio: int = 4
    second_stage_ratio: int = 16
    vendor_mix: dict[Literal["huawei", "zte", "fiberhome"], NonNegative] = Field(
        default_factory=lambda: {"huawei": 0.5, "zte": 0.3, "fiberhome": 0.2}
    )
    feeder_km_min: Annotated[float, Field(ge=0.1, le=40)] = 1.0
    feeder_km_max: Annotated[float, Field(ge=0.1, le=40)] = 12.0
    drop_m_min: Annotated[float, Field(ge=5, le=2000)] = 30.0
    drop_m_max: Annotated[float, Field(ge=5, le=2000)] = 300.0
    connectors: Annotated[int, Field(ge=0, le=20)] = 4
    olt_tx_dbm_min: float = 1.5
    olt_tx_dbm_max: float = 5.0
    #: Uneven street boxes (None: the ONUs of a PON are dealt round-robin to boxes built
    #: for a 75 % fill, so every box is about as full as the others).
    box_take_rate: BoxTakeRate | None = None

    @field_validator("first_stage_ratio", "second_stage_ratio")
    @classmethod
    def _known_ratio(cls, v: int) -> int:
        if v not in SPLIT_RATIOS:
            raise ValueError(f"must be one of {SPLIT_RATIOS}, got {v}")
        return v

    @model_validator(mode="after")
    def _ranges(self) -> Topology:
        if self.onus_per_pon_max < self.onus_per_pon_min:
            raise ValueError("onus_per_pon_max must be >= onus_per_pon_min")
        if self.onus_per_pon_max > self.first_stage_ratio * self.second_stage_ratio:
            raise ValueError(
                f"onus_per_pon_max ({self.onus_per_pon_max}) exceeds the split "
                f"{self.first_stage_ratio}x{self.second_stage_ratio}"
            )
        if self.feeder_km_max < self.feeder_km_min or self.drop_m_max < self.drop_m_min:
            raise ValueError("every *_max must be >= its *_min")
        if sum(self.vendor_mix.values()) <= 0:
            raise ValueError("vendor_mix needs at least one positive share")
        return self


class FaultSpec(_Strict):
    """One fault kind: how often it starts and how long it lasts.

    ``rate_per_year`` is per unit of the kind's scope (per PON, per box, per board,
    per region or per customer, see the README). ``duration`` is ignored by kinds
    that end only when someone fixes them (a visit, a reboot).
    """

    rate_per_year: YearlyRate
    duration: Duration | None = None


def _f(rate: float, median_h: float | None = None, p90_h: float | None = None) -> FaultSpec:
    dur = Duration(median_h=median_h, p90_h=p90_h) if median_h else None
    return FaultSpec(rate_per_year=rate, duration=dur)


class Faults(_Strict):
    """The fault catalogue (experiments/scenarios/README.md) with plausible default rates."""

    feeder_cut: FaultSpec = _f(1.0, 5.0, 12.0)  # per PON
    box_fault: FaultSpec = _f(0.3, 4.0, 10.0)  # per street box (of one ONU: box_drop_fault)
    olt_board_failure: FaultSpec = _f(0.1, 1.5, 3.0)  # per board
    power_outage: FaultSpec = _f(4.0, 1.5, 6.0)  # per region (a geographic cluster)
    upstream_failure: FaultSpec = _f(2.0, 0.75, 2.5)  # per region (BNG / PPPoE)
    cpe_hang: FaultSpec = _f(0.6)  # per customer; ends by reboot or visit
    wifi_interference: FaultSpec = _f(0.4, 72.0, 400.0)  # per customer
    customer_power_off: FaultSpec = _f(1.5, 6.0, 48.0)  # per customer
    hardware_failure: FaultSpec = _f(0.06)  # per ONU; ends by visit
    fibre_degradation: FaultSpec = _f(0.25)  # per ONU; ends by visit
    power_outage_radius_km: Annotated[float, Field(gt=0, le=50)] = 2.5
    upstream_share: Probability = 0.6
    box_fault_los_share: Probability = 0.6
    # A box fault on a box of one ONU (box_drop_fault) looks to the NOC like that
    # customer's own fault: the technician sent to the dark ONU fixes it, no crew is
    # dispatched. True: a crew also repairs it on the box fault's clock, as for a box
    # of several ONUs (the simulator's behaviour before 2026-12-06; a sensitivity case).
    lone_box_crew: bool = False
    cpe_hang_reboot_fix_prob: Probability = 0.85
    wifi_profile_fix_prob: Probability = 0.4
    cpe_self_reboot: Duration = Duration(median_h=4.0, p90_h=30.0)
    # Most hangs are memory leaks: the CPE slows down (latency, failed DHCP renewals)
    # for a while before it stops forwarding; the rest hang at once.
    cpe_hang_precursor_share: Probability = 0.6
    cpe_hang_precursor: Duration = Duration(median_h=6.0, p90_h=24.0)
    # Wi-Fi trouble that nobody fixes comes back (same walls, same neighbours' networks).
    wifi_recurrence_prob: Annotated[float, Field(ge=0.0, le=0.95)] = 0.5
    wifi_recurrence_gap: Duration = Duration(median_h=18.0, p90_h=72.0)
    degradation_db_per_day: Spread = Spread(median=1.5, p90=4.0)
    hardware_drift: Duration = Duration(median_h=24.0, p90_h=96.0)
    hardware_sudden_share: Probability = 0.5
    # Of the hardware failures, the share that is the ONU's power supply (its adapter):
    # the ONU sends a dying gasp and stays dark until a technician replaces it, and the
    # customer, whose lights are on, calls like any customer offline. 0 by default
    # (every scenario's draws stay as they were); plausible 0.1-0.4 of ONU failures.
    hardware_power_supply_share: Probability = 0.0
    reboot_down_minutes: Annotated[float, Field(gt=0, le=60)] = 3.0

    @model_validator(mode="before")
    @classmethod
    def _keep_default_durations(cls, data: Any) -> Any:
        """A kind given without ``duration`` keeps its default duration.

        Why: ``power_outage: {rate_per_year: 24}`` means "more power cuts", not "power
        cuts that never end". Without this, the omitted duration became ``None`` — which
        the fault model reads as "until a technician fixes it" — and a utility outage
        that no visit can fix lasted to the end of the run (every variant that raised a
        massive kind's rate had customers offline for days).
        """
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, value in data.items():
            field = cls.model_fields.get(name)
            default = getattr(field.default, "duration", None) if field is not None else None
            if default is None:
                continue
            if isinstance(value, dict) and "duration" not in value:
                out[name] = {**value, "duration": default}
            elif isinstance(value, FaultSpec) and "duration" not in value.model_fields_set:
                out[name] = value.model_copy(update={"duration": default})
        return out

    @model_validator(mode="after")
    def _timed_kinds_end(self) -> Faults:
        """Refuse ``duration: null`` on a kind that has no other way to end."""
        for name, field in type(self).model_fields.items():
            default = getattr(field.default, "duration", None)
            if default is not None and getattr(self, name).duration is None:
                raise ValueError(
                    f"{name}.duration: this kind ends only when its duration runs out; give "
                    f"{{median_h, p90_h}} or leave the key out for the default "
                    f"{default.median_h:g} h / p90 {default.p90_h:g} h"
                )
        return self


class Weather(_Strict):
    """Storms: hours in which fibre cuts and power outages are more likely."""

    storms_per_year_per_region: Annotated[float, Field(ge=0.0, le=365.0)] = 8.0
    duration: Duration = Duration(median_h=5.0, p90_h=14.0)
    fibre_cut_multiplier: Annotated[float, Field(ge=1)] = 10.0
    power_outage_multiplier: Annotated[float, Field(ge=1)] = 15.0


class Customers(_Strict):
    """Who the customers are and how they call."""

    segments: dict[Literal["residential", "business", "vip"], NonNegative] = Field(
        default_factory=lambda: {"residential": 0.9, "business": 0.08, "vip": 0.02}
    )
    plans: dict[str, NonNegative] = Field(
        default_factory=lambda: {"300M": 0.45, "500M": 0.35, "1G": 0.2}
    )
    call_rate_per_hour_offline: HourlyRate = 0.2
    call_rate_per_hour_no_pppoe: HourlyRate = 0.25
    call_rate_per_hour_degraded: HourlyRate = 0.12
    call_rate_per_hour_power: HourlyRate = 0.01
    notice_minutes: Annotated[float, Field(gt=0)] = 20.0
    night_factor: Probability = 0.1
    repeat_call_factor: Probability = 0.15
    background_calls_per_year: YearlyRate = 0.5


class Operations(_Strict):
    """Reactive field operations: tickets, service orders, technicians."""

    technicians_per_region: Annotated[int, Field(ge=1, le=1000)] = 3
    travel: Duration = Duration(median_h=0.6, p90_h=1.2)
    work: Duration = Duration(median_h=1.0, p90_h=2.0)
    scheduling_delay: Duration = Duration(median_h=12.0, p90_h=36.0)
    phone_reboot_fix_prob: Probability = 0.35
    visit_prob_with_fault: Probability = 0.65
    visit_prob_without_fault: Probability = 0.10
    visit_prob_known_outage: Probability = 0.05
    wrong_reason_prob: Probability = 0.15
    confirm_before_visit_prob: Probability = 0.8


class Economics(_Strict):
    """Money, in R$."""

    cost_per_visit_brl: NonNegative = VISIT_COST_BRL
    call_cost_brl: NonNegative = 8.0
    monthly_fee_brl: dict[Literal["residential", "business", "vip"], NonNegative] = Field(
        default_factory=lambda: {"residential": 110.0, "business": 350.0, "vip": 250.0}
    )


class DataQuality(_Strict):
    """How messy the RAW data is (all rates are per telemetry row unless stated)."""

    missed_poll_rate: Probability = 0.004
    offline_row_rate: Probability = 0.5
    duplicate_rate: Probability = 0.003
    late_rate: Probability = 0.002
    late_max_hours: Annotated[float, Field(ge=0, le=240)] = 30.0
    clock_skew_s: Annotated[float, Field(ge=0, le=120)] = 20.0
    sentinel_rate: Probability = 0.001
    unexplained_symptoms_per_year: YearlyRate = 0.5


class Scenario(_Strict):
    """A complete, validated scenario."""

    name: str = "unnamed"
    seed: int = 0
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    days: Annotated[float, Field(gt=0, le=366)] = 7
    tick_minutes: Annotated[int, Field(ge=1, le=60)] = 5
    topology: Topology
    faults: Faults = Faults()
    weather: Weather = Weather()
    customers: Customers = Customers()
    operations: Operations = Operations()
    economics: Economics = Economics()
    data_quality: DataQuality = DataQuality()

    @field_validator("start")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)

    @model_validator(mode="after")
    def _whole_ticks(self) -> Scenario:
        if (24 * 60) % self.tick_minutes:
            raise ValueError(f"tick_minutes must divide a day (1440 min), got {self.tick_minutes}")
        return self

    @property
    def ticks_per_day(self) -> int:
        """Telemetry ticks in one day. [-]"""
        return (24 * 60) // self.tick_minutes

    @property
    def n_ticks(self) -> int:
        """Telemetry ticks in the whole scenario. [-]"""
        return int(round(self.days * self.ticks_per_day))

    @property
    def horizon_s(self) -> float:
        """Simulated duration. [s]"""
        return self.n_ticks * self.tick_minutes * 60.0

    def with_overrides(self, **changes: Any) -> Scenario:
        """Return a validated copy with top-level fields replaced (e.g. ``seed``, ``days``)."""
        data = self.model_dump()
        data.update(changes)
        return Scenario.model_validate(data)


_SCOPES = {
    "feeder_cut": "pons", "box_fault": "boxes", "olt_board_failure": "boards",
    "power_outage": "regions", "upstream_failure": "regions", "cpe_hang": "onus",
    "wifi_interference": "onus", "customer_power_off": "onus", "hardware_failure": "onus",
    "fibre_degradation": "onus",
}  # fmt: skip


def size_problems(sc: Scenario) -> list[str]:
    """Which :data:`SIZE_LIMITS` a scenario exceeds (upper-bound estimates), as messages."""
    t = sc.topology
    boards = sum(r.olts for r in t.regions) * t.boards_per_olt
    pons = boards * t.pons_per_board
    onus = pons * t.onus_per_pon_max
    units = {
        "regions": len(t.regions), "boards": boards, "pons": pons, "onus": onus,
        "boxes": pons * math.ceil(t.onus_per_pon_max / (0.75 * t.second_stage_ratio)),
    }  # fmt: skip
    years = sc.days / 365.0
    starts = sum(
        getattr(sc.faults, kind).rate_per_year * units[scope] * years
        for kind, scope in _SCOPES.items()
    )
    starts += sc.customers.background_calls_per_year * onus * years
    starts += sc.weather.storms_per_year_per_region * len(t.regions) * years
    figures = {"onus": onus, "telemetry_rows": onus * sc.n_ticks, "fault_starts": starts}
    what = {
        "onus": "ONUs (OLTs × boards × PONs × onus_per_pon_max)",
        "telemetry_rows": "telemetry rows (ONUs × ticks)",
        "fault_starts": "expected fault and call starts",
    }
    return [
        f"up to {figures[k]:,.0f} {what[k]} exceeds the guard of {SIZE_LIMITS[k]:,.0f}"
        for k in SIZE_LIMITS
        if figures[k] > SIZE_LIMITS[k]
    ]


def scenario_dir() -> Path:
    """Folder holding the shipped scenarios (``experiments/scenarios``)."""
    return Path(__file__).resolve().parent.parent / "experiments" / "scenarios"


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The mapping at the top level of a YAML file.

    Raises
    ------
    ConfigError
        Not valid YAML, too large, an alias bomb (see :mod:`guardian_lib.safe_yaml`), or
        not a mapping (the message names the file).
    """
    data = load_yaml(path)  # bounded: alias bombs, deep nesting and huge files are refused
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def scenario_file(source: str | Path, search: Path | None = None) -> Path:
    """The YAML file a scenario reference names.

    Parameters
    ----------
    source : str or Path
        A YAML file path, or the name of a scenario in ``search`` or of a shipped one.
    search : Path, optional
        A folder of scenarios looked in before the shipped ones (an experiment's own
        ``scenarios/`` folder).

    Raises
    ------
    ConfigError
        No such file (the message lists the shipped scenarios).
    """
    path = Path(source)
    if not path.exists() and path.suffix == "" and "/" not in str(source):
        folders = [f for f in (search, scenario_dir()) if f is not None]
        path = next(
            (f / f"{source}.yaml" for f in folders if (f / f"{source}.yaml").is_file()),
            scenario_dir() / f"{source}.yaml",
        )
    if not path.is_file():
        shipped = sorted(p.stem for p in scenario_dir().glob("*.yaml"))
        raise ConfigError(
            f"scenario {str(source)!r} not found: expected a YAML file or one of {shipped}"
        )
    return path.resolve()


def load_scenario(
    source: str | Path | dict[str, Any], *, allow_large: bool = False, **overrides: Any
) -> Scenario:
    """Load and validate a scenario.

    Parameters
    ----------
    source : str, Path or dict
        A YAML file path, the name of a shipped scenario (``"tiny"``, ``"small"``,
        ``"city"``) or an already parsed mapping.
    allow_large : bool, default False
        Lift the size guards of :data:`SIZE_LIMITS` (big runs on purpose).
    **overrides
        Top-level fields to replace after loading (e.g. ``seed=7``, ``days=1``).

    Returns
    -------
    Scenario

    Raises
    ------
    ConfigError
        The file is missing, is not YAML, or a field is wrong; the message names the
        file, the dotted field path and what was expected; or the scenario exceeds
        a size guard and ``allow_large`` is False.
    """
    if isinstance(source, dict):
        data, label = dict(source), "<dict>"
    else:
        path = scenario_file(source)
        data, label = read_yaml_mapping(path), str(path)
    data.update(overrides)
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(label, exc)) from None
    problems = [] if allow_large else size_problems(sc)
    if problems:
        raise ConfigError(
            f"{label}: {'; '.join(problems)}; pass --allow-large (allow_large=True) to run "
            "it anyway"
        )
    return sc
