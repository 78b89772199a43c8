"""Hardware failures that struck an ONU without power: which of their rows can be seen.

An ONU that dies while its customer's power (or the area's) is off sends nothing: it went
dark with a dying gasp and, when the power comes back, stays dark without a new alarm.
For each ingested simulated run this benchmark finds every such failure in the ground
truth (a ``hardware_failure`` whose impact began while a ``customer_power_off`` or
``power_outage`` covered its ONU) and splits its EQUIPMENT_FAIL rows (``build_labels``
on the model's row grid) into

* ``rows_power_off``: the power was still off (the dead ONU does not hurt the customer
  yet; the power cut does);
* ``rows_power_back``: the power had come back, of which ``rows_after_call`` follow the
  customer's first call since then (the only new evidence: telemetry and events show
  nothing when the power returns);

and, with ``--alias``, how many of each the registered model got wrong. It also prints
the base rate a classifier faces on the same run: every customer power-off spell (other
ONUs), the share whose customer called while dark, and their rows dark after such a call
or more than 24 h after the dying gasp; and the share of ONU-time without power (the chance
that a hardware failure, drawn independently of power cuts, strikes an unpowered ONU).
One JSON line per run::

    GUARDIAN_DATA_DIR=/tmp/unpowered/data nice -n 10 .venv/bin/python \\
        benchmarks/unpowered_failures.py /tmp/unpowered/runs/unseen_2x64_s701 \\
        /tmp/unpowered/runs/unseen_2x64_s702 --alias mixture

Evaluation only: the faults are the simulator's truth; the model is not retrained.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "POWER_KINDS", "masked_failures", "split_rows", "power_off_calls", "unpowered_share", "main",
]  # fmt: skip

#: Fault kinds that take an ONU's power (its customer's own, or an area's).
POWER_KINDS = ("customer_power_off", "power_outage")
_DAY = pd.Timedelta(hours=24)


def _exploded(truth: pd.DataFrame) -> pd.DataFrame:
    x = truth.explode("affected_onus").rename(columns={"affected_onus": "onu_id"})
    x = x.dropna(subset=["onu_id"])
    x["onu_id"] = x["onu_id"].astype(str)
    return x


def masked_failures(truth: pd.DataFrame) -> pd.DataFrame:
    """Hardware failures whose impact began while their ONU had no power.

    Parameters
    ----------
    truth : pandas.DataFrame
        ``faults_truth``: ``fault_id``, ``kind``, ``impact_start_at``, ``end_at``
        (timestamps, UTC; ``end_at`` NaT while the fault lasts) and ``affected_onus``.

    Returns
    -------
    pandas.DataFrame
        One row per such failure and ONU: ``fault_id``, ``onu_id``, ``impact_at``,
        ``end_at``, ``power_kind`` (the kinds of the power faults covering the impact,
        comma-separated) and ``power_back_at`` (the latest end of those power faults;
        NaT when the power was still off at the end of the run).
    """
    x = _exploded(truth)
    hw = x[(x["kind"] == "hardware_failure") & x["impact_start_at"].notna()]
    power = x[x["kind"].isin(POWER_KINDS)]
    out = []
    for _, h in hw.iterrows():
        p = power[
            (power["onu_id"] == h["onu_id"])
            & (power["start_at"] <= h["impact_start_at"])
            & (power["end_at"].isna() | (power["end_at"] > h["impact_start_at"]))
        ]
        if p.empty:
            continue
        back = pd.NaT if p["end_at"].isna().any() else p["end_at"].max()
        out.append({
            "fault_id": h["fault_id"], "onu_id": h["onu_id"], "impact_at": h["impact_start_at"],
            "end_at": h["end_at"], "power_kind": ",".join(sorted(set(p["kind"]))),
            "power_back_at": back,
        })  # fmt: skip
    cols = ["fault_id", "onu_id", "impact_at", "end_at", "power_kind", "power_back_at"]
    return pd.DataFrame(out, columns=cols)


def split_rows(rows: pd.DataFrame, masked: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """Split each masked failure's EQUIPMENT_FAIL rows by power and by the customer's call.

    Parameters
    ----------
    rows : pandas.DataFrame
        Labelled rows: ``ts``, ``onu_id``, ``cause`` and optionally ``pred`` (the
        model's class).
    masked : pandas.DataFrame
        :func:`masked_failures`.
    calls : pandas.DataFrame
        Customer calls: ``ts`` and ``onu_id`` (the caller's ONU).

    Returns
    -------
    pandas.DataFrame
        One row per masked failure: ``rows_equipment``, ``rows_power_off``,
        ``rows_power_back``, ``rows_after_call`` (power back and after the customer's first
        call since the power came back), ``first_call_after_power_h`` (hours from the
        power's return to that call; NaN without one) [h], and with ``pred`` the same
        counts of rows the model did not call EQUIPMENT_FAIL (``wrong_*``).
    """
    out = []
    for _, m in masked.iterrows():
        r = rows[(rows["onu_id"].astype(str) == m["onu_id"]) & (rows["cause"] == "EQUIPMENT_FAIL")]
        r = r[r["ts"] >= m["impact_at"]]
        if pd.notna(m["end_at"]):
            r = r[r["ts"] < m["end_at"] + pd.Timedelta(hours=1)]
        back = m["power_back_at"]
        off = np.ones(len(r), bool) if pd.isna(back) else (r["ts"] < back).to_numpy()
        c = calls[(calls["onu_id"].astype(str) == m["onu_id"])]
        first = c.loc[c["ts"] >= back, "ts"].min() if pd.notna(back) else pd.NaT
        after = ~off & (r["ts"] >= first).to_numpy() if pd.notna(first) else np.zeros(len(r), bool)
        rec: dict[str, Any] = {
            "fault_id": m["fault_id"], "onu_id": m["onu_id"], "power_kind": m["power_kind"],
            "rows_equipment": len(r), "rows_power_off": int(off.sum()),
            "rows_power_back": int((~off).sum()), "rows_after_call": int(after.sum()),
            "first_call_after_power_h": (first - back).total_seconds() / 3600
            if pd.notna(first) else float("nan"),
        }  # fmt: skip
        if "pred" in r:
            wrong = (r["pred"] != "EQUIPMENT_FAIL").to_numpy()
            rec["wrong_power_off"] = int((wrong & off).sum())
            rec["wrong_power_back"] = int((wrong & ~off).sum())
            rec["wrong_after_call"] = int((wrong & after).sum())
        out.append(rec)
    return pd.DataFrame(out)


def power_off_calls(
    truth: pd.DataFrame, calls: pd.DataFrame, end: pd.Timestamp, every_minutes: int = 30
) -> dict[str, Any]:
    """Customer power-off spells: how often the customer called while dark (the base rate).

    Spells on ONUs that also had a hardware failure are left out (they are the cases
    measured by :func:`split_rows`).

    Parameters
    ----------
    truth : pandas.DataFrame
        ``faults_truth`` (see :func:`masked_failures`).
    calls : pandas.DataFrame
        Customer calls: ``ts``, ``onu_id``.
    end : pandas.Timestamp
        End of the run (spells still on are cut there).
    every_minutes : int, default 30
        Spacing of the row grid on which rows are counted. [min]

    Returns
    -------
    dict
        ``spells``, ``called`` (spells with a call while dark), ``median_h`` and
        ``p90_h`` of their durations [h], ``rows`` (grid rows dark), ``rows_after_call``,
        ``rows_over_24h`` (dark more than 24 h) and ``rows_after_call_over_24h``.
    """
    x = _exploded(truth)
    hw_onus = set(x.loc[x["kind"] == "hardware_failure", "onu_id"])
    spells = x[(x["kind"] == "customer_power_off") & ~x["onu_id"].isin(hw_onus)]
    step = f"{every_minutes}min"
    n = {"rows": 0, "rows_after_call": 0, "rows_over_24h": 0, "rows_after_call_over_24h": 0}
    called, hours = 0, []
    for _, f in spells.iterrows():
        e = end if pd.isna(f["end_at"]) else min(f["end_at"], end)
        hours.append((e - f["start_at"]).total_seconds() / 3600)
        grid = pd.date_range(f["start_at"].ceil(step), e, freq=step, inclusive="left")
        c = calls.loc[
            (calls["onu_id"].astype(str) == f["onu_id"])
            & (calls["ts"] >= f["start_at"])
            & (calls["ts"] < e),
            "ts",
        ]
        late = grid >= f["start_at"] + _DAY
        after = grid >= c.min() if len(c) else np.zeros(len(grid), bool)
        called += bool(len(c))
        n["rows"] += len(grid)
        n["rows_after_call"] += int(after.sum())
        n["rows_over_24h"] += int(late.sum())
        n["rows_after_call_over_24h"] += int((after & late).sum())
    h = np.asarray(hours, float)
    return {
        "spells": len(spells), "called": called,
        "median_h": float(np.median(h)) if len(h) else float("nan"),
        "p90_h": float(np.quantile(h, 0.9)) if len(h) else float("nan"), **n,
    }  # fmt: skip


def unpowered_share(
    truth: pd.DataFrame, onus: int, start: pd.Timestamp, end: pd.Timestamp
) -> float:
    """Share of ONU-time without power between ``start`` and ``end``.

    Parameters
    ----------
    truth : pandas.DataFrame
        ``faults_truth`` (see :func:`masked_failures`).
    onus : int
        ONUs of the fleet [-].
    start, end : pandas.Timestamp
        The period (UTC).

    Returns
    -------
    float
        Time under any power fault (overlaps counted once), summed over ONUs, over
        ``onus × (end − start)`` [-].
    """
    x = _exploded(truth)
    x = x[x["kind"].isin(POWER_KINDS)]
    total = pd.Timedelta(0)
    for _, g in x.groupby("onu_id"):
        spans = sorted(
            (max(s, start), min(end if pd.isna(e) else e, end))
            for s, e in zip(g["start_at"], g["end_at"], strict=True)
        )
        lo, hi = None, None
        for s, e in spans:
            if e <= s:
                continue
            if hi is None or s > hi:
                total += (hi - lo) if hi is not None else pd.Timedelta(0)
                lo, hi = s, e
            else:
                hi = max(hi, e)
        total += (hi - lo) if hi is not None else pd.Timedelta(0)
    span = (end - start) * onus
    return float(total / span) if onus and end > start else float("nan")


def _run_frames(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's ``faults_truth`` and its customer calls (``ts``, ``onu_id``)."""
    from guardian_lib.warehouse import connect

    con = connect(run)
    try:
        truth = con.execute("SELECT * FROM faults_truth").df()
        calls = con.execute(
            "SELECT ts, json_extract_string(payload, '$.onu_id') AS onu_id FROM events "
            "WHERE type = 'CUSTOMER_CALL'"
        ).df()
    finally:
        con.close()
    for col in ("start_at", "impact_start_at", "end_at"):
        truth[col] = pd.to_datetime(truth[col], utc=True)
    calls["ts"] = pd.to_datetime(calls["ts"], utc=True)
    return truth, calls


def main() -> None:
    """Parse arguments and print one JSON line per run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="ingested simulated runs")
    ap.add_argument("--alias", default=None, help="registered model to score the rows with")
    ap.add_argument("--every-minutes", type=int, default=30)
    a = ap.parse_args()
    from guardian_lib.models.training import CLASS_COLUMNS, labelled_frame

    bundle = None
    if a.alias:
        from guardian_lib.models.registry import load_bundle

        bundle = load_bundle(a.alias)
    for run in a.runs:
        truth, calls = _run_frames(run)
        masked = masked_failures(truth)
        features, labels = labelled_frame(run, every_minutes=a.every_minutes)
        rows = features[["ts", "onu_id"]].assign(cause=labels["cause"])
        rows["ts"] = pd.to_datetime(rows["ts"], utc=True)
        rows = rows[rows["onu_id"].astype(str).isin(set(masked["onu_id"]))]
        if bundle is not None and len(rows):
            proba = bundle.predict(features.loc[rows.index], explain=False)
            proba = proba[list(CLASS_COLUMNS.values())].to_numpy()
            rows = rows.assign(pred=np.array(list(CLASS_COLUMNS))[np.argmax(proba, axis=1)])
        split = split_rows(rows, masked, calls)
        ts = pd.to_datetime(features["ts"], utc=True)
        base = power_off_calls(truth, calls, ts.max(), a.every_minutes)
        share = unpowered_share(truth, features["onu_id"].nunique(), ts.min(), ts.max())
        print(json.dumps({"run": str(run), "masked": split.to_dict("records"),
                          "power_off_spells": base, "unpowered_share": share},
                         default=str))  # fmt: skip


if __name__ == "__main__":
    main()
