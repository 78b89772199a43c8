"""The customers of the simulated ISP: one per ONU, with its CPE, plan, segment and SLA tier."""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.scenario import Scenario

__all__ = ["build_customers", "draw_shares", "SEGMENT_TIER"]

#: SLA tier of each customer segment.
SEGMENT_TIER = {"residential": "standard", "business": "business", "vip": "premium"}


def draw_shares(rng: np.random.Generator, shares: dict[str, float], size: int) -> np.ndarray:
    """``size`` names drawn from ``shares`` (name → weight, normalised here)."""
    names = list(shares)
    p = np.array([shares[n] for n in names], dtype=float)
    return np.array(names, dtype=object)[rng.choice(len(names), size=size, p=p / p.sum())]


def build_customers(
    scenario: Scenario,
    olts: pd.DataFrame,
    onu_olt: np.ndarray,
    onu_region: np.ndarray,
    ids: dict[str, np.ndarray],
    lat: np.ndarray,
    lon: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One customer per ONU: CPE identity, plan, segment and SLA tier, account age."""
    n_onus = len(onu_olt)
    serial, model, oui = ids["serial"], ids["model"], ids["oui"]
    segments = draw_shares(rng, scenario.customers.segments, n_onus)
    created_days = rng.uniform(30, 5 * 365, n_onus)
    return pd.DataFrame(
        {
            "customer_id": [f"C{i + 1:07d}" for i in range(n_onus)],
            "onu_id": serial,
            "cpe_id": oui + "-" + model + "-" + serial,
            "cpe_oui": oui,
            "cpe_product_class": model,
            "cpe_serial": serial,
            "cpe_model": model,
            "firmware": ids["firmware"],
            "wifi_channel": np.array([1, 6, 11])[rng.integers(3, size=n_onus)],
            "plan": draw_shares(rng, scenario.customers.plans, n_onus),
            "segment": segments,
            "sla_tier": [SEGMENT_TIER[s] for s in segments],
            "region": np.array([r.name for r in scenario.topology.regions], dtype=object)[
                onu_region
            ],
            "city": olts["city"].to_numpy()[onu_olt],
            "lat": lat + rng.normal(0, 2e-5, n_onus),
            "lon": lon + rng.normal(0, 2e-5, n_onus),
            "created_at": pd.Timestamp(scenario.start)
            - pd.to_timedelta(np.round(created_days * 86400), unit="s"),
        }
    )
