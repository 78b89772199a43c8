"""Emulated CWMP CPEs: many asyncio agents per process, fed by a state source.

See docs/tr069.md. ``CpeFleet`` runs agents with a shared connection-request
listener; ``CpeAgent`` is one device; state sources give live values (static from a
seed, or the simulator through ``SimulationStateSource``).
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "PATHS": ".datamodel",
        "CpeAgent": ".agent",
        "CpeFleet": ".fleet",
        "DataModel": ".datamodel",
        "DeviceIdentity": ".state",
        "Misbehaviour": ".agent",
        "SessionError": ".agent",
        "SimulationStateSource": ".state",
        "StateSource": ".state",
        "StaticStateSource": ".state",
        "make_identities": ".state",
    },
)
