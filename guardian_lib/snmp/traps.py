"""SNMP trap receiver (v2c and v3): OLT alarms become RAW events within milliseconds.

OLTs send a trap the moment an ONU loses light (LOS), loses power (dying gasp), comes
back, or a PON port goes down — while a poll sees it only at the next cycle. The
:class:`TrapReceiver` listens on a UDP port, accepts

* SNMPv2c traps whose community matches (decoded by the small BER codec of
  :mod:`guardian_lib.snmp.ber`, ~20× cheaper than pysnmp), and
* SNMPv3 traps of the configured USM users (authPriv; decoded and authenticated by
  pysnmp's notification receiver; a wrong key or unknown user is dropped and counted),

and maps each one, through the trap profiles (YAML in ``guardian_lib/snmp/trap_profiles``:
notification OID → event type, severity, which varbind carries the ONU serial or the
port's ifIndex), to a row of the RAW events schema (``source`` = ``snmp-trap``). Rows
are kept in a bounded queue (:meth:`TrapReceiver.drain`) and handed to an optional
``on_event`` callback — ``guardian operate`` uses it to start a cycle at once.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import ValidationError
from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config, engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import rfc1902

from guardian_lib._threaded import ThreadedServer
from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.safe_yaml import StrictModel, load_yaml
from guardian_lib.snmp.ber import BerError, decode_message
from guardian_lib.snmp.encodings import decode_serial
from guardian_lib.snmp.rows import EVENTS_SCHEMA
from guardian_lib.snmp.transport import MIN_V3_KEY_LENGTH, GuardedUdpTransport

__all__ = [
    "TRAP_SOURCE",
    "SNMP_TRAP_OID",
    "TrapRule",
    "TrapProfile",
    "TrapUser",
    "TrapReceiver",
    "load_trap_profiles",
    "events_frame",
]

TRAP_SOURCE = "snmp-trap"
#: snmpTrapOID.0: the varbind naming the notification. [-]
SNMP_TRAP_OID = (1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0)
_TRAPV2 = 0xA7
_SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
_AUTH = {"SHA": config.USM_AUTH_HMAC96_SHA, "MD5": config.USM_AUTH_HMAC96_MD5}
_PRIV = {"AES": config.USM_PRIV_CFB128_AES, "DES": config.USM_PRIV_CBC56_DES}


def _oid(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.strip(".").split("."))


_Strict = StrictModel  # unknown keys refused (guardian_lib.safe_yaml)


class TrapRule(_Strict):
    """One notification: its OID and the event it becomes."""

    trap_oid: str
    type: str
    severity: Literal["info", "minor", "major", "critical", "clear"]
    entity: Literal["onu", "pon", "olt"]
    alarm: str | None = None


class TrapProfile(_Strict):
    """A vendor's notifications and where their varbinds carry the ONU or the port."""

    name: str
    vendor: str
    serial_oid: str | None = None
    serial_encoding: Literal["string", "gpon_octets", "hex_string"] = "string"
    if_index_oid: str = "1.3.6.1.2.1.2.2.1.1"
    traps: list[TrapRule]


def load_trap_profiles(extra_dirs: list[str | Path] | None = None) -> list[TrapProfile]:
    """Shipped trap profiles, then those of ``extra_dirs``.

    Raises
    ------
    ConfigError
        Naming the file and the field.
    """
    out = []
    for d in [Path(__file__).parent / "trap_profiles", *(extra_dirs or [])]:
        for p in sorted(Path(d).glob("*.yaml")):
            try:
                out.append(TrapProfile.model_validate(load_yaml(p)))
            except ValidationError as exc:
                raise ConfigError(validation_message(p, exc, "invalid trap profile")) from None
    return out


@dataclass(frozen=True)
class TrapUser:
    """An SNMPv3 user allowed to send traps, bound to the sender's engine id.

    Attributes
    ----------
    user : str
    auth_key, priv_key : str
        Pass-phrases (never printed).
    engine_id : str
        The sending OLT's snmpEngineID, hex (traps are unacknowledged, so the receiver
        must know each sender's engine id to localize the keys).
    auth_protocol, priv_protocol : str
    """

    user: str
    auth_key: str = field(repr=False)
    priv_key: str = field(repr=False)
    engine_id: str = ""
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"

    def __post_init__(self) -> None:
        for what, key in (("auth", self.auth_key), ("priv", self.priv_key)):
            if len(key) < MIN_V3_KEY_LENGTH:
                raise ValueError(f"trap user {self.user!r}: {what} key shorter than 8 characters")
        bytes.fromhex(self.engine_id)


