"""The reports' typed contract: who (a municipality's buses), when (a local day or month), and
the methodology's indicators for the period, per bus, per day and per place.

A :class:`Municipality` is a group of buses with its time zone (the office config builds it);
its days split at its own local midnight. A bus's own report is its municipality's with
``bus`` set (:func:`office.reports.build.build_report`).
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from office.archive.models import BusId


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Municipality(_Model):
    """A group of buses reported together, in its own time zone."""

    name: str = Field(min_length=1, max_length=200)
    tz: str = "Europe/Riga"
    buses: tuple[BusId, ...] = Field(min_length=1)

    @field_validator("tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)


PeriodKind = Literal["day", "month"]


class Period(_Model):
    """Local days ``first``..``last`` (inclusive): one day, or one calendar month."""

    kind: PeriodKind
    first: date
    last: date

    @model_validator(mode="after")
    def _order(self) -> Period:
        if self.last < self.first:
            raise ValueError("a period's last day is before its first")
        return self

    @classmethod
    def day(cls, day: date) -> Period:
        return cls(kind="day", first=day, last=day)

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        days = calendar.monthrange(year, month)[1]
        return cls(kind="month", first=date(year, month, 1), last=date(year, month, days))

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The UTC instants the period starts and ends (local midnights)."""
        start = datetime.combine(self.first, time(0), tzinfo=zone)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=zone)
        return start, end

    @property
    def label(self) -> str:
        return self.first.isoformat() if self.kind == "day" else self.first.strftime("%Y-%m")


class Indicators(_Model):
    """The methodology's indicators over some bus-days (see README, "Reports")."""

    days_operated: int  # bus-days with at least one leg
    clients_served: int  # from the buses' daily reports
    route_min: float  # first leg's start to last leg's end, summed over bus-days
    driving_min: float
    km: float
    kwh: float  # net energy of the legs (out minus regenerated)
    kwh_per_km: float | None
    visits: int  # visits at planned-stop places
    on_site_min: float  # minutes on site at those places
    lift_cycles: int
    places_planned: int  # distinct places the plans listed
    places_visited: int  # distinct planned places visited at least once
    coverage: float | None  # places_visited / places_planned
    stops_planned: int  # planned stop entries (a place planned on 3 days counts 3)
    stops_served: int
    stops_shortened: int
    stops_skipped: int
    charging_sessions: int
    charged_kwh: float
    alerts: int  # problem situations raised
    alert_min: float  # their duration (cleared ones)
    emergencies: int  # emergency proposals: no plan kept the reserve


class Line(_Model):
    """One bus's indicators on one local day."""

    bus: str
    day: date
    values: Indicators


class BusLine(_Model):
    bus: str
    values: Indicators


class DayLine(_Model):
    day: date
    values: Indicators


class PlaceLine(_Model):
    """Frequency and coverage of one place: how often it was planned and served."""

    place_id: str
    name: str
    planned_days: int  # bus-days whose plan listed it
    visits: int
    days_visited: int  # distinct local days with a visit
    minutes: float
    coverage: float | None  # days_visited / planned_days


TempBand = Literal["below_-10", "-10_0", "0_10", "10_20", "20_up", "unknown"]
TEMP_BANDS: tuple[TempBand, ...] = ("below_-10", "-10_0", "0_10", "10_20", "20_up", "unknown")


class BandLine(_Model):
    """Driving energy in one outside-temperature band (each leg by its mean °C)."""

    band: TempBand
    legs: int
    km: float
    kwh: float
    kwh_per_km: float | None


class AlertLine(_Model):
    alert: str
    count: int
    minutes: float


class TallyLine(_Model):
    """One service type's clients (or one activity's minutes): per bus and in total, summed
    from the buses' daily reports (the staff page's tallies)."""

    name: str  # the service type's or activity's id
    by_bus: dict[str, float]  # every bus of the report, 0 where it had none
    total: float


class Report(_Model):
    """A municipality's (or one of its buses') report for a day or a month."""

    municipality: str
    tz: str
    buses: tuple[str, ...]
    bus: str | None  # set: this bus's own report
    period: Period
    totals: Indicators
    by_bus: list[BusLine]
    by_day: list[DayLine]
    lines: list[Line]  # per bus and day
    places: list[PlaceLine]
    bands: list[BandLine]
    alerts: list[AlertLine]
    services: list[TallyLine] = []  # clients per service type, staff page order
    activities: list[TallyLine] = []  # minutes per activity
