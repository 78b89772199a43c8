"""The formats of ``guardian report`` and the function that writes each.

Kept apart from the command line (:mod:`guardian_lib.dashboards.cli`) and from the
writers themselves, which import Panel, plotly and chromium helpers: ``guardian report``
and the report jobs of ``guardian operate`` (:mod:`guardian_lib.operate.schedule`) look a
format up here and import only its writer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["REPORT_FORMATS", "report_writer"]

#: Formats of ``guardian report`` and the function that writes each (``module:function``).
REPORT_FORMATS = {
    "html": "guardian_lib.dashboards.report:write_report",
    "pdf": "guardian_lib.dashboards.pdf:write_pdf",
    "xlsx": "guardian_lib.dashboards.excel:write_xlsx",
}


def report_writer(fmt: str) -> Callable[..., Path]:
    """``write(run, out, lang=, kpis=, audit=)`` of the report format ``fmt``.

    Raises
    ------
    ValueError
        ``fmt`` is not one of :data:`REPORT_FORMATS` (the message lists them).
    """
    if fmt not in REPORT_FORMATS:
        raise ValueError(f"report format: expected one of {sorted(REPORT_FORMATS)}, got {fmt!r}")
    module, func = REPORT_FORMATS[fmt].split(":")
    return getattr(importlib.import_module(module), func)
