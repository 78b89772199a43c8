"""Turn allowed decisions into calls on the injected clients.

In ``simulate`` mode nothing outside is called: every action is answered with status
``simulated``. In ``execute`` mode the dispatcher calls the :mod:`clients
<guardian_lib.actions.clients>` it was given; a missing client or a client error gives
status ``failed`` with the error text (never an exception that stops the autopilot).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from guardian_lib.actions.clients import DeviceClient, FieldClient, Notifier

if TYPE_CHECKING:  # pragma: no cover - avoids a cycle with guardian_lib.decision
    from guardian_lib.decision._types import Decision

__all__ = ["ActionResult", "Dispatcher"]


@dataclass
class ActionResult:
    """Outcome of one action on one target (a row of ``actions``).

    Attributes
    ----------
    action_type, target, status : str
        ``status`` is ``simulated``, ``done``, ``pending`` (e.g. a reboot awaiting
        verification), ``failed`` or ``blocked``.
    started_at, finished_at : pandas.Timestamp
    result : dict
    error : str or None
    ref : str or None
        Identifier created by the action (e.g. the service-order id of a visit).
    """

    action_type: str
    target: str
    status: str
    started_at: pd.Timestamp
    finished_at: pd.Timestamp | None = None
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    ref: str | None = None


class Dispatcher:
    """Executes device, field and notification actions.

    Parameters
    ----------
    mode : {'simulate', 'execute'}
    devices : DeviceClient, optional
    field_ops : FieldClient, optional
    notifier : Notifier, optional
    """

    def __init__(
        self,
        mode: str = "simulate",
        devices: DeviceClient | None = None,
        field_ops: FieldClient | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        if mode not in ("simulate", "execute"):
            raise ValueError(f"Dispatcher: mode must be 'simulate' or 'execute', got {mode!r}")
        self.mode = mode
        self.devices = devices
        self.field_ops = field_ops
        self.notifier = notifier

    def execute(self, decision: Decision, at: pd.Timestamp | None = None) -> list[ActionResult]:
        """Run ``decision`` on each of its targets.

        Parameters
        ----------
        decision : Decision
            An allowed decision of a device or field action.
        at : pandas.Timestamp, optional
            Execution time (the safety layer's jittered time); ``decision.ts`` if None.

        Returns
        -------
        list of ActionResult
            One per target.
        """
        at = decision.ts if at is None else at
        out = []
        for target in decision.targets:
            if self.mode == "simulate":
                out.append(ActionResult(decision.action, str(target), "simulated", at, at))
                continue
            try:
                out.append(self._run(decision, str(target), at))
            except Exception as exc:  # noqa: BLE001 - a client error must not stop the loop
                out.append(
                    ActionResult(
                        decision.action, str(target), "failed", at, at,
                        error=f"{decision.action} on {target}: {type(exc).__name__}: {exc}",
                    )
                )  # fmt: skip
        return out

    def _need(self, client: Any, name: str, action: str) -> Any:
        if client is None:
            raise RuntimeError(f"execute mode: no {name} client injected for {action!r}")
        return client

    def _run(self, d: Decision, target: str, at: pd.Timestamp) -> ActionResult:
        a = d.action
        if a == "reboot":
            answer = self._need(self.devices, "device", a).reboot(target)
            status = getattr(answer, "status", None)
            return ActionResult(
                a, target, "pending", at, None, result={"acs": str(status if status else answer)}
            )
        if a == "change_wifi_profile":
            dev = self._need(self.devices, "device", a)
            if not hasattr(dev, "change_wifi_profile"):
                raise RuntimeError(f"device client {type(dev).__name__} cannot change Wi-Fi")
            answer = dev.change_wifi_profile(target)
            return ActionResult(a, target, "done", at, at, result={"acs": str(answer)})
        if a == "schedule_visit":
            fc = self._need(self.field_ops, "field", a)
            # A call-ahead ("is your power on?") goes with the order only when asked for,
            # so a field client without the keyword keeps working for other visits.
            ask = d.params.get("confirm_question") if d.params.get("confirm_first") else None
            os_id = fc.open_visit(target, d.params.get("reason", "autopilot"),
                                  d.params.get("priority", "normal"),
                                  **({"confirm": str(ask)} if ask else {}))  # fmt: skip
            result = {"os_id": os_id, **({"confirm_first": str(ask)} if ask else {})}
            return ActionResult(a, target, "done", at, at, result=result, ref=os_id)
        if a in ("cancel_visit", "hold_visits"):
            fc = self._need(self.field_ops, "field", a)
            ok = bool(fc.cancel_visit(target, "held_massive" if a == "hold_visits" else a))
            return ActionResult(a, target, "done" if ok else "failed", at, at,
                                result={"cancelled": ok},
                                error=None if ok else f"{target}: order not open")  # fmt: skip
        if a == "notify":
            nt = self._need(self.notifier, "notifier", a)
            ok = bool(nt.notify(target, d.params.get("template", "generic"),
                                float(d.params.get("until_h", 6.0))))  # fmt: skip
            return ActionResult(a, target, "done" if ok else "failed", at, at,
                                result={"template": d.params.get("template", "generic")})  # fmt: skip
        raise ValueError(f"Dispatcher: action {a!r} is not executable")
