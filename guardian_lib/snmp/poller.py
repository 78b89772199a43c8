"""Poll OLTs over SNMP into ``telemetry_raw`` / ``events_raw`` rows.

:func:`poll_inventory` polls every OLT of an inventory concurrently (bounded by
``max_concurrent_olts``; each OLT gets at most ``max_inflight_per_olt`` requests in flight),
picks each OLT's vendor profile from its ``sysObjectID`` / ``sysDescr`` unless the
inventory names one, walks the profile's ONU table columns with GETBULK, and decodes them
with the pure functions of :mod:`guardian_lib.snmp.rows`. SNMPv2c goes through the small
BER codec of :mod:`guardian_lib.snmp.fast` by default (``backend: pysnmp`` forces pysnmp),
SNMPv3 through pysnmp. Rows keep ``olt_id``, the raw ``snmp_index`` and the ``serial`` so
any value can be traced back to the OLT's answer. An OLT that stops answering midway keeps
what arrived (``poll_complete = False``) and gets an ``OLT_ALARM`` event naming the error;
nothing is dropped silently.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

from guardian_lib.errors import WarehouseError
from guardian_lib.layout import RunLayout
from guardian_lib.snmp.errors import SnmpError, SnmpProfileError
from guardian_lib.snmp.fast import FastV2cSession
from guardian_lib.snmp.inventory import Inventory, OltEntry, resolve_credentials
from guardian_lib.snmp.profiles import Profile, load_profiles, select_profile
from guardian_lib.snmp.rows import (
    EVENTS_SCHEMA,
    SOURCE,
    TELEMETRY_SCHEMA,
    decode_walk,
    derive_events,
    empty_frame,
    olt_alarm,
)
from guardian_lib.snmp.transport import Oid, SnmpCredentials, SnmpSession, new_engine

__all__ = [
    "TELEMETRY_SCHEMA",
    "EVENTS_SCHEMA",
    "SOURCE",
    "OltPollResult",
    "PollReport",
    "decode_walk",
    "derive_events",
    "poll_olt",
    "poll_inventory",
    "poll_once",
    "append_raw_events",
    "write_parquet",
    "write_to_warehouse",
]

SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"


@dataclass
class OltPollResult:
    """One OLT's poll.

    Attributes
    ----------
    olt_id : str
    profile : str or None
        Profile used (None if the OLT could not be identified).
    telemetry, events : pandas.DataFrame
        Rows in :data:`TELEMETRY_SCHEMA` / :data:`EVENTS_SCHEMA` columns.
    complete : bool
        Every column walked to its end.
    error : str or None
        Why the poll is incomplete.
    requests : int
        SNMP requests sent. [-]
    varbinds : int
        Table values received. [-]
    duration_s : float
        Wall time of the poll. [s]
    """

    olt_id: str
    profile: str | None
    telemetry: pd.DataFrame
    events: pd.DataFrame
    complete: bool
    error: str | None = None
    requests: int = 0
    varbinds: int = 0
    duration_s: float = 0.0


@dataclass
class PollReport:
    """A poll cycle over an inventory."""

    results: list[OltPollResult] = field(default_factory=list)

    @property
    def telemetry(self) -> pd.DataFrame:
        """Every OLT's telemetry rows."""
        frames = [r.telemetry for r in self.results if len(r.telemetry)]
        return pd.concat(frames, ignore_index=True) if frames else empty_frame(TELEMETRY_SCHEMA)

    @property
    def events(self) -> pd.DataFrame:
        """Every OLT's events."""
        frames = [r.events for r in self.results if len(r.events)]
        return pd.concat(frames, ignore_index=True) if frames else empty_frame(EVENTS_SCHEMA)

    @property
    def failed(self) -> list[OltPollResult]:
        """OLTs whose poll is incomplete."""
        return [r for r in self.results if not r.complete]

    def online_by_onu(self) -> dict[str, bool]:
        """ONU id → online, for :func:`derive_events` of the next cycle."""
        t = self.telemetry
        return {
            str(k): bool(v) for k, v in zip(t["onu_id"], t["online"], strict=True) if v is not pd.NA
        }


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC").floor("us")


def _open_session(
    engine: SnmpEngine,
    entry: OltEntry,
    credentials: SnmpCredentials,
    timeout_s: float,
    retries: int,
    backend: str,
) -> SnmpSession | FastV2cSession:
    """The built-in v2c codec for ``auto`` / ``fast`` v2c, else a pysnmp session."""
    if credentials.version == "2c" and backend in ("auto", "fast"):
        return FastV2cSession(entry.olt_id, entry.host, entry.port, credentials, timeout_s, retries)
    return SnmpSession(
        engine, entry.olt_id, entry.host, entry.port, credentials, timeout_s, retries
    )


