"""The services the specialists on board provide, and the activities their time splits into.

The staff page (busd/display) shows one +/- counter per service type and, when
``activities`` is not empty, a toggle of the current activity. Every id needs a
label in lv, lt and en: the known ids below have them built in, any other id
must be given its labels under ``[services.labels.ID]``.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import Field, field_validator, model_validator

from busd.config.base import Strict

_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

DEFAULT_TYPES: Final = ("municipal", "social", "notary", "orphans_court", "library", "other")
DEFAULT_ACTIVITIES: Final = ("serving", "consultation", "setup", "waiting")


class Labels(Strict):
    """One id's name on the staff page and in the reports, per language."""

    lv: str = Field(min_length=1, max_length=40)
    lt: str = Field(min_length=1, max_length=40)
    en: str = Field(min_length=1, max_length=40)


BUILT_IN_LABELS: Final[dict[str, Labels]] = {
    "municipal": Labels(lv="Pašvaldības", lt="Savivaldybės", en="Municipal"),
    "social": Labels(lv="Sociālie", lt="Socialinės", en="Social"),
    "notary": Labels(lv="Notārs", lt="Notaras", en="Notary"),
    "orphans_court": Labels(lv="Bāriņtiesa", lt="Vaiko teisės", en="Orphans' court"),
    "library": Labels(lv="Bibliotēka", lt="Biblioteka", en="Library"),
    "other": Labels(lv="Citi", lt="Kita", en="Other"),
    "serving": Labels(lv="Klientu apkalpošana", lt="Klientų aptarnavimas", en="Serving clients"),
    "consultation": Labels(lv="Konsultācija", lt="Konsultacija", en="Consultation"),
    "setup": Labels(lv="Sagatavošana", lt="Pasiruošimas", en="Set-up"),
    "waiting": Labels(lv="Gaidīšana", lt="Laukimas", en="Waiting"),
}


class ServicesConfig(Strict):
    """``[services]``: counts per service type and time per activity, per visit."""

    types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_TYPES), min_length=1, max_length=12,
        description="service types counted per visit (ids: lower case, digits, _)",
    )
    activities: list[str] = Field(
        default_factory=lambda: list(DEFAULT_ACTIVITIES), max_length=8,
        description="activities time on site is split between; empty: no activity toggle",
    )
    start_activity: str | None = Field(
        default=None,
        description="activity a visit starts in (one of activities); None: none until chosen",
    )
    labels: dict[str, Labels] = Field(
        default_factory=dict, description="labels (lv, lt, en) of ids without built-in ones, "
        "or to replace them",
    )

    @field_validator("types", "activities")
    @classmethod
    def _ids(cls, ids: list[str]) -> list[str]:
        for i, value in enumerate(ids):
            if not _ID.fullmatch(value):
                raise ValueError(f"{i}: {value!r} is not an id (a-z, 0-9, _; at most 32)")
        if len(set(ids)) != len(ids):
            raise ValueError("ids must be unique")
        return ids

    @model_validator(mode="after")
    def _check(self) -> ServicesConfig:
        missing = [i for i in (*self.types, *self.activities)
                   if i not in self.labels and i not in BUILT_IN_LABELS]
        if missing:
            raise ValueError(f"labels: no lv/lt/en labels for {', '.join(missing)} "
                             "(add [services.labels.ID])")
        unused = sorted(set(self.labels) - {*self.types, *self.activities})
        if unused:
            raise ValueError(f"labels: {', '.join(unused)} is neither a type nor an activity")
        if set(self.types) & set(self.activities):
            raise ValueError("an id cannot be both a type and an activity")
        if self.start_activity is not None and self.start_activity not in self.activities:
            raise ValueError(f"start_activity: {self.start_activity!r} is not in activities")
        return self

    def label(self, ident: str) -> Labels:
        return self.labels.get(ident) or BUILT_IN_LABELS[ident]
