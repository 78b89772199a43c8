"""Field service adapters of ``guardian operate``: where technician visits go.

* :class:`WebhookFieldService` — visits as JSON ``POST``\\ s to a ticketing system (httpx,
  retries with backoff, ``Idempotency-Key`` header);
* :class:`DropFolderFieldService` — visits as CSV order files in a folder another system
  picks up.

Both journal each visit in the state store before asking for it, under the cycle's
idempotency key, and keep the orders they opened (``open_orders()``, what the closed loop
shows the policy).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from guardian_lib.errors import GuardianError
from guardian_lib.operate.adapters import ActionContext
from guardian_lib.operate.state import StateStore

__all__ = [
    "WebhookFieldService", "DropFolderFieldService", "FieldServiceError", "MAX_ORDER_CHECKS",
    "ORDER_COLUMNS",
]  # fmt: skip

log = logging.getLogger("guardian_lib.operate")
#: A closure code a ticketing system may report (``customer_power_off`` …).
_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def _closure_code(value: Any) -> str | None:
    """A closure code from the wire or a status file: a short token, else None."""
    return value if isinstance(value, str) and _CODE.fullmatch(value) else None


#: Columns of ``open_orders()`` (the loop's field-service protocol).
ORDER_COLUMNS = ("os_id", "onu_id", "status", "opened_by")
_OPEN = ("scheduled", "in_progress", "open")
#: Statuses an order never leaves.
_FINAL = ("completed", "cancelled")
#: Open orders a webhook client asks the ticketing system about per cycle (the ones asked
#: longest ago first): at one ``GET`` each, a few hundred open orders do not stretch a
#: cycle; the rest are asked in the next cycles. [-]
MAX_ORDER_CHECKS = 100


class FieldServiceError(GuardianError):
    """The ticketing system refused or could not be reached (names the URL / folder)."""


class _OrderBook:
    """Service orders the autopilot opened, kept in the state store."""

    def __init__(self, store: StateStore, name: str) -> None:
        self.store = store
        self.name = name
        self.orders: dict[str, dict[str, Any]] = store.get(name, {}) or {}

    def save(self) -> None:
        self.store.put(self.name, self.orders)

    def open_orders(self) -> pd.DataFrame:
        rows = [
            (k, o["onu_id"], o["status"], "autopilot")
            for k, o in self.orders.items()
            if o["status"] in _OPEN
        ]
        return pd.DataFrame(rows, columns=list(ORDER_COLUMNS))


class WebhookFieldService(_OrderBook):
    """Visits as JSON requests to a ticketing system.

    Requests (all with ``Authorization: Bearer <token>`` when a token is given and an
    ``Idempotency-Key`` header):

    * ``POST <url>`` ``{"idempotency_key", "site_id", "onu_id", "reason", "priority"}`` →
      ``{"id": "<order id>"}`` (or ``os_id``); a visit to be called ahead also carries
      ``"confirm_first": "power_on"`` (the office calls the customer first and cancels the
      visit if their power is off);
    * ``POST <url>/<id>/cancel`` ``{"reason"}`` → 2xx, or 404/409 when not open;
    * ``GET <url>/<id>`` → ``{"status": "scheduled|in_progress|completed|cancelled"}``,
      optionally ``"outcome"``: the closure code (``customer_power_off`` for a visit the
      customer cancelled on the call-ahead; any short code for a cancellation by the
      dispatcher or a technician, audited with the case). The loop asks it once per order
      that left the open orders (:meth:`closure`), again next round while not final.

    Connection failures, timeouts, 429 and 5xx are retried with exponential backoff.

    Parameters
    ----------
    url : str
    store : StateStore
    context : ActionContext
    token : str, optional
    timeout_s : float, default 10
        [s]
    retries : int, default 3
    backoff_s : float, default 0.5
        First wait; doubles per retry. [s]
    transport : httpx.BaseTransport, optional
        For tests.
    sleep : callable, default time.sleep
    """

    def __init__(
        self,
        url: str,
        store: StateStore,
        context: ActionContext,
        *,
        token: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(store, "field_orders")
        self.url = url.rstrip("/")
        self.context = context
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            headers=headers, timeout=httpx.Timeout(timeout_s), transport=transport
        )
        self._asked: dict[str, int] = {}  # order → when it was last asked (a counter)
        self._asks = 0

    def close(self) -> None:
        """Close the HTTP client."""
        self._http.close()

    def _call(
        self, method: str, url: str, key: str, body: dict | None = None, retries: int | None = None
    ) -> httpx.Response:
        retries = self.retries if retries is None else retries
        last: str = ""
        for attempt in range(retries + 1):
            if attempt:
                self.sleep(min(self.backoff_s * 2 ** (attempt - 1), 60.0))
            try:
                resp = self._http.request(method, url, json=body, headers={"Idempotency-Key": key})
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if resp.status_code == 429 or resp.status_code >= 500:
                last = f"HTTP {resp.status_code}"
                continue
            return resp
        raise FieldServiceError(f"{method} {url}: no answer after {retries + 1} tries ({last})")

    def open_visit(
        self, onu_id: str, reason: str, priority: str, confirm: str | None = None
    ) -> str:
        """Open a visit order for ``onu_id``; returns the ticketing system's id.

        ``confirm``: the call-ahead's question (``power_on``), sent as ``confirm_first``.
        """
        ctx = self.context
        key = ctx.key("visit", onu_id)
        fresh = self.store.journal_begin(
            key, cycle=ctx.cycle, ts=ctx.ts, action="schedule_visit", target=onu_id,
            pon_id=ctx.pon_of.get(onu_id),
        )  # fmt: skip
        known = next((k for k, o in self.orders.items() if o.get("key") == key), None)
        if not fresh and known:
            return known
        body = {"idempotency_key": key, "site_id": ctx.site_id, "onu_id": onu_id,
                "reason": reason, "priority": priority,
                **({"confirm_first": confirm} if confirm else {})}  # fmt: skip
        try:
            resp = self._call("POST", self.url, key, body)
            if resp.status_code >= 400:
                raise FieldServiceError(
                    f"POST {self.url}: HTTP {resp.status_code}: {resp.text[:200]}"
                )
            doc = resp.json()
            os_id = str(doc.get("id") or doc.get("os_id") or "")
            if not os_id:
                raise FieldServiceError(f"POST {self.url}: answer has no 'id': {str(doc)[:200]}")
        except (FieldServiceError, ValueError) as exc:
            self.store.journal_end(key, "failed", str(exc))
            raise FieldServiceError(str(exc)) from None
        self.store.journal_end(key, "sent", os_id)
        self.orders[os_id] = {"onu_id": onu_id, "status": "scheduled", "key": key}
        self.save()
        return os_id

    def cancel_visit(self, os_id: str, reason: str) -> bool:
        """Cancel an open order; False when the ticketing system says it is not open."""
        url = f"{self.url}/{os_id}/cancel"
        resp = self._call("POST", url, f"{self.context.site_id}:cancel:{os_id}", {"reason": reason})
        if resp.status_code in (404, 409):
            return False
        if resp.status_code >= 400:
            raise FieldServiceError(f"POST {url}: HTTP {resp.status_code}: {resp.text[:200]}")
        if os_id in self.orders:
            self.orders[os_id]["status"] = "cancelled"
            self.save()
        return True

    def closure(self, os_id: str) -> tuple[str, str | None]:
        """Status and closure code of an order from one ``GET``: ``("unknown", None)``
        when the ticketing system does not know it, does not answer or answers nonsense
        (never raises: the loop follows each visit with it). An order already known to
        be ``completed`` or ``cancelled`` (final) is answered from the state, no request.
        """
        return self._ask(os_id) or ("unknown", None)

    def _ask(self, os_id: str, retries: int | None = None) -> tuple[str, str | None] | None:
        """:meth:`closure`, None when the ticketing system gave no answer at all."""
        order = self.orders.get(os_id)
        if order is not None and order["status"] in _FINAL:
            return str(order["status"]), order.get("outcome") or None
        url = f"{self.url}/{os_id}"
        try:
            resp = self._call("GET", url, f"{self.context.site_id}:status:{os_id}",
                              retries=retries)  # fmt: skip
        except FieldServiceError as exc:
            log.info("order %s: status unavailable: %s", os_id, exc)
            return None
        try:
            doc = resp.json() if resp.status_code < 400 else {}
        except ValueError as exc:
            log.info("order %s: status unavailable: %s", os_id, exc)
            return "unknown", None
        st = str(doc.get("status", "unknown")) if isinstance(doc, dict) else "unknown"
        code = _closure_code(doc.get("outcome")) if isinstance(doc, dict) else None
        order = self.orders.get(os_id)
        if order is not None and (order["status"], order.get("outcome")) != (st, code):
            order["status"], order["outcome"] = st, code
            self.save()
        return st, code

    def status(self, os_id: str) -> str:
        """Status of an order (:meth:`closure`'s first item)."""
        return self.closure(os_id)[0]

    def outcome(self, os_id: str) -> str | None:
        """Closure code of an order (``GET``'s ``outcome``), None when there is none."""
        return self.closure(os_id)[1]

    def open_orders(self) -> pd.DataFrame:
        """Orders the autopilot opened that are still open, each asked first (one ``GET``,
        no retry: an order the system does not answer for stays listed, asked again next
        cycle). Without this the state would list an order the ticketing system closed
        for ever, and the loop would never follow it.

        A cycle asks :data:`MAX_ORDER_CHECKS` orders at most, the ones asked longest ago
        first, and stops at the first request that gets no answer: a ticketing system
        that is down costs a cycle one timeout, not one per open order."""
        open_ids = [k for k, o in self.orders.items() if o["status"] in _OPEN]
        open_ids.sort(key=lambda k: self._asked.get(k, -1))
        for n, os_id in enumerate(open_ids[:MAX_ORDER_CHECKS]):
            self._asked[os_id] = self._asks = self._asks + 1
            if self._ask(os_id, retries=0) is None:
                log.warning("ticketing system unavailable: %d of %d open orders not asked "
                            "this cycle", len(open_ids) - n - 1, len(open_ids))  # fmt: skip
                break
        self._asked = {k: v for k, v in self._asked.items() if k in self.orders}
        return super().open_orders()


class DropFolderFieldService(_OrderBook):
    """Visits as CSV files dropped in a folder (one file per order or cancellation).

    ``<folder>/<os_id>.open.csv`` and ``<folder>/<os_id>.cancel.csv`` hold one header
    line and one row (``os_id, action, onu_id, reason, priority, created_at,
    idempotency_key, site_id, confirm_first``), each written to a hidden temporary name
    and renamed, so the consumer never reads half a file. ``confirm_first`` is the
    call-ahead's question (``power_on``: call the customer first, cancel if their power is
    off), empty for other visits. The consumer may report progress in
    ``<folder>/status.csv`` (``os_id,status``, optionally ``outcome``: the closure code,
    ``customer_power_off`` for a visit the customer cancelled on the call-ahead).

    Parameters
    ----------
    folder : path
    store : StateStore
    context : ActionContext
    """

    FIELDS = ("os_id", "action", "onu_id", "reason", "priority", "created_at",
              "idempotency_key", "site_id", "confirm_first")  # fmt: skip

    def __init__(self, folder: str | Path, store: StateStore, context: ActionContext) -> None:
        super().__init__(store, "field_orders")
        self.folder = Path(folder)
        self.context = context
        self.folder.mkdir(parents=True, exist_ok=True)

    def _write(self, os_id: str, action: str, row: dict[str, Any]) -> Path:
        dest = self.folder / f"{os_id}.{action}.csv"
        tmp = self.folder / f".{dest.name}.{uuid.uuid4().hex[:8]}.part"
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(self.FIELDS))
        w.writeheader()
        w.writerow({k: row.get(k, "") for k in self.FIELDS})
        try:
            tmp.write_text(buf.getvalue(), encoding="utf-8")
            os.replace(tmp, dest)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise FieldServiceError(f"{dest}: cannot write the order: {exc}") from exc
        return dest

    def open_visit(
        self, onu_id: str, reason: str, priority: str, confirm: str | None = None
    ) -> str:
        """Drop an order file; the order id is derived from the idempotency key.

        ``confirm``: the call-ahead's question (``power_on``), column ``confirm_first``.
        """
        ctx = self.context
        key = ctx.key("visit", onu_id)
        os_id = f"{ctx.site_id}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        fresh = self.store.journal_begin(
            key, cycle=ctx.cycle, ts=ctx.ts, action="schedule_visit", target=onu_id,
            pon_id=ctx.pon_of.get(onu_id),
        )  # fmt: skip
        if not fresh and (self.folder / f"{os_id}.open.csv").exists():
            return os_id
        now = pd.Timestamp.now(tz="UTC").isoformat()
        try:
            self._write(os_id, "open", {"os_id": os_id, "action": "open", "onu_id": onu_id,
                                        "reason": reason, "priority": priority, "created_at": now,
                                        "idempotency_key": key, "site_id": ctx.site_id,
                                        "confirm_first": confirm or ""})  # fmt: skip
        except FieldServiceError as exc:
            self.store.journal_end(key, "failed", str(exc))
            raise
        self.store.journal_end(key, "sent", os_id)
        self.orders[os_id] = {"onu_id": onu_id, "status": "scheduled", "key": key}
        self.save()
        return os_id

    def cancel_visit(self, os_id: str, reason: str) -> bool:
        """Drop a cancellation file for an open order; False if it is not open."""
        order = self.orders.get(os_id)
        if order is None or order["status"] not in _OPEN:
            return False
        now = pd.Timestamp.now(tz="UTC").isoformat()
        self._write(os_id, "cancel", {"os_id": os_id, "action": "cancel",
                                      "onu_id": order["onu_id"], "reason": reason,
                                      "created_at": now, "site_id": self.context.site_id})  # fmt: skip
        order["status"] = "cancelled"
        self.save()
        return True

    def _status_rows(self) -> Iterator[tuple[str, str, str | None]]:
        """``(os_id, status, closure code or None)`` of each row of the consumer's
        ``status.csv`` that names an order and a status, in file order (none without it)."""
        path = self.folder / "status.csv"
        if not path.exists():
            return
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("os_id") and row.get("status"):
                    yield row["os_id"], row["status"], _closure_code(row.get("outcome"))

    def closure(self, os_id: str) -> tuple[str, str | None]:
        """Status and closure code from ``status.csv`` (``outcome`` column) when the
        consumer wrote one, else what we know (``unknown`` for an order we never opened)."""
        for oid, status, code in self._status_rows():
            if oid == os_id:
                if os_id in self.orders:
                    self.orders[os_id]["status"], self.orders[os_id]["outcome"] = status, code
                return status, code
        order = self.orders.get(os_id)
        if order is None:
            return "unknown", None
        return str(order["status"]), order.get("outcome") or None

    def status(self, os_id: str) -> str:
        """From ``status.csv`` when the consumer wrote one, else what we know."""
        return self.closure(os_id)[0]

    def outcome(self, os_id: str) -> str | None:
        """Closure code from ``status.csv``'s ``outcome`` column, None when there is none."""
        return self.closure(os_id)[1]

    def open_orders(self) -> pd.DataFrame:
        """Orders the autopilot dropped that are still open, after reading the consumer's
        ``status.csv`` once (an order it reports closed leaves the list)."""
        changed = False
        for os_id, status, code in self._status_rows():
            order = self.orders.get(os_id)
            if order is None or order["status"] not in _OPEN:
                continue
            order["status"], order["outcome"] = status, code
            changed = True
        if changed:
            self.save()
        return super().open_orders()
