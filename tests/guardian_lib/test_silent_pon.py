"""A PON that goes dark while its OLT's management path is down: missed Informs.

The rule (:mod:`guardian_lib.operate.silent`): a CPE of a silent OLT that missed its
periodic Inform (due one interval after its last, plus ``MISS_LATE_S`` and one poll) is
no evidence; a PON of which ``PON_MISSES`` CPEs missed an Inform due after the silence
began and after anybody of the PON was last heard is dark, and the OLT's other PONs no
longer hold its CPEs. Synthetic Inform times with random phases (seeded), then
``guardian operate``'s cycles on a synthetic OLT with hourly Informs whose PON is cut
during a management-only silence.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from silent_network import fleet_site, olt_polls, operate_cycles, silent_olt

from guardian_lib.operate.silent import (
    MISS_LATE_S,
    MISS_POLLS,
    OVERDUE_FACTOR,
    OVERDUE_POLLS,
    PON_MISSES,
    SilentOlts,
)

POLL_S = 300.0
HOUR_S = 3600.0
SLACK_S = MISS_LATE_S + MISS_POLLS * POLL_S
T_SILENT = 1_767_571_200.0  # 2026-01-05T00:00Z: the end of the first unanswered poll


def _olt(pons: int, n: int) -> tuple[SilentOlts, list[str]]:
    """An OLT of ``pons`` PONs of ``n`` ONUs, silent since :data:`T_SILENT`."""
    return silent_olt(pons, n, POLL_S, T_SILENT)


def _schedules(onus: list[str], interval: float, seed: int, late_s: float = 0.0) -> dict:
    """Each CPE's Inform times from an hour before the silence to 4 h into it: a random
    phase, and each Inform late by U(0, ``late_s``) (a slow session). [s]"""
    rng = np.random.default_rng(seed)
    k = np.arange(int(5 * HOUR_S / interval) + 2)
    out = {}
    for o in onus:
        t = T_SILENT - HOUR_S + rng.uniform(0, interval) + k * interval
        out[o] = t + rng.uniform(0.0, late_s, len(t))
    return out


def _informs(times: dict, interval: float, now: float, cut: set | None = None,
             cut_s: float = np.inf) -> dict:  # fmt: skip
    """The NBI's view at ``now``: each CPE's last Inform (those of ``cut`` ONUs end at
    ``cut_s``), and a CPE of an OLT that answers, heard 5 s ago (the rest of the fleet)."""
    out = {"elsewhere": (now - 5.0, interval)}
    for o, t in times.items():
        seen = t[(t <= now) & ((t <= cut_s) | (o not in (cut or ())))]
        if len(seen):
            out[o] = (float(seen[-1]), interval)
    return out


def _polls(hours: float = 3.0) -> np.ndarray:
    """Poll ends past the one-poll grace, as operate evaluates the rule. [s]"""
    return T_SILENT + POLL_S * np.arange(1, int(hours * HOUR_S / POLL_S) + 1)


@pytest.mark.parametrize(("n", "pons"), [(8, 16), (120, 2)])
@pytest.mark.parametrize("interval", [POLL_S, HOUR_S])
def test_a_management_only_silence_counts_no_onu_offline(n, pons, interval):
    """Random phases, Informs late by up to MISS_LATE_S (a slow session, retries): no
    miss, no dark PON, every ONU online for 3 h, on PONs of 8 and of 120 ONUs."""
    for seed in range(3):
        s, onus = _olt(pons, n)
        times = _schedules(onus, interval, seed, late_s=MISS_LATE_S)
        for now in _polls():
            up = s.known_up(_informs(times, interval, now), now)
            assert up.all(), (seed, now - T_SILENT, s.dark, int((~up).sum()))
            assert s.missed == 0 and s.dark == []


def _cut(n: int, seed: int, cut_s: float) -> tuple[SilentOlts, list[str], dict, float, float]:
    """OLT of P0 and P1 (``n`` ONUs each, hourly Informs late by up to 30 s), P1 cut at
    ``cut_s``: the rule, the ONUs, the Inform times, when P1 turns dark (the second miss
    after its last Inform, plus the slack) and when today's rule would drop its first CPE
    (overdue). [s]"""
    s, onus = _olt(2, n)
    times = _schedules(onus, HOUR_S, seed=seed, late_s=30.0)
    last = {o: t[t <= cut_s][-1] for o, t in times.items() if o.startswith("P1")}
    pon_last = max(last.values())
    dues = sorted(t + HOUR_S for t in last.values() if t + HOUR_S > pon_last)
    overdue_s = min(last.values()) + OVERDUE_FACTOR * HOUR_S + OVERDUE_POLLS * POLL_S
    return s, onus, times, dues[PON_MISSES - 1] + SLACK_S, overdue_s


@pytest.mark.parametrize("n", [8, 64])
def test_a_pon_cut_in_the_silence_is_seen_at_its_second_miss_not_held_by_the_other_pons(n):
    """Hourly Informs. PON P1 is cut 20 min into the silence: its CPEs count offline at
    the first poll after the second of them missed its Inform (one interval after its
    last, plus the slack), not when they become overdue (1.5 h + 2 polls: about 1 h 40
    min); P0's CPEs stay online throughout."""
    cut_s = T_SILENT + 1200.0
    s, onus, times, dark_s, overdue_s = _cut(n, 7, cut_s)
    assert dark_s < overdue_s - 3 * POLL_S  # the layout tells the rules apart
    p1 = {o for o in onus if o.startswith("P1")}
    i_p1 = np.array([o in p1 for o in onus])
    for now in _polls(2.5):
        up = s.known_up(_informs(times, HOUR_S, now, p1, cut_s), now)
        assert up[~i_p1].all(), now - T_SILENT  # the other PON is online throughout
        if now > dark_s:
            assert not up[i_p1].any() and s.dark == ["P1"], (now - dark_s, s.dark)
        else:  # at most one miss: P1 is not dark (a missed CPE alone is not held)
            assert s.dark == [] and up[i_p1].sum() >= n - 1, now - T_SILENT
            assert now >= cut_s or up[i_p1].all()
    # and the time it takes is the cut plus about two Inform spacings plus the slack
    assert dark_s - cut_s < PON_MISSES * 2.5 * HOUR_S / n + SLACK_S + 60.0


