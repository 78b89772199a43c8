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

A job may run a parameterized notebook instead (``notebook: evaluations/weekly.ipynb``,
``parameters: {...}``): papermill executes it on the warehouse (the parameter ``run``),
the executed ``.ipynb`` and, with ``format: html``, its HTML export are kept with the
same retention and the chosen file is e-mailed the same way.

A failed period is retried with back-off (:func:`retry_delay`: 5, 10, 20, 40 min …, at
most 1 h), never at every cycle. operate builds in a worker thread
(``run_due(..., wait=False)``) so a cycle is never delayed by a report; the build reads a
snapshot of the warehouse (:func:`guardian_lib.warehouse.run_snapshot`) so the loop's
next ingest is never kept out of the file.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from guardian_lib.dashboards.formats import report_writer
from guardian_lib.errors import ConfigError
from guardian_lib.operate.cron import CronError, CronSchedule
from guardian_lib.warehouse import private_copy, run_snapshot

__all__ = [
    "MAX_ATTEMPTS",
    "RETRY_BASE_S",
    "RETRY_MAX_S",
    "retry_delay",
    "SCHEDULE_FILE",
    "ReportJob",
    "ReportScheduler",
    "report_scheduler",
    "reports_cycle",
]

SCHEDULE_FILE = "schedule.sqlite"
#: Tries of one period (build and send) before it is left ``dead``. [-]
MAX_ATTEMPTS = 5
#: Wait before the second try of a failed period; doubled at each further failure. [s]
RETRY_BASE_S = 300.0
#: Longest wait between two tries. [s]
RETRY_MAX_S = 3600.0
#: Formats a notebook job can send: its executed notebook or that notebook as HTML.
NOTEBOOK_FORMATS = ("html", "ipynb")
_EMAIL = r"^[^@\s]+@[^@\s]+$"
_SUBJECT = {
    "en": "Network Guardian report ({name}), period of {date}",
    "pt-BR": "Relatório do Network Guardian ({name}), período de {date}",
}
_BODY = {
    "en": "Attached: the {fmt} {what} of site {site} built at {built} (UTC) for the "
    "period starting {date}.\nKept on the server at {path}\n\nThis message is sent by "
    "guardian operate (schedule job {name!r}).\n",
    "pt-BR": "Em anexo: {what} {fmt} do site {site} gerado em {built} (UTC) para o "
    "período iniciado em {date}.\nGuardado no servidor em {path}\n\nMensagem enviada "
    "pelo guardian operate (tarefa {name!r}).\n",
}
_WHAT = {
    ("en", False): "report",
    ("en", True): "notebook evaluation",
    ("pt-BR", False): "o relatório",
    ("pt-BR", True): "a avaliação (notebook)",
}


def retry_delay(attempt: int) -> float:
    """Wait after the ``attempt``-th failed try of a period before the next one. [s]

    :data:`RETRY_BASE_S` after the first failure, doubled after each further one, at
    most :data:`RETRY_MAX_S` (5, 10, 20, 40 min with the defaults: a report that cannot
    be built is tried :data:`MAX_ATTEMPTS` times over about 75 minutes, not at every
    cycle).
    """
    return min(RETRY_BASE_S * 2.0 ** max(0, attempt - 1), RETRY_MAX_S)


