"""The emulated OLTs send SNMP traps (v2c or v3) when their ONUs or PON ports change.

:class:`OltTrapSender` is a tick sink of the simulation: after each tick it compares
every emulated OLT's ONUs with the previous tick and sends, to one trap destination,

* an ONU LOS, dying-gasp or ONU-up notification per ONU that went down or came back
  (administrative shutdowns send none: the operator did it), the ONU's serial in the
  varbind the vendor's table uses, and
* IF-MIB ``linkDown`` / ``linkUp`` for a PON port an operator shut or opened.

The notification OIDs are written here independently of the library's trap profiles,
so that the receiver's decoding is tested against a separate encoding. v2c traps are
encoded with the small BER codec; v3 traps (authPriv SHA/AES) go through pysnmp, from
an engine per OLT whose id the receiver must know (:meth:`OltTrapSender.engine_id`).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import socket
import threading
import time
from typing import Any

import numpy as np

from acs_emulator.olt.agent import V3User
from guardian_lib.snmp.ber import Message, encode_message

__all__ = ["OltTrapSender", "TRAP_OIDS", "SERIAL_COLUMNS"]

_SYSUPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
_SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
_IF_INDEX = (1, 3, 6, 1, 2, 1, 2, 2, 1, 1)
_LINK_DOWN, _LINK_UP = (1, 3, 6, 1, 6, 3, 1, 1, 5, 3), (1, 3, 6, 1, 6, 3, 1, 1, 5, 4)
#: vendor → (LOS, dying gasp, ONU up) notification OIDs.
TRAP_OIDS: dict[str, tuple[tuple[int, ...], ...]] = {
    "huawei": tuple((1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2, 0, k) for k in (1, 2, 3)),
    "zte": tuple((1, 3, 6, 1, 4, 1, 3902, 1082, 500, 10, 2, 0, k) for k in (1, 2, 3)),
    "fiberhome": tuple((1, 3, 6, 1, 4, 1, 5875, 800, 3, 0, k) for k in (1, 2, 3)),
}
#: vendor → (serial column OID, serial as GPON octets?) of the varbind naming the ONU.
SERIAL_COLUMNS: dict[str, tuple[tuple[int, ...], bool]] = {
    "huawei": ((1, 3, 6, 1, 4, 1, 2011, 6, 128, 1, 1, 2, 43, 1, 3), True),
    "zte": ((1, 3, 6, 1, 4, 1, 3902, 1082, 500, 10, 2, 3, 3, 1, 18), False),
    "fiberhome": ((1, 3, 6, 1, 4, 1, 5875, 800, 3, 10, 1, 1, 10), False),
}


def _serial_value(serial: str, octets: bool) -> bytes:
    return serial[:4].encode() + bytes.fromhex(serial[4:12]) if octets else serial.encode()


class OltTrapSender:
    """Send the simulated OLTs' alarms as SNMP traps (see the module docstring).

    Parameters
    ----------
    sim : simulator.engine.Simulation
        Registers itself in ``sim.sinks``.
    target : (str, int)
        Trap destination (host, UDP port).
    community : str, optional
        v2c community (used when ``v3_user`` is None).
    v3_user : V3User, optional
        Send SNMPv3 authPriv traps as this user.
    olt_ids : list of str, optional
        OLTs that send (all by default).
    source_host : str
        Address the traps leave from (the receiver maps it to the OLT). [-]

    Attributes
    ----------
    sent : int
        Traps sent. [-]
    sent_at : list of float
        ``time.perf_counter()`` of each send (latency measurements). [s]
    """

    def __init__(
        self,
        sim: Any,
        target: tuple[str, int],
        *,
        community: str | None = None,
        v3_user: V3User | None = None,
        olt_ids: list[str] | None = None,
        source_host: str = "127.0.0.1",
    ) -> None:
        if community is None and v3_user is None:
            raise ValueError("OltTrapSender: give a v2c community or a v3 user")
        self.sim = sim
        self.target = target
        self.community = community.encode() if community is not None else None
        self.v3_user = v3_user
        topo = sim.topology
        olts = topo.olts.set_index("olt_id")
        self.olt_ids = olt_ids or [str(o) for o in topo.olts["olt_id"]]
        onus = topo.onus
        mask = onus["olt_id"].isin(self.olt_ids).to_numpy()
        self.rows = np.flatnonzero(mask)
        self.vendor_of = {o: str(olts.loc[o, "vendor"]) for o in self.olt_ids}
        pons = topo.pons.set_index("pon_id")
        self.if_index = {str(p): int(pons.loc[p, "if_index"]) for p in pons.index}
        self.pon_olt = {str(p): str(pons.loc[p, "olt_id"]) for p in pons.index}
        state = getattr(sim, "state", None)
        self._prev_online: np.ndarray | None = (
            None if state is None else np.asarray(state.online, dtype=bool).copy()
        )
        self._prev_disabled: set[str] = set(sim.admin.disabled_pons)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((source_host, 0))
        self._ids = itertools.count(1)
        self._started = time.monotonic()
        self.sent = 0
        self.sent_at: list[float] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._engines: dict[str, Any] = {}
        sim.sinks.append(self)

    @staticmethod
    def engine_id(olt_id: str) -> str:
        """snmpEngineID (hex) the OLT's v3 traps come from."""
        return "80001f8804" + hashlib.sha1(olt_id.encode()).hexdigest()[:16].encode().hex()

    def on_tick(self, sim: Any, state: Any, events: list) -> None:
        """Tick sink: send the traps of what changed since the previous tick."""
        online = np.asarray(state.online, dtype=bool)
        if self._prev_online is not None:
            prev = self._prev_online[self.rows]
            cur = online[self.rows]
            cause = np.asarray(state.down_cause)[self.rows]
            down = prev & ~cur
            onus = sim.topology.onus
            for kind, rows in (
                (0, self.rows[down & (cause == 1)]),
                (1, self.rows[down & (cause == 2)]),
                (2, self.rows[~prev & cur]),
            ):
                for row in rows.tolist():
                    self.send_onu_trap(str(onus["olt_id"].iat[row]), row, kind)
        disabled = set(sim.admin.disabled_pons)
        for pon in sorted(disabled ^ self._prev_disabled):
            if self.pon_olt.get(pon) in self.vendor_of:
                self.send_port_trap(pon, up=pon not in disabled)
        self._prev_disabled = disabled
        self._prev_online = online.copy()

    def send_onu_trap(self, olt_id: str, row: int, kind: int) -> None:
        """One ONU notification: ``kind`` 0 LOS, 1 dying gasp, 2 ONU up."""
        vendor = self.vendor_of[olt_id]
        onus = self.sim.topology.onus
        serial = str(onus["serial"].iat[row])
        col, octets = SERIAL_COLUMNS[vendor]
        ifx = self.if_index[str(onus["pon_id"].iat[row])]
        index = (ifx, int(onus["onu_index"].iat[row]))
        binds = [(col + index, (4, _serial_value(serial, octets)))]
        self._send(olt_id, TRAP_OIDS[vendor][kind], binds)

    def send_port_trap(self, pon_id: str, up: bool) -> None:
        """IF-MIB linkUp / linkDown for one PON port."""
        ifx = self.if_index[pon_id]
        self._send(self.pon_olt[pon_id], _LINK_UP if up else _LINK_DOWN,
                   [(_IF_INDEX + (ifx,), (2, ifx))])  # fmt: skip

    def _send(self, olt_id: str, trap_oid: tuple[int, ...], binds: list) -> None:
        ticks = int((time.monotonic() - self._started) * 100) & 0xFFFFFFFF
        # sysName.0 names the OLT: the emulated OLTs all send from one loopback address
        name = (_SYS_NAME, (4, olt_id.encode()))
        full = [(_SYSUPTIME, (67, ticks)), (_TRAP_OID, (6, trap_oid)), *binds, name]
        self.sent_at.append(time.perf_counter())
        self.sent += 1
        if self.v3_user is None:
            assert self.community is not None
            msg = Message(1, self.community, 0xA7, next(self._ids) & 0x7FFFFFFF, 0, 0, full)
            self._sock.sendto(encode_message(msg), self.target)
            return
        loop = self._v3_loop()
        fut = asyncio.run_coroutine_threadsafe(self._send_v3(olt_id, full[1:]), loop)
        fut.result(timeout=10)

    def _v3_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="olt-traps-v3", daemon=True).start()
            self._loop = loop
        return self._loop

    async def _send_v3(self, olt_id: str, binds: list) -> None:
        from pysnmp.hlapi.v3arch.asyncio import (
            ContextData,
            NotificationType,
            ObjectIdentity,
            SnmpEngine,
            UdpTransportTarget,
            UsmUserData,
            send_notification,
            usmAesCfb128Protocol,
            usmHMACSHAAuthProtocol,
        )
        from pysnmp.proto import rfc1902

        eng = self._engines.get(olt_id)
        if eng is None:
            eid = rfc1902.OctetString(hexValue=self.engine_id(olt_id))
            eng = self._engines[olt_id] = SnmpEngine(snmpEngineID=eid)
        u = self.v3_user
        assert u is not None
        auth = UsmUserData(u.user, u.auth_key, u.priv_key, authProtocol=usmHMACSHAAuthProtocol,
                           privProtocol=usmAesCfb128Protocol)  # fmt: skip
        trap_oid = binds[0][1][1]
        extra = []
        for oid, (tag, val) in binds[1:]:
            if tag == 4:
                v: Any = rfc1902.OctetString(val)
            else:  # Huawei PON ifIndex values exceed Integer32: sent as unsigned
                v = rfc1902.Integer32(val) if val < 2**31 else rfc1902.Unsigned32(val)
            extra.append((rfc1902.ObjectName(oid), v))
        ntf = NotificationType(ObjectIdentity(rfc1902.ObjectName(trap_oid))).add_varbinds(*extra)
        target = await UdpTransportTarget.create(self.target, timeout=1, retries=0)
        err, *_ = await send_notification(eng, auth, target, ContextData(), "trap", ntf,
                                          lookupMib=False)  # fmt: skip
        if err:
            raise RuntimeError(f"OLT {olt_id}: v3 trap not sent: {err}")

    def close(self) -> None:
        """Stop sending (closes the socket and the v3 loop)."""
        if self in self.sim.sinks:
            self.sim.sinks.remove(self)
        self._sock.close()
        if self._loop is not None:

            async def shut() -> None:
                for eng in self._engines.values():
                    eng.close_dispatcher()
                await asyncio.sleep(0)

            asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop = None
