"""A cycle cut by ``kill -9`` after its audit was written, then run again after the
restart, is audited once (decision and incident ids derive from the cycle)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pandas as pd
import yaml

from guardian_lib.audit import AuditLog
from guardian_lib.decision import Decision

# A real operate process: its poll is replaced by fixed rows (no OLT here) and its policy
# by one that always asks for the same reboot and a PON incident; with "crash" it kills
# itself with SIGKILL right after the cycle's audit is flushed, before the cycle commits.
_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    import pandas as pd
    from guardian_lib.decision import Decision
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    site, state, crash = sys.argv[1], sys.argv[2], sys.argv[3] == "crash"
    op = Operator(load_site(site), state, mode="execute")
    ts = pd.Timestamp("2026-03-02T10:00:00Z")
    tel = pd.DataFrame({"ts": [ts] * 2, "onu_id": ["A", "B"], "online": [True, False],
                        "received_at": [ts] * 2})
    for col in ("rx_dbm", "tx_dbm", "olt_rx_dbm", "ber", "latency_ms", "loss_pct", "uptime_s"):
        tel[col] = [1.0, None]

    class Policy:
        name, version = "stub", "1"

        def decide(self, snap):
            return [Decision(ts=snap.ts, subject="A", action="reboot", targets=("CPE-A",)),
                    Decision(ts=snap.ts, subject="P1", action="open_incident", targets=("B",),
                             params={"scope_type": "pon", "scope_key": "P1"})]

    class Report:
        telemetry, events, failed, results = tel, pd.DataFrame(
            columns=["ts", "entity_id", "entity_type", "type", "severity", "payload"]), [], []

    op.source.poll = lambda: Report()
    op._store_rows = lambda report: []
    build = op._build

    def _build(fleet):
        build(fleet)
        op.autopilot.policy = Policy()

    op._build = _build
    if crash:
        def die(*a, **k):
            os.kill(os.getpid(), signal.SIGKILL)
        op.store.record_cycle = die
    op.run_cycle()
    op.close()
    """
)


def _site(tmp_path):
    (tmp_path / "olts.yaml").write_text(yaml.safe_dump(
        {"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "noc"}]}))  # fmt: skip
    (tmp_path / "subs.csv").write_text(
        "onu_id,customer_id,pon_id,olt_id,region,cpe_id\n"
        "A,C1,P1,OLT-1,Campinas,CPE-A\nB,C2,P1,OLT-1,Campinas,CPE-B\n"
    )
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(
        {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
         "subscribers": "subs.csv"}))  # fmt: skip
    return site


def _run(site, state, how: str) -> int:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(site), str(state), how],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode in (0, -9), proc.stderr[-3000:]
    return proc.returncode


def _audit(state, sql):
    con = duckdb.connect(str(state / "audit.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_kill_9_after_the_audit_then_restart_audits_the_cycle_once(tmp_path):
    site, state = _site(tmp_path), tmp_path / "state"
    assert _run(site, state, "crash") == -9
    first = _audit(state, "SELECT decision_id, action, allowed FROM decisions ORDER BY 1")
    assert {r[1] for r in first} == {"reboot", "open_incident"}  # the cut cycle's audit
    assert _run(site, state, "normal") == 0  # the same cycle, again
    again = _audit(state, "SELECT decision_id, action, allowed FROM decisions ORDER BY 1")
    assert again == first  # no second (blocked) reboot, no second incident decision
    assert _audit(state, "SELECT count(*) FROM incidents")[0][0] == 1
    acts = _audit(state, "SELECT decision_id, count(*) FROM actions GROUP BY 1 HAVING count(*) > 1")
    assert acts == []
    committed = _audit(
        state, "SELECT count(*) FROM decisions WHERE decision_id LIKE '%C00000001-%'"
    )
    assert committed[0][0] == len(first)  # the re-run was cycle 1 again


def test_decision_ids_of_a_cycle_are_stable_and_distinct(tmp_path):
    ts = pd.Timestamp("2026-03-02T10:00:00Z")
    d = Decision(ts=ts, subject="A", action="reboot", targets=("CPE-A",))
    log = AuditLog(tmp_path / "a.duckdb", tag="s-")
    log.begin_cycle(7)
    ids = [log.record_decision(d, {}, "execute") for _ in range(2)]
    assert ids[0] != ids[1] and all(i.startswith("s-C00000007-D") for i in ids)
    log.close()
    log = AuditLog(tmp_path / "a.duckdb", tag="s-")
    log.begin_cycle(7)  # the same cycle again: the same ids, nothing written twice
    assert [log.record_decision(d, {}, "execute") for _ in range(3)][:2] == ids
    assert len(log.frame("decisions")) == 3  # the third is new in this run
    log.close()
