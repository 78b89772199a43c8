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
    policies: [reactive, rules]
    every_minutes: 15

Each cell (variant, seed, policy) is one closed-loop replay,
:func:`simulator.backtest.run_policy` — the backtest's cell runner. A finished cell
writes ``<out>/cells/<key>.json`` (atomically, from the worker that ran it); a rerun
skips the cells whose file exists, so a sweep stopped half-way resumes. The table
``<out>/results.parquet`` has one row per cell, in (variant, seed, policy) order,
whatever the order in which the cells finished.
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
]

#: MLflow experiment of the sweeps (one parent run per sweep, one child per cell).
SWEEP_MLFLOW_EXPERIMENT = "network-guardian-sweeps"
_Policy = Literal["reactive", "rules", "autopilot", "oracle"]


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
    every_minutes: Annotated[int, Field(ge=5, le=1440)] = POLICY_EVERY_MINUTES

    @model_validator(mode="after")
    def _grid_or_variants(self) -> Sweep:
        if self.grid and self.variants:
            raise ValueError("give grid or variants, not both")
        if any(len(v) == 0 for v in self.grid.values()):
            raise ValueError("every grid entry needs at least one value")
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

    @property
    def key(self) -> str:
        """File-safe, stable name of the cell (readable part + digest of its inputs)."""
        blob = json.dumps(self.model_dump(), sort_keys=True, default=str).encode()
        digest = hashlib.sha256(blob).hexdigest()[:10]
        safe = "".join(c if c.isalnum() or c in "-_=." else "_" for c in self.variant)
        return f"{safe}__s{self.seed}__{self.policy}__{digest}"


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


def sweep_cells(sweep: Sweep, scenario_path: Path) -> list[Cell]:
    """Every cell, in (variant, seed, policy) order; each variant validated once.

    Raises
    ------
    ConfigError
        A variant's override names no field or gives a wrong value (with the variant).
    """
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
        scenario = sc.model_dump(mode="json")
        for seed in sweep.seeds:
            for policy in sweep.policies:
                cells.append(
                    Cell(
                        variant=variant.name,
                        seed=seed,
                        policy=policy,
                        every_minutes=sweep.every_minutes,
                        scenario=scenario,
                        overrides=dict(variant.set),
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


def run_cell(cell: Cell, cells_dir: str | None = None) -> dict[str, Any]:
    """Replay one cell and return its row (KPIs flattened to scalars).

    With ``cells_dir`` the row is also written to ``<cells_dir>/<key>.json`` (atomically:
    a task retried after a lost worker writes the same file again).
    """
    from simulator.backtest import run_policy

    sc = load_scenario(cell.scenario)
    kpis = run_policy(sc, cell.policy, cell.seed, cell.every_minutes)
    row = {
        "cell": cell.key, "variant": cell.variant, "seed": cell.seed, "policy": cell.policy,
        **{f"set.{k}": json.dumps(v) for k, v in cell.overrides.items()},
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
                params = {k: v for k, v in row.items() if k in ("variant", "seed", "policy")}
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
    cells = sweep_cells(sweep, scenario_path)
    todo = [c for c in cells if not (cells_dir / f"{c.key}.json").is_file()]
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
