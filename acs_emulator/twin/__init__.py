"""The live twin: simulator in scaled real time + ACS + CPE agents + autopilot.

See docs/tr069.md ("Live twin"). :class:`Twin` runs the loop, :func:`run_twin` builds,
runs and closes one; :class:`NbiDevices` is the autopilot's device executor over the
GenieACS-compatible NBI; :class:`TwinStateSource` feeds the CPE agents from the running
simulation and hands their reboots back to it. The closed loop itself is
:class:`guardian_lib.loop.ClosedLoop` with the simulator's adapters
(:mod:`simulator.adapters`), as in the backtest. :class:`TwinAlerting` runs
``guardian operate``'s alert pipeline on the twin's cycles (``guardian twin --alerting``,
docs/alerts.md).
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "NbiDevices": ".adapters",
        "Twin": ".runner",
        "TwinAlerting": ".alerting",
        "TwinReport": ".runner",
        "TwinStateSource": ".adapters",
        "run_twin": ".runner",
    },
)
