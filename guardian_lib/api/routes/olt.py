"""OLT changes through the API: ``POST /olt/changes`` (operator role, region-scoped).

The same audited changes as ``guardian olt`` (:class:`guardian_lib.olt.changes.OltChanges`):
authorize an ONU, reboot it, enable / disable it or a PON port, resync it, over the OLT's command
line; ``dry_run`` answers the vendor commands without sending them. The OLT's region is
its row of the warehouse's ``olts`` table; the change is recorded in the OLT audit trail
(who = ``api:<user>``, before / after) and in the API's own audit file.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import asyncio
from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.deps import Ctx, Decider, audit, in_region
from guardian_lib.api.problems import Problem

__all__ = ["OltChangeRequest", "router"]

router = APIRouter()


class OltChangeRequest(BaseModel):
    """Body of ``POST /olt/changes``."""

    model_config = ConfigDict(extra="forbid")
    olt_id: str = Field(min_length=1, max_length=128, description="The OLT changed.")
    operation: Literal[
        "authorize",
        "reboot-onu",
        "onu-disable",
        "onu-enable",
        "port-disable",
        "port-enable",
        "resync",
    ]
    params: dict[Annotated[str, Field(max_length=32)], str | int] = Field(
        default_factory=dict, max_length=16,
        description="slot, port, onu_id, serial, vlan, line_profile, srv_profile, wan, "
        "pppoe (secret-store key), desc, onu_type.",
    )  # fmt: skip
    dry_run: bool = Field(False, description="Answer the vendor commands; send nothing.")
    comment: str = Field("", max_length=2000, description="Why (kept in the audit).")


def _olt_region(ctx: Any, olt_id: str) -> str | None:
    olts = ctx.reader.inventory()["olts"]
    hit = olts[olts["olt_id"] == olt_id]
    if hit.empty:
        raise Problem(404, "not-found", f"no OLT {olt_id!r}", field="body.olt_id")
    region = hit.iloc[0]["region"]
    return None if region is None or region != region else str(region)


@router.post("/olt/changes", tags=["olt"])
def olt_change(request: Request, user: Decider, ctx: Ctx, body: OltChangeRequest) -> dict:
    """Apply (or with ``dry_run`` render) one audited change to an OLT."""
    from guardian_lib.errors import ConfigError
    from guardian_lib.olt.changes import Change, OltAudit, OltChanges
    from guardian_lib.olt.inventory import load_cli_inventory

    cfg = ctx.cfg
    if cfg.olt_cli_inventory is None:
        raise Problem(409, "no-olt-cli", "this API has no OLT CLI inventory: start it with "
                      "--olt-cli-inventory FILE (docs/olt.md)")  # fmt: skip
    in_region(user, _olt_region(ctx, body.olt_id), f"OLT {body.olt_id}", "body.olt_id")
    target = f"{body.olt_id}:{body.operation}"
    try:
        inv = load_cli_inventory(cfg.olt_cli_inventory)
        inv.entry(body.olt_id)
        changes = OltChanges(inv, OltAudit(cfg.olt_audit_path()), who=f"api:{user.name}")
        change = Change(body.olt_id, body.operation, dict(body.params))
        try:
            res = asyncio.run(changes.apply(change, dry_run=body.dry_run))
        finally:
            changes.close_snmp()
    except (ConfigError, ValueError) as exc:
        audit(request, user, "olt-change", target, 422, body.comment)
        raise Problem(422, "invalid", str(exc), field="body") from None
    if res.status == "failed":
        audit(request, user, "olt-change", target, 502, body.comment)
        raise Problem(502, "olt-refused", res.error or "the OLT refused the change",
                      error_kind=res.error_kind, rolled_back=res.rolled_back,
                      change_id=res.change_id)  # fmt: skip
    audit(request, user, "olt-change", target, 200, body.comment)
    return asdict(res)
