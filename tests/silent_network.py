"""A synthetic network for the silent-OLT tests: a site file, OLT polls that answer or
time out, and ``guardian operate``'s cycles run against it with restarts.

The tests give a ``_Network``-like object with ``poll()``, ``close()``, ``now()`` (the
host's wall clock at the end of the poll) and the NBI's ``devices()``. Test modules
import it as ``silent_network`` (``pythonpath = ["tests"]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

__all__ = ["fleet_site", "olt_polls", "operate_cycles", "silent_olt"]


def fleet_site(tmp_path: Path, rows: Iterable[tuple[str, str, str, str]], poll_s: float) -> Path:
    """A site file of the fleet ``rows`` (``onu_id, pon_id, olt_id, cpe_id``), its
    subscribers CSV and an inventory of one OLT (the source is replaced by the test);
    warehouse ``wh``, the rule scorer, polling every ``poll_s``. [s]"""
    pd.DataFrame(list(rows), columns=["onu_id", "pon_id", "olt_id", "cpe_id"]).to_csv(
        tmp_path / "subs.csv", index=False
    )
    (tmp_path / "olts.yaml").write_text(
        yaml.safe_dump({"olts": [{"olt_id": "OLT-1", "host": "127.0.0.1", "credentials": "n"}]})
    )
    site = {"inventory": "olts.yaml", "warehouse": "wh", "model_alias": None,
            "subscribers": "subs.csv", "polling_interval_s": int(poll_s)}  # fmt: skip
    (tmp_path / "site.yaml").write_text(yaml.safe_dump(site))
    return tmp_path / "site.yaml"


def olt_polls(ts: pd.Timestamp, olts: Iterable[tuple[str, list[str], bool]]) -> Any:
    """One poll: each ``(olt_id, onu_ids, answers)`` gives its ONUs online at -20 dBm,
    or a timeout (no rows)."""
    from guardian_lib.snmp.poller import OltPollResult, PollReport
    from guardian_lib.snmp.rows import EVENTS_SCHEMA, TELEMETRY_SCHEMA, empty_frame

    results = []
    for olt, onus, answers in olts:
        tel = empty_frame(TELEMETRY_SCHEMA)
        if answers:
            rows = pd.DataFrame({"ts": ts, "onu_id": onus, "online": True, "rx_dbm": -20.0,
                                 "source": "snmp", "received_at": ts, "olt_id": olt,
                                 "poll_complete": True})  # fmt: skip
            tel = pd.concat([tel, rows], ignore_index=True)
        results.append(OltPollResult(olt, "test", tel, empty_frame(EVENTS_SCHEMA), answers,
                                     None if answers else "timeout"))  # fmt: skip
    return PollReport(results)


def operate_cycles(
    site_path: Path, state: Path, net: Any, runs: Sequence[int]
) -> tuple[list[dict], list, list[tuple]]:
    """``guardian operate`` (execute mode) on ``net``: ``runs[k]`` cycles in the k-th
    process (a restart between two). Returns the cycles' figures, the notices sent and
    the incidents' ``(scope_type, scope_key)``."""
    from guardian_lib.operate.adapters import NbiCpeState
    from guardian_lib.operate.service import Operator
    from guardian_lib.operate.site import load_site

    site = load_site(site_path)
    figures, notices = [], []
    for cycles in runs:
        op = Operator(site, state, mode="execute")
        op.source.close()
        op.source, op.wall, op.cpe_state = net, net.now, NbiCpeState(net)
        try:
            figures += [op.run_cycle() for _ in range(cycles)]
            notices += list(op.notifier.sent)
        finally:
            op.close()
    con = duckdb.connect(str(state / "audit.duckdb"), read_only=True)
    try:
        scopes = con.execute("SELECT DISTINCT scope_type, scope_key FROM incidents").fetchall()
    finally:
        con.close()
    return figures, notices, scopes


def silent_olt(pons: int, n: int, poll_s: float, since_s: float) -> tuple[Any, list[str]]:
    """A :class:`~guardian_lib.operate.silent.SilentOlts` of one OLT of ``pons`` PONs of
    ``n`` ONUs (``P<p>-<i>``; CPE id = ONU id), silent since ``since_s``. [s]"""
    from guardian_lib.operate.silent import SilentOlts

    onus = [f"P{p}-{i:03d}" for p in range(pons) for i in range(n)]
    s = SilentOlts(onus, dict.fromkeys(onus, "OLT-1"), {o: o for o in onus}, poll_s,
                   pon_of={o: o.split("-")[0] for o in onus})  # fmt: skip
    s.observe([], ["OLT-1"], now_s=since_s)
    return s, onus
