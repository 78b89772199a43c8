"""Agents on a synthetic state source (no simulator), advanced by ``run_with_ticks``."""

from __future__ import annotations

import asyncio
import threading
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd

from acs_emulator.olt.serve import EmulatorCredentials, run_with_ticks, simulated_pool
from guardian_lib.snmp import Inventory, OltEntry, poll_once


class Synthetic:
    """Two FiberHome ONUs whose RX drops 0.5 dB per tick."""

    def __init__(self) -> None:
        ifx = 1 * (1 << 25) + 1 * (1 << 19)
        self.topology = SimpleNamespace(
            olts=pd.DataFrame(
                {"olt_id": ["FH-1"], "vendor": ["fiberhome"], "model": ["AN5516-04"]}
            ),
            pons=pd.DataFrame(
                {
                    "pon_id": ["FH-1/1/0"],
                    "olt_id": ["FH-1"],
                    "slot": [1],
                    "port": [0],
                    "if_index": [ifx],
                }
            ),
            onus=pd.DataFrame(
                {
                    "onu_id": ["FHTT00000001", "FHTT00000002"],
                    "serial": ["FHTT00000001", "FHTT00000002"],
                    "pon_id": ["FH-1/1/0"] * 2,
                    "olt_id": ["FH-1"] * 2,
                    "onu_index": [1, 2],
                    "distance_m": [1200.0, 3400.0],
                }
            ),
        )
        self.tick = 0
        self.state = self._state()

    def _state(self) -> SimpleNamespace:
        return SimpleNamespace(
            ts=pd.Timestamp("2026-01-05", tz="UTC") + pd.Timedelta(minutes=5 * self.tick),
            rx_dbm=np.array([-20.0 - 0.5 * self.tick, np.nan]),
            tx_dbm=np.array([2.5, np.nan]),
            olt_rx_dbm=np.array([-22.0, np.nan]),
            online=np.array([True, False]),
            uptime_s=np.array([300 * self.tick, 0], dtype=np.int64),
            down_cause=np.array([0, 1], dtype=np.int8),
        )

    def step(self) -> None:
        self.tick += 1
        self.state = self._state()


def test_synthetic_source_ticks_through_the_agent():
    src = Synthetic()
    creds = EmulatorCredentials()
    lock = threading.Lock()
    pool = simulated_pool(src, creds, lock=lock)
    up = threading.Event()
    thread = threading.Thread(
        target=lambda: asyncio.run(
            run_with_ticks(pool, src.step, 0.2, lock, ready=lambda _: up.set())
        ),
        daemon=True,
    )
    thread.start()
    try:
        assert up.wait(10)
        inv = Inventory(
            olts=[
                OltEntry(olt_id="FH-1", host="127.0.0.1", port=pool.ports["FH-1"], credentials="e")
            ]
        )
        env = {"GUARDIAN_SNMP_E_COMMUNITY": creds.community}
        first = poll_once(inv, environ=env).results[0]
        assert first.profile == "fiberhome_an5516" and first.complete
        t = first.telemetry.set_index("onu_id")
        assert t.at["FHTT00000001", "snmp_index"] == str((1 << 25) + (1 << 19) + 256)
        assert np.isnan(t.at["FHTT00000002", "rx_dbm"])  # offline: sentinel → NaN
        assert not t.at["FHTT00000002", "online"]
        rx0 = t.at["FHTT00000001", "rx_dbm"]
        ticks = (-20.0 - rx0) / 0.5  # the value of some tick, to the 0.01 dB resolution
        assert ticks >= 0 and abs(ticks - round(ticks)) < 0.02
        later = rx0
        for _ in range(50):  # bounded: ≤ ~5 s
            time.sleep(0.1)
            r = poll_once(inv, environ=env).results[0]
            later = r.telemetry.set_index("onu_id").at["FHTT00000001", "rx_dbm"]
            if later < rx0:
                break
        assert later < rx0  # the agent follows the source as it ticks
    finally:
        pool.stop()
        thread.join(10)
