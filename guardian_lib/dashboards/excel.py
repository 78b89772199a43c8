"""The report as an Excel workbook: one sheet per table, typed cells, frozen headers.

Sheets (names and headers in the report's language): the headline, the backtest's KPIs
per policy with their 95 % intervals, the SLA and network KPIs per region, OLT and PON
(:func:`guardian_lib.sla.sla_kpis`), the run's operations, the risk queue and the latest
decisions. Numbers are numbers (money with the ``R$`` format, shares as percentages),
times are Excel date-times in UTC (``dd/mm/aaaa hh:mm`` in pt-BR), and the first row of
every sheet is frozen. Intervals are kept inside each quantity's range
(:func:`~guardian_lib.dashboards.glossary.clip_interval`), as in the HTML and the PDF.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from guardian_lib.dashboards._data import RunData, load_run_data
from guardian_lib.dashboards._views import (
    decision_reasons,
    operations_kpis,
    policy_table,
    risk_queue,
)
from guardian_lib.dashboards.glossary import (
    METRICS,
    action_name,
    clip_interval,
    metric,
    metric_header,
    metric_label,
    policy_name,
    rationale_text,
    value_name,
)
from guardian_lib.dashboards.headline import headline
from guardian_lib.i18n import label, normalize_lang

__all__ = ["write_xlsx", "SHEETS", "number_format"]

#: Sheet keys in order → (English name, Portuguese name). Excel limits names to 31 chars.
SHEETS: dict[str, tuple[str, str]] = {
    "summary": ("Summary", "Resumo"),
    "kpis": ("Backtest KPIs", "KPIs do backtest"),
    "sla": ("SLA and network", "SLA e rede"),
    "operations": ("Operations", "Operação"),
    "risk": ("Risk queue", "Fila de risco"),
    "decisions": ("Decisions", "Decisões"),
}
_BRL = '"R$" #,##0.00'
_RISK_ROWS = 500  # risk-queue rows in the workbook
_WORDS = {
    "indicator": ("Indicator", "Indicador"),
    "value": ("Value", "Valor"),
    "lo": ("95% CI lower bound", "Limite inferior do IC 95%"),
    "hi": ("95% CI upper bound", "Limite superior do IC 95%"),
    "note": ("Note", "Observação"),
    "clipped": ("interval clipped to the quantity's range", "intervalo ajustado ao domínio"),
    "start": ("Period start (UTC)", "Início do período (UTC)"),
    "end": ("Period end (UTC)", "Fim do período (UTC)"),
    "level": ("level", "nível"),
    "time_utc": ("time (UTC)", "horário (UTC)"),
}


def _w(key: str, lang: str) -> str:
    en, pt = _WORDS[key]
    return pt if lang == "pt-BR" else en


def number_format(key: str, lang: str = "en") -> str:
    """Excel number format of metric ``key`` (see :data:`~.glossary.METRICS`)."""
    unit = metric(key).unit if key in METRICS else "count"
    if unit in ("brl", "brl_delta"):
        return _BRL
    if unit == "share":
        return "0.000%" if "availability" in key else "0.0%"
    if unit == "pp_delta":
        return "+0.000%;-0.000%;0.000%"
    if unit in ("hours", "hours_delta", "minutes", "ratio", "pct"):
        return "0.00"
    return "#,##0.0" if unit == "delta" else "#,##0"


def _date_format(lang: str) -> str:
    return "dd/mm/yyyy hh:mm" if lang == "pt-BR" else "yyyy-mm-dd hh:mm"


def _cell(v: Any) -> Any:
    """A value Excel can type: NaN → empty, timestamps → naive UTC datetimes."""
    if v is None:
        return None
    if isinstance(v, pd.Timestamp):
        if pd.isna(v):
            return None
        return (v.tz_convert("UTC") if v.tzinfo else v).tz_localize(None).to_pydatetime()
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):  # numpy scalar
        return _cell(v.item())
    return v


def _sheet(
    wb, key: str, lang: str, headers: list[str], rows: list[list[Any]], formats: list[str | None]
):
    from openpyxl.styles import Font, PatternFill

    ws = wb.create_sheet(SHEETS[key][1 if lang == "pt-BR" else 0])
    ws.append([h[:1].upper() + h[1:] for h in headers])
    for c in ws[1]:
        c.font = Font(bold=True)
        c.fill = PatternFill("solid", fgColor="F1F3F4")
    for r in rows:
        ws.append([_cell(v) for v in r])
    for j, fmt in enumerate(formats, start=1):
        if fmt:
            for (c,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                c.number_format = fmt
        width = max([len(str(headers[j - 1]))] + [len(str(r[j - 1])) for r in rows[:200]])
        ws.column_dimensions[ws.cell(1, j).column_letter].width = min(max(10, width + 2), 60)
    ws.freeze_panes = "A2"
    return ws


def _summary_rows(data: RunData, lang: str) -> tuple[list[list[Any]], list[str | None]]:
    rows: list[list[Any]] = [
        [_w("start", lang), data.start, None, None, ""],
        [_w("end", lang), data.end, None, None, ""],
    ]
    fmts = [_date_format(lang), _date_format(lang)]
    for it in headline(data):
        lo, hi = clip_interval(it.key, it.lo, it.hi)
        clipped = (lo, hi) != (it.lo, it.hi) and not (math.isnan(it.lo) or math.isnan(it.hi))
        rows.append(
            [metric_label(it.key, lang), it.value, lo, hi, _w("clipped", lang) if clipped else ""]
        )
        fmts.append(number_format(it.key, lang))
    return rows, fmts


def _summary_sheet(wb, data: RunData, lang: str) -> None:
    """Summary: one row per headline figure; the value column's format is per row."""
    heads = [
        _w("indicator", lang),
        _w("value", lang),
        _w("lo", lang),
        _w("hi", lang),
        _w("note", lang),
    ]
    rows, fmts = _summary_rows(data, lang)
    ws = _sheet(wb, "summary", lang, heads, rows, [None] * 5)
    for i, fmt in enumerate(fmts, start=2):
        for j in (2, 3, 4):
            ws.cell(i, j).number_format = fmt or "General"


