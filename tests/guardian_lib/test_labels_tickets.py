"""Label map: closed tickets → cause classes and fault intervals (issue 16, item 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from guardian_lib.errors import ConfigError, WarehouseError
from guardian_lib.label_map import LabelMap, classify_tickets, load_label_map
from guardian_lib.labels_tickets import build_ticket_labels, load_ticket_inputs

MAP = LabelMap(
    classes={
        "MASSIVE_OUTAGE": ["ROMP(IMENTO|\\.)? ?(DE )?FIBRA", "MASSIVA"],
        "EQUIPMENT_FAIL": ["TROCA (DE )?ONU"],
        "CUSTOMER_PREMISES": ["CLIENTE S(EM|/) ?ENERGIA", "REINICI"],
        "NO_FAULT": ["S(EM|/) ?DEFEITO"],
    },
    ignore=["CANCELAD"],
)
T0 = pd.Timestamp("2026-01-05", tz="UTC")


def _tickets(rows: list[tuple]) -> pd.DataFrame:
    """(os_id, onu_id, opened h, closed h or None, closure_code, notes)."""
    return pd.DataFrame(
        {
            "os_id": [r[0] for r in rows],
            "customer_id": [None] * len(rows),
            "onu_id": [r[1] for r in rows],
            "opened_at": [T0 + pd.Timedelta(hours=r[2]) for r in rows],
            "closed_at": [pd.NaT if r[3] is None else T0 + pd.Timedelta(hours=r[3]) for r in rows],
            "closure_code": [r[4] for r in rows],
            "notes": [r[5] for r in rows],
        }
    )


def test_classify_is_case_and_accent_insensitive_and_reports_what_it_cannot_label():
    t = _tickets([
        ("1", "A", 1, 2, "rompimento de fibra", None),
        ("2", "A", 1, 2, None, "Cliente s/ energia no imóvel"),
        ("3", "A", 1, 2, "S/ DEFEITO", "troca de onu feita"),  # code and notes disagree
        ("4", "A", 1, 2, "VISITA REALIZADA", None),  # nothing matches
        ("5", "A", 1, 2, "Cancelada - cliente normalizado", None),
        ("6", "A", 1, None, "TROCA ONU", None),  # still open
        ("7", "A", 1, 2, "TROCA ONU", "ONU reiniciada, não voltou; trocada"),
    ])  # fmt: skip
    c = classify_tickets(t, MAP).set_index("os_id")
    assert c.loc["1", "label"] == "MASSIVE_OUTAGE" and c.loc["1", "status"] == "labelled"
    assert c.loc["2", "label"] == "CUSTOMER_PREMISES"
    assert c.loc["3", "status"] == "contradictory" and pd.isna(c.loc["3", "label"])
    assert c.loc["3", "matched"] == "EQUIPMENT_FAIL|NO_FAULT"
    assert c.loc["4", "status"] == "unlabelled"
    assert c.loc["5", "status"] == "ignored"
    assert c.loc["6", "status"] == "open"
    # "reiniciada" in the notes of a replaced ONU: two classes, reported, not guessed.
    assert c.loc["7", "status"] == "contradictory"


def test_label_map_errors_name_the_file_and_the_field(tmp_path):
    p = tmp_path / "labels.yaml"
    p.write_text("classes: {MASSIVE_OUTAGE: [MASSIVA]}\nlookback: 3\n")
    with pytest.raises(ConfigError, match=r"labels.yaml: invalid label map: lookback: Extra"):
        load_label_map(p)
    p.write_text("classes: {FIBRE_CUT: [ROMP]}\n")
    with pytest.raises(ConfigError, match=r"classes: .*unknown class 'FIBRE_CUT'"):
        load_label_map(p)
    p.write_text("classes: {NO_FAULT: [OK, 'SEM (DEFEITO']}\n")
    with pytest.raises(ConfigError, match=r"classes.NO_FAULT\[1\]: not a regular expression"):
        load_label_map(p)
    p.write_text("fields: [closure_code, obs]\nclasses: {NO_FAULT: [OK]}\n")
    with pytest.raises(ConfigError, match=r"fields\[1\]"):
        load_label_map(p)
    p.write_text("classes: {UNKNOWN: [X]}\n")
    with pytest.raises(ConfigError, match="unknown class 'UNKNOWN'"):
        load_label_map(p)


def _features(onus: list[str], hours: int, offline: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """15-min feature rows with the columns `symptomatic` reads; ``offline[onu] = (from, to)`` h."""
    ts = T0 + pd.to_timedelta(np.arange(hours * 4) * 15, unit="min")
    rows = []
    for o in onus:
        lo, hi = offline.get(o, (-1.0, -1.0))
        h = (ts - T0).total_seconds() / 3600
        on = ~((h >= lo) & (h < hi))
        rows.append(pd.DataFrame({"ts": ts, "onu_id": o, "online": on.astype(int)}))
    f = pd.concat(rows, ignore_index=True)
    for c in ("los_1h", "dying_gasp_1h", "pppoe_down_1h", "high_ber_1h", "low_rx_1h",
              "pppoe_down", "loss_pct"):  # fmt: skip
        f[c] = 0.0
    f["latency_ms"] = 10.0
    f["rx_dbm"] = -20.0
    return f


def test_ticket_intervals_become_labels_in_the_ground_truth_shape():
    # A and B share PON P1, C is on P2. A is offline 10-14 h (ONU replaced, ticket opened
    # at 12 h, closed at 14 h); B and C are offline 30-33 h (a cut on P1: one ticket on B);
    # C is offline 40-41 h and nobody opened a ticket.
    f = _features(["A", "B", "C"], 48, {"A": (10, 14), "B": (30, 33), "C": (40, 41)})
    f.loc[(f["onu_id"] == "A") & (f["ts"] >= T0 + pd.Timedelta(hours=30))
          & (f["ts"] < T0 + pd.Timedelta(hours=33)), "online"] = 0  # fmt: skip
    tickets = _tickets([
        ("OS1", "A", 12, 14, "TROCA DE ONU", None),
        ("OS2", "B", 31, 33, None, "ROMP. FIBRA na rua"),
        ("OS3", "C", 20, 21, "S/ DEFEITO", None),
        ("OS4", None, 20, 22, "TROCA ONU", None),
    ])  # fmt: skip
    onus = pd.DataFrame({"onu_id": ["A", "B", "C"], "pon_id": ["P1", "P1", "P2"]})
    labels, report = build_ticket_labels(f, tickets, MAP, onus=onus)
    assert list(labels.columns) == [
        "symptomatic", "cause", "massive", "fault_active", "risk_2h", "risk_6h", "risk_24h",
    ]  # fmt: skip
    h = (f["ts"] - T0).dt.total_seconds() / 3600
    a, b, c = (f["onu_id"] == o for o in "ABC")
    # The interval starts at the first symptom (10 h), two hours before the ticket.
    assert (labels.loc[a & (h >= 10) & (h < 14), "cause"] == "EQUIPMENT_FAIL").all()
    assert labels.loc[a & (h >= 10) & (h < 14), "massive"].eq(0).all()
    # Risk: the 8 h before the first symptom are positives at 24 h, not at 2 h far before.
    assert labels.loc[a & (h >= 2) & (h < 10), "risk_24h"].eq(1).all()
    assert labels.loc[a & (h < 7.5), "risk_2h"].eq(0).all()
    # The massive ticket on B covers A's symptoms on the same PON, not C's (other PON).
    assert (labels.loc[(a | b) & (h >= 30) & (h < 33), "cause"] == "MASSIVE_OUTAGE").all()
    assert labels.loc[b & (h >= 30) & (h < 33), "massive"].eq(1).all()
    # Unexplained symptoms (C at 40 h) are left out, not called UNKNOWN.
    assert not labels.loc[c & (h >= 40) & (h < 41), "symptomatic"].any()
    assert labels.loc[c, "cause"].isna().all()
    assert (labels["cause"] == "UNKNOWN").sum() == 0
    assert report.counts == {"labelled": 3, "no_fault": 1, "unlabelled": 0, "contradictory": 0,
                             "ignored": 0, "open": 0, "no_onu": 1}  # fmt: skip
    assert report.per_class == {"EQUIPMENT_FAIL": 2, "MASSIVE_OUTAGE": 1}
    assert report.faults == 2
    assert report.unlabelled_symptomatic_rows == 4  # C's hour of rows at 15 min


def test_the_report_counts_only_the_held_out_period_but_labels_use_every_ticket():
    # Same network as above; the held-out period starts at 25 h: only OS2 (31-33 h) can
    # label a held-out row. OS1, OS3 and OS4 closed before it; OS5 is still open.
    f = _features(["A", "B", "C"], 48, {"A": (10, 14), "B": (30, 33), "C": (40, 41)})
    tickets = _tickets([
        ("OS1", "A", 12, 14, "TROCA DE ONU", None),
        ("OS2", "B", 31, 33, None, "ROMP. FIBRA na rua"),
        ("OS3", "C", 20, 21, "S/ DEFEITO", None),
        ("OS4", None, 20, 22, "TROCA ONU", None),
        ("OS5", "C", 5, None, "VISITA", None),
        ("OS6", "A", 23, 26, "VISITA", None),  # unlabelled, still being worked at 25 h
    ])  # fmt: skip
    onus = pd.DataFrame({"onu_id": ["A", "B", "C"], "pon_id": ["P1", "P1", "P2"]})
    whole_labels, whole = build_ticket_labels(f, tickets, MAP, onus=onus)
    split = T0 + pd.Timedelta(hours=25)
    labels, held = build_ticket_labels(f, tickets, MAP, onus=onus, counted_from=split)
    pd.testing.assert_frame_equal(labels, whole_labels)  # the labels do not change
    assert whole.counts["labelled"] == 3 and whole.per_class == {
        "EQUIPMENT_FAIL": 2, "MASSIVE_OUTAGE": 1}  # fmt: skip
    assert held.counts == {"labelled": 1, "no_fault": 0, "unlabelled": 1, "contradictory": 0,
                           "ignored": 0, "open": 1, "no_onu": 0}  # fmt: skip
    assert held.per_class == {"MASSIVE_OUTAGE": 1}
    assert [e["os_id"] for e in held.examples["unlabelled"]] == ["OS6"]
    assert (whole.faults, held.faults) == (2, 1)
    after = (f["ts"] >= split).to_numpy()
    assert held.labelled_rows == int(labels["symptomatic"].to_numpy()[after].sum()) == 12
    assert whole.labelled_rows == int(labels["symptomatic"].sum()) > held.labelled_rows
    # a naive split time is taken as UTC
    _, naive = build_ticket_labels(f, tickets, MAP, onus=onus, counted_from=split.tz_localize(None))
    assert naive.counts == held.counts


def test_a_contact_before_the_ticket_opens_the_interval_and_a_cut_off_hides_later_tickets():
    f = _features(["A"], 24, {})
    tickets = _tickets([("OS1", "A", 10, 12, "TROCA DE ONU", None),
                        ("OS2", "A", 15, 20, "TROCA DE ONU", None)])  # fmt: skip
    contacts = pd.DataFrame({"ts": [T0 + pd.Timedelta(hours=7)], "onu_id": ["A"]})
    labels, report = build_ticket_labels(
        f, tickets, MAP, contacts=contacts, observed_until=T0 + pd.Timedelta(hours=13)
    )
    h = (f["ts"] - T0).dt.total_seconds() / 3600
    assert labels.loc[(h >= 7) & (h < 12), "fault_active"].eq(1).all()
    assert labels.loc[h < 7, "fault_active"].eq(0).all()
    assert labels.loc[h >= 15, "fault_active"].eq(0).all()  # OS2 closes after the cut-off
    assert report.counts["labelled"] == 1
    assert labels.loc[h > 13 - 2, "risk_2h"].isna().all()  # horizon past the cut-off


def test_a_cut_off_on_tickets_none_of_which_is_closed_labels_nothing_and_does_not_fail():
    # An export whose closed_at column is all empty reads as floats (NaN); the cut-off
    # used to write NaT into it and raise a TypeError.
    f = _features(["A"], 24, {})
    tickets = _tickets([("OS1", "A", 10, None, "TROCA DE ONU", None)])
    tickets["closed_at"] = np.nan
    labels, report = build_ticket_labels(
        f, tickets, MAP, observed_until=T0 + pd.Timedelta(hours=13)
    )
    assert report.counts["labelled"] == 0 and report.counts["open"] == 1
    assert labels["fault_active"].eq(0).all()


def test_a_simulated_run_has_no_closure_codes(tiny_run):
    with pytest.raises(WarehouseError, match="closure_code / notes"):
        load_ticket_inputs(tiny_run)


def test_an_event_rule_labels_the_episode_after_the_event_below_ticket_precedence():
    lm = MAP.model_copy(
        update={"events": LabelMap.model_validate(
            {"classes": {"NO_FAULT": ["X"]},
             "events": {"DYING_GASP": {"class": "CUSTOMER_PREMISES", "service_affecting": False}}}
        ).events}
    )  # fmt: skip
    # A: dark 5-8 h after a dying gasp at 5 h (no ticket). B: dark 20-23 h, a dying gasp
    # at 20 h, but a massive ticket on B covers it.
    f = _features(["A", "B"], 30, {"A": (5, 8), "B": (20, 23)})
    events = pd.DataFrame({
        "ts": [T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(hours=20)],
        "entity_id": ["A", "B"], "type": ["DYING_GASP", "DYING_GASP"],
    })  # fmt: skip
    tickets = _tickets([("OS1", "B", 20.5, 23, "MASSIVA", None)])
    labels, report = build_ticket_labels(f, tickets, lm, events=events)
    h = (f["ts"] - T0).dt.total_seconds() / 3600
    a, b = f["onu_id"] == "A", f["onu_id"] == "B"
    assert (labels.loc[a & (h >= 5) & (h < 8), "cause"] == "CUSTOMER_PREMISES").all()
    assert (labels.loc[b & (h >= 20) & (h < 23), "cause"] == "MASSIVE_OUTAGE").all()
    # Not service-affecting: the hours before the dying gasp are not risk positives.
    assert labels.loc[a & (h < 5), "risk_24h"].eq(0).all()
    assert report.event_faults == {"DYING_GASP": 2}
    with pytest.raises(Exception, match="unknown event type 'GASP'"):
        LabelMap.model_validate(
            {"classes": {"NO_FAULT": ["X"]}, "events": {"GASP": {"class": "CUSTOMER_PREMISES"}}}
        )


def test_reboot_outcomes_become_labels_only_when_the_reboot_fixed_it():
    from guardian_lib.labels_feedback import reboot_faults

    # A: offline 4-6 h, rebooted at 6 h, fine after (fixed). B: offline 4-12 h, rebooted
    # at 6 h (not fixed). C: healthy, rebooted at 6 h (no symptom). D: rebooted at 23.5 h,
    # no telemetry after (unknown).
    f = _features(["A", "B", "C", "D"], 24, {"A": (4, 6), "B": (4, 12), "D": (23, 24)})
    reboots = pd.DataFrame({
        "ts": [T0 + pd.Timedelta(hours=h) for h in (6, 6, 6, 23.5)], "onu_id": list("ABCD"),
    })  # fmt: skip
    faults, counts = reboot_faults(reboots, f)
    assert counts == {"fixed": 1, "not_fixed": 1, "no_symptom": 1, "unknown": 1}
    assert faults["affected_onus"].tolist() == [["A"]]
    assert faults["cause_class"].tolist() == ["CUSTOMER_PREMISES"]
    assert faults["start_at"].iloc[0] == T0 + pd.Timedelta(hours=4)
    labels, report = build_ticket_labels(f, _tickets([]), MAP, reboots=reboots)
    h = (f["ts"] - T0).dt.total_seconds() / 3600
    a = f["onu_id"] == "A"
    assert (labels.loc[a & (h >= 4) & (h < 6), "cause"] == "CUSTOMER_PREMISES").all()
    assert labels.loc[f["onu_id"] == "B", "cause"].isna().all()
    assert report.reboots["fixed"] == 1


def test_reboots_are_read_from_the_audit_trail_only_when_they_happened(tmp_path):
    from guardian_lib.actions.dispatcher import ActionResult
    from guardian_lib.audit import AuditLog
    from guardian_lib.decision import Decision
    from guardian_lib.labels_feedback import load_reboots

    audit = AuditLog(tmp_path / "audit.duckdb")
    at = T0 + pd.Timedelta(hours=6)
    for target, status in (("A", "pending"), ("B", "blocked"), ("C", "simulated"), ("D", "failed"),
                           ("F", "queued"), ("G", "succeeded")):  # fmt: skip
        audit.record_action("no-decision", ActionResult("reboot", target, status, at, at))
    # sent, then verified as failed (service not back): it happened
    audit.record_action("no-decision", ActionResult("reboot", "H", "failed", at, at,
                                                  result={"verified": False}))  # fmt: skip
    audit.record_action("D00000002", ActionResult("notify", "E", "done", at, at))
    # the autopilot's reboot targets the CPE; the label is its decision's ONU
    did = audit.record_decision(Decision(ts=at, subject="J", action="reboot", targets=("CPE-J",)),
                                {}, "execute")  # fmt: skip
    audit.record_action(did, ActionResult("reboot", "CPE-J", "succeeded", at, at))
    audit.close()
    reboots = load_reboots(tmp_path / "audit.duckdb")
    assert sorted(reboots["onu_id"]) == ["A", "G", "H", "J"]
    assert list(reboots.columns) == ["ts", "onu_id"]
    assert (pd.to_datetime(reboots["ts"]) == at).all()
