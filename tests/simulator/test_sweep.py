"""Sweeps on Dask: equal to the same cells run serially, resumable, robust to a lost worker."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from guardian_lib.cluster import open_client
from guardian_lib.errors import ConfigError
from simulator.sweep import load_sweep, run_sweep, sweep_cells

SWEEP = {
    "name": "t2x2",
    "scenario": "tiny",
    "days": 1,
    "grid": {"customers.background_calls_per_year": [0.0, 40.0]},
    "seeds": [1, 2],
    "policies": ["reactive"],
}


def write_sweep(tmp_path, **changes):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(SWEEP | changes))
    return load_sweep(path)


@pytest.fixture(scope="module")
def serial_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serial")
    sweep, sc = write_sweep(tmp)
    run_sweep(sweep, sc, tmp / "out", mlflow=False)
    return tmp


@pytest.fixture(scope="module")
def serial(serial_dir):
    return pd.read_parquet(serial_dir / "out" / "results.parquet")


def test_two_by_two_on_two_workers_equals_serial(serial, tmp_path):
    sweep, sc = write_sweep(tmp_path)
    with open_client(n_workers=2, processes=False) as client:
        res = run_sweep(sweep, sc, tmp_path / "out", client=client, mlflow=False)
    assert (res["cells"], res["ran"], res["skipped"]) == (4, 4, 0)
    table = pd.read_parquet(res["results"])
    pd.testing.assert_frame_equal(table, serial)
    assert list(table["variant"]) == [
        "background_calls_per_year=0.0", "background_calls_per_year=0.0",
        "background_calls_per_year=40.0", "background_calls_per_year=40.0",
    ]  # fmt: skip
    assert table["calls"].notna().all() and table["visits"].ge(0).all()
    # The variants are different scenarios: customers who call without a fault call.
    assert table["calls"].iloc[2:].sum() > table["calls"].iloc[:2].sum() + 5


def test_rerun_skips_finished_cells_and_logs_child_runs(serial, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    sweep, sc = write_sweep(tmp_path)
    out = tmp_path / "out"
    first = run_sweep(sweep, sc, out)
    cells = sorted((out / "cells").glob("*.json"))
    cells[1].unlink()  # as if the sweep had stopped before this cell
    again = run_sweep(sweep, sc, out, mlflow=False)
    assert (again["ran"], again["skipped"]) == (1, 3)
    pd.testing.assert_frame_equal(pd.read_parquet(again["results"]), serial)

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    children = client.search_runs(
        [client.get_run(first["mlflow_run_id"]).info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{first['mlflow_run_id']}'",
    )
    assert len(children) == 4
    assert {r.data.params["policy"] for r in children} == {"reactive"}
    assert all("calls" in r.data.metrics for r in children)


def test_a_killed_workers_cell_is_retried(serial, tmp_path):
    sweep, sc = write_sweep(tmp_path)
    with open_client(n_workers=2, processes=True) as client:
        pids = client.run(os.getpid)
        killed = []

        def kill_first_busy_worker():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                for addr, keys in client.processing().items():
                    if keys and addr in pids:
                        os.kill(pids[addr], signal.SIGKILL)
                        killed.append(addr)
                        break
                time.sleep(0.005)

        killer = threading.Thread(target=kill_first_busy_worker)
        killer.start()
        res = run_sweep(sweep, sc, tmp_path / "out", client=client, mlflow=False)
        killer.join()
    assert killed, "no worker was busy to be killed"
    assert res["ran"] == 4
    pd.testing.assert_frame_equal(pd.read_parquet(res["results"]), serial)


def test_a_bad_override_names_the_variant(tmp_path):
    sweep, sc = write_sweep(tmp_path, grid={"weather.no_such_field": [1]})
    with pytest.raises(ConfigError, match="variant no_such_field=1.*no_such_field"):
        sweep_cells(sweep, sc)
    with pytest.raises(ConfigError, match="grid or variants"):
        write_sweep(tmp_path, variants=[{"name": "a"}])


def test_a_policy_interval_off_a_variants_tick_is_named_before_any_cell_runs(tmp_path):
    # It used to fail in every cell (or, before the backtest refused it, run every tick).
    sweep, sc = write_sweep(tmp_path, every_minutes=7)
    with pytest.raises(ConfigError, match=r"every_minutes: .*5-minute tick, got 7"):
        sweep_cells(sweep, sc)
    sweep, sc = write_sweep(tmp_path, grid={"tick_minutes": [5, 10]}, every_minutes=15)
    with pytest.raises(ConfigError, match=r"variant tick_minutes=10: every_minutes: .*10-minute"):
        sweep_cells(sweep, sc)


def test_sweep_notebook_is_clean_and_plots_a_sweep(serial, tmp_path):
    import nbformat

    from guardian_lib.notebooks import run_notebooks

    repo = Path(__file__).resolve().parents[2]
    nb = nbformat.read(repo / "notebooks" / "sweep.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "def " not in "".join(c.source for c in code)
    serial.to_parquet(tmp_path / "results.parquet", index=False)
    params = {"results": str(tmp_path / "results.parquet"), "metric": "calls"}
    run_notebooks(["sweep.ipynb"], repo / "notebooks", tmp_path / "nb", params, cwd=repo)
    done = nbformat.read(tmp_path / "nb" / "sweep.ipynb", as_version=4)
    text = "".join(
        o.get("text", "") for c in done.cells if c.cell_type == "code" for o in c.outputs
    )
    assert "4 cells: 2 variants x 2 seeds x 1 policies" in text
    assert "arms: reactive\n" in text


def test_sweep_notebook_splits_the_autopilot_by_model(serial, tmp_path):
    """A models axis: the autopilot's rows of each scorer are their own arm."""
    from guardian_lib.notebooks import run_notebooks

    repo = Path(__file__).resolve().parents[2]
    arms = [serial.assign(model=None, model_version=None)]
    for model, version, extra_calls in (("rules", None, 0), ("champion", "7", 1000)):
        arms.append(
            serial.assign(policy="autopilot", model=model, model_version=version,
                          calls=serial["calls"] + extra_calls)
        )  # fmt: skip
    table = pd.concat(arms, ignore_index=True)
    table.to_parquet(tmp_path / "results.parquet", index=False)
    params = {"results": str(tmp_path / "results.parquet"), "metric": "calls"}
    run_notebooks(["sweep.ipynb"], repo / "notebooks", tmp_path / "nb", params, cwd=repo)
    done = nbformat_read(tmp_path / "nb" / "sweep.ipynb")
    [summary] = [c for c in done.cells if c.cell_type == "code" and "arms:" in c.source]
    text = "".join(o.get("text", "") for o in summary.outputs)
    assert "12 cells: 2 variants x 2 seeds x 2 policies" in text
    assert "arms: reactive, autopilot · rules, autopilot · champion" in text
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in summary.outputs)
    assert "autopilot · champion" in shown and "autopilot · rules" in shown
    # The bars: one trace per arm, its mean per variant (champion's 1000 calls above rules).
    figure = [c for c in done.cells if c.cell_type == "code" and "px.bar" in c.source][0]
    [plotly] = [o["data"]["application/vnd.plotly.v1+json"] for o in figure.outputs
                if "application/vnd.plotly.v1+json" in o.get("data", {})]  # fmt: skip
    bars = {t["name"]: t for t in plotly["data"] if t["type"] == "bar"}
    assert set(bars) == {"reactive", "autopilot · rules", "autopilot · champion"}
    want = serial.groupby("variant")["calls"].mean()
    for arm, extra in (("reactive", 0), ("autopilot · rules", 0), ("autopilot · champion", 1000)):
        got = dict(zip(bars[arm]["x"], _values(bars[arm]["y"]), strict=True))
        assert got == pytest.approx((want + extra).to_dict()), arm