def _kpis_sheet(wb, data: RunData, lang: str) -> None:
    """The backtest's KPIs per policy with their intervals (none without a backtest)."""
    table = policy_table(data.backtest)
    if table is None or not len(table):
        return
    krows, kfmt = [], []
    for r in table.itertuples(index=False):
        lo, hi = (
            clip_interval(r.metric, r.ci_lo, r.ci_hi) if r.metric in METRICS else (r.ci_lo, r.ci_hi)
        )
        name = metric_label(r.metric, lang) if r.metric in METRICS else r.metric.replace("_", " ")
        krows.append([name, policy_name(r.policy, lang), r.mean, lo, hi])
        kfmt.append(number_format(r.metric, lang))
    kh = [
        _w("indicator", lang),
        label("policy", lang),
        _w("value", lang),
        _w("lo", lang),
        _w("hi", lang),
    ]
    ws = _sheet(wb, "kpis", lang, kh, krows, [None] * 5)
    for i, fmt in enumerate(kfmt, start=2):
        for j in (3, 4, 5):
            ws.cell(i, j).number_format = fmt


def _sla_sheet(wb, data: RunData, lang: str) -> None:
    """SLA per network, region, OLT and PON (none without SLA data)."""
    if data.sla is None:
        return
    cols = [
        "level",
        "scope",
        "region",
        "olt_id",
        "pon_id",
        *[c for c in data.sla.columns if c in METRICS],
    ]
    hd = [
        _w("level", lang),
        label("sla_scope_network", lang),
        label("region", lang),
        "OLT",
        "PON",
    ]
    hd += [metric_header(c, lang) for c in cols[5:]]
    levels = {lv: label(f"sla_level_{lv}", lang) for lv in ("network", "region", "olt", "pon")}
    srows = [
        [levels[r["level"]], levels["network"] if r["level"] == "network" else r["scope"]]
        + [r[c] for c in cols[2:]]
        for r in data.sla.to_dict("records")
    ]
    _sheet(wb, "sla", lang, hd, srows, [None] * 5 + [number_format(c, lang) for c in cols[5:]])


