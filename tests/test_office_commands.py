"""The commands table: written by the sender, moved on by the buses' receipts and answers as
they are archived (by whoever archives them), the same in both back ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest

from busd.clock import ManualClock
from busd.event_catalog import CommandDetail, CommandReceived, CommandResult
from office.archive import Archive, ArchivedRecord, open_archive
from office.dispatch import SentCommand, command_statuses

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY_END = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)  # midnight in Riga


@pytest.fixture
async def archive(archive_url: str) -> AsyncIterator[Archive]:
    async with open_archive(archive_url, clock=ManualClock(NOW.timestamp())) as opened:
        yield opened


def sent(command_id: str, *, bus: str = "lv-07", expires: datetime | None = DAY_END,
         sent_at: datetime = NOW) -> SentCommand:
    return SentCommand(bus=bus, id=command_id, command="plan", sent=sent_at, expires=expires,
                       day=date(2026, 3, 10), version=3)


def answer(seq: int, data: CommandResult | CommandReceived, *, bus: str = "lv-07",
           after_s: float = 5) -> ArchivedRecord:
    ts = NOW + timedelta(seconds=after_s)
    return ArchivedRecord(bus=bus, seq=seq, ts=ts, schema="busd.cmd_result/1", kind=data.kind,
                          topic="cmd/result", received=ts, data=data.model_dump(mode="json"))


async def states(archive: Archive, at: datetime = NOW) -> dict[str, tuple[str, str]]:
    rows = await command_statuses(archive, clock=ManualClock(at.timestamp()))
    return {c.sent.id: (state, c.reason) for c, state in rows}


async def test_receipts_and_answers_move_each_command_on_once(archive: Archive) -> None:
    for name in ("ok", "no", "quiet", "taken"):
        assert await archive.add_command(sent(name))
    assert not await archive.add_command(sent("ok"))  # one row per bus and id
    assert await states(archive) == {n: ("pending", "") for n in ("ok", "no", "quiet", "taken")}

    await archive.insert_batch([
        answer(1, CommandReceived(command="plan", id="ok")),
        answer(2, CommandReceived(command="plan", id="taken")),
        answer(3, CommandResult(command="plan", id="no", accepted=False,
                                reason="date: expired: plan is for 2026-03-09")),
    ])
    assert await states(archive) == {
        "ok": ("delivered", ""), "taken": ("delivered", ""), "quiet": ("pending", ""),
        "no": ("rejected", "date: expired: plan is for 2026-03-09")}

    scheduled = CommandResult(command="plan", id="ok", accepted=True,
                              detail=CommandDetail(version=3, scheduled=date(2026, 3, 11)))
    await archive.insert_batch([answer(4, scheduled, after_s=6)])
    # The bus answers a duplicate the same; a late receipt never moves an answer back.
    await archive.insert_batch([answer(5, scheduled, after_s=7),
                                answer(6, CommandReceived(command="plan", id="ok"))])
    # Another bus's answer with the same id is not this command's.
    await archive.insert_batch([answer(1, CommandResult(command="plan", id="quiet",
                                                        accepted=True), bus="lv-08")])
    rows = {c.sent.id: c for c, _ in await command_statuses(
        archive, clock=ManualClock(NOW.timestamp()))}
    assert rows["ok"].status == "accepted"
    assert rows["ok"].detail is not None and rows["ok"].detail.scheduled == date(2026, 3, 11)
    assert rows["ok"].answered == NOW + timedelta(seconds=6)
    assert rows["ok"].sent == sent("ok")
    assert rows["quiet"].status == "pending"

    # Past the end of the plan's day, what the bus never answered has expired.
    assert await states(archive, DAY_END) == {
        "ok": ("accepted", ""), "taken": ("expired", ""), "quiet": ("expired", ""),
        "no": ("rejected", "date: expired: plan is for 2026-03-09")}


async def test_the_list_is_newest_first_and_filters_by_bus_and_time(archive: Archive) -> None:
    for n in range(5):
        await archive.add_command(sent(f"c{n}", bus=f"lv-0{n % 2}", expires=None,
                                       sent_at=NOW + timedelta(minutes=n)))
    everything = await archive.commands()
    assert [c.sent.id for c in everything] == ["c4", "c3", "c2", "c1", "c0"]
    assert [c.sent.id for c in await archive.commands(bus="lv-01")] == ["c3", "c1"]
    since = await archive.commands(since=NOW + timedelta(minutes=3), limit=1)
    assert [c.sent.id for c in since] == ["c4"]
    assert everything[0].sent.expires is None
    assert everything[0].state_at(NOW + timedelta(days=400)) == "pending"  # no expiry: waits
