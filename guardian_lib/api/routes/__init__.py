"""The routers of the operator API, one module per domain.

- :mod:`~guardian_lib.api.routes.auth` — ``/health``, ``/auth/login``, ``/users``,
  ``/tokens``;
- :mod:`~guardian_lib.api.routes.reads` — ``/risk``, customer timelines,
  ``/incidents/active``, ``/metrics/kpis``;
- :mod:`~guardian_lib.api.routes.inventory` — ``/olts``, ``/pons``, ``/onus``,
  ``/customers``;
- :mod:`~guardian_lib.api.routes.decisions` — the approval queue and
  ``/decision/simulate|execute``;
- :mod:`~guardian_lib.api.routes.webhooks` — webhook subscriptions;
- :mod:`~guardian_lib.api.routes.alerts` — operate's alerts and silences;
- :mod:`~guardian_lib.api.routes.olt` — audited OLT changes over the OLTs' CLI;
- :mod:`~guardian_lib.api.routes.contacts` — customer contacts for ``guardian operate``.

:data:`ROUTERS` is the order :func:`guardian_lib.api.app.create_app` includes them in
(which is the order of the OpenAPI paths).
"""

from fastapi import APIRouter

from guardian_lib.api.routes import (
    alerts,
    auth,
    contacts,
    decisions,
    inventory,
    olt,
    reads,
    webhooks,
)

__all__ = ["ROUTERS"]

ROUTERS: tuple[APIRouter, ...] = (
    auth.meta_router,
    reads.router,
    inventory.router,
    decisions.router,
    auth.admin_router,
    webhooks.router,
    alerts.router,
    olt.router,
    contacts.router,
)
