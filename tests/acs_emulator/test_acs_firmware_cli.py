"""``guardian acs firmware upload|list|campaign`` against emulated CPEs."""

from __future__ import annotations

import hashlib
import json

import typer
from typer.testing import CliRunner

from acs_emulator.cwmp.cli import register
from acs_emulator.cwmp.testing import BackgroundLab


def test_firmware_upload_list_and_campaign_from_the_cli(tmp_path, monkeypatch):
    monkeypatch.delenv("GUARDIAN_NBI_TOKEN", raising=False)
    app = typer.Typer()
    register(app)
    image = tmp_path / "V2.0.0.bin"
    image.write_bytes(bytes(range(256)) * 40)
    lab = BackgroundLab(3, seed=31)
    try:
        nbi = ["--nbi-url", lab.svc.nbi_url]
        res = CliRunner().invoke(
            app,
            [
                "acs",
                "firmware",
                "upload",
                str(image),
                "--version",
                "V2.0.0",
                "--product-class",
                "HG8245Q2",
                *nbi,
            ],
        )
        assert res.exit_code == 0, res.output
        up = json.loads(res.output)
        assert up["sha256"] == hashlib.sha256(image.read_bytes()).hexdigest()
        res = CliRunner().invoke(app, ["acs", "firmware", "list", *nbi])
        (row,) = [json.loads(line) for line in res.output.splitlines()]
        assert row["file"] == "V2.0.0.bin" and row["bytes"] == 10240
        res = CliRunner().invoke(
            app,
            [
                "acs",
                "firmware",
                "campaign",
                "--name",
                "fw2",
                "--file",
                "V2.0.0.bin",
                "--target-version",
                "V2.0.0",
                "--product-class",
                "HG8245Q2",
                "--canary-share",
                "0.34",
                "--batch-size",
                "2",
                "--wait",
                "20",
                "--poll",
                "0.05",
                *nbi,
            ],
        )
        assert res.exit_code == 0, res.output
        report = json.loads(res.output)
        assert report["status"] == "done" and len(report["upgraded"]) == 3
        # Each CPE fetched the hosted image and checked its size and SHA-256.
        assert all(a.downloads_verified == 1 for a in lab.fleet.agents.values())
        res = CliRunner().invoke(
            app,
            [
                "acs",
                "firmware",
                "campaign",
                "--name",
                "x",
                "--file",
                "nope.bin",
                "--target-version",
                "V3",
                "--product-class",
                "HG8245Q2",
                *nbi,
            ],
        )
        assert res.exit_code == 2 and "not on the ACS" in res.output
    finally:
        lab.close()
