"""Experiment sweeps: scenario variants × seeds × policies as Dask tasks, one results table.

A sweep file (``experiments/sweeps/NAME.yaml``)::

    name: storms_vs_policies
    scenario: tiny              # shipped name, or a path relative to the sweep file
    days: 1                     # optional override of the scenario's days
    grid:                       # cartesian product of dotted-path overrides ...
      weather.storms_per_year_per_region: [0, 60]
    # variants:                 # ... or an explicit list (not both)
    #   - {name: calm, set: {weather.storms_per_year_per_region: 0}}
    seeds: [1, 2]
    policies: [reactive, rules, autopilot]
    models: [rules, champion]   # optional: the autopilot's scorers (rules or a registry alias)
    every_minutes: 15

Each cell (variant, seed, policy[, model]) is one closed-loop replay,
:func:`simulator.backtest.run_policy` — the backtest's cell runner. A finished cell
writes ``<out>/cells/<key>.json`` (atomically, from the worker that ran it); a rerun
skips the cells whose file exists, so a sweep stopped half-way resumes. The table
``<out>/results.parquet`` has one row per cell, in (variant, seed, policy) order,
whatever the order in which the cells finished.

``models`` is an axis of the ``autopilot`` cells only (the other policies use no
scorer): ``rules`` is the rule scorer, any other value a registry alias, resolved to its
model version when the cells are listed — the version is part of the cell, so when the
alias moves to a new version, a rerun runs those cells again instead of mixing versions.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.schema import POLICY_EVERY_MINUTES
from simulator.scenario import load_scenario, read_yaml_mapping, scenario_file

__all__ = [
    "SWEEP_MLFLOW_EXPERIMENT",
    "Variant",
    "Sweep",
    "Cell",
    "load_sweep",
    "sweep_cells",
    "run_cell",
    "run_sweep",
    "pending_cells",
    "RULE_SCORER",
]

#: MLflow experiment of the sweeps (one parent run per sweep, one child per cell).
SWEEP_MLFLOW_EXPERIMENT = "network-guardian-sweeps"
_Policy = Literal["reactive", "rules", "autopilot", "oracle"]
#: ``models:`` value of the rule scorer (the autopilot's default scorer).
RULE_SCORER = "rules"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Variant(_Strict):
    """A named scenario variant: dotted-path overrides of the base scenario."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.=,+-]+$")]
    set: dict[str, Any] = {}


class Sweep(_Strict):
    """A validated sweep file."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")]
    scenario: str
    days: Annotated[float | None, Field(gt=0, le=366)] = None
    grid: dict[str, list[Any]] = {}
    variants: list[Variant] = []
    seeds: Annotated[list[int], Field(min_length=1)]
    policies: Annotated[list[_Policy], Field(min_length=1)]
    models: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]] = []
    every_minutes: Annotated[int, Field(ge=5, le=1440)] = POLICY_EVERY_MINUTES

    @model_validator(mode="after")
    def _grid_or_variants(self) -> Sweep:
        if self.grid and self.variants:
            raise ValueError("give grid or variants, not both")
        if any(len(v) == 0 for v in self.grid.values()):
            raise ValueError("every grid entry needs at least one value")
        if self.models and "autopilot" not in self.policies:
            raise ValueError("models is an axis of the autopilot: add autopilot to policies")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models must be unique, got {self.models}")
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        return self

    def variant_list(self) -> list[Variant]:
        """The variants: the list given, the grid's product, or the base scenario alone."""
        if self.variants:
            return list(self.variants)
        if not self.grid:
            return [Variant(name="base")]
        keys = list(self.grid)
        out = []
        for values in itertools.product(*(self.grid[k] for k in keys)):
            changes = dict(zip(keys, values, strict=True))
            name = ",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in changes.items())
            out.append(Variant(name=name.replace(" ", ""), set=changes))
        return out


class Cell(BaseModel):
    """One replay of a sweep: a variant's scenario (as data), a seed and a policy."""

    variant: str
    seed: int
    policy: str
    every_minutes: int
    scenario: dict[str, Any]
    overrides: dict[str, Any]
    #: The autopilot's scorer: ``rules`` or a registry alias (None: no models axis).
    model: str | None = None
    #: The registered version the alias pointed to (None for ``rules``).
    model_version: str | None = None

    @property
    def key(self) -> str:
        """File-safe, stable name of the cell (readable part + digest of its inputs)."""
        data = self.model_dump()
        for name in ("model", "model_version"):
            if data[name] is None:
                del data[name]  # cells without a models axis keep their keys
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        digest = hashlib.sha256(blob).hexdigest()[:10]
        safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in self.variant)
        policy = self.policy if self.model is None else f"{self.policy}-{self.model}"
        return f"{safe}__s{self.seed}__{policy}__{digest}"


