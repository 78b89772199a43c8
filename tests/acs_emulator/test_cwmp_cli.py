"""`guardian acs serve` and `guardian cpe run` as real processes on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from local_servers import free_port, wait_until_answers

GUARDIAN = Path(sys.executable).with_name("guardian")


def test_acs_serve_and_cpe_run_end_to_end(tmp_path):
    cwmp, nbi, cr = free_port(), free_port(), free_port()
    token = tmp_path / "token"
    token.write_text("tok-cli\n")
    db = tmp_path / "acs.sqlite"
    # Secrets reach both processes through the environment only.
    env = dict(os.environ, GUARDIAN_ACS_CPE_PASSWORD="fleet-pw", GUARDIAN_CPE_CR_PASSWORD="cr-pw")
    overrides = tmp_path / "auth.json"
    overrides.write_text('{"FFFFFF-OLD-1": "none"}')
    acs = subprocess.Popen(
        [
            str(GUARDIAN),
            "acs",
            "serve",
            "--cwmp-port",
            str(cwmp),
            "--nbi-port",
            str(nbi),
            "--file-port",
            str(free_port()),
            "--db",
            str(db),
            "--nbi-token-file",
            str(token),
            "--zero-touch",
            "--cpe-auth",
            "digest",
            "--auth-overrides",
            str(overrides),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cpe = None
    try:
        headers = {"Authorization": "Bearer tok-cli"}
        # any answer will do: the NBI wants a token
        answer = wait_until_answers(f"http://127.0.0.1:{nbi}/devices/", proc=acs,
                                    accept=lambda status: True)  # fmt: skip
        assert answer.status == 401
        cpe = subprocess.Popen(
            [
                str(GUARDIAN),
                "cpe",
                "run",
                "--acs-url",
                f"http://127.0.0.1:{cwmp}/",
                "--count",
                "4",
                "--cr-port",
                str(cr),
                "--spread",
                "0.5",
                "--duration",
                "120",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 90
        docs: list = []
        while time.monotonic() < deadline and len(docs) < 4:
            docs = httpx.get(f"http://127.0.0.1:{nbi}/devices/", headers=headers).json()
            time.sleep(0.2)
        assert len(docs) == 4
        did = docs[0]["_id"]
        r = httpx.post(
            f"http://127.0.0.1:{nbi}/devices/{did}/tasks",
            params={"connection_request": "", "timeout": "5000"},
            json={"name": "getParameterValues", "parameterNames": ["Device.WiFi.SSID.1.SSID"]},
            headers=headers,
            timeout=30,
        )
        assert r.status_code == 200, r.reason_phrase
        q = {"_id": did}
        doc = httpx.get(
            f"http://127.0.0.1:{nbi}/devices/",
            headers=headers,
            params={"query": json.dumps(q), "projection": "Device.WiFi"},
        ).json()[0]
        # Zero-touch provisioning set the SSID from the serial on 0 BOOTSTRAP.
        assert doc["Device"]["WiFi"]["SSID"]["1"]["SSID"]["_value"].startswith("NET_GDN")
    finally:
        for p in (cpe, acs):
            if p is not None:
                p.send_signal(signal.SIGINT)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
    assert db.exists()
