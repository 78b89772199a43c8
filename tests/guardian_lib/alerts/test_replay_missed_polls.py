"""`guardian alerts replay` reads telemetry with operate's missed-poll rule: an ONU without
a row keeps its previous reading for ``missed_poll_grace_steps`` steps, then counts offline
(over all the PON's ONUs of the inventory); a step without any row repeats the previous one."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
import typer
import yaml
from typer.testing import CliRunner

from guardian_lib.alerts.cli import register
from guardian_lib.alerts.live import cycle_observations
from guardian_lib.alerts.replay import _Observations, load_history, replay_run
from guardian_lib.loop.missed import MISSED_POLL_GRACE_STEPS, MissedPolls
from guardian_lib.loop.tick import Tick

T0 = pd.Timestamp("2026-01-05 12:00", tz="UTC")
STEP = pd.Timedelta(minutes=5)
N_STEPS = 14
P1 = ["A0", "A1", "A2", "A3"]  # PON P1 on OLT O1
P2 = ["B0", "B1", "B2", "B3"]  # PON P2 on OLT O2
PON = {**dict.fromkeys(P1, "P1"), **dict.fromkeys(P2, "P2")}
OLT = {"P1": "O1", "P2": "O2"}
#: (ONU, step) without a row: A0 misses one poll, A1 four in a row, P2's ONUs stop
#: answering at step 6; step 10 has no row at all (a hole in the export).
MISSING = (
    {("A0", 3)} | {("A1", k) for k in range(5, 9)} | {(o, k) for o in P2 for k in range(6, N_STEPS)}
)
HOLE = 10


def _online(onu: str, k: int) -> bool:
    return onu != "A3" and not (onu == "A2" and 7 <= k < 9)  # A3 always down, A2 for 2 steps


def _rows(hole: int | None = HOLE) -> pd.DataFrame:
    rows = [
        {"ts": T0 + k * STEP, "onu_id": o, "online": _online(o, k)}
        for k in range(N_STEPS) for o in P1 + P2 if (o, k) not in MISSING and k != hole
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _make_run(root, tel: pd.DataFrame):
    root.mkdir()
    onus = pd.DataFrame({"onu_id": P1 + P2, "serial": [f"S{o}" for o in P1 + P2],
                         "pon_id": [PON[o] for o in P1 + P2], "splitter_id": "X"})  # fmt: skip
    customers = pd.DataFrame({"customer_id": [f"C{o}" for o in P1 + P2], "onu_id": P1 + P2,
                              "segment": "residential", "cpe_id": [f"E{o}" for o in P1 + P2]})  # fmt: skip
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    con.execute(
        "CREATE TABLE olts AS SELECT * FROM (VALUES ('O1','R'),('O2','R')) t(olt_id, region)"
    )
    con.execute(
        "CREATE TABLE pons AS SELECT * FROM (VALUES ('P1','O1'),('P2','O2')) t(pon_id, olt_id)"
    )
    for name, df in (("onus", onus), ("customers", customers)):
        con.register("_df", df)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM _df")
        con.unregister("_df")
    con.close()
    folder = root / "lake/silver/telemetry/date=2026-01-05"
    folder.mkdir(parents=True)
    tel.to_parquet(folder / "data.parquet")
    return root


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("missed") / "run", _rows())


def _expected(grace: int) -> dict[tuple[pd.Timestamp, str], float]:
    """The rule written out ONU by ONU (the reference): (step time, PON) → offline share."""
    last: dict[str, float] = {}
    missed = dict.fromkeys(P1 + P2, 0)
    out: dict[tuple[pd.Timestamp, str], float] = {}
    prev: dict[str, float] = {}
    for k in range(N_STEPS):
        if k == HOLE:  # no row at all: the previous step's readings
            out.update({(T0 + k * STEP, p): prev[p] for p in ("P1", "P2")})
            continue
        now: dict[str, float] = {}
        for o in P1 + P2:
            if (o, k) not in MISSING:
                missed[o], now[o] = 0, float(_online(o, k))
            else:
                missed[o] += 1
                held = missed[o] <= grace and not np.isnan(last.get(o, np.nan))
                now[o] = last[o] if held else np.nan
        last = now
        for p, onus in (("P1", P1), ("P2", P2)):
            prev[p] = float(np.mean([not v == 1.0 for o, v in now.items() if o in onus]))
            out[(T0 + k * STEP, p)] = prev[p]
    return out


@pytest.mark.parametrize("grace", [0, 1, 2])
def test_health_follows_the_missed_poll_rule(run, grace):
    h = load_history(run, grace)
    got = {(r.ts, r.pon): r.offline_share for r in h.health.itertuples()}
    assert got == pytest.approx(_expected(grace))
    assert set(h.health["olt"]) == {"O1", "O2"}
    assert (h.health.groupby("pon")["olt"].first() == pd.Series(OLT)).all()


def test_missed_polls_held_within_the_grace_offline_past_it(run):
    share = {(r.ts, r.pon): r.offline_share for r in load_history(run, 1).health.itertuples()}
    at = lambda k, p: share[(T0 + k * STEP, p)]  # noqa: E731
    # (a) A0's one missed poll keeps its reading: 1 of 4 offline (A3), not 1 of the 3 rows
    assert at(2, "P1") == at(3, "P1") == 0.25
    # (b) A1 missing 4 steps: held at step 5, offline from step 6 (+ A2 down at 7-8)
    assert at(5, "P1") == 0.25 and at(6, "P1") == 0.5 and at(7, "P1") == at(8, "P1") == 0.75
    # a PON whose ONUs all stopped answering is not healthy: held one step, then all offline
    assert at(6, "P2") == 0.0 and at(7, "P2") == 1.0 and at(11, "P2") == 1.0
    # (c) the step without any row repeats the previous one's shares
    assert at(HOLE, "P1") == at(HOLE - 1, "P1") == 0.25 and at(HOLE, "P2") == 1.0
    assert len(share) == 2 * N_STEPS


def test_replay_alerts_on_the_pon_that_stopped_answering(run):
    r = replay_run(run)
    assert r["missed_poll_grace_steps"] == MISSED_POLL_GRACE_STEPS == 1
    fired = {(a["labels"]["alertname"], a["labels"].get("pon") or a["labels"].get("olt"))
             for a in r["alerts_raw"]["list"]}  # fmt: skip
    assert ("OltUnreachable", "O2") in fired and ("PonOfflineShare", "P2") in fired
    assert ("PonOfflineShare", "P1") in fired  # 0.75 for two steps (A1 past its grace, A2 down)
    # with a grace longer than A1's gap it is held: P1 never above one half
    r4 = replay_run(run, missed_poll_grace_steps=4)
    names = {(a["labels"]["alertname"], a["labels"].get("pon")) for a in r4["alerts_raw"]["list"]}
    assert ("PonOfflineShare", "P1") not in names and ("PonOfflineShare", "P2") in names


def test_replay_health_agrees_with_operate(run):
    """Operate's observations of the same polls (MissedPolls on each poll's rows, then the
    live cycle's health) are the replay's at every step with rows."""
    fleet = pd.DataFrame({"onu_id": P1 + P2, "customer_id": [f"C{o}" for o in P1 + P2],
                          "pon_id": [PON[o] for o in P1 + P2], "box_id": "X",
                          "olt_id": [OLT[PON[o]] for o in P1 + P2], "region": "R",
                          "segment": "residential"})  # fmt: skip
    obs = _Observations(load_history(run))
    missed, tel = MissedPolls(len(fleet)), _rows()
    for k in range(N_STEPS):
        if k == HOLE:
            continue
        now = T0 + k * STEP
        polled = tel.loc[tel["ts"] == now, ["onu_id", "online"]]
        read = fleet["onu_id"].isin(polled["onu_id"]).to_numpy()
        tick = missed.tick(Tick.from_frame(now, polled, fleet["onu_id"]), read)
        seen = pd.DataFrame({"onu_id": fleet["onu_id"], "online": tick.online})
        live = cycle_observations(
            fleet, seen, pd.DataFrame(columns=["entity_id", "entity_type", "type"]), {}, {}
        )
        key = lambda o: (o["level"], o.get("pon", ""), o["olt"])  # noqa: E731
        assert sorted(obs.at(now, STEP)["health"], key=key) == sorted(live["health"], key=key)


def test_cli_grace_from_the_option_or_the_site_file(run, tmp_path):
    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "O1", "host": "127.0.0.1", "credentials": "n"}]})
    )
    (tmp_path / "subs.csv").write_text("onu_id,pon_id\nA0,P1\n")
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump({"inventory": "olts.yaml", "warehouse": "wh",
                                    "subscribers": "subs.csv", "missed_poll_grace_steps": 3}))  # fmt: skip
    app = typer.Typer()
    register(app)
    runner, out = CliRunner(), tmp_path / "r.json"
    base = ["alerts", "replay", "--run", str(run), "--json", str(out)]
    for extra, want in (([], 1), (["--site", str(site)], 3),
                        (["--site", str(site), "--missed-poll-grace-steps", "0"], 0)):  # fmt: skip
        res = runner.invoke(app, base + extra)
        assert res.exit_code == 0, res.output
        assert json.loads(out.read_text())["missed_poll_grace_steps"] == want
    assert runner.invoke(app, base + ["--missed-poll-grace-steps", "-1"]).exit_code != 0
