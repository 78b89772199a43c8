"""Firmware campaigns through the NBI: target by model or tag, canaries first, batches,
automatic rollback when canaries (or a batch) fail.

The campaign does what it is asked; whether a campaign may run at all (maintenance
windows, customer notice) is the decision engine's business. Guards that belong to
the campaign itself: it never targets "all devices" (a model or a tag is required and
an empty selection raises), and every download carries an idempotency key derived
from the campaign name and device, so re-running a campaign never installs twice.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from guardian_lib.acs import tasks as T
from guardian_lib.acs.nbi import AcsError, NbiClient, _value_at

__all__ = ["FirmwareCampaign", "CampaignReport", "split_canaries", "CampaignError"]


class CampaignError(AcsError, ValueError):
    """A campaign is mis-specified (names the field and what arrived)."""


def split_canaries(
    device_ids: list[str], canary_share: float, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Pick canaries (at least one) reproducibly; returns ``(canaries, rest)``.

    Parameters
    ----------
    device_ids : list of str
        Targets.
    canary_share : float
        Share of targets upgraded first, in (0, 1]. [-]
    seed : int
        Seed of the pick.

    Examples
    --------
    >>> c, r = split_canaries(["a", "b", "c", "d"], 0.25, seed=1)
    >>> len(c), len(r), sorted(c + r)
    (1, 3, ['a', 'b', 'c', 'd'])
    """
    if not 0 < canary_share <= 1:
        raise CampaignError(f"canary_share: expected a share in (0, 1], got {canary_share}")
    ids = sorted(device_ids)
    n = max(1, math.ceil(canary_share * len(ids)))
    order = np.random.default_rng(seed).permutation(len(ids))
    canaries = sorted(ids[i] for i in order[:n])
    return canaries, [d for d in ids if d not in set(canaries)]


@dataclass
class CampaignReport:
    """Outcome of a campaign: ``status`` is ``done``, ``rolled_back`` or ``nothing_to_do``."""

    name: str
    status: str
    target_version: str
    canaries: list[str] = field(default_factory=list)
    upgraded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    rolled_back: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass
