"""Scheduled reports: cron periods, the site file's ``schedule:``, and e-mails with the
report attached through a real SMTP server (aiosmtpd on 127.0.0.1), once per period,
across restarts, with retention."""

from __future__ import annotations

import io
import sqlite3
from email.message import Message

import numpy as np
import openpyxl
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from guardian_lib.errors import ConfigError
from guardian_lib.operate.cron import CronError, CronSchedule
from guardian_lib.operate.schedule import SCHEDULE_FILE, ReportScheduler
from guardian_lib.operate.site import load_site

WED = pd.Timestamp("2026-12-02T10:00:00Z")  # a Wednesday


# --- cron ---------------------------------------------------------------------------------------
def _brute_previous(expr: str, at: pd.Timestamp, days: int = 9) -> pd.Timestamp | None:
    """Latest matching minute by walking back minute by minute (UTC)."""
    fields = expr.split()
    t = at.floor("min")
    for _ in range(days * 1440):
        dom_star, dow_star = fields[2] == "*", fields[4] == "*"
        ok = [_brute_match(fields[0], t.minute, 0, 59), _brute_match(fields[1], t.hour, 0, 23),
              _brute_match(fields[3], t.month, 1, 12)]  # fmt: skip
        dom = _brute_match(fields[2], t.day, 1, 31)
        dow = _brute_match(fields[4], (t.day_of_week + 1) % 7, 0, 6)
        day = (dom and dow) if (dom_star or dow_star) else (dom or dow)
        if all(ok) and day:
            return t
        t -= pd.Timedelta(minutes=1)
    return None


def _brute_match(field: str, v: int, lo: int, hi: int) -> bool:
    for part in field.split(","):
        rng, _, step = part.partition("/")
        a, b = (
            (lo, hi)
            if rng == "*"
            else (map(int, rng.split("-")) if "-" in rng else (int(rng),) * 2)
        )
        if step and rng != "*" and "-" not in rng:
            b = hi
        if a <= v <= b and (v - a) % int(step or 1) == 0:
            return True
    return False


@pytest.mark.parametrize(
    "expr",
    ["0 7 * * 1", "*/15 * * * *", "30 6-18/4 * * 1-5", "5 0 1,15 * *", "0 12 13 * 5",
     "45 23 * * 0", "0 0 * * *", "10,40 8 * 12 *"],
)  # fmt: skip
def test_previous_agrees_with_a_minute_by_minute_walk(expr):
    rng = np.random.default_rng(7)
    sched = CronSchedule(expr)
    for _ in range(4):
        at = WED + pd.Timedelta(minutes=int(rng.integers(0, 20 * 1440)))
        want = _brute_previous(expr, at, days=20)
        assert sched.previous(at) == want, (expr, at)
        nxt = sched.next(at)
        assert nxt > at and sched.previous(nxt) == nxt
        assert sched.previous(nxt - pd.Timedelta(minutes=1)) == sched.previous(at)


def test_cron_names_time_zone_and_errors():
    # Mondays 07:00 in São Paulo (UTC-3) is 10:00 UTC
    sp = CronSchedule("0 7 * * mon", "America/Sao_Paulo")
    assert sp.previous(WED) == pd.Timestamp("2026-11-30T10:00:00Z")
    assert sp.next(WED) == pd.Timestamp("2026-12-07T10:00:00Z")
    assert CronSchedule("0 0 1 jan *").next(WED) == pd.Timestamp("2027-01-01T00:00:00Z")
    assert CronSchedule("0 9 * * 7").previous(WED) == pd.Timestamp("2026-11-29T09:00:00Z")
    for expr, words in [("0 7 * *", "5 fields"), ("61 * * * *", "minute: 61 is outside"),
                        ("0 7 * * funday", "day-of-week"), ("0 */0 * * *", "hour: step"),
                        ("0 9-3 * * *", "runs backwards")]:  # fmt: skip
        with pytest.raises(CronError, match=words):
            CronSchedule(expr)
    with pytest.raises(CronError, match="timezone"):
        CronSchedule("0 7 * * *", "Mars/Olympus")


