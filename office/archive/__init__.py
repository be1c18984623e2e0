"""The office's archive: one interface, two back ends (SQLite embedded, PostgreSQL for the fleet).

``open_archive("sqlite:///office.db")`` or ``open_archive("postgresql://…")`` gives an
:class:`Archive`; records go in as :class:`ArchivedRecord` batches, and deduplication and gap
detection are SQL over the archive, not a worker's memory. The derived tables (visits, legs,
charging sessions, daily reports, plan changes, alerts) are filled in the same transaction and
read as typed rows (:mod:`office.archive.derived`).
"""

from office.archive.base import DEFAULT_TZ, Archive, open_archive
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
from office.archive.models import (
    ArchivedRecord,
    ArchiveError,
    ArchiveUnreachable,
    Gap,
    InsertResult,
)

__all__ = ["DEFAULT_TZ", "Alert", "Archive", "ArchiveError", "ArchiveUnreachable",
           "ArchivedRecord", "ChargingSession", "DayReport", "Gap", "InsertResult", "Leg",
           "PlanChange", "RebuildResult", "Visit",
           "VisitServices", "open_archive"]
