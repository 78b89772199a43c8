"""benchmarks/unpowered_failures.py: failures that struck an ONU without power, and their rows."""

from __future__ import annotations

import pandas as pd
import pytest
from benchmark_scripts import benchmark_module

T0 = pd.Timestamp("2026-11-09 00:00", tz="UTC")
NAT = pd.NaT


def _h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


@pytest.fixture(scope="module")
def bench():
    yield from benchmark_module("unpowered_failures")


def _truth() -> pd.DataFrame:
    rows = [
        # A: dies 20 h into its customer's 40 h power cut, never repaired.
        ("P1", "customer_power_off", _h(0), _h(0), _h(40), ["A"]),
        ("H1", "hardware_failure", _h(20), _h(20), NAT, ["A"]),
        # B: dies with power on.
        ("H2", "hardware_failure", _h(5), _h(5), _h(30), ["B"]),
        # C: dies 2 h into an area's 4 h power cut; D is only in the cut.
        ("P2", "power_outage", _h(10), _h(10), _h(14), ["C", "D"]),
        ("H3", "hardware_failure", _h(12), _h(12), _h(30), ["C"]),
        # E: a drifting laser that never died (no impact) during a power cut.
        ("P3", "customer_power_off", _h(0), _h(0), _h(10), ["E"]),
        ("H4", "hardware_failure", _h(2), NAT, NAT, ["E"]),
        # F: an ordinary power cut whose customer calls at 30 h; G's without a call.
        ("P4", "customer_power_off", _h(0), _h(0), _h(48), ["F"]),
        ("P5", "customer_power_off", _h(1), _h(1), _h(3), ["G"]),
    ]
    cols = ["fault_id", "kind", "start_at", "impact_start_at", "end_at", "affected_onus"]
    t = pd.DataFrame(rows, columns=cols)
    for c in ("start_at", "impact_start_at", "end_at"):
        t[c] = pd.to_datetime(t[c], utc=True)
    return t


def _calls(*pairs: tuple[float, str]) -> pd.DataFrame:
    return pd.DataFrame({"ts": [_h(h) for h, _ in pairs], "onu_id": [o for _, o in pairs]})


def test_masked_failures_only_those_that_struck_without_power(bench):
    m = bench.masked_failures(_truth()).set_index("fault_id")
    assert list(m.index) == ["H1", "H3"]
    assert m.loc["H1", "power_kind"] == "customer_power_off"
    assert m.loc["H1", "power_back_at"] == _h(40)
    assert m.loc["H3", "power_kind"] == "power_outage"
    assert m.loc["H3", "power_back_at"] == _h(14)


def test_masked_failure_whose_power_never_came_back(bench):
    t = _truth()
    t.loc[t["fault_id"] == "P1", "end_at"] = NAT
    m = bench.masked_failures(t).set_index("fault_id")
    assert pd.isna(m.loc["H1", "power_back_at"])


def test_split_rows_by_power_and_by_the_call_after_it(bench):
    grid = pd.date_range(_h(0), _h(72), freq="30min", inclusive="left")
    rows = pd.DataFrame({"ts": grid, "onu_id": "A"})
    rows["cause"] = ["EQUIPMENT_FAIL" if t >= _h(20) else "CUSTOMER_PREMISES" for t in grid]
    rows["pred"] = ["EQUIPMENT_FAIL" if t >= _h(60) else "CUSTOMER_PREMISES" for t in grid]
    masked = bench.masked_failures(_truth())
    # A call while the power is off is not evidence of the failure; the one at 50 h is.
    s = bench.split_rows(rows, masked, _calls((10, "A"), (50, "A"), (45, "B")))
    a = s.set_index("fault_id").loc["H1"]
    assert a["rows_equipment"] == 104  # 20 h .. 72 h
    assert a["rows_power_off"] == 40  # 20 h .. 40 h
    assert a["rows_power_back"] == 64  # 40 h .. 72 h
    assert a["rows_after_call"] == 44  # 50 h .. 72 h
    assert a["first_call_after_power_h"] == pytest.approx(10.0)
    assert a["wrong_power_off"] == 40
    assert a["wrong_power_back"] == 40  # 40 h .. 60 h
    assert a["wrong_after_call"] == 20  # 50 h .. 60 h
    c = s.set_index("fault_id").loc["H3"]  # no rows of C given: nothing counted
    assert c["rows_equipment"] == 0 and pd.isna(c["first_call_after_power_h"])


def test_power_off_calls_base_rate(bench):
    end = _h(72)
    b = bench.power_off_calls(_truth(), _calls((30, "F"), (2, "B")), end, every_minutes=30)
    # P1 (A) and P3 (E) are on ONUs with a hardware failure: left out.
    assert b["spells"] == 2 and b["called"] == 1
    assert b["rows"] == 96 + 4  # F 0..48 h, G 1..3 h
    assert b["rows_after_call"] == 36  # F 30..48 h
    assert b["rows_over_24h"] == 48  # F 24..48 h
    assert b["rows_after_call_over_24h"] == 36
    assert b["median_h"] == pytest.approx(25.0)


def test_unpowered_share_counts_overlaps_once(bench):
    t = _truth()
    # C's area power cut (10..14 h) also covered by a power cut of its own (12..20 h).
    extra = pd.DataFrame([{
        "fault_id": "P6", "kind": "customer_power_off", "start_at": _h(12),
        "impact_start_at": _h(12), "end_at": _h(20), "affected_onus": ["C"],
    }])  # fmt: skip
    t = pd.concat([t, extra], ignore_index=True)
    share = bench.unpowered_share(t, onus=10, start=_h(0), end=_h(100))
    # A 40, C 10 (10..20), D 4, E 10, F 48, G 2 hours of 10 ONUs x 100 h.
    assert share == pytest.approx((40 + 10 + 4 + 10 + 48 + 2) / 1000)
    # Cut at the period's end: A's 0..40 h and F's 0..48 h count up to 30 h.
    assert bench.unpowered_share(t, onus=10, start=_h(0), end=_h(30)) == pytest.approx(
        (30 + 10 + 4 + 10 + 30 + 2) / 300
    )
