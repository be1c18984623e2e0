"""The commands the office sent, and what each bus made of them (the ``commands`` table).

The sender writes a row when it publishes a command (:meth:`CommandTable.add_command`); the
bus's answers update it as they are archived, in the transaction that archives them
(:func:`answers_of`, applied by both back ends' insert paths), whoever archives them: the
sender itself when it is still waiting, or the ingest workers when the bus answers days later.
A duplicate answer (a command delivered twice) changes nothing: the first answer stays.

The row holds what the bus said: ``pending`` until it says anything, ``delivered`` when its
receipt came (the command reached it; the answer follows), then ``accepted`` or ``rejected``
(with the reason). ``expired`` is read, not stored: a command with no answer whose expiry has
passed (the broker dropped it, or the bus got it too late and says so).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from busd.event_catalog import CommandDetail, CommandReceived, CommandResult
from office.archive.derived.tables import Dialect

if TYPE_CHECKING:  # psycopg is only installed for an office that runs PostgreSQL
    import psycopg

CommandState = Literal["pending", "delivered", "accepted", "rejected", "expired"]


class SentCommand(BaseModel):
    """What the sender records when it publishes a command."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bus: str
    id: str = Field(min_length=1, max_length=64)
    command: str = Field(description="plan, resend, ping")
    sent: datetime = Field(description="when the office published it (UTC)")
    expires: datetime | None = Field(
        default=None, description="the MQTT message expiry: the broker drops it after this")
    day: date | None = Field(default=None, description="plan: the plan's day")
    version: int | None = Field(default=None, description="plan: the plan's version")


class CommandStatus(BaseModel):
    """A sent command and what its bus made of it, as of ``now`` (see :meth:`state_at`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sent: SentCommand
    status: Literal["pending", "delivered", "accepted", "rejected"] = Field(
        description="what the bus said; 'expired' is read with state_at")
    reason: str = ""
    answered: datetime | None = Field(default=None, description="the bus's time of the answer")
    detail: CommandDetail | None = None

    def state_at(self, now: datetime) -> CommandState:
        """The status, or ``expired`` for a command the bus never answered and that the
        broker no longer holds."""
        if (self.status in ("pending", "delivered") and self.sent.expires is not None
                and now >= self.sent.expires):
            return "expired"
        return self.status


_COLUMNS = ("bus", "id", "command", "sent", "expires", "day", "version", "status", "reason",
            "answered", "detail")


def insert_sql(dialect: Dialect) -> str:
    p = _placeholder(dialect)
    names = _COLUMNS[:7]
    return (f"INSERT INTO commands ({', '.join(names)}, status) VALUES "
            f"({', '.join(p(n) for n in names)}, 'pending') "
            "ON CONFLICT (bus, id) DO NOTHING RETURNING id")


def insert_args(dialect: Dialect, sent: SentCommand) -> dict[str, Any]:
    return {k: dialect.value(v) for k, v in sent.model_dump().items()}


def select_sql(dialect: Dialect, *, by_bus: bool, by_since: bool) -> str:
    p = _placeholder(dialect)
    where = ["1 = 1"]
    if by_bus:
        where.append(f"bus = {p('bus')}")
    if by_since:
        where.append(f"sent >= {p('since')}")
    detail = "detail::text" if dialect.name == "postgresql" else "detail"
    columns = ", ".join(detail if c == "detail" else c for c in _COLUMNS)
    return (f"SELECT {columns} FROM commands WHERE {' AND '.join(where)} "
            f"ORDER BY sent DESC, bus, id LIMIT {p('limit')}")


def status_from_row(row: tuple[Any, ...]) -> CommandStatus:
    values = dict(zip(_COLUMNS, row, strict=True))
    for key in ("sent", "expires", "answered"):
        values[key] = _utc(values[key])
    if isinstance(values["day"], str):
        values["day"] = date.fromisoformat(values["day"])
    detail = values.pop("detail")
    sent = SentCommand.model_validate({k: values[k] for k in _COLUMNS[:7]})
    return CommandStatus(sent=sent, status=values["status"], reason=values["reason"],
                         answered=values["answered"],
                         detail=CommandDetail.model_validate_json(detail) if detail else None)


# --- the bus's answers, applied as they are archived -------------------------------------


def answer_sql(dialect: Dialect) -> str:
    """The first answer to a command sets its status (a duplicate answer changes nothing)."""
    p = _placeholder(dialect)
    detail = f"{p('detail')}::jsonb" if dialect.name == "postgresql" else p("detail")
    return (f"UPDATE commands SET status = {p('status')}, reason = {p('reason')}, "
            f"answered = {p('answered')}, detail = {detail} "
            f"WHERE bus = {p('bus')} AND id = {p('id')} "
            "AND status IN ('pending', 'delivered')")


def receipt_sql(dialect: Dialect) -> str:
    """A receipt moves a pending command to delivered, and never back from an answer."""
    p = _placeholder(dialect)
    return (f"UPDATE commands SET status = 'delivered', answered = {p('answered')} "
            f"WHERE bus = {p('bus')} AND id = {p('id')} AND status = 'pending'")


def answers_of(dialect: Dialect, records: Iterable[tuple[str, str, datetime, Any]]
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(answers, receipts) as parameter rows, from archived ``(bus, kind, ts, data)``.

    Records that are not command answers, or carry no id, give nothing."""
    answers: list[dict[str, Any]] = []
    receipts: list[dict[str, Any]] = []
    for bus, kind, ts, data in records:
        if kind not in ("cmd_result", "cmd_received"):
            continue
        try:
            raw = json.loads(data) if isinstance(data, str) else data
            if kind == "cmd_received":
                receipt = CommandReceived.model_validate(raw)
                receipts.append({"bus": bus, "id": receipt.id,
                                 "answered": dialect.value(ts)})
                continue
            result = CommandResult.model_validate(raw)
        except (ValidationError, ValueError):
            continue  # not an answer this table can use; the archive keeps it as it came
        if result.id is None:
            continue
        answers.append({
            "bus": bus, "id": result.id, "status": "accepted" if result.accepted else "rejected",
            "reason": result.reason, "answered": dialect.value(ts),
            "detail": result.detail.model_dump_json(exclude_none=True)})
    return answers, receipts


