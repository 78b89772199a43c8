"""``POST /contacts``: a helpdesk or CRM reports customer contacts to ``guardian operate``.

The API and ``guardian operate`` of a site share the site's contacts drop folder
(``contacts:`` of the site file, :mod:`guardian_lib.operate.contacts`): an accepted request
becomes one JSONL file there, written under a hidden name and renamed, which operate reads
at its next cycle exactly as a file the helpdesk dropped (same checks, de-duplication,
quarantine). The request is checked here first with the same reader, so a bad contact is
refused at once (422 naming the contact and field) instead of quarantined later.

Hostile input: a bearer token with the ``contacts`` permission (the ``helpdesk`` role
has nothing else), region-scoped users may only report their regions' customers, the body
is limited before it is read (:class:`~guardian_lib.api.limits.BodyLimit`:
``Content-Length`` required, at most :data:`MAX_BODY_BYTES`), at most
:data:`MAX_CONTACTS` contacts a request and :data:`CONTACTS_PER_MINUTE` requests per user
and minute.

No ``from __future__ import annotations``: FastAPI evaluates the route signatures.
"""

import json
import math
import os
import uuid
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from guardian_lib.api.deps import CONTACTS_PER_MINUTE, Ctx, audit, in_region, needs
from guardian_lib.api.problems import Problem
from guardian_lib.api.users import User

__all__ = ["router", "ContactIn", "ContactsBody", "MAX_BODY_BYTES", "MAX_CONTACTS",
           "CONTACTS_PER_MINUTE"]  # fmt: skip

#: Largest request body of ``POST /contacts``. [B]
MAX_BODY_BYTES = 1_000_000
#: Contacts in one request. [-]
MAX_CONTACTS = 1000

router = APIRouter()
Reporter = Annotated[User, Depends(needs("contacts"))]


class ContactIn(BaseModel):
    """One contact: the columns of a contact file."""

    model_config = ConfigDict(extra="forbid")
    ts: str = Field(min_length=1, max_length=64, description="ISO 8601 time of the contact.")
    customer_id: str = Field(min_length=1, max_length=128, description="Who contacted us.")
    channel: str | None = Field(None, max_length=500, description="phone, chat, app…")
    reason: str | None = Field(None, max_length=500, description="What the customer said.")
    contact_id: str | None = Field(None, max_length=128, description="Your CRM's id.")


class ContactsBody(BaseModel):
    """Body of ``POST /contacts``."""

    model_config = ConfigDict(extra="forbid")
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_CONTACTS)


def _check(ctx: Any, user: User, body: ContactsBody) -> bytes:
    """The body as a JSONL contact file, checked as operate will read it (422 naming the
    contact and field otherwise), each customer in the user's regions (403 otherwise)."""
    from guardian_lib.operate.contacts import ContactFileError, read_contact_file

    settings = ctx.cfg.contacts
    lines = [json.dumps(c.model_dump(exclude_none=True), ensure_ascii=False) for c in body.contacts]
    data = ("\n".join(lines) + "\n").encode()
    latest = pd.Timestamp.now(tz="UTC") + pd.Timedelta(minutes=settings.max_future_min)
    try:
        read_contact_file("request.jsonl", data, ZoneInfo(settings.timezone), latest)
    except ContactFileError as exc:
        # "request.jsonl:<line>: <field>: <problem>" → the contact (0-based) and its field
        first = str(exc).splitlines()[0].removeprefix("request.jsonl:")
        line, _, rest = first.partition(": ")
        fieldname, _, problem = rest.partition(": ")
        if not line.isdigit() or not problem:
            raise Problem(422, "invalid-contact", first, field="body.contacts") from None
        where = f"body.contacts.{int(line) - 1}.{fieldname}"
        raise Problem(422, "invalid-contact", f"{where}: {problem}", field=where) from None
    if user.regions:
        for i, c in enumerate(body.contacts):
            row = ctx.reader.customer(c.customer_id)
            region = None if row is None or pd.isna(row.get("region")) else str(row["region"])
            in_region(user, region, f"customer {c.customer_id!r}", f"body.contacts.{i}.customer_id")
    return data


@router.post("/contacts", tags=["contacts"], status_code=202)
def post_contacts(request: Request, user: Reporter, ctx: Ctx, body: ContactsBody) -> dict[str, Any]:
    """Report customer contacts: ``guardian operate`` reads them at its next cycle."""
    cfg = ctx.cfg
    wait = ctx.contacts_limiter.allow(user.name)
    if wait is not None:
        raise Problem(429, "rate-limited", f"at most {CONTACTS_PER_MINUTE} requests per minute",
                      headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
    if cfg.contacts_folder is None or cfg.contacts is None:
        raise Problem(409, "no-contacts-folder",
                      "this API serves no site with a contacts: section (docs/operate.md); "
                      "start it with --site SITE --state STATE")  # fmt: skip
    data = _check(ctx, user, body)
    folder = cfg.contacts_folder
    stamp = pd.Timestamp.now(tz="UTC").strftime("%Y%m%dT%H%M%S%f")
    name = f"api-{stamp}-{uuid.uuid4().hex[:8]}.jsonl"
    tmp = folder / f".{name}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, folder / name)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise Problem(
            503, "contacts-folder", f"cannot write to the contacts folder: {exc}"
        ) from None
    audit(request, user, "contacts", name, 202, f"{len(body.contacts)} contact(s)")
    return {"accepted": len(body.contacts), "file": name}
