"""``guardian api`` beside ``guardian operate --mode approve`` on the twin's network.

Real processes on loopback: the twin (``tiny`` scenario at 600×, only CPE hangs, seed 4),
operate in approve mode, and ``guardian api --site --state`` under uvicorn. A viewer lists
the proposed reboots and is refused the approval; an operator approves one through HTTP;
operate's next run sends exactly that reboot, and the ACS's truth shows it. The API keeps
answering while operate writes its warehouse.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from local_servers import free_port, wait_until_answers

GUARDIAN = Path(sys.executable).with_name("guardian")


def _guardian(*args: str, timeout: float = 90, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(GUARDIAN), *args], capture_output=True, text=True,
                          timeout=timeout, **kw)  # fmt: skip


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
            p.communicate(timeout=30)


def _twin(tmp_path: Path, only_fault, procs: list) -> tuple[subprocess.Popen, Path, Path]:
    sc = only_fault("cpe_hang", 60.0, fault_params={"cpe_hang_reboot_fix_prob": 1.0})
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
    site, truth = tmp_path / "net" / "site.yaml", tmp_path / "truth.json"
    proc = subprocess.Popen(
        [str(GUARDIAN), "twin", "--scenario", str(scenario), "--seed", "4", "--speed", "600",
         "--serve-network", "--site-out", str(site), "--truth-out", str(truth), "--hours", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    procs.append(proc)
    end = time.monotonic() + 60
    while not site.exists():
        assert proc.poll() is None and time.monotonic() < end, "twin wrote no site file"
        time.sleep(0.1)
    return proc, site, truth


def _journal(state: Path) -> list[dict]:
    con = sqlite3.connect(state / "operate.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM journal ORDER BY created_at")]
    finally:
        con.close()


def test_an_operator_approves_a_reboot_through_the_api_and_operate_sends_it(
    tmp_path, only_fault, procs
):
    twin, site, truth_path = _twin(tmp_path, only_fault, procs)
    state, users = tmp_path / "state", tmp_path / "users.json"
    first = _guardian("operate", "--site", str(site), "--state", str(state), "--mode", "approve",
                      "--for-ticks", "6")  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]

    tokens = {}
    for name, role in (("noc-viewer", "viewer"), ("noc-operator", "operator")):
        r = _guardian("users", "add", name, "--role", role, "--users", str(users), "--no-password")
        assert r.returncode == 0, r.stderr
        r = _guardian("users", "token", name, "--users", str(users), "--expires-days", "1")
        tokens[role] = {"Authorization": f"Bearer {r.stdout.strip()}"}
    port = free_port()
    api = subprocess.Popen(
        [str(GUARDIAN), "api", "--site", str(site), "--state", str(state), "--users", str(users),
         "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    procs.append(api)
    base = f"http://127.0.0.1:{port}/api/v1"
    wait_until_answers(base + "/health", proc=api, timeout_s=30)
    with httpx.Client(base_url=base, timeout=10) as http:
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
        op = subprocess.Popen(
            [str(GUARDIAN), "operate", "--site", str(site), "--state", str(state), "--mode",
             "approve", "--for-ticks", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        procs.append(op)
        codes = []
        end = time.monotonic() + 90
        while op.poll() is None and time.monotonic() < end:
            for path in ("/onus", "/incidents/active"):
                codes.append(http.get(path, params={"limit": 5},
                                      headers=tokens["viewer"]).status_code)  # fmt: skip
            time.sleep(0.05)
        _, err = op.communicate(timeout=60)
        assert op.returncode == 0, err[-2000:]
        assert codes and set(codes) <= {200, 503}, codes
        assert codes.count(200) > len(codes) // 2, codes
        after = http.get("/decisions", params={"state": "executed"}, headers=tokens["viewer"])
        assert [d["id"] for d in after.json()["items"]] == [chosen["id"]]

    api.send_signal(signal.SIGTERM)
    api.communicate(timeout=30)
    twin.send_signal(signal.SIGTERM)
    twin.communicate(timeout=60)
    truth = json.loads(truth_path.read_text())
    journal = _journal(state)
    assert [(j["action"], j["target"]) for j in journal] == [("reboot", chosen["target"])]
    assert truth["cpe_reboot_rpcs"] == [chosen["target"]]
    trail = [json.loads(x) for x in (state / "api-audit.jsonl").read_text().splitlines()]
    assert ("noc-operator", "approved", chosen["id"], 200) in {
        (t["user"], t["action"], t["target"], t["status"]) for t in trail
    }
