"""``guardian decide``: operate's closed loop replayed over a warehouse built from an
operator's exports alone, in simulate mode, audited for ``guardian report``."""

from __future__ import annotations

import json
import os

import duckdb
import numpy as np
import pandas as pd
import pytest

from guardian_lib.layout import RunLayout

START, END = "2026-01-06T00:00:00", "2026-01-06T08:00:00"  # 8 h of the busy export
HALF = "2026-01-06T04:00:00"
SHORT = ("--start", START, "--end", END, "--warmup-hours", "2", "--models", "rules")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, operator_export):
    """A warehouse imported from the operator export alone (no simulator table)."""
    from guardian_lib.owndata import import_source

    export = operator_export[1]
    run = tmp_path_factory.mktemp("decide") / "acme"
    import_source(run, export / "mapping.yaml", source_dir=export)
    assert not (run / "run.json").exists()
    return run


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """``guardian ARGS`` in this process; exit code, stdout and stderr."""
    from guardian_lib.cli import main

    with pytest.raises(SystemExit) as exc:
        main(list(args))
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def _audit(path, sql: str, *params) -> pd.DataFrame:
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql, list(params)).df()
    finally:
        con.close()


def test_decisions_land_in_the_audit_and_the_report_reads_them(warehouse, tmp_path, capsys):
    from guardian_lib.dashboards._data import load_run_data
    from guardian_lib.dashboards._views import decision_reasons

    out = tmp_path / "decide.json"
    code, stdout, err = _main(capsys, "decide", "--run", str(warehouse), *SHORT,
                              "--json", str(out))  # fmt: skip
    assert code == 0, err
    s = json.loads(out.read_text())
    audit = RunLayout(warehouse).audit
    assert s["audit"] == str(audit) and not s["already_audited"]
    assert s["tick_s"] == 300 and s["onus"] == 64 and s["model_version"] == "rules"
    assert s["ticks"] == 8 * 12 + 1 and s["warmup_ticks"] == 2 * 12
    dec = _audit(audit, "SELECT * FROM decisions WHERE starts_with(decision_id, ?)", s["tag"])
    act = _audit(audit, "SELECT * FROM actions WHERE starts_with(action_id, ?)", s["tag"])
    assert len(dec) == s["decisions"] > 0
    # every decision round is on the 15-minute cadence, inside the window
    ts = pd.to_datetime(dec["ts"], utc=True)
    assert ts.min() >= pd.Timestamp(START, tz="UTC") and ts.max() <= pd.Timestamp(END, tz="UTC")
    assert ((ts - ts.min()).dt.total_seconds() % 900 == 0).all()
    assert set(dec["mode"]) == {"simulate"}
    assert set(act["status"]) <= {"simulated", "blocked"}  # nothing was sent anywhere
    by_action = dec["action"].value_counts().to_dict()
    assert s["decisions_by_action"] == {k: int(v) for k, v in sorted(by_action.items())}
    sent = act[act["status"] == "simulated"]["action_type"]
    assert s["reboots"] == int((sent == "reboot").sum())
    assert s["visits_ordered"] == int((sent == "schedule_visit").sum())
    assert s["incidents_opened"] == by_action.get("open_incident", 0)
    assert "decisions" in stdout and s["tag"] in stdout
    # operate's missed-poll rule, with its default grace, named in the summary
    assert s["missed_poll_grace_steps"] == 1
    assert f"{s['held_readings']:,} missed readings held ≤ 1 step(s)" in stdout
    # what `guardian report --run` shows
    data = load_run_data(warehouse)
    assert data.sources["audit"] == str(audit)
    reasons = decision_reasons(data, limit=10_000)
    assert len(reasons) == len(dec)


