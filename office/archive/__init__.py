"""The office's archive: one interface, two back ends (SQLite embedded, PostgreSQL for the fleet).

``open_archive("sqlite:///office.db")`` or ``open_archive("postgresql://…")`` gives an
:class:`Archive`; records go in as :class:`ArchivedRecord` batches, and deduplication and gap
detection are SQL over the archive, not a worker's memory.
"""

from office.archive.base import DEFAULT_TZ, Archive, open_archive
from office.archive.models import ArchivedRecord, ArchiveError, Gap, InsertResult

__all__ = ["DEFAULT_TZ", "Archive", "ArchiveError", "ArchivedRecord", "Gap", "InsertResult",
           "open_archive"]
