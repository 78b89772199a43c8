"""Inventory listings: ``/olts``, ``/pons``, ``/onus``, ``/customers`` (paginated, sortable,
filterable by any of their columns).

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

from collections.abc import Callable
from typing import Annotated, Any

import pandas as pd
from fastapi import APIRouter, Query, Request

from guardian_lib.api.deps import Ctx, Reader, page, region_filter
from guardian_lib.api.problems import Problem

__all__ = ["INVENTORY_COLUMNS", "router"]

#: Sortable / filterable columns of each inventory table.
INVENTORY_COLUMNS: dict[str, tuple[str, ...]] = {
    "olts": ("olt_id", "vendor", "model", "region", "city", "pop_id"),
    "pons": ("pon_id", "olt_id", "slot", "port", "technology", "region"),
    "onus": ("onu_id", "serial", "pon_id", "olt_id", "vendor", "model", "distance_m", "region"),
    "customers": ("customer_id", "onu_id", "cpe_id", "plan", "segment", "sla_tier", "region",
                  "city"),
}  # fmt: skip
#: Query parameters that are not column filters.
_CONTROLS = {"region", "sort", "limit", "offset"}

router = APIRouter()


def _filtered(frame: pd.DataFrame, columns: tuple[str, ...], request: Request) -> pd.DataFrame:
    """``frame`` with the column filters of the query string applied (422 on unknown)."""
    for name, value in request.query_params.items():
        if name in _CONTROLS:
            continue
        if name not in columns:
            raise Problem(422, "invalid-request",
                          f"query.{name}: unknown filter; expected one of {list(columns)}",
                          field=f"query.{name}")  # fmt: skip
        frame = frame[frame[name].astype(str) == value]
    return frame


def _sorted(frame: pd.DataFrame, columns: tuple[str, ...], sort: str | None) -> pd.DataFrame:
    """``frame`` sorted by ``sort`` (``-`` first: descending), ties by the id column."""
    if not sort:
        return frame.sort_values(columns[0])
    name = sort.lstrip("-")
    if name not in columns:
        raise Problem(422, "invalid-request",
                      f"query.sort: expected one of {list(columns)} (with an "
                      f"optional '-'), got {sort!r}", field="query.sort")  # fmt: skip
    return frame.sort_values([name, columns[0]], ascending=[not sort.startswith("-"), True])


def inventory_route(table: str) -> Callable[..., dict[str, Any]]:
    """The listing route of one inventory table."""
    columns = INVENTORY_COLUMNS[table]

    def listing(
        request: Request,
        user: Reader,
        ctx: Ctx,
        region: Annotated[str | None, Query(max_length=64)] = None,
        sort: Annotated[
            str | None,
            Query(
                max_length=64,
                description=(f"A column, '-' first for descending: {', '.join(columns)}"),
            ),
        ] = None,  # fmt: skip
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        frame = ctx.reader.inventory()[table]
        absent = [c for c in columns if c not in frame.columns]
        if absent:  # a site's subscribers file has fewer columns than a warehouse
            frame = frame.assign(**dict.fromkeys(absent))
        regions = region_filter(user, region, ctx.reader)
        if regions is not None:
            frame = frame[frame["region"].isin(regions)]
        frame = _sorted(_filtered(frame, columns, request), columns, sort)
        return page(frame[[c for c in frame.columns if c in columns or c in ("lat", "lon")]],
                    limit, offset)  # fmt: skip

    listing.__doc__ = (f"The {table} (paginated; filter by any of {', '.join(columns)} "
                       "as query parameters).")  # fmt: skip
    return listing


for _table in INVENTORY_COLUMNS:
    router.get(f"/{_table}", tags=["inventory"], name=f"list_{_table}")(inventory_route(_table))