def test_the_same_replay_twice_is_audited_once(warehouse, tmp_path):
    from guardian_lib.operate.decide import decide_run

    audit = tmp_path / "audit.duckdb"
    start, end = pd.Timestamp(START, tz="UTC"), pd.Timestamp(HALF, tz="UTC")
    kw = {"models": "rules", "audit_path": audit, "warmup_h": 1}
    first = decide_run(warehouse, start, end, **kw)
    rows = _audit(audit, "SELECT count(*) AS n FROM decisions")["n"].iat[0]
    again = decide_run(warehouse, start, end, **kw)
    assert again.already_audited and not first.already_audited and again.tag == first.tag
    assert _audit(audit, "SELECT count(*) AS n FROM decisions")["n"].iat[0] == rows
    assert again.decisions_by_action == first.decisions_by_action
    assert (again.reboots, again.visits_held) == (first.reboots, first.visits_held)
    # another cadence over the same hours is another replay: appended, and said so
    other = decide_run(warehouse, start, end, every_minutes=30, **kw)
    assert other.tag != first.tag and not other.already_audited
    assert other.other_decisions_in_window == first.decisions
    total = _audit(audit, "SELECT count(*) AS n FROM decisions")["n"].iat[0]
    assert total == first.decisions + other.decisions
    # tickets imported again (another file): another history, replayed anew
    tickets = RunLayout(warehouse).ops("service_orders")
    st = tickets.stat()
    os.utime(tickets, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    anew = decide_run(warehouse, start, end, **kw)
    assert anew.tag != first.tag and not anew.already_audited


def test_bad_arguments_are_named(warehouse, tmp_path, capsys, monkeypatch):
    run = str(warehouse)
    code, _, err = _main(capsys, "decide", "--run", str(tmp_path / "nope"), "--models", "rules")
    assert code == 2 and "no such run folder" in err
    code, _, err = _main(capsys, "decide", "--run", run, "--models", "rules",
                         "--start", "2025-03-01", "--end", "2025-03-02")  # fmt: skip
    assert code == 2 and "no SILVER telemetry between" in err and "the run holds" in err
    code, _, err = _main(capsys, "decide", "--run", run, "--models", "rules",
                         "--start", "2026-01-06T08:00", "--end", "2026-01-06T00:00")  # fmt: skip
    assert code == 2 and "is before --start" in err
    # one bound past the run: named against the run's range, not a default the user never
    # gave ("--end 2026-01-06 … is before --start 2027-01-01" before)
    code, _, err = _main(capsys, "decide", "--run", run, "--models", "rules",
                         "--start", "2027-01-01")  # fmt: skip
    assert code == 2 and "--end" not in err
    assert "no SILVER telemetry for --start 2027-01-01" in err and "the run holds" in err
    code, _, err = _main(capsys, "decide", "--run", run, "--models", "rules",
                         "--every-minutes", "7")  # fmt: skip
    assert code == 2 and "multiple of the run's 5-minute grid" in err
    code, _, err = _main(capsys, "decide", "--run", run, "--start", "yesterday-ish")
    assert code == 2 and "--start: expected an ISO 8601 time" in err
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("GUARDIAN_DATA_DIR", str(tmp_path / "empty-registry"))
    code, _, err = _main(capsys, "decide", "--run", run, *SHORT[:4], "--models", "champion")
    assert code == 2 and "--models champion: no model" in err
    assert "guardian train --run" in err and "--labels tickets" in err
    assert not RunLayout(tmp_path / "nope").audit.exists()


def test_the_grace_option_wins_over_the_default(warehouse, tmp_path, capsys):
    out = tmp_path / "g0.json"
    code, stdout, err = _main(capsys, "decide", "--run", str(warehouse), *SHORT[:4],
                              "--models", "rules", "--audit", str(tmp_path / "a.duckdb"),
                              "--missed-poll-grace-steps", "0", "--json", str(out))  # fmt: skip
    assert code == 0, err
    s = json.loads(out.read_text())
    assert s["missed_poll_grace_steps"] == 0 and s["held_readings"] == 0
    assert "≤ 0 step(s)" in stdout
    code, _, err = _main(capsys, "decide", "--run", str(warehouse), "--missed-poll-grace-steps",
                         "-1")  # fmt: skip
    assert code == 2 and "--missed-poll-grace-steps" in err


# --- the history source and its adapters, on a hand-made warehouse ---------------------


def _con(telemetry: pd.DataFrame, events: pd.DataFrame | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_t", telemetry)
    con.execute("CREATE TABLE telemetry AS SELECT * FROM _t")
    con.register("_c", pd.DataFrame({"customer_id": ["C1", "C2"], "onu_id": ["A", "B"]}))
    con.execute("CREATE TABLE customers AS SELECT * FROM _c")
    if events is not None:
        con.register("_e", events)
        con.execute("CREATE TABLE events AS SELECT * FROM _e")
    return con


def test_history_ticks_missed_polls_gaps_and_contacts():
    from guardian_lib.history import HistoryTelemetrySource, silver_grid_s

    t0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
    step = pd.Timedelta(minutes=5)
    rows = [  # A misses steps 1 and 2; step 3 has no row at all
        (t0, "A", True, -20.0), (t0, "B", False, np.nan),
        (t0 + step, "B", True, -19.0),
        (t0 + 2 * step, "B", True, -19.5),
        (t0 + 4 * step, "A", True, -22.0), (t0 + 4 * step, "B", True, -19.0),
    ]  # fmt: skip
    tel = pd.DataFrame(rows, columns=["ts", "onu_id", "online", "rx_dbm"])
    for m in ("tx_dbm", "olt_rx_dbm", "snr_db", "ber", "crc_errors", "latency_ms", "loss_pct",
              "uptime_s"):  # fmt: skip
        tel[m] = np.nan
    ev = pd.DataFrame(
        {
            "ts": [
                t0 + pd.Timedelta(minutes=7),
                t0 + pd.Timedelta(minutes=8),
                t0 + pd.Timedelta(minutes=9),
                t0 + pd.Timedelta(minutes=9),
            ],
            "entity_id": ["C2", "C9", "A", "C1"],
            "entity_type": ["customer", "customer", "onu", "customer"],
            "type": ["CUSTOMER_CALL", "CUSTOMER_CALL", "LOS", "CUSTOMER_CALL"],
            "severity": ["info", "info", "critical", None],
            "payload": ['{"channel": "APP"}', "{}", None, '["onu_id", {"x": 1'],
        }  # fmt: skip
    )
    con = _con(tel, ev)
    assert silver_grid_s(con, t0, t0 + 4 * step) == 300
    src = HistoryTelemetrySource(con, np.array(["A", "B"]), t0, t0 + 4 * step, 300)
    ticks = list(src)
    assert [t.ts for t in ticks] == [t0 + k * step for k in range(5)]
    on = [t.get("online") for t in ticks]
    rx = [t.get("rx_dbm") for t in ticks]
    assert on[0].tolist() == [1.0, 0.0]
    # one step without a row: a missed poll, A keeps its reading; two: not read (NaN)
    assert on[1].tolist() == [1.0, 1.0] and rx[1].tolist() == [-20.0, -19.0]
    assert np.isnan(on[2][0]) and on[2][1] == 1.0 and not ticks[2].online[0]
    np.testing.assert_array_equal(rx[3], rx[2])  # a step without any row repeats the last
    assert rx[4].tolist() == [-22.0, -19.0]
    assert (src.ticks, src.gap_ticks, src.held, src.rows) == (5, 1, 1, 6)
    # events after step 1 up to step 2 belong to step 2; the contact names its ONU now
    assert not ticks[1].events and len(ticks[2].events) == 3
    call, los, broken = ticks[2].events
    assert call.onu_id() == "B" and json.loads(call.payload)["channel"] == "APP"
    assert los.onu_id() == "A" and los.payload == "{}"
    # a payload that is no JSON object is replaced, never parsed; the contact still maps
    assert broken.onu_id() == "A" and json.loads(broken.payload) == {"onu_id": "A"}
    assert broken.severity == "info"
    assert ticks[2].onu_events()["onu_id"].tolist() == ["B", "A", "A"]
    assert src.events_unmapped == 1  # C9 is no customer of the inventory


def test_historic_orders_open_at_the_replayed_time():
    from guardian_lib.history import HistoricOrders

    orders = pd.DataFrame(
        {
            "os_id": ["OS1", "OS2", "OS3"],
            "customer_id": ["C1", "C2", "C2"],
            "onu_id": [None, "B", None],
            "opened_at": pd.to_datetime(
                ["2026-01-05T01:00Z", "2026-01-05T02:00Z", "2026-01-05T03:00Z"]
            ),  # fmt: skip
            "closed_at": pd.to_datetime(["2026-01-05T04:00Z", None, None]),
        }
    )
    ho = HistoricOrders(orders, pd.DataFrame({"customer_id": ["C1", "C2"], "onu_id": ["A", "B"]}))
    assert len(ho.open_orders()) == 0  # no time yet
    ho.now = pd.Timestamp("2026-01-05T02:30Z")
    got = ho.open_orders()
    assert got["os_id"].tolist() == ["OS1", "OS2"] and got["onu_id"].tolist() == ["A", "B"]
    ho.now = pd.Timestamp("2026-01-05T05:00Z")
    assert ho.open_orders()["os_id"].tolist() == ["OS2", "OS3"]
    assert list(ho.open_orders().columns) == ["os_id", "onu_id", "status", "opened_by"]


def test_fleet_from_a_bare_inventory():
    from guardian_lib.errors import ConfigError
    from guardian_lib.operate.fleet import fleet_from_warehouse

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE onus AS SELECT * FROM (VALUES ('B', 'P1'), ('A', 'P2')) t(onu_id, pon_id)"
    )
    con.execute(
        "CREATE TABLE pons AS SELECT * FROM (VALUES ('P1', 'O1'), ('P2', 'O1')) t(pon_id, olt_id)"
    )
    f = fleet_from_warehouse(con, "bare")
    assert f.onu_ids.tolist() == ["A", "B"]
    assert f.onus["olt_id"].tolist() == ["O1", "O1"]
    assert f.onus["splitter_id"].tolist() == ["P2", "P1"]  # the PON stands in for the box
    assert f.customers["customer_id"].tolist() == ["A", "B"]
    assert f.customers["cpe_id"].isna().all()  # no CPE: never rebooted
    con.execute("DROP TABLE onus")
    with pytest.raises(ConfigError, match="bare: the warehouse has no 'onus' table"):
        fleet_from_warehouse(con, "bare")


def test_a_site_file_gives_the_limits_the_alias_and_the_tag(warehouse, tmp_path):
    from guardian_lib.operate.decide import decide_run

    (tmp_path / "olts.yaml").write_text("")
    # the site's limits reach the replay: a maintenance window over the whole fleet for the
    # first 4 h blocks the visits, Wi-Fi changes and notices asked in it (reboots are rare in
    # this export: the policies wait for the ones the guard would refuse)
    (tmp_path / "maint.yaml").write_text(
        f"maintenance_windows:\n  - name: all-fleet\n    matchers: {{onu: '~.*'}}\n"
        f"    start: {START}Z\n    end: {HALF}Z\n"
    )
    site = tmp_path / "site.yaml"
    site.write_text(
        "site_id: acme\ninventory: olts.yaml\nwarehouse: .\nmodel_alias: rules\n"
        "safety: {max_actions_fleet_per_hour: 1, maintenance_file: maint.yaml}\n"
    )
    start, end = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    s = decide_run(warehouse, start, end, site=site, audit_path=tmp_path / "a.duckdb", warmup_h=2)
    assert s.tag.startswith("acme-DEC") and s.model_version == "rules"
    assert s.blocked_by_rule.get("maintenance_window", 0) > 0
    blocked = _audit(tmp_path / "a.duckdb", "SELECT * FROM actions WHERE status = 'blocked'")
    assert (pd.to_datetime(blocked["started_at"], utc=True) < pd.Timestamp(HALF, tz="UTC")).all()
    plain = decide_run(warehouse, start, end, models="rules", audit_path=tmp_path / "b.duckdb",
                       warmup_h=2)  # fmt: skip
    assert "maintenance_window" not in plain.blocked_by_rule


def test_onus_and_telemetry_alone_are_enough(operator_export, tmp_path):
    """No customers, street boxes, OLTs, coordinates, events or tickets: the rule scorer
    still decides (no CPE id: nothing to reboot)."""
    import shutil

    import yaml

    from guardian_lib.operate.decide import decide_run
    from guardian_lib.owndata import import_source

    src = tmp_path / "export"
    shutil.copytree(operator_export[1], src)
    mapping = yaml.safe_load((src / "mapping.yaml").read_text())
    onus = mapping["tables"]["onus"]
    onus["columns"] = {k: onus["columns"][k] for k in ("onu_id", "serial", "pon_id")}
    mapping["tables"] = {k: mapping["tables"][k] for k in ("onus", "telemetry")}
    (src / "mapping.yaml").write_text(yaml.safe_dump(mapping, allow_unicode=True))
    run = tmp_path / "bare"
    import_source(run, src / "mapping.yaml", source_dir=src)
    s = decide_run(run, pd.Timestamp(START, tz="UTC"), pd.Timestamp(HALF, tz="UTC"),
                   models="rules", warmup_h=1)  # fmt: skip
    assert s.onus == 64 and s.ticks == 4 * 12 + 1 and s.telemetry_rows > 0
    assert s.events == 0 and s.open_orders_known == 0
    assert s.decisions > 0 and s.decisions_by_action.get("open_case", 0) > 0
    # no CPE id to reboot: refused as operate's ACS adapter refuses it, never "simulated"
    assert s.reboots == 0 and s.actions_failed > 0
    act = _audit(RunLayout(run).audit, "SELECT * FROM actions WHERE status <> 'blocked'")
    failed = act[act["status"] == "failed"]
    assert len(failed) == s.actions_failed
    assert set(failed["action_type"]) <= {"reboot", "change_wifi_profile"}
    assert failed["error"].str.contains("unknown device 'None'").all()
    assert not act.loc[act["status"] == "simulated", "action_type"].isin(["reboot"]).any()
    dec = _audit(RunLayout(run).audit, "SELECT subject FROM decisions WHERE action = 'open_case'")
    assert set(dec["subject"]) <= set(pd.read_parquet(run / "inventory" / "onus.parquet")["onu_id"])
