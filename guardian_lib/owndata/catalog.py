"""What an operator can import: every table of a source mapping and its warehouse columns.

:data:`TABLES` lists, for every table, its warehouse columns and their kinds, which must
be mapped, which cells may not be blank and its key. Plain definitions, imported by both
:mod:`guardian_lib.owndata.config` (to check a mapping) and
:mod:`guardian_lib.owndata.tables` (to convert rows), so neither imports the other's
dependants.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardian_lib.schema import INVENTORY_COLUMNS, TELEMETRY_COLUMNS

__all__ = [
    "TableDef",
    "TABLES",
    "INVENTORY_TABLES",
    "CPE_STATE_COLUMNS",
    "SERVICE_ORDER_COLUMNS",
    "ENTITY_TYPES",
]

#: Entities an event may be about (``entity_type``).
ENTITY_TYPES = ("onu", "olt", "pon", "splitter", "customer", "cpe")


@dataclass(frozen=True)
class TableDef:
    """One importable table.

    Attributes
    ----------
    fields : dict
        Warehouse column → kind: ``str``, ``float``, ``int``, ``ts`` (UTC timestamp) or
        ``bool``.
    required : tuple
        Columns the mapping must map and whose cells may not be blank.
    key : tuple
        Columns unique per row (a repeated key is refused, both rows named).
    one_of : tuple
        At least one of these must be mapped.
    """

    fields: dict[str, str]
    required: tuple[str, ...] = ()
    key: tuple[str, ...] = ()
    one_of: tuple[str, ...] = ()

    @property
    def required_mapped(self) -> tuple[str, ...]:
        """Columns the mapping must name."""
        return self.required


_INV_KINDS = {
    "lat": "float", "lon": "float", "distance_m": "float", "slot": "int", "port": "int",
    "if_index": "int", "level": "int", "ratio": "int", "onu_index": "int", "created_at": "ts",
}  # fmt: skip


def _inventory(
    name: str, required: tuple[str, ...], extra: dict[str, str] | None = None
) -> TableDef:
    fields = {c: _INV_KINDS.get(c, "str") for c in INVENTORY_COLUMNS[name]}
    fields.update(extra or {})
    return TableDef(fields=fields, required=required, key=(INVENTORY_COLUMNS[name][0],))


#: Columns of ``ops/cpe_state`` (what an ACS export says about each CPE at ``ts``).
CPE_STATE_COLUMNS: dict[str, str] = {
    "ts": "ts", "cpe_id": "str", "onu_id": "str", "customer_id": "str", "vendor": "str",
    "model": "str", "software_version": "str", "uptime_s": "int", "wan_status": "str",
    "ppp_up": "bool", "wifi_clients": "int",
}  # fmt: skip
#: Columns of ``ops/service_orders`` written from imported tickets: the simulator's,
#: then ``onu_id``, ``closure_code`` and ``notes``.
SERVICE_ORDER_COLUMNS = (
    "os_id", "customer_id", "region", "reason", "status", "opened_at", "scheduled_for",
    "closed_at", "technician_id", "outcome", "cost_brl", "opened_by", "onu_id",
    "closure_code", "notes",
)  # fmt: skip

INVENTORY_TABLES = ("olts", "pons", "splitters", "onus", "customers")

#: Every importable table (the keys of ``tables:`` in a source mapping).
TABLES: dict[str, TableDef] = {
    "olts": _inventory("olts", ("olt_id",)),
    "pons": _inventory("pons", ("pon_id", "olt_id")),
    "splitters": _inventory("splitters", ("splitter_id", "pon_id")),
    "onus": _inventory("onus", ("onu_id", "pon_id"), {"olt_id": "str"}),
    "customers": _inventory("customers", ("customer_id", "onu_id")),
    "telemetry": TableDef(
        fields={c: "telemetry" for c in TELEMETRY_COLUMNS if c != "source"},
        required=("ts", "onu_id"),
    ),
    "events": TableDef(
        fields={
            "ts": "ts",
            "entity_id": "str",
            "entity_type": "str",
            "type": "str",
            "severity": "str",
            "payload": "str",
        },  # fmt: skip
        required=("ts", "entity_id", "type"),
    ),
    "contacts": TableDef(
        fields={"ts": "ts", "customer_id": "str", "channel": "str", "reason": "str"},
        required=("ts", "customer_id"),
    ),
    "tickets": TableDef(
        fields={
            "ticket_id": "str",
            "customer_id": "str",
            "onu_id": "str",
            "opened_at": "ts",
            "closed_at": "ts",
            "scheduled_for": "ts",
            "closure_code": "str",
            "notes": "str",
            "region": "str",
            "reason": "str",
            "technician_id": "str",
            "cost_brl": "float",
            "opened_by": "str",
        },  # fmt: skip
        required=("ticket_id", "opened_at"),
        key=("ticket_id",),
        one_of=("customer_id", "onu_id"),
    ),
    "cpe_state": TableDef(
        fields=CPE_STATE_COLUMNS, required=("ts", "cpe_id"), key=("cpe_id", "ts")
    ),
}
