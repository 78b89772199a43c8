"""Alerts and notifications: rules, Alertmanager-style grouping, inhibition, silences,
routing, an outbox with real receivers (SMTP e-mail, signed webhooks) and customer notices.

* :mod:`.config` — the alerting file (rules, inhibit rules, routing tree, receivers);
* :mod:`.rules` — rule evaluation (``for:``, ``keep_firing_for``, resolution);
* :mod:`.silences` — silences in SQLite;
* :mod:`.dispatch` — inhibition, silences, routing, aggregation groups;
* :mod:`.outbox` and :mod:`.receivers` — delivery that survives restarts;
* :mod:`.notices` — customer notices (pt-BR, en);
* :mod:`.action_notices` — which autopilot action calls for which notice (operate, the
  twin and the replay share it); :mod:`.customers` — notices really sent by operate;
* :mod:`.replay` — what a run's history would have fired;
* :mod:`.drift` — model drift (PSI) as an alert source.
"""

from guardian_lib._lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    {
        "AlertingConfig": ".config",
        "load_alerting": ".config",
        "default_rules_path": ".config",
        "Alert": ".rules",
        "RuleEngine": ".rules",
        "Silence": ".silences",
        "SilenceStore": ".silences",
        "Dispatcher": ".dispatch",
        "Notification": ".dispatch",
        "Outbox": ".outbox",
        "EmailReceiver": ".receivers",
        "WebhookReceiver": ".receivers",
        "AlertPipeline": ".pipeline",
        "NoticePlanner": ".notices",
        "notices_for_outcome": ".action_notices",
        "CustomerNotifier": ".customers",
        "replay_run": ".replay",
        "DriftMonitor": ".drift",
    },
)
