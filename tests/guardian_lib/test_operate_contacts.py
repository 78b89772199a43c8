"""``guardian operate`` learns of customer contacts from the helpdesk's drop folder.

The operate cycle runs in-process on a replayed poll (operate's SNMP source interface): ONU
A goes dark at step 2 and stays dark; contact files are dropped between cycles, as a CRM
export would, and the audit's decision rows say whether the customer contacted us since
service was lost (``contacted_since_down``), as ``guardian decide`` and the backtest do.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from guardian_lib.errors import ConfigError
from guardian_lib.operate.contacts import ContactFileError, read_contact_file

T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
STEP = pd.Timedelta(minutes=5)
ONUS = ("A", "B", "C", "D", "E")
DARK_FROM = 2  # A offline from this step on


class _Polls:
    """Operate's telemetry source: every ONU answers, A offline from :data:`DARK_FROM`."""

    def __init__(self) -> None:
        self.k = 0

    def poll(self):
        from guardian_lib.snmp.poller import OltPollResult, PollReport
        from guardian_lib.snmp.rows import EVENTS_SCHEMA, TELEMETRY_SCHEMA, empty_frame

        ts = T0 + self.k * STEP
        online = [not (o == "A" and self.k >= DARK_FROM) for o in ONUS]
        self.k += 1
        rows = pd.DataFrame({"ts": ts, "onu_id": list(ONUS), "online": online,
                             "rx_dbm": [-20.0 if on else np.nan for on in online],
                             "source": "snmp", "received_at": ts, "olt_id": "OLT-1",
                             "poll_complete": True})  # fmt: skip
        tel = pd.concat([empty_frame(TELEMETRY_SCHEMA), rows], ignore_index=True)
        return PollReport([OltPollResult("OLT-1", "test", tel, empty_frame(EVENTS_SCHEMA), True)])

    def close(self) -> None:
        pass


def _site(tmp_path: Path, **contacts) -> Path:
    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "n"}]})
    )
    subs = "onu_id,pon_id,olt_id,customer_id\n" + "".join(
        f"{o},P{1 + i % 2},OLT-1,C-{o}\n" for i, o in enumerate(ONUS)
    )
    (tmp_path / "subs.csv").write_text(subs)
    site = {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
            "subscribers": "subs.csv", "polling_interval_s": 300,
            "contacts": {"folder": "inbox", **contacts}}  # fmt: skip
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return tmp_path / "site.yaml"


def _operator(tmp_path: Path, **contacts):
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    op = Operator(load_site(_site(tmp_path, **contacts)), tmp_path / "state")
    op.source.close()
    op.source = _Polls()
    return op