class ReportJob(BaseModel):
    """One scheduled report of a site file's ``schedule:`` list."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")]
    cron: str = Field(description="Five-field cron expression (docs/operate.md).")
    timezone: str = Field("UTC", description="IANA zone the cron fields are read in.")
    format: Literal["html", "pdf", "xlsx", "ipynb"] | None = Field(
        None, description="Report: html | pdf (default) | xlsx; notebook: html (default) | ipynb."
    )
    lang: Literal["en", "pt-BR"] = "en"
    receiver: str = Field(min_length=1, description="E-mail receiver of the alerting file.")
    recipients: list[Annotated[str, Field(pattern=_EMAIL)]] = Field(default_factory=list)
    retention: int = Field(8, ge=1, le=1000, description="Newest periods' files kept. [-]")
    notebook: str | None = Field(
        None, description="Run this notebook (papermill) instead of building a report; "
        "a path relative to the site file.",
    )  # fmt: skip
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Papermill parameters of the notebook."
    )

    @model_validator(mode="after")
    def _kind(self) -> ReportJob:
        if self.format is None:
            self.format = "pdf" if self.notebook is None else "html"
        if self.notebook is None:
            if self.parameters:
                raise ValueError("parameters: only a notebook job takes parameters")
            if self.format == "ipynb":
                raise ValueError("format: ipynb is for notebook jobs (give notebook:)")
        elif self.format not in NOTEBOOK_FORMATS:
            raise ValueError(
                f"format: a notebook job sends {' or '.join(NOTEBOOK_FORMATS)}, got {self.format!r}"
            )
        return self

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
        site_dir: str | Path | None = None,
    ) -> None:
        from guardian_lib.alerts.receivers import EmailReceiver

        base = Path(site_dir) if site_dir is not None else Path.cwd()
        self.notebooks: dict[str, Path] = {}
        for i, job in enumerate(jobs):
            rx = receivers.get(job.receiver)
            if not isinstance(rx, EmailReceiver):
                have = sorted(k for k, v in receivers.items() if isinstance(v, EmailReceiver))
                raise ConfigError(
                    f"schedule[{i}].receiver: {job.receiver!r} is not an e-mail receiver of "
                    f"the alerting file (e-mail receivers: {have or 'none'})"
                )
            if job.notebook is not None:
                self.notebooks[job.name] = _check_notebook(i, job, base)
        self.jobs, self.run, self.receivers = jobs, Path(run), receivers
        self.state_dir = Path(state_dir)
        self.reports_dir = Path(reports_dir) if reports_dir else self.state_dir / "reports"
        self.site_id, self.writer = site_id, writer
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # the worker thread writes the outcome of its builds: one connection, one lock
        self._db = threading.RLock()
        self._worker: threading.Thread | None = None
        self.con = sqlite3.connect(
            self.state_dir / SCHEDULE_FILE, timeout=30.0, check_same_thread=False
        )
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
        cols = {r[1] for r in self.con.execute("PRAGMA table_info(runs)")}
        if "retry_at" not in cols:  # a schedule file from before back-off
            self.con.execute("ALTER TABLE runs ADD COLUMN retry_at TEXT")
        # a crash between "sending" and "sent": the e-mail may have left; never resend
        self.con.execute("UPDATE runs SET status = 'ambiguous' WHERE status = 'sending'")
        self.con.commit()

    def close(self, timeout_s: float = 600.0) -> None:
        """Wait for a build in progress (at most ``timeout_s`` [s]), then close the file."""
        self.wait(timeout_s)
        with self._db:
            self.con.close()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the worker thread's builds; True when none is running any more."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout_s)
        return worker is None or not worker.is_alive()

    @property
    def busy(self) -> bool:
        """True while the worker thread builds or sends."""
        return self._worker is not None and self._worker.is_alive()

    # --- bookkeeping ------------------------------------------------------------------------
    def _first_seen(self, job: ReportJob, now: pd.Timestamp) -> pd.Timestamp:
        with self._db:
            row = self.con.execute("SELECT first_seen FROM jobs WHERE name = ?", (job.name,))
            got = row.fetchone()
            if got is not None:
                return pd.Timestamp(got[0])
            with self.con:
                self.con.execute("INSERT INTO jobs VALUES (?, ?)", (job.name, now.isoformat()))
        return now

    def _set(self, job: str, period: str, status: str, **cols: Any) -> None:
        with self._db, self.con:
            self.con.execute(
                "INSERT INTO runs (job, period, status, attempts, updated_at) "
                "VALUES (?, ?, ?, 0, ?) ON CONFLICT (job, period) DO UPDATE SET "
                "status = excluded.status, updated_at = excluded.updated_at",
                (job, period, status, time.time()),
            )
            for k, v in cols.items():
                if k not in ("attempts", "path", "bytes", "recipients", "error", "retry_at"):
                    raise ValueError(k)
                self.con.execute(
                    f"UPDATE runs SET {k} = ? WHERE job = ? AND period = ?", (v, job, period)
                )

    def history(self, job: str | None = None) -> list[dict[str, Any]]:
        """Periods handled (newest first) with status, attempts, file, size, error and the
        earliest time of the next try (``retry_at``, after a failure)."""
        with self._db:
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
            with self._db:
                row = self.con.execute(
                    "SELECT status FROM runs WHERE job = ? AND period = ?", (job.name, key)
                ).fetchone()
            out.append({"job": job.name, "cron": job.cron, "timezone": job.timezone,
                        "format": job.format, "period": key,
                        "period_status": row[0] if row else None,
                        "next": str(sched.next(now))})  # fmt: skip
        return out

    # --- running ----------------------------------------------------------------------------
    def due(self, now: pd.Timestamp) -> list[tuple[ReportJob, pd.Timestamp, str, int]]:
        """(job, period, period key, attempt) of every job to build at ``now``.

        A period is due unless it is done (``sent``, ``ambiguous``, ``dead``) or failed
        and waiting for its back-off (``retry_at`` after ``now``).
        """
        now = pd.Timestamp(now)
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        todo = []
        for job in self.jobs:
            first = self._first_seen(job, now)
            period = job.schedule().previous(now)
            if period is None or period < first:
                continue  # nothing fired since the job appeared
            key = _period_key(period)
            with self._db:
                row = self.con.execute(
                    "SELECT status, attempts, retry_at FROM runs WHERE job = ? AND period = ?",
                    (job.name, key),
                ).fetchone()
            if row is not None and row[0] in ("sent", "ambiguous", "dead"):
                continue
            if row is not None and row[2] is not None and pd.Timestamp(row[2]) > now:
                continue  # failed: waiting for its back-off
            todo.append((job, period, key, (row[1] if row else 0) + 1))
        return todo

    def run_due(
        self,
        now: pd.Timestamp,
        wait: bool = True,
        on_done: Callable[[dict[str, Any]], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Build and send every job whose current period is due (:meth:`due`).

        Parameters
        ----------
        now : pandas.Timestamp
            The cycle's time (UTC); the back-off of a failed period is counted in it.
        wait : bool, default True
            Build here and return the outcomes. False: build in a worker thread and return
            at once (operate's loop); while the worker is busy nothing new is started (the
            periods stay due for the next call).
        on_done : callable, optional
            Called with each outcome (from the worker thread when ``wait`` is False).

        Returns
        -------
        list of dict
            With ``wait``: one entry per job tried: ``job``, ``period``, ``status``
            (``sent``, ``failed``, ``dead``), ``path``, ``bytes``, ``error`` (``retry_at``
            after a failure). Without: ``{"job", "period", "status": "started"}`` per job
            handed to the worker.
        """
        if self.busy:
            return []
        now = pd.Timestamp(now)
        now = now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")
        todo = self.due(now)
        if not todo:
            return []

        def build_all() -> list[dict[str, Any]]:
            out = []
            for job, period, key, attempt in todo:
                res = self._run_one(job, period, key, attempt, now)
                if on_done is not None:
                    on_done(res)
                out.append(res)
            return out

        if wait:
            return build_all()
        self._worker = threading.Thread(target=build_all, name="scheduled-reports", daemon=True)
        self._worker.start()
        return [{"job": j.name, "period": k, "status": "started"} for j, _, k, _ in todo]

    def _build(self, job: ReportJob, out: Path, key: str) -> Path:
        """The period's file: the report, or the executed notebook (and its HTML)."""
        with run_snapshot(self.run) as run, private_copy(self.state_dir / "audit.duckdb") as au:
            if job.notebook is None:
                return Path(self.writer(job.format)(run, out, lang=job.lang, audit=au))
            from guardian_lib.notebooks import notebook_html, run_notebook

            executed = out.with_suffix(".ipynb")
            params = {"run": str(run), "lang": job.lang, "period": key, **job.parameters}
            run_notebook(self.notebooks[job.name], executed, params, cwd=out.parent)
            if job.format == "ipynb":
                return executed
            return notebook_html(executed, out)

    def _run_one(
        self, job: ReportJob, period: pd.Timestamp, key: str, attempt: int, now: pd.Timestamp
    ) -> dict:
        out = self.reports_dir / job.name / f"{job.name}_{key}.{job.format}"
        rx = self.receivers[job.receiver]
        to = list(job.recipients) or list(rx.settings.to)
        self._set(job.name, key, "building", attempts=attempt, recipients=", ".join(to))
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            path = self._build(job, out, key)
            size = path.stat().st_size
            self._set(job.name, key, "sending", path=str(path), bytes=size)
            date = period.tz_convert(job.timezone)
            date_txt = date.strftime("%d/%m/%Y" if job.lang == "pt-BR" else "%Y-%m-%d")
            built = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M")
            words = {"name": job.name, "date": date_txt, "fmt": job.format.upper(),
                     "site": self.site_id, "built": built, "path": str(path),
                     "what": _WHAT[(job.lang, job.notebook is not None)]}  # fmt: skip
            rx.send_text(f"{self.site_id}-report-{job.name}-{key}",
                         _SUBJECT[job.lang].format(**words), _BODY[job.lang].format(**words),
                         attachments=(path,), to=to)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - a report must never stop operate
            status = "dead" if attempt >= MAX_ATTEMPTS else "failed"
            err = f"{type(exc).__name__}: {exc}"[:500]
            retry = (now + pd.Timedelta(seconds=retry_delay(attempt))).isoformat()
            self._set(job.name, key, status, error=err,
                      retry_at=retry if status == "failed" else None)  # fmt: skip
            res = {"job": job.name, "period": key, "status": status, "error": err}
            return res | ({"retry_at": retry} if status == "failed" else {})
        self._set(job.name, key, "sent", error=None, retry_at=None)
        removed = self._retain(job)
        return {"job": job.name, "period": key, "status": "sent", "path": str(path),
                "bytes": size, "recipients": to, "removed": removed}  # fmt: skip

    def _retain(self, job: ReportJob) -> list[str]:
        """Delete the files of all but the newest ``job.retention`` periods of ``job``."""
        folder = self.reports_dir / job.name
        pattern = re.compile(rf"^{re.escape(job.name)}_(\d{{8}}T\d{{4}}Z)\.(html|pdf|xlsx|ipynb)$")
        files = [(m.group(1), p) for p in folder.iterdir() if (m := pattern.match(p.name))]
        periods = sorted({k for k, _ in files})
        old = set(periods[: max(0, len(periods) - job.retention)])
        gone = sorted(p for k, p in files if k in old)
        for p in gone:
            p.unlink()
        return [p.name for p in gone]


