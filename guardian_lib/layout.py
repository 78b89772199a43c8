"""Where every file of a run lives: one :class:`RunLayout`, used by writers and readers.

A run folder (``data/runs/<experiment>/<role>-seed<N>`` under ``guardian run``, or any
folder given to ``guardian simulate --out``)::

    run.json                                   simulator manifest: scenario, seed, row counts
    source.json                                own data: what `guardian ingest --source` imported
    inventory/{olts,pons,splitters,onus,customers}.parquet
    ops/{service_orders,cpe_state}.parquet     operations (+ ground truth in a simulated run)
    warehouse.duckdb                           small tables: inventory, operations, catalog
    lake/raw/{telemetry,events}/date=…/        RAW, append-only
    lake/silver/telemetry/date=…/*.parquet     SILVER (data-….parquet + operate's parts)
    lake/silver/events/*.parquet               (the warehouse lists the current files)
    lake/gold/features/date=…/data.parquet     GOLD: point-in-time features
    lake/gold/ml_predictions/*.parquet         GOLD: model predictions
    models/shap_global_importance.csv          the scoring model's global SHAP importance
    kpis.json                                  the closed-loop backtest's KPIs per policy
    audit.duckdb                               the autopilot's audit trail of that backtest

An experiment's report folder is :class:`ReportLayout`. Only this module spells these
names; writers and readers ask a layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunLayout", "ReportLayout", "WAREHOUSE_FILE", "LAKE_KINDS"]

#: The DuckDB file of a run.
WAREHOUSE_FILE = "warehouse.duckdb"
#: Kinds of RAW and SILVER lake data.
LAKE_KINDS = ("telemetry", "events")


@dataclass(frozen=True)
class _Folder:
    """A folder whose files a subclass names (``root`` may be given as a str)."""

    root: Path

    def __init__(self, root: Path | str) -> None:
        object.__setattr__(self, "root", Path(root))


@dataclass(frozen=True, init=False)
class RunLayout(_Folder):
    """The paths of one run folder (nothing is created or checked).

    Parameters
    ----------
    root : Path
        The run folder.
    """

    @property
    def manifest(self) -> Path:
        """``run.json``: what the simulator made this run from."""
        return self.root / "run.json"

    @property
    def source_manifest(self) -> Path:
        """``source.json``: the tables ``guardian ingest --source`` imported (own data)."""
        return self.root / "source.json"

    def inventory(self, table: str) -> Path:
        """Inventory table file (``olts``, ``pons``, ``splitters``, ``onus``, ``customers``)."""
        return self.root / "inventory" / f"{table}.parquet"

    def ops(self, table: str) -> Path:
        """Operations table file (``service_orders``, ``cpe_state``, …)."""
        return self.root / "ops" / f"{table}.parquet"

    @property
    def warehouse(self) -> Path:
        """``warehouse.duckdb``: inventory, operations and catalog tables."""
        return self.root / WAREHOUSE_FILE

    @property
    def lake(self) -> Path:
        """The Parquet lake."""
        return self.root / "lake"

    def raw(self, kind: str) -> Path:
        """RAW folder of ``kind`` ('telemetry' or 'events')."""
        return self.lake / "raw" / kind

    def silver(self, kind: str) -> Path:
        """SILVER folder of ``kind`` ('telemetry' or 'events')."""
        return self.lake / "silver" / kind

    def gold(self, table: str) -> Path:
        """GOLD folder of ``table`` (see :data:`guardian_lib.schema.GOLD_TABLES`)."""
        return self.lake / "gold" / table

    @property
    def features(self) -> Path:
        """GOLD point-in-time features (``guardian features``)."""
        return self.gold("features")

    @property
    def predictions(self) -> Path:
        """GOLD model predictions (``guardian score``)."""
        return self.gold("ml_predictions")

    @property
    def models(self) -> Path:
        """Model artifacts copied into the run."""
        return self.root / "models"

    @property
    def shap_importance(self) -> Path:
        """Global SHAP importance of the scoring model (``feature``, ``mean_abs_shap``)."""
        return self.models / "shap_global_importance.csv"

    @property
    def kpis(self) -> Path:
        """The closed-loop backtest's KPIs (``guardian backtest --json``)."""
        return self.root / "kpis.json"

    @property
    def audit(self) -> Path:
        """The autopilot's audit trail of the backtest (``guardian backtest --audit``)."""
        return self.root / "audit.duckdb"

    @property
    def sla(self) -> Path:
        """SLA and network KPIs per region, OLT and PON (:func:`guardian_lib.sla.write_sla`)."""
        return self.root / "sla.parquet"

    @property
    def sla_json(self) -> Path:
        """The same SLA table as JSON."""
        return self.root / "sla.json"


@dataclass(frozen=True, init=False)
class ReportLayout(_Folder):
    """The files of one experiment run's report folder (``reports/<name>/<timestamp>/``).

    Parameters
    ----------
    root : Path
        The report folder.
    """

    @property
    def experiment(self) -> Path:
        """A copy of the experiment file as run."""
        return self.root / "experiment.yaml"

    def scenario(self, role: str) -> Path:
        """The merged scenario of ``role`` ('train' or 'test')."""
        return self.root / f"scenario.{role}.yaml"

    @property
    def notebooks(self) -> Path:
        """The executed notebooks (outputs included)."""
        return self.root / "notebooks"

    @property
    def manifest(self) -> Path:
        """``pipeline.json``: what ran, with which parameters, how long, the outcome."""
        return self.root / "pipeline.json"

    @property
    def evaluation(self) -> Path:
        """Model metrics on the test run (notebook 04)."""
        return self.root / "evaluation.json"

    @property
    def kpis(self) -> Path:
        """The backtest's KPIs, copied from the test run."""
        return self.root / "kpis.json"

    def report(self, lang: str, first: bool) -> Path:
        """The offline report in ``lang``: the first language is ``report.html``."""
        return self.root / ("report.html" if first else f"report.{lang}.html")

    def reports(self) -> list[Path]:
        """The reports written so far, sorted."""
        return sorted(self.root.glob("report*.html"))

    @property
    def pdf(self) -> Path:
        """The printed report (PDF) in the first language."""
        return self.root / "report.pdf"

    @property
    def screenshots(self) -> Path:
        """PNG of each screen of the first report."""
        return self.root / "screenshots"
