"""Massive-vs-individual scores of a policy's calls against the confirmed problems.

Two views (both in :func:`guardian_lib.kpis.compute_kpis`): per decision
(:func:`classification_scores`: each ``open_incident`` target and ``open_case`` subject
against the confirmed problem of its ONU at that moment) and per problem
(:func:`problem_classification_scores`: the call held on each confirmed problem, plus the
calls made on nothing of their class).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

__all__ = ["classification_scores", "problem_classification_scores"]


def _explode_targets(decisions: pd.DataFrame, actions: tuple[str, ...]) -> pd.DataFrame:
    d = decisions.loc[decisions["action"].isin(actions), ["ts", "action", "targets"]]
    if len(d) == 0:
        return pd.DataFrame(columns=["ts", "action", "onu_id"])
    d = d.assign(onu_id=d["targets"].map(json.loads)).explode("onu_id")
    return d.dropna(subset=["onu_id"])[["ts", "action", "onu_id"]]


def classification_scores(
    decisions: pd.DataFrame, labels: pd.DataFrame, min_minutes: float = 15.0
) -> dict[str, float]:
    """Precision / recall of massive-vs-individual decisions against confirmed causes.

    Parameters
    ----------
    decisions : pandas.DataFrame
        ``decisions`` table: ``open_incident`` targets are predicted massive,
        ``open_case`` subjects predicted individual.
    labels : pandas.DataFrame
        ``onu_id``, ``start_at``, ``end_at``, ``massive`` (bool): confirmed problems.
    min_minutes : float, default 15
        Problems shorter than this (shorter than a decision round) are left out of the
        recall. [min]

    Returns
    -------
    dict
        ``massive_precision``, ``massive_recall``, ``individual_precision``,
        ``individual_recall`` [-] (NaN when undefined).
    """
    pred = _explode_targets(decisions, ("open_incident", "open_case"))
    out = dict.fromkeys(
        ["massive_precision", "massive_recall", "individual_precision", "individual_recall"],
        float("nan"),
    )
    if "confirmed" in labels:  # the per-problem metric's extra rows are not labels here
        labels = labels.loc[labels["confirmed"].astype(bool) & labels["start_at"].notna()]
    if len(labels) == 0:
        return out
    long = (labels["end_at"] - labels["start_at"]).dt.total_seconds() >= min_minutes * 60
    lab = labels.loc[long].reset_index(drop=True).assign(label_id=lambda x: np.arange(len(x)))
    m = pred.merge(lab, on="onu_id", how="left")
    hit = (m["ts"] >= m["start_at"]) & (m["ts"] <= m["end_at"])
    m = m.loc[hit.fillna(False)]
    for kind, action, flag in (("massive", "open_incident", True),
                               ("individual", "open_case", False)):  # fmt: skip
        p = pred.loc[pred["action"] == action]
        mk = m.loc[(m["action"] == action)]
        correct = mk.loc[mk["massive"] == flag].drop_duplicates(["ts", "onu_id"])
        if len(p):
            out[f"{kind}_precision"] = len(correct) / len(p.drop_duplicates(["ts", "onu_id"]))
        truth = lab.loc[lab["massive"] == flag]
        if len(truth):
            found = mk.loc[mk["massive"] == flag, "label_id"].nunique()
            out[f"{kind}_recall"] = found / len(truth)
    return out


_SCORE_KEYS = ("massive_precision", "massive_recall", "individual_precision", "individual_recall")


def _call_intervals(decisions: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Every call as an interval per ONU: incident membership (``massive``) from its
    ``open_incident`` / ``join_incident`` to the incident's ``close_incident``, an
    individual case from ``open_case`` to ``close_case`` (open ones until ``end``)."""
    dec = decisions.assign(ts=pd.to_datetime(decisions["ts"], utc=True))
    has_case = "case_id" in dec.columns
    case_of = dec["case_id"] if has_case else pd.Series(None, index=dec.index, dtype=object)
    closes = dec.loc[dec["action"].isin(["close_case", "close_incident"])]
    closed = dict(zip(case_of.loc[closes.index], closes["ts"], strict=True))
    rows = []
    for action, massive in (("open_incident", True), ("join_incident", True),
                            ("open_case", False)):  # fmt: skip
        d = dec.loc[dec["action"] == action]
        for t, targets, cid in zip(d["ts"], d["targets"], case_of.loc[d.index], strict=True):
            until = closed.get(cid, end) if cid is not None and not pd.isna(cid) else end
            for onu in json.loads(targets):
                rows.append((str(onu), t, max(until, t), massive))
    return pd.DataFrame(rows, columns=["onu_id", "ts", "until", "massive"])


