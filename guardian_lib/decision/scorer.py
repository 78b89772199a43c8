"""A transparent rule-based scorer that fills the model contract from observable data.

:class:`RuleScorer` returns the same columns as the ML models of ``guardian_lib.models``
(:data:`~guardian_lib.decision._types.PREDICTION_COLUMNS`), so that any policy can run
with either. Its rules, vectorised over the fleet:

* ONUs of one street box, PON or OLT that went dark (or lost light: an RX step) together,
  enough of them by share and count (the policies' topology evidence,
  :func:`~guardian_lib.decision.neighbours.coincident_outages` with
  :class:`~guardian_lib.decision.neighbours.OutageEvidence`) → massive outage;
* no PPPoE while online, for ONUs of one OLT that lost it together → external network
  (BNG);
* a single ONU offline with a dying gasp → customer premises (power);
  with LOS → equipment failure or fibre (intermittent);
* online without PPPoE, neighbours fine → customer premises (a hung CPE);
* RX below −27 dBm or drifting down from its baseline, BER up → intermittent;
  ONU TX drifting down → equipment failure;
* latency / loss alone → customer premises (Wi-Fi) or unknown;
* a healthy-looking CPE whose latency sits well above its baseline and that failed DHCP
  renewals → customer premises, high risk (a leaking CPE that will hang).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from guardian_lib._numeric import nan_to_num
from guardian_lib.decision._types import CLASS_COLUMNS, PREDICTION_COLUMNS, Snapshot
from guardian_lib.decision.neighbours import OutageEvidence, neighbour_stats
from guardian_lib.schema import RX_CRITICAL_DBM

__all__ = ["RuleScorer", "neighbour_stats", "LOW_RX_DBM"]

#: RX below this is critical (:data:`guardian_lib.schema.RX_CRITICAL_DBM`). [dBm]
LOW_RX_DBM = RX_CRITICAL_DBM
#: Latency this far above the ONU's own baseline, with failed DHCP renewals, is a leak. [ms]
LEAK_LATENCY_MS = 12.0
#: Failed DHCP renewals (decayed over 6 h) that, with the latency, make a leak. [-]
LEAK_DHCP_FAILS = 0.8


class RuleScorer:
    """Predictions from transparent rules over the snapshot's observable state.

    Parameters
    ----------
    model_version : str, default "rules-2"
        Written to every prediction row.
    outage_evidence : OutageEvidence, optional
        When ONUs that failed together are a shared outage (default thresholds of
        :class:`~guardian_lib.decision.neighbours.OutageEvidence`; the backtest and
        ``make_autopilot`` pass the site's settings). Before (``rules-1``) the massive
        probability came from how many neighbours were offline *now*
        (:func:`neighbour_stats`), whenever they had failed: an ONU that died in a box
        where two others had been dark for days was called part of an outage.

    Examples
    --------
    The scorer is a callable ``scorer(snapshot) -> predictions``; see
    :mod:`guardian_lib.decision` for a full example.
    """

    def __init__(
        self, model_version: str = "rules-2", outage_evidence: OutageEvidence | None = None
    ) -> None:
        self.model_version = model_version
        self.outage_evidence = outage_evidence or OutageEvidence()

    def __call__(self, snapshot: Snapshot) -> pd.DataFrame:
        """Score every ONU of ``snapshot.status``.

        Returns
        -------
        pandas.DataFrame
            One row per ONU with :data:`~guardian_lib.decision._types.PREDICTION_COLUMNS`;
            probabilities in [0, 1], class probabilities summing to 1. [-]
        """
        st = snapshot.status
        col = snapshot.column  # numpy columns, read once per snapshot
        ev = snapshot.outages(self.outage_evidence)  # the policy reads the same (cached)
        scope_type = ev["outage_scope_type"]
        n = len(st)
        online = np.asarray(col("online"), dtype=bool)
        service = np.asarray(col("service_up"), dtype=bool)
        degraded = np.asarray(col("degraded"), dtype=bool)
        down = col("down_type")
        rx = nan_to_num(np.asarray(col("rx_dbm"), dtype=float), nan=0.0)
        rx_drop = np.asarray(col("rx_drop_db"), dtype=float)
        tx_drop = np.asarray(col("tx_drop_db"), dtype=float)
        ber = nan_to_num(np.asarray(col("ber"), dtype=float), nan=0.0)
        off = ~online
        dg = off & (down == "DYING_GASP")
        los = off & ~dg
        nosvc = online & ~service
        rxbad = online & ((rx_drop > 2.5) | (rx < LOW_RX_DBM) | (ber > 1e-6))
        txbad = online & (tx_drop > 2.0)
        wifi = degraded & ~rxbad & ~txbad
        leak = np.zeros(n, dtype=bool)
        if "dhcp_fails_6h" in st.columns and "latency_excess_ms" in st.columns:
            leak = (
                service
                & ~degraded
                & (np.asarray(col("dhcp_fails_6h"), dtype=float) >= LEAK_DHCP_FAILS)
                & (np.asarray(col("latency_excess_ms"), dtype=float) > LEAK_LATENCY_MS)
            )

        # Individual cause given a problem: rows are masks, columns CLASS_COLUMNS.
        ind = np.zeros((n, 6))
        ind[:, 5] = 1.0  # unknown by default
        table = [
            (dg, [0, 0.85, 0.02, 0, 0, 0.13]),
            (los, [0, 0.05, 0.5, 0, 0.35, 0.10]),
            (nosvc, [0, 0.8, 0.02, 0.08, 0, 0.10]),
            (wifi, [0, 0.55, 0.05, 0, 0, 0.40]),
            (rxbad, [0, 0.02, 0.1, 0, 0.78, 0.10]),
            (txbad, [0, 0.02, 0.75, 0, 0.13, 0.10]),
            (leak, [0, 0.85, 0.0, 0, 0, 0.15]),
        ]
        for mask, probs in table:
            ind[mask] = probs
        # The topology evidence: a shared outage of the ONU's box / PON / OLT (dark or
        # light lost together), or of its BNG (PPPoE lost together while online).
        in_outage = pd.notna(scope_type)
        m_off = np.where((off | rxbad) & in_outage & (scope_type != "bng"), 1.0, 0.0)
        # Light lost on an online ONU outside such an outage, while neighbours are dark
        # or lost light now (rules-1's neighbour share): a box fault whose other ONUs were
        # already dark, or a problem that appeared during an outage of its PON — it
        # waits for the outage rather than getting a proactive visit of its own.
        nb = snapshot.neighbours()
        m_nb = np.clip((nb["massive_share"] - 0.15) / 0.35, 0.0, 1.0)
        m_off = np.maximum(m_off, np.where(rxbad & ~in_outage, m_nb, 0.0))
        m_ext = np.where(nosvc & (scope_type == "bng"), 1.0, 0.0)
        probs = ind * (1 - m_off - m_ext)[:, None]
        probs[:, 0] += m_off
        probs[:, 3] += m_ext
        probs /= probs.sum(axis=1, keepdims=True)

        outage = off | nosvc
        drift = np.clip(np.maximum((rx_drop - 1.0) / 5.0, (tx_drop - 1.0) / 4.0), 0.0, 1.0)
        margin_db = np.where(online, rx - (-28.0), 0.0)
        near = np.clip(1.0 - margin_db / 4.0, 0.0, 1.0) * (rxbad | txbad)
        anomaly = np.where(outage, 1.0, np.where(degraded, 0.75, np.maximum(drift, near * 0.8)))
        risk_24h = np.clip(0.01 + 0.9 * np.maximum(drift, near), 0.0, 1.0)
        anomaly = np.where(leak, np.maximum(anomaly, 0.6), anomaly)
        risk_24h = np.where(leak, np.maximum(risk_24h, 0.85), risk_24h)
        risk_24h = np.where(outage | degraded, 1.0, risk_24h)
        reasons = np.full(n, "[]", dtype=object)
        loss = np.asarray(col("loss_pct"), dtype=float)
        lat = np.asarray(col("latency_ms"), dtype=float)
        share = ev["outage_share"]
        n_out = ev["outage_n"]
        skey = ev["outage_scope_key"]
        for i in np.flatnonzero(anomaly > 0.05):
            r = []
            if off[i]:
                r.append("offline: dying gasp" if dg[i] else "offline: LOS")
            if nosvc[i]:
                r.append("online without PPPoE")
            if degraded[i]:
                r.append(f"degraded: loss {loss[i]:.1f} %, latency {lat[i]:.0f} ms")
            if rx_drop[i] > 1.0:
                r.append(f"RX {rx_drop[i]:.1f} dB below baseline")
            if tx_drop[i] > 1.0:
                r.append(f"TX {tx_drop[i]:.1f} dB below baseline")
            if leak[i]:
                r.append("latency above baseline and failed DHCP renewals: CPE leaking")
            if m_off[i] > 0 and not in_outage[i]:
                r.append(f"neighbours dark or dim now under {nb['scope_type'][i]} "
                         f"{nb['scope_key'][i]}")  # fmt: skip
            if in_outage[i]:
                r.append(f"{n_out[i]} ONUs ({share[i]:.0%}) of {scope_type[i]} {skey[i]} "
                         "failed together")  # fmt: skip
            reasons[i] = json.dumps(r[:3])
        version = np.full(n, self.model_version, dtype=object)
        # One index for the object columns (kept as objects, not inferred as strings)
        # and the frame: pandas then need not align them (the default index, as before).
        rows = pd.RangeIndex(n)
        cols = {
            "ts": snapshot.ts,
            "onu_id": st.index.array,
            "anomaly_score": anomaly,
            **{c: probs[:, j] for j, c in enumerate(CLASS_COLUMNS)},
            "risk_2h": np.where(outage | degraded, 1.0, risk_24h * 0.3),
            "risk_6h": np.where(outage | degraded, 1.0, risk_24h * 0.6),
            "risk_24h": risk_24h,
            "model_version": pd.Series(version, dtype=object, copy=False, index=rows),
            "top_reasons": pd.Series(reasons, dtype=object, copy=False, index=rows),
        }
        out = pd.DataFrame(cols, index=rows)
        if tuple(out.columns) != PREDICTION_COLUMNS:
            out = out[list(PREDICTION_COLUMNS)]
        # The policy reads these arrays, not the frame: the ids as the status holds them,
        # model versions and reasons as object arrays of strings (no missing value).
        source = {**cols, "onu_id": snapshot.onu_ids(), "model_version": version,
                  "top_reasons": reasons}  # fmt: skip
        snapshot.seed_predictions(out, source, exact=True)
        return out
