"""Glossary of the metrics a report shows: key → sentence label and unit, in en and pt-BR.

Every number a manager reads is named by a sentence from :data:`METRICS`, never by its
key (``savings_brl`` reads "Money saved on technician visits" / "Economia em visitas
técnicas"). The unit decides how a value is formatted (:func:`format_metric`) and which
range an interval must respect (:func:`format_interval`): a bound outside the range of
the quantity (a negative count of visits avoided, a share above 100 %) is clipped to
the range and the text says so.

Examples
--------
>>> metric_label("savings_brl", "pt-BR")
'Economia em visitas técnicas'
>>> format_metric("mttr_hours", 2.5, "pt-BR")
'2,50 h'
>>> format_interval("visits_avoided", -1.2, 3.4, "en")
'95% CI 0 – 3.4 (lower bound clipped at 0)'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from guardian_lib.i18n import (
    LABELS,
    format_money,
    format_number,
    format_pct,
    label,
    normalize_lang,
)

__all__ = [
    "cause_name",
    "severity_name",
    "Metric",
    "METRICS",
    "ACTION_NAMES",
    "RULE_TEXTS",
    "VALUE_NAMES",
    "value_name",
    "metric",
    "POLICY_NAMES",
    "metric_label",
    "metric_header",
    "policy_name",
    "format_metric",
    "clip_interval",
    "format_interval",
    "action_name",
    "rationale_text",
]

#: Units and their valid ranges ``(low, high)`` (``None``: unbounded).
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "count": (0.0, None),  # a count of things [-]
    "brl": (0.0, None),  # an amount that cannot be negative [R$]
    "brl_delta": (None, None),  # a difference of amounts (negative: costs more) [R$]
    "hours": (0.0, None),  # [h]
    "hours_delta": (None, None),  # [h]
    "minutes": (0.0, None),  # [min]
    "share": (0.0, 1.0),  # a share in [0, 1] shown as a percentage
    "pct": (None, 100.0),  # a percentage already multiplied by 100 (negative: worse)
    "ratio": (0.0, None),  # a ratio of two non-negative quantities [-]
    "pp_delta": (None, None),  # a change of a share, shown in percentage points
    "delta": (None, None),  # a difference of counts (negative: fewer)
}


@dataclass(frozen=True)
class Metric:
    """One glossary entry: the unit kind and a sentence in each language."""

    unit: str
    en: str
    pt: str

    def text(self, lang: str) -> str:
        """The sentence in ``lang``."""
        return self.pt if normalize_lang(lang) == "pt-BR" else self.en


_M = Metric
#: Every metric key a report may show (backtest KPIs, headline, operations, SLA).
METRICS: dict[str, Metric] = {
    # backtest KPIs (guardian_lib.kpis and the backtest's paired comparisons)
    "visits": _M("count", "Technician visits made", "Visitas técnicas realizadas"),
    "visits_avoided": _M("count", "Technician visits avoided", "Visitas técnicas evitadas"),
    "visits_avoided_per_month": _M(
        "delta", "Technician visits avoided per month", "Visitas técnicas evitadas por mês"
    ),
    "visits_avoided_vs_reactive_pct": _M(
        "pct",
        "Share of visits avoided compared with reactive operation",
        "Parcela de visitas evitadas em relação à operação reativa",
    ),
    "savings_brl": _M("brl", "Money saved on technician visits", "Economia em visitas técnicas"),
    "net_savings_brl": _M(
        "brl_delta",
        "Money saved on visits, net of the autopilot's own costs",
        "Economia em visitas, descontados os custos do piloto automático",
    ),
    "cost_saving_vs_reactive_brl": _M(
        "brl_delta",
        "Money saved compared with reactive operation",
        "Economia em relação à operação reativa",
    ),
    "saved_brl_per_month": _M(
        "brl_delta",
        "Money saved per month compared with reactive operation",
        "Economia por mês em relação à operação reativa",
    ),
    "total_cost_brl": _M(
        "brl",
        "Total cost of operation (visits, calls, SLA credits, actions)",
        "Custo total da operação (visitas, ligações, créditos de SLA, ações)",
    ),
    "sla_credits_brl": _M(
        "brl", "SLA credits paid to customers", "Créditos de SLA pagos aos clientes"
    ),
    "mttr_hours": _M("hours", "Mean time to repair", "Tempo médio de reparo"),
    "mttr_change_hours": _M(
        "hours_delta",
        "Change in mean time to repair compared with reactive operation",
        "Variação do tempo médio de reparo em relação à operação reativa",
    ),
    "mttr_ratio_vs_reactive": _M(
        "ratio",
        "Mean time to repair relative to reactive operation (below 1 is faster)",
        "Tempo médio de reparo relativo à operação reativa (abaixo de 1 é mais rápido)",
    ),
    "impact_hours": _M(
        "hours", "Customer-hours with service impact", "Horas-cliente com serviço afetado"
    ),
    "mttd_minutes": _M("minutes", "Mean time to detect a problem", "Tempo médio de detecção"),
    "detected_before_call_share": _M(
        "share",
        "Problems detected before the customer called",
        "Problemas detectados antes da ligação do cliente",
    ),
    "sla_availability": _M("share", "Service availability", "Disponibilidade do serviço"),
    "availability_change": _M(
        "pp_delta",
        "Change in service availability compared with reactive operation",
        "Variação da disponibilidade em relação à operação reativa",
    ),
    "reboots": _M("count", "Remote reboots", "Reinicializações remotas"),
    "reboot_success_rate": _M(
        "share", "Remote reboots that fixed the problem", "Reinicializações que resolveram"
    ),
    "visit_cancellations": _M("count", "Visits cancelled", "Visitas canceladas"),
    "visit_cancellation_rate": _M(
        "share", "Share of visits cancelled", "Parcela de visitas canceladas"
    ),
    "false_action_rate": _M(
        "share",
        "Actions that fixed nothing (failed reboots, visits with no fault)",
        "Ações que nada resolveram (reinicializações falhas, visitas sem defeito)",
    ),
    "wasted_visits": _M("count", "Visits that fixed nothing", "Visitas que nada resolveram"),
    "no_fault_found_share": _M(
        "share", "Visits with no fault found", "Visitas sem defeito constatado"
    ),
    "calls": _M("count", "Customer calls", "Ligações de clientes"),
    "contacts_per_sub_year": _M(
        "ratio",
        "Customer contacts per subscriber per year",
        "Contatos por assinante por ano",
    ),
    "notifications": _M("count", "Customers notified", "Clientes notificados"),
    "cases": _M("count", "Cases opened", "Casos abertos"),
    "episodes": _M("count", "Service-impact episodes", "Episódios de serviço afetado"),
    "decisions": _M("count", "Autopilot decisions", "Decisões do piloto automático"),
    "safety_violations": _M("count", "Safety-rule violations", "Violações das regras de segurança"),
    "rules_oracle_gap_share": _M(
        "share",
        "Share of the gap between fixed rules and a perfect oracle that is closed",
        "Parcela da distância entre regras fixas e um oráculo perfeito que é fechada",
    ),
    "massive_precision": _M(
        "share", "Massive-outage calls that were right", "Falhas massivas apontadas corretamente"
    ),
    "massive_recall": _M("share", "Massive outages recognised", "Falhas massivas reconhecidas"),
    "individual_precision": _M(
        "share",
        "Individual-fault calls that were right",
        "Falhas individuais apontadas corretamente",
    ),
    "individual_recall": _M(
        "share", "Individual faults recognised", "Falhas individuais reconhecidas"
    ),
    # run figures (headline and operations)
    "customers": _M("count", "Customers", "Clientes"),
    "onus": _M("count", "Customer terminals (ONUs)", "Terminais de cliente (ONUs)"),
    "incidents": _M("count", "Massive incidents", "Incidentes massivos"),
    "incidents_per_replication": _M(
        "count", "Massive incidents per replication", "Incidentes massivos por replicação"
    ),
    "service_orders_total": _M("count", "Service orders", "Ordens de serviço"),
    "visits_no_fault_found": _M(
        "count", "Visits with no fault found", "Visitas sem defeito constatado"
    ),
    "visit_cost_brl": _M("brl", "Cost of technician visits", "Custo das visitas técnicas"),
    # SLA and network KPIs (guardian_lib.sla)
    "availability": _M("share", "Service availability", "Disponibilidade do serviço"),
    "outages": _M("count", "Outages", "Quedas"),
    "outage_hours": _M("hours", "Time with an outage", "Tempo com queda"),
    "customer_hours": _M("hours", "Customers affected × hours", "Clientes afetados × horas"),
    "repeat_7d": _M("count", "Repeat faults within 7 days", "Falhas repetidas em até 7 dias"),
    "repeat_30d": _M("count", "Repeat faults within 30 days", "Falhas repetidas em até 30 dias"),
}

#: Names of the backtest's policies.
POLICY_NAMES: dict[str, tuple[str, str]] = {
    "reactive": ("Reactive operation", "Operação reativa"),
    "rules": ("Fixed rules", "Regras fixas"),
    "autopilot": ("Autopilot", "Piloto automático"),
    "oracle": ("Oracle (perfect knowledge)", "Oráculo (conhecimento perfeito)"),
}

#: Names of the autopilot's actions (``Decision.action`` / ``action_type``).
ACTION_NAMES: dict[str, tuple[str, str]] = {
    "reboot": ("Remote reboot", "Reinicialização remota"),
    "schedule_visit": ("Schedule a technician visit", "Agendar visita técnica"),
    "cancel_visit": ("Cancel a technician visit", "Cancelar visita técnica"),
    "hold_visits": ("Hold visits in the outage area", "Suspender visitas na área da falha"),
    "notify": ("Notify customers", "Avisar clientes"),
    "open_case": ("Open a case", "Abrir caso"),
    "close_case": ("Close a case", "Encerrar caso"),
    "open_incident": ("Open a massive incident", "Abrir incidente massivo"),
    "close_incident": ("Close a massive incident", "Encerrar incidente massivo"),
    "wait": ("Wait and watch", "Aguardar e observar"),
}

#: Values of enumerated columns (order status and outcome, action status, segment, reason).
VALUE_NAMES: dict[str, tuple[str, str]] = {
    "scheduled": ("scheduled", "agendada"),
    "cancelled": ("cancelled", "cancelada"),
    "completed": ("completed", "concluída"),
    "open": ("open", "aberta"),
    "no_fault_found": ("no fault found", "sem defeito constatado"),
    "customer_absent": ("customer absent", "cliente ausente"),
    "customer_power_off": ("customer's power off", "cliente sem energia"),
    "massive_outage": ("massive outage", "falha massiva"),
    "dead": ("device dead", "equipamento inoperante"),
    "wifi_interference": ("Wi-Fi interference", "interferência de Wi-Fi"),
    "hardware_failure": ("hardware failure", "falha de hardware"),
    "fibre_degradation": ("fibre degradation", "degradação da fibra"),
    "succeeded": ("succeeded", "bem-sucedida"),
    "failed": ("failed", "falhou"),
    "pending": ("pending", "pendente"),
    "done": ("done", "feita"),
    "blocked": ("blocked by a safety rule", "bloqueada por regra de segurança"),
    "residential": ("residential", "residencial"),
    "business": ("business", "empresarial"),
    "vip": ("VIP", "VIP"),
    "no_connection": ("no connection", "sem conexão"),
    "no_internet": ("no internet", "sem internet"),
    "slow_internet": ("slow internet", "internet lenta"),
    "wifi_problem": ("Wi-Fi problem", "problema de Wi-Fi"),
    "other": ("other", "outro"),
    # severities of incidents and events
    "critical": ("critical", "crítica"),
    "major": ("major", "alta"),
    "minor": ("minor", "baixa"),
    "warning": ("warning", "aviso"),
    "info": ("information", "informativa"),
}

#: The decision layer's rule texts (``rationale["rule"]``) and their translations.
RULE_TEXTS: dict[str, str] = {
    "massive probability above threshold with many neighbours affected": (
        "probabilidade de falha massiva acima do limite com muitos vizinhos afetados"
    ),
    "visits in a massive outage's area are held": "visitas na área de uma falha massiva suspensas",
    "tell customers of a massive outage": "avisar os clientes de uma falha massiva",
    "scope back and stable": "área restabelecida e estável",
    "back and stable": "restabelecido e estável",
    "merged into massive incident": "incorporado a um incidente massivo",
    "case back and stable": "caso restabelecido e estável",
    "case merged into massive incident": "caso incorporado a um incidente massivo",
    "individual_high_risk": "risco individual alto",
    # the safety rules that block an action (guardian_lib.decision.safety.RULES)
    "kill_switch": "parada de emergência",
    "empty_target": "alvo vazio",
    "maintenance_window": "janela de manutenção",
    "single_target": "um único alvo por reinicialização",
    "active_outage": "falha ativa na área",
    "circuit_breaker": "disjuntor de segurança",
    "reboot_cooldown": "intervalo mínimo entre reinicializações",
    "max_reboots_per_day": "máximo de reinicializações por dia",
    "pon_rate_cap": "limite de ações por PON",
    "fleet_rate_cap": "limite de ações na rede",
}

_RATIONALE_WORDS: dict[str, tuple[str, str]] = {
    "rule": ("Rule", "Regra"),
    "n_affected": ("customers affected", "clientes afetados"),
    "mean_p_massive": ("probability of a massive outage", "probabilidade de falha massiva"),
    "impacted_min": ("minutes with service affected", "minutos com serviço afetado"),
    "stable_min": ("minutes stable", "minutos estável"),
    "top_reasons": ("Main reasons", "Principais motivos"),
    "clipped": ("{side} bound clipped at {bound}", "limite {side} ajustado para {bound}"),
    "lower": ("lower", "inferior"),
    "upper": ("upper", "superior"),
    "ci95": ("95% CI", "IC 95%"),
}


def _word(key: str, lang: str) -> str:
    en, pt = _RATIONALE_WORDS[key]
    return pt if normalize_lang(lang) == "pt-BR" else en


def metric(key: str) -> Metric:
    """The glossary entry of ``key``.

    Raises
    ------
    KeyError
        ``key`` is not in the glossary (the message names it).
    """
    if key not in METRICS:
        raise KeyError(f"guardian_lib.dashboards.glossary: no metric {key!r} in METRICS")
    return METRICS[key]


def metric_label(key: str, lang: str = "en") -> str:
    """The sentence that names ``key`` in ``lang`` (see :data:`METRICS`)."""
    return metric(key).text(lang)


_UNIT_SUFFIX = {"hours": " (h)", "hours_delta": " (h)", "minutes": " (min)", "brl": " (R$)"}


def metric_header(key: str, lang: str = "en") -> str:
    """:func:`metric_label` with its unit, for a table column of plain numbers: ``"… (h)"``."""
    return metric_label(key, lang) + _UNIT_SUFFIX.get(metric(key).unit, "")


def _missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def format_metric(key: str, value: Any, lang: str = "en") -> str:
    """``value`` of metric ``key`` formatted by its unit and the locale (``–`` if missing)."""
    if _missing(value):
        return "–"
    unit = metric(key).unit
    v = float(value)
    if unit in ("brl", "brl_delta"):
        return format_money(v, lang)
    if unit == "share":
        return format_pct(v, lang, 2 if key in ("sla_availability", "availability") else 1)
    if unit == "pct":
        return format_number(v, lang, 1) + " %"
    if unit == "pp_delta":
        sign = "+" if v > 0 else ""
        return sign + format_number(100.0 * v, lang, 3) + " p.p."
    if unit in ("hours", "hours_delta"):
        return format_number(v, lang, 2) + " h"
    if unit == "minutes":
        return format_number(v, lang, 1) + " min"
    if unit == "ratio":
        return format_number(v, lang, 2)
    return format_number(v, lang, 0 if v.is_integer() or abs(v) >= 100 else 1)


def clip_interval(key: str, lo: Any, hi: Any) -> tuple[float, float]:
    """The bounds ``(lo, hi)`` of ``key``'s interval kept inside its unit's range. [unit of key]"""
    low, high = _RANGES[metric(key).unit]
    lo = float("nan") if _missing(lo) else float(lo)
    hi = float("nan") if _missing(hi) else float(hi)
    if low is not None:
        lo, hi = (
            (max(lo, low) if not math.isnan(lo) else lo),
            (max(hi, low) if not math.isnan(hi) else hi),
        )
    if high is not None:
        lo, hi = (
            (min(lo, high) if not math.isnan(lo) else lo),
            (min(hi, high) if not math.isnan(hi) else hi),
        )
    return lo, hi


def format_interval(key: str, lo: Any, hi: Any, lang: str = "en") -> str:
    """The 95 % interval of ``key`` as text, with bounds kept inside the quantity's range.

    A bound outside the range of the unit (e.g. below 0 for a count or an amount that
    cannot be negative, above 100 % for a share) is clipped (:func:`clip_interval`) and
    the text says so. Returns ``""`` when either bound is missing.
    """
    if _missing(lo) or _missing(hi):
        return ""
    low, high = _RANGES[metric(key).unit]
    c_lo, c_hi = clip_interval(key, lo, hi)
    notes = []
    if c_lo != float(lo) or c_hi != float(hi):
        for side, bound, was, now in (
            ("lower", low, float(lo), c_lo),
            ("upper", high, float(hi), c_hi),
        ):
            if was != now:
                notes.append(
                    _word("clipped", lang).format(
                        side=_word(side, lang),
                        bound=format_metric(key, bound if bound is not None else now, lang),
                    )
                )
    text = (
        f"{_word('ci95', lang)} {format_metric(key, c_lo, lang)} – {format_metric(key, c_hi, lang)}"
    )
    return text + (f" ({'; '.join(notes)})" if notes else "")


def policy_name(policy: Any, lang: str = "en") -> str:
    """A backtest policy's name in ``lang`` (unknown policies are returned as they are)."""
    pair = POLICY_NAMES.get(str(policy))
    if pair is None:
        return str(policy)
    return pair[1] if normalize_lang(lang) == "pt-BR" else pair[0]