def _pairs_by_onu(left: pd.DataFrame, right: pd.DataFrame) -> pd.DataFrame:
    """Every pair of a row of ``left`` and a row of ``right`` of the same ``onu_id`` (a
    missing id pairs with nothing), with ``left``'s row number ``_l``."""
    left = left.assign(_l=np.arange(len(left)))
    left, right = (f.loc[f["onu_id"].notna()] for f in (left, right))
    key = {"onu_id": lambda f: f["onu_id"].astype(str)}
    return left.assign(**key).merge(right.assign(**key), on="onu_id", suffixes=("", "_r"))


def _flagged(pairs: pd.DataFrame, hit: np.ndarray, n: int) -> np.ndarray:
    """Per row of the pairs' left frame (``n`` rows): whether any of its pairs hit."""
    out = np.zeros(n, dtype=bool)
    out[pairs["_l"].to_numpy()[hit]] = True
    return out


def _calls_per_problem(
    lab: pd.DataFrame, probs: pd.DataFrame, calls: pd.DataFrame
) -> tuple[np.ndarray, int, dict[bool, int]]:
    """:func:`problem_classification_scores`' call held on each scored problem (an
    object array of ``massive`` / ``individual`` / ``none``), the right calls outside
    every scored problem (unscored) and the erroneous ones per class (``massive``)."""
    called = np.full(len(probs), "none", dtype=object)
    p = _pairs_by_onu(probs[["onu_id", "start_at", "onset_at", "end_at"]], calls)
    mass = p["massive"].to_numpy(dtype=bool)
    before_end = (p["ts"] <= p["end_at"]).to_numpy(dtype=bool)
    # An incident the ONU was a member of during the problem: massive; else a case open
    # at any time from the problem's onset: individual.
    in_incident = mass & before_end & (p["until"] >= p["start_at"]).to_numpy(dtype=bool)
    in_case = ~mass & before_end & (p["until"] >= p["onset_at"]).to_numpy(dtype=bool)
    called[_flagged(p, in_case, len(probs))] = "individual"
    called[_flagged(p, in_incident, len(probs))] = "massive"
    # Calls outside every scored problem of their ONU: judged by what the ONU had then.
    once = calls.drop_duplicates(["onu_id", "ts", "massive"]).reset_index(drop=True)
    once = once[["onu_id", "ts", "massive"]]
    q = _pairs_by_onu(once, probs[["onu_id", "onset_at", "end_at"]])
    inside = _flagged(q, ((q["onset_at"] <= q["ts"]) & (q["end_at"] >= q["ts"])).to_numpy(bool),
                      len(once))  # fmt: skip
    q = _pairs_by_onu(once, lab[["onu_id", "onset_at", "end_at", "massive", "confirmed"]])
    covers = ((q["onset_at"] <= q["ts"]) & (q["end_at"] >= q["ts"])).to_numpy(dtype=bool)
    cls = q["massive_r"].to_numpy(dtype=bool) & q["confirmed"].to_numpy(dtype=bool)
    same = _flagged(q, covers & (cls == q["massive"].to_numpy(dtype=bool)), len(once))
    outside, massive = ~inside, once["massive"].to_numpy(dtype=bool)
    extra = {flag: int((outside & ~same & (massive == flag)).sum()) for flag in (True, False)}
    return called, int((outside & same).sum()), extra


