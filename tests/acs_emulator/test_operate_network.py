"""``guardian operate`` against the twin's network: real processes, SNMP and HTTP on loopback.

``guardian twin --serve-network`` runs the ``tiny`` scenario at 600× (a 5-minute tick
every 0.5 s) with OLT SNMP agents, the ACS NBI and 64 CPE agents, and writes the site
file ``guardian operate`` uses unchanged; at exit it writes the ground truth. Scenarios:
only CPE hangs (seed 4: a hang at 13 and 59 simulated minutes), or only feeder cuts
(seed 34: PON ``OLT-01-001/1/0`` cut at 15 minutes for 7 hours); for a silent OLT, two
OLTs of 32 ONUs without faults, one reached through a UDP forwarder the test turns off.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest
import yaml
from cli_runner import run_guardian
from local_servers import UdpForwarder, free_port

GUARDIAN = Path(sys.executable).with_name("guardian")
SPEED = 600.0


def _scenario(tmp_path: Path, only_fault, kind: str, rate: float, **params) -> Path:
    sc = only_fault(kind, rate, fault_params=params) if params else only_fault(kind, rate)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
    return path


class Network:
    """A ``guardian twin --serve-network`` process."""

    def __init__(
        self, tmp_path: Path, scenario: Path, seed: int, hours: float = 8.0, speed: float = SPEED,
        extra: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.site = tmp_path / "net" / "site.yaml"
        self.truth_path = tmp_path / "truth.json"
        self.proc = subprocess.Popen(
            [str(GUARDIAN), "twin", "--scenario", str(scenario), "--seed", str(seed),
             "--speed", str(speed), "--serve-network", "--site-out", str(self.site),
             "--truth-out", str(self.truth_path), "--hours", str(hours), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        end = time.monotonic() + 60
        while not self.site.exists():
            if self.proc.poll() is not None or time.monotonic() > end:
                out, err = self.proc.communicate(timeout=10)
                raise AssertionError(f"twin did not write its site file: {err[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> dict:
        """SIGTERM, wait, and return the truth."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0
        return json.loads(self.truth_path.read_text())


@pytest.fixture
def network_factory(tmp_path):
    nets: list[Network] = []

    def make(scenario: Path, seed: int, hours: float = 8.0, speed: float = SPEED,
             extra: tuple[str, ...] = ()) -> Network:  # fmt: skip
        nets.append(Network(tmp_path, scenario, seed, hours, speed, extra))
        return nets[-1]

    yield make
    for n in nets:
        if n.proc.poll() is None:
            n.proc.kill()
            n.proc.communicate(timeout=30)


