"""SLA and network KPIs (guardian_lib.sla) on a hand-made warehouse whose answers are known."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from guardian_lib.dashboards import load_run_data
from guardian_lib.layout import RunLayout
from guardian_lib.sla import SLA_COLUMNS, sla_kpis, write_sla

T0 = pd.Timestamp("2026-01-01T00:00:00Z")
STEP = pd.Timedelta(minutes=5)


def _warehouse(offline: dict[str, list[tuple[int, int]]], polls: int = 288 * 40):
    """Two regions, two OLTs, three PONs, four ONUs polled every 5 min for ``polls`` polls.

    ``offline`` maps an ONU to ``[(first poll, n polls)]`` during which it is offline.
    """
    con = duckdb.connect(":memory:")
    con.execute(
        "CREATE TABLE olts AS SELECT * FROM (VALUES ('O1','North'),('O2','South')) t(olt_id, region)"
    )
    con.execute(
        "CREATE TABLE pons AS SELECT * FROM (VALUES ('P1','O1'),('P2','O1'),('P3','O2')) t(pon_id, olt_id)"
    )
    onus = {"U1": "P1", "U2": "P1", "U3": "P2", "U4": "P3"}
    con.execute("CREATE TABLE onus (onu_id VARCHAR, pon_id VARCHAR)")
    con.executemany("INSERT INTO onus VALUES (?, ?)", list(onus.items()))
    con.execute("CREATE TABLE customers (customer_id VARCHAR, onu_id VARCHAR)")
    con.executemany("INSERT INTO customers VALUES (?, ?)", [(f"C{o}", o) for o in onus])
    rows = []
    for onu in onus:
        down = set()
        for first, n in offline.get(onu, []):
            down.update(range(first, first + n))
        rows += [(T0 + i * STEP, onu, i not in down) for i in range(polls)]
    tel = pd.DataFrame(rows, columns=["ts", "onu_id", "online"])  # noqa: F841 (read by DuckDB)
    con.execute("CREATE TABLE telemetry AS SELECT * FROM tel")
    orders = pd.DataFrame(  # noqa: F841 (read by DuckDB)
        {
            "os_id": ["S1", "S2", "S3"],
            "customer_id": ["CU1", "CU2", "CU4"],
            "status": ["completed", "completed", "cancelled"],
            "outcome": ["no_fault_found", "fixed", None],
        }
    )
    con.execute("CREATE TABLE service_orders AS SELECT * FROM orders")
    return con


def test_outages_merge_across_a_pon_and_repeats_count_per_onu():
    day = 288  # polls per day
    # U1 and U2 share a PON cut (overlapping); U1 fails again 3 days and 20 days later.
    con = _warehouse(
        {"U1": [(100, 24), (100 + 3 * day, 12), (100 + 20 * day, 6)], "U2": [(110, 24)]}
    )
    t = sla_kpis(con).set_index(["level", "scope"])
    assert list(t.reset_index().columns) == SLA_COLUMNS
    p1 = t.loc[("pon", "P1")]
    assert p1["customers"] == 2
    assert p1["outages"] == 3  # the two overlapping ONU outages are one PON outage
    assert p1["outage_hours"] == pytest.approx((34 + 12 + 6) * 5 / 60)
    assert p1["customer_hours"] == pytest.approx((24 + 12 + 6 + 24) * 5 / 60)
    assert p1["mttr_hours"] == pytest.approx(p1["outage_hours"] / 3)
    assert p1["repeat_7d"] == 1 and p1["repeat_30d"] == 2
    polls = 288 * 40
    assert p1["availability"] == pytest.approx(1 - (24 + 12 + 6 + 24) / (2 * polls))
    assert t.loc[("pon", "P2"), "availability"] == 1.0 and t.loc[("pon", "P2"), "outages"] == 0
    # visits: completed orders only; one of the two in P1 found no fault
    assert p1["visits"] == 2 and p1["no_fault_found_share"] == 0.5
    assert t.loc[("pon", "P3"), "visits"] == 0
    # the levels add up
    net = t.loc[("network", "network")]
    assert net["customers"] == 4 and net["customer_hours"] == pytest.approx(p1["customer_hours"])
    assert t.loc[("olt", "O1"), "region"] == "North" and t.loc[("pon", "P3"), "olt_id"] == "O2"
    assert t.loc[("region", "South"), "outages"] == 0


def test_sla_needs_the_inventory():
    con = duckdb.connect(":memory:")
    con.execute("CREATE TABLE telemetry (ts TIMESTAMPTZ, onu_id VARCHAR, online BOOLEAN)")
    with pytest.raises(ValueError, match="no table 'onus'"):
        sla_kpis(con)


def test_dashboard_report_and_files_show_the_same_table(tiny_run, tmp_path):
    data = load_run_data(tiny_run)
    direct = sla_kpis(tiny_run)
    pd.testing.assert_frame_equal(data.sla, direct)
    run = tmp_path / "run"
    run.mkdir()
    parquet, js = write_sla(run, data.sla)
    assert (parquet, js) == (RunLayout(run).sla, RunLayout(run).sla_json)
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), direct)
    rows = json.loads(js.read_text())["rows"]
    assert [r["scope"] for r in rows] == list(direct["scope"])
    assert rows[0]["availability"] == pytest.approx(direct["availability"].iloc[0])
    assert set(direct["level"]) == {"network", "region", "olt", "pon"}
