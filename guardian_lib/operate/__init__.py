"""``guardian operate``: the autopilot as a service against a real network.

- :mod:`~guardian_lib.operate.site` — the site file (inventory, NBI, safety, field service);
- :mod:`~guardian_lib.operate.state` — restart-safe state (journal, approvals, cycles);
- :mod:`~guardian_lib.operate.adapters` — SNMP telemetry source, CPE state and journalled
  reboots through the NBI, audit-only notifier;
- :mod:`~guardian_lib.operate.field` — visits to a ticketing webhook or a CSV drop folder;
- :mod:`~guardian_lib.operate.fleet` — the watched ONUs (subscribers file or first poll);
- :mod:`~guardian_lib.operate.accounting` — run summary, approval queue, action log;
- :mod:`~guardian_lib.operate.service` — :class:`Operator`, one cycle per polling interval;
- :mod:`~guardian_lib.operate.components` — the site's ACS and field-service clients, its
  registered model and scorer, built from the site file;
- :mod:`~guardian_lib.operate.metrics` — Prometheus metrics and JSON log lines;
- :mod:`~guardian_lib.operate.decide` — ``guardian decide``: the same loop replayed over a
  run's history (:mod:`guardian_lib.history`: SILVER ticks, imported tickets as open
  orders) in simulate mode.
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "SiteConfig": ".site",
        "load_site": ".site",
        "StateStore": ".state",
        "StateError": ".state",
    },
)
