"""The objects the decision engine passes around: :class:`Snapshot` and :class:`Decision`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from guardian_lib._numeric import nan_to_num
from guardian_lib.decision._columns import FrameColumns
from guardian_lib.decision.neighbours import OutageEvidence, neighbour_arrays, outage_arrays
from guardian_lib.schema import CLASS_COLUMNS as _SCHEMA_CLASS_COLUMNS
from guardian_lib.schema import PREDICTION_COLUMNS

__all__ = [
    "sanitize_predictions",
    "ActionOutcome",
    "Decision",
    "Snapshot",
    "Policy",
    "Scorer",
    "ACTIONS",
    "DEVICE_ACTIONS",
    "FIELD_ACTIONS",
    "BOOKKEEPING_ACTIONS",
    "PREDICTION_COLUMNS",
    "CLASS_COLUMNS",
]

#: Actions that touch a device through the ACS (a Wi-Fi profile change moves the CPE's
#: radio to another channel / band plan: a TR-069 SetParameterValues, no downtime).
DEVICE_ACTIONS = ("reboot", "change_wifi_profile")
#: Actions on field operations and customers.
FIELD_ACTIONS = ("schedule_visit", "cancel_visit", "hold_visits", "notify")
#: Actions that only change the autopilot's own records.
BOOKKEEPING_ACTIONS = (
    "open_case",
    "close_case",
    "open_incident",
    "join_incident",
    "close_incident",
    "wait",
)
#: Every action a policy may decide.
ACTIONS = DEVICE_ACTIONS + FIELD_ACTIONS + BOOKKEEPING_ACTIONS

#: Cause-class probability columns of the predictions frame (:data:`guardian_lib.schema.CLASS_COLUMNS`).
CLASS_COLUMNS = tuple(_SCHEMA_CLASS_COLUMNS.values())


@dataclass(frozen=True)
class Decision:
    """One decision of a policy (a row of ``decisions`` once audited).

    Attributes
    ----------
    ts : pandas.Timestamp
        When it was decided (UTC).
    subject : str
        What it is about: an ONU id, or a scope such as ``"box:SPL-…"``.
    action : str
        One of :data:`ACTIONS`.
    targets : tuple of str
        What the action touches (CPE ids for a reboot, ONU ids for visits and
        notifications, service-order ids for a cancellation). Never empty for an
        action outside :data:`BOOKKEEPING_ACTIONS`: the safety layer blocks it.
    confidence : float
        Probability that the action is right. [-]
    expected_cost_brl : float or None
        Expected cost of the chosen alternative. [R$]
    rationale : dict
        Rule or cost table and top reasons, JSON-serialisable.
    case_id : str or None
        Case (or incident) the decision belongs to.
    params : dict
        Action parameters (e.g. ``priority``, ``scope_type``, ``scope_key``).
    model_version, policy_version : str
    """

    ts: pd.Timestamp
    subject: str
    action: str
    targets: tuple[str, ...] = ()
    confidence: float = 1.0
    expected_cost_brl: float | None = None
    rationale: dict[str, Any] = field(default_factory=dict)
    case_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    model_version: str = "none"
    policy_version: str = "none"

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(
                f"Decision(subject={self.subject!r}).action must be one of {ACTIONS}, "
                f"got {self.action!r}"
            )


@dataclass(frozen=True)
class ActionOutcome:
    """The final outcome of one executed action, as the autopilot's listeners see it.

    Emitted when an action's result is known: at once for field actions, at the
    verification a few minutes later for a reboot. Built from the audit's ``actions``
    and ``decisions`` rows just as well (``guardian alerts replay`` does), so a listener
    and a replay of the audit see the same outcomes.

    Attributes
    ----------
    decision_id : str
    action : str
        One of :data:`ACTIONS` (``reboot``, ``cancel_visit``, ``hold_visits`` …).
    subject : str
        The decision's subject (an ONU id, or a scope such as ``"pon:P1"``).
    target : str
        What this result is about (a CPE id, a service-order id …).
    status : str
        ``succeeded`` / ``failed`` (a verified reboot), ``done``, ``simulated`` …
    at : pandas.Timestamp
        When the outcome was known (``finished_at``, UTC).
    case_id : str or None
        The decision's case (or incident).
    rule : str
        The decision's rationale rule (why it was taken).
    params : dict
        The decision's parameters (``scope_type``, ``scope_key``, ``visit_onus`` …).
    """

    decision_id: str
    action: str
    subject: str
    target: str
    status: str
    at: pd.Timestamp
    case_id: str | None = None
    rule: str = ""
    params: dict[str, Any] = field(default_factory=dict)


#: The frame of a snapshot's table that was not given (built once).
_NO_ROWS = pd.DataFrame()


def _no_rows() -> pd.DataFrame:
    """An empty frame, a shallow copy of one built once (a round builds a snapshot with
    several; pandas' copy-on-write keeps a change to one copy out of the others)."""
    return _NO_ROWS.copy(deep=False)


#: The default of a :class:`_BuiltWhenRead` table (an empty frame of its own).
_UNSET = object()


class _BuiltWhenRead:
    """A :class:`Snapshot` table that may be given as a function of no arguments: the
    frame is built by it when the table is first read, and kept. The loop's default
    policies never read the events and read the open cases as arrays
    (:meth:`Snapshot.case_columns`), so most rounds build neither frame. A frame given
    as such is kept as it is; not given, the table is an empty frame."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._key = f"_{name}_table"

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return _UNSET  # the dataclass' default
        value = obj.__dict__[self._key]
        if callable(value):
            value = obj.__dict__[self._key] = value()
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._key] = _no_rows() if value is _UNSET else value


@dataclass
class Snapshot:
    """What an operator observes at one instant: never ground truth.

    Attributes
    ----------
    ts : pandas.Timestamp
        Observation time (UTC).
    status : pandas.DataFrame
        One row per ONU (index ``onu_id``): the latest telemetry, the inventory keys
        (``customer_id``, ``cpe_id``, ``pon_id``, ``box_id``, ``olt_id``, ``region``,
        ``segment``) and observed state (see :class:`~guardian_lib.decision.observe.Observer`).
    events : pandas.DataFrame
        Events received since the previous snapshot. May be given as a function of no
        arguments that builds the frame, called when ``events`` is first read (so is
        ``cases``).
    service_orders : pandas.DataFrame
        Open service orders (``os_id``, ``onu_id``, ``status``, ``opened_at``,
        ``scheduled_for``, ``opened_by``).
    incidents : pandas.DataFrame
        Open incidents (``incident_id``, ``scope_type``, ``scope_key``, ``start_at``).
    cases : pandas.DataFrame
        Open cases (index ``onu_id``; ``case_id``, ``opened_at``, ``reboots``,
        ``last_reboot_at``, ``visit_os_id``, ``called``, ``notified``).
    actions : pandas.DataFrame
        Recent automatic actions (``target``, ``action_type``, ``started_at``, ``status``).
    predictions : pandas.DataFrame or None
        Model output (:data:`PREDICTION_COLUMNS`), filled by the scorer.
    reboot_holds : pandas.DataFrame
        Devices whose reboot the safety layer would refuse now for their own history
        (index ``target``, the CPE id; ``rule``: ``reboot_cooldown`` or
        ``max_reboots_per_day``; ``until``: when it lifts, UTC), filled by the
        autopilot from :meth:`~guardian_lib.decision.safety.SafetyGuard.reboot_holds`
        so that a policy waits instead of asking for a reboot that would be blocked.
    """

    ts: pd.Timestamp
    status: pd.DataFrame
    events: pd.DataFrame = _BuiltWhenRead()  # type: ignore[assignment]
    service_orders: pd.DataFrame = field(default_factory=_no_rows)
    incidents: pd.DataFrame = field(default_factory=_no_rows)
    cases: pd.DataFrame = _BuiltWhenRead()  # type: ignore[assignment]
    actions: pd.DataFrame = field(default_factory=_no_rows)
    predictions: pd.DataFrame | None = None
    reboot_holds: pd.DataFrame = field(default_factory=_no_rows)
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def read(self, name: str) -> np.ndarray | None:
        """:meth:`column` ``name``, or None when ``status`` has no such column (a
        :data:`~guardian_lib.decision.neighbours.ColumnReader`)."""
        return self.column(name) if name in self.status.columns else None

    def neighbours(self) -> dict[str, np.ndarray]:
        """The neighbour evidence of ``status`` (cached): the columns of
        :func:`~guardian_lib.decision.neighbours.neighbour_stats` as numpy arrays, in
        the order of ``status``; read-only."""
        nb = self._cache.get("neighbours")
        if nb is None:
            nb = self._cache["neighbours"] = neighbour_arrays(self.read)
        return nb

    def outages(
        self, evidence: OutageEvidence, eligible: np.ndarray | None = None
    ) -> dict[str, np.ndarray]:
        """The topology evidence of a shared outage in ``status`` (cached per
        ``evidence`` and ``eligible``): the columns of
        :func:`~guardian_lib.decision.neighbours.coincident_outages` as numpy arrays;
        read-only. The scorer and the policy ask for the same one in most rounds."""
        # All rows eligible is the same evidence as no restriction.
        mask = None if eligible is None or eligible.all() else np.asarray(eligible, bool)
        key = ("outages", evidence, None if mask is None else mask.tobytes())
        out = self._cache.get(key)
        if out is None:
            out = self._cache[key] = outage_arrays(self.read, evidence, mask)
        return out

    def column(self, name: str) -> np.ndarray:
        """``status[name].to_numpy()``, read once per snapshot (cached).

        The scorer and the policy read the same status columns several times a round,
        and a pandas column lookup costs more than the arithmetic on a few thousand
        rows. Like :meth:`neighbours`, the cache assumes ``status`` is not modified
        after it was first read; the array is shared, do not write to it.

        Raises
        ------
        KeyError
            ``status`` has no column ``name``.
        """
        cols = self._cache.setdefault("status_columns", {})
        arr = cols.get(name)
        if arr is None:
            arr = cols[name] = self.status[name].to_numpy()
        return arr

    def seed_columns(self, columns: dict[str, np.ndarray]) -> None:
        """Give :meth:`column` status columns the caller already holds as numpy arrays,
        each equal to ``status[c].to_numpy()`` (e.g. from
        :meth:`Observer.status_with_columns
        <guardian_lib.decision.observe.Observer.status_with_columns>`)."""
        self._cache.setdefault("status_columns", {}).update(columns)

    def seed_predictions(
        self, predictions: pd.DataFrame, source: dict[str, Any], exact: bool = False
    ) -> None:
        """Tell :meth:`prediction_columns` the arrays a scorer built ``predictions``
        from (``pd.DataFrame(source)``), so that the policy does not read them back
        (``exact``: every array of ``source`` is what the frame's column gives back,
        see :class:`~guardian_lib.decision._columns.FrameColumns`)."""
        self._cache["prediction_columns"] = FrameColumns(predictions, source, exact)

    def prediction_columns(self) -> FrameColumns:
        """``{c: predictions[c].to_numpy()}``, each column read once (cached while
        ``predictions`` is the same frame).

        Raises
        ------
        ValueError
            ``predictions`` is None (no scorer ran).
        """
        if self.predictions is None:
            raise ValueError("Snapshot.prediction_columns: predictions is None (run a scorer)")
        cols = self._cache.get("prediction_columns")
        if cols is None or cols.frame is not self.predictions:
            cols = self._cache["prediction_columns"] = FrameColumns(self.predictions)
        return cols

    def rows_of(self, onu_ids) -> np.ndarray:
        """Rows of ``status`` of ONU ids (−1 for an id not in it), in the order given.

        A hash lookup per id: the few open cases and incident members of a round are
        found without building a pandas Index (which infers a string dtype each time).
        """
        row_of = self._cache.get("row_of")
        if row_of is None:
            row_of = self._cache["row_of"] = {o: i for i, o in enumerate(self.onu_ids())}
        return np.fromiter((row_of.get(o, -1) for o in onu_ids), dtype=np.intp, count=len(onu_ids))

    def case_columns(self) -> dict[str, np.ndarray]:
        """The open cases as object arrays (cached): ``onu_id`` (``cases.index``) and
        each column of ``cases``, ``cases[c].to_numpy(dtype=object)``; read-only.

        A timestamp may come back as a ``Timestamp`` or a ``datetime64``, a missing
        string as None or NaN (as the frame or the autopilot holds it): compare with
        ``pd.isna`` / ``isinstance(v, str)``.
        """
        cols = self._cache.get("case_columns")
        if cols is None:
            cases = self.cases
            cols = {c: cases[c].to_numpy(dtype=object) for c in cases.columns}
            cols["onu_id"] = cases.index.to_numpy(dtype=object)
            self._cache["case_columns"] = cols
        return cols

    def order_status(self) -> dict[str, str]:
        """Status of each open service order by its ``os_id`` (cached; ``{}`` without
        orders): the case lifecycle and the policy read it in the same round."""
        status = self._cache.get("order_status")
        if status is None:
            orders = self.service_orders
            status = (
                dict(zip(orders["os_id"], orders["status"], strict=True)) if len(orders) else {}
            )
            self._cache["order_status"] = status
        return status

    def seed_cases(self, columns: dict[str, np.ndarray]) -> None:
        """Give :meth:`case_columns` the arrays the caller built ``cases`` from (e.g.
        the autopilot, from its open cases), each holding the values of
        ``cases[c].to_numpy(dtype=object)`` up to the representation of a missing value
        or a timestamp (see :meth:`case_columns`)."""
        self._cache["case_columns"] = columns

    def seed_fleet(self, onu_ids: np.ndarray, row_of: dict[str, int]) -> None:
        """Give :meth:`onu_ids` and :meth:`rows_of` the ONU ids of ``status`` (an object
        array equal to ``status.index.to_numpy(dtype=object)``) and the row of each (e.g.
        kept by the closed loop for its fleet, whose order never changes)."""
        self._cache["onu_ids"] = onu_ids
        self._cache["row_of"] = row_of

    def onu_ids(self) -> np.ndarray:
        """``status.index`` as an object array of ONU ids (cached, read-only)."""
        ids = self._cache.get("onu_ids")
        if ids is None:
            ids = self._cache["onu_ids"] = self.status.index.to_numpy(dtype=object)
        return ids


class Scorer(Protocol):
    """Anything that turns a snapshot into a predictions frame."""

    def __call__(self, snapshot: Snapshot) -> pd.DataFrame: ...


class Policy(Protocol):
    """A decision policy: observable snapshot in, decisions out."""

    name: str
    version: str

    def decide(self, snapshot: Snapshot) -> list[Decision]: ...


def sanitize_predictions(preds: pd.DataFrame) -> pd.DataFrame:
    """Make any scorer's output safe for the policies.

    The ML models leave the class probabilities NaN on rows without a symptom (nothing
    to explain); such rows become ``p_unknown = 1``. Probabilities are clipped to
    [0, 1] and rows renormalised; NaN risks and anomaly scores become 0 and missing
    reasons ``"[]"``.

    Raises
    ------
    KeyError
        A column of the contract is missing (named in the message).
    """
    missing = [c for c in PREDICTION_COLUMNS if c not in preds.columns]
    if missing:
        raise KeyError(f"predictions lack column(s) {missing}: expected {PREDICTION_COLUMNS}")
    cols = _sanitized({c: preds[c].to_numpy() for c in preds.columns})
    return pd.DataFrame(cols, index=preds.index)


def _sanitized(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """:func:`sanitize_predictions` on column arrays (a new dict; ``cols`` is not changed).

    Column arrays and one frame at the end: per-column pandas assignments cost more
    than the arithmetic on the few hundred rows a policy looks at.
    """
    cols = dict(cols)
    q = np.column_stack([np.asarray(cols[c], dtype=float) for c in CLASS_COLUMNS])
    q = nan_to_num(np.clip(q, 0.0, 1.0), nan=0.0)
    total = q.sum(axis=1)
    q[total <= 0, -1] = 1.0
    q /= q.sum(axis=1, keepdims=True)
    for j, c in enumerate(CLASS_COLUMNS):
        cols[c] = q[:, j]
    for c in ("anomaly_score", "risk_2h", "risk_6h", "risk_24h"):
        cols[c] = np.clip(nan_to_num(np.asarray(cols[c], dtype=float), nan=0.0), 0.0, 1.0)
    reasons = np.asarray(cols["top_reasons"], dtype=object)
    cols["top_reasons"] = np.where(pd.isna(reasons), "[]", reasons).astype(object)
    return cols
