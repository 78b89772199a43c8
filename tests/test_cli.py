"""The `guardian` console script end to end (real subprocesses; the help texts in-process)."""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

from cli_runner import run_guardian

from guardian_lib.cli import ENTRY_POINT_GROUP

GUARDIAN = Path(sys.executable).with_name("guardian")


def guardian(
    *args: str, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GUARDIAN), *args], capture_output=True, text=True, check=check, timeout=300,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_simulate_ingest_info_json(tmp_path):
    out = tmp_path / "run"
    guardian("simulate", "--scenario", "tiny", "--seed", "3", "--days", "1", "--out", str(out))
    guardian("ingest", "--run", str(out))
    res = guardian("info", "--run", str(out), "--json")
    info = json.loads(res.stdout)
    assert info["row_counts"]["customers"] == 64
    assert info["row_counts"]["telemetry"] > 60 * 288 * 0.9
    assert info["time_range"]["start"].startswith("2026-01-05T00:00")
    assert set(info["operations"]) >= {"calls", "visits", "visits_no_fault_found"}
    # Same seed again: same manifest.
    again = tmp_path / "again"
    guardian("simulate", "--scenario", "tiny", "--seed", "3", "--days", "1", "--out", str(again))
    assert (out / "run.json").read_text() == (again / "run.json").read_text()


def test_errors_are_clear_and_exit_nonzero(tmp_path):
    res = guardian("info", "--run", str(tmp_path), check=False)
    assert res.returncode == 2
    assert "guardian ingest" in res.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("topology: {regions: []}\n")
    res = guardian("simulate", "--scenario", str(bad), "--out", str(tmp_path / "x"), check=False)
    assert res.returncode == 2
    assert "topology.regions" in res.stderr
    assert not (tmp_path / "x").exists()


def test_help_on_every_command():
    # The help texts are read in this process: the console script itself (entry point,
    # plugins, ``--help``) is run by test_every_registered_command_group_loads_and_has_help.
    top = run_guardian("--help").stdout
    for cmd in ("simulate", "ingest", "info"):
        assert cmd in top
        assert "--run" in run_guardian(cmd, "--help").stdout or cmd == "simulate"


def test_debug_shows_the_traceback(tmp_path):
    for args, env in (
        (("--debug", "backtest", "--run", str(tmp_path)), None),
        (("backtest", "--run", str(tmp_path)), {"GUARDIAN_DEBUG": "1"}),
    ):
        res = guardian(*args, env=env, check=False)
        assert res.returncode == 1
        assert "Traceback" in res.stderr and "FileNotFoundError" in res.stderr


def test_every_registered_command_group_loads_and_has_help():
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert {"core", "simulate", "snmp"} <= names
    res = guardian("--help")
    assert res.returncode == 0 and "warning" not in res.stderr
    assert "--debug" in res.stdout


def test_loading_every_command_group_imports_no_heavy_library():
    # Every `guardian …` process registers all groups first: a package that imports
    # pandas, scipy, scikit-learn or aiohttp at import time makes each command (and each
    # `--help`) seconds slower. The groups import them inside their commands.
    code = (
        "import sys\nfrom guardian_lib.cli import main\ntry:\n    main(['--help'])\n"
        "except SystemExit:\n    pass\n"
        "print('HEAVY:' + ' '.join(sorted(m for m in ('pandas', 'scipy', 'sklearn', 'aiohttp', 'mlflow',"
        " 'duckdb', 'panel', 'pysnmp', 'lightgbm') if m in sys.modules)))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    (heavy,) = [line for line in res.stdout.splitlines() if line.startswith("HEAVY:")]
    assert heavy == "HEAVY:", heavy
