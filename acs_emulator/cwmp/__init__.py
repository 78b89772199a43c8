"""TR-069 (CWMP) ACS with a GenieACS-compatible northbound interface.

See docs/tr069.md. ``Acs`` is the CWMP core, ``nbi_app`` the NBI, ``AcsService``
runs both listeners, ``DeviceStore`` keeps devices, tasks and faults in SQLite.
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "Acs": ".server",
        "AcsConfig": ".server",
        "AcsService": ".service",
        "AuthPolicy": ".auth",
        "DeviceStore": ".store",
        "Preset": ".presets",
        "device_id_of": ".server",
        "load_presets": ".presets",
        "nbi_app": ".nbi",
        "zero_touch_preset": ".presets",
    },
)
