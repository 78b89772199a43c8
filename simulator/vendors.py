"""The vendors the simulator knows: OLT and ONU models, serials, OUIs, firmware, PON ifIndex.

To add a vendor: add its entry to :data:`VENDOR_MODELS`, its ifIndex formula to
:func:`pon_if_index`, its share to ``topology.vendor_mix`` in a scenario, and a matching
SNMP profile under ``guardian_lib/snmp/profiles/`` (see ``docs/snmp.md``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["VENDOR_MODELS", "pon_if_index", "device_identities"]

#: OLT models, ONU/CPE models (product class), CPE OUI and firmware mix per vendor.
VENDOR_MODELS: dict[str, dict] = {
    "huawei": {
        "olt_models": ["MA5800-X7", "MA5608T"],
        "onu_models": ["EG8145V5", "HG8245H"],
        "serial_prefix": "HWTC",
        "oui": "00E0FC",
        "firmware": ["V5R020C10S115", "V5R020C10S120", "V5R019C00S100"],
    },
    "zte": {
        "olt_models": ["C320", "C600"],
        "onu_models": ["F670L", "F660"],
        "serial_prefix": "ZTEG",
        "oui": "C4741E",
        "firmware": ["V9.0.10P2N2", "V9.0.11P1N5", "V6.0.10P2T2"],
    },
    "fiberhome": {
        "olt_models": ["AN5516-04", "AN5516-06"],
        "onu_models": ["HG6145F", "AN5506-04-FA"],
        "serial_prefix": "FHTT",
        "oui": "0C37DC",
        "firmware": ["RP2931", "RP2945", "RP2817"],
    },
}


def pon_if_index(vendor: str, slot: np.ndarray, port: np.ndarray) -> np.ndarray:
    """ifIndex of a PON port as each vendor's agent reports it.

    Parameters
    ----------
    vendor : {'huawei', 'zte', 'fiberhome'}
    slot, port : ndarray of int
        Board slot and port on the board (frame/shelf/rack 0 or 1). [-]

    Returns
    -------
    if_index : ndarray of int64

    Notes
    -----
    Huawei: ``0xFA000000 + slot·2^13 + port·2^8`` (docs/snmp.md). ZTE C3xx/C600 GPON:
    ``0x10000000 + shelf·2^16 + slot·2^8 + port`` with shelf 1 (ports numbered from 1).
    FiberHome AN5516: ``slot·2^25 + port·2^19`` (ports numbered from 1).
    """
    slot = np.asarray(slot, dtype=np.int64)
    port = np.asarray(port, dtype=np.int64)
    if vendor == "huawei":
        return 0xFA000000 + slot * 8192 + port * 256
    if vendor == "zte":
        return 0x10000000 + (1 << 16) + slot * 256 + (port + 1)
    if vendor == "fiberhome":
        return slot * (1 << 25) + (port + 1) * (1 << 19)
    raise ValueError(f"unknown vendor {vendor!r}: expected huawei, zte or fiberhome")


def device_identities(onu_vendor: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Serial, model, firmware and CPE OUI of every ONU, from its vendor's profile."""
    n_onus = len(onu_vendor)
    ids = {k: np.empty(n_onus, dtype=object) for k in ("serial", "model", "firmware", "oui")}
    hex_ids = rng.choice(2**32, size=n_onus, replace=False)
    for vendor, spec in VENDOR_MODELS.items():
        m = onu_vendor == vendor
        if not m.any():
            continue
        ids["serial"][m] = [f"{spec['serial_prefix']}{h:08X}" for h in hex_ids[m]]
        ids["model"][m] = np.array(spec["onu_models"], dtype=object)[
            rng.integers(len(spec["onu_models"]), size=m.sum())
        ]
        fw = spec["firmware"]
        ids["firmware"][m] = np.array(fw, dtype=object)[
            rng.choice(len(fw), size=m.sum(), p=[0.5, 0.35, 0.15])
        ]
        ids["oui"][m] = spec["oui"]
    return ids