def action_name(action: Any, lang: str = "en") -> str:
    """An autopilot action's name in ``lang`` (unknown actions are returned as they are)."""
    pair = ACTION_NAMES.get(str(action))
    if pair is None:
        return "–" if _missing(action) else str(action)
    return pair[1] if normalize_lang(lang) == "pt-BR" else pair[0]


def severity_name(severity: Any, lang: str = "en") -> str:
    """An incident's or event's severity (``major``, ``minor``, …) in ``lang``."""
    return value_name(severity, lang)


def cause_name(cause: Any, lang: str = "en") -> str:
    """An incident's probable cause in ``lang``.

    The decision layer's cause classes (``MASSIVE_OUTAGE``, ``EQUIPMENT_FAIL``, …) are
    labels of :mod:`guardian_lib.i18n` (where the screens read them too); any other value
    goes through :data:`VALUE_NAMES`, and an unknown one is returned as it is.
    """
    if _missing(cause):
        return "–"
    key = str(cause)
    if key.isupper() and key in LABELS["en"]:
        return label(key, lang)
    return value_name(key, lang)


def value_name(value: Any, lang: str = "en") -> str:
    """An enumerated value (status, outcome, segment, …) in ``lang``.

    ``fixed_<kind>`` reads "fixed: <kind>"; unknown values are returned as they are.
    """
    if _missing(value):
        return "–"
    v = str(value)
    pt = normalize_lang(lang) == "pt-BR"
    if v.startswith("fixed_"):
        kind = value_name(v[len("fixed_") :], lang)
        return f"resolvido: {kind}" if pt else f"fixed: {kind}"
    pair = VALUE_NAMES.get(v) or VALUE_NAMES.get(v.lower())
    return v if pair is None else pair[1 if pt else 0]


