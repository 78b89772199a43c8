"""The report glossary: sentence labels, units, clipped intervals, readable rationale."""

from __future__ import annotations

import json

import pytest

from guardian_lib.dashboards.glossary import (
    ACTION_NAMES,
    METRICS,
    clip_interval,
    format_estimate,
    format_interval,
    format_metric,
    metric_label,
    rationale_text,
    value_name,
)
from guardian_lib.kpis import compute_kpis


def test_every_metric_is_a_sentence_in_both_languages():
    for key, m in METRICS.items():
        for text in (m.en, m.pt):
            assert text and "_" not in text and text != key, key
    translated = [k for k, m in METRICS.items() if m.en != m.pt]
    assert len(translated) >= len(METRICS) - 2  # only "Customers"-like cognates may match
    for name in ACTION_NAMES.values():
        assert all(name) and name[0] != name[1]


def test_every_kpi_the_library_computes_is_in_the_glossary():
    import pandas as pd

    empty = pd.DataFrame()
    k = compute_kpis(
        decisions=empty, actions=empty, notifications=empty,
        service_orders=pd.DataFrame(columns=["os_id", "onu_id", "status", "outcome", "opened_by", "opened_at"]),
        episodes=pd.DataFrame(columns=["onu_id", "start_at", "end_at", "outage", "duration_min"]),
        calls=pd.DataFrame(columns=["ts", "onu_id"]),
        customers=pd.DataFrame({"onu_id": ["U1"], "region": ["R"], "segment": ["res"]}),
        start=pd.Timestamp("2026-01-01", tz="UTC"), end=pd.Timestamp("2026-01-02", tz="UTC"),
    )  # fmt: skip
    missing = sorted(set(k) - set(METRICS) - {"sla_availability_by_region"})
    assert missing == []


def test_units_and_locale():
    assert format_metric("saved_brl_per_month", 1234.56, "pt-BR").replace("\xa0", " ") == (
        "R$ 1.234,56"
    )
    assert format_metric("sla_availability", 0.99871, "pt-BR") == "99,87%"
    assert format_metric("mttr_hours", 2.5, "en") == "2.50 h"
    assert format_metric("visits", float("nan"), "en") == "–"
    assert metric_label("savings_brl", "pt-BR") == "Economia em visitas técnicas"
    with pytest.raises(KeyError, match="no metric 'nope'"):
        metric_label("nope")


def test_intervals_of_non_negative_quantities_are_clipped_and_say_so():
    assert clip_interval("visits_avoided", -1.5, 4.0) == (0.0, 4.0)
    assert clip_interval("no_fault_found_share", -0.1, 1.2) == (0.0, 1.0)
    assert clip_interval("saved_brl_per_month", -100.0, 50.0) == (-100.0, 50.0)  # a difference
    text = format_interval("savings_brl", -120.0, 900.0, "pt-BR").replace("\xa0", " ")
    assert text.startswith("IC 95% R$ 0,00 – R$ 900,00")
    assert "limite inferior ajustado para R$ 0,00" in text
    assert "-" not in text.split("(")[0] and "−" not in text
    assert format_interval("visits", 1.0, None, "en") == ""


def test_an_estimate_and_its_interval_share_their_decimals():
    # before: "95% CI 36 – 59.1" (a whole bound lost its decimal)
    assert format_interval("visits_avoided_per_month", 36.0, 59.1) == "95% CI 36.0 – 59.1"
    assert format_estimate("visits_avoided_per_month", 48.9, 36.0, 59.1) == (
        "48.9",
        "95% CI 36.0 – 59.1",
    )
    assert format_estimate("visits_avoided_per_month", 149.2, 36.6, 259.1)[1] == "95% CI 37 – 259"
    value, ci = format_estimate("saved_brl_per_month", 18321.23, 15499.68, 21739.36, "pt-BR",
                                whole_reais=True)  # fmt: skip
    assert (value.replace("\xa0", " "), ci.replace("\xa0", " ")) == (
        "R$ 18.321",
        "IC 95% R$ 15.500 – R$ 21.739",
    )
    # with cents by default, and units of fixed decimals keep theirs
    assert format_estimate("saved_brl_per_month", 10.5, 1.0, 20.0)[0] == "R$10.50"
    assert format_estimate("mttr_change_hours", -2.93, -3.61, -2.0)[1] == "95% CI -3.61 h – -2.00 h"


def test_rationale_is_a_sentence_with_translated_rule():
    r = json.dumps(
        {
            "rule": "massive probability above threshold with many neighbours affected",
            "n_affected": 32,
            "mean_p_massive": 0.87,
            "top_reasons": [{"feature": "pon_offline_share", "contribution": 0.61}],
        }
    )
    pt = rationale_text(r, "pt-BR")
    assert pt.startswith("Regra: probabilidade de falha massiva acima do limite")
    assert "32 clientes afetados" in pt and "pon_offline_share (+0,61)" in pt
    assert "{" not in pt and '"' not in pt
    assert rationale_text("free text", "en") == "free text"
    assert rationale_text(None, "en") == "–"


def test_enumerated_values_are_translated():
    assert value_name("no_fault_found", "pt-BR") == "sem defeito constatado"
    assert value_name("fixed_wifi_interference", "pt-BR") == "resolvido: interferência de Wi-Fi"
    assert value_name("residential", "en") == "residential"
    assert value_name("something_new", "pt-BR") == "something_new"  # unknown: as it is
    assert value_name(None, "en") == "–"
