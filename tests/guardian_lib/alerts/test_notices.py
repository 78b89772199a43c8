"""Customer notices: templates in both languages, one per incident, opt-out, quiet hours."""

from __future__ import annotations

import jinja2
import pandas as pd
import pytest

from guardian_lib.alerts.notices import NOTICE_TEMPLATES, NoticePlanner, render_notice

NOON = pd.Timestamp("2026-03-02 15:00", tz="UTC")  # 12:00 in São Paulo
CTX = {"name": "Ana", "region": "Campinas", "start": NOON, "end": NOON, "eta": NOON,
       "visit": NOON, "when": NOON, "incident_id": "INC1"}  # fmt: skip


@pytest.mark.parametrize("template", NOTICE_TEMPLATES)
def test_every_template_renders_in_both_languages_in_local_time(template):
    pt = render_notice(template, "pt-BR", **CTX)
    en = render_notice(template, "en", **CTX)
    assert pt.startswith("Olá, Ana") and en.startswith("Hello Ana") and pt != en
    assert "02/03/2026 12:00" in pt and "2026-03-02 12:00" in en


def test_a_missing_field_is_an_error_not_a_blank():
    with pytest.raises(jinja2.UndefinedError):
        render_notice("outage_detected", "en", name="Ana")
    with pytest.raises(ValueError, match="unknown notice template"):
        render_notice("promo", "en", **CTX)


def test_one_notice_per_customer_per_incident_opt_out_and_quiet_hours():
    p = NoticePlanner(opted_out=["C9"])
    ctx = {k: v for k, v in CTX.items() if k != "incident_id"}
    assert p.request("C1", "INC1", "outage_detected", NOON, "pt-BR", **ctx) is not None
    assert p.request("C1", "INC1", "visit_cancelled", NOON, "pt-BR", **ctx) is None
    assert p.request("C1", "INC1", "outage_detected", NOON, "pt-BR", **ctx) is None
    assert p.request("C2", "INC1", "outage_resolved", NOON, "en", **ctx) is None  # never told
    assert p.request("C9", "INC1", "outage_detected", NOON, "en", **ctx) is None
    night = pd.Timestamp("2026-03-03 02:30", tz="UTC")  # 23:30 local
    late = p.request("C1", "INC1", "outage_resolved", night, "pt-BR", **ctx)
    assert late.deferred and late.send_at == pd.Timestamp("2026-03-03 10:00", tz="UTC")
    assert p.skipped == {"opted_out": 1, "duplicate": 3}
    assert [n.template for n in p.notices] == ["outage_detected", "outage_resolved"]
