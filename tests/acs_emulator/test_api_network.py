"""``guardian api`` beside ``guardian operate --mode approve`` on the twin's network.

Real processes on loopback: the twin (``tiny`` scenario over a week at 600×, only CPE
hangs, seed 4), operate in approve mode, and ``guardian api --site --state`` under uvicorn.
Operate runs until it has proposed a reboot; a viewer lists the proposed reboots and is
refused the approval; an operator approves one through HTTP; operate's next run sends
exactly that reboot in its first cycle, and the ACS's truth shows it. The API keeps
answering while operate writes its warehouse.

Nothing here races the twin's clock: the twin serves until the test stops it (a week of
network time, 17 min of wall clock at 600×, is longer than any run of the test), and the
test waits on what operate committed (a proposal, its cycles), not on wall-clock time, so
a loaded machine makes it slower, not red.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from cli_runner import run_guardian
from local_servers import free_port, wait_until_answers

GUARDIAN = Path(sys.executable).with_name("guardian")
#: Bound of every wait on a process (generous: a loaded machine is slow, not broken). [s]
WAIT_S = 240.0


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)


def _start(procs: list, log: Path, *args: str) -> subprocess.Popen:
    """A ``guardian`` process whose output goes to ``log`` (a pipe nobody reads while it
    runs would fill up and block it)."""
    with log.open("w") as out:
        proc = subprocess.Popen([str(GUARDIAN), *args], stdout=out, stderr=subprocess.STDOUT)
    procs.append(proc)
    return proc


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


def _until(done: Callable[[], bool], proc: subprocess.Popen, log: Path, what: str) -> None:
    """Wait (bounded by :data:`WAIT_S`) until ``done()``; fail if ``proc`` ends first."""
    end = time.monotonic() + WAIT_S
    while not done():
        assert proc.poll() is None, f"{what}: the process ended ({proc.returncode})\n{_tail(log)}"
        assert time.monotonic() < end, f"{what}: not within {WAIT_S:g} s\n{_tail(log)}"
        time.sleep(0.2)


def _stop(proc: subprocess.Popen, log: Path) -> None:
    """SIGTERM: operate ends its cycle, the twin writes its truth; then they exit 0."""
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=WAIT_S)
    assert proc.returncode == 0, _tail(log)


def _twin(tmp_path: Path, only_fault, procs: list) -> tuple[subprocess.Popen, Path, Path, Path]:
    # a week: the twin outlives the test however slow the machine (it is stopped at the end)
    sc = only_fault("cpe_hang", 60.0, fault_params={"cpe_hang_reboot_fix_prob": 1.0}, days=7)
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
    site, truth, log = (
        tmp_path / "net" / "site.yaml",
        tmp_path / "truth.json",
        tmp_path / "twin.log",
    )
    proc = _start(procs, log, "twin", "--scenario", str(scenario), "--seed", "4", "--speed",
                  "600", "--serve-network", "--site-out", str(site), "--truth-out", str(truth))  # fmt: skip
    _until(site.exists, proc, log, "twin wrote no site file")
    return proc, site, truth, log


def _query(state: Path, sql: str) -> list[dict]:
    """Rows of operate's state store (read-only; operate may be writing it)."""
    db = state / "operate.sqlite"
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # operate is creating the store
            return []
        raise
    finally:
        con.close()


def _journal(state: Path) -> list[dict]:
    return _query(state, "SELECT * FROM journal ORDER BY created_at")


def _last_cycle(state: Path) -> int:
    """Number of operate's last committed cycle (0 before the first). [-]"""
    rows = _query(state, "SELECT max(cycle) AS n FROM cycles")
    return int(rows[0]["n"] or 0) if rows else 0