def problem_classification_scores(
    decisions: pd.DataFrame, labels: pd.DataFrame, min_minutes: float = 15.0
) -> dict[str, float]:
    """Massive-vs-individual precision / recall per *problem*: the call the policy held.

    :func:`classification_scores` scores decisions one by one, which counts against the
    policy things that are not massive-vs-individual errors: a proactive case opened
    while a fault was a precursor (a drifting laser before it hurt) is a false
    individual call and its problem a miss; a case on a problem shorter than
    ``min_minutes``, or on a symptom the labels do not confirm, is a false individual
    call; an ONU that joined an incident (``join_incident``) or was already a member
    when a new problem of the same outage began is a missed massive problem. Here:

    * each confirmed problem at least ``min_minutes`` long is *called massive* when its
      ONU was a member of an incident at any time during it (``open_incident`` or
      ``join_incident`` up to ``close_incident``: its visits were held), else
      *individual* when an individual case was open at any time from its onset (a
      proactive case counts) to its end, else it is missed;
    * a problem that begins and ends inside another confirmed problem of its ONU
      (a customer's power off while a power cut has the ONU dark) is not scored: it
      changes nothing a policy can observe;
    * a call made outside every such problem of its ONU is judged by what the ONU had
      then: an error when no problem of the call's class (of any length, precursors and
      unconfirmed symptoms included; an unconfirmed symptom is individual) covered it,
      otherwise not counted (a right call on something the labels leave out).

    ``precision_c = TP_c / (problems called c + erroneous calls c)``,
    ``recall_c = TP_c / problems of class c``.

    Parameters
    ----------
    decisions : pandas.DataFrame
        ``decisions`` table (``ts``, ``action``, ``targets``, ``case_id``).
    labels : pandas.DataFrame
        ``onu_id``, ``start_at`` (impact start; NaT for a fault that never hurt),
        ``end_at``, ``massive`` (bool); optional ``onset_at`` (the fault began, before it
        hurt; default ``start_at``) and ``confirmed`` (bool, default True; False: a
        symptom without a confirmed cause).
    min_minutes : float, default 15
        Shorter problems are not scored as problems. [min]

    Returns
    -------
    dict
        ``problem_massive_precision``, ``problem_massive_recall``,
        ``problem_individual_precision``, ``problem_individual_recall`` [-] (NaN when
        undefined), ``problem_unscored_calls`` (right calls on something the labels
        leave out) and ``problem_masked`` (problems not scored: they began and ended
        inside another confirmed problem of the same ONU) [-].
    """
    keys = [f"problem_{k}" for k in _SCORE_KEYS]
    out: dict[str, float] = dict.fromkeys(keys, float("nan"))
    out["problem_unscored_calls"] = out["problem_masked"] = 0.0
    if len(labels) == 0:
        return out
    lab = labels.copy()
    for c in ("start_at", "end_at"):
        lab[c] = pd.to_datetime(lab[c], utc=True)
    lab["onset_at"] = (
        pd.to_datetime(lab["onset_at"], utc=True).fillna(lab["start_at"])
        if "onset_at" in lab
        else lab["start_at"]
    )
    lab["onset_at"] = lab["onset_at"].fillna(lab["end_at"])
    lab["confirmed"] = lab["confirmed"].astype(bool) if "confirmed" in lab else True
    lab["onu_id"] = lab["onu_id"].astype(str)
    span = (lab["end_at"] - lab["start_at"]).dt.total_seconds()
    long = lab["confirmed"] & lab["start_at"].notna() & (span >= min_minutes * 60)
    # A problem that begins and ends inside another confirmed problem of its ONU (a
    # customer's power switched off while a power cut already had the ONU dark) changes
    # nothing observable: the call on it is the call on the first one. Not scored.
    masked = np.zeros(len(lab), dtype=bool)
    conf = lab.loc[lab["confirmed"] & lab["start_at"].notna()]
    # Only ONUs with two or more such problems can mask one (a few of a fleet's).
    repeated = conf["onu_id"].duplicated(keep=False)
    for _, g in conf.loc[repeated].groupby("onu_id"):
        s0, e0 = g["start_at"].to_numpy(), g["end_at"].to_numpy()
        order = np.arange(len(g))
        inside = (s0[None, :] <= s0[:, None]) & (e0[None, :] >= e0[:, None])
        earlier = (s0[None, :] < s0[:, None]) | (order[None, :] < order[:, None])
        np.fill_diagonal(inside, False)
        masked[lab.index.get_indexer(g.index)] = (inside & earlier).any(axis=1)
    probs = lab.loc[long & ~masked].reset_index(drop=True)
    end = lab["end_at"].max()
    if len(decisions):
        end = max(end, pd.to_datetime(decisions["ts"], utc=True).max())
    calls = (
        _call_intervals(decisions, end)
        if len(decisions)
        else _call_intervals(pd.DataFrame(columns=["ts", "action", "targets", "case_id"]), end)
    )
    called, unscored, extra = _calls_per_problem(lab, probs, calls)
    truth = probs["massive"].to_numpy(dtype=bool)
    for kind, flag in (("massive", True), ("individual", False)):
        pred = called == kind
        tp = int((pred & (truth == flag)).sum())
        den_p = int(pred.sum()) + extra[flag]
        den_r = int((truth == flag).sum())
        if den_p:
            out[f"problem_{kind}_precision"] = tp / den_p
        if den_r:
            out[f"problem_{kind}_recall"] = tp / den_r
    out["problem_unscored_calls"] = float(unscored)
    out["problem_masked"] = float((long & masked).sum())
    return out
