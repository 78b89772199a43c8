"""TR-069 (CWMP) ACS with a GenieACS-compatible northbound interface.

See docs/tr069.md. ``Acs`` is the CWMP core, ``nbi_app`` the NBI, ``AcsService``
runs both listeners, ``DeviceStore`` keeps devices, tasks and faults in SQLite.
"""

from acs_emulator.cwmp.auth import AuthPolicy
from acs_emulator.cwmp.nbi import nbi_app
from acs_emulator.cwmp.presets import Preset, load_presets, zero_touch_preset
from acs_emulator.cwmp.server import Acs, AcsConfig, device_id_of
from acs_emulator.cwmp.service import AcsService
from acs_emulator.cwmp.store import DeviceStore

__all__ = [
    "Acs",
    "AcsConfig",
    "AcsService",
    "AuthPolicy",
    "DeviceStore",
    "Preset",
    "device_id_of",
    "load_presets",
    "nbi_app",
    "zero_touch_preset",
]
