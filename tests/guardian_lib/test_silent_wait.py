"""A small OLT's management silence must not start as a false OLT outage.

While no CPE of a silent OLT has informed since the silence began, its not-overdue CPEs
wait, held online (:mod:`guardian_lib.operate.silent`), until the evidence decides: an
Inform after the silence, or missed Informs (the OLT, or a PON of it, dark), or the
wait's limit. Synthetic inputs, then ``guardian operate``'s cycles on an OLT of 16 CPEs
informing hourly whose management path fails just after an Inform (the longest gap of
its layout: before, its ONUs counted offline past the grace and the OLT incident
opened), and the same OLT losing power.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from silent_network import fleet_site, olt_polls, operate_cycles, silent_olt

from guardian_lib.operate.silent import (
    MISS_LATE_S,
    OVERDUE_FACTOR,
    OVERDUE_POLLS,
    PON_MISSES,
    WAIT_MAX_LIMIT_S,
    WAIT_MAX_S,
    SilentOlts,
)

POLL_S = 300.0
HOUR_S = 3600.0
T_SILENT = 1_767_571_200.0  # 2026-01-05T00:00Z: the end of the first unanswered poll


def _olt(pons: int, n: int) -> tuple[SilentOlts, list[str]]:
    """An OLT of ``pons`` PONs of ``n`` ONUs, silent since :data:`T_SILENT`."""
    return silent_olt(pons, n, POLL_S, T_SILENT)


def _before_silence(onus: list[str], seed: int, now: float) -> dict:
    """Hourly CPEs that last informed at random times in the hour before the silence,
    and the rest of the fleet heard 5 s before ``now``."""
    rng = np.random.default_rng(seed)
    last = T_SILENT - rng.uniform(0.0, HOUR_S, len(onus))
    return {o: (float(t), HOUR_S) for o, t in zip(onus, last, strict=True)} | {
        "elsewhere": (now - 5.0, HOUR_S)
    }


def test_no_cpe_informed_since_the_silence_its_not_overdue_cpes_wait():
    s, onus = _olt(2, 8)
    now = T_SILENT + POLL_S  # the first poll past the grace
    # every Inform due after `now`: nobody can have missed, nobody informed since
    informs = {o: (T_SILENT - 60.0 * (k + 1), HOUR_S) for k, o in enumerate(onus)}
    informs["elsewhere"] = (now - 5.0, HOUR_S)
    up = s.known_up(informs, now)
    assert up.all() and (s.evidence, s.pending, s.waiting) == (0, 0, 16)
    # the ACS heard nobody since the silence began (alone with this OLT, a stale NBI):
    # no miss can come, the missed-poll rule as before
    quiet = informs | {"elsewhere": (T_SILENT - 1.0, HOUR_S)}
    assert not s.known_up(quiet, now).any() and s.waiting == 0
    # no usable interval: no evidence possible for that CPE, as before
    assert s.known_up(informs | {onus[0]: (T_SILENT - 60.0, None)}, now).sum() == 15
    # the wait lasts WAIT_MAX_S at most
    later = T_SILENT + WAIT_MAX_S
    far = {o: (t, 10 * HOUR_S) for o, (t, _) in informs.items()}  # long intervals
    assert s.known_up(far | {"elsewhere": (later, HOUR_S)}, later).all()
    assert not s.known_up(far | {"elsewhere": (later + 1.0, HOUR_S)}, later + 1.0).any()
    # one CPE informs: evidence, the others pending on it (the rule before)
    up = s.known_up(informs | {onus[3]: (now - 10.0, HOUR_S)}, now)
    assert up.all() and (s.evidence, s.pending, s.waiting) == (1, 15, 0)


def test_a_call_ends_the_wait_of_its_pon_not_of_the_other_pons():
    s, onus = _olt(2, 8)
    now = T_SILENT + POLL_S
    informs = _before_silence(onus, 3, now)
    s.contacts([onus[2]])  # a customer of P0 called
    up = s.known_up(informs, now)
    assert not up[:8].any() and up[8:].all() and s.waiting == 8
    # once the OLT has evidence the rule is as before: only the caller's ONU offline
    up = s.known_up(informs | {onus[12]: (now - 10.0, HOUR_S)}, now)
    assert up.sum() == 15 and not up[2]


def test_two_misses_make_an_olt_without_evidence_dark_as_a_whole():
    """A power loss: every CPE of the OLT went silent just before the silence. Once the
    two earliest Informs due after it are MISS_LATE_S late, all 17 ONUs count offline,
    across PONs (its PON of one CPE included): they wait until then."""
    s, onus = _olt(3, 8)
    onus = onus[:17]  # P0, P1 of 8 and a lone ONU on P2
    s = SilentOlts(onus, dict.fromkeys(onus, "OLT-1"), {o: o for o in onus}, POLL_S,
                   pon_of={o: o.split("-")[0] for o in onus})  # fmt: skip
    s.observe([], ["OLT-1"], now_s=T_SILENT)
    base = _before_silence(onus, 2, T_SILENT)
    dues = sorted(t + iv for o, (t, iv) in base.items() if o != "elsewhere")
    dark_s = dues[PON_MISSES - 1] + MISS_LATE_S
    # the layout waits a few polls, and tells the misses from the limit
    assert T_SILENT + 2 * POLL_S < dark_s < T_SILENT + WAIT_MAX_S - POLL_S
    for now in T_SILENT + POLL_S * np.arange(1, 8):
        informs = base | {"elsewhere": (now - 5.0, HOUR_S)}
        up = s.known_up(informs, now)
        if now > dark_s:
            assert not up.any() and s.dark_olts == ["OLT-1"], now - T_SILENT
        else:
            assert up.sum() >= len(onus) - 1 and s.dark_olts == [], now - T_SILENT
    # the lone CPE of P2 informs: the OLT has evidence, it is not dark as a whole, and
    # the PON rule decides for P0 and P1 (as before)
    informs = base | {"elsewhere": (now - 5.0, HOUR_S), onus[16]: (now - 5.0, HOUR_S)}
    up = s.known_up(informs, now)
    assert up[16] and s.dark_olts == [] and s.evidence == 1
    assert not up[:16].any() and s.dark == ["P0", "P1"]


# --- guardian operate: 16 CPEs informing hourly ------------------------------------------

N, SILENT_FROM, STEPS, RESTART_AT = 16, 2, 10, 4
T0 = pd.Timestamp("2026-01-05T00:00:00", tz="UTC")


def _site(tmp_path: Path) -> Path:
    rows = [(f"A{i:02d}", f"P{1 + i // 8}", "OLT-1", f"cpe-A{i:02d}") for i in range(N)]
    rows += [(f"B{i}", "P3", "OLT-2", f"cpe-B{i}") for i in range(8)]
    return fleet_site(tmp_path, rows, POLL_S)


class _Network:
    """OLT-1 (P1, P2: 8 ONUs each) silent over SNMP from cycle SILENT_FROM on; OLT-2
    always answers, its CPEs inform each minute. OLT-1's CPEs inform hourly at random
    phases (seeded), shifted so that the management path fails 30 s after the Inform
    that opens the layout's longest gap; with ``power_lost`` their Informs stop there
    too. The poll of cycle k ends 20 s after its grid time."""

    def __init__(self, power_lost: bool) -> None:
        self.k = -1
        rng = np.random.default_rng(5)
        ph = np.sort(rng.uniform(0.0, HOUR_S, N))
        gaps = np.diff(np.append(ph, ph[0] + HOUR_S))
        fail = T0.timestamp() + SILENT_FROM * POLL_S - 30.0
        self.phase = np.append(ph - ph[np.argmax(gaps)] + fail - 30.0,
                               fail + rng.uniform(0.0, 60.0, 8))  # fmt: skip
        self.gap_s = float(gaps.max())
        self.end_s = fail if power_lost else np.inf

    def now(self) -> float:
        return T0.timestamp() + self.k * POLL_S + 20.0

    def poll(self):
        self.k += 1
        ts = T0 + pd.Timedelta(seconds=self.k * POLL_S)
        return olt_polls(ts, [("OLT-1", [f"A{i:02d}" for i in range(N)], self.k < SILENT_FROM),
                              ("OLT-2", [f"B{i}" for i in range(8)], True)])  # fmt: skip

    def close(self) -> None:
        pass

    def last_informs(self, now: float) -> np.ndarray:
        """OLT-1's CPEs' last Informs that reached the ACS by ``now``. [s]"""
        end = min(now, self.end_s)
        ph = self.phase[:N]
        return ph + np.floor((end - ph) / HOUR_S) * HOUR_S

    def devices(self, query=None, projection=None):
        docs, now = [], self.now()
        last = np.append(self.last_informs(now),
                         self.phase[N:] + np.floor((now - self.phase[N:]) / 60.0) * 60.0)  # fmt: skip
        for i, t in enumerate(last):
            cpe = f"cpe-A{i:02d}" if i < N else f"cpe-B{i - N}"
            every = HOUR_S if i < N else 60.0
            docs.append({"_id": cpe, "_lastInform": pd.Timestamp(t, unit="s", tz="UTC")
                         .strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                         "Device": {"ManagementServer": {
                             "PeriodicInformInterval": {"_value": int(every)}}}})  # fmt: skip
        return docs


def _operate(tmp_path: Path, net: _Network) -> tuple[list, list, list]:
    """Cycles in two processes (restarted at RESTART_AT, in the wait): figures, notices,
    incident scopes."""
    return operate_cycles(_site(tmp_path), tmp_path / "state", net,
                          (RESTART_AT, SILENT_FROM + STEPS - RESTART_AT))  # fmt: skip


def test_a_small_olt_whose_management_fails_just_after_an_inform_opens_no_incident(tmp_path):
    """Before: nobody of OLT-1 informed by the first poll past the grace, so its 16 ONUs
    counted offline for a poll or more, one OLT incident, 16 outage notices."""
    net = _Network(power_lost=False)
    start = T0.timestamp() + SILENT_FROM * POLL_S + 20.0
    first = net.phase[:N][net.phase[:N] > start].min()
    assert first > start + POLL_S  # no Inform by the first poll past the grace
    figures, notices, scopes = _operate(tmp_path, net)
    assert scopes == [] and notices == []
    seen = [f["onus_seen_by_acs_only"] for f in figures]
    assert seen[SILENT_FROM + 1 :] == [N] * (STEPS - 1), seen


def test_the_same_olt_losing_power_opens_its_incident_once_the_misses_come(tmp_path):
    """Its CPEs went silent with it: held while nothing was due, all offline at the first
    poll past the second missed Inform (or the wait's limit), the OLT incident opens and
    each customer gets a notice; a restart in the wait changes nothing."""
    net = _Network(power_lost=True)
    start = T0.timestamp() + SILENT_FROM * POLL_S + 20.0
    dues = np.sort(net.last_informs(np.inf) + HOUR_S)
    dark_s = min(dues[PON_MISSES - 1] + MISS_LATE_S, start + WAIT_MAX_S)
    dark_cycle = int(np.floor((dark_s - T0.timestamp() - 20.0) / POLL_S)) + 1
    overdue = OVERDUE_FACTOR * HOUR_S + OVERDUE_POLLS * POLL_S
    assert RESTART_AT < dark_cycle < SILENT_FROM + STEPS and dark_s < start + overdue
    figures, notices, scopes = _operate(tmp_path, net)
    seen = [f["onus_seen_by_acs_only"] for f in figures]
    # held while it waits (the first miss alone is an individual problem), then offline
    assert min(seen[SILENT_FROM + 1 : dark_cycle]) >= N - 1 and seen[SILENT_FROM + 1] == N, seen
    assert seen[dark_cycle:] == [0] * (len(seen) - dark_cycle), (dark_cycle, seen)
    assert [f["open_incidents"] for f in figures].index(1) == dark_cycle
    assert scopes == [("olt", "OLT-1")], scopes
    assert {n[0] for n in notices} == {f"A{i:02d}" for i in range(N)}


# --- the wait's limit is a site setting ---------------------------------------------------


def test_the_wait_ends_at_the_limit_it_is_given_not_at_the_default():
    onus, limit = [f"O{i}" for i in range(8)], 600.0
    s = SilentOlts(onus, dict.fromkeys(onus, "OLT-1"), {o: o for o in onus}, POLL_S,
                   wait_max_s=limit)  # fmt: skip
    s.observe([], ["OLT-1"], now_s=T_SILENT)
    far = {o: (T_SILENT - 60.0, 10 * HOUR_S) for o in onus}  # nothing due for hours

    def held(now: float) -> bool:
        return bool(s.known_up(far | {"elsewhere": (now - 5.0, HOUR_S)}, now).all())

    assert held(T_SILENT + limit) and not held(T_SILENT + limit + 1.0)
    assert limit + 1.0 < WAIT_MAX_S  # the default would still hold them
    for bad in (0.0, -1.0, WAIT_MAX_LIMIT_S + 1.0):
        with pytest.raises(ValueError, match="silent_wait_max_s"):
            SilentOlts([], {}, {}, POLL_S, wait_max_s=bad)


def _nbi_site(tmp_path: Path, **nbi) -> Path:
    site = _site(tmp_path)
    cfg = yaml.safe_load(site.read_text()) | {"nbi": {"url": "http://127.0.0.1:9", **nbi}}
    site.write_text(yaml.safe_dump(cfg))
    return site


@pytest.mark.parametrize("value", [0, -60, 6 * 3600 + 1, "soon"])
def test_a_wait_limit_out_of_range_names_the_field(tmp_path, value):
    from guardian_lib.errors import ConfigError
    from guardian_lib.operate.site import load_site

    with pytest.raises(ConfigError, match=r"site\.yaml.*nbi\.silent_wait_max_s"):
        load_site(_nbi_site(tmp_path, silent_wait_max_s=value))
    assert load_site(_nbi_site(tmp_path)).nbi.silent_wait_max_s == WAIT_MAX_S  # unchanged


def test_operate_ends_the_wait_at_the_sites_limit(tmp_path):
    """The OLT that lost power, with ``nbi.silent_wait_max_s: 600``: its ONUs count
    offline and the OLT incident opens at the first poll more than 10 minutes into the
    silence, before the second missed Inform and long before the default's 30 minutes."""
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    limit = 600.0
    net = _Network(power_lost=True)
    start = T0.timestamp() + SILENT_FROM * POLL_S + 20.0
    dues = np.sort(net.last_informs(np.inf) + HOUR_S)
    assert dues[PON_MISSES - 1] + MISS_LATE_S > start + limit  # the misses come later
    end_cycle = SILENT_FROM + int(limit // POLL_S) + 1  # the first poll past the limit
    op = Operator(load_site(_nbi_site(tmp_path, silent_wait_max_s=limit)), tmp_path / "state")
    op.source.close()
    op.source, op.wall, op.cpe_state = net, net.now, NbiCpeState(net)
    try:
        figures = [op.run_cycle() for _ in range(SILENT_FROM + STEPS)]
    finally:
        op.close()
    seen = [f["onus_seen_by_acs_only"] for f in figures]
    assert seen[SILENT_FROM + 1 : end_cycle] == [N] * (end_cycle - SILENT_FROM - 1), seen
    assert seen[end_cycle:] == [0] * (len(seen) - end_cycle), seen
    assert [f["open_incidents"] for f in figures].index(1) == end_cycle
