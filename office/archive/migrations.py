"""Versioned schema migrations: numbered SQL files applied in order, recorded once each.

Each back end has a folder, ``migrations/postgresql`` and ``migrations/sqlite``, of files named
``NNN_what.sql``. Versions start at 1 and leave no hole, so 002, 003… (the derived tables: visits,
legs, charging, daily reports, plan changes, alerts) are added after 001_records without touching
it. A migration that was applied is never edited: a change is a new file. Each back end applies a
file and records its version in ``schema_migrations`` in one transaction, so a crash leaves
either both or neither.

A migration named ``derived_*`` adds or changes derived tables: once it is applied to an archive
that already holds records, the back end rebuilds the derived rows from them
(``rebuild_derived``), so an old archive gets the new tables filled.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from office.archive.models import ArchiveError

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load(dialect: str, folder: Traversable | None = None) -> list[Migration]:
    """The migrations of ``dialect`` ("postgresql" or "sqlite") in version order."""
    if folder is None:
        folder = resources.files("office.archive").joinpath("migrations", dialect)
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise ArchiveError(f"migration file {entry.name!r} is not named NNN_name.sql")
        found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise ArchiveError(f"{dialect} migrations must be numbered 1..n without holes: {versions}")
    return found


def derives(dialect: str, versions: list[int]) -> bool:
    """Whether any of ``versions`` (just applied) is a ``derived_*`` migration."""
    return any(m.version in versions and m.name.startswith("derived")
               for m in load(dialect))
