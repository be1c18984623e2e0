"""The one interface both archive back ends implement, and the factory that picks one by URL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self

from busd.clock import Clock, SystemClock
from office.archive.commands import CommandStatus, SentCommand
from office.archive.derived import (
    Alert,
    ChargingSession,
    DayReport,
    Leg,
    PlanChange,
    RebuildResult,
    Visit,
    VisitServices,
)
from office.archive.derived.reads import Buses
from office.archive.derived.tables import POSTGRESQL, SQLITE, Dialect, placeholders
from office.archive.models import ArchivedRecord, ArchiveError, Gap, InsertResult

# Days are the municipality's local days (Līvāni, Mažeikiai: both UTC+2/+3).
DEFAULT_TZ = "Europe/Riga"


class Archive(Protocol):
    """Every durable record of every bus, once; gaps and deduplication are the database's job.

    An implementation is an async context manager: ``async with open_archive(url) as archive``
    opens it and applies any migration not yet applied, and closes it on exit.
    """

    async def open(self) -> Self:
        """Connect and migrate (idempotent: a migration already recorded is not applied again)."""
        ...

    async def close(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply the migrations not applied yet, in order; returns the versions applied now."""
        ...

    async def applied_migrations(self) -> list[int]: ...

    @property
    def dialect(self) -> Literal["sqlite", "postgresql"]: ...

    async def fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One statement with named parameters, spelled by :func:`param` for this
        ``dialect``; its rows (a write gives rows only with ``RETURNING``). For the office's
        own small tables (users) and read-only queries of the web pages."""
        ...

    async def insert_batch(self, records: Sequence[ArchivedRecord]) -> InsertResult:
        """Store a batch in one transaction; a record already archived is a duplicate.

        The same transaction fills the derived tables from the records inserted now (never
        from duplicates); a record whose data does not fit the event catalogue is archived and
        counted in ``unfit``."""
        ...

    async def rebuild_derived(self, bus: str | None = None) -> RebuildResult:
        """Recompute ``bus``'s derived rows (every bus's when None) from the archived records,
        in one transaction. Run by ``migrate`` after a ``derived_*`` migration."""
        ...

    # The derived tables, typed. ``bus``: one bus, a group (a municipality's), None for all;
    # ``day``..``last``: local days (the archive's time zone), ``last`` defaults to ``day``.

    async def visits(self, bus: Buses, day: date, *, last: date | None = None) -> list[Visit]:
        ...

    async def visit_services(self, bus: Buses, day: date, *,
                             last: date | None = None) -> list[VisitServices]:
        """The counted visits of those days: clients served per service type and minutes per
        activity at each (for the monthly report)."""
        ...

    async def legs(self, bus: Buses, day: date, *, last: date | None = None) -> list[Leg]:
        ...

    async def charging(self, bus: Buses, day: date, *,
                       last: date | None = None) -> list[ChargingSession]:
        ...

    async def plan_changes(self, bus: Buses, day: date, *,
                           last: date | None = None) -> list[PlanChange]:
        ...

    async def alerts(self, bus: Buses, day: date, *, last: date | None = None) -> list[Alert]:
        """Alerts active at any time of those days (raised before their end, not cleared
        before their start)."""
        ...

    async def daily_reports(self, bus: Buses, month: date) -> list[DayReport]:
        """The daily reports of the month ``month`` falls in."""
        ...

    async def gaps(self, bus: str | None = None, day: date | None = None) -> list[Gap]:
        """Missing seq ranges between archived records, per bus, ordered by bus and seq.

        ``day`` keeps the gaps whose loss began on that local day. No gap is reported before a
        bus's first archived record: retention removes old records, so it would be a false one.
        """
        ...

    async def records(self, bus: str, *, kind: str | None = None) -> list[ArchivedRecord]:
        """A bus's records in seq order (all of them: for tests and small exports)."""
        ...

    async def count(self, bus: str | None = None) -> int: ...

    async def add_command(self, sent: SentCommand) -> bool:
        """Record a command the office publishes (pending); False when its bus and id are
        recorded already. The buses' receipts and answers update it as they are archived."""
        ...

    async def commands(self, *, bus: str | None = None, since: datetime | None = None,
                       limit: int = 100) -> list[CommandStatus]:
        """The commands sent (to ``bus``; at or after ``since``), newest first."""
        ...

    async def buses(self) -> list[str]:
        """Every bus with a record in the archive, sorted."""
        ...

    async def retention(self, older_than: datetime) -> list[date]:
        """Remove every month (UTC) that ends at or before ``older_than``.

        Returns the first day of each month removed that held records. PostgreSQL drops the
        month's partition; SQLite deletes its rows. Derived rows whose time (a span's start,
        an alert's raise, a report's or plan change's record) lies in those months go too.
        """
        ...


def param(dialect: str, name: str) -> str:
    """A named placeholder as ``dialect`` spells it: ``:name`` or ``%(name)s``."""
    return f":{name}" if dialect == "sqlite" else f"%({name})s"


def dialect_of(archive: Archive) -> Dialect:
    """How ``archive`` spells values (SQLite: times as UTC ISO text, days as text)."""
    return SQLITE if archive.dialect == "sqlite" else POSTGRESQL


async def select(archive: Archive, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
    """``archive.fetch`` with ``:name`` placeholders whatever the back end (rewritten for
    psycopg): the reports' and the day view's read-only queries; values spelled by
    :func:`dialect_of` (SQLite gives times back as UTC ISO text)."""
    return await archive.fetch(placeholders(query, dialect_of(archive)), args)


def sqlite_path(url: str) -> str:
    """The file of a SQLite URL, as SQLAlchemy spells them: ``sqlite:///relative.db``,
    ``sqlite:////absolute.db``; ``sqlite://`` alone is in memory."""
    return url.removeprefix("sqlite://").removeprefix("/") or ":memory:"


def open_archive(url: str, *, tz: str = DEFAULT_TZ, clock: Clock | None = None,
                 connect_timeout_s: float = 10.0) -> Archive:
    """The back end named by ``url``: ``sqlite:///path/to/file.db`` (``sqlite://`` alone is in
    memory) or ``postgresql://user@host:port/db``. Not opened yet: use ``async with``."""
    clock = clock or SystemClock()
    if url.startswith("sqlite://"):
        from office.archive.sqlite import SqliteArchive

        return SqliteArchive(sqlite_path(url), tz=tz, clock=clock)
    if url.startswith(("postgresql://", "postgres://")):
        # Imported here: psycopg is only needed by an office that runs PostgreSQL.
        from office.archive.postgres import PostgresArchive

        return PostgresArchive(url, tz=tz, clock=clock, connect_timeout_s=connect_timeout_s)
    raise ArchiveError(f"unknown archive URL {url!r}: expected sqlite:///… or postgresql://…")
