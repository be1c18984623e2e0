"""Month arithmetic for partitions and retention (UTC months, like the partitions' bounds)."""

from __future__ import annotations

from datetime import UTC, date, datetime


def month_of(ts: datetime) -> date:
    """The first day of ``ts``'s UTC month."""
    utc = ts.astimezone(UTC)
    return date(utc.year, utc.month, 1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def month_start(month: date) -> datetime:
    return datetime(month.year, month.month, 1, tzinfo=UTC)


def retention_boundary(older_than: datetime) -> datetime:
    """Months that end at or before ``older_than`` go: all records before this instant."""
    return month_start(month_of(older_than))