def load_sweep(path: Path | str) -> tuple[Sweep, Path]:
    """Read and validate a sweep file.

    Returns
    -------
    (Sweep, Path)
        The sweep and the scenario file it names (resolved beside the sweep file first).

    Raises
    ------
    ConfigError
        Missing file, bad YAML or a wrong field (named with its dotted path).
    """
    path = Path(path)
    data = read_yaml_mapping(path)
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(str(path), exc)) from None
    return sweep, scenario_file(sweep.scenario, search=path.parent)


def _set_dotted(data: dict, dotted: str, value: Any, label: str) -> None:
    node = data
    *parents, leaf = dotted.split(".")
    for i, part in enumerate(parents):
        child = node.get(part)
        if not isinstance(child, dict):
            where = ".".join(parents[: i + 1])
            raise ConfigError(f"{label}: override {dotted!r}: {where!r} is not a section")
        node = child
    node[leaf] = value


def _model_versions(sweep: Sweep) -> dict[str, str | None]:
    """Each ``models`` value → the registered version it names now (None: rule scorer)."""
    out: dict[str, str | None] = {}
    for alias in sweep.models:
        if alias == RULE_SCORER:
            out[alias] = None
            continue
        from guardian_lib.models.registry import MODEL_NAME, configure_mlflow

        configure_mlflow()
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            mv = MlflowClient().get_model_version_by_alias(MODEL_NAME, alias)
        except MlflowException as exc:
            raise ConfigError(
                f"sweep {sweep.name}: models: no registered model with alias {alias!r} "
                f"({exc.message.splitlines()[0]}); train one or use {RULE_SCORER!r}"
            ) from None
        out[alias] = f"{MODEL_NAME}/{mv.version}"
    return out


def _scorers(sweep: Sweep, policy: str, versions: dict[str, str | None]):
    if policy != "autopilot" or not sweep.models:
        return [(None, None)]
    return [(m, versions[m]) for m in sweep.models]


def sweep_cells(sweep: Sweep, scenario_path: Path) -> list[Cell]:
    """Every cell, in (variant, seed, policy, model) order; each variant validated once.

    Raises
    ------
    ConfigError
        A variant's override names no field or gives a wrong value (with the variant),
        ``every_minutes`` is not a multiple of a variant's tick, or a ``models`` alias is
        not in the registry.
    """
    versions = _model_versions(sweep)
    base = load_scenario(scenario_path, **({"days": sweep.days} if sweep.days else {}))
    cells = []
    for variant in sweep.variant_list():
        data = base.model_dump(mode="json")
        label = f"sweep {sweep.name}, variant {variant.name}"
        for dotted, value in variant.set.items():
            _set_dotted(data, dotted, value, label)
        try:
            sc = load_scenario(data)
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}") from None
        if sweep.every_minutes % sc.tick_minutes:
            raise ConfigError(
                f"{label}: every_minutes: expected a multiple of the scenario's "
                f"{sc.tick_minutes}-minute tick, got {sweep.every_minutes}"
            )
        scenario = sc.model_dump(mode="json")
        for seed in sweep.seeds:
            for policy in sweep.policies:
                for model, version in _scorers(sweep, policy, versions):
                    cells.append(
                        Cell(
                            variant=variant.name,
                            seed=seed,
                            policy=policy,
                            every_minutes=sweep.every_minutes,
                            scenario=scenario,
                            overrides=dict(variant.set),
                            model=model,
                            model_version=version,
                        )  # fmt: skip
                    )
    return cells


