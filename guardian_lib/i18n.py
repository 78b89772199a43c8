"""Labels in English and Brazilian Portuguese, and locale-aware number, money and date formats.

Dashboards, reports and notebooks take a ``lang`` (``"en"`` or ``"pt-BR"``) and ask this
module for every visible word, so a screen never mixes languages. Money is in R$ in both
languages; Babel formats it as the reader expects (``R$ 1.234,56`` in pt-BR,
``R$1,234.56`` in en), and dates as dd/mm/aaaa in pt-BR.

Examples
--------
>>> format_money(1234.56, "pt-BR").replace("\\xa0", " ")
'R$ 1.234,56'
>>> format_date("2026-01-05T13:00:00Z", "pt-BR")
'05/01/2026'
>>> label("risk_queue", "pt-BR")
'Fila de risco'
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import pandas as pd
from babel import Locale
from babel.numbers import format_currency, format_decimal, format_percent

__all__ = [
    "LANGS",
    "LABELS",
    "normalize_lang",
    "label",
    "format_money",
    "format_number",
    "format_pct",
    "format_date",
    "format_datetime",
]

#: Supported languages and their Babel locales.
LANGS: dict[str, str] = {"en": "en_US", "pt-BR": "pt_BR"}

#: Every visible label, by key: ``{key: (english, portuguese)}``.
_PAIRS: dict[str, tuple[str, str]] = {
    # screens
    "app_title": ("Network Guardian", "Network Guardian"),
    "noc_overview": ("NOC overview", "Visão geral do NOC"),
    "risk_queue": ("Risk queue", "Fila de risco"),
    "customer_dossier": ("Customer dossier", "Dossiê do cliente"),
    "kpis_savings": ("KPIs & savings", "KPIs e economia"),
    "explainability": ("Explainability", "Explicabilidade"),
    "optical_matrix": ("Optical signal & device health", "Sinal óptico e saúde dos equipamentos"),
    # generic
    "run": ("Run", "Execução"),
    "generated_at": ("Generated at", "Gerado em"),
    "period": ("Period", "Período"),
    "not_computed": (
        "Not computed for this run yet",
        "Ainda não calculado para esta execução",
    ),
    "not_computed_hint": ("Missing: {what}. Run: {how}", "Falta: {what}. Execute: {how}"),
    # notes on a run whose inventory lacks a table or a column (an operator's own data)
    "data_notes": ("Data notes", "Observações sobre os dados"),
    "note_no_coordinates": ("no coordinates: map hidden", "sem coordenadas: mapa oculto"),
    "note_no_olts": (
        "no OLT table: OLTs taken from the ONUs, regions unknown",
        "sem tabela de OLTs: OLTs obtidas das ONUs, regiões desconhecidas",
    ),
    "note_no_pons": (
        "no PON table: PONs taken from the ONUs, slot/port unknown",
        "sem tabela de PONs: PONs obtidas das ONUs, slot/porta desconhecidos",
    ),
    "note_no_customers": (
        "no customer table: one customer per ONU, named by the ONU; plan and segment unknown",
        "sem tabela de clientes: um cliente por ONU, com o nome da ONU; plano e segmento "
        "desconhecidos",
    ),
    "note_no_events": (
        "no events (alarms, calls): event features and timelines are empty",
        "sem eventos (alarmes, chamadas): atributos e linhas do tempo de eventos vazios",
    ),
    "note_no_service_orders": (
        "no service orders (tickets): visits and their costs are not counted",
        "sem ordens de serviço: visitas e seus custos não são contados",
    ),
    "all": ("All", "Todos"),
    "none": ("None", "Nenhum"),
    "yes": ("yes", "sim"),
    "no": ("no", "não"),
    "count": ("count", "quantidade"),
    "time": ("time", "horário"),
    "value": ("value", "valor"),
    "share": ("share", "proporção"),
    # NOC overview
    "devices": ("Devices", "Equipamentos"),
    "online": ("Online", "Online"),
    "offline": ("Offline", "Offline"),
    "degraded": ("Degraded", "Degradado"),
    "no_data": ("No data", "Sem dados"),
    "status": ("status", "situação"),
    "last_reading": ("Last reading", "Última leitura"),
    "online_over_time": ("ONUs online over time", "ONUs online ao longo do tempo"),
    "active_incidents": ("Massive incidents", "Incidentes massivos"),
    "open_incidents": ("Open incidents", "Incidentes abertos"),
    "offline_heatmap": (
        "Offline share in the last 24 h by OLT and PON",
        "Proporção offline nas últimas 24 h por OLT e PON",
    ),
    "offline_tree": (
        "Offline share in the last 24 h: region → OLT → PON",
        "Proporção offline nas últimas 24 h: região → OLT → PON",
    ),
    "customer_map": (
        "Customers by status (last reading)",
        "Clientes por situação (última leitura)",
    ),
    "failure_rate_24h": (
        "Failure events per hour, last 24 h",
        "Eventos de falha por hora, últimas 24 h",
    ),
    "events_per_hour": ("events per hour", "eventos por hora"),
    "latitude": ("latitude", "latitude"),
    "longitude": ("longitude", "longitude"),
    "olt": ("OLT", "OLT"),
    "pon": ("PON", "PON"),
    "box": ("box", "caixa"),
    "region": ("region", "região"),
    "offline_share": ("offline share", "proporção offline"),
    # risk queue
    "customer": ("customer", "cliente"),
    "plan": ("plan", "plano"),
    "segment": ("segment", "segmento"),
    "vip_only": ("VIP only", "Somente VIP"),
    "recurrent_only": (
        "Recurrent only (2+ contacts in 30 days)",
        "Somente recorrentes (2+ contatos em 30 dias)",
    ),
    "recurrence": ("contacts 30 d", "contatos 30 d"),
    "risk_2h": ("risk 2 h", "risco 2 h"),
    "risk_6h": ("risk 6 h", "risco 6 h"),
    "risk_24h": ("risk 24 h", "risco 24 h"),
    "anomaly": ("anomaly", "anomalia"),
    "probable_cause": ("probable cause", "causa provável"),
    "rows_shown": ("{n} of {total} customers", "{n} de {total} clientes"),
    "scored_at": ("Scored at", "Pontuado em"),
    "static_filter_note": (
        "in this file the filters apply to the {n} customers with the highest risk",
        "neste arquivo os filtros se aplicam aos {n} clientes de maior risco",
    ),
    # causes
    "MASSIVE_OUTAGE": ("massive outage", "falha massiva"),
    "CUSTOMER_PREMISES": ("customer premises", "instalação do cliente"),
    "EQUIPMENT_FAIL": ("equipment failure", "falha de equipamento"),
    "EXTERNAL_NETWORK": ("external network", "rede externa"),
    "INTERMITTENT": ("intermittent", "intermitente"),
    "UNKNOWN": ("unknown", "desconhecida"),
    # dossier
    "choose_customer": ("Customer", "Cliente"),
    "telemetry_recent": ("Recent telemetry", "Telemetria recente"),
    "events_timeline": ("Events", "Eventos"),
    "decisions": ("Decisions", "Decisões"),
    "actions": ("Actions", "Ações"),
    "shap_reasons": ("Top reasons (SHAP)", "Principais motivos (SHAP)"),
    "service_orders": ("Service orders", "Ordens de serviço"),
    "rationale": ("rationale", "justificativa"),
    "action": ("action", "ação"),
    "result": ("result", "resultado"),
    "confidence": ("confidence", "confiança"),
    "feature": ("feature", "variável"),
    "contribution": ("contribution", "contribuição"),
    "model": ("model", "modelo"),
    "rx_dbm": ("ONU RX [dBm]", "RX da ONU [dBm]"),
    "tx_dbm": ("ONU TX [dBm]", "TX da ONU [dBm]"),
    "latency_ms": ("latency [ms]", "latência [ms]"),
    "event_type": ("event type", "tipo de evento"),
    "os_id": ("order", "ordem"),
    "opened_at": ("opened at", "aberta em"),
    "reason": ("reason", "motivo"),
    "outcome": ("outcome", "desfecho"),
    "target": ("target", "alvo"),
    # KPIs
    "operations": ("Operations in this run", "Operação nesta execução"),
    "customers": ("Customers", "Clientes"),
    "onus": ("ONUs", "ONUs"),
    "calls": ("Customer calls", "Ligações de clientes"),
    "visits": ("Technician visits", "Visitas técnicas"),
    "visits_no_fault_found": ("Visits with no fault found", "Visitas sem defeito constatado"),
    "visit_cost_brl": ("Cost of visits", "Custo das visitas"),
    "service_orders_total": ("Service orders", "Ordens de serviço"),
    "autopilot_kpis": ("Autopilot KPIs (backtest)", "KPIs do piloto automático (backtest)"),
    "policy_comparison": (
        "Policy comparison (mean, 95% CI)",
        "Comparação de políticas (média, IC 95%)",
    ),
    "policy": ("policy", "política"),
    "metric": ("metric", "métrica"),
    "mean": ("mean", "média"),
    "ci95": ("95% CI", "IC 95%"),
    "visits_avoided": ("Visits avoided", "Visitas evitadas"),
    "savings_brl": ("Saved", "Economia"),
    "net_savings_brl": ("Net saved", "Economia líquida"),
    "cost_saving_vs_reactive_brl": ("Saved vs reactive", "Economia vs reativo"),
    "mttr_hours": ("MTTR [h]", "MTTR [h]"),
    "mttd_minutes": ("MTTD [min]", "MTTD [min]"),
    "sla_availability": ("SLA availability", "Disponibilidade (SLA)"),
    "false_action_rate": ("False-positive rate", "Taxa de falsos positivos"),
    "total_cost_brl": ("Total cost", "Custo total"),
    "reboots": ("Reboots", "Reinicializações"),
    "wasted_visits": ("Wasted visits", "Visitas improdutivas"),
    "sla_by_region": ("SLA availability by region", "Disponibilidade por região"),
    "sla_network": ("SLA and network KPIs", "SLA e indicadores da rede"),
    "sla_level_network": ("Whole network", "Rede inteira"),
    "sla_level_region": ("By region", "Por região"),
    "sla_level_olt": ("By OLT", "Por OLT"),
    "sla_level_pon": ("By PON", "Por PON"),
    "sla_worst": ("the {n} with the lowest availability", "as {n} de menor disponibilidade"),
    "sla_scope_network": ("scope", "escopo"),
    "sla_scope_region": ("region", "região"),
    "sla_scope_olt": ("OLT", "OLT"),
    "sla_scope_pon": ("PON", "PON"),
    # explainability
    "global_importance": ("Global SHAP importance", "Importância global (SHAP)"),
    "reason_frequency": (
        "Most frequent reasons in predictions",
        "Motivos mais frequentes nas previsões",
    ),
    "decision_reasons": ("Reasons of recent decisions", "Motivos das decisões recentes"),
    "mean_abs_shap": ("mean |SHAP|", "média |SHAP|"),
    # optical / health
    "optical_matrix_title": (
        "ONU RX per PON (last reading; degraded below {threshold} dBm)",
        "RX das ONUs por PON (última leitura; degradada abaixo de {threshold} dBm)",
    ),
    "onu_index": ("ONU index", "índice da ONU"),
    "firmware": ("Firmware distribution", "Distribuição de firmware"),
    "frequent_reboots": ("CPEs with frequent reboots", "CPEs com reinicializações frequentes"),
    "session_errors": ("PPPoE / DHCP errors", "Erros de PPPoE / DHCP"),
    "degraded_onus": ("Degraded ONUs", "ONUs degradadas"),
    "vendor": ("vendor", "fabricante"),
}

LABELS: dict[str, dict[str, str]] = {
    "en": {k: v[0] for k, v in _PAIRS.items()},
    "pt-BR": {k: v[1] for k, v in _PAIRS.items()},
}


def normalize_lang(lang: str | None) -> str:
    """Canonical language code.

    Parameters
    ----------
    lang : str or None
        ``"en"``, ``"pt-BR"``, or a spelling of them (``"pt_BR"``, ``"pt"``, ``"EN"``);
        ``None`` means English.

    Returns
    -------
    str
        ``"en"`` or ``"pt-BR"``.

    Raises
    ------
    ValueError
        Another language (the message lists the supported ones).
    """
    if lang is None:
        return "en"
    key = str(lang).strip().replace("_", "-").lower()
    if key in ("en", "en-us", "en-gb"):
        return "en"
    if key in ("pt-br", "pt"):
        return "pt-BR"
    raise ValueError(f"lang must be one of {sorted(LANGS)}, got {lang!r}")


def label(key: str, lang: str = "en", **fmt: Any) -> str:
    """The label ``key`` in ``lang``, with ``{placeholders}`` filled from ``fmt``.

    Raises
    ------
    KeyError
        Unknown key (the message names it).
    """
    table = LABELS[normalize_lang(lang)]
    if key not in table:
        raise KeyError(f"guardian_lib.i18n: no label {key!r}")
    text = table[key]
    return text.format(**fmt) if fmt else text


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_money(amount_brl: float | None, lang: str = "en", cents: bool = True) -> str:
    """An amount in Brazilian reais: ``R$ 1.234,56`` (pt-BR) or ``R$1,234.56`` (en).

    Parameters
    ----------
    amount_brl : float or None
        Amount. [R$]; ``None`` or NaN gives ``"–"``.
    cents : bool, default True
        False rounds to whole reais (``R$ 1.235``): for estimates, whose interval is wider
        than a real, the cents are noise. [-]
    """
    if _missing(amount_brl):
        return "–"
    loc = LANGS[normalize_lang(lang)]
    if cents:
        return format_currency(float(amount_brl), "BRL", locale=loc)
    # The locale's own pattern (symbol, spacing, sign) without its fraction digits.
    pattern = Locale.parse(loc).currency_formats["standard"].pattern.replace(".00", "")
    return format_currency(float(amount_brl), "BRL", format=pattern, locale=loc,
                           currency_digits=False)  # fmt: skip


def format_number(value: float | None, lang: str = "en", digits: int = 0) -> str:
    """A number with the locale's separators and ``digits`` decimals (``"–"`` if missing)."""
    if _missing(value):
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(float(value), format=pattern, locale=LANGS[normalize_lang(lang)])


def format_pct(share: float | None, lang: str = "en", digits: int = 1) -> str:
    """A share in [0, 1] as a percentage (``0.125`` → ``12.5%`` / ``12,5%``)."""
    if _missing(share):
        return "–"
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "") + "%"
    return format_percent(float(share), format=pattern, locale=LANGS[normalize_lang(lang)])


def _ts(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def format_date(value: str | date | datetime | pd.Timestamp, lang: str = "en") -> str:
    """A date: ``dd/mm/aaaa`` in pt-BR, ``YYYY-MM-DD`` in en (UTC)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    ts = _ts(value)
    return ts.strftime("%d/%m/%Y") if normalize_lang(lang) == "pt-BR" else ts.strftime("%Y-%m-%d")


def format_datetime(value: str | date | datetime | pd.Timestamp, lang: str = "en") -> str:
    """A UTC date and time: ``dd/mm/aaaa HH:MM UTC`` in pt-BR, ``YYYY-MM-DD HH:MM UTC`` in en."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    ts = _ts(value)
    pattern = "%d/%m/%Y %H:%M" if normalize_lang(lang) == "pt-BR" else "%Y-%m-%d %H:%M"
    return ts.strftime(pattern) + " UTC"
