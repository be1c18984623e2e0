"""Shared test fixtures.

Fixtures that start real services (mosquitto, gpsd, ptys) live in
tests/support/ and are registered here as plugins.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support import leaks

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

pytest_plugins = ["tests.support.mosquitto", "tests.support.display_browser"]


@pytest.fixture(autouse=True)
def no_leaked_threads_processes_or_sockets():
    """Fail a test that leaves threads, child processes or listening sockets behind.

    Defined before no_leaked_tasks so that it checks after the test's event loop
    has closed (and joined its executor threads). What ran before the test, such
    as a module-scoped mosquitto, is allowed.
    """
    before = leaks.snapshot()
    yield
    leaked = leaks.wait_for_no_leaks(before)
    if leaked:
        leaks.kill_leaked_children(before)
        pytest.fail("test leaked:\n  " + "\n  ".join(leaked), pytrace=False)


@pytest.fixture(autouse=True)
async def no_leaked_tasks():
    """Fail a test that leaves asyncio tasks running behind it."""
    before = asyncio.all_tasks()
    yield
    leaked = [
        t for t in asyncio.all_tasks() - before
        if not t.done() and t is not asyncio.current_task()
    ]
    for task in leaked:
        task.cancel()
    assert not leaked, f"test leaked tasks: {[t.get_name() for t in leaked]}"
