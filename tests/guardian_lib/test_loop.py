"""The closed loop: Tick/EventRow, one update verb, ClosedLoop with fake adapters, restarts."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from guardian_lib.actions import Dispatcher, UnknownTargetError
from guardian_lib.decision import Autopilot, AutopilotSettings, Decision, RuleScorer, RulesPolicy
from guardian_lib.loop import ClosedLoop, EventRow, Tick
from guardian_lib.loop.protocols import StreamConsumer, TelemetrySource

T0 = pd.Timestamp("2026-01-05 12:00", tz="UTC")
N = 16
IDS = [f"ONU{i:02d}" for i in range(N)]


def _inventory() -> tuple[pd.DataFrame, pd.DataFrame]:
    onus = pd.DataFrame(
        {"onu_id": IDS, "pon_id": [f"PON{i // 8}" for i in range(N)], "olt_id": "OLT1",
         "splitter_id": [f"B{i // 4}" for i in range(N)]}
    )  # fmt: skip
    cust = pd.DataFrame(
        {"customer_id": [f"C{i:02d}" for i in range(N)], "onu_id": IDS,
         "cpe_id": [f"CPE{i:02d}" for i in range(N)], "region": "R", "segment": "residential"}
    )  # fmt: skip
    return onus, cust


def _tick(k: int, hung: tuple[int, ...] = (), events=(), tick_min: float = 5.0) -> Tick:
    """Round ``k``: healthy fleet, PPPoE down (100 % loss while online) on ``hung``."""
    loss = np.full(N, 0.1)
    loss[list(hung)] = 100.0
    values = {"online": np.ones(N, dtype=bool), "rx_dbm": np.full(N, -20.0),
              "tx_dbm": np.full(N, 2.0), "ber": np.full(N, 1e-12),
              "latency_ms": np.full(N, 10.0), "loss_pct": loss}  # fmt: skip
    return Tick(T0 + pd.Timedelta(minutes=tick_min * k), values, tuple(events))


class Devices:
    """Knows the inventory's CPEs; a reboot clears the hang of the source."""

    def __init__(self, source=None):
        self.calls, self.source = [], source

    def reboot(self, device_id):
        if device_id not in {f"CPE{i:02d}" for i in range(N)}:
            raise UnknownTargetError("Devices.reboot", "CPE", device_id)
        self.calls.append(device_id)
        if self.source is not None:
            self.source.hung.discard(int(device_id[3:]))
        return "done"


class Field:
    def __init__(self):
        self.orders = [("OS1", "ONU09", "scheduled", "call_centre")]

    def open_visit(self, onu_id, reason, priority):
        self.orders.append((f"OS{len(self.orders) + 1}", onu_id, "scheduled", "autopilot"))
        return self.orders[-1][0]

    def cancel_visit(self, os_id, reason):
        return False

    def status(self, os_id):
        return "scheduled"

    def open_orders(self):
        return pd.DataFrame(self.orders, columns=["os_id", "onu_id", "status", "opened_by"])


class Source:
    """A telemetry source: ONU 05's CPE hangs from round 2 until someone reboots it."""

    def __init__(self, rounds: int):
        self.rounds, self.hung = rounds, set()

    def __iter__(self):
        for k in range(self.rounds):
            if k == 2:
                self.hung.add(5)
            yield _tick(k, hung=tuple(self.hung))


class RecordingScorer(RuleScorer):
    """A rule scorer that must be bound to the fleet and records every tick it is fed."""

    def __init__(self):
        super().__init__()
        self.bound_to, self.fed, self.seen_orders = None, [], []

    def bind(self, onus, tick_s):
        out = RecordingScorer()
        out.bound_to = (list(onus["onu_id"]), tick_s)
        return out

    def update(self, tick):
        self.fed.append(tick.ts)

    def __call__(self, snapshot):
        self.seen_orders.append(set(snapshot.service_orders["os_id"]))
        return super().__call__(snapshot)


def _loop(devices=None, field=None, scorer=None, every=3, policy=None) -> ClosedLoop:
    settings = AutopilotSettings(autopilot_mode="execute", jitter_max_seconds=0,
                                 kill_switch=False)  # fmt: skip
    disp = Dispatcher("execute", devices=devices, field_ops=field)
    ap = Autopilot(policy or RulesPolicy(), scorer or RuleScorer(), settings=settings,
                   dispatcher=disp)  # fmt: skip
    return ClosedLoop(*_inventory(), ap, every=every, tick_s=300)