def _operations_sheet(wb, data: RunData, lang: str) -> None:
    """Operations KPIs, one per row, each with its own number format."""
    ops = operations_kpis(data)
    _sheet(
        wb, "operations", lang, [_w("indicator", lang), _w("value", lang)],
        [[metric_label(k, lang), v] for k, v in ops.items()], [None, None],
    )  # fmt: skip
    ws = wb[SHEETS["operations"][1 if lang == "pt-BR" else 0]]
    for i, k in enumerate(ops, start=2):
        ws.cell(i, 2).number_format = number_format(k, lang)


def _risk_sheet(wb, data: RunData, lang: str) -> None:
    """The top of the risk queue (none without predictions)."""
    rq = risk_queue(data, limit=_RISK_ROWS)
    if rq is None:
        return
    rcols = [
        "customer_id",
        "region",
        "plan",
        "segment",
        "contacts_30d",
        "risk_2h",
        "risk_6h",
        "risk_24h",
        "anomaly_score",
        "probable_cause",
    ]
    names = {
        "customer_id": "customer",
        "contacts_30d": "recurrence",
        "anomaly_score": "anomaly",
    }
    rh = [label(names.get(c, c), lang) for c in rcols]
    rrows = [
        [
            label(r[c], lang)
            if c == "probable_cause"
            else value_name(r[c], lang)
            if c == "segment"
            else r[c]
            for c in rcols
        ]
        for r in rq.to_dict("records")
    ]
    _sheet(wb, "risk", lang, rh, rrows, [None] * 4 + ["0", "0.0%", "0.0%", "0.0%", "0.000", None])


def _decisions_sheet(wb, data: RunData, lang: str) -> None:
    """The autopilot's decisions with their reasons (none without an audit)."""
    dec = decision_reasons(data, limit=1000)
    if dec is None:
        return
    dh = [
        _w("time_utc", lang),
        label("customer", lang),
        label("action", lang),
        label("confidence", lang),
        label("rationale", lang),
    ]
    drows = [
        [
            r.get("ts"),
            r.get("subject"),
            action_name(r.get("action"), lang),
            r.get("confidence"),
            rationale_text(r.get("rationale"), lang),
        ]
        for r in dec.to_dict("records")
    ]
    _sheet(wb, "decisions", lang, dh, drows, [_date_format(lang), None, None, "0.00", None])


def write_xlsx(
    run: Path | str | RunData,
    path: Path | str,
    lang: str = "en",
    kpis: Path | str | None = None,
    audit: Path | str | None = None,
) -> Path:
    """Write the run's report tables to an ``.xlsx`` workbook (see the module docstring).

    Parameters
    ----------
    run : path or RunData
        Run folder with an ingested warehouse (or its already loaded data).
    path : path
        Workbook to write (its folder is created).
    lang : {'en', 'pt-BR'}, default 'en'
    kpis, audit : path, optional
        As in :func:`~guardian_lib.dashboards.write_report`.

    Returns
    -------
    Path
        ``path``, resolved.
    """
    from openpyxl import Workbook

    lang = normalize_lang(lang)
    data = run if isinstance(run, RunData) else load_run_data(run, kpis_path=kpis, audit_path=audit)
    wb = Workbook()
    wb.remove(wb.active)
    # Sheet order is the workbook's tab order.
    for add_sheet in (
        _summary_sheet,
        _kpis_sheet,
        _sla_sheet,
        _operations_sheet,
        _risk_sheet,
        _decisions_sheet,
    ):
        add_sheet(wb, data, lang)
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.tmp.xlsx")
    wb.save(tmp)
    tmp.replace(out)
    return out