def _operate(site: Path, state: Path, *args: str, timeout: float = 90) -> dict:
    out = state.parent / f"{state.name}-summary.json"
    proc = subprocess.run(
        [str(GUARDIAN), "operate", "--site", str(site), "--state", str(state), "--json",
         str(out), *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def _start_operate(site: Path, state: Path, *args: str, mode: str = "execute") -> subprocess.Popen:
    """``guardian operate`` on ``site`` as a process of its own (stderr kept for errors)."""
    return subprocess.Popen(
        [str(GUARDIAN), "operate", "--site", str(site), "--state", str(state), "--mode", mode,
         *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _journal(state: Path) -> list[dict]:
    con = sqlite3.connect(state / "operate.sqlite")
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM journal ORDER BY created_at")]
    finally:
        con.close()


def _last_cycle(state: Path) -> int:
    con = sqlite3.connect(state / "operate.sqlite")
    try:
        return int(con.execute("SELECT coalesce(max(cycle), 0) FROM cycles").fetchone()[0])
    finally:
        con.close()


def _last_cycle_safe(state: Path) -> int:
    try:
        return _last_cycle(state) if (state / "operate.sqlite").exists() else 0
    except sqlite3.OperationalError:  # being created
        return 0


def _audit(state: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(state / "audit.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_execute_reboots_the_hung_cpe_through_the_nbi_and_the_simulator_sees_it_clear(
    tmp_path, only_fault, network_factory
):
    sc = _scenario(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    summary = _operate(net.site, tmp_path / "state", "--mode", "execute", "--for-ticks", "12")
    truth = net.stop()
    first = truth["hangs"][0]
    # The first hang (13 simulated minutes in) was ended by a reboot the ACS sent.
    assert first["cleared_by_reboot"] and first["reboot_by"] == "acs"
    journal = _journal(tmp_path / "state")
    # On a loaded machine the twin's clock runs ahead of operate's cycles, so a later hang
    # can be seen in the same cycle: the first hang is rebooted in the first cycle that
    # sent a reboot (the order inside one cycle is not the order of the hangs).
    first_cycle = min(j["cycle"] for j in journal if j["action"] == "reboot")
    assert first["cpe_id"] in {
        j["target"] for j in journal if j["action"] == "reboot" and j["cycle"] == first_cycle
    }
    assert all(j["status"] == "sent" for j in journal)
    # Each reboot operate sent reached the CPE at most once (one sent in the last cycle
    # may still be in flight when the network stops); nothing else rebooted a CPE.
    sent = sorted(j["target"] for j in journal if j["action"] == "reboot")
    rpcs = truth["cpe_reboot_rpcs"]
    assert first["cpe_id"] in rpcs and len(rpcs) == len(set(rpcs)) and set(rpcs) <= set(sent)
    assert summary["actions_sent"] == len(sent) >= 1
    assert summary["safety_violations"] == 0 and summary["actions_failed"] == 0
    assert summary["ticks"] == 12 and summary["rows_polled"] == 12 * 64
    # Audited once verified (15 simulated minutes after the reboot): the first one is.
    reboots = _audit(tmp_path / "state", "SELECT target FROM actions WHERE action_type='reboot'")
    audited = [r[0] for r in reboots]
    assert first["cpe_id"] in audited and set(audited) <= set(sent)
    # Every polled row is in the warehouse (RAW and SILVER) once.
    wh = net.site.parent / "site-warehouse"
    con = duckdb.connect()
    raw = f"read_parquet('{wh}/lake/raw/telemetry/*/*.parquet')"
    n, uniq = con.execute(f"SELECT count(*), count(DISTINCT (onu_id, ts)) FROM {raw}").fetchone()
    assert n == uniq == summary["rows_polled"]


def test_simulate_mode_sends_nothing_and_an_unreachable_olt_is_flagged(
    tmp_path, only_fault, network_factory
):
    sc = _scenario(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    # Add an OLT that does not answer (nothing listens on its port).
    inv_path = net.site.with_name("site.olts.yaml")
    inv = yaml.safe_load(inv_path.read_text())
    inv["olts"].append({"olt_id": "OLT-DEAD", "host": "127.0.0.1", "port": 9,
                        "version": "2c", "credentials": "emulator", "timeout_s": 0.2,
                        "retries": 0})  # fmt: skip
    inv_path.write_text(yaml.safe_dump(inv))
    # Run as a service: metrics while it runs, SIGTERM ends the cycle and exits 0.
    state, out, port = tmp_path / "state", tmp_path / "summary.json", free_port()
    proc = _start_operate(net.site, state, "--json", str(out), "--metrics-port", str(port),
                          mode="simulate")  # fmt: skip
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end and _last_cycle_safe(state) < 8:
            time.sleep(0.1)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-2000:]
    text = metrics.decode()
    for name in ("guardian_cycle_duration_seconds_bucket", "guardian_rows_polled_total",
                 "guardian_olts_failed 1.0", 'guardian_model_info{model_version="rules-2"} 1.0',
                 "guardian_last_successful_cycle_timestamp_seconds",
                 'guardian_decisions_total{action="reboot"}'):  # fmt: skip
        assert name in text, name
    summary = json.loads(out.read_text())
    truth = net.stop()
    n = summary["ticks"]
    assert n >= 8 and n == _last_cycle_safe(state)  # the last cycle was finished
    assert summary["olts_failed"] == n  # the dead OLT, every cycle; the cycle went on
    assert summary["rows_polled"] == n * 64
    # The hung CPE is decided about (audited as simulated) but nothing is sent.
    assert summary["decisions_by_action"].get("reboot", 0) >= 1
    assert summary["actions_sent"] == 0 and summary["actions_simulated"] >= 1
    assert _journal(tmp_path / "state") == []
    assert truth["cpe_reboot_rpcs"] == [] and truth["hangs"][0]["reboot_by"] is None
    statuses = _audit(tmp_path / "state", "SELECT DISTINCT status FROM actions")
    assert {s[0] for s in statuses} <= {"simulated"}


def test_kill_9_mid_run_then_restart_sends_nothing_twice(tmp_path, only_fault, network_factory):
    # Reboots never clear these hangs: the policy keeps wanting one, only the restored
    # cooldown (or the journal) stops a second reboot after the restart.
    sc = _scenario(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=0.0)
    net = network_factory(sc, seed=4)
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [str(GUARDIAN), "operate", "--site", str(net.site), "--state", str(state),
         "--mode", "execute"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    end = time.monotonic() + 60
    try:
        while time.monotonic() < end:
            try:
                # Kill once the cycle that sent the reboot is committed: the restart then
                # runs new cycles (new idempotency keys), only the restored cooldown and
                # case can stop a second reboot of the still-hung CPE.
                if (state / "operate.sqlite").exists() and _journal(state):
                    if _last_cycle(state) >= _journal(state)[0]["cycle"]:
                        break
            except sqlite3.OperationalError:  # the tables are being created
                pass
            time.sleep(0.05)
        else:
            raise AssertionError("operate sent no reboot within 60 s")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    first = _journal(state)
    summary = _operate(net.site, state, "--mode", "execute", "--for-ticks", "10")
    truth = net.stop()
    journal = _journal(state)
    targets = [j["target"] for j in journal if j["action"] == "reboot"]
    assert len(targets) == len(set(targets)), f"a device was rebooted twice: {targets}"
    assert first[0]["target"] in targets
    # The restarted process continued the cycle count and never re-sent a key.
    assert summary["first_cycle"] > first[0]["cycle"] and summary["ticks"] == 10
    assert summary["duplicates_suppressed"] == 0
    assert summary["safety_violations"] == 0
    # The simulator received each reboot at most once.
    rpcs = truth["cpe_reboot_rpcs"]
    assert len(rpcs) == len(set(rpcs)) and set(rpcs) <= set(targets)
    # No polled row is in RAW twice (the cycle cut by the kill is polled anew).
    wh = net.site.parent / "site-warehouse"
    raw = f"read_parquet('{wh}/lake/raw/telemetry/*/*.parquet')"
    n, uniq = (
        duckdb.connect()
        .execute(f"SELECT count(*), count(DISTINCT (onu_id, ts)) FROM {raw}")
        .fetchone()
    )
    assert n == uniq
    silver = f"read_parquet('{wh}/lake/silver/telemetry/*/*.parquet')"
    n, uniq = (
        duckdb.connect()
        .execute(f"SELECT count(*), count(DISTINCT (onu_id, ts)) FROM {silver}")
        .fetchone()
    )
    assert n == uniq > 0


def test_approve_mode_sends_only_what_was_approved(tmp_path, only_fault, network_factory):
    sc = _scenario(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    state = tmp_path / "state"
    s1 = _operate(net.site, state, "--mode", "approve", "--for-ticks", "6")
    assert s1["actions_queued"] >= 1 and s1["actions_sent"] == 0
    assert _journal(state) == []
    # The operator's decisions commands run in this process (operate and the twin stay
    # real processes): what they write to the state is tested here, not their start-up.
    listed = run_guardian("decisions", "list", "--state", str(state), "--json")
    pending = json.loads(listed.stdout)
    reboots = [p for p in pending if p["action"] == "reboot"]
    assert reboots, pending
    approved = reboots[0]
    run_guardian("decisions", "approve", str(approved["id"]), "--state", str(state))
    for other in (p for p in pending if p["id"] != approved["id"]):
        run_guardian("decisions", "reject", str(other["id"]), "--state", str(state))
    s2 = _operate(net.site, state, "--mode", "approve", "--for-ticks", "4")
    truth = net.stop()
    journal = _journal(state)
    assert [(j["action"], j["target"]) for j in journal] == [("reboot", approved["target"])]
    assert s2["actions_sent"] == 1
    assert truth["cpe_reboot_rpcs"] == [approved["target"]]
    # The console script end to end for the decisions commands: its error path.
    again = subprocess.run(
        [str(GUARDIAN), "decisions", "approve", str(approved["id"]), "--state", str(state)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2 and "is executed, not pending" in again.stderr


def test_a_massive_outage_opens_one_incident_and_holds_visits(
    tmp_path, only_fault, network_factory
):
    sc = _scenario(tmp_path, only_fault, "feeder_cut", 600.0)
    net = network_factory(sc, seed=34)
    state = tmp_path / "state"
    summary = _operate(net.site, state, "--mode", "execute", "--for-ticks", "12")
    truth = net.stop()
    cut = truth["faults"][0]
    assert cut["kind"] == "feeder_cut" and cut["scope_key"] == "OLT-01-001/1/0"
    incidents = _audit(state, "SELECT DISTINCT incident_id, scope_type, scope_key FROM incidents")
    assert len(incidents) == 1, incidents
    _, scope_type, scope_key = incidents[0]
    assert (scope_type, scope_key) == ("pon", cut["scope_key"])
    subs = yaml.safe_load(net.site.read_text())["subscribers"]
    import pandas as pd

    table = pd.read_csv(net.site.with_name(subs))
    on_pon = set(table.loc[table["pon_id"] == cut["scope_key"], "onu_id"])
    visited = {v["onu_id"] for v in truth["visits"] if v["opened_by"] == "autopilot"}
    assert not visited & on_pon, "a visit was sent into a massive outage"
    assert summary["decisions_by_action"].get("schedule_visit", 0) == 0
    assert truth["cpe_reboot_rpcs"] == []


def test_the_twins_ticketing_webhook_opens_each_visit_once_and_rejects_bad_input():
    import threading

    import httpx

    from acs_emulator.twin.ticketing import TicketingServer

    class Field:
        def __init__(self) -> None:
            self.orders: dict[str, str] = {}

        def open_visit(self, onu_id: str, reason: str, priority: str) -> str:
            if onu_id != "ONU-1":
                raise KeyError(onu_id)
            os_id = f"OS{len(self.orders) + 1}"
            self.orders[os_id] = "scheduled"
            return os_id

        def cancel_visit(self, os_id: str, reason: str) -> bool:
            if self.orders.get(os_id) != "scheduled":
                return False
            self.orders[os_id] = "cancelled"
            return True

        def status(self, os_id: str) -> str:
            return self.orders.get(os_id, "unknown")

    field = Field()
    srv = TicketingServer(field, threading.Lock()).start()
    try:
        with httpx.Client(timeout=5) as c:
            body = {"onu_id": "ONU-1", "idempotency_key": "k1", "reason": "r"}
            first = c.post(srv.url, json=body)
            again = c.post(srv.url, json=body)
            assert first.status_code == 201 and again.status_code == 200
            assert first.json()["id"] == again.json()["id"] == "OS1" and len(field.orders) == 1
            assert c.get(f"{srv.url}/OS1").json() == {"id": "OS1", "status": "scheduled"}
            assert c.post(f"{srv.url}/OS1/cancel", json={}).status_code == 200
            assert c.post(f"{srv.url}/OS1/cancel", json={}).status_code == 409
            assert c.get(f"{srv.url}/OS9").status_code == 404
            assert c.post(srv.url, content=b"not json").status_code == 400
            assert c.post(srv.url, json=[1]).status_code == 400
            assert c.post(srv.url, json={"onu_id": "ONU-1"}).status_code == 422
            unknown = c.post(srv.url, json={"onu_id": "X", "idempotency_key": "k2"})
            assert unknown.status_code == 422 and "unknown onu_id" in unknown.text
            big = c.post(srv.url, content=b"{" + b" " * (70 * 1024) + b"}")
            assert big.status_code == 413
            assert c.get(f"{srv.url}/../../etc/passwd").status_code == 404
    finally:
        srv.stop()


class _Forwarder:
    """A TCP forwarder on loopback that can be down (nothing listens) or up."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target = target_port
        self.sock: socket.socket | None = None

    def up(self) -> None:
        import threading

        self.sock = socket.create_server(("127.0.0.1", self.port))

        def pump(src: socket.socket, dst: socket.socket) -> None:
            try:
                while data := src.recv(65536):
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        def accept() -> None:
            while True:
                try:
                    client, _ = self.sock.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", self.target))
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def _figures(state: Path) -> list[dict]:
    try:
        con = sqlite3.connect(state / "operate.sqlite")
        try:
            rows = con.execute("SELECT figures FROM cycles ORDER BY cycle").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return []
    return [json.loads(r[0]) for r in rows]


def test_nbi_down_then_back_the_hang_is_seen_and_rebooted_once_it_answers(
    tmp_path, only_fault, network_factory
):
    sc = _scenario(tmp_path, only_fault, "cpe_hang", 60.0, cpe_hang_reboot_fix_prob=1.0)
    net = network_factory(sc, seed=4)
    site = yaml.safe_load(net.site.read_text())
    nbi_port = int(site["nbi"]["url"].rsplit(":", 1)[1])
    proxy = _Forwarder(nbi_port)
    site["nbi"].update(url=f"http://127.0.0.1:{proxy.port}", retries=1, backoff_s=0.05)
    net.site.write_text(yaml.safe_dump(site))
    state = tmp_path / "state"
    proc = _start_operate(net.site, state)
    try:
        end = time.monotonic() + 60
        while len(_figures(state)) < 3 and time.monotonic() < end:
            time.sleep(0.1)
        down = _figures(state)
        proxy.up()  # the NBI is back
        while time.monotonic() < end and not any(j["status"] == "sent" for j in _journal(state)):
            time.sleep(0.1)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proxy.close()
    truth = net.stop()
    assert proc.returncode == 0, err[-2000:]
    # While the NBI was down the cycles went on, blind to the CPEs' sessions.
    assert len(down) >= 3
    assert all(f["acs_error"] and "Unavailable" in f["acs_error"] for f in down)
    assert all(f["cpe_sessions_down"] == 0 and f["rows_polled"] == 64 for f in down)
    # Once it answered, the hang was seen and the CPE rebooted through it, once.
    after = _figures(state)[len(down) :]
    assert any(f["cpe_sessions_down"] >= 1 and f["acs_error"] is None for f in after)
    sent = [j["target"] for j in _journal(state) if j["status"] == "sent"]
    assert sent and len(sent) == len(set(sent))
    assert truth["hangs"][0]["cpe_id"] in sent and truth["hangs"][0]["reboot_by"] == "acs"


def _open_cases_safe(state: Path) -> int:
    """``open_cases`` of operate's last finished cycle (0 before the first)."""
    if not (state / "operate.sqlite").exists():
        return 0
    con = sqlite3.connect(state / "operate.sqlite")
    try:
        row = con.execute("SELECT figures FROM cycles ORDER BY cycle DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:  # being created
        return 0
    finally:
        con.close()
    return int(json.loads(row[0]).get("open_cases", 0)) if row else 0


def test_a_contact_dropped_while_operate_runs_reaches_the_dark_onus_decisions(
    tmp_path, only_fault, network_factory
):
    """The helpdesk's export job drops a contact file for the customer whose ONU went dark
    (a power-off at 26 simulated minutes, seed 41) and one for a customer with service,
    while ``guardian operate`` polls the twin; only the dark ONU's decisions carry
    ``contacted_since_down``, from the cycle that read the file.

    The file is dropped once a finished cycle reports the dark ONU's case open (the only
    fault): the autopilot has then decided about it without the contact, so there are
    rows from before the file and from after it. (Dropped as soon as the outage showed in
    RAW, the file could be read by the very cycle that wrote it, before its decisions.)
    """
    import pandas as pd

    sc = _scenario(tmp_path, only_fault, "customer_power_off", 60.0)
    # A quarter of the usual speed (a cycle every 2 s): the file must be dropped between the
    # cycle that opened the case and the one that notifies the customer, 10 min later.
    net = network_factory(sc, seed=41, speed=SPEED / 4)
    site = yaml.safe_load(net.site.read_text())
    site["contacts"] = {"folder": "contacts"}
    net.site.write_text(yaml.safe_dump(site))
    subs = pd.read_csv(net.site.with_name(site["subscribers"]))
    dark_onu = "HWTCEEB8C80A"
    dark_cust = subs.loc[subs["onu_id"] == dark_onu, "customer_id"].iloc[0]
    ok_cust = subs.loc[subs["onu_id"] != dark_onu, "customer_id"].iloc[0]
    state, out = tmp_path / "state", tmp_path / "summary.json"
    proc = _start_operate(net.site, state, "--json", str(out), "--for-ticks", "10",
                          mode="simulate")  # fmt: skip
    dropped_after = None
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end and proc.poll() is None:
            if _open_cases_safe(state) >= 1:
                dropped_after = _last_cycle_safe(state)
                clock = site["clock"]
                now = pd.Timestamp(clock["epoch"]) + pd.Timedelta(
                    seconds=(time.time() - clock["wall_epoch"]) * clock["speed"]
                )
                inbox = net.site.with_name("contacts")
                inbox.mkdir(exist_ok=True)
                text = (f"ts,customer_id,channel,reason\n{now.isoformat()},{dark_cust},phone,"
                        f"no_internet\n{now.isoformat()},{ok_cust},chat,billing\n")  # fmt: skip
                (inbox / ".crm.csv.part").write_text(text)
                os.replace(inbox / ".crm.csv.part", inbox / "crm.csv")
                break
            time.sleep(0.05)
        _, err = proc.communicate(timeout=180)  # a loaded machine runs the cycles slower
    finally:
        if proc.poll() is None:
            proc.kill()
    net.stop()
    assert proc.returncode == 0, err[-3000:]
    assert dropped_after is not None, "no case opened for the dark ONU while operate ran"
    by_onu: dict[str, list[tuple[str, bool]]] = {}
    for subject, ts, inputs in _audit(state, "SELECT subject, ts, inputs FROM decisions"):
        flag = bool(json.loads(inputs).get("contacted_since_down"))
        by_onu.setdefault(subject, []).append((str(ts), flag))
    dark = sorted(by_onu.get(dark_onu, []))
    assert dark, "the dark ONU got no decision row"
    flags = [f for _, f in dark]
    # not contacted before the file, contacted from the cycle that read it, to the end
    assert not flags[0], f"no decision about the dark ONU before the file: {dark}"
    assert flags[-1], dark
    assert flags == sorted(flags), dark  # once contacted, it stays contacted while dark
    assert not any(f for o, rows in by_onu.items() if o != dark_onu for _, f in rows)
    assert (net.site.with_name("contacts") / "done" / "crm.csv").is_file()


def _two_olts(tmp_path, only_fault, kind: str = "cpe_hang", rate: float = 0.0):
    sc = only_fault(kind, rate)  # default: no fault at all
    topo = sc.topology.model_dump()
    topo["regions"][0]["olts"] = 2
    topo["pons_per_board"] = 1  # 2 OLTs × 1 PON × 32 ONUs: the usual 64 CPEs
    sc = sc.with_overrides(topology=topo)
    path = tmp_path / f"two_olts_{kind}.yaml"
    path.write_text(yaml.safe_dump(sc.model_dump(mode="json"), sort_keys=False))
    return path


def _forward_second_olt(net: Network) -> tuple[UdpForwarder, str, set[str]]:
    """Point the inventory's second OLT at a UDP forwarder; its id and its ONUs."""
    import pandas as pd

    inv_path = net.site.with_name("site.olts.yaml")
    inv = yaml.safe_load(inv_path.read_text())
    olts = sorted(inv["olts"], key=lambda o: o["olt_id"])
    assert len(olts) == 2
    silent = olts[1]
    fwd = UdpForwarder(int(silent["port"]))
    silent.update(host="127.0.0.1", port=fwd.port, timeout_s=0.5, retries=0)
    inv_path.write_text(yaml.safe_dump(inv))
    subs = pd.read_csv(net.site.with_name("site.subscribers.csv"))
    return fwd, silent["olt_id"], set(subs.loc[subs["olt_id"] == silent["olt_id"], "onu_id"])


def test_an_olt_whose_snmp_breaks_while_its_cpes_inform_opens_no_incident(
    tmp_path, only_fault, network_factory
):
    # CPEs inform every 20 simulated minutes (2 s): a CPE agent late by a second on a
    # loaded machine is not yet overdue (1.5 intervals + 2 polls)
    net = network_factory(_two_olts(tmp_path, only_fault), seed=4,
                          extra=("--periodic-inform-min", "20"))  # fmt: skip
    fwd, olt_id, onus = _forward_second_olt(net)
    state = tmp_path / "state"
    proc = _start_operate(net.site, state, "--for-ticks", "12")
    try:
        end = time.monotonic() + 60
        while _last_cycle_safe(state) < 3 and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        fwd.on = False  # the management path to OLT-02 breaks; its customers are fine
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        fwd.close()
    net.stop()
    assert proc.returncode == 0, err[-3000:]
    figures = _figures(state)
    failed = [f["olts_failed"] == [olt_id] for f in figures]
    first = failed.index(True)
    assert figures[:first] and not any(failed[:first]) and all(failed[first:]), failed
    past_grace = figures[first + 1 :]  # the grace: one cycle
    assert len(past_grace) >= 5, failed
    # every ONU of the silent OLT kept online on the ACS's evidence, none counted offline
    assert [f["onus_seen_by_acs_only"] for f in past_grace] == [len(onus)] * len(past_grace)
    assert [f["onus_seen_by_acs_only"] for f in figures[: first + 1]] == [0] * (first + 1)
    assert _audit(state, "SELECT * FROM incidents") == []
    assert _audit(state, "SELECT * FROM actions WHERE action_type = 'notify'") == []
    assert all(f["open_incidents"] == 0 for f in figures)


def test_an_olt_that_loses_power_with_its_cpes_is_an_outage_as_before(
    tmp_path, only_fault, network_factory
):
    """Seed 77: OLT-01-002's only board fails 203 simulated minutes in, for 3 hours (its
    ONUs and CPEs go dark); its SNMP path is cut one tick after the failure took effect (a
    power cut silences both). No CPE of it informs after the silence: no evidence, the
    OLT's outage is opened and its customers notified as without the ACS's view."""
    import pandas as pd

    sc = _two_olts(tmp_path, only_fault, "olt_board_failure", 1000.0)
    net = network_factory(sc, seed=77, extra=("--periodic-inform-min", "20"))
    fwd, olt_id, onus = _forward_second_olt(net)
    clock = yaml.safe_load(net.site.read_text())["clock"]
    fails = pd.Timestamp("2026-01-05T00:00:00Z") + pd.Timedelta(seconds=12188)
    tick_applied = fails.ceil("5min") + pd.Timedelta(minutes=5)
    cut_wall = clock["wall_epoch"] + (
        (tick_applied - pd.Timestamp(clock["epoch"])).total_seconds() / clock["speed"]
    )
    state = tmp_path / "state"
    proc = _start_operate(net.site, state)
    try:
        time.sleep(max(0.0, cut_wall - time.time()))
        fwd.on = False  # the power cut reaches the management path too
        cut_cycle = _last_cycle_safe(state)
        end = time.monotonic() + 90
        while _last_cycle_safe(state) < cut_cycle + 7 and time.monotonic() < end:
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        fwd.close()
    truth = net.stop()
    assert proc.returncode == 0, err[-3000:]
    fault = truth["faults"][0]
    assert (fault["kind"], fault["scope_key"]) == ("olt_board_failure", f"{olt_id}/1")
    assert abs((pd.Timestamp(fault["start"]) - fails).total_seconds()) < 1
    figures = _figures(state)
    assert cut_cycle >= 1 and figures[0]["olts_failed"] == [], "operate started after the cut"
    assert sum(f["olts_failed"] == [olt_id] for f in figures) >= 6
    assert max(f["onus_seen_by_acs_only"] for f in figures) == 0
    scopes = {
        k for _, _, k in _audit(state, "SELECT incident_id, scope_type, scope_key FROM incidents")
    }
    assert scopes and all(olt_id in k for k in scopes), scopes
    told = {
        t
        for (t,) in _audit(
            state, "SELECT DISTINCT target FROM actions WHERE action_type = 'notify'"
        )
    }
    assert told and told <= onus, told
