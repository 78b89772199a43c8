"""The dashboard's page, login form, style and script (served by :mod:`guardian_lib.api.console`).

Kept as Python strings so that the package needs no data files and no build step. The
script only reads and writes the DOM through ``textContent`` (data from the API is never
parsed as HTML) and runs under a Content-Security-Policy without inline script: the
page hands it the session's facts and the labels as two JSON ``<script
type="application/json">`` blocks.
"""

from __future__ import annotations

import html
import json
from typing import Any

__all__ = ["LABELS", "CONSOLE_CSS", "CONSOLE_JS", "console_html", "login_html"]

#: Every text of the page, in English and Brazilian Portuguese.
LABELS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Network Guardian — operations",
        "login_title": "Sign in to Network Guardian",
        "name": "User name",
        "password": "Password",
        "sign_in": "Sign in",
        "invalid_credentials": "Unknown user or wrong password.",
        "rate_limited": "Too many failed attempts: wait a minute and try again.",
        "missing_fields": "Give your user name and password.",
        "cross_origin": "This form must be sent from this server's own page.",
        "form_too_large": "The form is too large.",
        "signed_in_as": "Signed in as {user} ({role}), {regions}",
        "all_regions": "all regions",
        "regions_of": "regions: {regions}",
        "logout": "Sign out",
        "analysis": "Analysis screens",
        "incidents": "Active incidents",
        "risk": "Risk queue, next 24 hours",
        "approvals": "Actions waiting for approval",
        "timeline": "Customer timeline",
        "incident_id": "Incident",
        "scope": "Where",
        "start": "Since",
        "severity": "Severity",
        "cause": "Probable cause",
        "affected": "Customers affected",
        "customer": "Customer",
        "onu": "ONU",
        "region": "Region",
        "risk_value": "Risk of a fault",
        "id": "No.",
        "when": "Proposed at",
        "time": "Time",
        "action": "Action",
        "target": "Device",
        "why": "Why",
        "decision": "Decision",
        "approve": "Approve",
        "reject": "Reject",
        "comment_placeholder": "Comment (required)",
        "comment_required": "Write a comment before approving or rejecting.",
        "approved_msg": "Action {id} approved: operate sends it at its next cycle.",
        "rejected_msg": "Action {id} rejected: it will not be sent.",
        "viewer_note": "Your role can read this queue but not decide.",
        "read_only": "This server shows a run read-only: there is no approval queue.",
        "nothing": "Nothing to show.",
        "customer_id": "Customer id",
        "show": "Show",
        "events": "Events",
        "predictions": "Predictions",
        "orders": "Service orders",
        "type": "Type",
        "updated": "Updated at {time}; refreshed every {s} s.",
        "error": "Error {status}: {detail}",
    },
    "pt-BR": {
        "title": "Network Guardian — operação",
        "login_title": "Entrar no Network Guardian",
        "name": "Usuário",
        "password": "Senha",
        "sign_in": "Entrar",
        "invalid_credentials": "Usuário desconhecido ou senha errada.",
        "rate_limited": "Tentativas demais: espere um minuto e tente de novo.",
        "missing_fields": "Informe usuário e senha.",
        "cross_origin": "Este formulário deve ser enviado pela página deste servidor.",
        "form_too_large": "O formulário é grande demais.",
        "signed_in_as": "Conectado como {user} ({role}), {regions}",
        "all_regions": "todas as regiões",
        "regions_of": "regiões: {regions}",
        "logout": "Sair",
        "analysis": "Telas de análise",
        "incidents": "Incidentes ativos",
        "risk": "Fila de risco, próximas 24 horas",
        "approvals": "Ações aguardando aprovação",
        "timeline": "Linha do tempo do cliente",
        "incident_id": "Incidente",
        "scope": "Onde",
        "start": "Desde",
        "severity": "Gravidade",
        "cause": "Causa provável",
        "affected": "Clientes afetados",
        "customer": "Cliente",
        "onu": "ONU",
        "region": "Região",
        "risk_value": "Risco de falha",
        "id": "Nº",
        "when": "Proposta em",
        "time": "Quando",
        "action": "Ação",
        "target": "Equipamento",
        "why": "Por quê",
        "decision": "Decisão",
        "approve": "Aprovar",
        "reject": "Rejeitar",
        "comment_placeholder": "Comentário (obrigatório)",
        "comment_required": "Escreva um comentário antes de aprovar ou rejeitar.",
        "approved_msg": "Ação {id} aprovada: o operate a envia no próximo ciclo.",
        "rejected_msg": "Ação {id} rejeitada: não será enviada.",
        "viewer_note": "Seu papel pode ver esta fila, mas não decidir.",
        "read_only": "Este servidor mostra uma execução só para leitura: não há fila de aprovação.",
        "nothing": "Nada a mostrar.",
        "customer_id": "Código do cliente",
        "show": "Mostrar",
        "events": "Eventos",
        "predictions": "Previsões",
        "orders": "Ordens de serviço",
        "type": "Tipo",
        "updated": "Atualizado às {time}; atualiza a cada {s} s.",
        "error": "Erro {status}: {detail}",
    },
}


