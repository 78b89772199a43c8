"""Dashboard data, screens and the offline report (no browser: see test_dashboards_browser)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

import guardian_lib.dashboards as dashboards
from guardian_lib.audit import AUDIT_TABLES
from guardian_lib.dashboards import (
    customer_dossier,
    external_references,
    load_run_data,
    make_offline,
    operations_kpis,
    policy_table,
    risk_queue,
    write_report,
)
from guardian_lib.dashboards._compress import PAYLOAD_TYPE, compress_scripts, expand_scripts
from guardian_lib.dashboards._figures import downsample_min
from guardian_lib.dashboards.glossary import METRICS, action_name, metric_label
from guardian_lib.dashboards.headline import headline, headline_html
from guardian_lib.dashboards.screens import SCREENS, build_layout
from guardian_lib.i18n import label
from guardian_lib.warehouse import run_summary

CAUSES = [
    "p_massive_outage", "p_customer_premises", "p_equipment_fail",
    "p_external_network", "p_intermittent", "p_unknown",
]  # fmt: skip


def add_predictions(run: Path, seed: int = 3) -> pd.DataFrame:
    """Write a synthetic ``ml_predictions`` file (the schema of issue 4) into ``run``."""
    con = duckdb.connect(str(run / "warehouse.duckdb"), read_only=True)
    onus = con.execute("SELECT onu_id FROM onus ORDER BY onu_id").df()["onu_id"]
    con.close()
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp("2026-01-06T23:45:00Z")
    n = len(onus)
    probs = rng.dirichlet(np.ones(6), size=n)
    df = pd.DataFrame({"ts": [ts] * n, "onu_id": onus, "anomaly_score": rng.random(n)})
    for i, col in enumerate(CAUSES):
        df[col] = probs[:, i]
    df["risk_2h"] = np.round(rng.random(n), 4)
    df["risk_6h"] = np.minimum(1, df["risk_2h"] + 0.05)
    df["risk_24h"] = np.minimum(1, df["risk_2h"] + 0.1)
    df["model_version"] = "network-guardian/1"
    reason = [{"feature": "rx_dbm_delta_24h", "value": -3.2, "contribution": 0.8, "model": "cause"}]
    df["top_reasons"] = [json.dumps(reason) if i % 4 == 0 else "[]" for i in range(n)]
    out = run / "lake" / "gold" / "ml_predictions"
    out.mkdir(parents=True, exist_ok=True)
    df.to_parquet(out / "network-guardian_v1.parquet", index=False)
    return df


def add_audit(run: Path, onu_id: str, db: str = "warehouse.duckdb") -> None:
    """Write one decision, one action and one incident in the audit tables' schema."""
    ts = pd.Timestamp("2026-01-06T10:00:00Z")
    rows = {
        "decisions": {
            "decision_id": "D00000001", "ts": ts, "subject": onu_id, "action": "reboot",
            "targets": json.dumps([onu_id]), "case_id": "K1", "confidence": 0.91,
            "expected_cost": 12.5, "rationale": json.dumps({"rule": "individual_high_risk"}),
            "inputs": "{}", "inputs_digest": "x", "model_version": "network-guardian/1",
            "policy_version": "rules/1", "mode": "simulate", "allowed": True, "blocked_rule": None,
        },
        "actions": {
            "action_id": "A00000001", "decision_id": "D00000001", "action_type": "reboot",
            "target": onu_id, "status": "succeeded", "started_at": ts, "finished_at": ts,
            "result": json.dumps({"verified": True}), "error": None,
        },
        "notifications": None,
        "incidents": {
            "incident_id": "INC00000001", "scope_type": "pon", "scope_key": "OLT-01-001/1/0",
            "start_at": ts, "end_at": ts + pd.Timedelta(hours=3), "severity": "major",
            "cause": "MASSIVE_OUTAGE", "affected_customers": 32, "opened_by": "autopilot",
            "recorded_at": ts,
        },
    }  # fmt: skip
    con = duckdb.connect(str(run / db))
    for table, cols in AUDIT_TABLES.items():
        ddl = ", ".join(f"{c} {t}" for c, t in cols.items())
        con.execute(f"CREATE OR REPLACE TABLE {table} ({ddl})")
        if rows[table]:
            frame = pd.DataFrame([rows[table]])[list(cols)]  # noqa: F841 (read by DuckDB)
            con.execute(f"INSERT INTO {table} SELECT * FROM frame")
    con.close()