async def _profile_for(
    session: SnmpSession | FastV2cSession, entry: OltEntry, profiles: Mapping[str, Profile]
) -> Profile:
    """The inventory's profile of the OLT, else the one its sysObjectID / sysDescr match."""
    if entry.profile:
        if entry.profile not in profiles:
            raise SnmpProfileError(
                f"OLT {entry.olt_id}: profile {entry.profile!r} named in the inventory "
                f"does not exist; expected one of {sorted(profiles)}"
            )
        return profiles[entry.profile]
    ident = await session.get([SYS_OBJECT_ID, SYS_DESCR])
    descr = ident.get(SYS_DESCR)
    descr = descr.decode("utf-8", "replace") if isinstance(descr, bytes) else descr
    return select_profile(dict(profiles), ident.get(SYS_OBJECT_ID), descr, olt_id=entry.olt_id)


async def _walk_profile(
    session: SnmpSession | FastV2cSession,
    profile: Profile,
    rows: dict[str, list[tuple[Oid, Any]]],
    max_inflight: int,
    max_repetitions: int | None,
) -> str | None:
    """Walk the profile's columns into ``rows`` with ``max_inflight`` concurrent walks.

    Returns the first SNMP error as text (``None`` when every walk finished); any other
    exception propagates.
    """
    columns = list(dict.fromkeys(c.oid for _, c in profile.columns.items()))
    groups = [columns[i::max_inflight] for i in range(min(max_inflight, len(columns)))]
    reps = max_repetitions or profile.max_repetitions
    outcomes = await asyncio.gather(
        *[session.walk_columns(g, reps, rows=rows) for g in groups], return_exceptions=True
    )
    errs = [o for o in outcomes if isinstance(o, BaseException)]
    for e in errs:
        if not isinstance(e, SnmpError):
            raise e
    return str(errs[0]) if errs else None


async def poll_olt(
    engine: SnmpEngine,
    entry: OltEntry,
    credentials: SnmpCredentials,
    profiles: Mapping[str, Profile],
    *,
    timeout_s: float = 2.0,
    retries: int = 2,
    max_inflight: int = 2,
    max_repetitions: int | None = None,
    previous_online: Mapping[str, bool] | None = None,
    backend: str = "auto",
) -> OltPollResult:
    """Poll one OLT (identify, walk the profile's columns, decode).

    Parameters
    ----------
    engine : SnmpEngine
        Shared by every OLT polled on this event loop.
    entry : OltEntry
    credentials : SnmpCredentials
    profiles : mapping
        Name → profile.
    timeout_s : float
        Per request. [s]
    retries : int
        [-]
    max_inflight : int
        Concurrent GETBULK walks to this OLT (the columns are split among them). [-]
    max_repetitions : int, optional
        Overrides the profile's. [-]
    previous_online : mapping, optional
        For status-change events.
    backend : {'auto', 'fast', 'pysnmp'}
        ``auto``: the built-in BER codec for v2c (:mod:`guardian_lib.snmp.fast`), pysnmp
        for v3. The entry's ``backend`` wins.

    Returns
    -------
    result : OltPollResult
        Never raises for SNMP failures: they are in ``error`` with ``complete=False``.
    """
    t0 = time.perf_counter()
    ts = _now()
    timeout_s = entry.timeout_s or timeout_s
    retries = entry.retries if entry.retries is not None else retries
    backend = entry.backend or backend
    session = _open_session(engine, entry, credentials, timeout_s, retries, backend)
    profile: Profile | None = None
    rows: dict[str, list[tuple[Oid, Any]]] = {}
    error: str | None = None
    try:
        profile = await _profile_for(session, entry, profiles)
        error = await _walk_profile(session, profile, rows, max_inflight, max_repetitions)
    except SnmpError as exc:
        error = str(exc)
    finally:
        if isinstance(session, FastV2cSession):
            session.close()
    received = _now()
    complete = error is None
    if profile is None:
        telemetry, causes = empty_frame(TELEMETRY_SCHEMA), {}
    else:
        telemetry, causes = decode_walk(
            profile, rows, olt_id=entry.olt_id, ts=ts, received_at=received, complete=complete
        )
    events = derive_events(
        telemetry, causes, previous_online, profile=profile.name if profile else ""
    )
    if error is not None:
        alarm = olt_alarm(entry.olt_id, ts, _now(), error, profile.name if profile else None)
        events = pd.concat([events, alarm], ignore_index=True) if len(events) else alarm
    return OltPollResult(
        olt_id=entry.olt_id,
        profile=profile.name if profile else None,
        telemetry=telemetry,
        events=events,
        complete=complete,
        error=error,
        requests=session.requests,
        varbinds=sum(len(v) for v in rows.values()),
        duration_s=time.perf_counter() - t0,
    )


