"""The autopilot's decision engine (DESIGN.md §6).

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

from guardian_lib.decision._base import PolicyBase
from guardian_lib.decision._columns import Rows
from guardian_lib.decision._types import (
    ACTIONS,
    CLASS_COLUMNS,
    PREDICTION_COLUMNS,
    Decision,
    Policy,
    Scorer,
    Snapshot,
)
from guardian_lib.decision.costs import CostModel
from guardian_lib.decision.engine import Autopilot
from guardian_lib.decision.expected_cost import ExpectedCostPolicy, make_autopilot
from guardian_lib.decision.neighbours import OutageEvidence
from guardian_lib.decision.observe import Observer
from guardian_lib.decision.rules import RulesPolicy
from guardian_lib.decision.safety import RULES, SafetyGuard, Verdict
from guardian_lib.decision.scorer import RuleScorer
from guardian_lib.decision.settings import AutopilotSettings

__all__ = [
    "ACTIONS",
    "CLASS_COLUMNS",
    "PREDICTION_COLUMNS",
    "PolicyBase",
    "Rows",
    "Decision",
    "Snapshot",
    "Policy",
    "Scorer",
    "CostModel",
    "Autopilot",
    "ExpectedCostPolicy",
    "make_autopilot",
    "Observer",
    "OutageEvidence",
    "RulesPolicy",
    "RuleScorer",
    "SafetyGuard",
    "Verdict",
    "RULES",
    "AutopilotSettings",
]
