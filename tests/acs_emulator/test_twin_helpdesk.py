"""The twin's helpdesk: the simulated customers' calls reach ``guardian operate`` as contact
files, as a helpdesk CRM would write them (``guardian twin --serve-network --helpdesk``)."""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from acs_emulator.twin.helpdesk import CONTACT_COLUMNS, HelpdeskDrop
from guardian_lib.operate.contacts import read_contact_file
from simulator.engine import Simulation
from simulator.scenario import load_scenario


class _Recorder:
    """A sink keeping every event and the online mask of every tick."""

    def __init__(self) -> None:
        self.events: list = []
        self.online: list[np.ndarray] = []

    def on_tick(self, sim, state, events) -> None:
        self.events += events
        self.online.append(state.online.copy())


def _run(sinks, ticks: int, seed: int = 11) -> Simulation:
    """``tiny`` for ``ticks`` ticks, its 64 customers calling ~100 times a year each even
    when served (so a day has calls to carry)."""
    sc = load_scenario("tiny", days=ticks / 288 + 1)
    chatty = sc.customers.model_copy(update={"background_calls_per_year": 100.0})
    sim = Simulation(sc.model_copy(update={"customers": chatty}), seed=seed, sinks=sinks)
    for _ in range(ticks):
        sim.step()
    return sim


def _read_folder(folder: Path) -> list:
    """Every contact of the folder, read with operate's own reader (every row checked)."""
    out = []
    latest = pd.Timestamp("2100-01-01", tz="UTC")
    for f in sorted(folder.iterdir()):
        assert not f.name.startswith("."), f"a file left half-written: {f.name}"
        out += read_contact_file(f.name, f.read_bytes(), ZoneInfo("UTC"), latest)
    return out


def test_every_simulated_call_is_written_once_and_operate_reads_it(tmp_path):
    drop, rec = HelpdeskDrop(tmp_path / "inbox"), _Recorder()
    sim = _run([drop, rec], ticks=288)
    calls = [e for e in rec.events if e.type == "CUSTOMER_CALL"]
    assert len(calls) >= 3, "customers should call within a day"
    contacts = _read_folder(tmp_path / "inbox")
    assert drop.contacts == len(contacts) == len(calls)
    # one file per tick with calls, columns as operate's drop folder reads them
    files = sorted((tmp_path / "inbox").iterdir())
    assert drop.files == len(files) == len({sim.ts_of(e.now_s) for e in calls})
    assert files[0].read_text().splitlines()[0] == ",".join(CONTACT_COLUMNS)
    want = sorted((sim.ts_of(e.now_s), e.entity_id, json.loads(e.payload)["reason"]) for e in calls)
    got = sorted((pd.Timestamp(c.ts), c.customer_id, c.reason) for c in contacts)
    assert got == want
    assert {c.channel for c in contacts} == {"phone"}
    assert len({c.contact_id for c in contacts}) == len(contacts)  # operate de-duplicates by id
    assert {c.customer_id for c in contacts} <= set(sim.topology.customers["customer_id"])


def test_the_helpdesk_changes_nothing_in_the_simulation(tmp_path):
    with_drop, without = _Recorder(), _Recorder()
    _run([HelpdeskDrop(tmp_path / "inbox"), with_drop], ticks=288)
    _run([without], ticks=288)
    assert with_drop.events == without.events
    assert all(np.array_equal(a, b) for a, b in zip(with_drop.online, without.online, strict=True))


def test_calls_before_the_folder_is_known_are_held_then_written(tmp_path):
    drop, rec = HelpdeskDrop(), _Recorder()
    _run([drop, rec], ticks=144)
    n = sum(e.type == "CUSTOMER_CALL" for e in rec.events)
    assert n > 0 and drop.files == 0
    drop.set_folder(tmp_path / "later")
    assert len(_read_folder(tmp_path / "later")) == n == drop.contacts


@pytest.mark.timeout(120)
def test_operate_on_the_twin_network_learns_of_a_customers_call(tmp_path):
    from acs_emulator.twin.network import TwinNetwork
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    net = TwinNetwork(load_scenario("tiny"), seed=3, speed=600, n_cpes=2, helpdesk=True)
    net.start()
    try:
        site = load_site(net.write_site(tmp_path / "site.yaml"))
        assert site.contacts is not None
        assert site.resolve(site.contacts.folder) == tmp_path / "site-contacts"
        op = Operator(site, tmp_path / "state")
        try:
            row = 5
            customer = str(net.sim.customer_ids[row])
            with net.lock:  # a customer calls (the simulator's own call path)
                net.sim.ops.on_call(row, "offline")
                net.sim.step()
            # A cycle is stamped with its polling step: a call dated after the first
            # cycle's step (a fast host starts it within the first step) waits for the
            # next cycle, as any contact dated after its cycle does.
            cycles = [op.run_cycle()["contacts"] for _ in range(2)]
        finally:
            op.close()
    finally:
        net.stop()
    figures = {k: sum(c[k] for c in cycles) for k in ("fed", "late", "unknown_customers")}
    assert figures["fed"] + figures["late"] == 1, cycles
    assert cycles[0]["new"] == 1 and (cycles[0]["pending"] == 1 or cycles[0]["fed"] == 1)
    assert figures["unknown_customers"] == 0 and not any(c["rejected"] for c in cycles)
    done = list((tmp_path / "site-contacts" / "done").iterdir())
    assert any(customer in f.read_text() for f in done)
    assert net.truth()["helpdesk_contacts"] == net.helpdesk.contacts >= 1


def test_helpdesk_without_serve_network_is_refused():
    import cli_runner

    res = cli_runner.run_guardian("twin", "--scenario", "tiny", "--helpdesk", check=False)
    assert res.returncode == 2
    assert "--helpdesk" in res.stderr and "--serve-network" in res.stderr