def test_one_missed_inform_is_an_individual_problem_two_make_the_pon_dark():
    s, onus = _olt(1, 4)
    i = {o: k for k, o in enumerate(onus)}
    iv = 600.0
    a, b, c, d = onus
    now = T_SILENT + 1500.0
    # a informed after the silence (evidence); b's Inform was due 100 s before now - slack:
    # missed; c and d last informed before the silence, not yet due (pending)
    informs = {a: (now - 60.0, iv), b: (now - SLACK_S - iv - 100.0, iv),
               c: (T_SILENT - 100.0, iv * 3), d: (T_SILENT - 50.0, iv * 3)}  # fmt: skip
    up = s.known_up(informs, now)
    assert up.tolist() == [True, False, True, True] and s.missed == 1 and s.dark == []
    # before the slack has passed b is still pending (and today's rule held it until
    # overdue, 1.5 intervals + 2 polls after its last Inform)
    informs_b = informs | {b: (now - SLACK_S - iv + 10.0, iv)}
    assert s.known_up(informs_b, now).tolist() == [True] * 4
    # a second miss after the PON's last Inform: nobody of the PON heard since, while
    # the ACS hears the rest of the fleet: dark
    informs2 = {a: (now - 2 * iv - SLACK_S - 50.0, iv), b: (now - SLACK_S - iv - 100.0, iv),
                c: informs[c], d: informs[d], "elsewhere": (now - 5.0, iv)}  # fmt: skip
    assert s.known_up(informs2, now).tolist() == [False] * 4 and s.dark == ["P0"]
    # c informs again (the PON is repaired): it is evidence, the misses predate it
    informs3 = informs2 | {c: (now - 10.0, iv)}
    assert s.known_up(informs3, now)[[i[c], i[d]]].tolist() == [True, True]
    assert s.dark == []


def test_no_miss_while_the_acs_hears_nobody():
    """An ACS that takes no sessions (or an NBI serving stale documents): nobody was heard
    after the Informs fell due, so nobody missed; the overdue rule alone applies."""
    s, onus = _olt(1, 3)
    iv = 600.0
    now = T_SILENT + 1500.0
    stale = now - iv - SLACK_S - 30.0  # due 30 s before now - slack; nobody heard since
    informs = {o: (stale + k, iv) for k, o in enumerate(onus)}
    assert s.known_up(informs, now) is not None and s.missed == 0 and s.dark == []
    # an Inform stamped ahead of this host's clock (a hostile or skewed NBI) is not the
    # ACS hearing somebody; one 2 s old is
    assert s.known_up(informs | {"x": (now + 600.0, iv)}, now) is not None and s.missed == 0
    s.known_up(informs | {"x": (now - 2.0, iv)}, now)
    assert s.missed == 3 and s.dark == ["P0"]


def test_a_dark_pon_survives_a_restart():
    """Nothing of the rule is kept but when the silence began (and who called): a process
    restarted from :meth:`state_dict` sees the same dark PON from the NBI's times, where
    one that dated the silence from its restart would not count the misses before it."""
    cut_s = T_SILENT + 1200.0
    s, onus, times, dark_s, _ = _cut(8, 7, cut_s)
    now = T_SILENT + POLL_S * np.ceil((dark_s - T_SILENT) / POLL_S)
    informs = _informs(times, HOUR_S, now, {o for o in onus if o.startswith("P1")}, cut_s)
    before = s.known_up(informs, now)
    assert s.dark == ["P1"] and before.sum() == 8

    def restarted(state: dict | None) -> SilentOlts:
        t = SilentOlts(onus, dict.fromkeys(onus, "OLT-1"), {o: o for o in onus}, POLL_S,
                       pon_of={o: o.split("-")[0] for o in onus})  # fmt: skip
        t.load_state_dict(state)
        return t

    t = restarted(s.state_dict())
    assert (t.known_up(informs, now) == before).all() and t.dark == ["P1"]
    u = restarted(None)
    u.observe([], ["OLT-1"], now_s=now - POLL_S)  # the silence dated from the restart
    u.known_up(informs, now)
    assert u.dark == []


