"""Vendor command lines of the emulated OLTs: Huawei MA5800, ZTE C300/C320, ZTE C600
and FiberHome AN5516.

Each class parses its vendor's syntax, keeps the prompt mode (user, privileged, config,
interface, ONU management) and answers as the vendor does, including wrong-syntax,
busy, already-exists and unknown-serial messages. They are written from the vendors'
documented syntax, independently of the library's YAML profiles, so that driving them
with ``guardian_lib.olt`` is a real test of those profiles.

Each vendor lives in its own module (:mod:`~acs_emulator.olt.cli_huawei`,
:mod:`~acs_emulator.olt.cli_zte`, on :mod:`~acs_emulator.olt.cli_base`); this module
picks one for an OLT. The state behind them is an
:class:`~acs_emulator.olt.provisioning.OltConfigBackend`.
"""

from __future__ import annotations

from acs_emulator.olt.cli_base import Reply, VendorCli
from acs_emulator.olt.cli_fiberhome import FiberHomeCli
from acs_emulator.olt.cli_huawei import HuaweiCli
from acs_emulator.olt.cli_zte import ZteCli
from acs_emulator.olt.provisioning import OltConfigBackend

__all__ = ["Reply", "VendorCli", "HuaweiCli", "ZteCli", "FiberHomeCli", "cli_for"]


def cli_for(backend: OltConfigBackend, hostname: str | None = None) -> VendorCli:
    """The vendor command line matching the backend's OLT (vendor and model).

    Raises
    ------
    ValueError
        No emulated CLI for that vendor.
    """
    host = hostname or backend.olt_id
    if backend.vendor == "huawei":
        return HuaweiCli(backend, host)
    if backend.vendor == "zte":
        return ZteCli(backend, host, c600=backend.model.upper().startswith("C6"))
    if backend.vendor == "fiberhome":
        return FiberHomeCli(backend, host)
    raise ValueError(
        f"OLT {backend.olt_id}: no emulated CLI for vendor {backend.vendor!r} "
        "(huawei, zte and fiberhome are emulated)"
    )
