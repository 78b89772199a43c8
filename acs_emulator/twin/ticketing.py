"""A ticketing system for the twin network: ``guardian operate``'s visit webhook, served
on loopback and executed by the simulator's technicians.

It speaks the webhook protocol of :class:`guardian_lib.operate.adapters.WebhookFieldService`:

* ``POST /orders`` ``{"idempotency_key", "onu_id", "reason", "priority", …}`` →
  ``201 {"id"}`` (the same key again returns the same order: never two visits);
  ``"confirm_first": "power_on"`` has the simulated office call the customer first;
* ``POST /orders/<id>/cancel`` ``{"reason"}`` → ``200``, or ``409`` when not open;
* ``GET /orders/<id>`` → ``{"id", "status"}`` and the closure code ``"outcome"`` once
  there is one (``customer_power_off`` after a call-ahead), ``404`` when unknown.

Requests are hostile input: bodies over 64 KiB, non-JSON and missing fields get a 4xx.
Every call to the simulation holds the simulation lock.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["TicketingServer"]

_MAX_BODY = 64 * 1024
_CANCEL = re.compile(r"^/orders/([A-Za-z0-9_.:-]{1,80})/cancel$")
_ORDER = re.compile(r"^/orders/([A-Za-z0-9_.:-]{1,80})$")


class TicketingServer:
    """Visit orders onto a simulation's field service.

    Parameters
    ----------
    field : simulator.adapters.SimFieldService
    lock : threading.Lock
        The simulation lock (held while stepping).
    host : str, default "127.0.0.1"

    Attributes
    ----------
    opened : dict
        Idempotency key → order id.
    """

    def __init__(self, field: Any, lock: threading.Lock, host: str = "127.0.0.1") -> None:
        self.field = field
        self.lock = lock
        self.opened: dict[str, str] = {}
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, doc: dict[str, Any]) -> None:
                data = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any] | None:
                try:
                    n = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    n = -1
                if n < 0 or n > _MAX_BODY:
                    self._send(413, {"error": f"body must be 0…{_MAX_BODY} bytes"})
                    return None
                try:
                    doc = json.loads(self.rfile.read(n) or b"{}")
                except (ValueError, UnicodeDecodeError):
                    self._send(400, {"error": "body is not JSON"})
                    return None
                if not isinstance(doc, dict):
                    self._send(400, {"error": "body must be a JSON object"})
                    return None
                return doc

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                doc = self._body()
                if doc is None:
                    return
                m = _CANCEL.match(self.path)
                if m:
                    with outer.lock:
                        ok = outer.field.cancel_visit(m.group(1), str(doc.get("reason", "")))
                    self._send(200 if ok else 409, {"id": m.group(1), "cancelled": ok})
                    return
                if self.path != "/orders":
                    self._send(404, {"error": "unknown path"})
                    return
                onu, key = doc.get("onu_id"), doc.get("idempotency_key")
                if not isinstance(onu, str) or not isinstance(key, str) or not key:
                    self._send(422, {"error": "onu_id and idempotency_key are required"})
                    return
                with outer.lock:
                    if key in outer.opened:
                        self._send(200, {"id": outer.opened[key], "duplicate": True})
                        return
                    ask = doc.get("confirm_first")  # the call-ahead's question, if any
                    try:
                        os_id = outer.field.open_visit(
                            onu,
                            str(doc.get("reason", "")),
                            str(doc.get("priority", "normal")),
                            **({"confirm": ask} if isinstance(ask, str) and ask else {}),
                        )
                    except KeyError:
                        self._send(422, {"error": f"unknown onu_id {onu[:80]!r}"})
                        return
                    outer.opened[key] = os_id
                self._send(201, {"id": os_id})

            def do_GET(self) -> None:  # noqa: N802
                m = _ORDER.match(self.path)
                if not m:
                    self._send(404, {"error": "unknown path"})
                    return
                with outer.lock:
                    status = outer.field.status(m.group(1))
                    code = getattr(outer.field, "outcome", lambda _: None)(m.group(1))
                if status == "unknown":
                    self._send(404, {"id": m.group(1), "status": status})
                else:
                    self._send(
                        200,
                        {"id": m.group(1), "status": status, **({"outcome": code} if code else {})},
                    )

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}/orders"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, name="twin-ticketing", daemon=True
        )

    def start(self) -> TicketingServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()