def _json_block(element_id: str, data: Any) -> str:
    # "<" escaped so that no value can close the script element
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def login_html(lang: str, error: str | None = None) -> str:
    """The login page in ``lang``, with the message of ``error`` (a label key) if any."""
    lab = LABELS.get(lang, LABELS["en"])
    e = html.escape
    msg = f'<p class="error" data-testid="login-error">{e(lab[error])}</p>' if error else ""
    return f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(lab["login_title"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/console/app.css"></head>
<body class="login"><main>
<h1>{e(lab["login_title"])}</h1>{msg}
<form method="post" action="/login?lang={e(lang)}" autocomplete="on">
<label>{e(lab["name"])} <input name="name" autocomplete="username" required maxlength="64"></label>
<label>{e(lab["password"])} <input name="password" type="password"
 autocomplete="current-password" required maxlength="1024"></label>
<button type="submit" data-testid="sign-in">{e(lab["sign_in"])}</button>
</form></main></body></html>"""


def console_html(lang: str, boot: dict[str, Any]) -> str:
    """The dashboard page: empty sections the script fills."""
    lab = LABELS.get(lang, LABELS["en"])
    e = html.escape
    sections = "".join(
        f'<section id="{k}"><h2>{e(lab[k])}</h2><div class="body" data-testid="{k}"></div>'
        "</section>"
        for k in ("incidents", "approvals", "risk")
    )
    # the analysis screens cover every region: linked for users without a region scope
    analysis = (
        ""
        if boot.get("regions")
        else f'<a class="nav" href="/console/analysis?lang={e(lang)}" '
        f'data-testid="analysis-link">{e(lab["analysis"])}</a>'
    )
    return f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(lab["title"])}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,"><link rel="stylesheet" href="/console/app.css"></head>
<body><header><h1>{e(lab["title"])}</h1><span id="who" data-testid="who"></span>
{analysis}<button id="logout" data-testid="logout">{e(lab["logout"])}</button></header>
<p id="message" data-testid="message" role="status"></p>
<main>{sections}
<section id="timeline"><h2>{e(lab["timeline"])}</h2>
<form id="timeline-form"><label>{e(lab["customer_id"])}
<input id="customer" data-testid="customer-input" maxlength="128" required></label>
<button type="submit" data-testid="customer-show">{e(lab["show"])}</button></form>
<div class="body" data-testid="timeline"></div></section>
</main><footer id="updated" data-testid="updated"></footer>
{_json_block("boot", boot)}
{_json_block("labels", lab)}
<script src="/console/app.js"></script></body></html>"""


CONSOLE_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #1d2733; background: #f4f6f8; }
header { display: flex; gap: 1em; align-items: center; padding: .6em 1em;
  background: #12324f; color: #fff; }
header h1 { font-size: 1.2em; margin: 0; flex: 1; }
header a.nav { color: #fff; }
main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em;
  padding: 1em; }
section { background: #fff; border-radius: 6px; padding: .5em 1em 1em;
  box-shadow: 0 1px 3px rgba(0,0,0,.15); overflow-x: auto; }
h2 { font-size: 1.05em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .5em; border-bottom: 1px solid #e3e7eb;
  vertical-align: top; }
th { background: #eef2f6; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#message { margin: .5em 1em 0; min-height: 1.4em; font-weight: 600; }
#message.error, .error { color: #a4161a; }
footer { padding: 0 1em 1em; color: #5b6670; }
button { cursor: pointer; }
td input { width: 11em; max-width: 100%; box-sizing: border-box; }
button.approve { background: #2b7a3d; color: #fff; border: 0; padding: .25em .7em; }
button.reject { background: #a4161a; color: #fff; border: 0; padding: .25em .7em; }
button.link { background: none; border: 0; color: #0b5cad; text-decoration: underline;
  padding: 0; }
body.login main { display: block; max-width: 24em; margin: 4em auto; background: #fff;
  padding: 1em 2em 2em; border-radius: 6px; }
body.login label { display: block; margin: .8em 0; }
body.login input { display: block; width: 100%; padding: .3em; }
"""

CONSOLE_JS = r"""
"use strict";
(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = JSON.parse(document.getElementById("labels").textContent);
  const drafts = {};  // comments being typed survive a refresh
  function t(key, vars) {
    let s = L[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.split("{" + k + "}").join(String(v));
    return s;
  }
  function el(tag, props, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "text") n.textContent = v;
      else if (k.startsWith("on")) n.addEventListener(k.slice(2), v);
      else n.setAttribute(k, v);
    }
    for (const c of kids) if (c !== null && c !== undefined) n.append(c);
    return n;
  }
  const pct = new Intl.NumberFormat(boot.lang, {style: "percent", maximumFractionDigits: 0});
  const num = new Intl.NumberFormat(boot.lang);
  function when(v) {
    if (!v) return "–";
    const d = new Date(v);
    return isNaN(d) ? String(v) : d.toLocaleString(boot.lang, {timeZone: "UTC"}) + " UTC";
  }
  function say(text, isError) {
    const m = document.getElementById("message");
    m.textContent = text;
    m.className = isError ? "error" : "";
  }
  async function api(path, opts) {
    const o = Object.assign({credentials: "same-origin", headers: {}}, opts || {});
    if (o.method && o.method !== "GET") {
      o.headers["X-CSRF-Token"] = boot.csrf;
      o.headers["Content-Type"] = "application/json";
    }
    const r = await fetch("/api/v1" + path, o);
    if (r.status === 401) {
      location.href = "/login?lang=" + encodeURIComponent(boot.lang);
      throw new Error("session ended");
    }
    let body = {};
    try { body = await r.json(); } catch (e) { body = {}; }
    return {status: r.status, body: body};
  }
  function failure(res) {
    return t("error", {status: res.status, detail: (res.body && res.body.detail) || ""});
  }
  function table(cols, rows, testid) {
    if (!rows.length) return el("p", {text: t("nothing")});
    const head = el("tr", {}, ...cols.map(c => el("th", {text: t(c.label)})));
    const body = rows.map(r => el("tr", {"data-row": String(r.id ?? r.incident_id ?? "")},
      ...cols.map(c => {
        const v = c.cell(r);
        const td = el("td", c.num ? {class: "num"} : {});
        td.append(v instanceof Node ? v : document.createTextNode(v ?? "–"));
        return td;
      })));
    return el("table", {"data-testid": testid}, el("thead", {}, head), el("tbody", {}, ...body));
  }
  function fill(id, node) {
    const box = document.querySelector('[data-testid="' + id + '"]');
    box.replaceChildren(node);
  }

  async function incidents() {
    const res = await api("/incidents/active?lang=" + encodeURIComponent(boot.lang));
    if (res.status !== 200) return fill("incidents", el("p", {class: "error", text: failure(res)}));
    fill("incidents", table([
      {label: "incident_id", cell: r => r.incident_id},
      {label: "scope", cell: r => (r.scope_type || "") + " " + (r.scope_key || "")},
      {label: "start", cell: r => when(r.start_at)},
      {label: "severity", cell: r => r.severity_label},
      {label: "cause", cell: r => r.cause_label},
      {label: "affected", num: true,
       cell: r => r.affected_customers == null ? "–" : num.format(r.affected_customers)},
    ], res.body.items || [], "incident-table"));
  }
  async function risk() {
    const res = await api("/risk?window=24h&min=0.5&limit=20");
    if (res.status !== 200) return fill("risk", el("p", {class: "error", text: failure(res)}));
    fill("risk", table([
      {label: "customer", cell: r => r.customer_id ? el("button", {class: "link",
        text: r.customer_id, onclick: () => timeline(r.customer_id)}) : "–"},
      {label: "onu", cell: r => r.onu_id},
      {label: "region", cell: r => r.region},
      {label: "risk_value", num: true, cell: r => pct.format(r.risk)},
    ], res.body.items || [], "risk-table"));
  }
  async function decide(id, verdict) {
    const comment = (drafts[id] || "").trim();
    if (!comment) return say(t("comment_required"), true);
    const res = await api("/decisions/" + id + "/" + verdict,
      {method: "POST", body: JSON.stringify({comment: comment})});
    if (res.status === 200) {
      delete drafts[id];
      say(t(verdict === "approve" ? "approved_msg" : "rejected_msg", {id: id}), false);
    } else {
      say(failure(res), true);
    }
    await approvals(true);
  }
  function decisionCell(r) {
    if (!boot.can_decide) return "–";
    const input = el("input", {placeholder: t("comment_placeholder"), maxlength: "2000",
      "data-testid": "comment-" + r.id, oninput: e => { drafts[r.id] = e.target.value; }});
    input.value = drafts[r.id] || "";
    return el("span", {},
      input,
      el("button", {class: "approve", "data-testid": "approve-" + r.id, text: t("approve"),
                    onclick: () => decide(r.id, "approve")}),
      el("button", {class: "reject", "data-testid": "reject-" + r.id, text: t("reject"),
                    onclick: () => decide(r.id, "reject")}));
  }
  async function approvals(force) {
    const focus = document.activeElement;
    if (!force && focus && focus.closest && focus.closest('[data-testid="approvals"]')) return;
    const res = await api("/decisions?state=proposed&lang=" + encodeURIComponent(boot.lang));
    if (res.status === 409) return fill("approvals", el("p", {text: t("read_only")}));
    if (res.status !== 200) return fill("approvals", el("p", {class: "error", text: failure(res)}));
    const rows = res.body.items || [];
    const box = el("div", {});
    if (!boot.can_decide) box.append(el("p", {"data-testid": "viewer-note", text: t("viewer_note")}));
    box.append(table([
      {label: "id", cell: r => String(r.id)},
      {label: "when", cell: r => when(r.ts)},
      {label: "action", cell: r => r.action_label || r.action},
      {label: "target", cell: r => r.target},
      {label: "region", cell: r => r.region},
      {label: "why", cell: r => r.rationale_text || "–"},
      {label: "decision", cell: decisionCell},
    ], rows, "approval-table"));
    fill("approvals", box);
  }
  async function timeline(customerId) {
    document.getElementById("customer").value = customerId;
    const res = await api("/customers/" + encodeURIComponent(customerId) + "/timeline?limit=50");
    if (res.status !== 200) return fill("timeline", el("p", {class: "error", text: failure(res)}));
    const b = res.body;
    fill("timeline", el("div", {"data-customer": customerId},
      el("h3", {text: t("events")}),
      table([{label: "time", cell: r => when(r.ts)}, {label: "type", cell: r => r.type},
             {label: "target", cell: r => r.entity_id}], b.events || [], "timeline-events"),
      el("h3", {text: t("predictions")}),
      table([{label: "time", cell: r => when(r.ts)},
             {label: "risk_value", num: true, cell: r => r.risk_24h == null ? "–" :
               pct.format(r.risk_24h)}], b.predictions || [], "timeline-predictions"),
      el("h3", {text: t("orders")}),
      table([{label: "time", cell: r => when(r.created_at || r.ts)},
             {label: "type", cell: r => r.type || r.kind || r.status}],
            b.service_orders || [], "timeline-orders")));
  }
  async function refresh() {
    await Promise.all([incidents(), approvals(), risk()]);
    document.getElementById("updated").textContent = t("updated",
      {time: new Date().toLocaleTimeString(boot.lang), s: boot.refresh_s});
  }
  const regions = boot.regions.length ? t("regions_of", {regions: boot.regions.join(", ")})
                                      : t("all_regions");
  document.getElementById("who").textContent =
    t("signed_in_as", {user: boot.user, role: boot.role, regions: regions});
  document.getElementById("logout").addEventListener("click", async () => {
    await fetch("/logout", {method: "POST", credentials: "same-origin",
                            headers: {"X-CSRF-Token": boot.csrf}});
    location.href = "/login?lang=" + encodeURIComponent(boot.lang);
  });
  document.getElementById("timeline-form").addEventListener("submit", ev => {
    ev.preventDefault();
    const id = document.getElementById("customer").value.trim();
    if (id) timeline(id);
  });
  refresh();
  setInterval(refresh, Math.max(2, boot.refresh_s) * 1000);
})();
"""