async def poll_inventory(
    inventory: Inventory,
    profiles: Mapping[str, Profile] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    previous_online: Mapping[str, bool] | None = None,
    engine: SnmpEngine | None = None,
) -> PollReport:
    """Poll every OLT of an inventory concurrently.

    Parameters
    ----------
    inventory : Inventory
    profiles : mapping, optional
        Defaults to the built-in profiles plus the inventory's ``profiles_dirs``.
    environ : mapping, optional
        Where credentials are looked up first (defaults to ``os.environ``).
    previous_online : mapping, optional
        From :meth:`PollReport.online_by_onu` of the previous cycle.
    engine : SnmpEngine, optional
        Reuse one engine across cycles on the same event loop.

    Returns
    -------
    report : PollReport

    Raises
    ------
    SnmpCredentialsError
        Before any request, when an OLT's credentials cannot be resolved.
    """
    d = inventory.defaults
    if profiles is None:
        base = inventory.path.parent if inventory.path else Path(".")
        profiles = load_profiles([base / p for p in inventory.profiles_dirs])
    secrets = inventory.secrets_path()
    creds = {e.olt_id: resolve_credentials(e, secrets, environ) for e in inventory.olts}
    engine = engine or new_engine()
    sem = asyncio.Semaphore(d.max_concurrent_olts)

    async def one(entry: OltEntry) -> OltPollResult:
        async with sem:
            return await poll_olt(
                engine,
                entry,
                creds[entry.olt_id],
                profiles,
                timeout_s=d.timeout_s,
                retries=d.retries,
                max_inflight=d.max_inflight_per_olt,
                max_repetitions=d.max_repetitions,
                previous_online=previous_online,
                backend=d.backend,
            )

    results = await asyncio.gather(*[one(e) for e in inventory.olts])
    return PollReport(list(results))


def poll_once(
    inventory: Inventory,
    profiles: Mapping[str, Profile] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> PollReport:
    """Synchronous wrapper of :func:`poll_inventory` (runs its own event loop)."""
    return asyncio.run(poll_inventory(inventory, profiles, environ=environ))


def _to_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def write_parquet(frame: pd.DataFrame, path: str | Path, schema: pa.Schema) -> Path:
    """Write rows atomically (temp file in the same directory, then ``os.replace``).

    Parameters
    ----------
    frame : pandas.DataFrame
    path : str or Path
    schema : pyarrow.Schema
        :data:`TELEMETRY_SCHEMA` or :data:`EVENTS_SCHEMA`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        pq.write_table(_to_table(frame, schema), tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise WarehouseError(f"{path}: cannot write Parquet: {exc}") from exc
    return path


def write_to_warehouse(
    report: PollReport, run_dir: str | Path, telemetry_schema: pa.Schema = TELEMETRY_SCHEMA
) -> list[Path]:
    """Append a poll's rows to the RAW lake of a run directory.

    Files go to ``<run>/lake/raw/{telemetry,events}/date=YYYY-MM-DD/snmp-<time>-<id>.parquet``
    (date = arrival date, UTC), each written atomically under a new name, ready for
    ``guardian ingest --run DIR``. ``telemetry_schema``: the telemetry columns written
    (``guardian operate`` adds ``polled_at``, :mod:`guardian_lib.operate.steps`).

    Returns
    -------
    paths : list of Path
        Files written (none for an empty table).
    """
    name = f"snmp-{_now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
    return _append_raw(run_dir, "telemetry", report.telemetry, telemetry_schema, name) + (
        _append_raw(run_dir, "events", report.events, EVENTS_SCHEMA, name)
    )


def append_raw_events(run_dir: str | Path, frame: pd.DataFrame, prefix: str) -> list[Path]:
    """Append events (the RAW events columns, ``received_at`` set) to a run's RAW lake as
    ``<run>/lake/raw/events/date=YYYY-MM-DD/<prefix>-<time>-<id>.parquet`` (date = arrival
    date, UTC), written atomically, as :func:`write_to_warehouse` does for a poll.

    Returns
    -------
    paths : list of Path
        Files written (none for no rows).
    """
    name = f"{prefix}-{_now().strftime('%Y%m%dT%H%M%S%f')}-{uuid.uuid4().hex[:8]}.parquet"
    return _append_raw(run_dir, "events", frame, EVENTS_SCHEMA, name)


def _append_raw(
    run_dir: str | Path, kind: str, frame: pd.DataFrame, schema: pa.Schema, name: str
) -> list[Path]:
    """``frame``'s rows as RAW ``kind`` files named ``name``, one per arrival date."""
    if not len(frame):
        return []
    written = []
    for date, part in frame.groupby(frame["received_at"].dt.strftime("%Y-%m-%d")):
        out = RunLayout(Path(run_dir)).raw(kind) / f"date={date}" / name
        written.append(write_parquet(part, out, schema))
    return written
