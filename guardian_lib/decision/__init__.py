"""The autopilot's decision engine (docs/autopilot.md).

- :class:`Snapshot`, :class:`Decision` and the :class:`Policy` / :class:`Scorer` protocols;
- :class:`Observer` — observed per-ONU state from telemetry and events;
- :class:`RuleScorer` — transparent rules filling the model contract;
- :class:`PolicyBase` — case and incident lifecycle shared by the policies (subclass it
  for a new policy; it hands the policy its cases as :class:`Rows`, one array per
  column); :class:`RulesPolicy` — the product notes' rules; :class:`ExpectedCostPolicy` — least
  expected cost; :func:`make_autopilot` — scorer + policy, the ML scorer plugs in here;
- :mod:`~guardian_lib.decision.costs` — pure cost functions in R$;
- :class:`SafetyGuard` and :class:`AutopilotSettings` — limits and environment settings;
- :class:`Autopilot` — scorer → policy → safety → executors, audited.
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "ACTIONS": "._types",
        "CLASS_COLUMNS": "._types",
        "PREDICTION_COLUMNS": "._types",
        "PolicyBase": "._base",
        "Rows": "._columns",
        "Decision": "._types",
        "Snapshot": "._types",
        "Policy": "._types",
        "Scorer": "._types",
        "CostModel": ".costs",
        "Autopilot": ".engine",
        "ExpectedCostPolicy": ".expected_cost",
        "make_autopilot": ".expected_cost",
        "Observer": ".observe",
        "OutageEvidence": ".neighbours",
        "RulesPolicy": ".rules",
        "RuleScorer": ".scorer",
        "SafetyGuard": ".safety",
        "Verdict": ".safety",
        "RULES": ".safety",
        "AutopilotSettings": ".settings",
    },
)