def _check_notebook(i: int, job: ReportJob, base: Path) -> Path:
    """The notebook of job ``i`` (relative to ``base``), checked: it exists and declares
    every parameter the job gives it."""
    from guardian_lib.notebooks import declared_parameters

    path = (base / str(job.notebook)).resolve()
    if not path.is_file() or path.suffix != ".ipynb":
        raise ConfigError(f"schedule[{i}].notebook: {path} is not a notebook file (.ipynb)")
    unknown = sorted(set(job.parameters) - declared_parameters(path))
    if unknown:
        raise ConfigError(
            f"schedule[{i}].parameters: {unknown} not declared in the parameters cell of {path}"
        )
    return path


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
        site_dir=site.path.parent if site.path else None,
    )  # fmt: skip


def reports_cycle(
    scheduler: ReportScheduler | None, ts: pd.Timestamp, wait: bool = True
) -> list[dict] | None:
    """One cycle's scheduled reports: run what is due and log each outcome as a JSON line.

    ``wait=False`` (operate's loop) hands the builds to the scheduler's worker thread and
    returns at once; their outcomes are logged when they end. Never raises: a broken
    schedule file is logged (``report_failed``) and the loop goes on.
    """
    if scheduler is None:
        return None
    from guardian_lib.operate.metrics import log_json

    def log(d: dict[str, Any]) -> None:
        log_json("report", **{k: v for k, v in d.items() if k != "recipients"})

    try:
        return scheduler.run_due(ts, wait=wait, on_done=log)
    except Exception as exc:  # noqa: BLE001 - a report must never stop operate
        log_json("report_failed", error=f"{type(exc).__name__}: {exc}")
        return None
