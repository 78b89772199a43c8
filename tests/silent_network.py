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

__all__ = [
    "audit_decisions", "fleet_site", "olt_polls", "operate_cycles", "silent_olt",
    "warehouse_inventory",
]  # fmt: skip


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


def olt_polls(
    ts: pd.Timestamp, olts: Iterable[tuple[str, list[str], bool]], offsets_s: Sequence[float] = ()
) -> Any:
    """One poll: each ``(olt_id, onu_ids, answers)`` gives its ONUs online at -20 dBm,
    or a timeout (no rows); the k-th OLT's rows are stamped ``ts`` plus ``offsets_s[k]``
    (default 0: as the poller stamps each OLT's rows with the start of its walk). [s]"""
    from guardian_lib.snmp.poller import OltPollResult, PollReport
    from guardian_lib.snmp.rows import EVENTS_SCHEMA, TELEMETRY_SCHEMA, empty_frame

    results = []
    for k, (olt, onus, answers) in enumerate(olts):
        tel = empty_frame(TELEMETRY_SCHEMA)
        at = ts + pd.Timedelta(seconds=offsets_s[k] if k < len(offsets_s) else 0.0)
        at = at.floor("us").as_unit("us")
        if answers:
            rows = pd.DataFrame({"ts": at, "onu_id": onus, "online": True, "rx_dbm": -20.0,
                                 "source": "snmp", "received_at": at, "olt_id": olt,
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


def audit_decisions(path: Path) -> list[tuple]:
    """The decisions of an audit file: ``(ts, subject, action, allowed)``, in order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute(
            "SELECT ts, subject, action, allowed FROM decisions ORDER BY ts, subject, action"
        ).fetchall()
    finally:
        con.close()
    return [(pd.Timestamp(t).tz_convert("UTC"), s, a, bool(ok)) for t, s, a, ok in rows]


def warehouse_inventory(tmp_path: Path, t0: pd.Timestamp) -> Path:
    """The warehouse ``wh`` of the site :func:`fleet_site` wrote, with the fleet's
    inventory (as `guardian ingest` reads it; customers created at ``t0``), SILVER brought
    up to date on the grid operate recorded (the last cycle's files are merged by the next update)."""
    from guardian_lib.schema import INVENTORY_COLUMNS
    from guardian_lib.silver import update_silver

    wh = tmp_path / "wh"
    subs = pd.read_csv(tmp_path / "subs.csv")
    (wh / "inventory").mkdir(parents=True, exist_ok=True)
    onus = subs.assign(serial=subs["onu_id"], splitter_id=subs["pon_id"], onu_index=0,
                       vendor="v", model="m", distance_m=1000.0, lat=0.0, lon=0.0)  # fmt: skip
    onus[list(INVENTORY_COLUMNS["onus"])].to_parquet(wh / "inventory" / "onus.parquet")
    pons = subs.drop_duplicates("pon_id").assign(slot=1, port=0, if_index=0, technology="gpon")
    pons[list(INVENTORY_COLUMNS["pons"])].to_parquet(wh / "inventory" / "pons.parquet")
    cust = subs.assign(customer_id="C" + subs["onu_id"], plan="p", segment="res",
                       sla_tier="std", region="r", city="c", lat=0.0, lon=0.0, created_at=t0)  # fmt: skip
    cust[list(INVENTORY_COLUMNS["customers"])].to_parquet(wh / "inventory" / "customers.parquet")
    update_silver(wh)
    return wh
