"""Labels from the autopilot's own actions: did a remote reboot fix the customer?

The audit trail (:mod:`guardian_lib.audit`) records every reboot the autopilot sent. What
happened next is in the telemetry: a reboot *fixed it* when the ONU showed a symptom in
the hour before and none from :data:`BOOT_GRACE_MIN` to :data:`FIXED_FOR_H` after (with
rows there to prove it). A fixed reboot is a CUSTOMER_PREMISES fault interval (a hung
CPE) from the start of the symptomatic episode to the end of the grace period; a reboot
that did not fix it gives no label (the fault was something else) and is counted. Visits
the autopilot scheduled come back as service orders with a closure code, and are labelled
by the label map like every other ticket.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from guardian_lib.features import symptomatic
from guardian_lib.schema import US_PER_S

__all__ = ["BOOT_GRACE_MIN", "FIXED_FOR_H", "reboot_faults", "load_reboots"]

#: Time a CPE takes to boot and reconnect after a reboot; symptoms in it do not count. [min]
BOOT_GRACE_MIN = 30
#: How long after the grace period the ONU must stay free of symptoms. [h]
FIXED_FOR_H = 3


def load_reboots(audit: Path | str) -> pd.DataFrame:
    """Reboots the autopilot executed (``ts``, ``onu_id``) from an audit DuckDB file.

    Blocked, simulated (``--mode simulate`` only writes what it would have done) and
    queued reboots (proposed in ``approve`` mode: the approved one is its own row) are
    left out, and so are reboots that failed to be sent: nothing happened to the CPE. A
    reboot sent but verified as ``failed`` (the service did not come back) stays: it
    happened, and did not fix the customer.
    """
    import duckdb

    con = duckdb.connect(str(audit), read_only=True)
    try:
        # A reboot's target is the CPE (the ACS's device id); the ONU is its decision's
        # subject — the features' key. An action without its decision keeps its target.
        df = con.execute(
            "SELECT a.started_at AS ts, COALESCE(d.subject, a.target) AS onu_id, a.status, "
            "a.result FROM actions a LEFT JOIN decisions d ON a.decision_id = d.decision_id "
            "WHERE a.action_type = 'reboot' "
            "AND a.status NOT IN ('blocked', 'simulated', 'queued') ORDER BY a.started_at"
        ).df()
    finally:
        con.close()
    sent = df["status"] != "failed"
    if (~sent).any():  # a failed verification says "verified": false; a failed send does not
        failed = df.loc[~sent, "result"].map(lambda v: _result(v).get("verified") is False)
        sent.loc[~sent] = failed.astype(bool)
    return df.loc[sent, ["ts", "onu_id"]].reset_index(drop=True)


def _result(v: object) -> dict:
    """An action row's ``result`` JSON as a dict ({} when absent or not an object)."""
    try:
        out = json.loads(v) if isinstance(v, str) else v
    except json.JSONDecodeError:
        return {}
    return out if isinstance(out, dict) else {}


def reboot_faults(reboots: pd.DataFrame, features: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Fault intervals of the reboots that fixed the customer, in the ground-truth fault table's columns.

    Parameters
    ----------
    reboots : pandas.DataFrame
        ``ts`` and ``onu_id`` of executed reboots.
    features : pandas.DataFrame
        ``ts``, ``onu_id`` and the columns :func:`guardian_lib.features.symptomatic` reads.

    Returns
    -------
    (pandas.DataFrame, dict)
        The intervals (``kind`` 'reboot', class CUSTOMER_PREMISES) and the counts
        ``{"fixed": …, "not_fixed": …, "no_symptom": …, "unknown": …}`` (unknown: no
        telemetry after the reboot to tell).
    """
    cols = ["fault_id", "kind", "cause_class", "start_at", "impact_start_at", "end_at",
            "affected_onus"]  # fmt: skip
    counts = {"fixed": 0, "not_fixed": 0, "no_symptom": 0, "unknown": 0}
    f_ts = features["ts"].to_numpy("datetime64[us]").astype(np.int64)
    f_sym = symptomatic(features)
    by_onu = (
        pd.Series(np.arange(len(features)))
        .groupby(features["onu_id"].astype(str).to_numpy())
        .indices
    )
    r_ts = pd.to_datetime(reboots["ts"], utc=True).to_numpy("datetime64[us]").astype(np.int64)
    grace, hold, gap = (
        BOOT_GRACE_MIN * 60 * US_PER_S,
        FIXED_FOR_H * 3600 * US_PER_S,
        3600 * US_PER_S,
    )
    rows = []
    for k, onu in enumerate(reboots["onu_id"].astype(str)):
        t = int(r_ts[k])
        idx = by_onu.get(onu)
        if idx is None:
            counts["unknown"] += 1
            continue
        ts, sym = f_ts[idx], f_sym[idx]
        before = np.sort(ts[(ts <= t) & (ts >= t - gap) & sym])
        if not len(before):
            counts["no_symptom"] += 1
            continue
        after = (ts > t + grace) & (ts <= t + grace + hold)
        if not after.any():
            counts["unknown"] += 1
            continue
        if sym[after].any():
            counts["not_fixed"] += 1
            continue
        counts["fixed"] += 1
        # Back to the start of the episode (symptomatic rows less than an hour apart).
        earlier = np.sort(ts[(ts <= t) & sym])
        j = len(earlier) - 1
        while j > 0 and earlier[j] - earlier[j - 1] < gap:
            j -= 1
        rows.append((f"reboot@{onu}@{t}", "reboot", "CUSTOMER_PREMISES", int(earlier[j]),
                     t + grace, [onu]))  # fmt: skip
    out = pd.DataFrame(rows, columns=["fault_id", "kind", "cause_class", "s", "e", "affected_onus"])
    start = pd.to_datetime(out.pop("s"), unit="us", utc=True)
    out["start_at"] = start
    out["impact_start_at"] = start
    out["end_at"] = pd.to_datetime(out.pop("e"), unit="us", utc=True)
    return out[cols], counts
