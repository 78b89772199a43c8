"""The label map: which closure codes and technicians' notes mean which cause class.

A label map (YAML, :class:`LabelMap`, documented in ``docs/models.md``) gives, for each
cause class, regular expressions searched in a closed ticket's closure code and notes;
matching ignores case and accents. :func:`classify_tickets` applies it: a ticket matched by
exactly one class is *labelled*, by several *contradictory*, by none *unlabelled*, by an
``ignore`` pattern only *ignored* — never guessed. :mod:`guardian_lib.labels_tickets` turns
the labelled tickets into training labels.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from guardian_lib.errors import ConfigError, validation_message
from guardian_lib.safe_yaml import load_yaml
from guardian_lib.schema import CAUSE_CLASSES, EVENT_TYPES

__all__ = [
    "NO_FAULT",
    "LABEL_CLASSES",
    "EventRule",
    "LabelMap",
    "load_label_map",
    "normalize_text",
    "classify_tickets",
]

#: The class of a ticket whose technician found nothing wrong.
NO_FAULT = "NO_FAULT"
#: Classes a label map may name: the cause classes a technician can see, plus NO_FAULT
#: (UNKNOWN is what is left when nothing explains a symptom, never a ticket's class).
LABEL_CLASSES = tuple(c for c in CAUSE_CLASSES if c != "UNKNOWN") + (NO_FAULT,)


def normalize_text(text: Any) -> str:
    """Upper case without accents; empty for a missing value.

    Examples
    --------
    >>> normalize_text("Sem defeito constatado, conexão OK")
    'SEM DEFEITO CONSTATADO, CONEXAO OK'
    """
    if text is None or (isinstance(text, float) and np.isnan(text)) or text is pd.NA:
        return ""
    decomposed = unicodedata.normalize("NFKD", str(text))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).upper()


class EventRule(BaseModel):
    """What one ONU event type means (``events:`` in a label map)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    cause: Annotated[str, Field(alias="class")]
    service_affecting: bool = True

    @field_validator("cause")
    @classmethod
    def _known_class(cls, value: str) -> str:
        if value not in LABEL_CLASSES or value == NO_FAULT:
            raise ValueError(f"unknown class {value!r}; expected one of {list(LABEL_CLASSES[:-1])}")
        return value


class LabelMap(BaseModel):
    """A label map: which closure codes and notes mean which cause class.

    Attributes
    ----------
    fields : list of {'closure_code', 'notes'}
        Ticket fields searched.
    classes : dict
        Class (one of :data:`LABEL_CLASSES`) → regular expressions.
    ignore : list of str
        Patterns of tickets closed without a diagnosis (cancellations): counted apart.
    lookback_hours : float
        How far before a ticket's opening its first symptom or contact is looked for. [h]
    massive_scope : {'pon', 'onu'}
        What a massive ticket covers: the ticket ONU's whole PON, or that ONU alone.
    events : dict
        ONU event type (``schema.EVENT_TYPES``) → :class:`EventRule` (``class`` and
        ``service_affecting``), e.g. ``DYING_GASP: {class: CUSTOMER_PREMISES,
        service_affecting: false}``.
    """

    model_config = ConfigDict(extra="forbid")

    fields: list[Literal["closure_code", "notes"]] = Field(
        default_factory=lambda: ["closure_code", "notes"], min_length=1
    )
    classes: dict[str, Annotated[list[str], Field(min_length=1)]] = Field(min_length=1)
    ignore: list[str] = Field(default_factory=list)
    lookback_hours: Annotated[float, Field(gt=0, le=168)] = 12.0
    massive_scope: Literal["pon", "onu"] = "pon"
    events: dict[str, EventRule] = Field(default_factory=dict)

    @field_validator("events")
    @classmethod
    def _known_events(cls, value: dict[str, EventRule]) -> dict[str, EventRule]:
        for name in value:
            if name not in EVENT_TYPES:
                raise ValueError(
                    f"unknown event type {name!r}; expected one of {list(EVENT_TYPES)}"
                )
        return value

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if name not in LABEL_CLASSES:
                raise ValueError(f"unknown class {name!r}; expected one of {list(LABEL_CLASSES)}")
        return value

    def compiled(self) -> tuple[dict[str, list[re.Pattern]], list[re.Pattern]]:
        """The patterns compiled over :func:`normalize_text` (case- and accent-insensitive)."""
        classes = {
            c: [re.compile(normalize_text(p), re.IGNORECASE) for p in ps]
            for c, ps in self.classes.items()
        }
        return classes, [re.compile(normalize_text(p), re.IGNORECASE) for p in self.ignore]


def load_label_map(path: Path | str) -> LabelMap:
    """Read and validate a label map.

    Raises
    ------
    ConfigError
        Names the file and the field (``classes.MASSIVE_OUTAGE[2]: not a regular
        expression …``, an unknown key or class).
    """
    path = Path(path)
    data = load_yaml(path)
    try:
        label_map = LabelMap.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_message(path, exc, "invalid label map")) from None
    for where, patterns in [
        *((f"classes.{c}", ps) for c, ps in label_map.classes.items()),
        ("ignore", label_map.ignore),
    ]:
        for i, p in enumerate(patterns):
            try:
                re.compile(normalize_text(p))
            except re.error as exc:
                raise ConfigError(
                    f"{path}: invalid label map: {where}[{i}]: not a regular expression "
                    f"({exc}) (got {p!r})"
                ) from None
    return label_map


def classify_tickets(tickets: pd.DataFrame, label_map: LabelMap) -> pd.DataFrame:
    """The class and status of each ticket.

    Parameters
    ----------
    tickets : pandas.DataFrame
        ``os_id``, ``closed_at`` and the label map's ``fields`` (missing fields count as
        empty).

    Returns
    -------
    pandas.DataFrame
        ``tickets`` plus ``label`` (class or None), ``status`` (``labelled``,
        ``no_fault``, ``unlabelled``, ``contradictory``, ``ignored`` or ``open``) and
        ``matched`` (the classes whose patterns matched, ``|``-joined).
    """
    classes, ignore = label_map.compiled()
    out = tickets.copy()
    texts = [
        [normalize_text(v) for v in out.get(f, pd.Series([None] * len(out), index=out.index))]
        for f in label_map.fields
    ]
    labels, statuses, matched = [], [], []
    closed = out["closed_at"].notna().to_numpy()
    for i in range(len(out)):
        fields_i = [t[i] for t in texts]
        hit = [c for c, ps in classes.items() if any(p.search(x) for p in ps for x in fields_i)]
        matched.append("|".join(hit))
        if not closed[i]:
            labels.append(None)
            statuses.append("open")
        elif len(hit) > 1:
            labels.append(None)
            statuses.append("contradictory")
        elif len(hit) == 1:
            labels.append(hit[0])
            statuses.append("no_fault" if hit[0] == NO_FAULT else "labelled")
        elif any(p.search(x) for p in ignore for x in fields_i):
            labels.append(None)
            statuses.append("ignored")
        else:
            labels.append(None)
            statuses.append("unlabelled")
    out["label"] = labels
    out["status"] = statuses
    out["matched"] = matched
    return out