KPIS = {
    "policies": {
        "reactive": {
            "visits_avoided": {"mean": 0.0, "ci95": [0.0, 0.0]},
            "savings_brl": {"mean": 0.0, "ci95": [0.0, 0.0]},
            "sla_availability": {"mean": 0.99, "ci95": [0.98, 1.0]},
        },
        "autopilot": {
            "visits_avoided": {"mean": 12.0, "ci95": [10.0, 14.0]},
            "savings_brl": {"mean": 1800.0, "ci95": [1500.0, 2100.0]},
            "sla_availability": {"mean": 0.9987, "ci95": [0.998, 0.9994]},
            "sla_availability_by_region": {"Campinas": {"mean": 0.9987, "ci95": [0.99, 1.0]}},
        },
    }
}


@pytest.fixture(scope="module")
def full_run(tiny_run, tmp_path_factory) -> Path:
    """The tiny run with predictions, audit tables and a backtest kpis.json added."""
    run = tmp_path_factory.mktemp("dash") / "run"
    shutil.copytree(tiny_run, run)
    preds = add_predictions(run)
    add_audit(run, str(preds["onu_id"].iloc[0]))
    (run / "kpis.json").write_text(json.dumps(KPIS))
    return run


@pytest.fixture(scope="module")
def report(full_run, tmp_path_factory) -> Callable[[str], Path]:
    """``report(lang)``: ``write_report(full_run, …, lang=lang)``, built on first use and
    then shared by the tests that read it (under pytest-xdist, once per worker that needs
    that language). Each page is alone in its folder, as a user's ``--out`` would be."""
    out = tmp_path_factory.mktemp("reports")
    built: dict[str, Path] = {}

    def get(lang: str) -> Path:
        if lang not in built:
            built[lang] = write_report(full_run, out / lang / "report.html", lang=lang)
        return built[lang]

    return get


def test_operations_kpis_match_the_library_summary(tiny_run):
    data = load_run_data(tiny_run)
    ops = operations_kpis(data)
    lib = run_summary(tiny_run)["operations"]
    for key in ("customers", "onus", "calls", "visits", "visits_no_fault_found"):
        assert ops[key] == lib[key], key
    assert ops["service_orders_total"] == lib["service_orders"]


def test_a_bare_run_has_nothing_computed_yet_and_every_screen_still_builds(tiny_run):
    data = load_run_data(tiny_run)
    assert data.predictions is None and data.backtest is None and data.shap_global is None
    assert data.table("decisions") is None
    assert risk_queue(data) is None
    for screen in SCREENS:  # the static variants (the live ones build in another test)
        assert screen(data, "pt-BR", False) is not None
    assert set(data.status["status"]) <= {"online", "degraded", "offline", "no_data"}
    assert len(data.status) == len(data.table("onus"))


def test_risk_queue_ranks_by_risk_2h_and_filters(full_run):
    data = load_run_data(full_run)
    q = risk_queue(data, limit=None)
    assert len(q) == len(data.table("customers"))
    assert q["risk_2h"].is_monotonic_decreasing
    assert set(q["probable_cause"]) <= {
        "MASSIVE_OUTAGE", "CUSTOMER_PREMISES", "EQUIPMENT_FAIL", "EXTERNAL_NETWORK",
        "INTERMITTENT", "UNKNOWN",
    }  # fmt: skip
    plan = q["plan"].iloc[0]
    only = risk_queue(data, plan=plan, limit=None)
    assert len(only) == (q["plan"] == plan).sum() and set(only["plan"]) == {plan}
    vip = risk_queue(data, vip_only=True, limit=None)
    assert set(vip["segment"].str.lower()) <= {"vip"}
    rec = risk_queue(data, recurrent_only=True, limit=None)
    assert (rec["contacts_30d"] >= 2).all()
    assert len(risk_queue(data, limit=5)) == 5


