"""The API tests' world: a tiny two-region warehouse, operate's state store and helpers.

Shared by the API test modules (``tests/guardian_lib/test_api*.py``, the security audits):
one way to build the run the API serves and to call it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd

from guardian_lib.layout import RunLayout
from guardian_lib.operate.state import StateStore

__all__ = ["REGIONS", "T0", "make_warehouse", "propose", "clear_pending", "auth", "api_client"]

REGIONS = ("north", "south")
T0 = pd.Timestamp("2026-12-04T06:00:00Z")


def make_warehouse(run: Path) -> None:
    """Two regions, one OLT / PON each, three ONUs and customers, predictions and events."""
    lay = RunLayout(run)
    run.mkdir(parents=True, exist_ok=True)
    olts = pd.DataFrame({"olt_id": ["OLT-N", "OLT-S"], "vendor": "huawei", "model": "MA5800",
                         "region": list(REGIONS), "city": ["Natal", "Pelotas"],
                         "pop_id": ["P1", "P2"], "lat": [-5.8, -31.7], "lon": [-35.2, -52.3],
                         "mgmt_address": ["10.0.0.1", "10.0.0.2"]})  # fmt: skip
    pons = pd.DataFrame({"pon_id": ["PON-N1", "PON-S1"], "olt_id": ["OLT-N", "OLT-S"],
                         "slot": 1, "port": [1, 2], "if_index": [101, 102],
                         "technology": "gpon"})  # fmt: skip
    onus = pd.DataFrame({"onu_id": ["ONU-N1", "ONU-N2", "ONU-S1"],
                         "serial": ["HWTC01", "HWTC02", "HWTC03"],
                         "pon_id": ["PON-N1", "PON-N1", "PON-S1"], "splitter_id": "SP",
                         "onu_index": [1, 2, 1], "vendor": "huawei", "model": "HG8245",
                         "distance_m": [1200.0, 800.0, 3000.0], "lat": 0.0, "lon": 0.0})  # fmt: skip
    customers = pd.DataFrame({"customer_id": ["C-N1", "C-N2", "C-S1"],
                              "onu_id": ["ONU-N1", "ONU-N2", "ONU-S1"],
                              "cpe_id": ["CPE-N1", "CPE-N2", "CPE-S1"], "plan": "500M",
                              "segment": ["residential", "business", "residential"],
                              "sla_tier": "std", "region": ["north", "north", "south"],
                              "city": ["Natal", "Natal", "Pelotas"], "lat": 0.0, "lon": 0.0,
                              "created_at": T0})  # fmt: skip
    con = duckdb.connect(str(lay.warehouse))
    for name, frame in {"olts": olts, "pons": pons, "onus": onus, "customers": customers}.items():
        con.register("f", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM f")
        con.unregister("f")
    con.close()
    lay.predictions.mkdir(parents=True)
    rows = []
    for i, (onu, r24) in enumerate((("ONU-N1", 0.9), ("ONU-N2", 0.3), ("ONU-S1", 0.7))):
        # an older prediction with a different risk: only the newest may be served
        rows.append((T0 - pd.Timedelta("15min"), onu, 0.05, 0.5, 0.1, 0.2, "v1", "[]"))
        rows.append((T0, onu, r24 / 3, r24 / 2, r24, 0.1 * i, "v1", '["rx_dbm low"]'))
    pd.DataFrame(rows, columns=["ts", "onu_id", "risk_2h", "risk_6h", "risk_24h",
                                "anomaly_score", "model_version", "top_reasons"]
                 ).to_parquet(lay.predictions / "part-0.parquet")  # fmt: skip
    ev = lay.silver("events")
    ev.mkdir(parents=True)
    pd.DataFrame({"ts": [T0 - pd.Timedelta("1h"), T0, T0],
                  "entity_id": ["ONU-N1", "C-N1", "ONU-S1"],
                  "entity_type": ["onu", "customer", "onu"],
                  "type": ["LOW_RX", "CUSTOMER_CALL", "LOS"], "severity": "minor",
                  "source": "sim", "payload": "{}"}).to_parquet(ev / "data.parquet")  # fmt: skip


def propose(state: Path, onu: str, pon: str, action: str = "reboot") -> int:
    store = StateStore(state)
    try:
        return store.propose(ts=str(T0), action=action, subject=onu, target=onu, pon_id=pon,
                             params={}, rationale={"rule": "low_rx"})  # fmt: skip
    finally:
        store.close()


def clear_pending(state: Path, onu: str) -> None:
    """Reject what earlier tests left pending for ``onu`` (execute refuses duplicates)."""
    store = StateStore(state)
    for a in store.approvals("pending"):
        if a["target"] == onu:
            store.decide(a["id"], "rejected", by="test")
    store.close()


def auth(token: str) -> dict[str, str]:
    """The bearer-token header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


def api_client(root: Path, accounts, **config):
    """A TestClient of an API over a fresh :func:`make_warehouse` run under ``root``.

    Parameters
    ----------
    root : Path
        Folder of the run (``run/``), operate's state (``state/``) and ``users.json``.
    accounts : iterable of (name, role, regions)
        Users to create, each with a token.
    **config
        More :class:`~guardian_lib.api.app.ApiConfig` fields.

    Returns
    -------
    dict
        ``client``, ``app``, ``tokens`` (name → token), ``users``, ``run``, ``state``.
    """
    from fastapi.testclient import TestClient

    from guardian_lib.api.app import ApiConfig, create_app
    from guardian_lib.api.users import UserStore

    run, state = root / "run", root / "state"
    make_warehouse(run)
    StateStore(state).close()
    users = UserStore(root / "users.json")
    tokens = {}
    for name, role, regions in accounts:
        users.add(name, role, regions)
        tokens[name] = users.issue_token(name)[0]
    app = create_app(ApiConfig(run=run, users=root / "users.json", state=state, **config), users)
    return {"client": TestClient(app), "app": app, "tokens": tokens, "users": users,
            "run": run, "state": state}  # fmt: skip