def _drop(folder: Path, name: str, text: str) -> None:
    """Write as the helpdesk is told to: a hidden name, then a rename."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.part"
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, folder / name)


def _contacted(state: Path, onu: str) -> dict[pd.Timestamp, bool]:
    """``contacted_since_down`` of ``onu``'s decision rows, by decision time."""
    con = duckdb.connect(str(state / "audit.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT ts, inputs FROM decisions WHERE subject = ?", [onu]).fetchall()
    finally:
        con.close()
    out: dict[pd.Timestamp, bool] = {}
    for ts, inputs in rows:
        t = pd.Timestamp(ts)
        t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
        out[t] = out.get(t, False) or bool(json.loads(inputs).get("contacted_since_down"))
    return out


def _at(k: int) -> str:
    return (T0 + k * STEP).isoformat()


def test_a_contact_dropped_during_the_run_reaches_the_dark_onus_decisions(tmp_path):
    op = _operator(tmp_path)
    inbox = tmp_path / "inbox"
    figures = []
    try:
        for k in range(8):
            if k == 4:  # the customer calls 2 minutes before the cycle at step 4
                t = (T0 + 4 * STEP - pd.Timedelta(minutes=2)).isoformat()
                _drop(
                    inbox,
                    "crm-1.csv",
                    f"ts,customer_id,channel,reason\n{t},C-A,phone,no_internet\n",
                )
            figures.append(op.run_cycle())
    finally:
        op.close()
    c = _contacted(tmp_path / "state", "A")
    dark = sorted(t for t in c if t >= T0 + DARK_FROM * STEP)
    assert dark, "the dark ONU got no decision row"
    # before the call: not contacted; from the cycle that read it: contacted
    before = [c[t] for t in dark if t < T0 + 4 * STEP]
    assert before and not any(before)
    assert [c[t] for t in dark if t >= T0 + 4 * STEP] and all(
        c[t] for t in dark if t >= T0 + 4 * STEP
    )
    assert figures[4]["contacts"] == {
        "files": 1, "rejected": [], "new": 1, "duplicates": 0, "fed": 1, "late": 0,
        "stale": 0, "unknown_customers": 0, "pending": 0,
    }  # fmt: skip
    assert (inbox / "done" / "crm-1.csv").is_file() and not (inbox / "crm-1.csv").exists()
    # the run's summary and the Prometheus counter sum the cycles
    assert op.summary.contacts == {"fed": 1, "late": 0, "duplicates": 0, "stale": 0,
                                   "unknown_customers": 0, "files_rejected": 0}  # fmt: skip
    assert op.metrics.contacts.labels("fed")._value.get() == 1.0


def test_a_garbage_file_is_quarantined_with_a_clear_error_and_the_loop_goes_on(tmp_path):
    op = _operator(tmp_path)
    inbox = tmp_path / "inbox"
    try:
        op.run_cycle()
        op.run_cycle()
        bad = f"ts,customer_id\n{_at(1)},C-B\nyesterday,C-C\n{_at(1)},\n"
        _drop(inbox, "bad.csv", bad)
        _drop(inbox, "binary.jsonl", "\x00\x01garbage\n")
        (inbox / "notes.txt").write_text("not a contact file")
        _drop(inbox, "good.jsonl", json.dumps({"ts": _at(2), "customer_id": "C-A"}) + "\n")
        fig = op.run_cycle()
        assert fig["cycle"] == 3
    finally:
        op.close()
    got = fig["contacts"]
    assert sorted(got["rejected"]) == ["bad.csv", "binary.jsonl", "notes.txt"]
    assert got["files"] == 1 and got["fed"] == 1  # the good file of the same cycle is used
    rejected = inbox / "rejected"
    # never lost: every rejected file moved whole, with its error beside it
    assert (rejected / "bad.csv").read_text() == bad
    err = (rejected / "bad.csv.error.txt").read_text()
    assert "bad.csv:3: ts: 'yesterday' is not an ISO 8601 time" in err
    assert "bad.csv:4: customer_id: a value is required" in err
    assert "NUL" in (rejected / "binary.jsonl.error.txt").read_text()
    assert "not a .csv or .jsonl" in (rejected / "notes.txt.error.txt").read_text()
    assert not [p for p in inbox.iterdir() if p.is_file()]  # nothing left to re-read
    assert op.summary.contacts["files_rejected"] == 3
    # nothing of the bad file reached the loop: only A's contact was fed
    assert op.contacts.state_dict()["seen"].keys() == {
        f"c:C-A|{(T0 + 2 * STEP).isoformat()}|None|None"
    }


def test_late_contacts_count_from_their_own_step_duplicates_and_strangers_do_not(tmp_path):
    """A late file: a call before A went dark does not make A's outage 'contacted'; a
    call during it does, from its own step, as ``guardian decide`` would place them."""
    op = _operator(tmp_path)
    inbox = tmp_path / "inbox"
    try:
        for _ in range(5):
            op.run_cycle()
        before = (T0 + STEP).isoformat()  # step 1: A was still up
        _drop(inbox, "late.csv", f"ts,customer_id,channel\n{before},C-A,phone\n"
                                 f"{before},C-ZZ,phone\n")  # fmt: skip
        f5 = op.run_cycle()["contacts"]
        calls_before = float(op.loop.observer.calls[0])
        st5 = op.loop.observer.status().loc["A"]
        during = (T0 + 2 * STEP + pd.Timedelta(minutes=1)).isoformat()  # in step 3's window
        _drop(inbox, "late2.csv", f"ts,customer_id,channel\n{during},C-A,chat\n")
        _drop(inbox, "again.csv", f"ts,customer_id,channel\n{before},C-A,phone\n")
        f6 = op.run_cycle()["contacts"]
        st6 = op.loop.observer.status().loc["A"]
    finally:
        op.close()
    assert (f5["fed"], f5["late"], f5["unknown_customers"]) == (1, 1, 1)
    assert 0.9 < calls_before < 1.0  # counted, decayed since its own step
    assert not st5["contacted_since_down"]
    assert (f6["fed"], f6["late"], f6["duplicates"]) == (1, 1, 1)
    assert st6["contacted_since_down"]
    # counted from step 3 (the step decide places it in), not from this cycle (step 6)
    assert st6["last_call_min"] == pytest.approx(15.0)


def test_contacts_reach_the_warehouse_so_decide_replays_them_at_their_step(tmp_path):
    from guardian_lib.history import HistoryTelemetrySource
    from guardian_lib.warehouse import connect

    op = _operator(tmp_path)
    inbox = tmp_path / "inbox"
    when = T0 + 2 * STEP + pd.Timedelta(minutes=1)
    try:
        for k in range(5):
            if k == 4:
                _drop(inbox, "c.csv", f"ts,customer_id,reason\n{when.isoformat()},C-A,slow\n")
            op.run_cycle()
        ids = np.array(list(op.fleet.onu_ids))
    finally:
        op.close()
    con = connect(tmp_path / "wh")
    try:
        ticks = list(HistoryTelemetrySource(con, ids, T0, T0 + 4 * STEP, 300))
    finally:
        con.close()
    calls = [(t.ts, e) for t in ticks for e in t.events if e.type == "CUSTOMER_CALL"]
    assert len(calls) == 1
    step, ev = calls[0]
    assert step == T0 + 3 * STEP and ev.entity_id == "C-A"
    assert json.loads(ev.payload) == {"channel": None, "reason": "slow", "onu_id": "A"}


def test_a_restart_keeps_what_was_seen_and_what_is_not_yet_due(tmp_path):
    op = _operator(tmp_path)
    inbox = tmp_path / "inbox"
    future = (T0 + STEP + pd.Timedelta(minutes=7)).isoformat()  # due at step 3
    try:
        op.run_cycle()
        _drop(inbox, "a.csv", f"ts,customer_id\n{_at(0)},C-B\n{future},C-C\n")
        f = op.run_cycle()["contacts"]
    finally:
        op.close()
    assert (f["fed"], f["pending"]) == (1, 1)
    op = _operator(tmp_path)
    op.source.k = 2
    try:
        _drop(inbox, "a-again.csv", f"ts,customer_id\n{_at(0)},C-B\n{future},C-C\n")
        f2 = op.run_cycle()["contacts"]  # step 2: C's contact not yet due
        f3 = op.run_cycle()["contacts"]  # step 3
    finally:
        op.close()
    assert (f2["duplicates"], f2["fed"], f2["pending"]) == (2, 0, 1)
    assert (f3["fed"], f3["pending"]) == (1, 0)


def test_contact_files_are_checked_as_hostile_input(tmp_path):
    utc, latest = ZoneInfo("UTC"), T0 + STEP

    def read(name: str, text: str | bytes):
        data = text.encode() if isinstance(text, str) else text
        return read_contact_file(name, data, utc, latest)

    ok = read("x.csv", "\ufeffts,customer_id,extra\n2026-01-05T00:01:00,C-1,ignored\n")
    assert ok[0].ts == T0 + pd.Timedelta(minutes=1) and ok[0].customer_id == "C-1"
    sp = read_contact_file("x.csv", b"ts,customer_id\n2026-01-04T21:01:00,C-1\n",
                           ZoneInfo("America/Sao_Paulo"), latest)  # fmt: skip
    assert sp[0].ts == T0 + pd.Timedelta(minutes=1)  # a time without offset: the site's zone
    for name, text, message in [
        ("a.csv", "when,who\n", "a.csv:1: header: missing column(s) ['ts', 'customer_id']"),
        ("b.csv", "ts,customer_id\nnow,C-1\n", "b.csv:2: ts: 'now' is not an ISO 8601 time"),
        ("c.csv", "ts,customer_id\n2026-01-05T00:00:00Z,C-1,x\n", "c.csv:2: more fields"),
        ("d.csv", "ts,customer_id\n2026-01-06T00:00:00Z,C-1\n", "d.csv:2: ts: 2026-01-06"),
        ("e.csv", "ts,customer_id\n2026-01-05T00:00:00Z,C\x1b[31m\n", "e.csv:2: customer_id: control"),
        ("f.jsonl", '{"ts": "2026-01-05T00:00:00Z", "customer_id": ["x"]}\n', "f.jsonl:1: customer_id: expected text"),
        ("g.jsonl", "[1, 2]\n", "g.jsonl:1: expected a JSON object"),
        ("h.csv", b"ts,customer_id\n\xff\xfe\n", "h.csv: not UTF-8"),
        ("i.csv", "ts,customer_id,ts\n", "i.csv:1: header: repeated column(s) ['ts']"),
        ("j.csv", f"ts,customer_id\n2026-01-05T00:00:00Z,{'x' * 200}\n", "j.csv:2: customer_id: longer"),
    ]:  # fmt: skip
        with pytest.raises(ContactFileError, match=re.escape(message)):
            read(name, text)
    # too large, or a symbolic link: refused before reading, moved aside
    op = _operator(tmp_path, max_file_bytes=1000)
    inbox = tmp_path / "inbox"
    secret = tmp_path / "secret.csv"
    secret.write_text(f"ts,customer_id\n{_at(0)},C-A\n")
    (inbox / "link.csv").symlink_to(secret)
    _drop(inbox, "big.csv", "ts,customer_id\n" + f"{_at(0)},C-A\n" * 100)
    try:
        f = op.run_cycle()["contacts"]
    finally:
        op.close()
    assert sorted(f["rejected"]) == ["big.csv", "link.csv"] and f["fed"] == 0
    assert "more than 1000" in (inbox / "rejected" / "big.csv.error.txt").read_text()
    assert "symbolic link" in (inbox / "rejected" / "link.csv.error.txt").read_text()
    assert (inbox / "rejected" / "link.csv").is_symlink() and secret.is_file()


def test_the_site_validates_the_contacts_section(tmp_path):
    from guardian_lib.operate.site import load_site

    assert load_site(_site(tmp_path)).contacts.max_age_h == 24.0
    with pytest.raises(ConfigError, match="contacts.timezone: Value error, unknown time zone"):
        load_site(_site(tmp_path, timezone="Mars/Olympus"))
    with pytest.raises(ConfigError, match="contacts.max_age_h"):
        load_site(_site(tmp_path, max_age_h=0))
