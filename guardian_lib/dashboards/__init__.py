"""Panel dashboards of a run: the live app and the self-contained offline report.

Screens (issue 6 §3): NOC overview, risk queue, customer dossier, KPIs & savings,
explainability, optical signal matrix and device health. Each reads the tables a run has
and shows "not computed for this run yet" for the ones a later stage has not written.

- :func:`build_app` / :func:`serve` — the live app (``guardian dashboard --run RUN``)
- :func:`write_report` — one HTML file that opens offline
- :func:`write_pdf` / :func:`write_xlsx` — the same report printed to PDF, or as a workbook
- :func:`headline` — the manager's summary (period, incidents, visits and R$ per month, …)
- :func:`load_run_data` and the screen data functions, for notebooks and tests
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "DEGRADED_RX_DBM": "guardian_lib.dashboards._inventory",
        "RunData": "guardian_lib.dashboards._data",
        "load_run_data": "guardian_lib.dashboards._data",
        "operations_kpis": "guardian_lib.dashboards._views",
        "risk_queue": "guardian_lib.dashboards._views",
        "customer_dossier": "guardian_lib.dashboards._views",
        "policy_table": "guardian_lib.dashboards._views",
        "build_app": "guardian_lib.dashboards.app",
        "serve": "guardian_lib.dashboards.app",
        "write_report": "guardian_lib.dashboards.report",
        "make_offline": "guardian_lib.dashboards.report",
        "external_references": "guardian_lib.dashboards.report",
        "write_pdf": "guardian_lib.dashboards.pdf",
        "write_xlsx": "guardian_lib.dashboards.excel",
        "headline": "guardian_lib.dashboards.headline",
    },
)
