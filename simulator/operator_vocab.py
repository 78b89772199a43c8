"""What a Brazilian fibre ISP's systems call things: the vocabulary of the operator export.

:mod:`simulator.operator_export` writes a simulated run as an operator's own exports
(Portuguese column names, vendor alarm names, technicians' closure codes and notes). The
words live here, apart from the writer, so that the export and its example label map
(:data:`LABEL_MAP_YAML`) stay in step.
"""

from __future__ import annotations

__all__ = [
    "TZ",
    "TS_FORMAT",
    "ALARM_NAMES",
    "SEVERITY_NAMES",
    "ENTITY_NAMES",
    "CHANNELS",
    "REASON_NAMES",
    "CLOSURE_CODES",
    "CLOSED_AS",
    "NOTES",
    "CANCEL_CODES",
    "LABEL_MAP_YAML",
]

#: Local time zone of the operator's systems (no daylight saving time since 2019).
TZ = "America/Sao_Paulo"
#: How the operator's systems print a timestamp (local time).
TS_FORMAT = "%d/%m/%Y %H:%M:%S"

#: Vendor alarm name of each event type (the management system's wording).
ALARM_NAMES = {
    "LOS": "PERDA DE SINAL (LOS)",
    "DYING_GASP": "DYING GASP",
    "LINK_UP": "ONU ONLINE",
    "PPPOE_DOWN": "SESSAO PPPOE DERRUBADA",
    "PPPOE_UP": "SESSAO PPPOE ESTABELECIDA",
    "DHCP_FAIL": "FALHA DHCP",
    "HIGH_BER": "TAXA DE ERRO ELEVADA",
    "LOW_RX": "POTENCIA OPTICA BAIXA",
    "REBOOT": "REINICIO REMOTO",
    "BOOT": "ONU INICIALIZADA",
    "OLT_ALARM": "ALARME DE PLACA",
}
SEVERITY_NAMES = {
    "critical": "CRITICO",
    "major": "MAIOR",
    "minor": "MENOR",
    "warning": "ALERTA",
    "info": "INFORMATIVO",
    "clear": "NORMALIZADO",
}
ENTITY_NAMES = {"onu": "ONU", "olt": "OLT", "pon": "PON", "customer": "CLIENTE", "cpe": "CPE"}
#: Contact channels and their shares. [-]
CHANNELS = {"TELEFONE": 0.7, "WHATSAPP": 0.2, "APP": 0.1}
REASON_NAMES = {
    "no_connection": "SEM CONEXAO",
    "no_internet": "SEM NAVEGACAO",
    "slow_internet": "LENTIDAO",
    "wifi_problem": "PROBLEMA NO WIFI",
    "other": "OUTROS",
}

