"""Scheduled reports: built and e-mailed by ``guardian operate`` (or ``guardian schedule run``).

A site file lists report jobs under ``schedule:``::

    alerts: alerts.yaml                  # its e-mail receiver sends the reports
    schedule:
      - name: weekly-pdf
        cron: "0 7 * * mon"              # Mondays 07:00 ...
        timezone: America/Sao_Paulo      # ... in this zone (default UTC)
        format: pdf                      # html | pdf | xlsx
        lang: pt-BR
        receiver: managers               # an e-mail receiver of the alerting file
        recipients: [diretoria@isp.example]   # default: the receiver's `to`
        retention: 8                     # keep the last 8 files of this job

Every cycle, :meth:`ReportScheduler.run_due` looks at each job's *period*: the latest
time its cron fired at or before the cycle's time. A period is done once: its row in
``STATE/schedule.sqlite`` is written ``sending`` before the e-mail goes out and ``sent``
after, so a restart never sends a period twice (a row left ``sending`` by a crash
becomes ``ambiguous`` and is not resent; the ``Message-ID`` is the period's key, so a
mail server can also drop a duplicate). A failed build or send is ``failed`` and retried
at the next cycles, up to :data:`MAX_ATTEMPTS` tries. A job's first period is the first
firing after the job was first seen (starting operate on a Wednesday does not send
Monday's weekly report); a period missed while operate was down is sent when it comes
back, the older ones are not replayed. Reports are written to ``reports_dir`` (default
``STATE/reports``) as ``<job>/<job>_<period>.<format>``; only the newest ``retention``
files of a job are kept.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from guardian_lib.errors import ConfigError
from guardian_lib.operate.cron import CronError, CronSchedule

__all__ = [
    "MAX_ATTEMPTS",
    "SCHEDULE_FILE",
    "ReportJob",
    "ReportScheduler",
    "report_scheduler",
    "report_writer",
    "reports_cycle",
]

SCHEDULE_FILE = "schedule.sqlite"
#: Tries of one period (build and send) before it is left ``dead``. [-]
MAX_ATTEMPTS = 5
_EMAIL = r"^[^@\s]+@[^@\s]+$"
_SUBJECT = {
    "en": "Network Guardian report ({name}), period of {date}",
    "pt-BR": "Relatório do Network Guardian ({name}), período de {date}",
}
_BODY = {
    "en": "Attached: the {fmt} report of site {site} built at {built} (UTC) for the "
    "period starting {date}.\n\nThis message is sent by guardian operate (schedule job "
    "{name!r}).\n",
    "pt-BR": "Em anexo: o relatório {fmt} do site {site} gerado em {built} (UTC) para o "
    "período iniciado em {date}.\n\nMensagem enviada pelo guardian operate (tarefa "
    "{name!r}).\n",
}


class ReportJob(BaseModel):
    """One scheduled report of a site file's ``schedule:`` list."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")]
    cron: str = Field(description="Five-field cron expression (docs/operate.md).")
    timezone: str = Field("UTC", description="IANA zone the cron fields are read in.")
    format: Literal["html", "pdf", "xlsx"] = "pdf"
    lang: Literal["en", "pt-BR"] = "en"
    receiver: str = Field(min_length=1, description="E-mail receiver of the alerting file.")
    recipients: list[Annotated[str, Field(pattern=_EMAIL)]] = Field(default_factory=list)
    retention: int = Field(8, ge=1, le=1000, description="Newest report files kept. [-]")

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        try:
            CronSchedule(v)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            CronSchedule("0 0 * * *", v)
        except CronError as exc:
            raise ValueError(str(exc)) from None
        return v

    def schedule(self) -> CronSchedule:
        """The parsed cron expression in the job's zone."""
        return CronSchedule(self.cron, self.timezone)


def report_writer(fmt: str) -> Callable[..., Path]:
    """``write(run, out, lang=, audit=)`` of ``guardian report --format fmt``."""
    import importlib

    from guardian_lib.dashboards.cli import REPORT_FORMATS

    module, func = REPORT_FORMATS[fmt].split(":")
    return getattr(importlib.import_module(module), func)