def _placeholder(dialect: Dialect) -> Any:
    if dialect.name == "postgresql":
        return lambda name: f"%({name})s"
    return lambda name: f":{name}"


def _utc(value: object) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


class CommandTable:
    """Mixed into both back ends (as :class:`~office.archive.derived.reads.DerivedReads` is):
    ``_derived_dialect`` and ``_derived_fetch`` come from the back end."""

    _derived_dialect: Dialect

    async def _derived_fetch(self, query: str, args: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def add_command(self, sent: SentCommand) -> bool:
        """Record a command as sent (pending); False when one with its bus and id exists."""
        rows = await self._derived_fetch(insert_sql(self._derived_dialect),
                                         insert_args(self._derived_dialect, sent))
        return bool(rows)

    async def commands(self, *, bus: str | None = None, since: datetime | None = None,
                       limit: int = 100) -> list[CommandStatus]:
        """The commands sent (to ``bus``; since ``since``), newest first, at most ``limit``."""
        query = select_sql(self._derived_dialect, by_bus=bus is not None,
                           by_since=since is not None)
        args: dict[str, Any] = {"limit": limit}
        if bus is not None:
            args["bus"] = bus
        if since is not None:
            args["since"] = self._derived_dialect.value(since)
        return [status_from_row(row) for row in await self._derived_fetch(query, args)]


def apply_answers_sqlite(db: sqlite3.Connection,
                         rows: Iterable[tuple[str, int, str, str, str]]) -> None:
    """The answers among records just archived (``(bus, seq, ts, kind, data)``), in the
    caller's transaction: receipts first, so an answer in the same batch wins."""
    from office.archive.derived.tables import SQLITE

    answers, receipts = answers_of(
        SQLITE, ((bus, kind, datetime.fromisoformat(ts), data) for bus, _, ts, kind, data in rows))
    if receipts:
        db.executemany(receipt_sql(SQLITE), receipts)
    if answers:
        db.executemany(answer_sql(SQLITE), answers)


async def apply_answers_postgres(conn: psycopg.AsyncConnection[Any],
                                 items: Iterable[list[Any]]) -> None:
    """As :func:`apply_answers_sqlite`, for the records the PostgreSQL insert returned
    (``[bus, seq, ts, kind, data]``)."""
    from office.archive.derived.tables import POSTGRESQL

    answers, receipts = answers_of(
        POSTGRESQL, ((bus, kind, datetime.fromisoformat(ts), data)
                     for bus, _, ts, kind, data in items))
    cur = conn.cursor()
    if receipts:
        await cur.executemany(receipt_sql(POSTGRESQL), receipts)
    if answers:
        await cur.executemany(answer_sql(POSTGRESQL), answers)
