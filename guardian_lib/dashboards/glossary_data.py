"""The glossary's words: every metric, policy, action, value and rule a report names, in
en and pt-BR, and the valid range of each unit.

Data only; :mod:`guardian_lib.dashboards.glossary` formats with it (labels, numbers with
their unit, intervals clipped to the unit's range, rationales as sentences).
"""

from __future__ import annotations

from dataclasses import dataclass

from guardian_lib.i18n import normalize_lang

__all__ = [
    "ACTION_NAMES",
    "METRICS",
    "Metric",
    "POLICY_NAMES",
    "RATIONALE_WORDS",
    "RULE_TEXTS",
    "UNIT_RANGES",
    "VALUE_NAMES",
]

#: Units and their valid ranges ``(low, high)`` (``None``: unbounded).
UNIT_RANGES: dict[str, tuple[float | None, float | None]] = {
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
        "Total cost of operation (visits, calls, SLA credits, actions, churn risk)",
        "Custo total da operação (visitas, ligações, créditos de SLA, ações, risco de churn)",
    ),
    "deferred_repairs": _M(
        "count",
        "Faults only a visit ends, still unrepaired at the end of the run",
        "Falhas que só uma visita resolve, ainda sem reparo no fim da execução",
    ),
    "deferred_repairs_brl": _M(
        "brl",
        "Visits owed for the faults left unrepaired at the end",
        "Visitas devidas pelas falhas sem reparo no fim",
    ),
    "churn_cost_brl": _M(
        "brl",
        "Churn risk of the hours customers were down or degraded",
        "Risco de churn das horas em que os clientes ficaram sem serviço ou degradados",
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
    "wifi_changes": _M("count", "Remote Wi-Fi profile changes", "Trocas remotas de perfil Wi-Fi"),
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
    # the same, judged on each confirmed problem (the call held on it) rather than per decision
    "problem_massive_precision": _M(
        "share",
        "Problems called massive that were massive",
        "Problemas apontados como massivos que eram massivos",
    ),
    "problem_massive_recall": _M(
        "share",
        "Massive problems called massive",
        "Problemas massivos apontados como massivos",
    ),
    "problem_individual_precision": _M(
        "share",
        "Problems called individual that were individual",
        "Problemas apontados como individuais que eram individuais",
    ),
    "problem_individual_recall": _M(
        "share",
        "Individual problems called individual",
        "Problemas individuais apontados como individuais",
    ),
    "problem_unscored_calls": _M(
        "count",
        "Right calls on symptoms the confirmed problems leave out",
        "Acertos em sintomas fora dos problemas confirmados",
    ),
    "problem_masked": _M(
        "count",
        "Problems not scored (inside another problem of the same ONU)",
        "Problemas não avaliados (dentro de outro problema da mesma ONU)",
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

RATIONALE_WORDS: dict[str, tuple[str, str]] = {
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