# --- guardian operate: hourly Informs, a PON cut during a management-only silence ---------

N_PON, INTERVAL_S = 32, 3600.0
SILENT_FROM, CUT_AT, STEPS, RESTART_AT = 2, 4, 10, 6
T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")


def _site(tmp_path: Path) -> Path:
    rows = [(f"A{i:02d}", f"P{1 + i // N_PON}", "OLT-1", f"cpe-A{i:02d}")
            for i in range(2 * N_PON)]  # fmt: skip
    rows += [(f"B{i}", "P3", "OLT-2", f"cpe-B{i}") for i in range(8)]
    return fleet_site(tmp_path, rows, POLL_S)


class _Network:
    """OLT-1 (P1, P2: 32 ONUs each) silent over SNMP from cycle SILENT_FROM on, OLT-2
    always answering; every CPE of OLT-1 informs hourly at a random phase (seeded), those
    of OLT-2 each minute; P2's feeder is cut at cycle CUT_AT's grid time. The poll of cycle k ends 20 s after its grid time."""

    def __init__(self) -> None:
        self.k = -1
        rng = np.random.default_rng(11)
        self.phase = T0.timestamp() - INTERVAL_S + rng.uniform(0, INTERVAL_S, 2 * N_PON + 8)
        self.cut_s = T0.timestamp() + CUT_AT * POLL_S

    def now(self) -> float:
        return T0.timestamp() + self.k * POLL_S + 20.0

    def poll(self):
        self.k += 1
        ts = T0 + pd.Timedelta(seconds=self.k * POLL_S)
        return olt_polls(ts, [("OLT-1", [f"A{i:02d}" for i in range(2 * N_PON)],
                                self.k < SILENT_FROM),
                               ("OLT-2", [f"B{i}" for i in range(8)], True)])  # fmt: skip

    def close(self) -> None:
        pass

    def devices(self, query=None, projection=None):
        docs, now = [], self.now()
        for i, phase in enumerate(self.phase):
            cpe = f"cpe-A{i:02d}" if i < 2 * N_PON else f"cpe-B{i - 2 * N_PON}"
            end = min(now, self.cut_s) if N_PON <= i < 2 * N_PON else now
            every = INTERVAL_S if i < 2 * N_PON else 60.0  # OLT-2's CPEs: each minute
            last = phase + np.floor((end - phase) / every) * every
            docs.append({"_id": cpe, "_lastInform": pd.Timestamp(last, unit="s", tz="UTC")
                         .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                         "Device": {"ManagementServer": {
                             "PeriodicInformInterval": {"_value": int(every)}}}})  # fmt: skip
        return docs


def test_operate_opens_the_cut_pons_incident_within_minutes_and_keeps_it_after_a_restart(
    tmp_path,
):
    """Before this rule P2's CPEs were held by P1's Informs until overdue (about 1 h 40 min
    after their last Inform); now P2's incident opens at the first poll past its second
    missed Inform, P1's ONUs stay online, and a restart in the middle changes nothing."""
    net = _Network()
    p2_last = [p + np.floor((net.cut_s - p) / INTERVAL_S) * INTERVAL_S
               for p in net.phase[N_PON : 2 * N_PON]]  # fmt: skip
    dues = sorted(t + INTERVAL_S for t in p2_last if t + INTERVAL_S > max(p2_last))
    dark_cycle = int(np.ceil((dues[PON_MISSES - 1] + SLACK_S - T0.timestamp() - 20.0) / POLL_S))
    assert dark_cycle <= CUT_AT + 4 < SILENT_FROM + STEPS  # within 20 min of the cut
    figures, notices, scopes = operate_cycles(
        _site(tmp_path), tmp_path / "state", net, (RESTART_AT, SILENT_FROM + STEPS - RESTART_AT)
    )
    seen = [f["onus_seen_by_acs_only"] for f in figures]
    # past the grace both PONs are held; from the dark cycle on, only P1
    assert seen[SILENT_FROM + 1 : dark_cycle] == [2 * N_PON] * (dark_cycle - SILENT_FROM - 1)
    assert seen[dark_cycle:] == [N_PON] * (len(seen) - dark_cycle), (dark_cycle, seen)
    assert [f["open_incidents"] for f in figures].index(1) == dark_cycle
    assert scopes == [("pon", "P2")], scopes
    assert {n[0] for n in notices} == {f"A{i:02d}" for i in range(N_PON, 2 * N_PON)}