# --- Tick and EventRow -----------------------------------------------------------------------
def test_tick_rejects_bad_input_naming_the_measure():
    on = np.ones(3, dtype=bool)
    with pytest.raises(ValueError, match="timezone-aware"):
        Tick(pd.Timestamp("2026-01-05"), {"online": on})
    with pytest.raises(ValueError, match="lack 'online'"):
        Tick(T0, {"rx_dbm": np.zeros(3)})
    with pytest.raises(ValueError, match="unknown measure 'rx'"):
        Tick(T0, {"online": on, "rx": np.zeros(3)})
    with pytest.raises(ValueError, match="'loss_pct' has shape"):
        Tick(T0, {"online": on, "loss_pct": np.zeros(4)})
    with pytest.raises(ValueError, match="'online' must be bool or 0/1"):
        Tick(T0, {"online": np.array([1.0, 2.0, 0.0])})
    with pytest.raises(TypeError, match="EventRow"):
        Tick(T0, {"online": on}, (("x", "y"),))


def test_tick_values_events_and_frames():
    call = EventRow(T0, "C01", "customer", "CUSTOMER_CALL", "info", json.dumps({"onu_id": "O1"}))
    los = EventRow(T0, "O2", "onu", "LOS", "major")
    alarm = EventRow(T0, "OLT1", "olt", "OLT_ALARM", "critical", '{"board": "1"}')
    t = Tick("2026-01-05T12:00+03:00", {"online": np.array([1.0, np.nan, 0.0])}, [call, los, alarm])
    assert t.ts == T0 - pd.Timedelta(hours=3) and str(t.ts.tz) == "UTC"
    assert t.n_onus == 3 and t.online.tolist() == [True, False, False]  # not read: offline
    assert np.isnan(t.numeric()["online"][1]) and np.isnan(t.get("snr_db")).all()
    assert (call.onu_id(), los.onu_id(), alarm.onu_id()) == ("O1", "O2", None)
    assert t.onu_events().values.tolist() == [["O1", "CUSTOMER_CALL"], ["O2", "LOS"]]
    frame = t.events_frame()
    assert list(frame.columns) == ["ts", "entity_id", "entity_type", "type", "severity", "payload"]
    assert frame["type"].tolist() == ["CUSTOMER_CALL", "LOS", "OLT_ALARM"]


def test_tick_from_a_table_aligns_to_the_fleet():
    tel = pd.DataFrame({"onu_id": ["B", "X", "A"], "online": [True, True, True],
                        "rx_dbm": [-20.0, -1.0, -21.0]})  # fmt: skip
    t = Tick.from_frame(T0, tel, ["A", "B", "C"])
    assert t.online.tolist() == [True, True, False]  # C has no row: offline
    np.testing.assert_array_equal(t.get("rx_dbm"), [-21.0, -20.0, np.nan])


# --- ClosedLoop ------------------------------------------------------------------------------
def test_a_hung_cpe_is_rebooted_verified_and_its_case_closed():
    source = Source(rounds=16)
    devices, field = Devices(source), Field()
    scorer = RecordingScorer()
    loop = _loop(devices, field, scorer)
    assert isinstance(source, TelemetrySource)
    assert loop.run(source) == 16 and loop.ticks == 16
    assert devices.calls == ["CPE05"]
    acts = loop.autopilot.audit.frame("actions")
    reboot = acts.loc[acts["action_type"] == "reboot"]
    assert reboot["status"].tolist() == ["succeeded"]  # service came back after it
    assert "ONU05" not in loop.autopilot.cases
    # The scorer was bound to this fleet and fed every tick; decisions every 3 ticks,
    # each seeing the field service's open orders.
    bound = loop.scorer
    assert bound is loop.autopilot.scorer and bound.bound_to == (IDS, 300)
    assert len(bound.fed) == 16 and bound.fed == sorted(bound.fed)
    assert len(bound.seen_orders) == 6 and all("OS1" in s for s in bound.seen_orders)
    assert isinstance(bound, StreamConsumer) and loop.consumers[1] is bound
    eps = loop.tracker.episodes()
    assert set(eps["onu_id"]) == {"ONU05"}  # the hang, ended by the reboot


def test_events_since_the_last_decision_reach_the_policy():
    seen = []

    class Spy(RulesPolicy):
        def decide(self, snapshot):
            seen.append(snapshot.events["type"].tolist())
            return super().decide(snapshot)

    loop = _loop(Devices(), Field(), policy=Spy(), every=2)
    for k in range(4):
        loop.feed(_tick(k, events=[EventRow(T0, IDS[k], "onu", f"E{k}", "info")]))
    assert seen == [["E0"], ["E1", "E2"]]