def _values(y) -> list[float]:
    """A plotly trace's values (plain list, or the typed-array dict of newer plotly)."""
    if isinstance(y, dict):
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]).tolist()
    return list(y)


def nbformat_read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def test_shipped_sweep_files_are_valid():
    repo = Path(__file__).resolve().parents[2]
    files = sorted((repo / "experiments" / "sweeps").glob("*.yaml"))
    assert files
    for path in files:
        sweep, sc = load_sweep(path)
        cells = sweep_cells(sweep, sc)
        assert len(cells) == len(sweep.variant_list()) * len(sweep.seeds) * len(sweep.policies)
        assert len({c.key for c in cells}) == len(cells)


def test_status_lists_cells_and_a_finished_sweep_starts_no_cluster(
    serial_dir, serial, tmp_path, monkeypatch
):
    import shutil

    import typer
    from typer.testing import CliRunner

    import guardian_lib.cluster
    from simulator.sweep_cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # two commands: typer keeps the sub-command name
    out = tmp_path / "out"
    shutil.copytree(serial_dir / "out", out)
    file = str(serial_dir / "sweep.yaml")
    done = sorted((out / "cells").glob("*.json"))
    kept = done[2].read_bytes()
    done[2].unlink()

    def no_cluster(*a, **k):
        raise AssertionError("a cluster was started")

    monkeypatch.setattr(guardian_lib.cluster, "open_client", no_cluster)
    res = CliRunner().invoke(app, ["sweep", "--status", file, "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1].startswith("3 done, 1 pending")
    pending = [line for line in lines[:-1] if line.startswith("pending")]
    assert len(pending) == 1 and pending[0].endswith(done[2].stem)
    assert not done[2].exists()  # --status runs nothing
    done[2].write_bytes(kept)
    res = CliRunner().invoke(app, ["sweep", file, "--out", str(out), "--no-mlflow"])
    assert res.exit_code == 0, res.output
    assert "4 cells (0 run, 4 already done)" in res.output
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), serial)


