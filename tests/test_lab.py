"""``make lab``: JupyterLab in the environment, serving the notebooks with the project's kernel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_runs_jupyterlab_on_the_notebooks_with_the_venv_kernel():
    # Under `make test` this make is a sub-make: without these it prints "Entering directory".
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", "lab"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    ).stdout
    assert "ipykernel install --sys-prefix --name python3" in out
    assert "jupyter lab --ServerApp.ip=127.0.0.1" in out and out.rstrip().endswith("notebooks/")


def test_jupyterlab_serves_the_notebooks_and_the_project_kernel(tmp_path):
    # What `make lab` does, with the kernel spec written to a temporary prefix.
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp_path), "--name",
         "python3"], check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port, token = _free_port(), "guardian-test"
    env = os.environ | {"JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={ROOT}"]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses without this
        cmd.append("--allow-root")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                req = urllib.request.Request(
                    f"{base}/api/kernelspecs", headers={"Authorization": f"token {token}"}
                )
                with urllib.request.urlopen(req, timeout=5) as r:
                    specs = json.load(r)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "jupyter lab did not start in 60 s"
                time.sleep(0.5)
        argv = specs["kernelspecs"]["python3"]["spec"]["argv"]
        assert Path(argv[0]).resolve() == Path(sys.executable).resolve()
        req = urllib.request.Request(
            f"{base}/api/contents/notebooks", headers={"Authorization": f"token {token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            names = {c["name"] for c in json.load(r)["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
        with urllib.request.urlopen(f"{base}/lab", timeout=10) as r:
            assert r.status == 200 or r.geturl().startswith(base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
