"""Shared test fixtures.

Fixtures that start real services (mosquitto, gpsd, ptys) live in
tests/support/ and are registered here as plugins.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support import leaks

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

pytest_plugins = ["tests.support.mosquitto", "tests.support.postgres",
                  "tests.support.display_browser"]


_BEFORE = pytest.StashKey[leaks.Snapshot]()


@pytest.fixture(autouse=True)
def no_leaked_threads_processes_or_sockets(request: pytest.FixtureRequest) -> None:
    """Fail a test that leaves threads, child processes or listening sockets behind.

    The snapshot is taken here, after the module- and session-scoped fixtures (a
    shared mosquitto) have started, so what they run is allowed. The check is in
    pytest_runtest_teardown below, after every function-scoped fixture, the
    test's event loop included (it joins its executor threads as it closes).
    """
    request.node.stash[_BEFORE] = leaks.snapshot()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    result = yield
    before = item.stash.get(_BEFORE, None)
    if before is not None:
        leaked = leaks.wait_for_no_leaks(before)
        if leaked:
            leaks.kill_leaked_children(before)
            pytest.fail("test leaked:\n  " + "\n  ".join(leaked), pytrace=False)
    return result


@pytest.fixture(autouse=True)
async def no_leaked_tasks() -> AsyncIterator[None]:
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