# --- the site file and real e-mail --------------------------------------------------------------
def _site(tmp_path, run, port: int, jobs: list[dict]) -> object:
    alerts = {"rules": [{"name": "OnuLos", "source": "events",
                         "when": [{"field": "type", "value": "LOS"}]}],
              "route": {"receiver": "managers"},
              "receivers": [{"name": "managers", "email": {
                  "host": "127.0.0.1", "port": port, "sender": "guardian@isp.example",
                  "to": ["noc@isp.example"], "timeout_s": 5}}]}  # fmt: skip
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(alerts))
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(
        {"site_id": "isp-sul", "inventory": "olts.yaml", "warehouse": str(run),
         "model_alias": None, "alerts": "alerts.yaml", "schedule": jobs}))  # fmt: skip
    return tmp_path / "site.yaml"


def _attachments(msg: Message) -> dict[str, bytes]:
    return {p.get_filename(): p.get_payload(decode=True) for p in msg.iter_attachments()}


def test_site_file_schedule_is_validated(tmp_path, tiny_run):
    job = {"name": "w", "cron": "0 7 * * mon", "receiver": "managers"}
    with pytest.raises(ConfigError, match=r"schedule\[0\]\.cron: .*minute: 99"):
        load_site(_site(tmp_path, tiny_run, 25, [job | {"cron": "99 7 * * mon"}]))
    with pytest.raises(ConfigError, match="repeated: \\['w'\\]"):
        load_site(_site(tmp_path, tiny_run, 25, [job, job]))
    with pytest.raises(ConfigError, match=r"schedule\[0\]\.format"):
        load_site(_site(tmp_path, tiny_run, 25, [job | {"format": "docx"}]))
    site = yaml.safe_load((tmp_path / "site.yaml").read_text())
    del site["alerts"]
    site["schedule"] = [job]
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    with pytest.raises(ConfigError, match="schedule: reports are e-mailed"):
        load_site(tmp_path / "site.yaml")
    cfg = load_site(_site(tmp_path, tiny_run, 25, [job | {"receiver": "nobody"}]))
    with pytest.raises(ConfigError, match=r"schedule\[0\]\.receiver: 'nobody'"):
        ReportScheduler(cfg.schedule, tiny_run, tmp_path / "state", {})


def test_operate_emails_each_period_once_with_retention(tmp_path, tiny_run, smtp):
    from guardian_lib.operate.service import Operator

    ctl, inbox = smtp
    jobs = [
        {"name": "weekly", "cron": "0 7 * * mon", "format": "xlsx", "receiver": "managers",
         "recipients": ["diretoria@isp.example"], "retention": 2},
        {"name": "monthly", "cron": "0 6 1 * *", "format": "pdf", "lang": "pt-BR",
         "receiver": "managers", "retention": 3},
    ]  # fmt: skip
    site = load_site(_site(tmp_path, tiny_run, ctl.port, jobs))
    state = tmp_path / "state"
    op = Operator(site, state)
    try:
        assert op._reports_cycle(WED) == []  # first seen: earlier periods are not sent
        mon = pd.Timestamp("2026-12-07T07:05:00Z")
        done = op._reports_cycle(mon)
        assert [(d["job"], d["status"]) for d in done] == [("weekly", "sent")], done
        assert op._reports_cycle(mon + pd.Timedelta(minutes=30)) == []  # same period
    finally:
        op.close()
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["To"] == "diretoria@isp.example"
    assert msg["Message-ID"] == "<isp-sul-report-weekly-20261207T0700Z@network-guardian>"
    assert "period of 2026-12-07" in msg["Subject"]
    files = _attachments(msg)
    assert list(files) == ["weekly_20261207T0700Z.xlsx"]
    wb = openpyxl.load_workbook(io.BytesIO(files["weekly_20261207T0700Z.xlsx"]))
    assert len(wb.sheetnames) >= 2
    kept = state / "reports" / "weekly" / "weekly_20261207T0700Z.xlsx"
    assert kept.read_bytes() == files["weekly_20261207T0700Z.xlsx"]

    # a restart in the same period sends nothing; the next weeks and the month do
    op = Operator(load_site(tmp_path / "site.yaml"), state)
    try:
        assert op._reports_cycle(pd.Timestamp("2026-12-07T09:00:00Z")) == []
        for week in (1, 2, 3):
            t = pd.Timestamp("2026-12-07T07:01:00Z") + pd.Timedelta(weeks=week)
            assert [d["status"] for d in op._reports_cycle(t)] == ["sent"]
        jan = op._reports_cycle(pd.Timestamp("2027-01-01T06:30:00Z"))
        assert [(d["job"], d["status"]) for d in jan] == [("monthly", "sent")]
    finally:
        op.close()
    assert len(inbox.messages) == 5
    weekly = sorted(p.name for p in (state / "reports" / "weekly").iterdir())
    assert weekly == ["weekly_20261221T0700Z.xlsx", "weekly_20261228T0700Z.xlsx"]  # retention 2
    pdf_msg = inbox.messages[-1]
    assert pdf_msg["To"] == "noc@isp.example"  # the receiver's own recipients
    assert pdf_msg["Subject"].startswith("Relatório do Network Guardian (monthly)")
    assert "01/01/2027" in pdf_msg["Subject"]
    pdf = _attachments(pdf_msg)["monthly_20270101T0600Z.pdf"]
    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 1