def events_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Trap events as a frame in the RAW events schema (ts, entity_id, … received_at)."""
    frame = pd.DataFrame(rows, columns=EVENTS_SCHEMA.names)
    for c in ("ts", "received_at"):
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[us, UTC]")
    return frame


class _Rules:
    """Notification OID → (profile, rule), and the varbind prefixes to look at."""

    def __init__(self, profiles: list[TrapProfile]) -> None:
        self.by_oid: dict[tuple[int, ...], tuple[TrapProfile, TrapRule]] = {}
        for prof in profiles:
            for rule in prof.traps:
                self.by_oid[_oid(rule.trap_oid)] = (prof, rule)

    def event(self, olt_id: str, varbinds: list[tuple[tuple[int, ...], Any]]) -> dict | None:
        trap_oid = next((v for o, v in varbinds if o == SNMP_TRAP_OID), None)
        if trap_oid is None:
            return None
        hit = self.by_oid.get(_oid(str(trap_oid)))
        if hit is None:
            return None
        prof, rule = hit
        payload: dict[str, Any] = {"olt_id": olt_id, "trap_oid": rule.trap_oid}
        if rule.alarm:
            payload["alarm"] = rule.alarm
        entity = olt_id
        if rule.entity == "onu" and prof.serial_oid:
            prefix = _oid(prof.serial_oid)
            for o, v in varbinds:
                if o[: len(prefix)] == prefix:
                    serial = decode_serial(v, prof.serial_encoding)
                    if serial:
                        entity = serial
                        payload["snmp_index"] = ".".join(map(str, o[len(prefix) :]))
                    break
            if entity == olt_id:
                return None  # an ONU alarm that names no ONU: nothing to attach it to
        elif rule.entity == "pon":
            prefix = _oid(prof.if_index_oid)
            for o, v in varbinds:
                if o[: len(prefix)] == prefix and len(o) == len(prefix) + 1:
                    payload["if_index"] = int(v)
                    entity = f"{olt_id}:{int(v)}"
                    break
        now = pd.Timestamp.now(tz="UTC")
        return {
            "ts": now, "entity_id": entity, "entity_type": rule.entity, "type": rule.type,
            "severity": rule.severity, "source": TRAP_SOURCE,
            "payload": json.dumps(payload, sort_keys=True), "received_at": now,
        }  # fmt: skip


class _TrapTransport(GuardedUdpTransport):
    """v2c traps answered here; SNMPv3 (and anything else) handed to pysnmp."""

    def __init__(self, receiver: TrapReceiver, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rx = receiver

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:  # noqa: N803
        rx = self._rx
        try:
            msg = decode_message(datagram)
        except BerError:  # SNMPv3 or garbage: pysnmp decides (and counts what it drops)
            rx.stats["v3_received"] += 1
            return super().datagram_received(datagram, transportAddress)
        rx.stats["v2c_received"] += 1
        if msg.pdu_type != _TRAPV2:
            rx.stats["ignored"] += 1
            return None
        if rx.community is None or msg.community != rx.community:
            rx.stats["v2c_bad_community"] += 1
            return None
        binds = [(o, v[1]) for o, v in msg.varbinds]
        rx.accept(transportAddress[0], binds)
        return None


class TrapReceiver(ThreadedServer):
    """Listen for OLT traps on ``host:port`` and turn them into events.

    Parameters
    ----------
    host : str
    port : int
        UDP port; 0 picks a free one (read :attr:`port` after :meth:`start`).
    community : str, optional
        v2c community accepted (None: no v2c).
    users : list of TrapUser
        v3 users accepted.
    sources : dict, optional
        Sender IP address → OLT id (unknown senders are named by their address).
    profiles : list of TrapProfile, optional
        Default: the shipped trap profiles.
    on_event : callable, optional
        Called with each event row (dict in the RAW events schema), in the receiver's
        event-loop thread; keep it short (e.g. set a ``threading.Event``).
    max_queue : int
        Events kept until :meth:`drain`; the oldest are dropped beyond (counted). [-]

    Attributes
    ----------
    stats : dict of int
        ``v2c_received``, ``v2c_bad_community``, ``v3_received``, ``accepted``,
        ``unmatched`` (no rule), ``dropped`` (queue full), ``ignored``. ``v3_received −
        v3_accepted`` are v3 datagrams pysnmp refused (wrong key, unknown user).
    """

    _thread_name = "snmp-traps"
    _server_label = "trap receiver"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        community: str | None = None,
        users: list[TrapUser] | None = None,
        sources: dict[str, str] | None = None,
        profiles: list[TrapProfile] | None = None,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        max_queue: int = 100_000,
    ) -> None:
        self.host = host
        self.port = port
        self.community = community.encode() if community is not None else None
        self.users = list(users or [])
        self.sources = dict(sources or {})
        self.rules = _Rules(profiles if profiles is not None else load_trap_profiles())
        self.on_event = on_event
        self.queue: deque[dict[str, Any]] = deque(maxlen=max_queue)
        self.stats = dict.fromkeys(
            ("v2c_received", "v2c_bad_community", "v3_received", "v3_accepted", "accepted",
             "unmatched", "dropped", "ignored"), 0,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._engine: Any = None

    def accept(self, address: str, varbinds: list[tuple[tuple[int, ...], Any]]) -> None:
        """Map one trap's varbinds to an event and queue it (called per trap).

        The OLT is the one whose address sent it (``sources``); a ``sysName.0`` varbind,
        when the trap carries one, names it instead (OLTs behind one address, NAT).
        """
        olt_id = self.sources.get(address, address)
        for oid, val in varbinds:
            if oid == _SYS_NAME and isinstance(val, bytes | str) and val:
                text = val.decode("utf-8", "replace") if isinstance(val, bytes) else val
                olt_id = text[:128]
                break
        event = self.rules.event(olt_id, varbinds)
        if event is None:
            self.stats["unmatched"] += 1
            return
        with self._lock:
            if len(self.queue) == self.queue.maxlen:
                self.stats["dropped"] += 1
            self.queue.append(event)
        self.stats["accepted"] += 1
        if self.on_event is not None:
            self.on_event(event)

    def drain(self) -> list[dict[str, Any]]:
        """Events received since the last call, oldest first (thread-safe)."""
        with self._lock:
            out = list(self.queue)
            self.queue.clear()
        return out

    def _v3_callback(self, snmp_engine, state_ref, ctx_engine, ctx_name, varbinds, cb_ctx):
        _, address = snmp_engine.message_dispatcher.get_transport_info(state_ref)
        binds = []
        for name, val in varbinds:
            oid = tuple(name)
            if isinstance(val, rfc1902.ObjectIdentifier):
                v: Any = str(val)
            elif isinstance(val, rfc1902.OctetString):
                v = bytes(val.asOctets())
            else:
                try:
                    v = int(val)
                except (TypeError, ValueError):
                    v = str(val)
            binds.append((oid, v))
        self.stats["v3_accepted"] += 1
        self.accept(address[0], binds)

    async def start(self) -> TrapReceiver:
        """Bind the UDP port on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        eng = engine.SnmpEngine()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config.add_transport(eng, udp.DOMAIN_NAME, _TrapTransport(self).open_server_mode(sock=sock))
        for u in self.users:
            config.add_v3_user(
                eng, u.user, _AUTH[u.auth_protocol.upper()], u.auth_key,
                _PRIV[u.priv_protocol.upper()], u.priv_key,
                securityEngineId=rfc1902.OctetString(hexValue=u.engine_id),
            )  # fmt: skip
        ntfrcv.NotificationReceiver(eng, self._v3_callback)
        self._engine = eng
        await asyncio.sleep(0)
        return self

    def close(self) -> None:
        """Close the UDP port."""
        if self._engine is not None:
            self._engine.close_dispatcher()
            self._engine = None

    async def _shutdown(self) -> None:
        """Release the ports (end of :meth:`serve`)."""
        self.close()
