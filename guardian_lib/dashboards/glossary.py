"""Glossary of the metrics a report shows: key → sentence label and unit, in en and pt-BR.

Every number a manager reads is named by a sentence from :data:`METRICS`, never by its
key (``savings_brl`` reads "Money saved on technician visits" / "Economia em visitas
técnicas"). The unit decides how a value is formatted (:func:`format_metric`) and which
range an interval must respect (:func:`format_interval`): a bound outside the range of
the quantity (a negative count of visits avoided, a share above 100 %) is clipped to
the range and the text says so. The words themselves live in
:mod:`~guardian_lib.dashboards.glossary_data` (re-exported here); this module renders them.

Examples
--------
>>> metric_label("savings_brl", "pt-BR")
'Economia em visitas técnicas'
>>> format_metric("mttr_hours", 2.5, "pt-BR")
'2,50 h'
>>> format_interval("visits_avoided", -1.2, 3.4, "en")
'95% CI 0.0 – 3.4 (lower bound clipped at 0.0)'
"""

from __future__ import annotations

import json
import math
from typing import Any

from guardian_lib.dashboards.glossary_data import (
    ACTION_NAMES,
    METRICS,
    POLICY_NAMES,
    RATIONALE_WORDS,
    RULE_TEXTS,
    UNIT_RANGES,
    VALUE_NAMES,
    Metric,
)
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
    "format_estimate",
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


def _word(key: str, lang: str) -> str:
    en, pt = RATIONALE_WORDS[key]
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


#: Units shown in reais, and units whose decimals are fixed (the rest are counts).
_MONEY_UNITS = ("brl", "brl_delta")
_FIXED_UNITS = ("share", "pct", "pp_delta", "hours", "hours_delta", "minutes", "ratio")


def format_metric(key: str, value: Any, lang: str = "en", digits: int | None = None) -> str:
    """``value`` of metric ``key`` formatted by its unit and the locale (``–`` if missing).

    ``digits`` sets the decimals of an amount in reais (0: whole reais) and of a count
    (default: none for whole numbers and from 100 on, else one); other units keep theirs.
    """
    if _missing(value):
        return "–"
    unit = metric(key).unit
    v = float(value)
    if unit in _MONEY_UNITS:
        return format_money(v, lang, cents=digits is None or digits > 0)
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
    return format_number(v, lang, _count_digits(v) if digits is None else digits)


def _count_digits(*values: float) -> int:
    """Decimals of counts shown together: none when all are whole or any reaches 100. [-]"""
    return 0 if all(v.is_integer() for v in values) or max(abs(v) for v in values) >= 100 else 1


def clip_interval(key: str, lo: Any, hi: Any) -> tuple[float, float]:
    """The bounds ``(lo, hi)`` of ``key``'s interval kept inside its unit's range. [unit of key]"""
    low, high = UNIT_RANGES[metric(key).unit]
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


def format_interval(key: str, lo: Any, hi: Any, lang: str = "en", digits: int | None = None) -> str:
    """The 95 % interval of ``key`` as text, with bounds kept inside the quantity's range.

    A bound outside the range of the unit (e.g. below 0 for a count or an amount that
    cannot be negative, above 100 % for a share) is clipped (:func:`clip_interval`) and
    the text says so. Both bounds get the same decimals (``36.0 – 59.1``, not
    ``36 – 59.1``); ``digits`` as in :func:`format_metric`. Returns ``""`` when either
    bound is missing.
    """
    if _missing(lo) or _missing(hi):
        return ""
    low, high = UNIT_RANGES[metric(key).unit]
    c_lo, c_hi = clip_interval(key, lo, hi)
    if digits is None and metric(key).unit not in (*_MONEY_UNITS, *_FIXED_UNITS):
        digits = _count_digits(c_lo, c_hi)
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
                        bound=format_metric(key, bound if bound is not None else now, lang, digits),
                    )
                )
    lo_text, hi_text = (format_metric(key, b, lang, digits) for b in (c_lo, c_hi))
    text = f"{_word('ci95', lang)} {lo_text} – {hi_text}"
    return text + (f" ({'; '.join(notes)})" if notes else "")


def format_estimate(
    key: str, value: Any, lo: Any, hi: Any, lang: str = "en", whole_reais: bool = False
) -> tuple[str, str]:
    """An estimate of ``key`` and its 95 % interval as texts with the same decimals.

    Parameters
    ----------
    key : str
        Metric of the glossary.
    value, lo, hi : float or None
        Estimate and interval bounds [unit of key]; a missing bound gives ``""`` for the
        interval (:func:`format_interval`).
    lang : {'en', 'pt-BR'}
    whole_reais : bool, default False
        Amounts in whole reais (an estimate whose interval spans hundreds of reais). [-]

    Returns
    -------
    value_text, interval_text : str

    Examples
    --------
    >>> format_estimate("visits_avoided_per_month", 48.9, 36.0, 59.1)
    ('48.9', '95% CI 36.0 – 59.1')
    """
    unit = metric(key).unit
    digits = None
    if unit in _MONEY_UNITS:
        digits = 0 if whole_reais else None
    elif unit not in _FIXED_UNITS:
        shown = [float(v) for v in (value, lo, hi) if not _missing(v)]
        digits = _count_digits(*shown) if shown else None
    return format_metric(key, value, lang, digits), format_interval(key, lo, hi, lang, digits)


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
