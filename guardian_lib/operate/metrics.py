"""What a NOC watches: Prometheus metrics and one JSON log line per cycle and per action.

Metrics (``--metrics-port``, text format on ``/metrics``), all prefixed ``guardian_``:

========================================  =========  ====================================
name                                      type       labels
========================================  =========  ====================================
``cycle_duration_seconds``                histogram
``rows_polled_total``                     counter
``olts_failed``                           gauge      (last cycle)
``decisions_total``                       counter    ``action``
``actions_total``                         counter    ``action``, ``result``
``safety_blocks_total``                   counter    ``rule``
``model_info``                            gauge      ``model_version`` (value 1)
``last_successful_cycle_timestamp_seconds``  gauge
``cycles_total``                          counter
``cycles_failed_total``                   counter
========================================  =========  ====================================
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["OperateMetrics", "json_logger", "log_json"]

_JSON = logging.getLogger("guardian.operate.json")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def json_logger(stream: Any = None) -> logging.Logger:
    """The logger of the JSON lines (one handler on ``stream``, default stderr)."""
    if not _JSON.handlers:
        h = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
        h.setFormatter(logging.Formatter("%(message)s"))
        _JSON.addHandler(h)
        _JSON.setLevel(logging.INFO)
        _JSON.propagate = False
    return _JSON


def log_json(event: str, **fields: Any) -> None:
    """Write one JSON line ``{"ts", "event", …fields}``."""
    rec = {"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "event": event, **fields}
    _JSON.info(json.dumps(rec, default=str, sort_keys=False))


class OperateMetrics:
    """The metrics of one ``guardian operate`` process (own registry).

    Parameters
    ----------
    port : int, optional
        Serve them on this TCP port (None: collect only).
    host : str, default "127.0.0.1"
        Bind address of the metrics endpoint.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        r = self.registry = CollectorRegistry()
        self.cycle_duration = Histogram(
            "guardian_cycle_duration_seconds", "Wall time of one operate cycle.",
            buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300), registry=r,
        )  # fmt: skip
        self.rows_polled = Counter("guardian_rows_polled", "ONU rows polled.", registry=r)
        self.olts_failed = Gauge("guardian_olts_failed", "OLTs not polled completely in the "
                                 "last cycle.", registry=r)  # fmt: skip
        self.decisions = Counter("guardian_decisions", "Decisions by action.", ["action"],
                                 registry=r)  # fmt: skip
        self.actions = Counter("guardian_actions", "Actions by result.", ["action", "result"],
                               registry=r)  # fmt: skip
        self.safety_blocks = Counter("guardian_safety_blocks", "Blocked actions by rule.",
                                     ["rule"], registry=r)  # fmt: skip
        self.model = Gauge("guardian_model_info", "Scorer in use.", ["model_version"], registry=r)
        self.last_success = Gauge("guardian_last_successful_cycle_timestamp_seconds",
                                  "Unix time of the last cycle that completed.", registry=r)  # fmt: skip
        self.cycles = Counter("guardian_cycles", "Cycles run.", registry=r)
        self.cycles_failed = Counter("guardian_cycles_failed", "Cycles that raised.", registry=r)
        self.onus_seen_by_acs_only = Gauge(
            "guardian_onus_seen_by_acs_only", "ONUs of silent OLTs kept online in the last "
            "cycle because their CPEs still inform the ACS.", registry=r,
        )  # fmt: skip
        self.contacts = Counter("guardian_contacts", "Customer contacts of the drop folder by "
                                "outcome (fed, late, duplicates, stale, unknown_customers, "
                                "files_rejected).", ["outcome"], registry=r)  # fmt: skip
        self.server = None
        if port is not None:
            self.server, _ = start_http_server(port, addr=host, registry=r)

    def close(self) -> None:
        """Stop the endpoint."""
        if self.server is not None:
            self.server.shutdown()
            self.server = None