def test_dossier_collects_decisions_actions_and_reasons(full_run):
    data = load_run_data(full_run)
    cust = data.table("customers")
    onu = sorted(data.table("onus")["onu_id"])[0]
    cid = cust.loc[cust["onu_id"] == onu, "customer_id"].iloc[0]
    d = customer_dossier(data, cid)
    assert d["customer"]["onu_id"] == onu
    assert list(d["decisions"]["action"]) == ["reboot"]
    assert list(d["actions"]["status"]) == ["succeeded"]
    assert list(d["reasons"]["feature"]) == ["rx_dbm_delta_24h"]
    assert len(d["telemetry"]) > 0
    with pytest.raises(KeyError, match="no customer_id 'C9999999'"):
        customer_dossier(data, "C9999999")


def test_an_audit_trail_beside_the_run_is_read(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    onu = str(load_run_data(run).table("onus")["onu_id"].iloc[0])
    add_audit(run, onu, db="audit.duckdb")
    data = load_run_data(run)
    assert data.sources["audit"].endswith("audit.duckdb")
    assert list(data.table("decisions")["action"]) == ["reboot"]
    assert len(data.table("incidents")) == 1
    with pytest.raises(FileNotFoundError, match="nope.duckdb: audit file not found"):
        load_run_data(run, audit_path=tmp_path / "nope.duckdb")


def test_policy_table_reads_the_backtest_format():
    t = policy_table(KPIS)
    row = t.loc[(t["policy"] == "autopilot") & (t["metric"] == "savings_brl")].iloc[0]
    assert (row["mean"], row["ci_lo"], row["ci_hi"]) == (1800.0, 1500.0, 2100.0)
    assert "sla_availability_by_region" not in set(t["metric"])
    assert policy_table(None) is None


def test_malformed_kpis_file_names_the_file(tiny_run, tmp_path):
    bad = tmp_path / "kpis.json"
    bad.write_text('{"visits": 3}')
    with pytest.raises(ValueError, match="kpis.json: expected an object with a 'policies'"):
        load_run_data(tiny_run, kpis_path=bad)


def test_make_offline_inlines_panel_assets_and_neutralises_other_hosts():
    page = (
        '<link rel="icon" href="https://cdn.holoviz.org/panel/1.9.4/dist/images/favicon.ico">'
        '{"url":"https://cdn.holoviz.org/panel/1.9.4/dist/css/markdown.css?v=1.9.4"}'
        '<script>var t="https://cdn.plot.ly/un/"; var s="//unpkg.com/x"; '
        'var ns="http://www.w3.org/2000/svg";</script>'
    )
    assert external_references(page) == [
        "//unpkg.com", "https://cdn.holoviz.org", "https://cdn.plot.ly"
    ]  # fmt: skip
    out = make_offline(page)
    assert external_references(out) == []
    assert "cdn." not in out and "unpkg" not in out
    assert 'href="data:image/' in out and '"url":"data:text/css;base64,' in out
    assert "http://www.w3.org/2000/svg" in out


def test_report_is_one_self_contained_file_in_portuguese(report):
    path = report("pt-BR")
    packed = path.read_text(encoding="utf-8")
    assert external_references(packed) == []  # reads the compressed scripts inflated
    text = expand_scripts(packed)
    assert external_references(text) == []
    for needle in ("cdn.holoviz", "cdn.bokeh", "jsdelivr", "unpkg", "cdnjs", "cdn.plot.ly"):
        assert needle not in text, needle
    assert "<script src=" not in text and 'rel="stylesheet" href="http' not in text
    assert '<html lang="pt-BR">' in text
    for words in ("Fila de risco", "Dossiê do cliente", "KPIs e economia", "R$"):
        escaped = json.dumps(words)[1:-1]  # the page's JSON escapes non-ASCII characters
        assert words in text or escaped in text, words
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp files left


def test_layout_builds_live_and_static(full_run):
    data = load_run_data(full_run)
    assert build_layout(data, "en", live=True) is not None
    assert build_layout(data, "en", live=False) is not None


def test_public_names_exist():
    for name in dashboards.__all__:
        assert hasattr(dashboards, name), name


# --- report content for a manager: headline, glossary labels, readable rationale ---------
def _visible_text(layout) -> str:
    """What a reader can see: text of the HTML panes, Plotly figures and widgets."""
    import panel as pn

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.parts: list[str] = []

        def handle_data(self, data: str) -> None:
            self.parts.append(data)

    out = []
    for pane in layout.select(pn.pane.HTML):
        if isinstance(pane.object, str):
            t = Text()
            t.feed(pane.object)
            out += t.parts
    for pane in layout.select(pn.pane.Plotly):
        out.append(json.dumps(pane.object.to_plotly_json(), default=str))
    for w in layout.select(pn.widgets.Widget):
        out.append(f"{getattr(w, 'name', '')} {getattr(w, 'options', '')}")
    return "\n".join(out)


PAIRED = {
    "visits_avoided_per_month": {"mean": 6.0, "ci95": [-2.0, 14.0]},
    "saved_brl_per_month": {"mean": 900.0, "ci95": [300.0, 1500.0]},
    "mttr_change_hours": {"mean": -0.5, "ci95": [-0.9, -0.1]},
    "visits_avoided_vs_reactive_pct": {"mean": -134.82, "ci95": [-150.0, -120.0]},
    "safety_violations": {"mean": 0.0, "ci95": [0.0, 0.0]},
}


@pytest.mark.parametrize("lang", ["en", "pt-BR"])
def test_no_raw_metric_key_is_visible_in_either_language(full_run, tmp_path, lang):
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    kpis = json.loads(json.dumps(KPIS))
    kpis["policies"]["autopilot"] |= PAIRED
    (run / "kpis.json").write_text(json.dumps(kpis))
    data = load_run_data(run)
    text = _visible_text(build_layout(data, lang, live=False))
    shown = set(policy_table(data.backtest)["metric"]) | set(operations_kpis(data))
    assert "visits_avoided_vs_reactive_pct" in shown and "savings_brl" in shown
    raw = [k for k in set(METRICS) | shown if "_" in k and re.search(rf"\b{k}\b", text)]
    assert raw == []
    assert "{&quot;" not in text and '{"rule"' not in text  # rationale is a sentence
    for key in ("visits_avoided_vs_reactive_pct", "savings_brl", "saved_brl_per_month"):
        assert metric_label(key, lang) in text, key
    assert action_name("reboot", lang) in text


def test_headline_uses_the_paired_intervals_and_clips_impossible_bounds(full_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    kpis = json.loads(json.dumps(KPIS))
    kpis["policies"]["autopilot"] |= PAIRED
    (run / "kpis.json").write_text(json.dumps(kpis))
    data = load_run_data(run)
    items = {it.key: it for it in headline(data)}
    assert items["customers"].value == len(data.table("customers"))
    assert items["incidents"].value == 1
    assert (items["saved_brl_per_month"].lo, items["saved_brl_per_month"].hi) == (300.0, 1500.0)
    assert items["availability_change"].value == pytest.approx(0.9987 - 0.99)
    html_pt = headline_html(data, "pt-BR")
    # a month's saving is an estimate: whole reais (no cents in the value or its interval)
    assert "R$ 900<" in html_pt.replace("\xa0", " ")
    assert "IC 95% R$ 300 – R$ 1.500" in html_pt.replace("\xa0", " ")
    assert "R$ 900,00" not in html_pt.replace("\xa0", " ")
    # visits avoided per month: the lower bound −2 is a difference, allowed to be negative
    assert "IC 95% −2 – 14" in html_pt or "IC 95% -2 – 14" in html_pt
    assert "nenhuma regra de segurança foi violada" in html_pt
    assert html_pt.index("Período") < html_pt.index("Economia por mês")
    assert "replicações" not in html_pt  # this kpis.json does not say how many
    kpis["settings"] = {"seeds": [8, 9, 10, 11, 12], "days": 7.0}
    (run / "kpis.json").write_text(json.dumps(kpis))
    html_en = headline_html(load_run_data(run), "en")
    assert "5 replications × 7 days each" in html_en


def test_headline_period_card_gives_the_periods_length_not_the_backtests(full_run, tmp_path):
    # A backtest shorter than the run (backtest.days) used to put its length under the
    # run's dates: "2026-01-05 – 2026-01-06, 1.0 days" for two days of data.
    run = tmp_path / "run"
    shutil.copytree(full_run, run)
    kpis = json.loads(json.dumps(KPIS))
    kpis["policies"]["autopilot"] |= PAIRED
    kpis["settings"] = {"seeds": [8, 9], "days": 0.25}
    (run / "kpis.json").write_text(json.dumps(kpis))
    data = load_run_data(run)
    span = (data.end - data.start).total_seconds() / 86400
    assert abs(span - 0.25) > 0.1
    page = headline_html(data, "en")
    card = page[page.index(label("period", "en")) :]
    card = card[: card.index(metric_label("customers", "en"))]
    assert f"{span:.1f} days" in card and "0.2 days" not in card and "0.3 days" not in card
    assert "2 replications × 0.2 days each" in page or "2 replications × 0.3 days each" in page


def test_headline_without_paired_figures_takes_the_difference_of_means(full_run):
    data = load_run_data(full_run)  # KPIS: no visits / total cost, only the policy's own
    items = {it.key: it for it in headline(data)}
    days = (data.end - data.start).total_seconds() / 86400
    assert items["visits_avoided_per_month"].value == pytest.approx(12.0 * 30 / days)
    assert items["saved_brl_per_month"].lo == pytest.approx(1500.0 * 30 / days)


# --- smaller HTML ------------------------------------------------------------------------
def test_compressed_page_keeps_every_script_in_order_and_expands_back():
    page = (
        '<html><head><script type="esms-options">{"shimMode": true}</script>'
        '<script type="text/javascript">var a = "https://cdn.example.org/x";' + "x" * 5000
        + '</script></head><body><div id="root"></div>'
        '<script type="application/json" id="doc">{"k": [1, 2, 3]}</script>'
        "<script>embed(document.getElementById('doc').textContent);</script></body></html>"
    )  # fmt: skip
    packed = compress_scripts(page)
    assert len(packed) < len(page)
    assert packed.count(f'<script type="{PAYLOAD_TYPE}"') == 3  # two scripts and the JSON document
    assert '{"shimMode": true}' in packed  # options of the module shims stay readable
    assert packed.index("DecompressionStream") > packed.index('<div id="root">')  # loader last
    assert 'data-id="doc"' in packed and 'data-type="application/json"' in packed
    assert "cdn.example.org" not in packed
    assert external_references(packed) == ["https://cdn.example.org"]  # still found
    back = expand_scripts(packed)
    for part in ('var a = "https://cdn.example.org/x";', '{"k": [1, 2, 3]}', "embed(document"):
        assert part in back
    assert compress_scripts("<p>no body end</p>") == "<p>no body end</p>"


def test_report_is_smaller_compressed(full_run, report, tmp_path):
    small = report("en")
    big = write_report(full_run, tmp_path / "big.html", lang="en", compress=False)
    assert small.stat().st_size < 4_000_000 < big.stat().st_size
    assert expand_scripts(small.read_text()).count("plotly.js v") == 1  # one copy of plotly.js


def test_downsampling_keeps_the_dips():
    ts = pd.date_range("2026-01-01", periods=10_000, freq="5min", tz="UTC")
    n = np.full(len(ts), 100)
    n[4321] = 3  # one outage poll
    s = pd.DataFrame({"ts": ts, "n_online": n})
    d = downsample_min(s, "ts", "n_online", n=1000)
    assert len(d) <= 1000 and d["ts"].is_monotonic_increasing
    assert d["n_online"].min() == 3 and ts[4321] in set(d["ts"])
    assert downsample_min(s.head(10), "ts", "n_online") is not None
    assert len(downsample_min(s.head(10), "ts", "n_online")) == 10


def test_headline_counts_each_incident_once_per_replication():
    from guardian_lib.dashboards.headline import _incidents

    # Each incident is recorded when it opens and again when it closes; a backtest's audit
    # holds every replication, its ids prefixed by the replication's tag.
    ids = ["AUT1-INC00000001"] * 2 + ["AUT1-INC00000002"] * 2 + ["AUT2-INC00000001"] * 2
    item = _incidents(pd.DataFrame({"incident_id": ids}))
    assert (item.key, item.value) == ("incidents_per_replication", 1.5)
    one = _incidents(pd.DataFrame({"incident_id": ["INC00000001", "INC00000001", "INC2"]}))
    assert (one.key, one.value) == ("incidents", 2.0)
    assert _incidents(None).key == "incidents"


def test_guardian_dashboard_run_hands_its_options_to_the_server(tmp_path, monkeypatch):
    """``guardian dashboard --run`` in-process (the CLI runner, the server replaced by a
    recorder): what it serves, where; its option errors. The served app itself is driven
    in chromium by test_dashboards_browser."""
    import typer
    from typer.testing import CliRunner

    import guardian_lib.dashboards.app as app_module
    from guardian_lib.dashboards.cli import register

    served: list[tuple] = []
    monkeypatch.setattr(app_module, "serve", lambda *a, **kw: served.append((a, kw)))
    app = typer.Typer()
    register(app)
    run = tmp_path / "run"
    out = CliRunner().invoke(app, ["dashboard", "--run", str(run), "--port", "5123",
                                   "--lang", "pt-br", "--kpis", str(run / "k.json")])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert served == [((run,), {"port": 5123, "lang": "pt-BR", "address": "127.0.0.1",
                                "kpis": run / "k.json", "audit": None, "show": False})]  # fmt: skip
    for args, message in (
        (["--lang", "fr"], "--lang"),
        (["--port", "70000"], "--port"),
    ):
        bad = CliRunner().invoke(app, ["dashboard", "--run", str(run), *args])
        assert bad.exit_code == 2 and message in bad.output, bad.output
    assert len(served) == 1  # nothing served on a bad option
    helped = CliRunner().invoke(app, ["dashboard", "--help"])
    assert helped.exit_code == 0 and "--run" in helped.output and "--lang" in helped.output


def test_report_from_loaded_data_equals_the_report_from_the_run(full_run, report, tmp_path):
    """Notebook 06 loads the run once for every language: the pages are those of a fresh load."""
    # Ids that differ between any two pages built in one process: Bokeh's model ids and
    # root uuids, Panel's numbered object names (Column00502) and the Python object ids
    # Panel writes into its widgets' tags.
    uuid = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    ids = re.compile(rf'(?<="tags":\[\[)\d{{6,}}|\bp\d{{4,}}\b|{uuid}|(?<=[A-Za-z])\d{{5}}\b')
    data = load_run_data(full_run)
    for lang in ("en", "pt-BR"):
        fresh = report(lang)  # write_report(full_run, …, lang=lang)
        shared = write_report(data, tmp_path / f"shared.{lang}.html", lang=lang)
        pages = [ids.sub("ID", expand_scripts(p.read_text())) for p in (fresh, shared)]
        assert f'<html lang="{lang}">' in pages[1]
        assert pages[0] == pages[1]
