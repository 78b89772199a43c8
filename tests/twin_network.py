"""``guardian operate`` against ``guardian twin --serve-network``: the harness the twin
network tests share (a twin process, operate as a process, and readers of operate's state
folder: its journal, cycles and audit).

Test modules import it as ``twin_network`` (``pythonpath = ["tests"]``); the
``network_factory`` fixture is in ``tests/acs_emulator/conftest.py``.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import yaml
from local_servers import UdpForwarder

__all__ = [
    "GUARDIAN", "SPEED", "Network", "audit_rows", "cycle_figures", "forward_second_olt",
    "journal_rows", "last_cycle", "last_cycle_safe", "open_cases_safe", "run_operate",
    "scenario_file", "start_operate", "stop_operate", "two_olts_scenario",
]  # fmt: skip

GUARDIAN = Path(sys.executable).with_name("guardian")
SPEED = 600.0


def scenario_file(tmp_path: Path, only_fault, kind: str, rate: float, **params) -> Path:
    sc = only_fault(kind, rate, fault_params=params) if params else only_fault(kind, rate)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
    return path


class Network:
    """A ``guardian twin --serve-network`` process."""

    def __init__(
        self, tmp_path: Path, scenario: Path, seed: int, hours: float = 8.0, speed: float = SPEED,
        extra: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.site = tmp_path / "net" / "site.yaml"
        self.truth_path = tmp_path / "truth.json"
        self.proc = subprocess.Popen(
            [str(GUARDIAN), "twin", "--scenario", str(scenario), "--seed", str(seed),
             "--speed", str(speed), "--serve-network", "--site-out", str(self.site),
             "--truth-out", str(self.truth_path), "--hours", str(hours), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        end = time.monotonic() + 60
        while not self.site.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                out, err = self.proc.communicate(timeout=10)
                raise AssertionError(f"twin did not write its site file: {err[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> dict:
        """SIGTERM, wait, and return the truth."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0
        return json.loads(self.truth_path.read_text())


def run_operate(site: Path, state: Path, *args: str, timeout: float = 300) -> dict:
    out = state.parent / f"{state.name}-summary.json"
    proc = subprocess.run(
        [str(GUARDIAN), "operate", "--site", str(site), "--state", str(state), "--json",
         str(out), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def start_operate(site: Path, state: Path, *args: str, mode: str = "execute") -> subprocess.Popen:
    """``guardian operate`` on ``site`` as a process of its own (stderr kept for errors)."""
    return subprocess.Popen(
        [str(GUARDIAN), "operate", "--site", str(site), "--state", str(state), "--mode", mode,
         *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def journal_rows(state: Path) -> list[dict]:
    con = sqlite3.connect(state / "operate.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM journal ORDER BY created_at")]
    finally:
        con.close()


def last_cycle(state: Path) -> int:
    con = sqlite3.connect(state / "operate.sqlite")
    try:
        return int(con.execute("SELECT coalesce(max(cycle), 0) FROM cycles").fetchone()[0])
    finally:
        con.close()


def last_cycle_safe(state: Path) -> int:
    try:
        return last_cycle(state) if (state / "operate.sqlite").exists() else 0
    except sqlite3.OperationalError:  # being created
        return 0


def audit_rows(state: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(state / "audit.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def cycle_figures(state: Path) -> list[dict]:
    try:
        con = sqlite3.connect(state / "operate.sqlite")
        try:
            rows = con.execute("SELECT figures FROM cycles ORDER BY cycle").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return []
    return [json.loads(r[0]) for r in rows]


def open_cases_safe(state: Path) -> int:
    """``open_cases`` of operate's last finished cycle (0 before the first)."""
    if not (state / "operate.sqlite").exists():
        return 0
    con = sqlite3.connect(state / "operate.sqlite")
    try:
        row = con.execute("SELECT figures FROM cycles ORDER BY cycle DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # being created
        return 0
    finally:
        con.close()
    return int(json.loads(row[0]).get("open_cases", 0)) if row else 0


def two_olts_scenario(tmp_path, only_fault, kind: str = "cpe_hang", rate: float = 0.0):
    sc = only_fault(kind, rate)  # default: no fault at all
    topo = sc.topology.model_dump()
    topo["regions"][0]["olts"] = 2
    topo["pons_per_board"] = 1  # 2 OLTs × 1 PON × 32 ONUs: the usual 64 CPEs
    sc = sc.with_overrides(topology=topo)
    path = tmp_path / f"two_olts_{kind}.yaml"
    path.write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
    return path


def forward_second_olt(net: Network) -> tuple[UdpForwarder, str, set[str]]:
    """Point the inventory's second OLT at a UDP forwarder; its id and its ONUs."""
    import pandas as pd

    inv_path = net.site.with_name("site.olts.yaml")
    inv = yaml.safe_load(inv_path.read_text())
    olts = sorted(inv["olts"], key=lambda o: o["olt_id"])
    assert len(olts) == 2
    silent = olts[1]
    fwd = UdpForwarder(int(silent["port"]))
    silent.update(host="127.0.0.1", port=fwd.port, timeout_s=0.5, retries=0)
    inv_path.write_text(yaml.safe_dump(inv))
    subs = pd.read_csv(net.site.with_name("site.subscribers.csv"))
    return fwd, silent["olt_id"], set(subs.loc[subs["olt_id"] == silent["olt_id"], "onu_id"])


def stop_operate(proc: subprocess.Popen) -> str:
    """SIGTERM to a :func:`start_operate` process (it ends its cycle and exits), wait for it
    and return its stderr (``proc.returncode`` tells how it exited)."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=60)[1]