def test_models_axis_multiplies_the_autopilot_cells_only(tmp_path):
    from simulator.sweep import run_cell

    plain, sc = write_sweep(tmp_path, policies=["reactive", "autopilot"], seeds=[1])
    with_models, _ = write_sweep(
        tmp_path, policies=["reactive", "autopilot"], seeds=[1], models=["rules"]
    )
    a, b = sweep_cells(plain, sc), sweep_cells(with_models, sc)
    assert len(a) == len(b) == 4
    # The reactive cells are the same cells (same files: a finished sweep stays done).
    assert [c.key for c in a if c.policy == "reactive"] == [
        c.key for c in b if c.policy == "reactive"
    ]
    auto = [c for c in b if c.policy == "autopilot"]
    assert {c.model for c in auto} == {"rules"} and all(c.model_version is None for c in auto)
    assert auto[0].key != [c for c in a if c.policy == "autopilot"][0].key
    # The rule scorer is the autopilot's default scorer: the same KPIs.
    row_a = run_cell([c for c in a if c.policy == "autopilot"][0])
    row_b = run_cell(auto[0])
    assert row_b["model"] == "rules"
    skip = {"cell", "model", "model_version"}
    same_b = json.dumps({k: v for k, v in row_b.items() if k not in skip}, sort_keys=True)
    assert same_b == json.dumps({k: v for k, v in row_a.items() if k != "cell"}, sort_keys=True)
    with pytest.raises(ConfigError, match="autopilot"):
        write_sweep(tmp_path, models=["rules"])


def test_an_unknown_model_alias_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    sweep, sc = write_sweep(tmp_path, policies=["autopilot"], models=["rules", "nope"])
    with pytest.raises(ConfigError, match="alias 'nope'"):
        sweep_cells(sweep, sc)
