"""``make lab``: JupyterLab in the environment, serving the notebooks with the project's kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from local_servers import serve

ROOT = Path(__file__).resolve().parent.parent


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
    token = "guardian-test"
    env = os.environ | {"JUPYTER_PATH": str(tmp_path / "share" / "jupyter")}

    def cmd(port: int) -> list[str]:
        argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
                "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={ROOT}"]  # fmt: skip
        if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses without this
            argv.append("--allow-root")
        return argv

    auth = {"Authorization": f"token {token}"}
    with serve(cmd, tmp_path / "lab.log", env=env) as lab:
        base = lab.url
        answer = lab.wait_until_answers("/api/kernelspecs", headers=auth, timeout_s=60, every_s=0.5)
        specs = json.loads(answer.body)
        argv = specs["kernelspecs"]["python3"]["spec"]["argv"]
        assert Path(argv[0]).resolve() == Path(sys.executable).resolve()
        req = urllib.request.Request(f"{base}/api/contents/notebooks", headers=auth)
        with urllib.request.urlopen(req, timeout=10) as r:
            names = {c["name"] for c in json.load(r)["content"]}
        assert {p.name for p in (ROOT / "notebooks").glob("*.ipynb")} <= names
        with urllib.request.urlopen(f"{base}/lab", timeout=10) as r:
            assert r.status == 200 or r.geturl().startswith(base)
