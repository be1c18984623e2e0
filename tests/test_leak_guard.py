"""The conftest guard sees each kind of leak, and what ran before the test is allowed."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import psutil

from tests.support import leaks


def test_a_thread_left_running_is_named() -> None:
    before = leaks.snapshot()
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="left-behind")
    thread.start()
    try:
        found = leaks.wait_for_no_leaks(before, timeout=0.05)
        assert len(found) == 1 and found[0].startswith("thread 'left-behind'")
    finally:
        stop.set()
        thread.join()
    assert leaks.wait_for_no_leaks(before) == []


def test_a_child_process_left_running_is_named_and_killed() -> None:
    before = leaks.snapshot()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        found = leaks.wait_for_no_leaks(before, timeout=0.05)
        assert found == [f"child process pid {proc.pid} "
                         f"'{sys.executable} -c import time; time.sleep(60)'"]
        leaks.kill_leaked_children(before)
        # It sleeps 60 s unless killed; wait raises TimeoutExpired if it still runs.
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert leaks.wait_for_no_leaks(before) == []


def test_a_listening_socket_left_open_is_named() -> None:
    before = leaks.snapshot()
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert leaks.wait_for_no_leaks(before, timeout=0.05) == [
            f"listening socket 127.0.0.1:{port}"]
    assert leaks.wait_for_no_leaks(before) == []


def test_what_ran_before_the_snapshot_is_allowed() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        before = leaks.snapshot()
        assert leaks.wait_for_no_leaks(before, timeout=0.05) == []


def test_a_session_owned_tree_is_not_a_tests_leak() -> None:
    # The shared Chromium starts helpers under its server whenever it likes; they belong
    # to the session fixture, while anything else started meanwhile is still a leak.
    session = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    leaks.keep_for_session(session.pid)
    try:
        before = leaks.snapshot()
        helper = subprocess.Popen(  # a grandchild appearing under the session's process
            [sys.executable, "-c", "import subprocess, sys, time; "
             "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
             "time.sleep(60)"])
        leaks.keep_for_session(helper.pid)
        stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            found = leaks.wait_for_no_leaks(before, timeout=0.05)
            assert found == [f"child process pid {stray.pid} "
                             f"'{sys.executable} -c import time; time.sleep(60)'"]
        finally:
            for proc in (helper, stray):
                for child in psutil.Process(proc.pid).children(recursive=True):
                    child.kill()
                proc.kill()
                proc.wait()
    finally:
        session.kill()
        session.wait()
        leaks._session_roots.difference_update({session.pid, helper.pid})
