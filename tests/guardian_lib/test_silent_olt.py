"""A silent OLT is an outage only on evidence: its CPEs' TR-069 Informs (GenieACS
``_lastInform``) tell a management-path failure (customers fine) from a power cut.

The rule (:mod:`guardian_lib.operate.silent`) with synthetic inputs, hostile NBI values,
and ``guardian operate``'s cycles on a synthetic OLT of 64 ONUs silent for 3 hours beside
an OLT that answers: with its CPEs informing, no incident and no notice; with its CPEs
silent too, or the NBI down, the OLT incident and its notices as before.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from silent_network import fleet_site, olt_polls

from guardian_lib.loop.missed import MissedPolls
from guardian_lib.operate.silent import (
    OVERDUE_FACTOR,
    OVERDUE_POLLS,
    SilentOlts,
    inform_interval_s,
    inform_time_s,
)

T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")
STEP_S = 300.0
INTERVAL_S = 600.0


def _iso(s: float) -> str:
    return pd.Timestamp(s, unit="s", tz="UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --- the rule, synthetic inputs ----------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, float("nan"), float("inf"), 1.7e9, True, "", "yesterday", "2026-01-05T00:00:00",
     "2026-13-45T99:00:00Z", "9" * 41, {"$date": "2026-01-05T00:00:00Z"}, ["x"]],
)  # fmt: skip
def test_an_unusable_last_inform_is_no_evidence_and_never_raises(value):
    assert inform_time_s(value) is None


def test_inform_times_and_intervals_as_genieacs_sends_them():
    assert inform_time_s("2026-01-05T00:00:01.500Z") == T0.timestamp() + 1.5
    assert inform_time_s("2026-01-05T01:00:00+01:00") == T0.timestamp()
    assert inform_interval_s(600) == inform_interval_s("600") == 600.0
    assert inform_interval_s(None, default=300.0) == 300.0  # not reported: the site's
    for bad in (0, -5, "nan", float("inf"), 10 * 86400, True, "x", [600], {"_value": 1}):
        assert inform_interval_s(bad, default=300.0) is None  # reported but unusable


def _silent(n: int = 4, olt_of: dict | None = None) -> SilentOlts:
    ids = [f"O{i}" for i in range(n)]
    return SilentOlts(ids, olt_of or dict.fromkeys(ids, "OLT-1"), {o: f"c{o}" for o in ids},
                      poll_s=STEP_S)  # fmt: skip


def test_an_inform_before_the_silence_is_no_evidence_one_after_it_is():
    s = _silent(2)
    s.observe([], ["OLT-1"], now_s=1000.0)  # the first poll OLT-1 did not answer ended
    now = 1400.0
    up = s.known_up({"cO0": (999.0, INTERVAL_S), "cO1": (1001.0, INTERVAL_S)}, now)
    # O1 informed after the silence began: evidence, the OLT carries traffic, so O0 (not
    # due yet) is pending; O0 alone would be no evidence
    assert up.tolist() == [True, True] and (s.evidence, s.pending) == (1, 1)
    assert s.known_up({"cO0": (999.0, INTERVAL_S)}, now).tolist() == [False, False]
    # the silence began at the first unanswered poll, not later ones
    s.observe([], ["OLT-1"], now_s=1300.0)
    assert s.since == {"OLT-1": 1000.0}


def test_overdue_future_missing_or_contacted_cpes_follow_the_missed_poll_rule():
    s = _silent(6)
    s.observe([], ["OLT-1"], now_s=1000.0)
    overdue = OVERDUE_FACTOR * INTERVAL_S + OVERDUE_POLLS * STEP_S
    now = 1000.0 + overdue + 100.0
    informs = {
        "cO0": (now - 10.0, INTERVAL_S),  # evidence
        "cO1": (now - overdue - 1.0, INTERVAL_S),  # after the silence, then silent: overdue
        "cO2": (now + 3600.0, INTERVAL_S),  # from the future (a hostile or skewed ACS)
        "cO3": (None, INTERVAL_S),  # no usable time
        "cO4": (now - 10.0, None),  # no usable interval
    }  # cO5: unknown to the ACS
    assert s.known_up(informs, now).tolist() == [True, False, False, False, False, False]
    # a CPE that informs with its PPPoE session down: its customer has no service
    assert not s.known_up(informs, now, ppp={"cO0": False}).any()
    assert s.known_up(informs, now, ppp={"cO0": True})[0]
    s.contacts(["O0"])  # its customer called the helpdesk: no evidence any more
    assert not s.known_up(informs, now).any()
    s.observe(["OLT-1"], [], now_s=now + 300.0)  # it answers again: nothing held
    assert s.known_up(informs, now + 300.0) is None and not s.contacted


def test_evidence_is_per_olt_and_no_silent_olt_gives_no_mask():
    olt_of = {"O0": "OLT-1", "O1": "OLT-1", "O2": "OLT-2", "O3": "OLT-2"}
    s = _silent(4, olt_of)
    assert s.known_up({}, 0.0) is None
    s.observe(["OLT-2"], ["OLT-1"], now_s=1000.0)
    informs = {c: (1100.0, INTERVAL_S) for c in ("cO0", "cO2", "cO3")} | {
        "cO1": (900.0, INTERVAL_S)
    }
    # OLT-2 answers: its ONUs are read, no evidence needed; O1 pending on O0's evidence
    assert s.known_up(informs, 1200.0).tolist() == [True, True, False, False]
    assert s.known_up({}, 1200.0).tolist() == [False] * 4  # the NBI is down: no evidence


def test_the_missed_poll_rule_keeps_known_up_onus_online_with_unknown_readings():
    mp = MissedPolls(2, grace_steps=1)
    full = {"online": np.array([1.0, 1.0]), "rx_dbm": np.array([-20.0, -21.0]),
            "loss_pct": np.array([0.0, 0.0])}  # fmt: skip
    mp.step({k: v.copy() for k, v in full.items()}, np.array([True, True]))

    def missing_a() -> dict:
        return {"online": np.array([np.nan, 1.0]), "rx_dbm": np.array([np.nan, -21.0]),
                "loss_pct": np.array([np.nan, 0.0])}  # fmt: skip

    up = np.array([True, False])
    held = mp.step(missing_a(), np.array([False, True]), up)  # within the grace: held
    assert held["rx_dbm"][0] == -20.0 and mp.known_up_last == 0
    past = mp.step(missing_a(), np.array([False, True]), up)
    assert past["online"][0] == 1.0 and past["loss_pct"][0] == 0.0
    assert np.isnan(past["rx_dbm"][0]) and mp.known_up_last == 1
    gone = mp.step(missing_a(), np.array([False, True]), np.array([False, False]))
    assert np.isnan(gone["online"][0])  # the evidence ended: not read, as without it
    assert mp.step(missing_a(), np.array([False, True]))["online"][0] != 1.0


# --- guardian operate on a synthetic 64-ONU OLT silent for an hour ------------------------

N_SILENT, N_OTHER = 64, 8
# cycles: 2 answered, 1 h silent, 3 answered (the report's 3 h: SILENT_STEPS = 36)
SILENT_FROM, SILENT_STEPS, AFTER = 2, 12, 3


def _fleet_site(tmp_path: Path) -> Path:
    rows = [(f"A{i:02d}", f"P{1 + i // 32}", "OLT-1", f"cpe-A{i:02d}") for i in range(N_SILENT)]
    rows += [(f"B{i}", "P3", "OLT-2", f"cpe-B{i}") for i in range(N_OTHER)]
    return fleet_site(tmp_path, rows, STEP_S)


class _Network:
    """OLT-1 (64 ONUs) silent over SNMP for cycles [SILENT_FROM, SILENT_FROM + steps),
    OLT-2 always answering; each CPE informs every 10 min (staggered) while ``cpes_up``
    says its path works. The poll of cycle k ends 20 s after its grid time."""

    def __init__(self, cpes_up, steps: int = SILENT_STEPS) -> None:
        self.k = -1
        self.cpes_up = cpes_up  # (cpe index, wall time) → its Inform reaches the ACS
        self.steps = steps

    def now(self) -> float:
        return T0.timestamp() + self.k * STEP_S + 20.0

    def poll(self):
        self.k += 1
        ts = T0 + pd.Timedelta(seconds=self.k * STEP_S)
        silent = SILENT_FROM <= self.k < SILENT_FROM + self.steps
        return olt_polls(ts, [("OLT-1", [f"A{i:02d}" for i in range(N_SILENT)], not silent),
                              ("OLT-2", [f"B{i}" for i in range(N_OTHER)], True)])  # fmt: skip

    def close(self) -> None:
        pass

    def devices(self, query=None, projection=None):
        """The NBI's ``GET /devices/``: each CPE's last Inform that reached the ACS."""
        docs, now = [], self.now()
        for i in range(N_SILENT + N_OTHER):
            cpe = f"cpe-A{i:02d}" if i < N_SILENT else f"cpe-B{i - N_SILENT}"
            phase = T0.timestamp() - 3600.0 + i * INTERVAL_S / (N_SILENT + N_OTHER)
            n = np.floor((now - phase) / INTERVAL_S)
            informs = [phase + j * INTERVAL_S for j in range(int(n), -1, -1)]
            last = next((t for t in informs if i >= N_SILENT or self.cpes_up(i, t)), None)
            doc = {"_id": cpe, "Device": {"ManagementServer": {
                "PeriodicInformInterval": {"_value": int(INTERVAL_S)}}}}  # fmt: skip
            if last is not None:
                doc["_lastInform"] = _iso(last)
            docs.append(doc)
        return docs


class _DownNbi:
    def devices(self, query=None, projection=None):
        raise ConnectionError("NBI unavailable")


def _run(tmp_path: Path, cpes_up, nbi: str = "up", steps: int = SILENT_STEPS) -> dict:
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    op = Operator(load_site(_fleet_site(tmp_path)), tmp_path / "state", mode="execute")
    op.source.close()
    net = _Network(cpes_up, steps)
    op.source, op.wall = net, net.now
    op.cpe_state = NbiCpeState(net if nbi == "up" else _DownNbi())
    figures = []
    try:
        for _ in range(SILENT_FROM + steps + AFTER):
            figures.append(op.run_cycle())
            # the NOC's metric says what the cycle's figure says
            gauge = op.metrics.registry.get_sample_value("guardian_onus_seen_by_acs_only")
            assert gauge == figures[-1]["onus_seen_by_acs_only"]
        notices = list(op.notifier.sent)
    finally:
        op.close()
    con = duckdb.connect(str(tmp_path / "state" / "audit.duckdb"), read_only=True)
    try:
        incidents = con.execute(
            "SELECT DISTINCT incident_id, scope_type, scope_key FROM incidents"
        ).fetchall()
    finally:
        con.close()
    return {"figures": figures, "notices": notices, "incidents": incidents}


def _power_lost(i: int, t: float) -> bool:
    """The CPEs lose their path with the OLT: between its last answer and the next poll."""
    return t < T0.timestamp() + SILENT_FROM * STEP_S - 100.0


def test_a_silent_olt_whose_cpes_keep_informing_opens_no_incident_and_sends_no_notice(tmp_path):
    out = _run(tmp_path, lambda i, t: True)
    assert out["incidents"] == [] and out["notices"] == []
    seen = [f["onus_seen_by_acs_only"] for f in out["figures"]]
    assert [f["olts_failed"] for f in out["figures"]].count(["OLT-1"]) == SILENT_STEPS
    # within the grace (one cycle) the last reading holds; past it all 64 are kept online
    # on the ACS's evidence until OLT-1 answers again
    assert seen[: SILENT_FROM + 1] == [0] * (SILENT_FROM + 1)
    assert seen[SILENT_FROM + 1 : SILENT_FROM + SILENT_STEPS] == [N_SILENT] * (SILENT_STEPS - 1)
    assert seen[SILENT_FROM + SILENT_STEPS :] == [0] * AFTER


def test_an_olt_silent_with_its_cpes_is_an_outage_as_before(tmp_path):
    out = _run(tmp_path, _power_lost)
    assert len(out["incidents"]) == 1 and out["incidents"][0][2] == "OLT-1", out["incidents"]
    assert {n[0] for n in out["notices"]} == {f"A{i:02d}" for i in range(N_SILENT)}
    assert max(f["onus_seen_by_acs_only"] for f in out["figures"]) == 0


def test_an_nbi_that_is_down_gives_no_evidence(tmp_path):
    out = _run(tmp_path, lambda i, t: True, nbi="down")
    assert len(out["incidents"]) == 1 and out["incidents"][0][2] == "OLT-1"
    assert len({n[0] for n in out["notices"]}) == N_SILENT
    assert all(f["acs_error"] for f in out["figures"])


def test_one_pon_cut_while_the_olt_is_silent_still_opens_its_incident(tmp_path):
    """OLT-1's management path is down and, during it, PON P2's feeder is cut: P1's CPEs
    keep informing, P2's stop. P2's ONUs are held while not overdue, then offline."""
    cut = T0.timestamp() + (SILENT_FROM + 2) * STEP_S

    out = _run(tmp_path, lambda i, t: i < 32 or t < cut)
    scopes = {(s, k) for _, s, k in out["incidents"]}
    assert scopes and all(k in ("P2",) for _, k in scopes), scopes
    assert {n[0] for n in out["notices"]} == {f"A{i:02d}" for i in range(32, N_SILENT)}
    assert min(f["onus_seen_by_acs_only"] for f in out["figures"][-AFTER - 5 : -AFTER]) == 32


def test_the_silence_and_its_evidence_survive_a_restart(tmp_path):
    """Restarted while OLT-1 is silent, operate still dates the silence from its first
    unanswered poll: the CPEs' Informs since then keep counting (a silence dated from the
    restart would find no Inform after it at once, and open the OLT incident)."""
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    site = load_site(_fleet_site(tmp_path))
    net = _Network(lambda i, t: True)
    seen = []
    for cycles in (SILENT_FROM + 3, 4):  # the second process starts in the silence
        op = Operator(site, tmp_path / "state", mode="execute")
        op.source.close()
        op.source, op.wall, op.cpe_state = net, net.now, NbiCpeState(net)
        try:
            seen += [op.run_cycle()["onus_seen_by_acs_only"] for _ in range(cycles)]
            incidents = len(op.autopilot.incidents)
        finally:
            op.close()
    assert seen[SILENT_FROM + 1 :] == [N_SILENT] * (len(seen) - SILENT_FROM - 1)
    assert incidents == 0


def test_silent_olt_state_round_trip():
    s = _silent(2)
    s.observe([], ["OLT-1"], now_s=1000.0)
    s.contacts(["O1"])
    t = _silent(2)
    t.load_state_dict(s.state_dict())
    assert (t.since, t.contacted) == ({"OLT-1": 1000.0}, {"O1"})
    t.load_state_dict(None)  # nothing saved: as it was
    assert t.since == {"OLT-1": 1000.0}


# --- the replay: guardian decide applies the evidence operate applied --------------------
def _replay(tmp_path: Path) -> tuple[list, list]:
    """``guardian decide`` (rule scorer) over the warehouse operate wrote: its ticks and
    the incidents its audit holds."""
    from guardian_lib.history import HistoryTelemetrySource
    from guardian_lib.operate.decide import decide_run
    from guardian_lib.silver import update_silver
    from guardian_lib.warehouse import connect

    wh = tmp_path / "wh"
    subs = pd.read_csv(tmp_path / "subs.csv")
    (wh / "inventory").mkdir(exist_ok=True)  # the inventory, as `guardian ingest` reads it
    from guardian_lib.schema import INVENTORY_COLUMNS

    onus = subs.assign(serial=subs["onu_id"], splitter_id=subs["pon_id"], onu_index=0,
                       vendor="v", model="m", distance_m=1000.0, lat=0.0, lon=0.0)  # fmt: skip
    onus[list(INVENTORY_COLUMNS["onus"])].to_parquet(wh / "inventory" / "onus.parquet")
    pons = subs.drop_duplicates("pon_id").assign(slot=1, port=0, if_index=0, technology="gpon")
    pons[list(INVENTORY_COLUMNS["pons"])].to_parquet(wh / "inventory" / "pons.parquet")
    update_silver(wh)  # the last cycle's ACS_SEEN file is merged by the next update
    con = connect(wh)
    try:
        ids = [f"A{i:02d}" for i in range(N_SILENT)] + [f"B{i}" for i in range(N_OTHER)]
        end = T0 + pd.Timedelta(seconds=(SILENT_FROM + SILENT_STEPS + AFTER - 1) * STEP_S)
        ticks = list(HistoryTelemetrySource(con, np.array(ids), T0, end, int(STEP_S)))
    finally:
        con.close()
    audit = tmp_path / "replay.duckdb"
    decide_run(wh, every_minutes=5, models="rules", site=tmp_path / "site.yaml",
               audit_path=audit, warmup_h=0.0)  # fmt: skip
    con = duckdb.connect(str(audit), read_only=True)
    try:
        incidents = con.execute("SELECT DISTINCT scope_type, scope_key FROM incidents").fetchall()
    finally:
        con.close()
    return ticks, incidents


def test_decide_replays_a_silent_olt_with_the_evidence_operate_applied(tmp_path):
    out = _run(tmp_path, lambda i, t: True)
    assert out["incidents"] == []
    ticks, incidents = _replay(tmp_path)
    # every ONU operate kept online on the ACS's evidence is online in the replay's step
    seen = [int(np.nansum(t.get("online")[:N_SILENT])) for t in ticks]
    assert seen == [N_SILENT] * len(ticks)
    levels = [int(np.isnan(t.get("rx_dbm")[:N_SILENT]).sum()) for t in ticks]
    past_grace = range(SILENT_FROM + 1, SILENT_FROM + SILENT_STEPS)
    assert [levels[k] for k in past_grace] == [N_SILENT] * len(past_grace)  # readings unknown
    assert all(e.type != "ACS_SEEN" for t in ticks for e in t.events)  # evidence, not events
    assert incidents == []  # before: the replay opened the OLT incident operate did not
    # `guardian alerts replay` reads the same evidence: no PON of OLT-1 ever dark
    from guardian_lib.alerts.replay import _pon_health
    from guardian_lib.warehouse import connect

    subs = pd.read_csv(tmp_path / "subs.csv")
    onus = subs.rename(columns={"onu_id": "onu", "pon_id": "pon", "olt_id": "olt"})
    con = connect(tmp_path / "wh")
    try:
        health = _pon_health(con, onus[["onu", "pon", "olt"]], 1)
    finally:
        con.close()
    assert len(health) and (health["offline_share"] == 0.0).all()


def test_decide_replays_an_olt_that_lost_power_with_its_cpes_as_an_outage(tmp_path):
    out = _run(tmp_path, _power_lost)
    assert out["incidents"]
    ticks, incidents = _replay(tmp_path)
    online = [float(np.nansum(t.get("online")[:N_SILENT])) for t in ticks]
    assert online[SILENT_FROM + 1] == 0.0  # no evidence recorded: offline past the grace
    assert sorted(incidents) == sorted({(s, k) for _, s, k in out["incidents"]})


def test_acs_seen_events_of_unknown_onus_or_other_entities_are_ignored():
    from guardian_lib.history import HistoryTelemetrySource, acs_seen_events

    steps = [T0 + pd.Timedelta(seconds=k * STEP_S) for k in range(4)]  # B read at each
    tel = pd.DataFrame({"ts": [T0, *steps], "onu_id": ["A"] + ["B"] * 4, "online": True,
                        "rx_dbm": -20.0})  # fmt: skip
    ev = acs_seen_events(T0 + pd.Timedelta(seconds=2 * STEP_S), ["A", "Z"], {"A": "OLT-1"}, T0)
    other = ev.iloc[:1].assign(entity_type="olt", entity_id="A",
                               ts=T0 + pd.Timedelta(seconds=3 * STEP_S))  # fmt: skip
    ev = pd.concat([ev, other], ignore_index=True)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("_t", tel.assign(**{m: np.nan for m in ("tx_dbm", "olt_rx_dbm", "snr_db",
                                     "ber", "crc_errors", "latency_ms", "loss_pct", "uptime_s")}))  # fmt: skip
    con.register("_e", ev)
    con.execute("CREATE TABLE telemetry AS SELECT * FROM _t")
    con.execute("CREATE TABLE events AS SELECT * FROM _e")
    end = T0 + pd.Timedelta(seconds=3 * STEP_S)
    src = HistoryTelemetrySource(con, np.array(["A", "B"]), T0, end, int(STEP_S), grace_steps=0)
    ticks = list(src)
    con.close()
    # A: read at 0; not read at 1 (grace 0: offline); ACS_SEEN at 2 → online, loss 0,
    # levels unknown; at 3 only an 'olt' entity named A → offline again. Z is unknown.
    np.testing.assert_array_equal([t.get("online")[0] for t in ticks], [1.0, np.nan, 1.0, np.nan])
    assert ticks[2].get("loss_pct")[0] == 0.0 and np.isnan(ticks[2].get("rx_dbm")[0])
    assert [len(t.events) for t in ticks] == [0, 0, 0, 0]