def test_a_rounds_events_and_cases_frames_are_built_when_read_as_of_their_round(monkeypatch):
    """The default policy reads neither frame, so neither is built; a snapshot kept by a
    policy gives, when read later, the events of its round and the cases as they were
    then (the autopilot's cases change after the round)."""
    import guardian_lib.loop.closed as closed
    from guardian_lib.decision import Snapshot

    built = []
    events_frame = closed._events_frame
    monkeypatch.setattr(closed, "_events_frame", lambda ev: built.append(1) or events_frame(ev))
    source = Source(rounds=16)
    loop = _loop(Devices(source), Field())
    loop.run(source)
    assert built == [] and loop.autopilot.cases == {}  # a case was opened and closed

    kept = []

    class Keep(RulesPolicy):
        def decide(self, snapshot):
            kept.append((snapshot, loop.autopilot.cases_frame()))
            return super().decide(snapshot)

    source = Source(rounds=16)
    loop = _loop(Devices(source), Field(), policy=Keep())
    for k, tick in enumerate(source):
        ev = [EventRow(tick.ts, IDS[k], "onu", f"E{k}", "info")]
        loop.feed(Tick(tick.ts, tick.values, tuple(ev)))
    assert built == [] and any(len(cases) for _, cases in kept)
    for k, (snap, cases) in enumerate(kept):
        pd.testing.assert_frame_equal(snap.cases, cases, check_exact=True)
        assert snap.cases is snap.cases  # built once
        want = [f"E{k}"] if k == 0 else [f"E{i}" for i in range(3 * k - 2, 3 * k + 1)]
        assert snap.events["type"].tolist() == want
    assert len(built) == len(kept)
    # Not given, a table is an empty frame of its own; a frame given is kept as it is.
    a, b = Snapshot(T0, pd.DataFrame()), Snapshot(T0, pd.DataFrame())
    assert a.events.empty and a.cases.empty and a.events is not b.events
    frame = pd.DataFrame({"x": [1]})
    assert Snapshot(T0, pd.DataFrame(), events=frame).events is frame


def test_an_unknown_cpe_fails_the_action_with_a_clear_error():
    class Rogue(RulesPolicy):
        def decide(self, snapshot):
            return [Decision(ts=snapshot.ts, subject="ONU01", action="reboot",
                             targets=("CPE99",))]  # fmt: skip

    loop = _loop(Devices(), Field(), policy=Rogue(), every=1)
    loop.feed(_tick(0))
    acts = loop.autopilot.audit.frame("actions")
    assert acts["status"].tolist() == ["failed"]
    assert "unknown CPE 'CPE99'" in acts["error"].iloc[0]
    with pytest.raises(UnknownTargetError, match="Devices.reboot: unknown CPE 'CPE99'"):
        Devices().reboot("CPE99")


def test_a_tick_of_another_fleet_is_refused():
    loop = ClosedLoop(*_inventory())
    with pytest.raises(ValueError, match="has 3 ONUs, the inventory 16"):
        loop.feed(Tick(T0, {"online": np.ones(3, dtype=bool)}))
    assert loop.feed(_tick(0)) == []  # observe-only loop: never decides
    with pytest.raises(RuntimeError, match="no autopilot"):
        loop.decide(T0)


def test_a_restored_loop_decides_as_the_one_that_kept_running():
    def rounds(k):  # ONU 05 hangs from round 2, ONU 11 from 7; no reboot helps
        return _tick(k, hung=tuple(h for h, s in ((5, 2), (11, 7)) if k >= s))

    a = _loop(Devices(), Field())
    for k in range(8):
        a.feed(rounds(k))
    assert a.autopilot.cases["ONU05"]["reboots"] == 1
    saved = pickle.dumps(a.state_dict())
    b, fresh = _loop(Devices(), Field()), _loop(Devices(), Field())
    b.load_state_dict(pickle.loads(saved))
    assert b.autopilot.cases.keys() == a.autopilot.cases.keys()
    again = []
    for k in range(8, 30):
        da, db = a.feed(rounds(k)), b.feed(rounds(k))
        assert [(d.subject, d.action, d.targets, d.case_id) for d in da] == [
            (d.subject, d.action, d.targets, d.case_id) for d in db
        ]
        again += [d.subject for d in fresh.feed(rounds(k)) if d.action == "reboot"]
    # Without the saved state the same ticks would reboot ONU 05's CPE a second time.
    assert "ONU05" in again
    assert b.autopilot.guard._by_target == a.autopilot.guard._by_target
    pd.testing.assert_frame_equal(a.observer.status(), b.observer.status())
    pd.testing.assert_frame_equal(a.tracker.episodes(), b.tracker.episodes())
    with pytest.raises(ValueError, match="state version"):
        b.load_state_dict({"version": 99})
