"""Table schemas of the warehouse (docs/architecture.md, docs/ingest.md) and the checks that enforce them.

Columns carry their unit in the name (``rx_dbm``, ``latency_ms``, ``uptime_s``); see
``docs/glossary.md``. Identifiers are strings; timestamps are UTC.
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "CAUSE_CLASSES",
    "US_PER_S",
    "RAW_TELEMETRY_ARROW",
    "RAW_EVENTS_ARROW",
    "TELEMETRY_COLUMNS",
    "EVENT_COLUMNS",
    "event_key_sql",
    "INVENTORY_COLUMNS",
    "EVENT_TYPES",
    "VALID_RANGES",
    "missing_columns",
    "GOLD_TABLES",
    "CLASS_COLUMNS",
    "PREDICTION_COLUMNS",
    "MEASURES",
    "RX_CRITICAL_DBM",
    "RX_IMPACT_DBM",
    "RX_OVERLOAD_DBM",
    "VISIT_COST_BRL",
    "MODEL_EVERY_MINUTES",
    "FEATURE_EVERY_MINUTES",
    "POLICY_EVERY_MINUTES",
]

#: RAW / SILVER telemetry: column → DuckDB type.
TELEMETRY_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMPTZ",
    "onu_id": "VARCHAR",
    "rx_dbm": "DOUBLE",
    "tx_dbm": "DOUBLE",
    "olt_rx_dbm": "DOUBLE",
    "snr_db": "DOUBLE",
    "ber": "DOUBLE",
    "crc_errors": "BIGINT",
    "latency_ms": "DOUBLE",
    "loss_pct": "DOUBLE",
    "online": "BOOLEAN",
    "uptime_s": "BIGINT",
    "source": "VARCHAR",
}

#: The six probable causes of a symptom (docs/models.md), in the order reports use.
CAUSE_CLASSES = (
    "MASSIVE_OUTAGE",
    "CUSTOMER_PREMISES",
    "EQUIPMENT_FAIL",
    "EXTERNAL_NETWORK",
    "INTERMITTENT",
    "UNKNOWN",
)

#: Microseconds per second: the warehouse's timestamps are microseconds since the epoch
#: (UTC), and the feature cube, the replay and the stores compute on them as integers.
US_PER_S = 1_000_000
_TS = pa.timestamp("us", tz="UTC")
#: Arrow schema of RAW telemetry files: the telemetry columns plus ``received_at`` (when
#: the management system received the row). Writers may add trace columns after these
#: (the SNMP poller adds ``olt_id``, ``snmp_index``, ``serial``, ``poll_complete``).
RAW_TELEMETRY_ARROW = pa.schema(
    [
        ("ts", _TS),
        ("onu_id", pa.string()),
        ("rx_dbm", pa.float64()),
        ("tx_dbm", pa.float64()),
        ("olt_rx_dbm", pa.float64()),
        ("snr_db", pa.float64()),
        ("ber", pa.float64()),
        ("crc_errors", pa.int64()),
        ("latency_ms", pa.float64()),
        ("loss_pct", pa.float64()),
        ("online", pa.bool_()),
        ("uptime_s", pa.int64()),
        ("source", pa.string()),
        ("received_at", _TS),
    ]
)
#: Arrow schema of RAW event files.
RAW_EVENTS_ARROW = pa.schema(
    [
        ("ts", _TS),
        ("entity_id", pa.string()),
        ("entity_type", pa.string()),
        ("type", pa.string()),
        ("severity", pa.string()),
        ("source", pa.string()),
        ("payload", pa.string()),
        ("received_at", _TS),
    ]
)

EVENT_COLUMNS: dict[str, str] = {
    "ts": "TIMESTAMPTZ",
    "entity_id": "VARCHAR",
    "entity_type": "VARCHAR",
    "type": "VARCHAR",
    "severity": "VARCHAR",
    "source": "VARCHAR",
    "payload": "VARCHAR",
}

#: Minimum columns of each inventory table.
INVENTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "olts": ("olt_id", "vendor", "model", "region", "city", "pop_id", "lat", "lon", "mgmt_address"),
    "pons": ("pon_id", "olt_id", "slot", "port", "if_index", "technology"),
    "splitters": ("splitter_id", "pon_id", "parent_id", "level", "ratio", "lat", "lon"),
    "onus": (
        "onu_id", "serial", "pon_id", "splitter_id", "onu_index", "vendor", "model",
        "distance_m", "lat", "lon",
    ),
    "customers": (
        "customer_id", "onu_id", "cpe_id", "plan", "segment", "sla_tier", "region", "city",
        "lat", "lon", "created_at",
    ),
}  # fmt: skip

EVENT_TYPES = (
    "LOS", "DYING_GASP", "LINK_UP", "PPPOE_DOWN", "PPPOE_UP", "DHCP_FAIL", "HIGH_BER",
    "LOW_RX", "REBOOT", "BOOT", "CUSTOMER_CALL", "OLT_ALARM", "ACS_SEEN", "ACS_PPP_DOWN",
    "ACS_PPP_UP",
)  # fmt: skip

#: Plausible physical range of each measurement; SILVER turns values outside it (vendor
#: sentinels such as 2147483647·0.01, −80000·0.001 or 65535·0.01) into NULL.
VALID_RANGES: dict[str, tuple[float, float]] = {
    "rx_dbm": (-50.0, 10.0),
    "tx_dbm": (-50.0, 10.0),
    "olt_rx_dbm": (-50.0, 10.0),
    "snr_db": (0.0, 80.0),
    "ber": (0.0, 1.0),
    "crc_errors": (0, 1e12),
    "latency_ms": (0.0, 60_000.0),
    "loss_pct": (0.0, 100.0),
    "uptime_s": (0, 20 * 365 * 86400),
}


#: Telemetry measurements (every telemetry column but the keys and ``source``), in the order
#: the feature cube keeps them. [units as in the column names]
MEASURES: tuple[str, ...] = tuple(
    c for c in TELEMETRY_COLUMNS if c not in ("ts", "onu_id", "source")
)

# --- GOLD tables and the predictions contract ------------------------------------------

#: GOLD tables of a run, each a folder ``lake/gold/<table>`` (:class:`~guardian_lib.layout.RunLayout`):
#: the point-in-time features and the models' predictions.
GOLD_TABLES = ("features", "ml_predictions")
#: Probability column of each cause class in ``ml_predictions``, in :data:`CAUSE_CLASSES` order.
CLASS_COLUMNS: dict[str, str] = {c: f"p_{c.lower()}" for c in CAUSE_CLASSES}
#: Columns of ``ml_predictions`` (the contract between the models and the decision engine).
PREDICTION_COLUMNS = (
    "ts", "onu_id", "anomaly_score", *CLASS_COLUMNS.values(), "risk_2h", "risk_6h",
    "risk_24h", "model_version", "top_reasons",
)  # fmt: skip

# --- thresholds and prices (one home each; docs/glossary.md) ----------------------------

#: Decision threshold: ONU RX below this is *critical* (GPON class B+ sensitivity with
#: margin). Rules, rule baselines, dashboards and the ONU's LOW_RX alarm use it. [dBm]
RX_CRITICAL_DBM = -27.0
#: Physics threshold: below this RX the customer is hurt (BER passes 1e-6, the link
#: starts to flap). The simulator's optics and the RX-margin features use it. [dBm]
RX_IMPACT_DBM = -27.5
#: ONU RX above this overloads the receiver. [dBm]
RX_OVERLOAD_DBM = -8.0
#: Cost of one technician visit (truck roll), default of every cost model. [R$]
VISIT_COST_BRL = 150.0

# --- default cadences (one home each; docs/glossary.md) ----------------------------------

#: Spacing of the rows the models train on, score and are evaluated on. [min]
MODEL_EVERY_MINUTES = 15
#: Spacing of the rows ``guardian features`` materializes in ``gold/features``. [min]
FEATURE_EVERY_MINUTES = 5
#: Interval between two calls of a decision policy in the closed loop. [min]
POLICY_EVERY_MINUTES = 15


def missing_columns(
    present: list[str] | set[str], required: tuple[str, ...] | list[str]
) -> list[str]:
    """Required columns that are absent, in the required order.

    Examples
    --------
    >>> missing_columns({"ts", "onu_id"}, ("ts", "onu_id", "rx_dbm"))
    ['rx_dbm']
    """
    have = set(present)
    return [c for c in required if c not in have]


def event_key_sql(alias: str | None = None) -> str:
    """SQL of what tells two SILVER events apart besides ``entity_id``, ``type`` and ``ts``.

    The payload, except for a customer contact (``CUSTOMER_CALL``): there only its
    ``channel`` and ``reason``. The same contact reaches the warehouse from operate's drop
    folder or ``POST /contacts`` (payload with the customer's ``onu_id`` and the CRM's
    ``contact_id``) and again from an import of the CRM's export (``channel`` and
    ``reason`` only); counted twice it would double the customer's ``calls_24h`` and
    count a call as a second one.

    Parameters
    ----------
    alias : str, optional
        Table alias the columns are read from (``o`` → ``o.payload``).
    """
    p = f"{alias}." if alias else ""
    # Nested: json_type raises on text that is not JSON (a WHEN's AND is not lazy).
    return (
        f"CASE WHEN {p}type = 'CUSTOMER_CALL' AND coalesce(json_valid({p}payload), false) "
        f"THEN CASE WHEN json_type({p}payload) = 'OBJECT' THEN json_object("
        f"'channel', json_extract_string({p}payload, '$.channel'), "
        f"'reason', json_extract_string({p}payload, '$.reason'))::VARCHAR "
        f"ELSE {p}payload END ELSE {p}payload END"
    )