def _flat_scalars(k: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, v in k.items():
        if isinstance(v, dict):
            out.update(_flat_scalars(v, f"{prefix}{name}."))
        elif isinstance(v, bool | int | float | str) or v is None:
            out[f"{prefix}{name}"] = v
    return out


def _scorer(cell: Cell):
    """The autopilot's scorer of a cell: None (the rule scorer) or the registered version."""
    if cell.model_version is None:
        return None
    from guardian_lib.models.online import ModelScorer
    from guardian_lib.models.registry import configure_mlflow

    mlflow = configure_mlflow()
    bundle = mlflow.sklearn.load_model(f"models:/{cell.model_version}")
    bundle.model_version = cell.model_version
    return ModelScorer(bundle)


def pending_cells(sweep: Sweep, scenario_path: Path, out: Path | str) -> tuple[list, list]:
    """Every cell of the sweep and those without a finished ``cells/<key>.json`` in ``out``."""
    cells = sweep_cells(sweep, scenario_path)
    cells_dir = Path(out) / "cells"
    return cells, [c for c in cells if not (cells_dir / f"{c.key}.json").is_file()]


def run_cell(cell: Cell, cells_dir: str | None = None) -> dict[str, Any]:
    """Replay one cell and return its row (KPIs flattened to scalars).

    With ``cells_dir`` the row is also written to ``<cells_dir>/<key>.json`` (atomically:
    a task retried after a lost worker writes the same file again).
    """
    from simulator.backtest import run_policy

    sc = load_scenario(cell.scenario)
    kpis = run_policy(sc, cell.policy, cell.seed, cell.every_minutes, scorer=_scorer(cell))
    axis = {} if cell.model is None else {"model": cell.model, "model_version": cell.model_version}
    row = {
        "cell": cell.key, "variant": cell.variant, "seed": cell.seed, "policy": cell.policy,
        **axis, **{f"set.{k}": json.dumps(v) for k, v in cell.overrides.items()},
        **_flat_scalars(kpis),
    }  # fmt: skip
    if cells_dir is not None:
        target = Path(cells_dir) / f"{cell.key}.json"
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(row, sort_keys=True, default=str))
        os.replace(tmp, target)
    return row


def _log_mlflow(sweep: Sweep, rows: list[dict[str, Any]], out: Path) -> str:
    """One parent run for this invocation; a nested child run per newly finished cell."""
    from guardian_lib.models.registry import configure_mlflow

    mlflow = configure_mlflow(SWEEP_MLFLOW_EXPERIMENT)
    with mlflow.start_run(run_name=f"sweep {sweep.name}") as parent:
        mlflow.set_tags({"guardian.sweep": sweep.name, "guardian.sweep_dir": str(out)})
        mlflow.log_params({"seeds": json.dumps(sweep.seeds), "policies": ",".join(sweep.policies)})
        for row in rows:
            with mlflow.start_run(run_name=row["cell"], nested=True):
                axes = ("variant", "seed", "policy", "model", "model_version")
                params = {k: v for k, v in row.items() if k in axes and v is not None}
                params |= {k: v for k, v in row.items() if k.startswith("set.")}
                mlflow.log_params(params)
                mlflow.log_metrics(
                    {
                        k: float(v)
                        for k, v in row.items()
                        if isinstance(v, int | float)
                        and not isinstance(v, bool)
                        and k != "seed"
                        and v == v
                    }  # fmt: skip
                )
        return parent.info.run_id


def run_sweep(
    sweep: Sweep,
    scenario_path: Path,
    out: Path | str,
    client=None,
    mlflow: bool = True,
    on_submit: Callable[[list], None] | None = None,
) -> dict[str, Any]:
    """Run the cells not yet finished, then write ``<out>/results.parquet``.

    Parameters
    ----------
    sweep : Sweep
    scenario_path : Path
        The base scenario file (from :func:`load_sweep`).
    out : Path
        Sweep folder (``cells/`` and ``results.parquet``); on a cluster, on storage every
        worker sees.
    client : distributed.Client, optional
        Runs the cells as tasks (retried on another worker if one dies); without one the
        cells run here, one after the other.
    mlflow : bool, default True
        Log a parent run and one child run per cell run now.
    on_submit : callable, optional
        Called with the futures (e.g. a progress bar).

    Returns
    -------
    dict
        ``results`` (path), ``cells``, ``ran``, ``skipped``, ``mlflow_run_id``.
    """
    out = Path(out)
    cells_dir = out / "cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    cells, todo = pending_cells(sweep, scenario_path, out)
    if client is None:
        fresh = [run_cell(c, str(cells_dir)) for c in todo]
    else:
        futures = [
            client.submit(run_cell, c, str(cells_dir), key=f"sweep-{c.key}", retries=2)
            for c in todo
        ]
        if on_submit is not None and futures:
            on_submit(futures)
        fresh = client.gather(futures)
    rows = [json.loads((cells_dir / f"{c.key}.json").read_text()) for c in cells]
    table = pd.DataFrame(rows)
    tmp = out / f".results.parquet.tmp-{os.getpid()}"
    table.to_parquet(tmp, index=False)
    os.replace(tmp, out / "results.parquet")
    run_id = _log_mlflow(sweep, fresh, out) if mlflow and fresh else None
    return {
        "results": out / "results.parquet",
        "cells": len(cells),
        "ran": len(todo),
        "skipped": len(cells) - len(todo),
        "mlflow_run_id": run_id,
    }
