"""What a test leaves behind: threads, child processes and listening sockets.

tests/conftest.py takes a snapshot before each test and compares after it. Only
what appeared during the test counts, so a module- or session-scoped fixture
(a shared mosquitto) that was running before the test started is allowed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

# Threads are joined and children reaped a moment after the code that owns them
# returns (asyncio's default executor, a Popen's wait in a thread); wait this
# long for them to go before calling them leaked.
GRACE_S = 3.0


@dataclass(frozen=True)
class Snapshot:
    threads: frozenset[threading.Thread]
    children: frozenset[tuple[int, float]]  # (pid, create_time): a pid alone can be reused
    listening: frozenset[tuple[str, int]]


# Processes a session fixture owns (the shared Chromium behind Playwright's launch-server):
# they and their descendants outlive every test by design, and Chromium starts helper
# processes of its own whenever it likes, during whichever test happens to be running.
_session_roots: set[int] = set()


def keep_for_session(pid: int) -> None:
    """``pid`` and every process below it belong to the session, not to a test."""
    _session_roots.add(pid)


def _session_owned() -> set[int]:
    owned = set(_session_roots)
    for pid in _session_roots:
        try:
            owned.update(p.pid for p in psutil.Process(pid).children(recursive=True))
        except psutil.NoSuchProcess:
            continue
    return owned


def _children() -> dict[tuple[int, float], psutil.Process]:
    found: dict[tuple[int, float], psutil.Process] = {}
    # The children first, then what the session owns: a session process's helper started
    # between the two is then in both lists, not taken for a test's child.
    children = psutil.Process().children(recursive=True)
    owned = _session_owned()
    for child in children:
        if child.pid in owned:
            continue
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue  # it exited; the kernel only keeps its exit status
            found[(child.pid, child.create_time())] = child
        except psutil.NoSuchProcess:
            continue
    return found


def _listening() -> frozenset[tuple[str, int]]:
    return frozenset(
        (str(c.laddr.ip), int(c.laddr.port))
        for c in psutil.Process().net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.laddr
    )


def snapshot() -> Snapshot:
    return Snapshot(
        threads=frozenset(t for t in threading.enumerate() if t.is_alive()),
        children=frozenset(_children()),
        listening=_listening(),
    )


def _describe_process(proc: psutil.Process) -> str:
    try:
        return f"pid {proc.pid} {' '.join(proc.cmdline())[:160]!r}"
    except psutil.Error:
        return f"pid {proc.pid}"


def leaks_since(before: Snapshot) -> list[str]:
    """What is running now that was not in ``before``, described for a failure message."""
    found: list[str] = []
    for thread in threading.enumerate():
        if thread.is_alive() and thread not in before.threads:
            found.append(f"thread {thread.name!r} (daemon={thread.daemon}, target "
                         f"{getattr(thread, '_target', None)!r})")
    for key, proc in _children().items():
        if key not in before.children:
            found.append(f"child process {_describe_process(proc)}")
    for ip, port in sorted(_listening() - before.listening):
        found.append(f"listening socket {ip}:{port}")
    return found


def wait_for_no_leaks(before: Snapshot, *, timeout: float = GRACE_S,
                      poll: Callable[[float], None] = time.sleep) -> list[str]:
    """The leaks still there after up to ``timeout`` seconds; [] as soon as there are none."""
    deadline = time.monotonic() + timeout
    while True:
        found = leaks_since(before)
        if not found or time.monotonic() >= deadline:
            return found
        poll(0.02)


def kill_leaked_children(before: Snapshot) -> None:
    """Stop what the test left running, so one leak does not break the tests after it."""
    leaked = [p for key, p in _children().items() if key not in before.children]
    for proc in leaked:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(leaked, timeout=5)