class FirmwareCampaign:
    """A firmware campaign.

    Parameters
    ----------
    client : NbiClient
        NBI client (its audit hook records every call).
    name : str
        Campaign name (part of every idempotency key and tag).
    file_name : str
        Firmware image known to the ACS's file server.
    target_version : str
        ``SoftwareVersion`` expected after the upgrade.
    product_class : str, optional
        Target devices of this product class (model).
    tag : str, optional
        Target devices carrying this tag. One of ``product_class``/``tag`` is required.
    canary_share : float, default 0.05
        Share upgraded first. [-]
    max_failure_share : float, default 0.0
        Failures tolerated among canaries / in a batch before stopping. [-]
    batch_size : int, default 50
        Devices per batch after the canaries. [-]
    rollback_file : str, optional
        Image installed back on devices of a failed stage that did change version.
    healthy : callable, optional
        ``healthy(device_doc) -> bool`` after upgrade; default: version equals target.
    not_before : datetime, optional
        Scheduled start (UTC); :meth:`run` waits until then.
    wait_s : float, default 600
        How long a stage may take. [s]
    poll_s : float, default 5
        Polling interval of the ACS. [s]
    seed : int, default 0
        Seed of the canary pick.
    """

    client: NbiClient
    name: str
    file_name: str
    target_version: str
    product_class: str | None = None
    tag: str | None = None
    canary_share: float = 0.05
    max_failure_share: float = 0.0
    batch_size: int = 50
    rollback_file: str | None = None
    healthy: Callable[[dict[str, Any]], bool] | None = None
    not_before: datetime | None = None
    wait_s: float = 600.0
    poll_s: float = 5.0
    seed: int = 0
    sleep: Callable[[float], None] = time.sleep

    def targets(self) -> tuple[list[str], list[str]]:
        """``(to_upgrade, already_on_target)`` device ids.

        Raises
        ------
        CampaignError
            If neither a product class nor a tag is given, or nothing matches.
        """
        if not self.product_class and not self.tag:
            raise CampaignError(
                f"campaign {self.name!r}: expected product_class or tag, got neither "
                "(a campaign never targets every device)"
            )
        query: dict[str, Any] = {}
        if self.product_class:
            query["_deviceId._ProductClass"] = self.product_class
        if self.tag:
            query["_tags"] = self.tag
        docs = self.client.devices(
            query,
            [
                "_id",
                "Device.DeviceInfo.SoftwareVersion",
                "InternetGatewayDevice.DeviceInfo.SoftwareVersion",
            ],
        )
        if not docs:
            raise CampaignError(f"campaign {self.name!r}: no device matches {query}")
        todo, done = [], []
        for d in docs:
            (done if self._version(d) == self.target_version else todo).append(d["_id"])
        return todo, done

    @staticmethod
    def _version(doc: dict[str, Any]) -> Any:
        return _value_at(doc, T.firmware_path(T.data_model_root(doc)))

    def _ok(self, doc: dict[str, Any]) -> bool:
        if self.healthy is not None:
            return bool(self.healthy(doc))
        return self._version(doc) == self.target_version

    def _stage(self, ids: list[str], file_name: str, step: str) -> tuple[list[str], list[str]]:
        """Install ``file_name`` on ``ids``; returns ``(ok, failed)``."""
        task_ids: dict[str, str | None] = {}
        for did in ids:
            res = self.client.download(
                did, file_name, idempotency_key=f"campaign:{self.name}:{step}:{did}"
            )
            task_ids[did] = res.task_id
        deadline = time.monotonic() + self.wait_s
        ok: list[str] = []
        failed: list[str] = []
        pending = list(ids)
        while pending:
            docs = {d["_id"]: d for d in self.client.devices({"_id": {"$in": pending}})}
            faults = {
                f["device"]
                for f in self.client.faults({"device": {"$in": pending}})
                if task_ids.get(f["device"]) and f["_id"].endswith(f"task_{task_ids[f['device']]}")
            }
            for did in list(pending):
                doc = docs.get(did)
                installed = doc is not None and (
                    self._version(doc) == self.target_version
                    if file_name == self.file_name
                    else self._version(doc) != self.target_version
                )
                if did in faults:
                    failed.append(did)
                    pending.remove(did)
                elif installed:
                    (ok if file_name != self.file_name or self._ok(doc) else failed).append(did)
                    pending.remove(did)
            if pending and time.monotonic() > deadline:
                failed += pending
                break
            if pending:
                self.sleep(self.poll_s)
        return ok, failed

    def run(self) -> CampaignReport:
        """Run the campaign: canaries, then batches; roll back a failing stage."""
        if self.not_before is not None:
            wait = (self.not_before - datetime.now(UTC)).total_seconds()
            if wait > 0:
                self.sleep(wait)
        todo, done = self.targets()
        report = CampaignReport(self.name, "done", self.target_version, skipped=done)
        if not todo:
            report.status = "nothing_to_do"
            return report
        canaries, rest = split_canaries(todo, self.canary_share, self.seed)
        report.canaries = canaries
        stages = [canaries] + [
            rest[i : i + self.batch_size] for i in range(0, len(rest), self.batch_size)
        ]
        for n, stage in enumerate(stages):
            ok, failed = self._stage(stage, self.file_name, f"stage{n}")
            report.upgraded += ok
            report.failed += failed
            if failed and len(failed) / len(stage) > self.max_failure_share:
                report.status = "rolled_back"
                what = "canaries" if n == 0 else f"batch {n}"
                report.reason = (
                    f"{len(failed)}/{len(stage)} {what} failed (tolerated share "
                    f"{self.max_failure_share}); campaign stopped"
                )
                self._rollback(stage, report)
                return report
        return report

    def _rollback(self, stage: list[str], report: CampaignReport) -> None:
        if not self.rollback_file:
            return
        docs = {d["_id"]: d for d in self.client.devices({"_id": {"$in": stage}})}
        changed = [d for d in stage if self._version(docs.get(d, {})) == self.target_version]
        if changed:
            back, _ = self._stage(changed, self.rollback_file, "rollback")
            report.rolled_back = back
            report.upgraded = [d for d in report.upgraded if d not in set(back)]
