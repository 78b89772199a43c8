"""Labels in en / pt-BR and Brazilian money, number and date formats (guardian_lib.i18n)."""

from __future__ import annotations

import pandas as pd
import pytest

from guardian_lib import i18n
from guardian_lib.i18n import (
    LABELS,
    format_date,
    format_datetime,
    format_money,
    format_number,
    format_pct,
    label,
    normalize_lang,
)

NBSP = "\xa0"


def test_money_in_pt_br_is_brazilian_reais():
    assert format_money(1234.56, "pt-BR").replace(NBSP, " ") == "R$ 1.234,56"
    assert format_money(-150, "pt-BR").replace(NBSP, " ") == "-R$ 150,00"
    assert format_money(1234567.891, "pt-BR").replace(NBSP, " ") == "R$ 1.234.567,89"


def test_money_in_english_keeps_reais():
    assert format_money(1234.56, "en") == "R$1,234.56"


def test_dates_are_dd_mm_aaaa_in_pt_br():
    assert format_date("2026-01-05T23:30:00Z", "pt-BR") == "05/01/2026"
    assert format_date(pd.Timestamp("2026-12-31", tz="UTC"), "pt-BR") == "31/12/2026"
    assert format_date("2026-01-05T23:30:00Z", "en") == "2026-01-05"
    assert format_datetime("2026-01-05T23:30:00Z", "pt-BR") == "05/01/2026 23:30 UTC"


def test_datetimes_are_shown_in_utc():
    ts = pd.Timestamp("2026-01-05T21:30:00-03:00")  # São Paulo evening = 00:30 UTC next day
    assert format_datetime(ts, "pt-BR") == "06/01/2026 00:30 UTC"


def test_numbers_and_shares():
    assert format_number(12345.678, "pt-BR", 2) == "12.345,68"
    assert format_number(12345.678, "en", 2) == "12,345.68"
    assert format_number(7, "pt-BR") == "7"
    assert format_pct(0.9987, "pt-BR", 2).replace(NBSP, "") == "99,87%"
    assert format_pct(0.125, "en") == "12.5%"


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_missing_values_show_a_dash(missing):
    assert format_money(missing, "pt-BR") == "–"
    assert format_number(missing, "en") == "–"
    assert format_pct(missing, "en") == "–"
    assert format_date(missing, "en") == "–"


def test_every_label_exists_in_both_languages_and_differs_where_translated():
    assert set(LABELS["en"]) == set(LABELS["pt-BR"])
    assert label("risk_queue", "pt-BR") == "Fila de risco"
    assert label("customer_dossier", "pt-BR") == "Dossiê do cliente"
    assert label("risk_queue", "en") == "Risk queue"
    assert all(v.strip() for table in LABELS.values() for v in table.values())


def test_labels_fill_placeholders():
    text = label("rows_shown", "pt-BR", n="5", total="64")
    assert text == "5 de 64 clientes"


def test_language_spellings_and_errors():
    assert normalize_lang("pt_BR") == "pt-BR"
    assert normalize_lang("PT-br") == "pt-BR"
    assert normalize_lang(None) == "en"
    with pytest.raises(ValueError, match="lang must be one of"):
        normalize_lang("fr")
    with pytest.raises(KeyError, match="no label 'nope'"):
        label("nope")


def test_all_names_exist():
    for name in i18n.__all__:
        assert hasattr(i18n, name), name
