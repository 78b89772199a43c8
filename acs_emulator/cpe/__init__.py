"""Emulated CWMP CPEs: many asyncio agents per process, fed by a state source.

See docs/tr069.md. ``CpeFleet`` runs agents with a shared connection-request
listener; ``CpeAgent`` is one device; state sources give live values (static from a
seed, or the simulator through ``SimulationStateSource``).
"""

from acs_emulator.cpe.agent import CpeAgent, Misbehaviour, SessionError
from acs_emulator.cpe.datamodel import PATHS, DataModel
from acs_emulator.cpe.fleet import CpeFleet
from acs_emulator.cpe.state import (
    DeviceIdentity,
    SimulationStateSource,
    StateSource,
    StaticStateSource,
    make_identities,
)

__all__ = [
    "PATHS",
    "CpeAgent",
    "CpeFleet",
    "DataModel",
    "DeviceIdentity",
    "Misbehaviour",
    "SessionError",
    "SimulationStateSource",
    "StateSource",
    "StaticStateSource",
    "make_identities",
]
