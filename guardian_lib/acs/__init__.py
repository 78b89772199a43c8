"""Talk to a TR-069 ACS through GenieACS's northbound interface (NBI).

``NbiClient`` is the httpx client (timeouts, retries honouring 503 Retry-After,
idempotent tasks, audit of every call); :mod:`guardian_lib.acs.tasks` builds task
documents; :mod:`guardian_lib.acs.campaigns` runs firmware campaigns with canaries.
See docs/tr069.md for pointing it at a real GenieACS.
"""

from guardian_lib.acs import tasks
from guardian_lib.acs.campaigns import (
    CampaignError,
    CampaignReport,
    FirmwareCampaign,
    split_canaries,
)
from guardian_lib.acs.nbi import (
    AcsAmbiguousError,
    AcsDeviceNotFoundError,
    AcsError,
    AcsRequestError,
    AcsUnavailableError,
    NbiClient,
    TaskResult,
    token_from_env,
)

__all__ = [
    "AcsAmbiguousError",
    "AcsDeviceNotFoundError",
    "AcsError",
    "AcsRequestError",
    "AcsUnavailableError",
    "CampaignError",
    "CampaignReport",
    "FirmwareCampaign",
    "NbiClient",
    "TaskResult",
    "split_canaries",
    "tasks",
    "token_from_env",
]