def test_failed_send_is_retried_and_a_crash_is_never_resent(tmp_path, tiny_run, smtp):
    ctl, inbox = smtp
    jobs = [{"name": "daily", "cron": "0 8 * * *", "format": "xlsx", "receiver": "managers"}]
    cfg = load_site(_site(tmp_path, tiny_run, ctl.port, jobs))
    from guardian_lib.alerts.config import load_alerting
    from guardian_lib.alerts.receivers import build_receivers

    rx = build_receivers(load_alerting(tmp_path / "alerts.yaml"))
    state = tmp_path / "state"
    sched = ReportScheduler(cfg.schedule, tiny_run, state, rx)
    sched.run_due(WED)
    ctl.stop()  # the mail server is down at the period
    day = pd.Timestamp("2026-12-03T08:00:00Z")
    fail = sched.run_due(day)
    assert fail[0]["status"] == "failed" and "ConnectionRefused" in fail[0]["error"]
    ctl.start()
    ok = sched.run_due(day + pd.Timedelta(minutes=5))
    assert ok[0]["status"] == "sent" and len(inbox.messages) == 1
    assert sched.history()[0]["attempts"] == 2
    # a crash between "sending" and "sent" (next day): never resent after the restart
    with sqlite3.connect(state / SCHEDULE_FILE) as con:
        con.execute("INSERT INTO runs (job, period, status, attempts) "
                    "VALUES ('daily', '20261204T0800Z', 'sending', 1)")  # fmt: skip
    sched.close()
    sched = ReportScheduler(cfg.schedule, tiny_run, state, rx)
    assert sched.run_due(pd.Timestamp("2026-12-04T09:00:00Z")) == []
    assert sched.history()[0]["status"] == "ambiguous" and len(inbox.messages) == 1
    sched.close()

    # the same through the command line (cron / systemd timer alternative)
    import typer

    from guardian_lib.operate.cli import register

    app = typer.Typer()
    register(app)
    args = ["--site", str(tmp_path / "site.yaml"), "--state", str(state)]
    r = CliRunner().invoke(app, ["schedule", "run", *args, "--at", "2026-12-05T08:00:00Z"])
    assert r.exit_code == 0 and "daily 20261205T0800Z: sent" in r.output, r.output
    again = CliRunner().invoke(app, ["schedule", "run", *args, "--at", "2026-12-05T09:00:00Z"])
    assert again.exit_code == 0 and len(inbox.messages) == 2
    listed = CliRunner().invoke(app, ["schedule", "list", *args, "--at", "2026-12-05T09:00:00Z"])
    assert "period 20261205T0800Z: sent" in listed.output
    assert "20261204T0800Z ambiguous" in listed.output


