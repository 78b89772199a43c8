"""``top_reasons`` in both formats the scorers write: SHAP objects and rule sentences."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from guardian_lib.dashboards._data import _explode_reasons

T0 = pd.Timestamp("2026-03-01 12:00", tz="UTC")


def test_sentences_and_shap_objects_both_explode():
    shap = [{"feature": "rx_dbm", "value": -27.5, "contribution": 0.4, "model": "risk"}]
    preds = pd.DataFrame(
        {
            "ts": [T0] * 6,
            "onu_id": ["A", "B", "C", "D", "E", "F"],
            "top_reasons": [
                '["rx_dbm low", "TX 3.0 dB below baseline"]',  # rule scorer (test_api fixture)
                json.dumps(shap),  # models
                "[]",
                None,
                "not json",
                np.array(["decoded already"], dtype=object),  # a list column read back
            ],
        }
    )
    out = _explode_reasons(preds)
    assert out["onu_id"].tolist() == ["A", "A", "B", "F"]
    assert out["feature"].tolist() == [
        "rx_dbm low",
        "TX 3.0 dB below baseline",
        "rx_dbm",
        "decoded already",
    ]
    b = out[out["onu_id"] == "B"].iloc[0]
    assert (b["value"], b["contribution"], b["model"]) == (-27.5, 0.4, "risk")
    assert out.loc[out["onu_id"] == "A", ["value", "contribution", "model"]].isna().all().all()


def test_no_reasons_gives_the_empty_frame_with_its_columns():
    preds = pd.DataFrame({"ts": [T0], "onu_id": ["A"], "top_reasons": ["[]"]})
    out = _explode_reasons(preds)
    assert out.empty
    assert list(out.columns) == ["ts", "onu_id", "feature", "value", "contribution", "model"]