def _rule(text: str, lang: str) -> str:
    if normalize_lang(lang) == "pt-BR":
        return RULE_TEXTS.get(text, text)
    return text.replace("_", " ")


def rationale_text(rationale: Any, lang: str = "en") -> str:
    """A decision's rationale (JSON text or dict) as one readable sentence in ``lang``.

    The rule, the counts and probabilities it quotes and the main SHAP reasons
    (feature and contribution) become ``"Rule: …; 12 customers affected; Main reasons:
    rx_dbm_delta_24h (+0,80)"``; text that is not JSON is returned as it is.
    """
    if _missing(rationale) or rationale == "":
        return "–"
    if isinstance(rationale, str):
        try:
            obj = json.loads(rationale)
        except ValueError:
            return rationale
    else:
        obj = rationale
    if not isinstance(obj, dict):
        return str(obj)
    parts = []
    # ``blocked`` is where operate's approve mode wrote the rule of a blocked action
    # before both paths shared ``blocked_action``: audit files written then still read.
    rule = obj.get("rule") or obj.get("blocked")
    if rule:
        parts.append(f"{_word('rule', lang)}: {_rule(str(rule), lang)}")
    for key in ("n_affected", "impacted_min", "stable_min"):
        if isinstance(obj.get(key), (int, float)):
            v = float(obj[key])
            parts.append(f"{format_number(v, lang, 0 if v.is_integer() else 1)} {_word(key, lang)}")
    if isinstance(obj.get("mean_p_massive"), (int, float)):
        parts.append(f"{_word('mean_p_massive', lang)} {format_pct(obj['mean_p_massive'], lang)}")
    reasons = obj.get("top_reasons")
    if isinstance(reasons, list) and reasons:
        items = []
        for r in reasons[:3]:
            if isinstance(r, dict) and r.get("feature"):
                c = r.get("contribution")
                sign = "+" if isinstance(c, (int, float)) and c > 0 else ""
                c_txt = (
                    f" ({sign}{format_number(c, lang, 2)})" if isinstance(c, (int, float)) else ""
                )
                items.append(f"{r['feature']}{c_txt}")
        if items:
            parts.append(f"{_word('top_reasons', lang)}: {', '.join(items)}")
    known = {
        "rule",
        "blocked",
        "n_affected",
        "impacted_min",
        "stable_min",
        "mean_p_massive",
        "top_reasons",
    }
    for key, v in obj.items():
        if key not in known and isinstance(v, (str, int, float)) and not isinstance(v, bool):
            parts.append(f"{key.replace('_', ' ')}: {v}")
    return "; ".join(parts) if parts else "–"