# --- papermill evaluations on the schedule ---------------------------------------------------------
def _tiny_notebook(path) -> None:
    """A parameterized notebook that reads the run it is given."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('run = ""\nthreshold = 0.5\nperiod = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A scheduled evaluation"),
        params,
        nbformat.v4.new_code_cell(
            "from pathlib import Path\n"
            "assert (Path(run) / 'warehouse.duckdb').exists(), run\n"
            "print(f'evaluated period={period} threshold={threshold}')"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


def test_a_notebook_job_runs_papermill_keeps_its_output_and_emails_it(tmp_path, tiny_run, smtp):
    ctl, inbox = smtp
    _tiny_notebook(tmp_path / "eval.ipynb")
    job = {"name": "eval", "cron": "0 7 * * mon", "notebook": "eval.ipynb",  # format: html
           "parameters": {"threshold": 0.7}, "receiver": "managers", "retention": 1}  # fmt: skip
    with pytest.raises(ConfigError, match=r"schedule\[0\]: .*format: a notebook job sends"):
        load_site(_site(tmp_path, tiny_run, ctl.port, [job | {"format": "pdf"}]))
    with pytest.raises(ConfigError, match=r"schedule\[0\]: .*only a notebook job takes"):
        load_site(_site(tmp_path, tiny_run, ctl.port, [{k: v for k, v in job.items()
                                                        if k != "notebook"}]))  # fmt: skip
    from guardian_lib.operate.service import Operator

    bad = load_site(_site(tmp_path, tiny_run, ctl.port, [job | {"parameters": {"nope": 1}}]))
    with pytest.raises(ConfigError, match=r"schedule\[0\]\.parameters: \['nope'\] not declared"):
        Operator(bad, tmp_path / "state-bad").close()
    site = load_site(_site(tmp_path, tiny_run, ctl.port, [job]))
    state = tmp_path / "state"
    op = Operator(site, state)
    try:
        assert op._reports_cycle(WED) == []
        done = op._reports_cycle(pd.Timestamp("2026-12-07T07:05:00Z"))
        assert [d["status"] for d in done] == ["sent"], done
        folder = state / "reports" / "eval"
        assert sorted(p.name for p in folder.iterdir()) == [
            "eval_20261207T0700Z.html", "eval_20261207T0700Z.ipynb"]  # fmt: skip
        nxt = op._reports_cycle(pd.Timestamp("2026-12-14T07:05:00Z"))
        assert [d["status"] for d in nxt] == ["sent"]
        assert sorted(nxt[0]["removed"]) == [
            "eval_20261207T0700Z.html",
            "eval_20261207T0700Z.ipynb",
        ]
    finally:
        op.close()
    assert len(inbox.messages) == 2
    msg = inbox.messages[-1]
    page = _attachments(msg)["eval_20261214T0700Z.html"].decode()
    assert "evaluated period=20261214T0700Z threshold=0.7" in page  # the executed output
    body = msg.get_body(("plain",)).get_content()
    assert "notebook evaluation" in body and str(folder / "eval_20261214T0700Z.html") in body


def test_failed_builds_back_off_and_operate_builds_beside_its_loop(tmp_path, tiny_run, smtp):
    import threading

    from guardian_lib.alerts.config import load_alerting
    from guardian_lib.alerts.receivers import build_receivers
    from guardian_lib.operate.schedule import retry_delay

    ctl, inbox = smtp
    jobs = [{"name": "daily", "cron": "0 8 * * *", "format": "xlsx", "receiver": "managers"}]
    cfg = load_site(_site(tmp_path, tiny_run, ctl.port, jobs))
    rx = build_receivers(load_alerting(tmp_path / "alerts.yaml"))
    calls, gate, broken = [], threading.Event(), [True]

    def writer(fmt):
        def write(run, out, lang, audit):
            calls.append(run)
            gate.wait(30)
            if broken[0]:
                raise RuntimeError("chromium crashed")
            out.write_bytes(b"report")
            return out

        return write

    gate.set()
    sched = ReportScheduler(cfg.schedule, tiny_run, tmp_path / "state", rx, writer=writer)
    try:
        sched.run_due(WED)
        day = pd.Timestamp("2026-12-03T08:00:00Z")
        first = sched.run_due(day)
        assert first[0]["status"] == "failed" and "chromium crashed" in first[0]["error"]
        assert pd.Timestamp(first[0]["retry_at"]) == day + pd.Timedelta(seconds=retry_delay(1))
        assert sched.run_due(day + pd.Timedelta(minutes=1)) == []  # backing off: not rebuilt
        assert len(calls) == 1
        assert [retry_delay(a) for a in (1, 2, 3, 4, 5, 9)] == [300, 600, 1200, 2400, 3600, 3600]
        # the report reads a snapshot of the warehouse, never the file operate writes
        assert calls[0] != tiny_run and calls[0].name == tiny_run.name
        # in the background: the call returns while the build is still running
        broken[0] = False
        gate.clear()
        t = day + pd.Timedelta(seconds=retry_delay(1))
        started = sched.run_due(t, wait=False)
        assert started == [{"job": "daily", "period": "20261203T0800Z", "status": "started"}]
        assert sched.busy and sched.run_due(t + pd.Timedelta(minutes=5), wait=False) == []
        assert sched.history()[0]["status"] == "building"
        gate.set()
        assert sched.wait(30)
        row = sched.history()[0]
        assert (row["status"], row["attempts"], row["retry_at"]) == ("sent", 2, None)
        assert len(inbox.messages) == 1 and len(calls) == 2
    finally:
        gate.set()
        sched.close()
