"""``busd office gaps``: the archive's gaps per bus and local day, on the terminal."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from busd.cli import build_parser, main
from busd.clock import ManualClock
from office.archive import ArchivedRecord, open_archive
from office.live import office_main

DAY = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


def rec(bus: str, seq: int, ts: datetime) -> ArchivedRecord:
    return ArchivedRecord(bus=bus, seq=seq, ts=ts, schema="busd.telemetry/1", kind="sample",
                          topic="telemetry", received=ts, data={"soc": 70})


@pytest.fixture(params=["sqlite", "postgresql"])
def filled_archive(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/archive.db"
    else:
        url = str(request.getfixturevalue("postgres_url"))

    async def fill() -> None:
        async with open_archive(url, clock=ManualClock(DAY.timestamp())) as archive:
            await archive.insert_batch([
                rec("lv-01", 1, DAY), rec("lv-01", 5, DAY + timedelta(minutes=1)),
                # 23:50 UTC is 01:50 on 10 March in Riga.
                rec("lv-01", 6, DAY.replace(hour=23, minute=50)),
                rec("lv-01", 9, DAY + timedelta(days=1)),
                rec("lv-02", 1, DAY), rec("lv-02", 3, DAY + timedelta(hours=2)),
            ])

    asyncio.run(fill())
    return url


def test_lists_gaps_per_bus_and_day(filled_archive: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["office", "gaps", "--archive", filled_archive]) == 0
    out = capsys.readouterr().out
    assert "lv-01  2026-03-09: 3 records missing" in out
    assert "lv-01  2026-03-10: 2 records missing" in out
    assert "lv-02  2026-03-09: 1 record missing" in out

    assert main(["office", "gaps", "--archive", filled_archive, "--bus", "lv-01",
                 "--day", "2026-03-10", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line) for line in lines] == [{
        "bus": "lv-01", "day": "2026-03-10", "first": 7, "last": 8, "missing": 2,
        "after": "2026-03-09T23:50:00+00:00", "before": "2026-03-10T08:00:00+00:00"}]

    assert main(["office", "gaps", "--archive", filled_archive, "--bus", "lv-03"]) == 0
    assert capsys.readouterr().out.strip() == "no gaps"


def test_a_plain_path_is_a_sqlite_archive(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    async def fill() -> None:
        async with open_archive(f"sqlite:///{tmp_path}/office.db") as archive:
            await archive.insert_batch([rec("lv-01", 1, DAY), rec("lv-01", 3, DAY)])

    asyncio.run(fill())
    assert main(["office", "gaps", "--archive", str(tmp_path / "office.db")]) == 0
    assert "lv-01  2026-03-09: 1 record missing" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["gaps"], ["command", "status"]])
def test_a_missing_archive_is_an_error_and_is_not_created(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    missing = tmp_path / "nope.db"
    assert main(["office", *command, "--archive", str(missing)]) == 2
    assert "no archive at" in capsys.readouterr().out
    assert not missing.exists()


def test_an_unreachable_database_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support.mosquitto import free_port

    url = f"postgresql://busd@127.0.0.1:{free_port()}/x"
    assert main(["office", "gaps", "--archive", url, "--connect-timeout", "0.5"]) == 2
    assert "cannot connect" in capsys.readouterr().out


def test_busd_office_without_a_sub_command_is_still_the_live_office() -> None:
    args = build_parser().parse_args(["office", "--no-live", "--duration", "1"])
    assert args.func is office_main
    assert args.office_command is None