@contextmanager
def _audit_copy(audit: Path) -> Iterator[Path | None]:
    """A private copy of operate's audit file (and its WAL), or None when there is none.

    operate keeps ``audit.duckdb`` open, and DuckDB refuses a second connection with
    another configuration (in this process) or any reader (from another one) while a
    writer holds it; the report reads the copy instead.
    """
    if not audit.exists():
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="guardian-report-") as tmp:
        copy = Path(tmp) / audit.name
        shutil.copyfile(audit, copy)
        wal = audit.with_name(audit.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        yield copy


def _period_key(period: pd.Timestamp) -> str:
    return period.strftime("%Y%m%dT%H%MZ")


class ReportScheduler:
    """Runs a site's report jobs when due; remembers what was sent in a SQLite file.

    Parameters
    ----------
    jobs : list of ReportJob
    run : path
        Run folder (the site's warehouse) the reports are built from.
    state_dir : path
        operate's state folder (``schedule.sqlite``; the audit read by the reports).
    receivers : mapping
        Name → :class:`~guardian_lib.alerts.receivers.EmailReceiver`.
    reports_dir : path, optional
        Where report files go (default ``state_dir/reports``).
    site_id : str, default "site"
    writer : callable, optional
        ``writer(fmt) -> write`` (tests count builds); default :func:`report_writer`.

    Raises
    ------
    ConfigError
        A job names a receiver that is missing or not an e-mail receiver.
    """

    def __init__(
        self,
        jobs: list[ReportJob],
        run: str | Path,
        state_dir: str | Path,
        receivers: dict[str, Any],
        reports_dir: str | Path | None = None,
        site_id: str = "site",
        writer: Callable[[str], Callable[..., Path]] = report_writer,
    ) -> None:
        from guardian_lib.alerts.receivers import EmailReceiver

        for i, job in enumerate(jobs):
            rx = receivers.get(job.receiver)
            if not isinstance(rx, EmailReceiver):
                have = sorted(k for k, v in receivers.items() if isinstance(v, EmailReceiver))
                raise ConfigError(
                    f"schedule[{i}].receiver: {job.receiver!r} is not an e-mail receiver of "
                    f"the alerting file (e-mail receivers: {have or 'none'})"
                )
        self.jobs, self.run, self.receivers = jobs, Path(run), receivers
        self.state_dir = Path(state_dir)
        self.reports_dir = Path(reports_dir) if reports_dir else self.state_dir / "reports"
        self.site_id, self.writer = site_id, writer
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(self.state_dir / SCHEDULE_FILE, timeout=30.0)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.execute("PRAGMA synchronous=FULL")
        self.con.executescript(
            """
            CREATE TABLE IF NOT EXISTS jobs (name TEXT PRIMARY KEY, first_seen TEXT);
            CREATE TABLE IF NOT EXISTS runs (
              job TEXT, period TEXT, status TEXT, attempts INTEGER, path TEXT,
              bytes INTEGER, recipients TEXT, error TEXT, updated_at REAL,
              PRIMARY KEY (job, period));
            """
        )
        # a crash between "sending" and "sent": the e-mail may have left; never resend
        self.con.execute("UPDATE runs SET status = 'ambiguous' WHERE status = 'sending'")
        self.con.commit()

    def close(self) -> None:
        """Close the schedule file."""
        self.con.close()

    # --- bookkeeping ------------------------------------------------------------------------
    def _first_seen(self, job: ReportJob, now: pd.Timestamp) -> pd.Timestamp:
        row = self.con.execute("SELECT first_seen FROM jobs WHERE name = ?", (job.name,))
        got = row.fetchone()
        if got is not None:
            return pd.Timestamp(got[0])
        with self.con:
            self.con.execute("INSERT INTO jobs VALUES (?, ?)", (job.name, now.isoformat()))
        return now

    def _set(self, job: str, period: str, status: str, **cols: Any) -> None:
        with self.con:
            self.con.execute(
                "INSERT INTO runs (job, period, status, attempts, updated_at) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT (job, period) DO UPDATE SET "
                "status = excluded.status, updated_at = excluded.updated_at",
                (job, period, status, time.time()),
            )
            for k, v in cols.items():
                if k not in ("attempts", "path", "bytes", "recipients", "error"):
                    raise ValueError(k)
                self.con.execute(
                    f"UPDATE runs SET {k} = ? WHERE job = ? AND period = ?", (v, job, period)
                )

    def history(self, job: str | None = None) -> list[dict[str, Any]]:
        """Periods handled (newest first) with status, attempts, file, size and error."""
        cur = self.con.execute(
            "SELECT * FROM runs" + (" WHERE job = ?" if job else "") + " ORDER BY period DESC",
            (job,) if job else (),
        )
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]

    def status(self, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Per job: the current period, its state and the next firing time."""
        out = []
        for job in self.jobs:
            sched = job.schedule()
            period = sched.previous(now)
            key = _period_key(period) if period is not None else None
            row = self.con.execute(
                "SELECT status FROM runs WHERE job = ? AND period = ?", (job.name, key)
            ).fetchone()
            out.append({"job": job.name, "cron": job.cron, "timezone": job.timezone,
                        "format": job.format, "period": key,
                        "period_status": row[0] if row else None,
                        "next": str(sched.next(now))})  # fmt: skip
        return out

    # --- running ----------------------------------------------------------------------------
    def run_due(self, now: pd.Timestamp) -> list[dict[str, Any]]:
        """Build and send every job whose current period is not done yet.

        Parameters
        ----------
        now : pandas.Timestamp
            The cycle's time (UTC).

        Returns
        -------
        list of dict
            One entry per job tried: ``job``, ``period``, ``status`` (``sent``, ``failed``,
            ``dead``), ``path``, ``bytes`` and ``error``.
        """
        now = pd.Timestamp(now)
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        done = []
        for job in self.jobs:
            first = self._first_seen(job, now)
            period = job.schedule().previous(now)
            if period is None or period < first:
                continue  # nothing fired since the job appeared
            key = _period_key(period)
            row = self.con.execute(
                "SELECT status, attempts FROM runs WHERE job = ? AND period = ?",
                (job.name, key),
            ).fetchone()
            if row is not None and row[0] in ("sent", "ambiguous", "dead"):
                continue
            done.append(self._run_one(job, period, key, (row[1] if row else 0) + 1))
        return done

    def _run_one(self, job: ReportJob, period: pd.Timestamp, key: str, attempt: int) -> dict:
        out = self.reports_dir / job.name / f"{job.name}_{key}.{job.format}"
        rx = self.receivers[job.receiver]
        to = list(job.recipients) or list(rx.settings.to)
        self._set(job.name, key, "building", attempts=attempt, recipients=", ".join(to))
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with _audit_copy(self.state_dir / "audit.duckdb") as audit:
                path = Path(self.writer(job.format)(self.run, out, lang=job.lang, audit=audit))
            size = path.stat().st_size
            self._set(job.name, key, "sending", path=str(path), bytes=size)
            date = period.tz_convert(job.timezone)
            date_txt = date.strftime("%d/%m/%Y" if job.lang == "pt-BR" else "%Y-%m-%d")
            built = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M")
            words = {"name": job.name, "date": date_txt, "fmt": job.format.upper(),
                     "site": self.site_id, "built": built}  # fmt: skip
            rx.send_text(f"{self.site_id}-report-{job.name}-{key}",
                         _SUBJECT[job.lang].format(**words), _BODY[job.lang].format(**words),
                         attachments=(path,), to=to)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a report must never stop operate
            status = "dead" if attempt >= MAX_ATTEMPTS else "failed"
            err = f"{type(exc).__name__}: {exc}"[:500]
            self._set(job.name, key, status, error=err)
            return {"job": job.name, "period": key, "status": status, "error": err}
        self._set(job.name, key, "sent", error=None)
        removed = self._retain(job)
        return {"job": job.name, "period": key, "status": "sent", "path": str(path),
                "bytes": size, "recipients": to, "removed": removed}  # fmt: skip

    def _retain(self, job: ReportJob) -> list[str]:
        """Delete all but the newest ``job.retention`` report files of ``job``."""
        folder = self.reports_dir / job.name
        pattern = re.compile(rf"^{re.escape(job.name)}_\d{{8}}T\d{{4}}Z\.(html|pdf|xlsx)$")
        files = sorted(p for p in folder.iterdir() if pattern.match(p.name))
        old = files[: max(0, len(files) - job.retention)]
        for p in old:
            p.unlink()
        return [p.name for p in old]


def report_scheduler(site: Any, state_dir: str | Path, pipeline: Any) -> ReportScheduler | None:
    """operate's :class:`ReportScheduler` for a site (None without ``schedule:``), sending
    through the receivers of its alert pipeline.

    Raises
    ------
    ConfigError
        The site has a schedule but no alerting file, or a job's receiver is not an
        e-mail receiver of it.
    """
    if not site.schedule:
        return None
    if pipeline is None:
        raise ConfigError("schedule: reports are e-mailed through a receiver of the "
                          "alerting file; give alerts: with an e-mail receiver")  # fmt: skip
    return ReportScheduler(
        site.schedule, site.resolve(site.warehouse), state_dir, pipeline.receivers,
        reports_dir=site.resolve(site.reports_dir), site_id=site.site_id,
    )  # fmt: skip


def reports_cycle(scheduler: ReportScheduler | None, ts: pd.Timestamp) -> list[dict] | None:
    """One cycle's scheduled reports: run what is due and log each outcome as a JSON line.

    Never raises: a broken schedule file is logged (``report_failed``) and the loop goes on.
    """
    if scheduler is None:
        return None
    from guardian_lib.operate.metrics import log_json

    try:
        done = scheduler.run_due(ts)
    except Exception as exc:  # noqa: BLE001 - a report must never stop operate
        log_json("report_failed", error=f"{type(exc).__name__}: {exc}")
        return None
    for d in done:
        log_json("report", **{k: v for k, v in d.items() if k != "recipients"})
    return done
