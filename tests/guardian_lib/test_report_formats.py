"""``guardian report --format pdf|xlsx``: the PDF printed by Debian's chromium, the workbook.

The PDF test needs chromium (``apt-get install -y chromium``), like the browser tests.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

from guardian_lib.dashboards import load_run_data
from guardian_lib.dashboards.excel import SHEETS
from guardian_lib.dashboards.glossary import (
    METRICS,
    clip_interval,
    format_metric,
    metric_label,
    policy_name,
)
from guardian_lib.dashboards.pdf import print_html, write_pdf
from guardian_lib.sla import sla_kpis

KPIS = {
    "settings": {"scenario": "tiny", "days": 2.0, "seeds": [1, 2]},
    "policies": {
        "reactive": {
            "visits": {"mean": 20.0, "ci95": [16.0, 24.0]},
            "total_cost_brl": {"mean": 9000.0, "ci95": [8000.0, 10000.0]},
            "mttr_hours": {"mean": 5.0, "ci95": [4.0, 6.0]},
            "sla_availability": {"mean": 0.99, "ci95": [0.98, 1.0]},
            "no_fault_found_share": {"mean": 0.2, "ci95": [0.1, 0.3]},
        },
        "autopilot": {
            "visits": {"mean": 14.0, "ci95": [11.0, 17.0]},
            "visits_avoided": {"mean": 6.0, "ci95": [-1.5, 9.0]},  # an impossible bound
            "savings_brl": {"mean": 1800.0, "ci95": [1500.0, 2100.0]},
            "total_cost_brl": {"mean": 7200.0, "ci95": [6500.0, 7900.0]},
            "mttr_hours": {"mean": 4.5, "ci95": [3.5, 5.5]},
            "sla_availability": {"mean": 0.9987, "ci95": [0.998, 0.9994]},
            "saved_brl_per_month": {"mean": 27000.0, "ci95": [-3000.0, 52000.0]},
            "visits_avoided_vs_reactive_pct": {"mean": 30.0, "ci95": [12.0, 45.0]},
            "safety_violations": {"mean": 0.0, "ci95": [0.0, 0.0]},
        },
    },
}


@pytest.fixture(scope="module")
def run(tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("formats") / "run"
    shutil.copytree(tiny_run, out)
    (out / "kpis.json").write_text(json.dumps(KPIS))
    return out


def _cli(capsys, *args: str) -> tuple[int, str]:
    """``guardian report ARGS`` in this process: exit code and stderr."""
    from guardian_lib.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["report", *args])
    return exc.value.code or 0, capsys.readouterr().err


def test_xlsx_has_typed_cells_equal_to_kpis_json_and_the_sla(run, tmp_path, capsys):
    path = tmp_path / "r.xlsx"
    code, err = _cli(capsys, "--run", str(run), "--format", "xlsx", "--lang", "pt-BR",
                     "--out", str(path))  # fmt: skip
    assert code == 0, err
    wb = load_workbook(path)
    assert wb.sheetnames[:4] == [SHEETS[k][1] for k in ("summary", "kpis", "sla", "operations")]
    for ws in wb:
        assert ws.freeze_panes == "A2", ws.title
    ws = wb[SHEETS["kpis"][1]]
    rows = {(r[0].value, r[1].value): r for r in ws.iter_rows(min_row=2)}
    n = 0
    for policy, metrics in KPIS["policies"].items():
        for key, v in metrics.items():
            cells = rows[(metric_label(key, "pt-BR"), policy_name(policy, "pt-BR"))]
            lo, hi = clip_interval(key, *v["ci95"])
            assert [c.value for c in cells[2:5]] == pytest.approx([v["mean"], lo, hi]), key
            assert all(isinstance(c.value, (int, float)) for c in cells[2:5])
            unit = METRICS[key].unit
            if unit in ("brl", "brl_delta"):
                assert cells[2].number_format == '"R$" #,##0.00'
            if unit == "share":
                assert cells[2].number_format.endswith("%")
            n += 1
    assert n == len(rows) == 14
    # the impossible negative bound of a count is clipped, a difference's is kept
    assert rows[(metric_label("visits_avoided", "pt-BR"), "Piloto automático")][3].value == 0
    saved = rows[(metric_label("saved_brl_per_month", "pt-BR"), "Piloto automático")]
    assert saved[3].value == -3000.0
    # summary: dates are dates, money is money
    summary = {r[0].value: r for r in wb[SHEETS["summary"][1]].iter_rows(min_row=2)}
    start = summary["Início do período (UTC)"][1]
    assert isinstance(start.value, dt.datetime) and start.number_format.startswith("dd/mm/yyyy")
    month = summary[metric_label("saved_brl_per_month", "pt-BR")]
    assert month[1].value == 27000.0 and month[1].number_format == '"R$" #,##0.00'
    # SLA sheet: the library's table, row by row
    sla = sla_kpis(run)
    ws = wb[SHEETS["sla"][1]]
    got = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert len(got) == len(sla)
    col = [c.value for c in ws[1]].index(metric_label("availability", "pt-BR"))
    assert [r[col] for r in got] == pytest.approx(list(sla["availability"]))
    assert ws.cell(2, col + 1).number_format.endswith("%")


def test_the_format_follows_the_out_files_extension_and_a_mismatch_is_refused(
    run, tmp_path, capsys
):
    # `--out report.pdf` without --format used to write the HTML page under that name.
    path = tmp_path / "r.xlsx"
    code, err = _cli(capsys, "--run", str(run), "--out", str(path))
    assert code == 0, err
    assert load_workbook(path).sheetnames[0] == SHEETS["summary"][0]
    bad = tmp_path / "r.pdf"
    code, err = _cli(capsys, "--run", str(run), "--format", "xlsx", "--out", str(bad))
    flat = " ".join(err.replace("│", " ").split())  # the error box wraps its lines
    assert code != 0 and "names a .pdf file but the format is xlsx" in flat
    assert not bad.exists()


def test_cli_rejects_an_unknown_format(run, tmp_path, capsys):
    code, err = _cli(capsys, "--run", str(run), "--format", "docx", "--out",
                     str(tmp_path / "r.docx"))  # fmt: skip
    assert code != 0
    assert "docx" in err and "xlsx" in err
    assert not (tmp_path / "r.docx").exists()


def test_pdf_has_the_headline_first_then_one_section_per_page(run, tmp_path):
    path = write_pdf(run, tmp_path / "out" / "r.pdf", lang="pt-BR")
    pages = [p.extract_text() for p in PdfReader(path).pages]
    flat = [" ".join(t.split()) for t in pages]
    assert len(pages) >= 6
    first = flat[0]
    assert "Resumo" in first and "Período" in first
    assert metric_label("saved_brl_per_month", "pt-BR") in first
    assert (
        format_metric("saved_brl_per_month", 27000.0, "pt-BR", digits=0).replace("\xa0", " ")
        in first
    )
    # a saving may be negative (costs more), a count of visits may not
    assert (
        format_metric("saved_brl_per_month", -3000.0, "pt-BR", digits=0).replace("\xa0", " ")
        in first
    )
    kpi_page = next(t for t in flat if t.startswith("KPIs e economia"))
    assert "IC 95% 0 – 9 (limite inferior ajustado para 0)" in kpi_page
    assert "nenhuma regra de segurança foi violada" in first
    for i, text in enumerate(flat, start=1):  # header with the run, footer with page numbers
        assert f"{i} / {len(pages)}" in text and "Network Guardian — run" in text
    for title in ("KPIs e economia", "SLA e indicadores da rede", "Fila de risco"):
        assert any(t.startswith(title) for t in flat), title  # each section begins a page
    assert [p.name for p in path.parent.iterdir()] == ["r.pdf"]  # no temp file left


def test_print_page_has_one_copy_of_plotly(run):
    page = print_html(load_run_data(run), "en")
    assert page.count("Plotly.newPlot") >= 3
    assert page.count('define("plotly"') + page.count("plotly.js v") <= 2


def test_one_table_of_report_formats_serves_the_cli_and_operates_jobs():
    import inspect

    from guardian_lib.dashboards.formats import REPORT_FORMATS, report_writer
    from guardian_lib.operate.schedule import ReportScheduler

    writer = inspect.signature(ReportScheduler).parameters["writer"].default
    assert writer is report_writer
    assert {f: report_writer(f).__name__ for f in REPORT_FORMATS} == {
        "html": "write_report", "pdf": "write_pdf", "xlsx": "write_xlsx"}  # fmt: skip
    with pytest.raises(ValueError, match=r"\['html', 'pdf', 'xlsx'\], got 'docx'"):
        report_writer("docx")
