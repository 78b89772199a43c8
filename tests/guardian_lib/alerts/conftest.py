"""Real receivers on 127.0.0.1 for the alert tests that run a whole loop (operate, twin); the
SMTP server (``smtp``) is tests/conftest.py's, shared with the report e-mail tests."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest

from .test_delivery import Hook


@pytest.fixture
def crm_webhook():
    """A webhook URL whose server keeps the bodies with a valid signature in
    ``Hook.received`` (test_delivery's handler, secret ``SECRET``)."""
    Hook.fail_first, Hook.received, Hook.bad_signatures = 0, [], 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/crm"
    srv.shutdown()
    srv.server_close()