#: Closure codes a technician (or the NOC) picks for what was found, by fault kind;
#: ``no_fault`` when nothing was found. Abbreviations as technicians type them.
CLOSURE_CODES: dict[str, list[str]] = {
    "feeder_cut": ["ROMPIMENTO DE FIBRA", "ROMP. FIBRA", "FIBRA ROMPIDA - MASSIVA"],
    "box_fault": ["CTO DANIFICADA - MASSIVA", "MASSIVA CTO", "CX. ATEND. DANIFICADA"],
    "olt_board_failure": ["FALHA PLACA OLT - MASSIVA", "MASSIVA PLACA OLT"],
    "power_outage": ["QUEDA DE ENERGIA NA REGIAO - MASSIVA", "MASSIVA ENERGIA"],
    "upstream_failure": ["FALHA NO CONCENTRADOR (BNG)", "FALHA LINK BACKBONE", "LINK OPERADORA"],
    "cpe_hang": ["ROTEADOR TRAVADO - REINICIADO", "REINICIO DE EQUIPAMENTO", "ROTEADOR DO CLIENTE"],
    "wifi_interference": ["INTERFERENCIA WIFI - CANAL ALTERADO", "CONFIG. WI-FI", "ROTEADOR DO CLIENTE"],
    "customer_power_off": ["CLIENTE SEM ENERGIA", "CLIENTE S/ ENERGIA"],
    "hardware_failure": ["TROCA DE ONU", "TROCA ONU", "ONU QUEIMADA", "TROCA DE FONTE"],
    "fibre_degradation": ["ATENUACAO ALTA - DROP REFEITO", "CONECTOR SUJO", "TROCA DE DROP"],
    "no_fault": ["SEM DEFEITO CONSTATADO", "S/ DEFEITO", "SEM DEFEITO - CLIENTE ORIENTADO"],
}  # fmt: skip
#: Fault kinds a technician closes in the words of another: the fault of a street box
#: that serves one customer is repaired at that customer's drop (its port or connector in
#: the box), and is written up as a drop repair (INTERMITTENT in the label map, as in
#: ``faults_truth``).
CLOSED_AS = {"box_drop_fault": "fibre_degradation"}
#: Technicians' notes by what was found (some left empty by the export's noise).
NOTES: dict[str, list[str]] = {
    "feeder_cut": ["pon toda em los, fibra rompida na rua, equipe de rede acionada",
                   "rompimento de fibra no poste, emenda feita"],
    "box_fault": ["cto com defeito, varios clientes sem sinal", "caixa de atendimento quebrada"],
    "olt_board_failure": ["placa da olt em falha, noc ciente"],
    "power_outage": ["falta de energia no bairro (massiva)", "sem energia na regiao"],
    "upstream_failure": ["sinal optico ok, sem autenticacao. falha no concentrador",
                         "link da operadora caiu, noc acionado"],
    "cpe_hang": ["roteador travado, reiniciado e testado ok", "equipamento reiniciado, navegacao ok"],
    "wifi_interference": ["interferência no wi-fi, canal alterado p/ 1",
                          "wifi fraco, roteador reposicionado"],
    "customer_power_off": ["imóvel sem energia, não foi possível testar", "cliente sem energia"],
    "hardware_failure": ["onu sem sinal, substituída", "onu queimada, troca feita, sinal ok",
                         "fonte da onu queimada, trocada"],
    "fibre_degradation": ["potência rx -29 dBm, drop refeito", "conector sujo, feita limpeza",
                          "curvatura no drop, refeito"],
    "no_fault": ["testado ok no local", "navegação normal no momento da visita",
                 "cliente orientado, testes ok"],
}  # fmt: skip
#: Closure codes of a service order cancelled before the visit.
CANCEL_CODES = {
    "resolved_before_visit": "CANCELADA - CLIENTE NORMALIZADO",
    "other": "CANCELADA",
}

#: The example label map written with every export (see docs of the label map).
LABEL_MAP_YAML = """\
# Which closure codes and technicians' notes mean which cause class.
# Regular expressions, case- and accent-insensitive ("conexão" matches "CONEXAO").
# A ticket matching no class is reported as unlabelled, one matching several as
# contradictory; neither is used for training.
fields: [closure_code, notes]
classes:
  MASSIVE_OUTAGE:
    - "ROMP(IMENTO|\\\\.)? ?(DE )?FIBRA"
    - "FIBRA ROMPIDA"
    - "MASSIVA"
    - "CTO (DANIFICADA|COM DEFEITO)"
    - "CX\\\\.? ATEND"
    - "PLACA (DA )?OLT"
    - "(FALTA|QUEDA) DE ENERGIA N[AO] (BAIRRO|REGIAO)"
    - "SEM ENERGIA NA REGIAO"
  EXTERNAL_NETWORK:
    - "CONCENTRADOR"
    - "BNG"
    - "LINK (BACKBONE|OPERADORA|DA OPERADORA)"
  EQUIPMENT_FAIL:
    - "TROCA (DE )?ONU"
    - "ONU QUEIMADA"
    - "ONU SEM SINAL, SUBSTITU"
    - "TROCA (DE )?FONTE"
    - "FONTE DA ONU"
  INTERMITTENT:
    - "ATENUACAO"
    - "CONECTOR SUJO"
    - "DROP"
    - "CURVATURA"
  CUSTOMER_PREMISES:
    - "ROTEADOR"
    - "REINICI"
    - "WI-?FI"
    - "CLIENTE S(EM|/) ?ENERGIA"
    - "IMOVEL SEM ENERGIA"
  NO_FAULT:
    - "S(EM|/) ?DEFEITO"
    - "TESTADO OK NO LOCAL"
    - "NAVEGACAO NORMAL"
    - "TESTES OK"
ignore:
  - "CANCELAD"
lookback_hours: 12
massive_scope: pon
# ONU alarms that say what happened without a ticket: a dying gasp is the ONU losing
# power at the premises (not the operator's fault, so not counted as a risk event).
events:
  DYING_GASP: {class: CUSTOMER_PREMISES, service_affecting: false}
"""