def test_an_operator_approves_a_reboot_through_the_api_and_operate_sends_it(
    tmp_path, only_fault, procs
):
    twin, site, truth_path, twin_log = _twin(tmp_path, only_fault, procs)
    state, users = tmp_path / "state", tmp_path / "users.json"
    # operate (approve mode) runs until it has proposed a reboot, six cycles at least
    op_log = tmp_path / "operate-1.log"
    first = _start(procs, op_log, "operate", "--site", str(site), "--state", str(state),
                   "--mode", "approve")  # fmt: skip
    _until(
        lambda: _last_cycle(state) >= 6
        and bool(_query(state, "SELECT id FROM approvals WHERE action = 'reboot'")),
        first, op_log, "operate proposed no reboot",
    )  # fmt: skip
    _stop(first, op_log)
    last = _last_cycle(state)

    # The users file is written in this process (a child process of ``guardian users``
    # would only add its start-up: the API reads the file, that is what is tested).
    tokens = {}
    for name, role in (("noc-viewer", "viewer"), ("noc-operator", "operator")):
        run_guardian("users", "add", name, "--role", role, "--users", str(users), "--no-password")
        r = run_guardian("users", "token", name, "--users", str(users), "--expires-days", "1")
        tokens[role] = {"Authorization": f"Bearer {r.stdout.strip()}"}
    port = free_port()
    api_log = tmp_path / "api.log"
    api = _start(procs, api_log, "api", "--site", str(site), "--state", str(state), "--users",
                 str(users), "--port", str(port))  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    wait_until_answers(base + "/health", proc=api, log=api_log, timeout_s=WAIT_S)
    with httpx.Client(base_url=base, timeout=30) as http:
        listed = http.get("/decisions", params={"state": "proposed"}, headers=tokens["viewer"])
        assert listed.status_code == 200, listed.text
        reboots = [d for d in listed.json()["items"] if d["action"] == "reboot"]
        assert reboots, listed.json()
        chosen = reboots[0]
        assert chosen["region"] is not None  # from the site's subscribers file
        url = f"/decisions/{chosen['id']}/approve"
        denied = http.post(url, json={"comment": "try"}, headers=tokens["viewer"])
        assert denied.status_code == 403 and denied.json()["permission"] == "decide"
        ok = http.post(url, json={"comment": "hung CPE"}, headers=tokens["operator"])
        assert ok.status_code == 200 and ok.json()["decided_by"] == "api:noc-operator"
        for other in listed.json()["items"]:
            if other["id"] != chosen["id"]:
                r = http.post(f"/decisions/{other['id']}/reject", json={"comment": "not now"},
                              headers=tokens["operator"])  # fmt: skip
                assert r.status_code == 200, r.text

        # operate runs again (approve mode) while the API keeps being read
        op_log = tmp_path / "operate-2.log"
        op = _start(procs, op_log, "operate", "--site", str(site), "--state", str(state),
                    "--mode", "approve", "--for-ticks", "4")  # fmt: skip
        codes = []
        end = time.monotonic() + WAIT_S
        while op.poll() is None and time.monotonic() < end:
            for path in ("/onus", "/incidents/active"):
                codes.append(http.get(path, params={"limit": 5},
                                      headers=tokens["viewer"]).status_code)  # fmt: skip
            time.sleep(0.05)
        op.wait(timeout=WAIT_S)
        assert op.returncode == 0, _tail(op_log)
        assert codes and set(codes) <= {200, 503}, codes
        assert codes.count(200) > len(codes) // 2, codes
        after = http.get("/decisions", params={"state": "executed"}, headers=tokens["viewer"])
        assert [d["id"] for d in after.json()["items"]] == [chosen["id"]], _tail(op_log)

    api.send_signal(signal.SIGTERM)  # uvicorn shuts down, then re-raises the signal
    api.wait(timeout=WAIT_S)
    _stop(twin, twin_log)
    truth = json.loads(truth_path.read_text())
    journal = _journal(state)
    assert [(j["action"], j["target"]) for j in journal] == [("reboot", chosen["target"])]
    assert journal[0]["cycle"] == last + 1  # sent in the first cycle after the approval
    assert truth["cpe_reboot_rpcs"] == [chosen["target"]]
    trail = [json.loads(x) for x in (state / "api-audit.jsonl").read_text().splitlines()]
    assert ("noc-operator", "approved", chosen["id"], 200) in {
        (t["user"], t["action"], t["target"], t["status"]) for t in trail
    }
