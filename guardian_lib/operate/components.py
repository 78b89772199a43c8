"""The outside systems and the model of one site, built from its site file.

``guardian operate`` (:class:`~guardian_lib.operate.service.Operator`) and ``guardian
decide`` build the same pieces from a :class:`~guardian_lib.operate.site.SiteConfig`:
the ACS's north-bound client, the field service's client, the registered model and the
scorer that runs it. Each is None where the site file leaves it out.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import pandas as pd

from guardian_lib.operate.field import DropFolderFieldService, WebhookFieldService
from guardian_lib.operate.metrics import log_json
from guardian_lib.operate.site import SiteConfig, read_secret

__all__ = [
    "EXPLAIN_SYMPTOMATIC", "EXPLAIN_TOP_RISKS", "field_service", "load_model", "model_scorer",
    "nbi_client", "restore_guard",
]  # fmt: skip

#: Rows explained with SHAP each cycle: the highest 24 h risks without a symptom, and
#: symptomatic rows (cause reasons). About 1 ms a row with 150 trees, so the bounds keep
#: a 50k-ONU cycle under a second even in a massive outage; the policy acts on far fewer.
EXPLAIN_TOP_RISKS = 100
EXPLAIN_SYMPTOMATIC = 300


def model_scorer(bundle: Any, tick_s: float) -> Any:
    """The scorer ``operate`` runs for a registered bundle: 2 days of window (7-day
    baselines over what is held), SHAP reasons for the top risks and symptoms.

    Parameters
    ----------
    bundle : ModelBundle
    tick_s : float
        Polling interval. [s]
    """
    from guardian_lib.models.online import ModelScorer

    return ModelScorer(
        bundle,
        window_ticks=max(2, int(2 * 86400 / tick_s)),
        explain=True,
        max_risk_explained=EXPLAIN_TOP_RISKS,
        max_explained=EXPLAIN_SYMPTOMATIC,
    )


def load_model(alias: str | None) -> Any:
    """The bundle the registry's ``alias`` points to, or None (no alias, no registry, no
    such model: the site runs the rule scorer; the reason is logged)."""
    if not alias:
        return None
    try:
        from guardian_lib.models.registry import load_bundle

        bundle = load_bundle(alias)
    except Exception as exc:  # noqa: BLE001 - no registry / no model: the rule scorer
        log_json("model", alias=alias, loaded=False, fallback="rules",
                 reason=str(exc).splitlines()[0][:300])  # fmt: skip
        return None
    log_json("model", alias=alias, loaded=True, model_version=bundle.model_version)
    return bundle


def nbi_client(site: SiteConfig) -> Any:
    """The ACS's north-bound client of ``site.nbi`` (its token from the environment or
    the secret file), or None without an ``nbi:`` section."""
    nbi = site.nbi
    if nbi is None:
        return None
    from guardian_lib.acs import NbiClient

    base = site.path.parent if site.path else None
    token = read_secret(nbi, base, "nbi")
    return NbiClient(
        nbi.url, token=token or "", timeout_s=nbi.timeout_s,
        task_timeout_ms=nbi.task_timeout_ms, retries=nbi.retries, backoff_s=nbi.backoff_s,
        max_backoff_s=nbi.max_backoff_s,
    )  # fmt: skip


def field_service(site: SiteConfig, store: Any, context: Any) -> Any:
    """The field service's client of ``site.field_service`` (a webhook or a drop folder),
    or None when the site orders no visits.

    Parameters
    ----------
    site : SiteConfig
    store : StateStore
        Where the client journals its orders.
    context : ActionContext
        The cycle and site the orders are keyed by.
    """
    fs = site.field_service
    if fs.kind == "webhook":
        base = site.path.parent if site.path else None
        return WebhookFieldService(
            fs.url or "", store, context, token=read_secret(fs, base, "field_service"),
            timeout_s=fs.timeout_s, retries=fs.retries, backoff_s=fs.backoff_s,
        )  # fmt: skip
    if fs.kind == "drop_folder":
        return DropFolderFieldService(site.resolve(fs.folder), store, context)
    return None


def restore_guard(guard: Any, store: Any, committed: int) -> None:
    """Teach ``guard`` the reboots journalled after cycle ``committed``.

    A crash mid-cycle (or no restored loop state, ``committed`` 0 or below) leaves
    reboots in the journal that the restored safety guard does not know: they count
    against its cooldowns and caps all the same.

    Parameters
    ----------
    guard : SafetyGuard
    store : StateStore
        The site's state store (its action journal).
    committed : int
        Last cycle whose guard state was restored. [-]
    """
    for j in store.journal("reboot"):
        if int(j["cycle"]) <= committed:
            continue  # already in the restored guard
        t = pd.Timestamp(j["ts"]).value / 1e9
        guard._by_target.setdefault(j["target"], []).append(t)
        guard._by_pon.setdefault(str(j["pon_id"]), deque()).append(t)
        guard._fleet.append(t)
