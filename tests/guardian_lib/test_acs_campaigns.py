"""Firmware campaigns against emulated CPEs: canaries, batches, rollback, guards."""

from __future__ import annotations

import pytest

from acs_emulator.cwmp.testing import BackgroundLab
from guardian_lib.acs import NbiClient
from guardian_lib.acs.campaigns import CampaignError, FirmwareCampaign, split_canaries


@pytest.fixture
def lab():
    lab = BackgroundLab(6, seed=21)
    yield lab
    lab.close()


def versions(client: NbiClient) -> dict[str, str]:
    docs = client.devices(projection=["Device.DeviceInfo.SoftwareVersion"])
    return {d["_id"]: d["Device"]["DeviceInfo"]["SoftwareVersion"]["_value"] for d in docs}


def campaign(client, **kw) -> FirmwareCampaign:
    base = dict(
        client=client,
        name="fw2",
        file_name="V2.0.0.bin",
        target_version="V2.0.0",
        product_class="HG8245Q2",
        canary_share=0.34,
        batch_size=3,
        wait_s=15,
        poll_s=0.05,
    )
    base.update(kw)
    return FirmwareCampaign(**base)


def test_campaign_upgrades_canaries_then_batches_and_is_idempotent(lab):
    audit = []
    with NbiClient(lab.svc.nbi_url, token="", audit=audit.append, task_timeout_ms=10000) as client:
        report = campaign(client).run()
        assert report.status == "done" and len(report.canaries) == 3
        assert sorted(report.upgraded) == sorted(lab.fleet.agents)
        assert set(versions(client).values()) == {"V2.0.0"}
        again = campaign(client).run()
        assert again.status == "nothing_to_do" and len(again.skipped) == 6
    downloads = [a for a in audit if a.get("task") == "download" and a.get("method") == "POST"]
    assert len({a["device_id"] for a in downloads}) == 6 and len(downloads) == 6


def test_failing_canaries_stop_the_campaign_and_roll_back(lab):
    with NbiClient(lab.svc.nbi_url, token="", task_timeout_ms=10000) as client:
        # Canaries upgrade but fail the health check → rolled back, the rest untouched.
        report = campaign(client, healthy=lambda doc: False, rollback_file="V1.0.0.bin").run()
        assert report.status == "rolled_back" and "canaries" in report.reason
        assert sorted(report.rolled_back) == report.canaries and report.upgraded == []
        assert set(versions(client).values()) == {"V1.0.0"}
        # A broken image faults on the canaries: nothing else is touched.
        bad = campaign(client, name="bad", file_name="V3-bad.bin", target_version="V3").run()
        assert bad.status == "rolled_back" and sorted(bad.failed) == bad.canaries
        assert set(versions(client).values()) == {"V1.0.0"}


def test_campaign_guards():
    client = NbiClient("http://127.0.0.1:9", retries=0)
    with pytest.raises(CampaignError, match="never targets every device"):
        FirmwareCampaign(client, "x", "f.bin", "V2").targets()
    with pytest.raises(CampaignError, match="canary_share"):
        split_canaries(["a"], 0.0)
    c1, _ = split_canaries([f"d{i}" for i in range(20)], 0.1, seed=3)
    c2, _ = split_canaries([f"d{i}" for i in reversed(range(20))], 0.1, seed=3)
    assert c1 == c2 and len(c1) == 2


def test_empty_selection_raises(lab):
    with NbiClient(lab.svc.nbi_url, token="", task_timeout_ms=10000) as client:
        with pytest.raises(CampaignError, match="no device matches"):
            campaign(client, product_class="NOPE").targets()


def test_scheduled_campaign_waits_for_its_window(lab):
    from datetime import UTC, datetime, timedelta

    waits: list[float] = []

    def fake_sleep(s: float) -> None:
        waits.append(s)

    with NbiClient(lab.svc.nbi_url, token="", task_timeout_ms=10000) as client:
        start = datetime.now(UTC) + timedelta(hours=2)
        c = campaign(client, not_before=start, sleep=fake_sleep, product_class="NOPE")
        with pytest.raises(CampaignError):  # after waiting, finds nothing to do
            c.run()
    assert 7100 < waits[0] <= 7200
